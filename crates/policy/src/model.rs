//! The policy model: what a user declares (in HCL, JSON, or through Terraform).
//!
//! Every type derives serde and schemars; unknown fields are rejected. Durations are
//! `std::time::Duration` written as text (`"90s"`). Defaults follow Kubernetes HPA
//! `behavior` defaults where a field has an HPA counterpart, and the original (seed)
//! design's constants for [`SeedSettings`].

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::time::{DurationText, duration_list_text, duration_text, opt_duration_text};

/// An autoscaling policy for one pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Whether the policy acts at all. A disabled policy keeps the current count (clamped to bounds).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Decide and explain, but report `Action::None` (the agent records what it would have done).
    #[serde(default)]
    pub dry_run: bool,
    /// Which strategy turns signals into a recommendation.
    pub strategy: Strategy,
    /// How often the agent evaluates the policy. Default `15s`.
    #[serde(default = "default_evaluation_interval", with = "duration_text")]
    #[schemars(with = "DurationText")]
    pub evaluation_interval: Duration,
    /// Target-tracking tolerance: no change while |value/target − 1| ≤ tolerance. Range [0, 1); default 0.1.
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    /// Instance-count bounds.
    pub bounds: Bounds,
    /// The signals the policy reads.
    #[serde(default)]
    pub metrics: Vec<Metric>,
    /// How fast and how often the pool may grow.
    #[serde(default)]
    pub scale_out: ScaleOutBehaviour,
    /// How fast and how often the pool may shrink.
    #[serde(default)]
    pub scale_in: ScaleInBehaviour,
    /// Cron-driven minimum capacities, composed by max with the strategy.
    #[serde(default)]
    pub schedules: Vec<Schedule>,
    /// Forecast-driven (predictive) capacity, an add-on to any strategy.
    #[serde(default)]
    pub prediction: PredictionSettings,
    /// Spot / on-demand split of the desired count.
    #[serde(default)]
    pub spot: SpotMix,
    /// Constants of the seed (weighted-score) strategy.
    #[serde(default)]
    pub seed: SeedSettings,
    /// Step-scaling settings; required when `strategy = "step"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<StepSettings>,
    /// The count a `fixed` policy holds; required when `strategy = "fixed"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<FixedSettings>,
}

impl Policy {
    /// A policy that holds `count` instances within `bounds` (the `fixed` strategy),
    /// every other setting at its default.
    pub fn fixed(bounds: Bounds, count: u32) -> Self {
        Policy {
            enabled: true,
            dry_run: false,
            strategy: Strategy::Fixed,
            evaluation_interval: default_evaluation_interval(),
            tolerance: default_tolerance(),
            bounds,
            metrics: Vec::new(),
            scale_out: ScaleOutBehaviour::default(),
            scale_in: ScaleInBehaviour::default(),
            schedules: Vec::new(),
            prediction: PredictionSettings::default(),
            spot: SpotMix::default(),
            seed: SeedSettings::default(),
            step: None,
            fixed: Some(FixedSettings { count }),
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_evaluation_interval() -> Duration {
    Duration::from_secs(15)
}
fn default_tolerance() -> f64 {
    0.1
}

/// The strategy that turns signals into a recommendation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[derive(strum::IntoStaticStr, strum::EnumString, strum::VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum Strategy {
    /// The original weighted-score design, kept faithful so it can be measured.
    Seed,
    /// Per-signal `ceil(n · value / target)`; any signal may scale out, all must agree to scale in.
    TargetTracking,
    /// AWS step scaling: adjustments by how far a metric is past a threshold.
    Step,
    /// Only the schedules (and bounds, and prediction if enabled) set the capacity.
    Schedule,
    /// Hold a fixed count (`fixed.count`), whatever the signals say; schedules and
    /// bounds still apply (nomad-autoscaler's `fixed-value`).
    Fixed,
}

impl Strategy {
    /// The snake_case name used in policy files.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Instance-count bounds: `min ≤ initial ≤ max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Bounds {
    /// Fewest instances (≥ 0).
    pub min: u32,
    /// Most instances (≥ 1, ≥ min).
    pub max: u32,
    /// Count created when the pool is first provisioned; default `min`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial: Option<u32>,
}

impl Bounds {
    /// `initial`, or `min` when not set.
    pub fn initial_or_min(&self) -> u32 {
        self.initial.unwrap_or(self.min)
    }
}

/// One signal the policy reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Metric {
    /// Name that observations carry (unique within the policy).
    pub name: String,
    /// What the signal measures; selects the seed formula and documents units.
    pub kind: MetricKind,
    /// Where the agent reads the signal.
    pub source: MetricSource,
    /// Target value (target tracking, prediction). For `per_instance` metrics, the target per instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<f64>,
    /// Seed strategy: the value above which the signal votes to scale out (overrides the seed default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_out_above: Option<f64>,
    /// Seed strategy: the value below which the signal votes to scale in (overrides the seed default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_in_below: Option<f64>,
    /// Seed strategy: weight of the signal's score (≥ 0). Default by kind: cpu 0.3, memory 0.25,
    /// response_time 0.25, queue_length 0.15, others 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
    /// Aggregation window: the signal's value is the mean of its observations within this
    /// window before `now`. `0s` (default) uses the latest observation only.
    #[serde(default, with = "duration_text")]
    #[schemars(with = "DurationText")]
    pub duration: Duration,
    /// The observation is a pool total (e.g. queue length) and `target` is per instance:
    /// desired = ceil(total / target), independent of the current count.
    #[serde(default)]
    pub per_instance: bool,
    /// What to do when the signal is missing or stale.
    #[serde(default)]
    pub missing_data: MissingData,
    /// How often the source produces a reading. Default by source: Cloud Eye `SYS.ECS`
    /// `5m` (basic monitoring, no guest agent), other Cloud Eye namespaces `1m`,
    /// Prometheus `1m`, pushed values `1m`, Redis `0s` (read live on every pass).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_duration_text"
    )]
    #[schemars(with = "Option<DurationText>")]
    pub period: Option<Duration>,
    /// How long after its period ends a reading becomes visible. Default by source:
    /// Cloud Eye `2m`, others `0s`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_duration_text"
    )]
    #[schemars(with = "Option<DurationText>")]
    pub delivery_delay: Option<Duration>,
    /// An observation older than this is stale. Default: the source's `period` +
    /// `delivery_delay` + the policy's `evaluation_interval` (the age the newest reading
    /// can reach when the source is working).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_duration_text"
    )]
    #[schemars(with = "Option<DurationText>")]
    pub stale_after: Option<Duration>,
    /// Capacity to fall back to when `missing_data = "fallback"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_capacity: Option<u32>,
    /// Trend extrapolation: when set, a rising signal is read ahead by this lead — its
    /// value becomes `value + slope · trend_lead`, where `slope` is the least-squares slope
    /// of its observations within `trend_window` (a falling or flat signal is read as is).
    /// Use the time a new instance takes to serve (boot + warm-up + metric delay) so
    /// capacity launched now meets the load it will find. `0s` (default) is off.
    #[serde(default, with = "duration_text")]
    #[schemars(with = "DurationText")]
    pub trend_lead: Duration,
    /// Observations the trend slope is fitted over (at least 3 are needed). Default `10m`.
    #[serde(default = "default_trend_window", with = "duration_text")]
    #[schemars(with = "DurationText")]
    pub trend_window: Duration,
    /// The most the trend may raise the value, as a fraction of it (default `0.5` = +50 %):
    /// a single jump (a spike) fitted as a slope would otherwise be extrapolated far past
    /// the load it came from.
    #[serde(default = "default_trend_max_raise")]
    pub trend_max_raise: f64,
    /// How sure the rise must be: the slope used is the fitted slope minus this many of its
    /// standard errors (default `1.0`; `0` uses the fitted slope). Noise around a flat level
    /// then reads as no trend, a steady ramp as one.
    #[serde(default = "default_trend_significance")]
    pub trend_significance: f64,
    /// Jitter margin: the raise is lowered by this many times the median absolute change
    /// between successive observations within `trend_window` (default `0` = off). A signal
    /// that moves in steps (flat between changes) has no jitter and keeps its full raise;
    /// per-minute noise has a large one, so only a rise well beyond it counts.
    #[serde(default)]
    pub trend_noise_margin: f64,
    /// Square-root staffing (target tracking): a proposal of `R = value / target` instances
    /// becomes `ceil(R + sqrt_headroom · √R)`, so spare capacity grows with the square root
    /// of the load rather than in proportion to it — a 2-instance pool keeps a larger share
    /// spare than an 80-instance one, as the relative swing of a random arrival stream is
    /// larger at a small rate. Default `0` (off).
    #[serde(default)]
    pub sqrt_headroom: f64,
    /// Noise headroom (target tracking): the value is read as `value + noise_headroom · σ`,
    /// where `σ` is the mean absolute change between successive observations within
    /// `noise_window` — a measure of how much the signal jumps from one reading to the
    /// next. Spare capacity then follows how bursty the load has been lately: a steady
    /// signal gets none, a jumpy one enough to ride its usual jumps without waiting for
    /// new instances. Default `0` (off).
    #[serde(default)]
    pub noise_headroom: f64,
    /// Observations `σ` is measured over (`noise_headroom`). Default `1h`.
    #[serde(default = "default_noise_window", with = "duration_text")]
    #[schemars(with = "DurationText")]
    pub noise_window: Duration,
    /// A source whose readings come further apart than this (its `period`) is coarse:
    /// `coarse_sqrt_headroom` and `coarse_noise_headroom`, where set, replace
    /// `sqrt_headroom` and `noise_headroom` for it. Default `1m` (Cloud Eye's basic
    /// 5-minute `SYS.ECS` data is coarse, 1-minute data is not).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_duration_text"
    )]
    #[schemars(with = "Option<DurationText>")]
    pub coarse_above: Option<Duration>,
    /// `sqrt_headroom` for coarse readings (see `coarse_above`). Default: `sqrt_headroom`.
    /// Readings minutes apart leave the pool longer on what it last saw, so it needs more
    /// spare capacity than per-minute readings call for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coarse_sqrt_headroom: Option<f64>,
    /// `noise_headroom` for coarse readings (see `coarse_above`). Default: `noise_headroom`.
    /// The mean jump between readings minutes apart is a jump over minutes, so the same
    /// multiple buys far more spare than at a one-minute period; `0` turns it off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coarse_noise_headroom: Option<f64>,
}

/// The square-root and noise headroom a metric applies (see [`Metric::headroom`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Headroom {
    /// Square-root staffing `β`.
    pub sqrt: f64,
    /// Noise headroom `z`.
    pub noise: f64,
    /// Whether the source's readings are coarse (further apart than `coarse_above`), so
    /// that any `coarse_*` value set replaced the metric's own.
    pub coarse: bool,
}

/// Default of [`Metric::coarse_above`].
pub const COARSE_ABOVE: Duration = Duration::from_secs(60);

impl Metric {
    /// How far back `decide()` reads this metric's observations: the aggregation window,
    /// the staleness limit, with `trend_lead` set the trend window, and with
    /// `noise_headroom` set the noise window. Callers pass at
    /// least this much history as observations.
    pub fn lookback(&self, evaluation_interval: Duration) -> Duration {
        let trend = if self.trend_lead.is_zero() {
            Duration::ZERO
        } else {
            self.trend_window
        };
        let noise = if self.headroom().noise > 0.0 {
            self.noise_window
        } else {
            Duration::ZERO
        };
        self.duration
            .max(self.freshness(evaluation_interval).limit)
            .max(trend)
            .max(noise)
    }

    /// The headroom in effect for this metric's source: [`Metric::headroom_at`] its
    /// period.
    pub fn headroom(&self) -> Headroom {
        self.headroom_at(self.source_period())
    }

    /// The headroom in effect for readings `period` apart: `coarse_sqrt_headroom` and
    /// `coarse_noise_headroom` (where set) when `period` is longer than `coarse_above`,
    /// else `sqrt_headroom` and `noise_headroom`.
    pub fn headroom_at(&self, period: Duration) -> Headroom {
        let coarse = period > self.coarse_above.unwrap_or(COARSE_ABOVE);
        let pick = |fine: f64, c: Option<f64>| if coarse { c.unwrap_or(fine) } else { fine };
        Headroom {
            sqrt: pick(self.sqrt_headroom, self.coarse_sqrt_headroom),
            noise: pick(self.noise_headroom, self.coarse_noise_headroom),
            coarse,
        }
    }

    /// The same metric with the headroom in effect for readings `period` apart written
    /// into `sqrt_headroom` and `noise_headroom`, and no `coarse_*` settings: what a search
    /// over those two values starts from ([`Metric::unsettled`] is the way back).
    pub fn settled(&self, period: Duration) -> Metric {
        let h = self.headroom_at(period);
        Metric {
            sqrt_headroom: h.sqrt,
            noise_headroom: h.noise,
            coarse_above: None,
            coarse_sqrt_headroom: None,
            coarse_noise_headroom: None,
            ..self.clone()
        }
    }

    /// `self`, a [`Metric::settled`] form of `original` (for readings `period` apart)
    /// that may have changed since, with `original`'s `coarse_*` settings back and its
    /// headroom written where it takes effect at `period`: into a `coarse_*` value that
    /// `original` sets for a coarse period (its own value then kept as `original` has it),
    /// else into the metric's own value.
    pub fn unsettled(&self, original: &Metric, period: Duration) -> Metric {
        let coarse = original.headroom_at(period).coarse;
        let mut m = self.clone();
        m.coarse_above = original.coarse_above;
        m.coarse_sqrt_headroom = original.coarse_sqrt_headroom;
        m.coarse_noise_headroom = original.coarse_noise_headroom;
        if coarse {
            if let Some(c) = &mut m.coarse_sqrt_headroom {
                *c = self.sqrt_headroom;
                m.sqrt_headroom = original.sqrt_headroom;
            }
            if let Some(c) = &mut m.coarse_noise_headroom {
                *c = self.noise_headroom;
                m.noise_headroom = original.noise_headroom;
            }
        }
        m
    }

    /// The source's period: declared, or the source's default.
    pub fn source_period(&self) -> Duration {
        self.period.unwrap_or_else(|| self.source.default_period())
    }

    /// The source's delivery delay: declared, or the source's default.
    pub fn source_delay(&self) -> Duration {
        self.delivery_delay
            .unwrap_or_else(|| self.source.default_delivery_delay())
    }

    /// When this metric's latest reading counts as stale (see [`Freshness`]).
    pub fn freshness(&self, evaluation_interval: Duration) -> Freshness {
        let (period, delay) = (self.source_period(), self.source_delay());
        Freshness {
            limit: self
                .stale_after
                .unwrap_or(period + delay + evaluation_interval),
            period,
            delay,
            interval: evaluation_interval,
            explicit: self.stale_after.is_some(),
        }
    }
}

/// A metric's freshness rule: a reading is stale when it is older than `limit`, which is
/// the source's period + delivery delay + one evaluation interval unless `stale_after`
/// sets it. A working source never produces a reading older than that, so stale means
/// the source stopped, not that it is slow. One rule for the agent and the simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// Age beyond which the latest reading is stale.
    pub limit: Duration,
    /// The source's period.
    pub period: Duration,
    /// The source's delivery delay.
    pub delay: Duration,
    /// The policy's evaluation interval.
    pub interval: Duration,
    /// Whether `stale_after` set the limit.
    pub explicit: bool,
}

impl std::fmt::Display for Freshness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::time::format_duration as d;
        if self.explicit {
            write!(f, "stale_after {}", d(self.limit))
        } else {
            write!(
                f,
                "{} = period {} + delivery delay {} + evaluation interval {}",
                d(self.limit),
                d(self.period),
                d(self.delay),
                d(self.interval)
            )
        }
    }
}

fn default_trend_window() -> Duration {
    Duration::from_secs(600)
}

fn default_noise_window() -> Duration {
    Duration::from_secs(3600)
}

fn default_trend_max_raise() -> f64 {
    0.5
}

fn default_trend_significance() -> f64 {
    1.0
}

/// What a signal measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[derive(strum::IntoStaticStr, strum::EnumString, strum::VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum MetricKind {
    /// Mean CPU utilisation of ready instances, percent.
    Cpu,
    /// Mean memory utilisation of ready instances, percent.
    Memory,
    /// Response time, milliseconds.
    ResponseTime,
    /// Queue length (requests or messages waiting).
    QueueLength,
    /// Error rate, percent of requests.
    ErrorRate,
    /// Mean GPU utilisation of ready instances, percent.
    Gpu,
    /// Anything else; units are the user's.
    Custom,
}

impl MetricKind {
    /// The snake_case name used in policy files.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Whether values are percentages (0..=100).
    pub fn is_percent(self) -> bool {
        matches!(
            self,
            MetricKind::Cpu | MetricKind::Memory | MetricKind::Gpu | MetricKind::ErrorRate
        )
    }
}

/// Where the agent reads a signal. The engine itself never reads anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum MetricSource {
    /// Huawei Cloud Eye (CES) metric of the pool's instances.
    CloudEye {
        /// CES namespace, e.g. `SYS.ECS` or `AGT.ECS`.
        #[serde(default = "default_ces_namespace")]
        namespace: String,
        /// CES metric name, e.g. `cpu_util`.
        metric_name: String,
    },
    /// A PromQL query whose result is one number.
    Prometheus {
        /// The PromQL query.
        query: String,
    },
    /// A Redis key (list length, or a numeric string).
    Redis {
        /// The key to read.
        key: String,
    },
    /// Values pushed to the agent's API (or supplied by a simulator).
    Push,
}

impl MetricSource {
    /// How often the source produces a reading unless the metric declares `period`.
    pub fn default_period(&self) -> Duration {
        match self {
            MetricSource::CloudEye { namespace, .. } if namespace == "SYS.ECS" => {
                Duration::from_secs(300)
            }
            MetricSource::Redis { .. } => Duration::ZERO,
            _ => Duration::from_secs(60),
        }
    }

    /// How late the source delivers unless the metric declares `delivery_delay`.
    pub fn default_delivery_delay(&self) -> Duration {
        match self {
            MetricSource::CloudEye { .. } => Duration::from_secs(120),
            _ => Duration::ZERO,
        }
    }
}

fn default_ces_namespace() -> String {
    "SYS.ECS".into()
}

/// What to do when a signal is missing or stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MissingData {
    /// The signal proposes nothing and blocks scale-in; other signals may still scale out.
    #[default]
    BlockScaleIn,
    /// No scaling in either direction while the signal is missing (AWS INSUFFICIENT_DATA).
    Hold,
    /// Drop the signal; the others decide alone (including scale-in).
    Ignore,
    /// Propose `fallback_capacity` (KEDA fallback).
    Fallback,
}

/// How the recommendations of several rate policies combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SelectPolicy {
    /// The policy allowing the biggest change wins.
    #[default]
    Max,
    /// The policy allowing the smallest change wins.
    Min,
    /// No change in this direction at all.
    Disabled,
}

/// One rate limit (HPA `behavior` policy).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RatePolicy {
    /// Instances or percent.
    #[serde(rename = "type")]
    pub kind: RateKind,
    /// How many instances (≥ 1) or what percent (1..=1000 for scale-out, 1..=100 for scale-in).
    pub value: u32,
    /// Sliding period (> 0).
    #[serde(with = "duration_text")]
    #[schemars(with = "DurationText")]
    pub period: Duration,
}

/// Unit of a [`RatePolicy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RateKind {
    /// A number of instances per period.
    Pods,
    /// A percentage of the count at the start of the period.
    Percent,
}

/// Scale-out behaviour. Defaults (HPA): no stabilisation, up to +100 % or +4 instances
/// (whichever is more) per 15 s, no cooldown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaleOutBehaviour {
    /// Minimum time after the last scale-out before scaling out again. Default `0s`.
    #[serde(default, with = "duration_text")]
    #[schemars(with = "DurationText")]
    pub cooldown: Duration,
    /// Scale-out follows the minimum of the recommendations inside this window. Default `0s`.
    #[serde(default, with = "duration_text")]
    #[schemars(with = "DurationText")]
    pub stabilisation_window: Duration,
    /// How the rate policies combine. Default `max`.
    #[serde(default)]
    pub select: SelectPolicy,
    /// Rate limits; an empty list means unlimited. Default `[percent 100/15s, pods 4/15s]`.
    #[serde(default = "default_out_policies")]
    pub policies: Vec<RatePolicy>,
}

impl Default for ScaleOutBehaviour {
    fn default() -> Self {
        ScaleOutBehaviour {
            cooldown: Duration::ZERO,
            stabilisation_window: Duration::ZERO,
            select: SelectPolicy::Max,
            policies: default_out_policies(),
        }
    }
}

/// Scale-in behaviour. Defaults (HPA): 300 s stabilisation, up to −100 % per 15 s, no cooldown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaleInBehaviour {
    /// Minimum time after the last scaling action (either direction) before scaling in. Default `0s`.
    #[serde(default, with = "duration_text")]
    #[schemars(with = "DurationText")]
    pub cooldown: Duration,
    /// Scale-in follows the maximum of the recommendations inside this window. Default `5m`.
    #[serde(default = "default_in_window", with = "duration_text")]
    #[schemars(with = "DurationText")]
    pub stabilisation_window: Duration,
    /// How the rate policies combine. Default `max`.
    #[serde(default)]
    pub select: SelectPolicy,
    /// Rate limits; an empty list means unlimited. Default `[percent 100/15s]`.
    #[serde(default = "default_in_policies")]
    pub policies: Vec<RatePolicy>,
}

impl Default for ScaleInBehaviour {
    fn default() -> Self {
        ScaleInBehaviour {
            cooldown: Duration::ZERO,
            stabilisation_window: default_in_window(),
            select: SelectPolicy::Max,
            policies: default_in_policies(),
        }
    }
}

fn default_in_window() -> Duration {
    Duration::from_secs(300)
}
fn default_out_policies() -> Vec<RatePolicy> {
    vec![
        RatePolicy {
            kind: RateKind::Percent,
            value: 100,
            period: Duration::from_secs(15),
        },
        RatePolicy {
            kind: RateKind::Pods,
            value: 4,
            period: Duration::from_secs(15),
        },
    ]
}
fn default_in_policies() -> Vec<RatePolicy> {
    vec![RatePolicy {
        kind: RateKind::Percent,
        value: 100,
        period: Duration::from_secs(15),
    }]
}

/// A cron-driven minimum capacity: from each time `cron` fires (in `timezone`) and for
/// `duration`, the pool keeps at least `min_capacity` instances — only between
/// `start_time` and `end_time` when they are set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Name shown in explanations.
    pub name: String,
    /// Five-field cron expression (minute hour day-of-month month day-of-week), read in
    /// `timezone`.
    pub cron: String,
    /// How long each occurrence lasts (> 0).
    #[serde(with = "duration_text")]
    #[schemars(with = "DurationText")]
    pub duration: Duration,
    /// Minimum capacity while active (≤ bounds.max).
    pub min_capacity: u32,
    /// IANA time zone the cron expression is read in, e.g. `Asia/Shanghai`; default `UTC`.
    /// Daylight-saving changes follow the zone.
    #[serde(default = "utc", skip_serializing_if = "is_utc")]
    pub timezone: String,
    /// RFC 3339 time before which the schedule does not apply, e.g. `2026-11-01T00:00:00+08:00`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// RFC 3339 time from which the schedule no longer applies (after `start_time`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
}

fn utc() -> String {
    "UTC".to_owned()
}

fn is_utc(tz: &str) -> bool {
    tz == "UTC"
}

/// Whether a forecast only informs or also scales.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PredictionMode {
    /// Forecasts are computed and explained but never change capacity (the AWS default).
    #[default]
    ForecastOnly,
    /// Capacity is raised to the forecast's need (never lowered).
    ForecastAndScale,
}

/// Forecast settings. The forecast itself is computed outside `decide()` (from history)
/// and passed in as a [`crate::Prediction`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PredictionSettings {
    /// Whether a forecast is used at all. Default false.
    #[serde(default)]
    pub enabled: bool,
    /// Forecast only, or forecast and scale. Default `forecast_only`.
    #[serde(default)]
    pub mode: PredictionMode,
    /// Name of the metric (a pool total, e.g. requests/s) to forecast; required when enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// Load one instance carries at target; forecast capacity = ceil(forecast / this). Required when enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_per_instance: Option<f64>,
    /// How far ahead the forecast must look: boot + warm-up time. Default `5m`.
    #[serde(default = "default_lead_time", with = "duration_text")]
    #[schemars(with = "DurationText")]
    pub lead_time: Duration,
    /// How much history the forecaster fits on. Default `14d`.
    #[serde(default = "default_history_window", with = "duration_text")]
    #[schemars(with = "DurationText")]
    pub history_window: Duration,
    /// Seasonal periods. Default `["1d", "7d"]`.
    #[serde(default = "default_seasonality", with = "duration_list_text")]
    #[schemars(with = "Vec<DurationText>")]
    pub seasonality: Vec<Duration>,
    /// How often the model is refitted. Default `6h`.
    #[serde(default = "default_refit", with = "duration_text")]
    #[schemars(with = "DurationText")]
    pub refit_interval: Duration,
    /// The forecast counts at most as this multiple of the metric's current value (≥ 1;
    /// none = no cap). A seasonal forecast repeats yesterday's burst today; the cap keeps
    /// such a miss from holding capacity far above the load, while a forecast rise up to
    /// the cap is still bought ahead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ratio: Option<f64>,
    /// The forecast level counts only while the history it is fitted on is at least
    /// this seasonal (0..=1; none = always): the strength of its shortest seasonal
    /// period, `1 − var(remainder) / var(detrended)`
    /// ([`crate::forecast::seasonality::seasonal_strength`]). A series whose bursts
    /// do not recur at the same time of day then does not hold capacity for
    /// yesterday's burst (`relative_rise` is not gated). Checked by the caller that
    /// computes the forecast ([`PredictionSettings::prediction_value`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_seasonal_strength: Option<f64>,
    /// Also read the forecast as a relative change: the metric's current value times
    /// the forecast's rise over the lead time (`forecast(now … now + lead) /
    /// forecast(now)`, at least 1). The larger of this and the forecast level (when
    /// admitted by `min_seasonal_strength`) is passed to `decide()`. The daily shape
    /// of the load then buys capacity ahead of a usual rise without holding
    /// yesterday's level. Default false. Computed by the caller
    /// ([`PredictionSettings::prediction_value`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub relative_rise: bool,
}

impl Default for PredictionSettings {
    fn default() -> Self {
        PredictionSettings {
            enabled: false,
            mode: PredictionMode::ForecastOnly,
            metric: None,
            target_per_instance: None,
            lead_time: default_lead_time(),
            history_window: default_history_window(),
            seasonality: default_seasonality(),
            refit_interval: default_refit(),
            max_ratio: None,
            min_seasonal_strength: None,
            relative_rise: false,
        }
    }
}

impl PredictionSettings {
    /// Whether a forecast fitted on a history with this seasonal strength
    /// (`None`: unknown, e.g. under two cycles) may be passed to `decide()`:
    /// always without `min_seasonal_strength`, otherwise only when the strength is
    /// known and at least the minimum.
    pub fn admits_forecast(&self, seasonal_strength: Option<f64>) -> bool {
        match self.min_seasonal_strength {
            None => true,
            Some(min) => seasonal_strength.is_some_and(|s| s >= min),
        }
    }

    /// The value of the prediction metric to pass to `decide()` as the
    /// [`crate::Prediction`], or `None` to pass none.
    ///
    /// `ahead` is the highest forecast over `[now, now + lead_time]`, `at_now` the
    /// forecast for now, `current` the metric's latest value, `seasonal_strength`
    /// what [`PredictionSettings::seasonal_strength`] measured on the history the
    /// forecast was fitted on. The forecast level `ahead` counts when
    /// [`PredictionSettings::admits_forecast`] allows it; with `relative_rise`,
    /// `current · max(1, ahead / at_now)` counts too (when `at_now > 0` and `current`
    /// is known); the larger is returned.
    pub fn prediction_value(
        &self,
        ahead: f64,
        at_now: Option<f64>,
        current: Option<f64>,
        seasonal_strength: Option<f64>,
    ) -> Option<f64> {
        let level = (ahead.is_finite() && self.admits_forecast(seasonal_strength)).then_some(ahead);
        let relative = if self.relative_rise {
            match (at_now, current) {
                (Some(f), Some(c))
                    if f > 0.0 && f.is_finite() && c.is_finite() && ahead.is_finite() =>
                {
                    Some(c * (ahead / f).max(1.0))
                }
                _ => None,
            }
        } else {
            None
        };
        match (level, relative) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// The seasonal strength of a forecast history `y` (one point per `step_s`
    /// seconds) for the policy's shortest seasonal period, as
    /// [`PredictionSettings::admits_forecast`] expects it. `None` when no period
    /// spans at least two points or the history is under two cycles.
    pub fn seasonal_strength(&self, y: &[f64], step_s: f64) -> Option<f64> {
        let period = self
            .seasonality
            .iter()
            .map(|d| (d.as_secs_f64() / step_s).round() as usize)
            .filter(|&p| p >= 2)
            .min()?;
        crate::forecast::seasonality::seasonal_strength(y, period)
    }
}

fn default_lead_time() -> Duration {
    Duration::from_secs(300)
}
fn default_history_window() -> Duration {
    Duration::from_secs(14 * 86_400)
}
fn default_seasonality() -> Vec<Duration> {
    vec![Duration::from_secs(86_400), Duration::from_secs(7 * 86_400)]
}
fn default_refit() -> Duration {
    Duration::from_secs(6 * 3600)
}

/// Spot / on-demand split: the first `on_demand_base` instances are on-demand, and
/// `spot_percentage` percent of the rest (rounded down) are spot.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SpotMix {
    /// Instances that are always on-demand. Default 0.
    #[serde(default)]
    pub on_demand_base: u32,
    /// Percent (0..=100) of the instances above the base that are spot. Default 0.
    #[serde(default)]
    pub spot_percentage: f64,
}

/// One seed score band: above `scale_out_above` the score is
/// `min((v − out_origin) / out_span, 1)`, below `scale_in_below` it is
/// `max((v − scale_in_below) / in_span, −1)`, 0 in between.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SeedBand {
    /// Upper edge of the dead band.
    pub scale_out_above: f64,
    /// Lower edge of the dead band.
    pub scale_in_below: f64,
    /// Origin of the scale-out ramp (equals `scale_out_above` except for the queue: 0).
    pub out_origin: f64,
    /// Width of the scale-out ramp (> 0).
    pub out_span: f64,
    /// Width of the scale-in ramp (> 0).
    pub in_span: f64,
}

impl SeedBand {
    /// The band's score for a value, in [-1, 1].
    pub fn score(&self, v: f64) -> f64 {
        if v > self.scale_out_above {
            ((v - self.out_origin) / self.out_span).min(1.0)
        } else if v < self.scale_in_below {
            ((v - self.scale_in_below) / self.in_span).max(-1.0)
        } else {
            0.0
        }
    }
}

/// Every constant of the original weighted-score design, with its original value as default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SeedSettings {
    /// CPU band: 70 / 30, ramps (c−70)/30 and (c−30)/30.
    #[serde(default = "seed_cpu")]
    pub cpu: SeedBand,
    /// Memory band: 80 / 40, ramps (m−80)/20 and (m−40)/40.
    #[serde(default = "seed_memory")]
    pub memory: SeedBand,
    /// Response-time band (ms): 2000 / 500, ramps (r−2000)/3000 and (r−500)/500.
    #[serde(default = "seed_response")]
    pub response_time: SeedBand,
    /// Queue band: 100 / 50, ramps q/200 and (q−50)/50.
    #[serde(default = "seed_queue")]
    pub queue_length: SeedBand,
    /// Weight of the trend term. Default 0.05.
    #[serde(default = "seed_trend_weight")]
    pub trend_weight: f64,
    /// Trend = tanh(slope / trend_divisor). Default 10.
    #[serde(default = "seed_trend_divisor")]
    pub trend_divisor: f64,
    /// Number of CPU samples in the trend regression (trend is 0 with fewer). Default 10.
    #[serde(default = "seed_trend_samples")]
    pub trend_samples: u32,
    /// Score above which the pool scales out. Default 0.3.
    #[serde(default = "seed_threshold")]
    pub scale_out_score: f64,
    /// Score below which the pool scales in. Default −0.3.
    #[serde(default = "seed_threshold_in")]
    pub scale_in_score: f64,
    /// Scale-out step = max(1, floor(n · min(score, 1) · out_factor)). Default 0.5.
    #[serde(default = "seed_out_factor")]
    pub out_factor: f64,
    /// Scale-in step = max(1, floor(n · |score| · in_factor)). Default 0.3.
    #[serde(default = "seed_in_factor")]
    pub in_factor: f64,
    /// One cooldown for both directions, from the last action. Default `300s`.
    #[serde(default = "seed_cooldown", with = "duration_text")]
    #[schemars(with = "DurationText")]
    pub cooldown: Duration,
}

impl Default for SeedSettings {
    fn default() -> Self {
        SeedSettings {
            cpu: seed_cpu(),
            memory: seed_memory(),
            response_time: seed_response(),
            queue_length: seed_queue(),
            trend_weight: seed_trend_weight(),
            trend_divisor: seed_trend_divisor(),
            trend_samples: seed_trend_samples(),
            scale_out_score: seed_threshold(),
            scale_in_score: seed_threshold_in(),
            out_factor: seed_out_factor(),
            in_factor: seed_in_factor(),
            cooldown: seed_cooldown(),
        }
    }
}

impl SeedSettings {
    /// The band for a metric kind (`None` for kinds the seed design does not score).
    pub fn band(&self, kind: MetricKind) -> Option<&SeedBand> {
        match kind {
            MetricKind::Cpu => Some(&self.cpu),
            MetricKind::Memory => Some(&self.memory),
            MetricKind::ResponseTime => Some(&self.response_time),
            MetricKind::QueueLength => Some(&self.queue_length),
            _ => None,
        }
    }

    /// The seed default weight of a metric kind.
    pub fn default_weight(kind: MetricKind) -> f64 {
        match kind {
            MetricKind::Cpu => 0.3,
            MetricKind::Memory => 0.25,
            MetricKind::ResponseTime => 0.25,
            MetricKind::QueueLength => 0.15,
            _ => 0.0,
        }
    }
}

fn seed_cpu() -> SeedBand {
    SeedBand {
        scale_out_above: 70.0,
        scale_in_below: 30.0,
        out_origin: 70.0,
        out_span: 30.0,
        in_span: 30.0,
    }
}
fn seed_memory() -> SeedBand {
    SeedBand {
        scale_out_above: 80.0,
        scale_in_below: 40.0,
        out_origin: 80.0,
        out_span: 20.0,
        in_span: 40.0,
    }
}
fn seed_response() -> SeedBand {
    SeedBand {
        scale_out_above: 2000.0,
        scale_in_below: 500.0,
        out_origin: 2000.0,
        out_span: 3000.0,
        in_span: 500.0,
    }
}
fn seed_queue() -> SeedBand {
    SeedBand {
        scale_out_above: 100.0,
        scale_in_below: 50.0,
        out_origin: 0.0,
        out_span: 200.0,
        in_span: 50.0,
    }
}
fn seed_trend_weight() -> f64 {
    0.05
}
fn seed_trend_divisor() -> f64 {
    10.0
}
fn seed_trend_samples() -> u32 {
    10
}
fn seed_threshold() -> f64 {
    0.3
}
fn seed_threshold_in() -> f64 {
    -0.3
}
fn seed_out_factor() -> f64 {
    0.5
}
fn seed_in_factor() -> f64 {
    0.3
}
fn seed_cooldown() -> Duration {
    Duration::from_secs(300)
}

/// The `fixed` strategy's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FixedSettings {
    /// The instance count to hold (within `bounds`).
    pub count: u32,
}

/// How a step adjustment changes capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AdjustmentType {
    /// Add (or remove, if negative) this many instances.
    #[default]
    ChangeInCapacity,
    /// Set capacity to exactly this many instances.
    ExactCapacity,
    /// Change capacity by this percent of the current capacity (AWS rounding).
    PercentChangeInCapacity,
}

/// AWS-style step scaling on one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepSettings {
    /// Name of the metric the steps read.
    pub metric: String,
    /// Breach threshold; step bounds are relative to it.
    pub threshold: f64,
    /// How the adjustments apply. Default `change_in_capacity`.
    #[serde(default)]
    pub adjustment_type: AdjustmentType,
    /// Smallest magnitude of a percent adjustment (≥ 1). Default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_adjustment_magnitude: Option<u32>,
    /// The steps; none may overlap.
    pub adjustments: Vec<StepAdjustment>,
}

/// One step: applies when `lower ≤ value − threshold < upper` (above the threshold) or
/// `lower < value − threshold ≤ upper` (below it). A missing bound is open-ended.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepAdjustment {
    /// Lower bound relative to the threshold (none = −∞).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lower: Option<f64>,
    /// Upper bound relative to the threshold (none = +∞).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upper: Option<f64>,
    /// The adjustment (instances, exact count, or percent per `adjustment_type`).
    pub adjustment: f64,
}
