//! `make demo`: the whole pipeline on one machine, in a few minutes.
//!
//! Starts `flexus-emulator` (accelerated clock) and `flexus-agent` (temporary SQLite store)
//! on loopback, installs the freshly built provider in a filesystem mirror, runs
//! `terraform init` + `apply` on `examples/quickstart`, replays a day of the NASA 1995 web
//! trace against the pool through the emulator's workload driver, shows the pool scaling
//! out and back in as a live table, writes a chart of load against capacity to
//! `.demo/demo.svg`, prints the pool's cost report and asks the DeepSeek advisor (the
//! emulator's stand-in) about it, checks that `terraform plan` reports no changes (the
//! agent's scaling is not drift), destroys, checks that no instance remains, and stops what
//! it started (also on Ctrl-C or error). The dashboard's URL is printed while it runs;
//! with `FLEXUS_DEMO_KEEP=1` (`make demo KEEP=1`) it stays open before the destroy until
//! Ctrl-C.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use flexus_e2e::{Stack, StackOptions, copy_example, repo_root, terraform_latest, workspace};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

/// Emulated seconds per real second.
const TIME_SCALE: f64 = 30.0;
/// Trace seconds per emulated second.
const SPEEDUP: f64 = 12.0;
/// Trace window replayed: hours 4 to 22 from the start of the trace.
const TRACE_OFFSET_S: f64 = 4.0 * 3600.0;
const TRACE_WINDOW_S: f64 = 18.0 * 3600.0;
const POOL: &str = "web";
const NS: &str = "demo";

#[derive(Debug, Clone)]
struct Row {
    real_s: f64,
    load_rps: f64,
    capacity_rps: f64,
    desired: u32,
    ready: u32,
    booting: u32,
}

fn say(s: &str) {
    println!("\x1b[1m==> {s}\x1b[0m");
}

fn main() -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst))
            .context("install the Ctrl-C handler")?;
    }
    let out_dir = repo_root().join(".demo");
    std::fs::create_dir_all(&out_dir).context("create .demo")?;

    say("starting flexus-emulator and flexus-agent on loopback (clock x30, boots take ~2 s)");
    let stack = Stack::start(StackOptions {
        boot_seconds: 60.0,
        time_scale: TIME_SCALE,
        namespaces: vec![NS.into()],
        default_interval: "15s".into(),
    });
    println!(
        "    emulator {}   agent {}   (logs in {})",
        stack.emulator_url,
        stack.agent_url,
        stack.dir.path().display()
    );
    let token_file = out_dir.join("admin-token");
    write_private(&token_file, &stack.admin_token).context("write .demo/admin-token")?;
    println!(
        "    dashboard: {}/  (log in with the token in {})",
        stack.agent_url,
        token_file.display()
    );
    // The stack is stopped when `stack` drops, on every path out of here.
    let result = run(&stack, &stop, &out_dir);
    if let Err(e) = &result {
        eprintln!(
            "\ndemo failed: {e:#}\n--- last agent log lines\n{}",
            tail(&stack.agent_log(), 25)
        );
    }
    say("stopping the agent and the emulator");
    drop(stack);
    result
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn run(stack: &Stack, stop: &AtomicBool, out_dir: &std::path::Path) -> anyhow::Result<()> {
    let tf = terraform_latest();
    let ws = workspace(&tf, stack, NS);
    copy_example("quickstart", &ws);
    ws.write(
        "terraform.tfvars",
        "min_size = 1\nmax_size = 8\ncpu_target = 60\n",
    )?;
    let terraform = |args: &[&str]| -> anyhow::Result<tfplugin::testing::Outcome> {
        if stop.load(Ordering::SeqCst) {
            bail!("interrupted");
        }
        let t = Instant::now();
        let o = ws
            .terraform(args)
            .with_context(|| format!("run terraform {args:?}"))?;
        println!(
            "    terraform {} -> exit {} in {:.1}s",
            args.join(" "),
            o.code,
            t.elapsed().as_secs_f64()
        );
        Ok(o)
    };

    say("terraform init (provider from a local filesystem mirror, no network)");
    let o = terraform(&["init"])?;
    if o.code != 0 {
        bail!("terraform init failed:\n{}", o.output());
    }
    say("terraform apply examples/quickstart (waits until min_size instances are ready)");
    let o = terraform(&["apply", "-auto-approve"])?;
    for l in o
        .stdout
        .lines()
        .filter(|l| l.contains("Creation complete") || l.starts_with("Apply complete"))
    {
        println!("    {l}");
    }
    if o.code != 0 {
        bail!("terraform apply failed:\n{}", o.output());
    }

    say(
        "replaying 18 hours of the NASA-HTTP 1995 trace (hours 4 to 22 from its start) against the pool",
    );
    stack.emulator_post(
        "/_emulator/workload",
        &json!({"pool": POOL, "shape": {"kind": "trace", "trace": "nasa-http-1995", "peak_instances": 6,
                 "flavor": "x1.2u.4g", "speedup": SPEEDUP, "offset_seconds": TRACE_OFFSET_S}}),
    );
    let real_window = TRACE_WINDOW_S / SPEEDUP / TIME_SCALE;
    let rows = watch(stack, stop, real_window)?;

    let chart = out_dir.join("demo.svg");
    write_chart(&chart, &rows)?;
    let max_ready = rows.iter().map(|r| r.ready).max().unwrap_or(0);
    let last_ready = rows.last().map(|r| r.ready).unwrap_or(0);
    println!(
        "    chart of load vs capacity written to {}",
        chart.display()
    );
    println!("    the pool went from 1 to {max_ready} ready instances and back to {last_ready}");
    if max_ready <= 1 {
        bail!("the pool never scaled out (max ready {max_ready}); see the agent log");
    }

    report_and_advice(stack)?;
    if std::env::var("FLEXUS_DEMO_KEEP").is_ok_and(|v| !v.is_empty() && v != "0") {
        say(&format!(
            "the dashboard stays open at {}/ (token in .demo/admin-token): press Ctrl-C to destroy and stop",
            stack.agent_url
        ));
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(200));
        }
        stop.store(false, Ordering::SeqCst);
    }

    say("terraform plan -detailed-exitcode (the agent's scaling is not drift: expect 0)");
    let o = terraform(&["plan", "-detailed-exitcode"])?;
    if o.code != 0 {
        bail!(
            "terraform plan reported changes or failed (exit {}):\n{}",
            o.code,
            o.output()
        );
    }
    println!("    No changes. Your infrastructure matches the configuration.");

    say("terraform destroy (the agent drains and deletes every instance)");
    let o = terraform(&["destroy", "-auto-approve"])?;
    if o.code != 0 {
        bail!("terraform destroy failed:\n{}", o.output());
    }
    let left = stack.emulator_instances(POOL);
    if !left.is_empty() {
        bail!("{} instance(s) remain after destroy", left.len());
    }
    let billing = stack.emulator_get("/_emulator/billing");
    println!(
        "    no instance remains; the demo cost {:.3} price units of emulated Flexus X time",
        billing["total_cost"].as_f64().unwrap_or(0.0)
    );
    say(&format!("done (the dashboard was at {}/)", stack.agent_url));
    Ok(())
}

/// Writes `text` to `path`, readable by the owner only.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

/// Prints the pool's cost report (with replayed recommendations) and the advisor's answer.
fn report_and_advice(stack: &Stack) -> anyhow::Result<()> {
    let client = stack.client();
    say("cost report of the pool (usage recorded by the agent, prices of the emulator)");
    let r = stack
        .block_on(client.pool_cost(NS, POOL, Some("24h")))
        .context("read the cost report")?;
    let f = &r
        .pools
        .first()
        .context("the pool has no usage yet")?
        .figures;
    println!(
        "    {:.2} instance-hours, {:.3} {}, idle {}%, {:.1} SLO-violation minutes, {} scaling actions",
        f.instance_hours,
        f.cost,
        r.currency,
        f.idle_pct.map_or("-".into(), |i| format!("{i:.1}")),
        f.violation_minutes,
        f.scaling_actions
    );
    for c in &r.pools[0].recommendations {
        println!("    recommendation: {}", c.summary);
    }
    if let Some(n) = &r.pools[0].recommendation_note {
        println!("    no recommendation: {n}");
    }
    say("asking the advisor (the emulator's DeepSeek stand-in) about the pool");
    let asked = stack
        .block_on(client.request_advice(NS, POOL))
        .context("ask the advisor")?;
    let answer = stack.wait_for(Duration::from_secs(90), "the advisor's answer", || {
        stack
            .block_on(client.list_advice(NS, POOL))
            .ok()?
            .into_iter()
            .find(|a| a.id == asked.id && a.state != flexus_api::AdviceState::Pending)
    });
    let state = serde_json::to_value(answer.state)?;
    println!(
        "    {}: {}",
        state.as_str().unwrap_or_default(),
        answer
            .explanation
            .as_deref()
            .or(answer.rejected.as_deref())
            .or(answer.error.as_deref())
            .unwrap_or("-")
    );
    if let Some(e) = &answer.effect {
        println!(
            "    replayed {:.1} h: cost {:.3} -> {:.3}, violation {:.0} -> {:.0} min (nothing applied)",
            e.hours,
            e.before.cost,
            e.after.cost,
            e.before.violation_minutes,
            e.after.violation_minutes
        );
    }
    Ok(())
}

/// Polls the emulator and the agent once per real second for `seconds`, printing a table.
fn watch(stack: &Stack, stop: &AtomicBool, seconds: f64) -> anyhow::Result<Vec<Row>> {
    let client = stack.client();
    let pb = ProgressBar::new(seconds.ceil() as u64);
    pb.set_style(
        ProgressStyle::with_template("    [{bar:40.cyan/blue}] {pos}/{len}s {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    // A hidden bar (output is not a terminal) prints nothing, so rows go to stdout then.
    let line = |text: String| {
        if pb.is_hidden() {
            println!("{text}")
        } else {
            pb.println(text)
        }
    };
    line(format!(
        "    {:>6} {:>8} {:>9} {:>9} {:>8} {:>6} {:>8} {:>8}",
        "time", "trace t", "load r/s", "cap r/s", "desired", "ready", "booting", "cost"
    ));
    let start = Instant::now();
    let mut rows = Vec::new();
    let mut last_print = -10.0;
    while start.elapsed().as_secs_f64() < seconds {
        if stop.load(Ordering::SeqCst) {
            pb.abandon();
            bail!("interrupted");
        }
        let load = stack.emulator_get(&format!("/_emulator/pools/{POOL}/load"));
        let billing = stack.emulator_get("/_emulator/billing");
        let status = stack
            .block_on(client.pool_status(NS, POOL))
            .context("read the pool status")?;
        let instances = load["instances"].as_array().cloned().unwrap_or_default();
        let booting = instances
            .iter()
            .filter(|i| matches!(i["lifecycle"].as_str(), Some("booting" | "warming")))
            .count() as u32;
        let real_s = start.elapsed().as_secs_f64();
        let row = Row {
            real_s,
            load_rps: load["current_rps"].as_f64().unwrap_or(0.0),
            capacity_rps: load["sample"]["capacity_rps"].as_f64().unwrap_or(0.0),
            desired: status.desired_size.unwrap_or(status.current_size),
            ready: status.ready_size,
            booting,
        };
        let trace_clock = TRACE_OFFSET_S + real_s * TIME_SCALE * SPEEDUP;
        let cost = billing["by_pool"][POOL].as_f64().unwrap_or(0.0);
        if real_s - last_print >= 4.0 {
            last_print = real_s;
            line(format!(
                "    {:>5.0}s {:>5}:{:02} {:>9.1} {:>9.1} {:>8} {:>6} {:>8} {:>8.3}",
                real_s,
                (trace_clock / 3600.0) as u32 % 24,
                (trace_clock / 60.0) as u32 % 60,
                row.load_rps,
                row.capacity_rps,
                row.desired,
                row.ready,
                row.booting,
                cost
            ));
        }
        pb.set_position(real_s as u64);
        pb.set_message(format!("ready {} / desired {}", row.ready, row.desired));
        rows.push(row);
        std::thread::sleep(Duration::from_millis(1000));
    }
    pb.finish_and_clear();
    Ok(rows)
}

fn write_chart(path: &std::path::Path, rows: &[Row]) -> anyhow::Result<()> {
    use plotters::prelude::*;
    let root = SVGBackend::new(path, (960, 480)).into_drawing_area();
    root.fill(&WHITE)
        .map_err(|e| anyhow::anyhow!("chart: {e}"))?;
    let t_max = rows.last().map(|r| r.real_s).unwrap_or(1.0).max(1.0);
    let y_max = rows
        .iter()
        .map(|r| r.load_rps.max(r.capacity_rps))
        .fold(1.0, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "flexus demo: offered load vs ready capacity (NASA-HTTP 1995, trace hours 4-22)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..t_max, 0.0..y_max)
        .map_err(|e| anyhow::anyhow!("chart: {e}"))?;
    chart
        .configure_mesh()
        .x_desc("real seconds")
        .y_desc("requests/s")
        .draw()
        .map_err(|e| anyhow::anyhow!("chart: {e}"))?;
    let mut line = |label: &str, color: RGBColor, value: fn(&Row) -> f64| {
        chart
            .draw_series(LineSeries::new(
                rows.iter().map(|r| (r.real_s, value(r))),
                color.stroke_width(2),
            ))
            .map_err(|e| anyhow::anyhow!("chart: {e}"))
            .map(|series| {
                series
                    .label(label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
            })
    };
    line("offered load", RED, |r| r.load_rps)?;
    line("capacity of ready instances", BLUE, |r| r.capacity_rps)?;
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| anyhow::anyhow!("chart: {e}"))?;
    root.present().map_err(|e| anyhow::anyhow!("chart: {e}"))?;
    Ok(())
}
