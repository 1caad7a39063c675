//! The cost/SLO frontier: every autoscaler family swept along its main knob,
//! each run scored on the trace's evaluation window, and per family the fewest
//! instance-hours (and cost) that stay within a violation budget.
//!
//! Comparing one default point with another rewards whoever happens to sit at a
//! cheaper spot on the trade-off; the frontier compares what each family can do
//! at the same SLO. Families:
//!
//! - `hpa` and `aws-tt`: the baselines at utilisation targets 30-90 % (step 5)
//!   and at their default target;
//! - `policy`: the given policy with every target (each metric's `target` and
//!   `prediction.target_per_instance`) scaled by a factor ([`POLICY_SCALES`];
//!   1.0 is the policy as written);
//! - `policy-noise`: the policy as written with its targeted metrics'
//!   `noise_headroom` set to each of [`NOISE_HEADROOMS`] (target tracking).
//!
//! When the policy buys spot, the baselines get the same spot share, so that
//! cost compares like with like.
//!
//! Windows ([`Split`]): the first two thirds of a trace tune, the last third
//! evaluates. A run replays the whole trace (every autoscaler enters the
//! evaluation window with the state it built before it) and is scored on the
//! evaluation window only ([`crate::replay::Run::window`]).

use std::fmt::Write as _;

use flexus_policy::Policy;
use serde::Serialize;

use crate::SimError;
use crate::baselines::aws::{TargetTracking, TargetTrackingConfig};
use crate::baselines::hpa::{Hpa, HpaConfig};
use crate::bounds::{BoundInput, min_instance_hours};
use crate::capacity::Flavor;
use crate::policy::PolicyAutoscaler;
use crate::replay::{self, Autoscaler, Run};
use crate::scorecard::{Score, score};
use crate::simulation::{SimulateOptions, baseline_target, sim_options};
use crate::trace::Trace;

/// Utilisation targets (%) the baselines are swept over.
pub const BASELINE_TARGETS: [f64; 13] = [
    30.0, 35.0, 40.0, 45.0, 50.0, 55.0, 60.0, 65.0, 70.0, 75.0, 80.0, 85.0, 90.0,
];

/// Factors the policy's targets are scaled by (1.0 = as written).
pub const POLICY_SCALES: [f64; 10] = [0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15];

/// Noise headrooms the sweep tries at the policy's targets as written
/// ([`Family::PolicyNoise`]; target tracking only).
pub const NOISE_HEADROOMS: [f64; 6] = [0.5, 1.0, 2.0, 4.0, 8.0, 16.0];

/// Violation budgets as fractions of the evaluation window's minutes.
pub const BUDGETS: [f64; 2] = [0.001, 0.01];

/// Share of a trace that tunes; the rest evaluates.
pub const TUNE_SHARE: f64 = 2.0 / 3.0;

/// A trace's tuning and evaluation windows.
#[derive(Debug, Clone)]
pub struct Split {
    /// The first two thirds (what tuning may look at).
    pub tune: Trace,
    /// Start of the evaluation window (s from the trace start).
    pub eval_from_s: f64,
    /// Length of the whole trace (s).
    pub total_s: f64,
}

impl Split {
    /// Splits at [`TUNE_SHARE`] of the samples.
    pub fn of(trace: &Trace) -> Split {
        let n = (trace.rps.len() as f64 * TUNE_SHARE).round() as usize;
        Split {
            tune: trace.slice(0, n),
            eval_from_s: n as f64 * f64::from(trace.step_s),
            total_s: trace.duration_s(),
        }
    }

    /// The first evaluation tick for ticks of `tick_s`.
    pub fn eval_tick(&self, tick_s: f64) -> usize {
        (self.eval_from_s / tick_s).ceil() as usize
    }

    /// Minutes in the evaluation window.
    pub fn eval_minutes(&self) -> f64 {
        (self.total_s - self.eval_from_s) / 60.0
    }
}

/// An autoscaler family on the frontier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// Kubernetes HPA.
    Hpa,
    /// AWS target tracking.
    AwsTt,
    /// Our policy, along its target scale.
    Policy,
    /// Our policy at its targets as written, along its noise headroom.
    PolicyNoise,
}

impl Family {
    /// Every family, in report order.
    pub const ALL: [Family; 4] = [
        Family::Policy,
        Family::PolicyNoise,
        Family::Hpa,
        Family::AwsTt,
    ];

    /// Whether the family is our policy (along one of its knobs).
    pub fn is_ours(self) -> bool {
        matches!(self, Family::Policy | Family::PolicyNoise)
    }

    /// Name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Family::Hpa => "hpa",
            Family::AwsTt => "aws-tt",
            Family::Policy => "policy",
            Family::PolicyNoise => "policy-noise",
        }
    }
}

/// One setting of one family, scored on the evaluation window.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// The family.
    pub family: Family,
    /// The knob: a utilisation target (%) or a target scale factor.
    pub knob: f64,
    /// Whether this is the family's default setting.
    pub default: bool,
    /// SLO-violation minutes in the evaluation window.
    pub violation_min: f64,
    /// Billed instance-hours in the evaluation window.
    pub instance_hours: f64,
    /// Cost in the evaluation window.
    pub cost: f64,
}

impl Point {
    /// The point of a family's setting from its score.
    pub fn from_score(family: Family, knob: f64, default: bool, s: &Score) -> Point {
        Point {
            family,
            knob,
            default,
            violation_min: s.slo_violation_min,
            instance_hours: s.instance_hours,
            cost: s.cost,
        }
    }

    /// `hpa 60.0 % (5 min, 1.7 h)`.
    pub fn label(&self) -> String {
        format!(
            "{} {} ({:.0} min, {:.1} h)",
            self.family.name(),
            knob_text(self),
            self.violation_min,
            self.instance_hours
        )
    }

    /// Whether `self` dominates `other`: no more violation minutes and no more
    /// instance-hours, and fewer of one.
    pub fn dominates(&self, other: &Point) -> bool {
        self.violation_min <= other.violation_min
            && self.instance_hours <= other.instance_hours
            && (self.violation_min < other.violation_min
                || self.instance_hours < other.instance_hours)
    }
}

/// The frontier of one trace.
#[derive(Debug, Clone, Serialize)]
pub struct Frontier {
    /// Trace name.
    pub trace: String,
    /// Evaluation window length (minutes).
    pub eval_minutes: f64,
    /// Evaluation window start (hours from the trace start).
    pub eval_from_h: f64,
    /// Spot share the baselines were given (the policy's).
    pub spot_share: f64,
    /// Every point.
    pub points: Vec<Point>,
    /// [`min_instance_hours`] on the evaluation window at each budget of [`BUDGETS`].
    pub bounds: Vec<f64>,
}

/// The policy with every target scaled by `factor`.
pub fn scaled_policy(policy: &Policy, factor: f64) -> Policy {
    let mut p = policy.clone();
    for m in &mut p.metrics {
        if let Some(t) = m.target.as_mut() {
            *t *= factor;
            if m.kind.is_percent() && !m.per_instance {
                *t = t.min(100.0);
            }
        }
    }
    if let Some(t) = p.prediction.target_per_instance.as_mut() {
        *t *= factor;
    }
    p
}

/// The policy with every targeted metric's `noise_headroom` set to `z`.
pub fn with_noise_headroom(policy: &Policy, z: f64) -> Policy {
    let mut p = policy.clone();
    for m in p.metrics.iter_mut().filter(|m| m.target.is_some()) {
        // The value swept holds at every monitoring period.
        m.noise_headroom = z;
        m.coarse_noise_headroom = None;
    }
    p
}

/// Replays `trace` with `a` and scores the evaluation window of `split`.
pub fn eval_score(
    trace: &Trace,
    split: &Split,
    flavor: &Flavor,
    a: &mut dyn Autoscaler,
    opts: &SimulateOptions,
) -> Result<(Score, Run), SimError> {
    let so = sim_options(flavor.clone(), opts);
    let run = replay::run(trace, a, &so)?;
    let w = run.window(split.eval_tick(so.tick_s));
    Ok((score(&w), run))
}

/// HPA and AWS target tracking at every target of [`BASELINE_TARGETS`] and at their
/// default target, each scored on the evaluation window of `split`.
pub fn baseline_points(
    trace: &Trace,
    split: &Split,
    flavor: &Flavor,
    opts: &SimulateOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<Point>, SimError> {
    let mut targets: Vec<(f64, bool)> = BASELINE_TARGETS.iter().map(|&t| (t, false)).collect();
    targets.push((baseline_target(flavor, opts), true));
    let mut points = Vec::with_capacity(2 * targets.len());
    for &(t, default) in &targets {
        let mut hpa = Hpa::new(HpaConfig::default_with_target(t));
        let (s, _) = eval_score(trace, split, flavor, &mut hpa, opts)?;
        points.push(Point::from_score(Family::Hpa, t, default, &s));
        let mut tt = TargetTracking::new(TargetTrackingConfig::with_target(t));
        let (s, _) = eval_score(trace, split, flavor, &mut tt, opts)?;
        points.push(Point::from_score(Family::AwsTt, t, default, &s));
        progress(&format!("baselines at {t:.1} %"));
    }
    Ok(points)
}

/// Sweeps every family over its knob on `trace` (prepared: scaled to the fleet).
pub fn sweep(
    trace: &Trace,
    flavor: &Flavor,
    policy: &Policy,
    opts: &SimulateOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Frontier, SimError> {
    let split = Split::of(trace);
    let spot_share = policy.spot.spot_percentage / 100.0;
    let mut opts = opts.clone();
    if spot_share > 0.0 {
        opts.spot_fraction = spot_share;
    }
    let mut points = baseline_points(trace, &split, flavor, &opts, progress)?;
    for &f in &POLICY_SCALES {
        let mut a = PolicyAutoscaler::new("policy", scaled_policy(policy, f))?
            .with_forecast_bucket(opts.forecast_bucket_s);
        let (s, _) = eval_score(trace, &split, flavor, &mut a, &opts)?;
        points.push(Point::from_score(
            Family::Policy,
            f,
            (f - 1.0).abs() < 1e-9,
            &s,
        ));
        progress(&format!("policy × {f}"));
    }
    if policy.strategy == flexus_policy::Strategy::TargetTracking {
        for &z in &NOISE_HEADROOMS {
            let mut a = PolicyAutoscaler::new("policy", with_noise_headroom(policy, z))?
                .with_forecast_bucket(opts.forecast_bucket_s);
            let (s, _) = eval_score(trace, &split, flavor, &mut a, &opts)?;
            points.push(Point::from_score(Family::PolicyNoise, z, false, &s));
            progress(&format!("policy noise headroom {z}"));
        }
    }
    let so = sim_options(flavor.clone(), &opts);
    let demand = replay::demand_series(trace, &so);
    let from = split.eval_tick(so.tick_s).min(demand.len());
    let eval = &demand[from..];
    let input = BoundInput {
        demand: eval,
        tick_s: so.tick_s,
        lead_s: so.lead_s(),
        initial: eval.first().copied().unwrap_or(0),
    };
    let ticks_per_min = 60.0 / so.tick_s;
    let bounds = BUDGETS
        .iter()
        .map(|b| {
            let v = (b * split.eval_minutes() * ticks_per_min).floor() as usize;
            min_instance_hours(&input, v)
        })
        .collect();
    Ok(Frontier {
        trace: trace.name.clone(),
        eval_minutes: split.eval_minutes(),
        eval_from_h: split.eval_from_s / 3600.0,
        spot_share,
        points,
        bounds,
    })
}

impl Frontier {
    /// The violation budget (minutes) of a budget fraction.
    pub fn budget_minutes(&self, fraction: f64) -> f64 {
        fraction * self.eval_minutes
    }

    /// The family's cheapest point (fewest instance-hours) within `budget_min`.
    pub fn best(&self, family: Family, budget_min: f64) -> Option<&Point> {
        self.points
            .iter()
            .filter(|p| p.family == family && p.violation_min <= budget_min + 1e-9)
            .min_by(|a, b| a.instance_hours.total_cmp(&b.instance_hours))
    }

    /// Our cheapest point within `budget_min`, along any of our knobs.
    pub fn best_ours(&self, budget_min: f64) -> Option<&Point> {
        [Family::Policy, Family::PolicyNoise]
            .into_iter()
            .filter_map(|f| self.best(f, budget_min))
            .min_by(|a, b| a.instance_hours.total_cmp(&b.instance_hours))
    }

    /// The family's default point.
    pub fn default_of(&self, family: Family) -> Option<&Point> {
        self.points.iter().find(|p| p.family == family && p.default)
    }

    /// Baseline points that dominate the policy's default.
    pub fn dominating_default(&self) -> Vec<&Point> {
        let Some(d) = self.default_of(Family::Policy) else {
            return Vec::new();
        };
        self.points
            .iter()
            .filter(|p| !p.family.is_ours() && p.dominates(d))
            .collect()
    }

    /// Markdown: the best of each family per budget, the ratio of the policy's to
    /// the best baseline's instance-hours, the bound, the defaults and dominance.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Trace `{}` — evaluation window: the last third ({:.0} min from hour {:.1}){}.\n",
            self.trace,
            self.eval_minutes,
            self.eval_from_h,
            if self.spot_share > 0.0 {
                format!(
                    ", baselines at the policy's spot share {:.0} %",
                    self.spot_share * 100.0
                )
            } else {
                String::new()
            }
        );
        out.push_str(
            "| budget | policy h (setting) | HPA h (target) | AWS TT h (target) | policy / best baseline | lower bound h | cost policy / HPA / AWS TT |\n|---|---:|---:|---:|---:|---:|---|\n",
        );
        for (i, &b) in BUDGETS.iter().enumerate() {
            let budget = self.budget_minutes(b);
            let best = |f: Family| {
                if f.is_ours() {
                    self.best_ours(budget)
                } else {
                    self.best(f, budget)
                }
            };
            let cell = |f: Family| {
                best(f).map_or_else(
                    || "none within budget".to_owned(),
                    |p| format!("{:.1} ({})", p.instance_hours, knob_text(p)),
                )
            };
            let cost =
                |f: Family| best(f).map_or_else(|| "—".to_owned(), |p| format!("{:.1}", p.cost));
            let best_base = [Family::Hpa, Family::AwsTt]
                .iter()
                .filter_map(|&f| self.best(f, budget))
                .map(|p| p.instance_hours)
                .fold(f64::INFINITY, f64::min);
            let ratio = match self.best_ours(budget) {
                Some(p) if best_base.is_finite() => format!("{:.2}", p.instance_hours / best_base),
                _ => "—".to_owned(),
            };
            let _ = writeln!(
                out,
                "| {:.1} % ({:.0} min) | {} | {} | {} | {} | {:.1} | {} / {} / {} |",
                b * 100.0,
                budget,
                cell(Family::Policy),
                cell(Family::Hpa),
                cell(Family::AwsTt),
                ratio,
                self.bounds.get(i).copied().unwrap_or(f64::NAN),
                cost(Family::Policy),
                cost(Family::Hpa),
                cost(Family::AwsTt),
            );
        }
        out.push('\n');
        for f in Family::ALL {
            if let Some(p) = self.default_of(f) {
                let _ = writeln!(
                    out,
                    "- default {} ({}): {:.0} violation min, {:.1} instance-hours, cost {:.1}",
                    f.name(),
                    knob_text(p),
                    p.violation_min,
                    p.instance_hours,
                    p.cost
                );
            }
        }
        let dom = self.dominating_default();
        if dom.is_empty() {
            out.push_str("- the policy's default is dominated by no HPA or AWS TT setting\n");
        } else {
            let list: Vec<String> = dom.iter().map(|p| p.label()).collect();
            let _ = writeln!(
                out,
                "- the policy's default is dominated by: {}",
                list.join(", ")
            );
        }
        out
    }
}

fn knob_text(p: &Point) -> String {
    match p.family {
        Family::Policy => format!("targets × {:.2}", p.knob),
        Family::PolicyNoise => format!("noise_headroom {}", p.knob),
        _ => format!("{:.1} %", p.knob),
    }
}

/// Draws the frontier: violation minutes against instance-hours, one line per
/// family (its points in knob order), defaults as larger points.
#[cfg(feature = "charts")]
pub fn write_svg(path: &std::path::Path, f: &Frontier) -> Result<(), SimError> {
    use plotters::prelude::*;
    let err = |e: String| SimError::Chart {
        path: path.to_owned(),
        reason: e,
    };
    let max_x = f.points.iter().map(|p| p.violation_min).fold(1.0, f64::max);
    let (min_y, max_y) = f
        .points
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), p| {
            (lo.min(p.instance_hours), hi.max(p.instance_hours))
        });
    let min_y = if min_y.is_finite() { min_y * 0.95 } else { 0.0 };
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{} — cost/SLO frontier (evaluation window)", f.trace),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..max_x * 1.05, min_y..max_y * 1.05)
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("SLO-violation minutes")
        .y_desc("instance-hours")
        .draw()
        .map_err(|e| err(e.to_string()))?;
    let colours = [
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
    ];
    for (family, colour) in Family::ALL.into_iter().zip(colours) {
        let mut pts: Vec<&Point> = f
            .points
            .iter()
            .filter(|p| p.family == family && !p.default)
            .collect();
        pts.sort_by(|a, b| a.knob.total_cmp(&b.knob));
        let line: Vec<(f64, f64)> = pts
            .iter()
            .map(|p| (p.violation_min, p.instance_hours))
            .collect();
        chart
            .draw_series(LineSeries::new(line.clone(), colour.stroke_width(2)))
            .map_err(|e| err(e.to_string()))?
            .label(family.name())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour));
        chart
            .draw_series(
                line.iter()
                    .map(|&(x, y)| Circle::new((x, y), 3, colour.filled())),
            )
            .map_err(|e| err(e.to_string()))?;
        if let Some(d) = f.default_of(family) {
            chart
                .draw_series(std::iter::once(TriangleMarker::new(
                    (d.violation_min, d.instance_hours),
                    9,
                    colour.filled(),
                )))
                .map_err(|e| err(e.to_string()))?;
        }
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(())
}
