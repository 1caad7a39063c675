//! `robustness` — policies on series they were never tuned on: a fixed sample of the
//! M4-Hourly series (`data/traces/m4-hourly`) and every named trace at several fleet sizes.
//!
//! For each series and each monitoring setting (Cloud Eye 1-minute data 60 s late; 5-minute
//! data 120 s late) the default policy of the flavor family (and any `--candidate`), HPA and
//! AWS target tracking at their default target, and both baselines swept over their targets
//! are replayed. It counts how often each policy loses to HPA-default or AWS-TT-default on
//! violation minutes, on instance-hours, is dominated by one of them, or is dominated by any
//! single swept setting, side by side in one run.
//!
//! `--window eval` (the default) replays each whole series and scores its last third: the
//! figures to report. `--window tune` replays only the first two thirds of the named traces:
//! the figures to choose a candidate by. The M4 sample is held out — it is never replayed
//! with `--window tune`, so nothing is ever chosen on it.
//!
//! ```text
//! cargo run --release -p flexus-sim --example robustness -- [--window tune|eval] \
//!     [--candidate x1:FILE] [--candidate gpu:FILE] [--every 10] [--peaks 5,20,80] [--threads 2]
//! ```
//! `--every N` takes series H1, H(1+N), ... (default 10: 42 of the 414 series); `--every 1`
//! takes them all. Markdown goes to standard output.

use std::fmt::Write as _;
use std::sync::Mutex;

use flexus_sim::capacity::{self, Flavor};
use flexus_sim::frontier::{Family, Point, Split, baseline_points, eval_score};
use flexus_sim::policy::PolicyAutoscaler;
use flexus_sim::simulation::{SimulateOptions, default_policy, prepare_trace};
use flexus_sim::trace::{NAMED, Trace, load_m4_hourly};

/// The monitoring settings every series is replayed with: (name, period s, delay s).
const MONITORING: [(&str, f64, f64); 2] = [("60 s", 60.0, 60.0), ("300 s + 120 s", 300.0, 120.0)];

/// A policy replayed on the series: the flavor family's default, or a candidate file.
#[derive(Debug, Clone)]
struct Candidate {
    label: String,
    /// `true` for GPU flavors, `false` for x1.
    gpu: bool,
    policy: Option<flexus_policy::Policy>,
}

/// One policy on one series at one monitoring setting.
#[derive(Debug, Clone)]
struct Ours {
    label: String,
    point: Point,
    dominated_by_any: Option<Point>,
}

/// One series at one monitoring setting.
#[derive(Debug, Clone)]
struct Outcome {
    series: String,
    ours: Vec<Ours>,
    hpa: Point,
    tt: Point,
}

impl Outcome {
    fn loses_violations(&self, o: &Ours) -> bool {
        o.point.violation_min > self.hpa.violation_min.min(self.tt.violation_min)
    }
    fn loses_hours(&self, o: &Ours) -> bool {
        o.point.instance_hours > self.hpa.instance_hours.min(self.tt.instance_hours)
    }
    fn dominated_by_a_default(&self, o: &Ours) -> bool {
        self.hpa.dominates(&o.point) || self.tt.dominates(&o.point)
    }
    fn beats_both(&self, o: &Ours) -> bool {
        o.point.violation_min <= self.hpa.violation_min.min(self.tt.violation_min)
            && o.point.instance_hours < self.hpa.instance_hours.min(self.tt.instance_hours)
    }
}

/// Which part of each series is replayed and scored.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Window {
    /// The first two thirds only (to choose settings; the M4 sample is left out).
    Tune,
    /// The whole series, scored on its last third (to report).
    Eval,
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

/// Replays one prepared series with the policies of its flavor family and the baselines.
fn measure(
    full: &Trace,
    flavor: &Flavor,
    opts: &SimulateOptions,
    window: Window,
    candidates: &[Candidate],
) -> anyhow::Result<Outcome> {
    let whole = Split::of(full);
    let (trace, split) = match window {
        Window::Eval => (full.clone(), whole),
        Window::Tune => {
            let total_s = whole.tune.duration_s();
            let tune = whole.tune.clone();
            (
                whole.tune,
                Split {
                    tune,
                    eval_from_s: 0.0,
                    total_s,
                },
            )
        }
    };
    let points = baseline_points(&trace, &split, flavor, opts, &mut |_| {})?;
    let mut ours = Vec::new();
    for c in candidates.iter().filter(|c| c.gpu == (flavor.gpus > 0)) {
        let policy = match &c.policy {
            Some(p) => p.clone(),
            None => default_policy(flavor)?,
        };
        let mut a = PolicyAutoscaler::new(&c.label, policy)?;
        let (s, _) = eval_score(&trace, &split, flavor, &mut a, opts)?;
        let point = Point::from_score(Family::Policy, 1.0, true, &s);
        let dominated_by_any = points
            .iter()
            .filter(|p| p.dominates(&point))
            .min_by(|a, b| a.instance_hours.total_cmp(&b.instance_hours))
            .cloned();
        ours.push(Ours {
            label: c.label.clone(),
            point,
            dominated_by_any,
        });
    }
    let default = |f: Family| {
        points
            .iter()
            .find(|p| p.family == f && p.default)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no default {} point", f.name()))
    };
    Ok(Outcome {
        series: trace.name.clone(),
        hpa: default(Family::Hpa)?,
        tt: default(Family::AwsTt)?,
        ours,
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

/// One summary row per policy label found in `outcomes`.
fn summary(set: &str, outcomes: &[Outcome]) -> String {
    let mut labels: Vec<&str> = Vec::new();
    for o in outcomes.iter().flat_map(|o| &o.ours) {
        if !labels.contains(&o.label.as_str()) {
            labels.push(&o.label);
        }
    }
    let mut out = String::new();
    for label in labels {
        let rows: Vec<(&Outcome, &Ours)> = outcomes
            .iter()
            .filter_map(|o| o.ours.iter().find(|x| x.label == label).map(|x| (o, x)))
            .collect();
        let n = rows.len();
        let count =
            |f: &dyn Fn(&Outcome, &Ours) -> bool| rows.iter().filter(|(o, x)| f(o, x)).count();
        let mut ratios: Vec<f64> = rows
            .iter()
            .map(|(o, x)| x.point.instance_hours / o.hpa.instance_hours.max(1e-9))
            .collect();
        ratios.sort_by(f64::total_cmp);
        let median = ratios.get(n / 2).copied().unwrap_or(f64::NAN);
        let viol: f64 = rows.iter().map(|(_, x)| x.point.violation_min).sum();
        let hours: f64 = rows.iter().map(|(_, x)| x.point.instance_hours).sum();
        let _ = writeln!(
            out,
            "| {set} | {label} | {n} | {} | {} | {} | {} | {} | {median:.2} | {viol:.0} | {hours:.0} |",
            count(&|o, x| o.loses_violations(x)),
            count(&|o, x| o.loses_hours(x)),
            count(&|o, x| o.dominated_by_a_default(x)),
            count(&|_, x| x.dominated_by_any.is_some()),
            count(&|o, x| o.beats_both(x)),
        );
    }
    out
}

const SUMMARY_HEAD: &str = "| series, monitoring | policy | runs | more violation min than the better baseline default | more instance-hours than the cheaper baseline default | dominated by HPA- or AWS-TT-default | dominated by any single HPA / AWS TT setting | no more violations and fewer hours than both defaults | median inst-h ours / HPA-default | violation min, sum | instance-hours, sum |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";

fn detail(outcomes: &[Outcome]) -> String {
    let mut out = String::from(
        "| series | policy | viol. min / inst-h | HPA-default | AWS-TT-default | dominated by |\n|---|---|---|---|---|---|\n",
    );
    let p = |p: &Point| format!("{:.0} / {:.1}", p.violation_min, p.instance_hours);
    for o in outcomes {
        for x in &o.ours {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                o.series,
                x.label,
                p(&x.point),
                p(&o.hpa),
                p(&o.tt),
                x.dominated_by_any
                    .as_ref()
                    .map_or_else(|| "—".to_owned(), Point::label)
            );
        }
    }
    out
}

/// `x1:FILE` or `gpu:FILE`: a candidate policy for that flavor family, labelled by the
/// file's stem.
fn candidate(arg: &str) -> anyhow::Result<Candidate> {
    let (family, file) = arg
        .split_once(':')
        .ok_or_else(|| anyhow::anyhow!("--candidate takes x1:FILE or gpu:FILE, got {arg}"))?;
    let gpu = match family {
        "x1" => false,
        "gpu" => true,
        other => anyhow::bail!("--candidate family must be x1 or gpu, got {other}"),
    };
    let path = std::path::Path::new(file);
    let label = path
        .file_stem()
        .map_or_else(|| file.to_owned(), |s| s.to_string_lossy().into_owned());
    Ok(Candidate {
        label,
        gpu,
        policy: Some(flexus_sim::policy::load_policy_file(path)?),
    })
}

fn main() -> anyhow::Result<()> {
    let mut every = 10usize;
    let mut peaks = vec![5u32, 20, 80];
    let mut threads = 2usize;
    let mut window = Window::Eval;
    let mut candidates = vec![
        Candidate {
            label: "default-x1".into(),
            gpu: false,
            policy: None,
        },
        Candidate {
            label: "default-gpu".into(),
            gpu: true,
            policy: None,
        },
    ];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| anyhow::anyhow!("{a} needs a value"))
        };
        match a.as_str() {
            "--every" => every = value()?.parse()?,
            "--threads" => threads = value()?.parse()?,
            "--candidate" => candidates.push(candidate(&value()?)?),
            "--window" => {
                window = match value()?.as_str() {
                    "tune" => Window::Tune,
                    "eval" => Window::Eval,
                    other => anyhow::bail!("--window must be tune or eval, got {other}"),
                }
            }
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
    let started = std::time::Instant::now();
    let flavor = capacity::lookup("x1.2u.4g")?;
    // The M4 sample is held out: only ever reported, never replayed to choose a setting.
    let sample: Vec<Trace> = if window == Window::Eval {
        let dir = flexus_sim::trace::traces_dir()
            .unwrap_or_else(|| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/traces")
            })
            .join("m4-hourly");
        load_m4_hourly(&dir)?
            .into_iter()
            .step_by(every)
            .map(|t| t.scaled_to_fleet(&flavor, 40))
            .collect()
    } else {
        Vec::new()
    };
    let mut m4 = Vec::new();
    for (label, period, delay) in MONITORING.iter().filter(|_| !sample.is_empty()) {
        let opts = options(*period, *delay, 40);
        let jobs: Vec<&Trace> = sample.iter().collect();
        let outcomes = parallel(jobs, threads, |t| {
            measure(t, &flavor, &opts, window, &candidates)
        })?;
        eprintln!(
            "robustness: M4 at {label}: {:.0} s",
            started.elapsed().as_secs_f64()
        );
        m4.push((*label, outcomes));
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
            let mut o = measure(&t, &flavor, &opts, window, &candidates)?;
            o.series = format!("{name} @ {peak}");
            Ok(o)
        })?;
        eprintln!(
            "robustness: named traces at {label}: {:.0} s",
            started.elapsed().as_secs_f64()
        );
        named.push((label, outcomes));
    }
    let scored = match window {
        Window::Tune => "tuning windows (first two thirds)",
        Window::Eval => "evaluation windows (last third)",
    };
    println!("Scored on {scored}.\n");
    if !sample.is_empty() {
        println!(
            "M4-Hourly sample: every {every}th series from H1 ({} series), x1.2u.4g, 99.9th percentile at 40 instances.\n",
            sample.len()
        );
    }
    print!("{SUMMARY_HEAD}");
    for (label, o) in &m4 {
        print!("{}", summary(&format!("M4 sample, {label}"), o));
    }
    for (label, o) in &named {
        print!(
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
