//! Library entry points of `flexus-agent simulate` / the `flexus-sim` example:
//! load a trace, scale it to a fleet, replay our policy and the requested
//! baselines, and return a [`Scorecard`].

use std::path::PathBuf;

use flexus_policy::Policy;
use serde::Serialize;

use crate::SimError;
use crate::baselines::{
    Hpa, HpaConfig, Oracle, PredictiveTargetTracking, StaticPeak, StepConfig, StepScaling,
    TargetTracking, TargetTrackingConfig,
};
use crate::bounds;
use crate::capacity::{self, Flavor};
use crate::policy::{PolicyAutoscaler, load_policy_file, parse_policy};
use crate::replay::{self, Autoscaler, Run, SimOptions};
use crate::scorecard::{LEGEND, Score, markdown_table, score};
use crate::trace::{self, Trace};

/// Every baseline name accepted by `--against`, in report order.
pub const BASELINES: &[&str] = &[
    "static-peak",
    "hpa",
    "aws-tt",
    "aws-step",
    "aws-predictive",
    "seed",
    "oracle",
];

/// The seed design as a flexus-policy policy (faithful constants, no HPA behaviour).
pub const SEED_POLICY: &str = include_str!("../policies/seed.json");

/// The default policy for x1 (CPU) pools.
pub const DEFAULT_X1_POLICY: &str = include_str!("../policies/sim-default-x1.json");
/// The default policy for GPU inference pools.
pub const DEFAULT_GPU_POLICY: &str = include_str!("../policies/sim-default-gpu.json");

/// The default policy for a flavor's family (GPU flavors get the GPU default).
pub fn default_policy(flavor: &Flavor) -> Result<Policy, SimError> {
    if flavor.gpus > 0 {
        parse_policy(DEFAULT_GPU_POLICY, "sim-default-gpu.json")
    } else {
        parse_policy(DEFAULT_X1_POLICY, "sim-default-x1.json")
    }
}

/// Options shared by every policy of a run (the same for all, so the comparison is fair).
#[derive(Debug, Clone, Serialize)]
pub struct SimulateOptions {
    /// Flavor; `None` = the trace's default flavor.
    pub flavor: Option<String>,
    /// The trace's 99.9th-percentile rate maps to this many instances.
    pub peak_instances: u32,
    /// Utilisation target of the HPA and AWS baselines (%); `None` = the
    /// flavor's utilisation at 85 % of its SLO rate (the same headroom for all).
    pub baseline_target_pct: Option<f64>,
    /// Simulation tick (s).
    pub tick_s: f64,
    /// Monitoring period (s): 60 (CES 1-minute) or 300 (5-minute).
    pub metric_period_s: f64,
    /// Monitoring publication delay (s).
    pub metric_delay_s: f64,
    /// Share of launches bought as spot (baselines; policies use their own split).
    pub spot_fraction: f64,
    /// Spot reclamations per instance-hour.
    pub spot_hazard_per_hour: f64,
    /// RNG seed.
    pub seed: u64,
    /// Replay at most this many hours from the trace start.
    pub max_hours: Option<f64>,
    /// Forecast bucket of the policy adapter (s): the prediction metric's peak per bucket is forecast.
    pub forecast_bucket_s: f64,
    /// Baselines to run next to the policy (names from [`BASELINES`]).
    pub against: Vec<String>,
    /// Score only the evaluation window (the last third; every run still replays the
    /// whole trace), as every published figure is.
    pub eval_window: bool,
}

impl Default for SimulateOptions {
    fn default() -> Self {
        SimulateOptions {
            flavor: None,
            peak_instances: 40,
            baseline_target_pct: None,
            tick_s: 15.0,
            metric_period_s: 60.0,
            metric_delay_s: 60.0,
            spot_fraction: 0.0,
            spot_hazard_per_hour: 0.0,
            seed: 1,
            max_hours: None,
            forecast_bucket_s: crate::policy::FORECAST_BUCKET_S,
            against: BASELINES.iter().map(|s| (*s).to_owned()).collect(),
            eval_window: false,
        }
    }
}

/// Arguments of `simulate`: a trace, a policy file and the shared options.
#[derive(Debug, Clone, Serialize)]
pub struct SimulateArgs {
    /// Trace name or CSV file.
    pub trace: String,
    /// Policy file (HCL or JSON); `None` = baselines only.
    pub policy: Option<PathBuf>,
    /// Options.
    pub options: SimulateOptions,
    /// Write an SVG chart here.
    pub chart: Option<PathBuf>,
}

/// The result for one trace.
#[derive(Debug, Clone, Serialize)]
pub struct Scorecard {
    /// Trace name.
    pub trace: String,
    /// Flavor of the pool.
    pub flavor: String,
    /// Requests/s one instance carries at the SLO.
    pub rps_at_slo: f64,
    /// Factor applied to the trace's rate.
    pub scale: f64,
    /// Utilisation target the HPA / AWS baselines used (%).
    pub baseline_target_pct: f64,
    /// Peak demand (instances).
    pub peak_demand: u32,
    /// Replayed hours.
    pub hours: f64,
    /// One score per policy, in run order.
    pub scores: Vec<Score>,
    /// The runs (for charts); not serialised.
    #[serde(skip)]
    pub runs: Vec<Run>,
}

impl Scorecard {
    /// Markdown: a header line, any warnings, the table and its legend.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "Trace `{}` — {:.1} h, flavor `{}` ({:.1} req/s per instance at the p95 SLO), rate × {:.4}, peak demand {} instances, baseline target {:.1} %.\n\n",
            self.trace,
            self.hours,
            self.flavor,
            self.rps_at_slo,
            self.scale,
            self.peak_demand,
            self.baseline_target_pct,
        );
        for w in self.warnings() {
            out.push_str(&format!("**warning:** {w}\n\n"));
        }
        out.push_str(&markdown_table(&self.scores));
        out.push('\n');
        out.push_str(LEGEND);
        out.push('\n');
        out
    }

    /// What makes this comparison weak: a window too quiet to tell autoscalers apart, or
    /// rows that are all the same.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.peak_demand <= QUIET_PEAK_DEMAND {
            w.push(format!(
                "the replayed window needs at most {} instance(s) at its peak: too quiet to tell \
                 autoscalers apart (--peak-instances scales the whole trace's peak, and this \
                 window is far below it). Replay more of the trace (--hours) or raise \
                 --peak-instances.",
                self.peak_demand
            ));
        }
        let same = |a: &Score, b: &Score| {
            a.instance_hours == b.instance_hours
                && a.slo_violation_min == b.slo_violation_min
                && a.actions_per_hour == b.actions_per_hour
        };
        if self.scores.len() > 1 && self.scores.windows(2).all(|p| same(&p[0], &p[1])) {
            w.push(
                "every autoscaler gave the same result: none of them ever acted differently in \
                 this window."
                    .into(),
            );
        }
        w
    }

    /// The score of a policy by name.
    pub fn get(&self, policy: &str) -> Option<&Score> {
        self.scores.iter().find(|s| s.policy == policy)
    }
}

/// A peak demand at or below this many instances is too quiet to compare autoscalers.
pub const QUIET_PEAK_DEMAND: u32 = 2;

/// Headroom of the default baseline target: the utilisation at this share of the SLO rate.
pub const BASELINE_HEADROOM: f64 = 0.85;

/// The baselines' utilisation target for a flavor (the option, or the default headroom).
pub fn baseline_target(flavor: &Flavor, opts: &SimulateOptions) -> f64 {
    opts.baseline_target_pct.unwrap_or_else(|| {
        let u = capacity::instance_metrics(flavor, BASELINE_HEADROOM * flavor.rps_at_slo());
        let pct = if flavor.gpus > 0 {
            u.gpu_pct
        } else {
            u.cpu_pct
        };
        (pct * 10.0).round() / 10.0
    })
}

/// Builds a baseline by name, for a pool of `flavor`.
pub fn baseline(
    name: &str,
    flavor: &Flavor,
    opts: &SimulateOptions,
) -> Result<Box<dyn Autoscaler>, SimError> {
    let t = baseline_target(flavor, opts);
    Ok(match name {
        "static-peak" => Box::new(StaticPeak::default()),
        "hpa" | "hpa-default" => Box::new(Hpa::new(HpaConfig::default_with_target(t))),
        "aws-tt" | "aws-target-tracking" => {
            Box::new(TargetTracking::new(TargetTrackingConfig::with_target(t)))
        }
        "aws-step" => Box::new(StepScaling::new(StepConfig::around(t - 10.0, 300.0))),
        "aws-predictive" | "aws-predictive+tt" => Box::new(PredictiveTargetTracking::new(
            TargetTrackingConfig::with_target(t),
        )),
        "seed" => Box::new(PolicyAutoscaler::new(
            "seed",
            parse_policy(SEED_POLICY, "seed.json")?,
        )?),
        "oracle" => Box::new(Oracle::default()),
        other => {
            return Err(SimError::BadOption {
                field: "against",
                reason: format!(
                    "unknown baseline {other:?} (known: {})",
                    BASELINES.join(", ")
                ),
            });
        }
    })
}

/// Loads and prepares a trace: fleet scaling and truncation.
pub fn prepare_trace(name: &str, opts: &SimulateOptions) -> Result<(Trace, Flavor), SimError> {
    let t = trace::load(name)?;
    let flavor_name = match &opts.flavor {
        Some(f) => f.clone(),
        None => trace::info(name)
            .map(|i| i.flavor.to_owned())
            .unwrap_or_else(|_| "x1.2u.4g".into()),
    };
    let flavor = capacity::lookup(&flavor_name)?;
    let mut t = t.scaled_to_fleet(&flavor, opts.peak_instances);
    if let Some(h) = opts.max_hours {
        if !(h.is_finite() && h > 0.0) {
            return Err(SimError::BadOption {
                field: "max_hours",
                reason: "must be positive".into(),
            });
        }
        let n = (h * 3600.0 / f64::from(t.step_s)).ceil() as usize;
        t = t.slice(0, n);
    }
    Ok((t, flavor))
}

/// The replay options the `simulate` options stand for.
pub fn sim_options(flavor: Flavor, opts: &SimulateOptions) -> SimOptions {
    let mut o = SimOptions::new(flavor);
    o.tick_s = opts.tick_s;
    o.metric_period_s = opts.metric_period_s;
    o.metric_delay_s = opts.metric_delay_s;
    o.spot_fraction = opts.spot_fraction;
    o.spot_hazard_per_hour = opts.spot_hazard_per_hour;
    o.seed = opts.seed;
    o
}

/// Replays a prepared trace with the given autoscalers and scores each.
pub fn run_all(
    trace: &Trace,
    flavor: &Flavor,
    autoscalers: Vec<Box<dyn Autoscaler>>,
    opts: &SimulateOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Scorecard, SimError> {
    let so = sim_options(flavor.clone(), opts);
    let mut scores = Vec::new();
    let mut runs = Vec::new();
    let from = if opts.eval_window {
        crate::frontier::Split::of(trace).eval_tick(so.tick_s)
    } else {
        0
    };
    for mut a in autoscalers {
        let mut r = replay::run(trace, a.as_mut(), &so)?;
        if from > 0 {
            r = r.window(from);
        }
        progress(&r.policy);
        scores.push(score(&r));
        runs.push(r);
    }
    let peak = runs
        .first()
        .map_or(0, |r| r.series.demand.iter().copied().max().unwrap_or(0));
    Ok(Scorecard {
        trace: trace.name.clone(),
        flavor: flavor.name.clone(),
        rps_at_slo: flavor.rps_at_slo(),
        scale: trace.scale,
        baseline_target_pct: baseline_target(flavor, opts),
        peak_demand: peak,
        hours: runs
            .first()
            .map_or(0.0, |r| r.series.demand.len() as f64 * so.tick_s / 3600.0),
        scores,
        runs,
    })
}

/// Replays a named trace (or CSV file) with `policy` and the option's
/// baselines. Fast enough for plan time on the short traces.
pub fn simulate_named_trace(
    trace: &str,
    policy: &Policy,
    opts: &SimulateOptions,
) -> Result<Scorecard, SimError> {
    let (t, flavor) = prepare_trace(trace, opts)?;
    let mut list: Vec<Box<dyn Autoscaler>> = vec![Box::new(
        PolicyAutoscaler::new("policy", policy.clone())?
            .with_forecast_bucket(opts.forecast_bucket_s),
    )];
    for b in &opts.against {
        list.push(baseline(b, &flavor, opts)?);
    }
    run_all(&t, &flavor, list, opts, &mut |_| {})
}

/// The whole `simulate` command: optional policy file, baselines, optional chart.
pub fn simulate(
    args: &SimulateArgs,
    progress: &mut dyn FnMut(&str),
) -> Result<Scorecard, SimError> {
    let (t, flavor) = prepare_trace(&args.trace, &args.options)?;
    let mut list: Vec<Box<dyn Autoscaler>> = Vec::new();
    if let Some(p) = &args.policy {
        let name = p
            .file_stem()
            .map_or_else(|| "policy".to_owned(), |s| s.to_string_lossy().into_owned());
        list.push(Box::new(
            PolicyAutoscaler::new(&name, load_policy_file(p)?)?
                .with_forecast_bucket(args.options.forecast_bucket_s),
        ));
    }
    for b in &args.options.against {
        list.push(baseline(b, &flavor, &args.options)?);
    }
    if list.is_empty() {
        return Err(SimError::BadOption {
            field: "against",
            reason: "nothing to simulate: give a policy or at least one baseline".into(),
        });
    }
    let card = run_all(&t, &flavor, list, &args.options, progress)?;
    if let Some(path) = &args.chart {
        write_chart(path, &card, &t)?;
    }
    Ok(card)
}

#[cfg(feature = "charts")]
fn write_chart(path: &std::path::Path, card: &Scorecard, t: &Trace) -> Result<(), SimError> {
    crate::chart::write_svg(path, card, t)
}

#[cfg(not(feature = "charts"))]
fn write_chart(path: &std::path::Path, _: &Scorecard, _: &Trace) -> Result<(), SimError> {
    Err(SimError::Chart {
        path: path.to_owned(),
        reason: "this build of flexus-sim has no charts (feature `charts`)".into(),
    })
}

/// Parses policy text, panicking with the diagnostics (for tests and examples only).
#[doc(hidden)]
pub fn parse_policy_for_tests(text: &str) -> Policy {
    match parse_policy(text, "test policy") {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

/// Whether any autoscaler could beat every named rival of `card` on both
/// violation time and instance-hours (see [`crate::bounds`]). `None` when a
/// rival did not run.
pub fn attainable(
    card: &Scorecard,
    flavor: &Flavor,
    opts: &SimulateOptions,
    rivals: &[&str],
) -> Option<bounds::Attainable> {
    let so = sim_options(flavor.clone(), opts);
    let mut stats = Vec::with_capacity(rivals.len());
    for name in rivals {
        let run = card.runs.iter().find(|r| r.policy == *name)?;
        let violating = run.series.slo_met.iter().filter(|m| !**m).count();
        stats.push((violating, card.get(name)?.instance_hours));
    }
    let demand = &card.runs.first()?.series.demand;
    let input = bounds::BoundInput {
        demand,
        tick_s: so.tick_s,
        lead_s: so.lead_s(),
        initial: replay::initial_ready(demand, &so),
    };
    bounds::Attainable::against(&input, &stats)
}
