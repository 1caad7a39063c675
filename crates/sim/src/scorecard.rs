//! The scorecard: SLO, cost and SPEC-RG elasticity metrics of a [`Run`].
//!
//! Definitions (d = demand, s = supply = ready instances, per tick of length Δt, T = Σ Δt):
//! - SLO-violation time: share of T whose tick missed the latency SLO or dropped requests;
//! - under-/over-provisioned instance-hours: Σ max(d − s, 0) Δt and Σ max(s − d, 0) Δt
//!   (accuracy_U × T and accuracy_O × T of SPEC RG / BUNGEE);
//! - instance-hours: Σ billed instances × Δt (booting and warming included), and cost;
//! - scaling actions per hour;
//! - jitter: (Σ|Δs| − Σ|Δd|) / T, in unit changes per hour (positive = oscillates,
//!   negative = adapts too rarely);
//! - instability υ: % of ticks where supply and demand move in different directions
//!   (sign(Δs) ≠ sign(Δd));
//! - time to capacity: lengths of the episodes with s < d (median and max, minutes).

use serde::Serialize;

use crate::replay::Run;

/// One row of the scorecard.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    /// Policy.
    pub policy: String,
    /// Trace.
    pub trace: String,
    /// Replayed hours.
    pub hours: f64,
    /// % of time the SLO was missed.
    pub slo_violation_pct: f64,
    /// Minutes the SLO was missed.
    pub slo_violation_min: f64,
    /// % of offered requests not served within the SLO (dropped or late).
    pub bad_requests_pct: f64,
    /// Under-provisioned instance-hours.
    pub under_instance_hours: f64,
    /// Over-provisioned instance-hours.
    pub over_instance_hours: f64,
    /// Billed instance-hours.
    pub instance_hours: f64,
    /// Cost (price units).
    pub cost: f64,
    /// Scaling actions per hour.
    pub actions_per_hour: f64,
    /// SPEC-RG jitter, unit changes per hour.
    pub jitter_per_hour: f64,
    /// SPEC-RG instability, %.
    pub instability_pct: f64,
    /// Median time to capacity after a shortfall starts, minutes.
    pub ttc_median_min: f64,
    /// Longest time to capacity, minutes.
    pub ttc_max_min: f64,
    /// Spot reclamations.
    pub reclaimed: u32,
}

/// What each column of [`markdown_table`] means (printed under the table by `simulate`).
pub const LEGEND: &str = "\
Columns: SLO viol. % / min = share of time and minutes whose tick missed the p95 latency SLO or dropped requests; \
bad req. % = offered requests dropped or served late; \
under / over inst-h = instance-hours of ready capacity below / above the demand (the fewest instances meeting the SLO); \
inst-h, cost = everything billed, booting and warming included (spot at its price); \
actions/h = scaling actions per hour; \
jitter/h = (supply changes − demand changes) per hour: positive means the pool moves more often than the demand (oscillation), \
negative means it moves less often (adapts late or in big steps); \
instab. % = ticks where supply and demand move in opposite directions; \
TTC = time to capacity, the median and longest episode with fewer ready instances than the demand.";

/// Computes the score of a run.
pub fn score(run: &Run) -> Score {
    let s = &run.series;
    let dt = s.tick_s;
    let n = s.demand.len();
    let t_total = n as f64 * dt;
    let hours = t_total / 3600.0;
    let mut viol = 0usize;
    let (mut under, mut over, mut billed) = (0.0, 0.0, 0.0);
    let (mut ds, mut dd) = (0.0, 0.0);
    let mut unstable = 0usize;
    let mut episodes: Vec<f64> = Vec::new();
    let mut short_run = 0usize;
    for k in 0..n {
        let (d, sup) = (f64::from(s.demand[k]), f64::from(s.supply[k]));
        if !s.slo_met[k] {
            viol += 1;
        }
        under += (d - sup).max(0.0);
        over += (sup - d).max(0.0);
        billed += f64::from(s.billed[k]);
        if k > 0 {
            let a = sup - f64::from(s.supply[k - 1]);
            let b = d - f64::from(s.demand[k - 1]);
            ds += a.abs();
            dd += b.abs();
            if a.signum() != b.signum() && (a != 0.0 || b != 0.0) {
                unstable += 1;
            }
        }
        if sup < d {
            short_run += 1;
        } else if short_run > 0 {
            episodes.push(short_run as f64 * dt / 60.0);
            short_run = 0;
        }
    }
    if short_run > 0 {
        episodes.push(short_run as f64 * dt / 60.0);
    }
    episodes.sort_by(f64::total_cmp);
    let median = if episodes.is_empty() {
        0.0
    } else if episodes.len() % 2 == 1 {
        episodes[episodes.len() / 2]
    } else {
        0.5 * (episodes[episodes.len() / 2 - 1] + episodes[episodes.len() / 2])
    };
    let per_h = |x: f64| if hours > 0.0 { x / hours } else { 0.0 };
    let offered = run.totals.offered;
    Score {
        policy: run.policy.clone(),
        trace: run.trace.clone(),
        hours,
        slo_violation_pct: if n > 0 {
            100.0 * viol as f64 / n as f64
        } else {
            0.0
        },
        slo_violation_min: viol as f64 * dt / 60.0,
        bad_requests_pct: if offered > 0.0 {
            (100.0 * (1.0 - run.totals.served_within_slo / offered)).clamp(0.0, 100.0)
        } else {
            0.0
        },
        under_instance_hours: under * dt / 3600.0,
        over_instance_hours: over * dt / 3600.0,
        instance_hours: billed * dt / 3600.0,
        cost: run.totals.cost,
        actions_per_hour: per_h(f64::from(run.totals.actions)),
        jitter_per_hour: per_h(ds - dd),
        instability_pct: if n > 1 {
            100.0 * unstable as f64 / (n - 1) as f64
        } else {
            0.0
        },
        ttc_median_min: median,
        ttc_max_min: episodes.last().copied().unwrap_or(0.0),
        reclaimed: run.totals.reclaimed,
    }
}

/// Renders scores as a markdown table (one row per score, in the given order).
pub fn markdown_table(scores: &[Score]) -> String {
    let mut out = String::from(
        "| policy | SLO viol. % | SLO viol. min | bad req. % | under inst-h | over inst-h | inst-h | cost | actions/h | jitter/h | instab. % | TTC med/max min |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for s in scores {
        out.push_str(&format!(
            "| {} | {:.2} | {:.0} | {:.2} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} | {:+.2} | {:.1} | {:.1} / {:.1} |\n",
            s.policy,
            s.slo_violation_pct,
            s.slo_violation_min,
            s.bad_requests_pct,
            s.under_instance_hours,
            s.over_instance_hours,
            s.instance_hours,
            s.cost,
            s.actions_per_hour,
            s.jitter_per_hour,
            s.instability_pct,
            s.ttc_median_min,
            s.ttc_max_min
        ));
    }
    out
}
