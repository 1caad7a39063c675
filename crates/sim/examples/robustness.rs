//! `robustness` — the default policy on series it was never tuned on: a fixed sample of the
//! M4-Hourly series (`data/traces/m4-hourly`) and every named trace at other fleet sizes.
//! Only a report: nothing here chooses a setting.
//!
//! For each series and each monitoring setting (Cloud Eye 1-minute data 60 s late; 5-minute
//! data 120 s late) the default policy of the flavor family, HPA and AWS target tracking at
//! their default target, and both baselines swept over their targets are replayed on the whole
//! series and scored on its evaluation window (the last third). It counts how often the
//! default loses to HPA-default or AWS-TT-default on violation minutes, on instance-hours, is
//! dominated by one of them, or is dominated by any single swept setting.
//!
//! ```text
//! cargo run --release -p flexus-sim --example robustness -- [--every 10] [--peaks 5,20,80] [--threads 2]
//! ```
//! `--every N` takes series H1, H(1+N), ... (default 10: 42 of the 414 series); `--every 1`
//! takes them all. Markdown goes to standard output.

use std::fmt::Write as _;
use std::sync::Mutex;

use flexus_sim::capacity::{self, Flavor};
use flexus_sim::cli::{SimulateOptions, default_policy, prepare_trace};
use flexus_sim::frontier::{Family, Point, Split, baseline_points, eval_score};
use flexus_sim::policy::PolicyAutoscaler;
use flexus_sim::trace::{NAMED, Trace, load_m4_hourly};

/// The monitoring settings every series is replayed with: (name, period s, delay s).
const MONITORING: [(&str, f64, f64); 2] = [("60 s", 60.0, 60.0), ("300 s + 120 s", 300.0, 120.0)];

/// One series at one monitoring setting.
#[derive(Debug, Clone)]
struct Outcome {
    series: String,
    ours: Point,
    hpa: Point,
    tt: Point,
    dominated_by_any: Option<Point>,
}

impl Outcome {
    fn loses_violations(&self) -> bool {
        self.ours.violation_min > self.hpa.violation_min.min(self.tt.violation_min)
    }
    fn loses_hours(&self) -> bool {
        self.ours.instance_hours > self.hpa.instance_hours.min(self.tt.instance_hours)
    }
    fn dominated_by_a_default(&self) -> bool {
        self.hpa.dominates(&self.ours) || self.tt.dominates(&self.ours)
    }
    fn beats_both(&self) -> bool {
        self.ours.violation_min <= self.hpa.violation_min.min(self.tt.violation_min)
            && self.ours.instance_hours < self.hpa.instance_hours.min(self.tt.instance_hours)
    }
}

fn options(period: f64, delay: f64, peak: u32) -> SimulateOptions {
    SimulateOptions {
        metric_period_s: period,
        metric_delay_s: delay,
        peak_instances: peak,
        against: Vec::new(),
        ..SimulateOptions::default()
    }
}

/// Replays one prepared series with the default and the baselines.
fn measure(trace: &Trace, flavor: &Flavor, opts: &SimulateOptions) -> anyhow::Result<Outcome> {
    let split = Split::of(trace);
    let policy = default_policy(flavor)?;
    let mut ours = PolicyAutoscaler::new("default", policy)?;
    let (s, _) = eval_score(trace, &split, flavor, &mut ours, opts)?;
    let ours = Point::from_score(Family::Policy, 1.0, true, &s);
    let points = baseline_points(trace, &split, flavor, opts, &mut |_| {})?;
    let default = |f: Family| {
        points
            .iter()
            .find(|p| p.family == f && p.default)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no default {} point", f.name()))
    };
    let dominated_by_any = points
        .iter()
        .filter(|p| p.dominates(&ours))
        .min_by(|a, b| a.instance_hours.total_cmp(&b.instance_hours))
        .cloned();
    Ok(Outcome {
        series: trace.name.clone(),
        hpa: default(Family::Hpa)?,
        tt: default(Family::AwsTt)?,
        ours,
        dominated_by_any,
    })
}

/// Runs `jobs` on `threads` threads, keeping the input order.
fn parallel<T: Send, R: Send>(
    jobs: Vec<T>,
    threads: usize,
    f: impl Fn(T) -> anyhow::Result<R> + Sync,
) -> anyhow::Result<Vec<R>> {
    let queue = Mutex::new(jobs.into_iter().enumerate().collect::<Vec<_>>());
    let done = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                loop {
                    let Some((i, job)) = queue.lock().ok().and_then(|mut q| q.pop()) else {
                        break;
                    };
                    let r = f(job);
                    if let Ok(mut d) = done.lock() {
                        d.push((i, r));
                    }
                }
            });
        }
    });
    let mut done = done
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a worker panicked"))?;
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

fn summary(label: &str, outcomes: &[Outcome]) -> String {
    let n = outcomes.len();
    let count = |f: &dyn Fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
    let mut ratios: Vec<f64> = outcomes
        .iter()
        .map(|o| o.ours.instance_hours / o.hpa.instance_hours.max(1e-9))
        .collect();
    ratios.sort_by(f64::total_cmp);
    let median = ratios.get(n / 2).copied().unwrap_or(f64::NAN);
    format!(
        "| {label} | {n} | {} | {} | {} | {} | {} | {median:.2} |",
        count(&|o| o.loses_violations()),
        count(&|o| o.loses_hours()),
        count(&|o| o.dominated_by_a_default()),
        count(&|o| o.dominated_by_any.is_some()),
        count(&|o| o.beats_both()),
    )
}

const SUMMARY_HEAD: &str = "| series, monitoring | runs | more violation min than the better baseline default | more instance-hours than the cheaper baseline default | dominated by HPA- or AWS-TT-default | dominated by any single HPA / AWS TT setting | no more violations and fewer hours than both defaults | median inst-h ours / HPA-default |\n|---|---:|---:|---:|---:|---:|---:|---:|\n";

fn detail(outcomes: &[Outcome]) -> String {
    let mut out = String::from(
        "| series | ours: viol. min / inst-h | HPA-default | AWS-TT-default | dominated by |\n|---|---|---|---|---|\n",
    );
    for o in outcomes {
        let p = |p: &Point| format!("{:.0} / {:.1}", p.violation_min, p.instance_hours);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            o.series,
            p(&o.ours),
            p(&o.hpa),
            p(&o.tt),
            o.dominated_by_any
                .as_ref()
                .map_or_else(|| "—".to_owned(), Point::label)
        );
    }
    out
}

fn main() -> anyhow::Result<()> {
    let mut every = 10usize;
    let mut peaks = vec![5u32, 20, 80];
    let mut threads = 2usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| anyhow::anyhow!("{a} needs a value"))
        };
        match a.as_str() {
            "--every" => every = value()?.parse()?,
            "--threads" => threads = value()?.parse()?,
            "--peaks" => {
                peaks = value()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    anyhow::ensure!(every >= 1, "--every must be at least 1");
    let dir = flexus_sim::trace::traces_dir()
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/traces")
        })
        .join("m4-hourly");
    let flavor = capacity::lookup("x1.2u.4g")?;
    let sample: Vec<Trace> = load_m4_hourly(&dir)?
        .into_iter()
        .step_by(every)
        .map(|t| t.scaled_to_fleet(&flavor, 40))
        .collect();
    let started = std::time::Instant::now();
    let mut m4 = Vec::new();
    for (label, period, delay) in MONITORING {
        let opts = options(period, delay, 40);
        let jobs: Vec<&Trace> = sample.iter().collect();
        let outcomes = parallel(jobs, threads, |t| measure(t, &flavor, &opts))?;
        eprintln!(
            "robustness: M4 at {label}: {:.0} s",
            started.elapsed().as_secs_f64()
        );
        m4.push((label, outcomes));
    }
    let mut named = Vec::new();
    for (label, period, delay) in MONITORING {
        let jobs: Vec<(&str, u32)> = NAMED
            .iter()
            .flat_map(|t| peaks.iter().map(move |&p| (t.name, p)))
            .collect();
        let outcomes = parallel(jobs, threads, |(name, peak)| {
            let opts = options(period, delay, peak);
            let (t, flavor) = prepare_trace(name, &opts)?;
            let mut o = measure(&t, &flavor, &opts)?;
            o.series = format!("{name} @ {peak}");
            Ok(o)
        })?;
        eprintln!(
            "robustness: named traces at {label}: {:.0} s",
            started.elapsed().as_secs_f64()
        );
        named.push((label, outcomes));
    }
    println!(
        "M4-Hourly sample: every {every}th series from H1 ({} series), x1.2u.4g, 99.9th percentile at 40 instances.\n",
        sample.len()
    );
    print!("{SUMMARY_HEAD}");
    for (label, o) in &m4 {
        println!("{}", summary(&format!("M4 sample, {label}"), o));
    }
    for (label, o) in &named {
        println!(
            "{}",
            summary(&format!("named traces × peaks {peaks:?}, {label}"), o)
        );
    }
    println!();
    for (label, o) in named.iter().chain(&m4) {
        println!("##### {label}\n\n{}", detail(o));
    }
    eprintln!(
        "robustness: {:.0} s in all",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
