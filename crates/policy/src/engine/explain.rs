//! Structured reasons. Steps and reasons are small enums (cheap to build on the hot path)
//! that print as sentences and serialize as those sentences.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::model::{Freshness, MissingData, Strategy};
use crate::time::format_duration;

/// Why a signal proposed what it did.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    /// No observation at all.
    Missing(MissingData),
    /// The latest observation is older than the metric's freshness limit.
    Stale {
        /// Age of the latest observation.
        age: Duration,
        /// The rule applied.
        rule: MissingData,
        /// The freshness rule it broke.
        freshness: Freshness,
    },
    /// A utilisation signal with no ready instance to measure.
    NoReadyInstances,
    /// The metric has no target (informational under this strategy).
    NoTarget,
    /// |value/target − 1| is within the tolerance.
    WithinTolerance {
        /// value / target.
        ratio: f64,
    },
    /// Proportional: ceil(ready · value / target).
    Ratio {
        /// value / target.
        ratio: f64,
        /// Ready instances the value is averaged over.
        ready: u32,
    },
    /// A pool total against a per-instance target: ceil(total / target).
    PerInstance {
        /// Per-instance target.
        target: f64,
    },
    /// Seed band score of the signal (before its weight).
    SeedScore {
        /// Score in [-1, 1].
        score: f64,
        /// Weight applied.
        weight: f64,
    },
    /// A step adjustment matched.
    Step {
        /// The adjustment as declared.
        adjustment: f64,
        /// The change in instances it produced.
        change: i64,
    },
    /// The metric is past the threshold but in no step (or inside the threshold).
    NoStep,
    /// The missing-data rule supplied a fallback capacity.
    Fallback(u32),
    /// The signal is not used by this strategy.
    Unused,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Missing(rule) => {
                write!(f, "no observation (missing_data = {})", rule_name(*rule))
            }
            Reason::Stale {
                age,
                rule,
                freshness,
            } => write!(
                f,
                "latest observation is {} old, past its freshness limit {freshness}: stale (missing_data = {})",
                format_duration(*age),
                rule_name(*rule)
            ),
            Reason::NoReadyInstances => f.write_str("no ready instance to measure"),
            Reason::NoTarget => f.write_str("no target; informational only"),
            Reason::WithinTolerance { ratio } => {
                write!(f, "value/target = {ratio:.3}, within tolerance")
            }
            Reason::Ratio { ratio, ready } => {
                write!(
                    f,
                    "value/target = {ratio:.3} over {ready} ready instance(s)"
                )
            }
            Reason::PerInstance { target } => write!(f, "pool total against {target} per instance"),
            Reason::SeedScore { score, weight } => {
                write!(f, "seed score {score:.3} × weight {weight}")
            }
            Reason::Step { adjustment, change } => {
                write!(f, "step adjustment {adjustment} → change {change:+}")
            }
            Reason::NoStep => f.write_str("no step matches"),
            Reason::Fallback(n) => write!(f, "missing; fallback capacity {n}"),
            Reason::Unused => f.write_str("not used by this strategy"),
        }
    }
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

fn rule_name(r: MissingData) -> &'static str {
    match r {
        MissingData::BlockScaleIn => "block_scale_in",
        MissingData::Hold => "hold",
        MissingData::Ignore => "ignore",
        MissingData::Fallback => "fallback",
    }
}

/// One step of a decision's reasoning.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// The pool as counted.
    Pool {
        /// Booting + warming + ready.
        counted: u32,
        /// Ready.
        ready: u32,
        /// Booting + warming.
        pending: u32,
    },
    /// The policy is disabled.
    Disabled,
    /// The seed score and its parts.
    SeedScore {
        /// Weighted total.
        score: f64,
        /// Trend term.
        trend: f64,
    },
    /// The seed cooldown holds the count.
    SeedCooldown {
        /// Time left.
        remaining: Duration,
    },
    /// A rising signal was read ahead by its trend (`trend_lead`).
    Trend {
        /// Metric name.
        metric: Arc<str>,
        /// The aggregated value before the trend.
        value: f64,
        /// Least-squares slope, per minute.
        slope_per_min: f64,
        /// The value the strategy used: `value + slope · trend_lead`.
        extrapolated: f64,
    },
    /// The noise headroom raised a signal (`noise_headroom`).
    Noise {
        /// Metric name.
        metric: Arc<str>,
        /// Mean absolute change between successive readings within `noise_window`.
        sigma: f64,
        /// `noise_headroom · sigma`, added to the value.
        raise: f64,
        /// The value the strategy used.
        read: f64,
    },
    /// Square-root staffing sized a target-tracking signal's proposal
    /// (`sqrt_headroom`, or `coarse_sqrt_headroom` for coarse readings).
    Staffing {
        /// Metric name.
        metric: Arc<str>,
        /// The `β` in effect: `R` instances' worth became `R + β·√R`.
        beta: f64,
        /// The source's readings are coarse (further apart than `coarse_above`), so its
        /// `coarse_*` settings held.
        coarse: bool,
    },
    /// The strategy's proposal.
    Strategy {
        /// Which strategy.
        strategy: Strategy,
        /// What it proposes.
        proposal: u32,
    },
    /// A missing signal changed the proposal.
    MissingData {
        /// Count before.
        from: u32,
        /// Count after.
        to: u32,
        /// The rule.
        rule: MissingData,
        /// The metric whose rule held the pool.
        metric: Arc<str>,
        /// Why it has no value (missing, or stale and past which limit).
        why: Box<Reason>,
    },
    /// Pending capacity blocks scale-in.
    Warmup {
        /// Booting + warming instances.
        pending: u32,
    },
    /// An active schedule raised the proposal.
    Schedule {
        /// Schedule name.
        name: Arc<str>,
        /// Its minimum.
        min_capacity: u32,
    },
    /// The forecast was above `prediction.max_ratio` × the metric's current value.
    PredictionCapped {
        /// Forecast value.
        forecast: f64,
        /// The value it counts as.
        cap: f64,
    },
    /// The forecast's capacity need.
    Prediction {
        /// Forecast value.
        forecast: f64,
        /// Capacity it needs.
        capacity: u32,
        /// Whether it raised the proposal (forecast_and_scale mode).
        applied: bool,
    },
    /// Stabilisation changed the count.
    Stabilisation {
        /// Count before.
        from: u32,
        /// Count after.
        to: u32,
    },
    /// A rate policy limited the change.
    RateLimit {
        /// Count before.
        from: u32,
        /// Count after.
        to: u32,
    },
    /// A cooldown blocked the change.
    Cooldown {
        /// Count the change would have reached.
        from: u32,
        /// Count kept.
        to: u32,
        /// Time left.
        remaining: Duration,
    },
    /// Clamped into the bounds.
    Clamp {
        /// Count before.
        from: u32,
        /// Count after.
        to: u32,
    },
    /// The spot / on-demand split.
    Split {
        /// On-demand instances.
        on_demand: u32,
        /// Spot instances.
        spot: u32,
    },
    /// Dry run: the action is not taken.
    DryRun,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Pool {
                counted,
                ready,
                pending,
            } => {
                write!(
                    f,
                    "pool has {counted} instance(s): {ready} ready, {pending} booting or warming"
                )
            }
            Step::Disabled => f.write_str("policy is disabled; keeping the current count"),
            Step::SeedScore { score, trend } => {
                write!(f, "seed score {score:.3} (trend {trend:.3})")
            }
            Step::SeedCooldown { remaining } => {
                write!(
                    f,
                    "seed cooldown holds the count for {} more",
                    format_duration(*remaining)
                )
            }
            Step::Trend {
                metric,
                value,
                slope_per_min,
                extrapolated,
            } => write!(
                f,
                "{metric} rising {slope_per_min:.3}/min: read {value:.3} ahead as {extrapolated:.3}"
            ),
            Step::Noise {
                metric,
                sigma,
                raise,
                read,
            } => write!(
                f,
                "{metric} jumps {sigma:.3} between readings: noise headroom {raise:.3}, read as {read:.3}"
            ),
            Step::Staffing {
                metric,
                beta,
                coarse,
            } => {
                write!(f, "{metric}: square-root staffing {beta}")?;
                if *coarse {
                    write!(f, " (readings coarser than coarse_above: coarse settings)")?;
                }
                Ok(())
            }
            Step::Strategy {
                strategy: Strategy::Fixed,
                proposal,
            } => write!(f, "fixed strategy holds {proposal}"),
            Step::Strategy { strategy, proposal } => {
                write!(f, "{} proposes {proposal}", strategy.as_str())
            }
            Step::MissingData {
                from,
                to,
                rule,
                metric,
                why,
            } => {
                write!(f, "missing data of {metric} ({}) ", rule_name(*rule))?;
                if from == to {
                    write!(f, "holds {to}: {why}")
                } else {
                    write!(f, "keeps {to} instead of {from}: {why}")
                }
            }
            Step::Warmup { pending } => {
                write!(
                    f,
                    "{pending} instance(s) still booting or warming; scale-in blocked"
                )
            }
            Step::Schedule { name, min_capacity } => {
                write!(f, "schedule {name:?} is active: at least {min_capacity}")
            }
            Step::PredictionCapped { forecast, cap } => write!(
                f,
                "forecast {forecast:.3} is above max_ratio × current; counted as {cap:.3}"
            ),
            Step::Prediction {
                forecast,
                capacity,
                applied,
            } => {
                if *applied {
                    write!(f, "forecast {forecast:.3} needs {capacity}; raised to it")
                } else {
                    write!(f, "forecast {forecast:.3} needs {capacity} (not applied)")
                }
            }
            Step::Stabilisation { from, to } => {
                write!(f, "stabilisation window holds {to} instead of {from}")
            }
            Step::RateLimit { from, to } => write!(f, "rate policy limits {from} to {to}"),
            Step::Cooldown {
                from,
                to,
                remaining,
            } => write!(
                f,
                "cooldown keeps {to} instead of {from} for {} more",
                format_duration(*remaining)
            ),
            Step::Clamp { from, to } => write!(f, "bounds clamp {from} to {to}"),
            Step::Split { on_demand, spot } => {
                write!(f, "split: {on_demand} on-demand, {spot} spot")
            }
            Step::DryRun => f.write_str("dry run: no action taken"),
        }
    }
}

impl Serialize for Step {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
