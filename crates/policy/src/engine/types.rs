//! Inputs and outputs of [`crate::decide`]: observations, pool state, history, the
//! optional forecast, and the explained [`Decision`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::engine::explain::{Reason, Step};
use crate::time::Timestamp;

/// One measured value of a signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// The metric's `name` in the policy.
    pub metric: String,
    /// The value (units per the metric's kind).
    pub value: f64,
    /// When the value was measured.
    pub at: Timestamp,
}

/// Lifecycle of one instance as the agent sees it.
//
// One declaration for the engine and the agent's API (`flexus_api` re-exports it). The
// variants carry plain comments, not doc comments: a documented variant would turn the
// JSON Schema's `enum` into a `oneOf` and change the published OpenAPI document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[derive(strum::IntoStaticStr, strum::EnumString, strum::VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum Lifecycle {
    // Requested or starting; counts toward capacity, not toward metrics.
    Booting,
    // Running but warming up (e.g. loading a model); counts toward capacity, not metrics.
    Warming,
    // Serving; counts toward capacity and metrics.
    Ready,
    // Being removed; counts toward neither.
    Draining,
    // Taken back by the cloud (spot); counts toward neither.
    Reclaimed,
    // Broken in the cloud (ECS `ERROR` or `SHUTOFF`); counts toward neither and is replaced.
    Failed,
}

impl Lifecycle {
    /// Whether the instance counts toward capacity (booting, warming, ready).
    pub fn counts_toward_capacity(self) -> bool {
        matches!(
            self,
            Lifecycle::Booting | Lifecycle::Warming | Lifecycle::Ready
        )
    }

    /// The snake_case name on the wire and in tables (`booting`, `ready`, ...).
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// How an instance is paid for.
//
// Plain comments on the variants, as for [`Lifecycle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[derive(strum::IntoStaticStr, strum::EnumString, strum::VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum Purchase {
    // Spot (may be reclaimed).
    Spot,
    // On-demand.
    OnDemand,
}

impl Purchase {
    /// The snake_case name on the wire and in the store (`spot`, `on_demand`).
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The name in prose, tables and messages (`spot`, `on-demand`).
    pub fn label(self) -> &'static str {
        match self {
            Purchase::Spot => "spot",
            Purchase::OnDemand => "on-demand",
        }
    }
}

/// One instance of the pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    /// Cloud instance id.
    pub id: String,
    /// Where it is in its life.
    pub lifecycle: Lifecycle,
    /// Spot or on-demand.
    pub purchase: Purchase,
    /// When it entered its current lifecycle state.
    pub since: Timestamp,
}

/// The pool as it is now.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PoolState {
    /// Every instance the agent knows of, in any state.
    pub instances: Vec<Instance>,
}

/// Instance counts by role, derived from a [`PoolState`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct PoolCounts {
    /// Booting + warming + ready: the current capacity.
    pub counted: u32,
    /// Ready instances: those whose metrics are averaged.
    pub ready: u32,
    /// Booting + warming.
    pub pending: u32,
    /// Counted spot instances.
    pub spot: u32,
    /// Counted on-demand instances.
    pub on_demand: u32,
}

impl PoolState {
    /// A pool of `n` ready on-demand instances (handy for tests and simulations).
    pub fn ready(n: u32, since: Timestamp) -> Self {
        PoolState {
            instances: (0..n)
                .map(|i| Instance {
                    id: format!("i-{i}"),
                    lifecycle: Lifecycle::Ready,
                    purchase: Purchase::OnDemand,
                    since,
                })
                .collect(),
        }
    }

    /// Counts instances by role.
    pub fn counts(&self) -> PoolCounts {
        let mut c = PoolCounts::default();
        for i in &self.instances {
            if !i.lifecycle.counts_toward_capacity() {
                continue;
            }
            c.counted += 1;
            match i.lifecycle {
                Lifecycle::Ready => c.ready += 1,
                _ => c.pending += 1,
            }
            match i.purchase {
                Purchase::Spot => c.spot += 1,
                Purchase::OnDemand => c.on_demand += 1,
            }
        }
        c
    }
}

/// A forecast supplied by the caller: the forecast value of each metric at `now + lead_time`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Prediction {
    /// The time the forecast values are for.
    pub at: Timestamp,
    /// (metric name, forecast value) pairs.
    pub values: Vec<(String, f64)>,
}

impl Prediction {
    /// The forecast of one metric.
    pub fn value(&self, metric: &str) -> Option<f64> {
        self.values
            .iter()
            .find(|(m, _)| m == metric)
            .map(|(_, v)| *v)
    }
}

/// A past raw recommendation (before stabilisation), kept for the stabilisation windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recommendation {
    /// When it was made.
    pub at: Timestamp,
    /// The recommended count.
    pub desired: u32,
}

/// Direction of a scaling action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// More instances.
    Out,
    /// Fewer instances.
    In,
}

/// A past scaling action, kept for rate policies and cooldowns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleEvent {
    /// When the action was taken.
    pub at: Timestamp,
    /// Count before.
    pub from: u32,
    /// Count after.
    pub to: u32,
}

impl ScaleEvent {
    /// Which way the action went (`None` when from == to).
    pub fn direction(&self) -> Option<Direction> {
        use std::cmp::Ordering::*;
        match self.to.cmp(&self.from) {
            Greater => Some(Direction::Out),
            Less => Some(Direction::In),
            Equal => None,
        }
    }
}

/// One past value of a signal (the seed trend uses the CPU samples).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// When it was measured.
    pub at: Timestamp,
    /// The value.
    pub value: f64,
}

/// What the caller keeps between calls to [`crate::decide`]: recent recommendations,
/// scaling actions and CPU samples. Append with [`History::record`], prune with
/// [`History::prune`]. Entries are in time order (oldest first).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct History {
    /// Raw recommendations (oldest first).
    pub recommendations: VecDeque<Recommendation>,
    /// Scaling actions (oldest first).
    pub events: VecDeque<ScaleEvent>,
    /// When the pool last scaled out.
    pub last_scale_out: Option<Timestamp>,
    /// When the pool last scaled in.
    pub last_scale_in: Option<Timestamp>,
    /// Recent CPU samples for the seed trend (oldest first).
    pub cpu_samples: VecDeque<Sample>,
}

impl History {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends what a decision made at `decision.at` contributes: its raw recommendation,
    /// its CPU sample (seed trend) and, when it acts (and is not a dry run), the scale event.
    pub fn record(&mut self, decision: &Decision) {
        self.recommendations.push_back(Recommendation {
            at: decision.at,
            desired: decision.recommendation,
        });
        if let Some(v) = decision.cpu_sample {
            self.cpu_samples.push_back(Sample {
                at: decision.at,
                value: v,
            });
        }
        if decision.action != Action::None {
            self.record_event(ScaleEvent {
                at: decision.at,
                from: decision.current,
                to: decision.desired,
            });
        }
    }

    /// Appends a scaling action taken outside [`History::record`] (e.g. a manual resize).
    pub fn record_event(&mut self, event: ScaleEvent) {
        match event.direction() {
            Some(Direction::Out) => self.last_scale_out = Some(event.at),
            Some(Direction::In) => self.last_scale_in = Some(event.at),
            None => return,
        }
        self.events.push_back(event);
    }

    /// The last action time in either direction.
    pub fn last_scale(&self) -> Option<Timestamp> {
        match (self.last_scale_out, self.last_scale_in) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// Drops recommendations and events older than `now − keep`, and keeps at most
    /// `keep_samples` CPU samples. `keep` should cover the longest stabilisation window,
    /// rate period and cooldown of the policy ([`crate::CompiledPolicy::history_horizon`]).
    pub fn prune(&mut self, now: Timestamp, keep: Duration, keep_samples: usize) {
        let cutoff = now.sub(keep);
        while self.recommendations.front().is_some_and(|r| r.at < cutoff) {
            self.recommendations.pop_front();
        }
        while self.events.front().is_some_and(|e| e.at < cutoff) {
            self.events.pop_front();
        }
        while self.cpu_samples.len() > keep_samples {
            self.cpu_samples.pop_front();
        }
    }
}

/// What the caller should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Nothing.
    None,
    /// Add `by` instances.
    ScaleOut {
        /// How many to add.
        by: u32,
    },
    /// Remove `by` instances.
    ScaleIn {
        /// How many to remove.
        by: u32,
    },
}

/// The rule that determined the final count when it differs from the strategy's proposal
/// (or that blocked a change).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BoundBy {
    /// The policy is disabled.
    Disabled,
    /// Within the tolerance band; no change.
    Tolerance,
    /// A missing or stale signal blocked the change.
    MissingData,
    /// Pending (booting/warming) capacity blocked a scale-in.
    Warmup,
    /// A stabilisation window held the count.
    Stabilisation,
    /// A rate policy limited the change.
    RateLimit,
    /// A cooldown blocked the change.
    Cooldown,
    /// Clamped up to `bounds.min`.
    Min,
    /// Clamped down to `bounds.max`.
    Max,
    /// A schedule raised the count.
    Schedule,
    /// The forecast raised the count.
    Prediction,
    /// A fallback capacity was used.
    Fallback,
    /// The `fixed` strategy holds the count.
    Fixed,
}

/// What one signal proposed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignalProposal {
    /// Metric name.
    pub metric: Arc<str>,
    /// The value used (after aggregation, trend read-ahead and noise headroom), if any.
    pub value: Option<f64>,
    /// The value as observed: after aggregation, before the trend read-ahead
    /// (`trend_lead`) and the noise headroom raised it (equal to `value` when neither
    /// did). What the load was, for whoever records it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<f64>,
    /// The count it proposes (target tracking / step), or `None` when it proposes nothing.
    pub proposal: Option<u32>,
    /// Seed score contribution (seed strategy only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Why.
    pub reason: Reason,
}

impl SignalProposal {
    /// A signal that proposes no count and scores nothing, for `reason` (the strategy
    /// does not use it, or it has no value).
    pub(crate) fn without_proposal(metric: Arc<str>, value: Option<f64>, reason: Reason) -> Self {
        Self {
            metric,
            value,
            observed: None,
            proposal: None,
            score: None,
            reason,
        }
    }
}

/// The engine's answer, with its reasons.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// When the decision was made (`input.now`).
    pub at: Timestamp,
    /// Current capacity (booting + warming + ready).
    pub current: u32,
    /// The strategy's raw recommendation (with schedules and prediction), before
    /// stabilisation, rate limits, cooldowns and bounds. Stored in [`History`].
    pub recommendation: u32,
    /// The count the pool should have.
    pub desired: u32,
    /// How many of `desired` should be on-demand.
    pub on_demand: u32,
    /// How many of `desired` should be spot.
    pub spot: u32,
    /// What to do now (`None` in dry-run mode).
    pub action: Action,
    /// What each signal proposed.
    pub proposals: Vec<SignalProposal>,
    /// The rule that bound the result, if any rule changed or blocked the strategy's proposal.
    pub bound_by: Option<BoundBy>,
    /// Each step of the reasoning, in order (each prints as one sentence).
    pub explanation: Vec<Step>,
    /// When to evaluate next.
    pub next_evaluation: Timestamp,
    /// The CPU value used this time (for the seed trend; recorded by [`History::record`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_sample: Option<f64>,
    /// Whether this was a dry run (the action was computed but suppressed).
    pub dry_run: bool,
}

/// Everything [`crate::decide`] reads besides the policy.
#[derive(Debug, Clone, Copy)]
pub struct DecisionInput<'a> {
    /// The time of the decision.
    pub now: Timestamp,
    /// Recent observations of any metrics, in any order.
    pub observations: &'a [Observation],
    /// The pool.
    pub pool: &'a PoolState,
    /// What happened before.
    pub history: &'a History,
    /// The forecast, when prediction is enabled and one is available.
    pub prediction: Option<&'a Prediction>,
}
