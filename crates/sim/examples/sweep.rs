//! Parameter sweep for candidate default policies: replays every named trace of a
//! flavor family with HPA-default, AWS target tracking and the oracle once, then each
//! given policy file, and prints one line per policy × trace (violation minutes,
//! instance-hours, whether it beats both baselines on both) plus a summary line.
//!
//! `cargo run --release -p flexus-sim --example sweep -- <x1|gpu> <policy.json>...`
//! (`SWEEP_TRACES=nasa-http-1995,nyc-taxi` restricts the traces; `SWEEP_BUCKET=peak`
//! forecasts the peak of each 15-minute bucket instead of its mean; `SWEEP_DUMP=<dir>`
//! writes each run's per-tick series as `<dir>/<trace>.<policy>.csv` with the columns
//! load_rps, demand, supply, billed, slo_met, for looking at where a policy loses.)

use flexus_sim::policy::{PolicyAutoscaler, load_policy_file};
use flexus_sim::replay::Autoscaler;
use flexus_sim::simulation::{SimulateOptions, baseline, prepare_trace, run_all};
use flexus_sim::trace::NAMED;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let family = args.next().unwrap_or_else(|| "x1".into());
    let files: Vec<std::path::PathBuf> = args.map(Into::into).collect();
    let only: Option<Vec<String>> = std::env::var("SWEEP_TRACES")
        .ok()
        .map(|s| s.split(',').map(str::to_owned).collect());
    let opts = SimulateOptions::default();
    let mut results: Vec<Vec<String>> = vec![Vec::new(); files.len()];
    let mut wins = vec![0u32; files.len()];
    let mut n_traces = 0;
    for info in NAMED {
        let gpu = info.flavor.starts_with('p');
        if gpu != (family == "gpu") {
            continue;
        }
        if let Some(o) = &only
            && !o.iter().any(|n| n == info.name)
        {
            continue;
        }
        n_traces += 1;
        let (trace, flavor) = prepare_trace(info.name, &opts)?;
        let base: Vec<Box<dyn Autoscaler>> = vec![
            baseline("hpa", &flavor, &opts)?,
            baseline("aws-tt", &flavor, &opts)?,
            baseline("oracle", &flavor, &opts)?,
        ];
        let card = run_all(&trace, &flavor, base, &opts, &mut |_| {})?;
        for r in &card.runs {
            dump(info.name, &r.policy, r)?;
        }
        let h = card.get("hpa-default").cloned().expect("hpa");
        let t = card.get("aws-target-tracking").cloned().expect("tt");
        let or = card.get("oracle").cloned().expect("oracle");
        println!(
            "{:<20} hpa {:>6.0}/{:>9.1}  tt {:>6.0}/{:>9.1}  oracle {:>9.1}",
            info.name,
            h.slo_violation_min,
            h.instance_hours,
            t.slo_violation_min,
            t.instance_hours,
            or.instance_hours
        );
        for (k, f) in files.iter().enumerate() {
            let a: Box<dyn Autoscaler> = Box::new(
                PolicyAutoscaler::new("ours", load_policy_file(f)?)?
                    .with_forecast_bucket(opts.forecast_bucket_s),
            );
            let c = run_all(&trace, &flavor, vec![a], &opts, &mut |_| {})?;
            if let Some(r) = c.runs.first() {
                let stem = f
                    .file_stem()
                    .map(|s| s.to_string_lossy())
                    .unwrap_or_default();
                dump(info.name, &stem, r)?;
            }
            let o = &c.scores[0];
            let vb = o.slo_violation_min < h.slo_violation_min.min(t.slo_violation_min);
            let ib = o.instance_hours < h.instance_hours.min(t.instance_hours);
            if vb && ib {
                wins[k] += 1;
            }
            results[k].push(format!(
                "{}:{:.0}/{:.0}{}{}({:+.0}%)",
                &info.name[..4],
                o.slo_violation_min,
                o.instance_hours,
                if vb { "v" } else { "-" },
                if ib { "i" } else { "-" },
                100.0 * (o.instance_hours / or.instance_hours - 1.0)
            ));
        }
    }
    for (k, f) in files.iter().enumerate() {
        println!(
            "{}/{} {}  {}",
            wins[k],
            n_traces,
            f.file_stem()
                .map(|s| s.to_string_lossy())
                .unwrap_or_default(),
            results[k].join("  ")
        );
    }
    Ok(())
}

/// Writes a run's per-tick series when `SWEEP_DUMP` names a directory.
fn dump(trace: &str, policy: &str, r: &flexus_sim::replay::Run) -> anyhow::Result<()> {
    let Ok(dir) = std::env::var("SWEEP_DUMP") else {
        return Ok(());
    };
    use std::fmt::Write as _;
    let s = &r.series;
    let mut out = String::from("load_rps,demand,supply,billed,slo_met\n");
    for k in 0..s.demand.len() {
        writeln!(
            out,
            "{},{},{},{},{}",
            s.load_rps[k],
            s.demand[k],
            s.supply[k],
            s.billed[k],
            u8::from(s.slo_met[k])
        )?;
    }
    std::fs::write(format!("{dir}/{trace}.{policy}.csv"), out)?;
    Ok(())
}
