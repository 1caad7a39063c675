//! How many pools one agent reconciles at a 15 s interval against the emulator, with
//! the agent's CPU and resident memory, and the time from a load step to the create
//! call.
//!
//! The agent runs as its own process (the release binary), the emulator in this
//! process, so the agent's CPU and RSS are read from `/proc/<pid>` alone.
//!
//! ```text
//! cargo bench -p flexus-agent --bench pools -- [POOLS] [MEASURE_SECONDS]
//! ```

#[path = "../tests/common/mod.rs"]
mod common;
mod harness;

use std::time::{Duration, Instant};

use common::{Emu, emulator_config, metric_value, scrape};
use flexus_api::{PoolSpec, Precondition};
use flexus_emulator::EmulatorConfig;
use harness::{bench_args, for_each_pool, pool_name, quota_for, small_pool, start_agent};
use serde_json::json;

fn proc_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // fields after ')' start at index 0 = state; utime = 11, stime = 12
    (ticks(11) + ticks(12)) / 100.0
}

fn proc_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

async fn passes(url: &str) -> f64 {
    metric_value(
        &scrape(url, None).await,
        "flexus_agent_reconcile_passes_total ",
    )
}

fn spec() -> PoolSpec {
    small_pool(1, 3, 2)
}

fn policy(pool: &str) -> flexus_api::PolicySpec {
    common::policy(
        pool,
        json!({
            "strategy": "target_tracking",
            "evaluation_interval": "15s",
            "bounds": {"min": 1, "max": 3},
            "metrics": [{"name": "cpu", "kind": "cpu",
                "source": {"type": "cloud_eye", "namespace": "SYS.ECS", "metric_name": "cpu_util"},
                "target": 60}],
            "scale_out": {"stabilisation_window": "0s", "cooldown": "0s"}
        }),
    )
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let Some(args) = bench_args("pools", "cargo bench -p flexus-agent --bench pools") else {
        return;
    };
    let pools: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let measure: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(60);

    // Emulator in this process.
    let emu = Emu::serve(EmulatorConfig {
        boot_seconds: Some(2.0),
        metric_interval_s: 15,
        quota: quota_for(pools),
        ..emulator_config()
    })
    .await;

    // Agent as its own process.
    let dir = tempfile::tempdir().unwrap();
    let (mut agent, client) = start_agent(
        dir.path(),
        &emu.url,
        "concurrency = 256\ndefault_interval = \"15s\"\njob_poll = \"2s\"",
        "[metrics.cloud_eye]\nperiod = 1\nlookback = \"2m\"",
        "warn",
    )
    .await;
    let pid = agent.child.id();
    let url = agent.url.clone();

    // Declare the pools (and one policy each).
    let t = Instant::now();
    for_each_pool(pools, |name| {
        let c = client.clone();
        async move {
            c.put_pool("bench", &name, &spec(), Precondition::None)
                .await
                .unwrap();
            c.put_policy(
                "bench",
                &format!("{name}-policy"),
                &policy(&name),
                Precondition::None,
            )
            .await
            .unwrap();
        }
    })
    .await;
    let declare_s = t.elapsed().as_secs_f64();
    eprintln!("declared {pools} pools in {declare_s:.1} s");

    // Warm up: every pool gets its first instance and a couple of passes.
    let warm = Duration::from_secs(45);
    eprintln!("warming up for {warm:?}");
    tokio::time::sleep(warm).await;

    let p0 = passes(&url).await;
    let c0 = proc_cpu_seconds(pid);
    let e0 = proc_cpu_seconds(std::process::id());
    let t0 = Instant::now();
    let mut rss_max: f64 = 0.0;
    while t0.elapsed() < Duration::from_secs(measure) {
        rss_max = rss_max.max(proc_rss_mib(pid));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let p1 = passes(&url).await;
    let c1 = proc_cpu_seconds(pid);
    let e1 = proc_cpu_seconds(std::process::id());
    let secs = t0.elapsed().as_secs_f64();
    let per_15s = (p1 - p0) / secs * 15.0;
    let cpu = (c1 - c0) / secs;
    let emu_cpu = (e1 - e0) / secs;

    // Load step on one pool: time from the step to the create call.
    let target = &pool_name(0);
    let step_at = emu.now_ms();
    emu.control(
        reqwest::Method::POST,
        "/_emulator/workload",
        json!({"pool": target, "shape": {"kind": "constant", "rps": 200.0}}),
    )
    .await;
    let mut to_create = None;
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        let ops = client.operations("bench", target).await.unwrap_or_default();
        if let Some(o) = ops.iter().find(|o| {
            o.kind == flexus_api::OperationKind::ScaleOut
                && flexus_agent::clock::parse_rfc3339(&o.created_at).unwrap_or(0) > step_at
        }) {
            to_create = flexus_agent::clock::parse_rfc3339(&o.created_at)
                .map(|t| (t - step_at) as f64 / 1000.0);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    common::process::kill9(&mut agent);
    println!("pools: {pools}");
    println!("declared (put_pool + put_policy, 32 at a time): {declare_s:.1} s");
    println!(
        "reconcile passes per 15 s: {per_15s:.0} ({:.0}% of pools)",
        per_15s / pools as f64 * 100.0
    );
    println!("agent CPU: {cpu:.2} cores");
    println!("agent RSS (max): {rss_max:.0} MiB");
    println!(
        "agent CPU per pass: {:.2} ms",
        if p1 > p0 {
            (c1 - c0) / (p1 - p0) * 1000.0
        } else {
            0.0
        }
    );
    println!("emulator process CPU (emulator + this bench's sampling): {emu_cpu:.2} cores");
    match to_create {
        Some(s) => println!("load step -> create call: {s:.1} s"),
        None => println!("load step -> create call: none within 90 s"),
    }
}
