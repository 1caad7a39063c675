//! Replay speed: one month of the per-minute NASA trace (Aug 3-31 1995, 41,000
//! minutes, 15 s ticks) through every baseline, median of 5 runs each.
//! Prints a markdown table. Run with `--release`.

use std::time::Instant;

use flexus_sim::simulation::{BASELINES, SimulateOptions, baseline, prepare_trace, run_all};

fn main() -> anyhow::Result<()> {
    let opts = SimulateOptions::default();
    let (trace, flavor) = prepare_trace("nasa-http-1995", &opts)?;
    println!(
        "Trace: {} ({} samples of {} s = {:.1} days), ticks of {} s.\n",
        trace.name,
        trace.rps.len(),
        trace.step_s,
        trace.duration_s() / 86_400.0,
        opts.tick_s
    );
    println!("| autoscaler | median wall time (ms) |\n|---|---:|");
    let mut total = 0.0;
    for name in BASELINES {
        let mut times = Vec::new();
        for _ in 0..5 {
            let a = baseline(name, &flavor, &opts)?;
            let start = Instant::now();
            let card = run_all(&trace, &flavor, vec![a], &opts, &mut |_| {})?;
            times.push(start.elapsed().as_secs_f64() * 1000.0);
            std::hint::black_box(card);
        }
        times.sort_by(f64::total_cmp);
        total += times[2];
        println!("| {name} | {:.1} |", times[2]);
    }
    let mut all = Vec::new();
    for _ in 0..5 {
        let list = BASELINES
            .iter()
            .map(|b| baseline(b, &flavor, &opts))
            .collect::<Result<Vec<_>, _>>()?;
        let start = Instant::now();
        let card = run_all(&trace, &flavor, list, &opts, &mut |_| {})?;
        all.push(start.elapsed().as_secs_f64() * 1000.0);
        std::hint::black_box(card);
    }
    all.sort_by(f64::total_cmp);
    println!(
        "| **all {} baselines, one call** | **{:.1}** |",
        BASELINES.len(),
        all[2]
    );
    println!("\n(sum of the per-baseline medians: {total:.1} ms)");
    Ok(())
}
