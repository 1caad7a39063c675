//! `frontier-all` — the goals of docs/benchmarks.md § Frontier scorecard, on every named trace
//! (or the traces named on the command line), all figures from evaluation windows (the last
//! third of each trace):
//!
//! 1. the cost/SLO frontier at a 60 s metric period: per family the fewest instance-hours within
//!    0.1 % and 1 % violation budgets, and the policy tuned by `tune` on the tuning window at each
//!    budget against the best baseline setting (goal: ≤ 0.9×), with the lower bound;
//! 2. whether any single HPA / AWS TT setting dominates the default, at 60 s and 300 s periods;
//! 3. robustness: 300 s period with 120 s delay, default vs HPA-default;
//! 4. `tune` (1 % budget) on the tuning window against both baselines' defaults.
//!
//! ```text
//! cargo run --release -p flexus-sim --example frontier-all -- docs/benchmarks [trace...]
//! ```
//! Charts go to `<dir>/frontier-<trace>.svg`; markdown to standard output.

use std::fmt::Write as _;
use std::time::Instant;

use flexus_sim::capacity::Flavor;
use flexus_sim::frontier::{BUDGETS, Family, Frontier, Split, sweep, write_svg};
use flexus_sim::simulation::{SimulateOptions, default_policy, prepare_trace};
use flexus_sim::trace::{NAMED, Trace};
use flexus_sim::tune::{TuneRequest, TuneResult, tune};

struct TraceResult {
    name: String,
    f60: Frontier,
    f300: Frontier,
    robust: (f64, f64, f64, f64),
    tuned: Vec<(TuneResult, f64)>,
}

fn opts(period: f64, delay: f64) -> SimulateOptions {
    SimulateOptions {
        metric_period_s: period,
        metric_delay_s: delay,
        against: Vec::new(),
        ..SimulateOptions::default()
    }
}

fn run_trace(name: &str, dir: &std::path::Path) -> anyhow::Result<TraceResult> {
    let o60 = opts(60.0, 60.0);
    let (t, flavor): (Trace, Flavor) = prepare_trace(name, &o60)?;
    let policy = default_policy(&flavor)?;
    eprintln!("frontier-all: {name}: sweep at 60 s");
    let f60 = sweep(&t, &flavor, &policy, &o60, &mut |_| {})?;
    write_svg(&dir.join(format!("frontier-{name}.svg")), &f60)?;
    eprintln!("frontier-all: {name}: sweep at 300 s");
    let f300 = sweep(&t, &flavor, &policy, &opts(300.0, 60.0), &mut |_| {})?;
    eprintln!("frontier-all: {name}: 300 s + 120 s delay");
    let o_slow = opts(300.0, 120.0);
    let split = Split::of(&t);
    let mut ours = flexus_sim::policy::PolicyAutoscaler::new("default", policy.clone())?;
    let (s_ours, _) = flexus_sim::frontier::eval_score(&t, &split, &flavor, &mut ours, &o_slow)?;
    let mut hpa = flexus_sim::simulation::baseline("hpa", &flavor, &o_slow)?;
    let (s_hpa, _) = flexus_sim::frontier::eval_score(&t, &split, &flavor, hpa.as_mut(), &o_slow)?;
    let robust = (
        s_ours.instance_hours,
        s_ours.slo_violation_min,
        s_hpa.instance_hours,
        s_hpa.slo_violation_min,
    );
    let mut tuned = Vec::new();
    for &b in &BUDGETS {
        eprintln!("frontier-all: {name}: tune at {:.1} %", b * 100.0);
        let started = Instant::now();
        let req = TuneRequest {
            options: o60.clone(),
            ..TuneRequest::new(t.clone(), flavor.clone(), policy.clone(), b)
        };
        let r = tune(&req)?;
        tuned.push((r, started.elapsed().as_secs_f64()));
    }
    Ok(TraceResult {
        name: name.to_owned(),
        f60,
        f300,
        robust,
        tuned,
    })
}

fn best_baseline(f: &Frontier, budget: f64) -> Option<(f64, String)> {
    [Family::Hpa, Family::AwsTt]
        .iter()
        .filter_map(|&fam| f.best(fam, budget).map(|p| (p.instance_hours, fam, p.knob)))
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(h, fam, k)| (h, format!("{} {k:.0} %", fam.name())))
}

fn frontier_table(results: &[TraceResult]) -> String {
    let mut out = String::from(
        "| trace | budget | tuned policy: viol. min / inst-h | best baseline within budget | tuned / best | ≤ 0.9×? | policy sweep best inst-h | lower bound inst-h |\n|---|---|---|---|---:|---|---:|---:|\n",
    );
    for r in results {
        for (i, &b) in BUDGETS.iter().enumerate() {
            let budget = r.f60.budget_minutes(b);
            let (t, _) = &r.tuned[i];
            let a = &t.validation.1;
            let base = best_baseline(&r.f60, budget);
            let (ratio, met) = match &base {
                Some((h, _)) if a.violation_min <= budget + 1e-9 => {
                    let x = a.instance_hours / h;
                    (format!("{x:.2}"), if x <= 0.9 { "yes" } else { "**no**" })
                }
                Some(_) => ("—".into(), "**no** (tuned over budget)"),
                None => ("—".into(), "no baseline meets it"),
            };
            let _ = writeln!(
                out,
                "| {} | {:.1} % ({:.0} min) | {:.0} / {:.1} | {} | {} | {} | {} | {:.1} |",
                r.name,
                b * 100.0,
                budget,
                a.violation_min,
                a.instance_hours,
                base.as_ref()
                    .map_or_else(|| "none".to_owned(), |(h, s)| format!("{h:.1} ({s})")),
                ratio,
                met,
                r.f60.best_ours(budget).map_or_else(
                    || "none".to_owned(),
                    |p| format!("{:.1} ({})", p.instance_hours, p.family.name())
                ),
                r.f60.bounds.get(i).copied().unwrap_or(f64::NAN),
            );
        }
    }
    out
}

fn dominance(f: &Frontier) -> String {
    let d = f.dominating_default();
    if d.is_empty() {
        "not dominated".into()
    } else {
        let list: Vec<String> = d.iter().map(|p| p.label()).collect();
        format!("**dominated** by {}", list.join(", "))
    }
}

fn defaults_table(results: &[TraceResult]) -> String {
    let mut out = String::from(
        "| trace | default at 60 s: viol. min / inst-h | at 60 s | default at 300 s: viol. min / inst-h | at 300 s | 300 s + 120 s delay: default vs HPA (viol. min / inst-h) | inst-h ratio | ≤ 1.5× with no more violations? |\n|---|---|---|---|---|---|---:|---|\n",
    );
    for r in results {
        let d = |f: &Frontier| {
            f.default_of(Family::Policy).map_or_else(String::new, |p| {
                format!("{:.0} / {:.1}", p.violation_min, p.instance_hours)
            })
        };
        let (oh, ov, hh, hv) = r.robust;
        let ratio = oh / hh.max(1e-9);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {ov:.0} / {oh:.1} vs {hv:.0} / {hh:.1} | {ratio:.2} | {} |",
            r.name,
            d(&r.f60),
            dominance(&r.f60),
            d(&r.f300),
            dominance(&r.f300),
            if ratio <= 1.5 && ov <= hv {
                "yes"
            } else {
                "**no**"
            }
        );
    }
    out
}

fn tune_table(results: &[TraceResult]) -> String {
    let mut out = String::from(
        "| trace | tuned (1 %) on evaluation: viol. min / inst-h | HPA default | AWS TT default | beats both on both? | tune wall s (60 replays) |\n|---|---|---|---|---|---:|\n",
    );
    for r in results {
        let Some((t, secs)) = r.tuned.get(1) else {
            continue;
        };
        let a = &t.validation.1;
        let h = r.f60.default_of(Family::Hpa);
        let w = r.f60.default_of(Family::AwsTt);
        let beats = [h, w].iter().all(|p| {
            p.is_some_and(|p| {
                a.violation_min < p.violation_min && a.instance_hours < p.instance_hours
            })
        });
        let cell = |p: Option<&flexus_sim::frontier::Point>| {
            p.map_or_else(String::new, |p| {
                format!("{:.0} / {:.1}", p.violation_min, p.instance_hours)
            })
        };
        let _ = writeln!(
            out,
            "| {} | {:.0} / {:.1} | {} | {} | {} | {secs:.1} |",
            r.name,
            a.violation_min,
            a.instance_hours,
            cell(h),
            cell(w),
            if beats { "yes" } else { "**no**" }
        );
    }
    out
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().unwrap_or_else(|| "docs/benchmarks".into()));
    std::fs::create_dir_all(&dir)?;
    let names: Vec<String> = args.collect();
    let names: Vec<String> = if names.is_empty() {
        NAMED.iter().map(|t| t.name.to_owned()).collect()
    } else {
        names
    };
    let mut results = Vec::new();
    for n in &names {
        results.push(run_trace(n, &dir)?);
    }
    println!("#### Frontier: tuned policy vs the best baseline setting within each budget\n");
    println!("{}", frontier_table(&results));
    println!(
        "#### The default against every single baseline setting, and with 5-minute monitoring\n"
    );
    println!("{}", defaults_table(&results));
    println!(
        "#### `tune` on the tuning window against the baselines' defaults on the evaluation window\n"
    );
    println!("{}", tune_table(&results));
    for r in &results {
        println!("{}", r.f60.markdown());
        if let Some((t, _)) = r.tuned.get(1) {
            println!(
                "`tune --budget 0.01` on {}:\n\n```text\n{}```\n",
                r.name,
                t.text()
            );
        }
    }
    Ok(())
}
