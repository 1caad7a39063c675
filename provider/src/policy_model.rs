//! The Terraform model of `flexus_autoscaling_policy` and its conversion to and from the
//! `flexus-policy` model.
//!
//! Terraform → policy goes through the policy's JSON form and `flexus_policy::parse_json`,
//! the same parser and validator the agent runs, so every problem comes back with a field
//! path that [`crate::errors::policy_path`] maps onto the attribute. Plural lists of the
//! policy model are repeated singular blocks here (`metrics` → `metric { }`, `policies` →
//! `policy { }`, `schedules` → `schedule { }`, `adjustments` → `adjustment { }`).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use flexus_policy::{
    MetricSource, Policy, PredictionSettings, RatePolicy, ScaleInBehaviour, ScaleOutBehaviour,
    SeedBand, SeedSettings, SpotMix, format_duration,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as J, json};

use crate::pool::NAME_PATTERN;

/// An autoscaling policy of one pool, enforced by the Flexus agent: the full
/// `flexus-policy` model (strategy, metrics, scale-out and scale-in behaviour, schedules,
/// prediction, spot mix, seed and step settings). The plan validates it with the same code
/// the agent runs, and every problem points at the offending attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PolicyModel {
    /// The policy's id, `<namespace>/<name>`.
    #[schemars(extend("x-tf" = {"computed": true, "use_state_for_unknown": true}))]
    pub id: Option<String>,
    /// Namespace of the policy and its pool; defaults to the provider's `namespace`.
    /// Changing it replaces the policy.
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub namespace: Option<String>,
    /// Name of the policy. Changing it replaces the policy.
    #[schemars(regex(pattern = NAME_PATTERN))]
    #[schemars(extend("x-tf" = {"requires_replace": true}))]
    pub name: String,
    /// Name of the pool (same namespace) the policy scales, e.g. `flexus_x_pool.web.name`.
    /// Changing it replaces the policy.
    #[schemars(extend("x-tf" = {"requires_replace": true}))]
    pub pool: String,
    /// Whether the policy acts. A disabled policy keeps the count within the pool's bounds. Default `true`.
    #[schemars(extend("x-tf" = {"default": true}))]
    pub enabled: Option<bool>,
    /// Decide and record what would be done, never act. Default `false`.
    #[schemars(extend("x-tf" = {"default": false}))]
    pub dry_run: Option<bool>,
    /// Strategy: `target_tracking`, `step`, `schedule` or `seed`.
    pub strategy: String,
    /// How often the agent evaluates the policy, e.g. `"15s"` (default).
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub evaluation_interval: Option<String>,
    /// Target-tracking tolerance: no change while |value/target - 1| <= tolerance; [0, 1), default 0.1.
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub tolerance: Option<f64>,
    /// Instance-count bounds of the policy.
    pub bounds: BoundsModel,
    /// A signal the policy reads (repeat the block for several).
    #[serde(default)]
    pub metric: Vec<MetricModel>,
    /// How fast and how often the pool may grow (HPA `behavior` semantics).
    pub scale_out: Option<BehaviourModel>,
    /// How fast and how often the pool may shrink.
    pub scale_in: Option<BehaviourModel>,
    /// A cron-driven minimum capacity (repeat for several).
    #[serde(default)]
    pub schedule: Vec<ScheduleModel>,
    /// Forecast-driven (predictive) capacity.
    pub prediction: Option<PredictionModel>,
    /// Spot / on-demand split of the desired count.
    pub spot: Option<SpotMixModel>,
    /// Constants of the `seed` (weighted-score) strategy; every one defaults to the original design's value.
    pub seed: Option<SeedModel>,
    /// Step-scaling settings; required when `strategy = "step"`.
    pub step: Option<StepModel>,
}

/// Instance-count bounds: `min <= initial <= max`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BoundsModel {
    /// Fewest instances.
    pub min: u32,
    /// Most instances (>= 1, >= min).
    pub max: u32,
    /// Count created when the pool is first provisioned; default `min`.
    pub initial: Option<u32>,
}

/// One signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MetricModel {
    /// Name observations carry (unique within the policy).
    pub name: String,
    /// What the signal measures: `cpu`, `memory`, `response_time`, `queue_length`, `error_rate`, `gpu`, `custom`.
    pub kind: String,
    /// Where the agent reads the signal.
    pub source: SourceModel,
    /// Target value (target tracking, prediction); per instance when `per_instance`.
    pub target: Option<f64>,
    /// Seed strategy: value above which the signal votes to scale out.
    pub scale_out_above: Option<f64>,
    /// Seed strategy: value below which the signal votes to scale in.
    pub scale_in_below: Option<f64>,
    /// Seed strategy: weight of the signal's score (>= 0).
    pub weight: Option<f64>,
    /// Aggregation window (mean of the observations within it), e.g. `"1m"`; default `"0s"` (latest only).
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub duration: Option<String>,
    /// The observation is a pool total and `target` is per instance.
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub per_instance: Option<bool>,
    /// When the signal is missing or stale: `block_scale_in` (default), `hold`, `ignore`, `fallback`.
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub missing_data: Option<String>,
    /// How often the source produces a reading, e.g. `"5m"`; default by source: Cloud Eye `SYS.ECS` `"5m"`, other Cloud Eye namespaces, Prometheus and pushed values `"1m"`, Redis `"0s"`.
    pub period: Option<String>,
    /// How long after its period ends a reading becomes visible, e.g. `"2m"`; default: Cloud Eye `"2m"`, others `"0s"`.
    pub delivery_delay: Option<String>,
    /// An observation older than this is stale; default: the source's period + delivery delay + `evaluation_interval`.
    pub stale_after: Option<String>,
    /// Capacity proposed when `missing_data = "fallback"`.
    pub fallback_capacity: Option<u32>,
    /// Trend read-ahead: a rising signal is read this far ahead along its fitted slope, e.g. `"4m"`; default `"0s"` (off).
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub trend_lead: Option<String>,
    /// Observations the trend slope is fitted over; default `"10m"`.
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub trend_window: Option<String>,
    /// The most the trend may raise the value, as a fraction of it; default `0.5`.
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub trend_max_raise: Option<f64>,
    /// Standard errors subtracted from the fitted slope; default `1.0`.
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub trend_significance: Option<f64>,
    /// Lowers the raise by this many median absolute changes between observations; default `0` (off).
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub trend_noise_margin: Option<f64>,
    /// Square-root staffing: a proposal of `R` instances becomes `ceil(R + sqrt_headroom * sqrt(R))`; default `0` (off).
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub sqrt_headroom: Option<f64>,
    /// Noise headroom: the value is read as `value + noise_headroom * sigma`, sigma the mean absolute change between successive readings within `noise_window`; default `0` (off).
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub noise_headroom: Option<f64>,
    /// Readings the noise headroom's sigma is measured over; default `"1h"`.
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub noise_window: Option<String>,
    /// A source whose `period` is longer than this is coarse, and `coarse_sqrt_headroom` / `coarse_noise_headroom` (where set) replace `sqrt_headroom` / `noise_headroom` for it; default `"1m"`.
    pub coarse_above: Option<String>,
    /// `sqrt_headroom` for a coarse source (see `coarse_above`); default: `sqrt_headroom`.
    pub coarse_sqrt_headroom: Option<f64>,
    /// `noise_headroom` for a coarse source (see `coarse_above`); default: `noise_headroom`, `0` turns it off.
    pub coarse_noise_headroom: Option<f64>,
}

/// Where a signal comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SourceModel {
    /// `cloud_eye`, `prometheus`, `redis` or `push`.
    #[serde(rename = "type")]
    pub source_type: String,
    /// Cloud Eye namespace (`cloud_eye`), default `SYS.ECS`.
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub namespace: Option<String>,
    /// Cloud Eye metric name (`cloud_eye`), e.g. `cpu_util`.
    pub metric_name: Option<String>,
    /// PromQL query returning one number (`prometheus`).
    pub query: Option<String>,
    /// Redis key (`redis`).
    pub key: Option<String>,
}

/// Scale-out or scale-in behaviour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BehaviourModel {
    /// Minimum time after the last action before acting in this direction again, e.g. `"2m"`.
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub cooldown: Option<String>,
    /// Stabilisation window (scale-out: minimum, scale-in: maximum of recent recommendations).
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub stabilisation_window: Option<String>,
    /// How rate policies combine: `max` (default), `min`, `disabled`.
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub select: Option<String>,
    /// Set to `true` for no rate limit at all (an empty policy list); without `policy` blocks the defaults apply.
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub unlimited: Option<bool>,
    /// A rate limit (repeat for several).
    #[serde(default)]
    pub policy: Vec<RatePolicyModel>,
}

/// One rate limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RatePolicyModel {
    /// `pods` (instances) or `percent`.
    #[serde(rename = "type")]
    pub kind: String,
    /// How many instances or what percent per period.
    pub value: u32,
    /// Sliding period, e.g. `"30s"`.
    pub period: String,
}

/// A cron-driven minimum capacity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ScheduleModel {
    /// Name shown in explanations and errors.
    pub name: String,
    /// Five-field cron expression (minute hour day-of-month month day-of-week), read in `timezone`.
    pub cron: String,
    /// How long each occurrence lasts, e.g. `"2h"`.
    pub duration: String,
    /// Minimum capacity while active.
    pub min_capacity: u32,
    /// IANA time zone of `cron`, e.g. `"Asia/Shanghai"`; default `"UTC"`. Daylight-saving changes follow the zone.
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub timezone: Option<String>,
    /// RFC 3339 time before which the schedule does not apply, e.g. `"2026-11-01T00:00:00+08:00"`.
    pub start_time: Option<String>,
    /// RFC 3339 time from which the schedule no longer applies (after `start_time`).
    pub end_time: Option<String>,
}

/// Forecast settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PredictionModel {
    /// Whether a forecast is used at all.
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub enabled: Option<bool>,
    /// `forecast_only` (default) or `forecast_and_scale`.
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub mode: Option<String>,
    /// Metric (a pool total) to forecast.
    pub metric: Option<String>,
    /// Load one instance carries at target.
    pub target_per_instance: Option<f64>,
    /// How far ahead to look (boot + warm-up), default `"5m"`.
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub lead_time: Option<String>,
    /// History the forecaster fits on, default `"14d"`.
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub history_window: Option<String>,
    /// Seasonal periods, default `["1d", "7d"]`.
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub seasonality: Option<Vec<String>>,
    /// How often the model is refitted, default `"6h"`.
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub refit_interval: Option<String>,
    /// The forecast counts at most as this multiple (>= 1) of the metric's current value; default none (no cap).
    pub max_ratio: Option<f64>,
    /// The forecast level counts only while its history's daily (shortest-period) seasonal strength is at least this (0-1); default none (always).
    pub min_seasonal_strength: Option<f64>,
    /// Also apply the forecast's relative rise over the lead time to the metric's current value (the larger counts); default false.
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub relative_rise: Option<bool>,
}

/// Spot / on-demand split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SpotMixModel {
    /// Instances that are always on-demand.
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub on_demand_base: Option<u32>,
    /// Percent (0-100) of the instances above the base that are spot.
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub spot_percentage: Option<f64>,
}

/// Seed strategy constants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SeedModel {
    /// CPU band (default 70 / 30).
    pub cpu: Option<SeedBandModel>,
    /// Memory band (default 80 / 40).
    pub memory: Option<SeedBandModel>,
    /// Response-time band in ms (default 2000 / 500).
    pub response_time: Option<SeedBandModel>,
    /// Queue band (default 100 / 50).
    pub queue_length: Option<SeedBandModel>,
    /// Weight of the trend term (default 0.05).
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub trend_weight: Option<f64>,
    /// Trend = tanh(slope / trend_divisor) (default 10).
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub trend_divisor: Option<f64>,
    /// CPU samples in the trend regression (default 10).
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub trend_samples: Option<u32>,
    /// Score above which the pool scales out (default 0.3).
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub scale_out_score: Option<f64>,
    /// Score below which the pool scales in (default -0.3).
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub scale_in_score: Option<f64>,
    /// Scale-out step factor (default 0.5).
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub out_factor: Option<f64>,
    /// Scale-in step factor (default 0.3).
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub in_factor: Option<f64>,
    /// One cooldown for both directions (default `"300s"`).
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub cooldown: Option<String>,
}

/// One seed score band.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SeedBandModel {
    /// Upper edge of the dead band.
    pub scale_out_above: f64,
    /// Lower edge of the dead band.
    pub scale_in_below: f64,
    /// Origin of the scale-out ramp.
    pub out_origin: f64,
    /// Width of the scale-out ramp (> 0).
    pub out_span: f64,
    /// Width of the scale-in ramp (> 0).
    pub in_span: f64,
}

/// AWS-style step scaling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StepModel {
    /// Name of the metric the steps read.
    pub metric: String,
    /// Breach threshold; step bounds are relative to it.
    pub threshold: f64,
    /// `change_in_capacity` (default), `exact_capacity`, `percent_change_in_capacity`.
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub adjustment_type: Option<String>,
    /// Smallest magnitude of a percent adjustment.
    pub min_adjustment_magnitude: Option<u32>,
    /// One step (repeat; none may overlap).
    #[serde(default)]
    pub adjustment: Vec<StepAdjustmentModel>,
}

/// One step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StepAdjustmentModel {
    /// Lower bound relative to the threshold (unset: open).
    pub lower: Option<f64>,
    /// Upper bound relative to the threshold (unset: open).
    pub upper: Option<f64>,
    /// The adjustment (instances, exact count, or percent).
    pub adjustment: f64,
}

/// Inserts `v` under `k` when it is set.
fn put<T: Serialize>(m: &mut Map<String, J>, k: &str, v: &Option<T>) {
    if let Some(v) = v {
        m.insert(k.to_string(), serde_json::to_value(v).unwrap_or(J::Null));
    }
}

impl PolicyModel {
    /// The policy's JSON form (what `flexus_policy::parse_json` reads).
    pub fn to_policy_json(&self) -> J {
        let mut m = Map::new();
        put(&mut m, "enabled", &self.enabled);
        put(&mut m, "dry_run", &self.dry_run);
        m.insert("strategy".into(), J::String(self.strategy.clone()));
        put(&mut m, "evaluation_interval", &self.evaluation_interval);
        put(&mut m, "tolerance", &self.tolerance);
        let mut b = Map::new();
        b.insert("min".into(), json!(self.bounds.min));
        b.insert("max".into(), json!(self.bounds.max));
        put(&mut b, "initial", &self.bounds.initial);
        m.insert("bounds".into(), J::Object(b));
        if !self.metric.is_empty() {
            m.insert(
                "metrics".into(),
                J::Array(self.metric.iter().map(MetricModel::to_json).collect()),
            );
        }
        if let Some(s) = &self.scale_out {
            m.insert("scale_out".into(), s.to_json());
        }
        if let Some(s) = &self.scale_in {
            m.insert("scale_in".into(), s.to_json());
        }
        if !self.schedule.is_empty() {
            m.insert(
                "schedules".into(),
                J::Array(
                    self.schedule
                        .iter()
                        .map(|s| {
                            let mut x = Map::new();
                            x.insert("name".into(), J::String(s.name.clone()));
                            x.insert("cron".into(), J::String(s.cron.clone()));
                            x.insert("duration".into(), J::String(s.duration.clone()));
                            x.insert("min_capacity".into(), json!(s.min_capacity));
                            put(&mut x, "timezone", &s.timezone);
                            put(&mut x, "start_time", &s.start_time);
                            put(&mut x, "end_time", &s.end_time);
                            J::Object(x)
                        })
                        .collect(),
                ),
            );
        }
        if let Some(p) = &self.prediction {
            let mut x = Map::new();
            put(&mut x, "enabled", &p.enabled);
            put(&mut x, "mode", &p.mode);
            put(&mut x, "metric", &p.metric);
            put(&mut x, "target_per_instance", &p.target_per_instance);
            put(&mut x, "lead_time", &p.lead_time);
            put(&mut x, "history_window", &p.history_window);
            put(&mut x, "seasonality", &p.seasonality);
            put(&mut x, "refit_interval", &p.refit_interval);
            put(&mut x, "max_ratio", &p.max_ratio);
            put(&mut x, "min_seasonal_strength", &p.min_seasonal_strength);
            put(&mut x, "relative_rise", &p.relative_rise);
            m.insert("prediction".into(), J::Object(x));
        }
        if let Some(s) = &self.spot {
            let mut x = Map::new();
            put(&mut x, "on_demand_base", &s.on_demand_base);
            put(&mut x, "spot_percentage", &s.spot_percentage);
            m.insert("spot".into(), J::Object(x));
        }
        if let Some(s) = &self.seed {
            let mut x = Map::new();
            put(&mut x, "cpu", &s.cpu);
            put(&mut x, "memory", &s.memory);
            put(&mut x, "response_time", &s.response_time);
            put(&mut x, "queue_length", &s.queue_length);
            put(&mut x, "trend_weight", &s.trend_weight);
            put(&mut x, "trend_divisor", &s.trend_divisor);
            put(&mut x, "trend_samples", &s.trend_samples);
            put(&mut x, "scale_out_score", &s.scale_out_score);
            put(&mut x, "scale_in_score", &s.scale_in_score);
            put(&mut x, "out_factor", &s.out_factor);
            put(&mut x, "in_factor", &s.in_factor);
            put(&mut x, "cooldown", &s.cooldown);
            m.insert("seed".into(), J::Object(x));
        }
        if let Some(s) = &self.step {
            let mut x = Map::new();
            x.insert("metric".into(), J::String(s.metric.clone()));
            x.insert("threshold".into(), json!(s.threshold));
            put(&mut x, "adjustment_type", &s.adjustment_type);
            put(
                &mut x,
                "min_adjustment_magnitude",
                &s.min_adjustment_magnitude,
            );
            x.insert(
                "adjustments".into(),
                J::Array(
                    s.adjustment
                        .iter()
                        .map(|a| {
                            let mut y = Map::new();
                            put(&mut y, "lower", &a.lower);
                            put(&mut y, "upper", &a.upper);
                            y.insert("adjustment".into(), json!(a.adjustment));
                            J::Object(y)
                        })
                        .collect(),
                ),
            );
            m.insert("step".into(), J::Object(x));
        }
        J::Object(m)
    }

    /// Parses and validates the policy with `flexus-policy` (the agent's code). Results are
    /// remembered by the policy's JSON text: Terraform validates and plans every resource
    /// (and `count`/`for_each` repeat one policy many times), so the same policy would
    /// otherwise be parsed again and again in one provider process.
    pub fn to_policy(&self) -> Result<Policy, flexus_policy::Diagnostics> {
        type Parsed = Result<Policy, flexus_policy::Diagnostics>;
        static SEEN: OnceLock<Mutex<HashMap<String, Parsed>>> = OnceLock::new();
        const KEEP: usize = 4096;
        let json = self.to_policy_json();
        let key = json.to_string();
        let seen = SEEN.get_or_init(|| Mutex::new(HashMap::new()));
        if let Some(hit) = seen.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return hit;
        }
        let parsed = flexus_policy::parse_json_value(json);
        if let Ok(mut m) = seen.lock() {
            if m.len() >= KEEP {
                m.clear();
            }
            m.insert(key, parsed.clone());
        }
        parsed
    }

    /// The Terraform model of a stored policy. With `prior` (state) whose policy means the
    /// same, the prior spelling is kept (no diff) and only what it left unset is filled in;
    /// otherwise (drift, import) the [`explicit`](Self::explicit) rendering.
    pub fn from_policy(
        id: &str,
        namespace: &str,
        name: &str,
        spec: &flexus_api::PolicySpec,
        prior: Option<&PolicyModel>,
    ) -> PolicyModel {
        let explicit = Self::explicit(id, namespace, name, spec);
        match prior {
            Some(p) if p.pool == spec.pool && p.to_policy().is_ok_and(|pol| pol == spec.policy) => {
                let mut m = p.fill_unset(&explicit);
                m.id = Some(id.to_string());
                m.namespace = Some(namespace.to_string());
                m
            }
            _ => explicit,
        }
    }

    /// This model with every attribute it leaves unset taken from `from` (the computed
    /// attributes whose defaults come from flexus-policy; blocks are never added).
    pub fn fill_unset(&self, from: &PolicyModel) -> PolicyModel {
        let ty = crate::policy::policy_type();
        let (Ok(mut v), Ok(f)) = (
            tfplugin::model::to_value(self, ty, "flexus_autoscaling_policy"),
            tfplugin::model::to_value(from, ty, "flexus_autoscaling_policy"),
        ) else {
            return self.clone();
        };
        let config = v.clone();
        tfplugin::value::fill_unset(&mut v, &config, &f);
        tfplugin::model::from_value(&v, "flexus_autoscaling_policy")
            .unwrap_or_else(|_| self.clone())
    }

    /// A stored policy rendered with every value explicit, defaults included (what import
    /// and drift show, and what the plan fills in for attributes the configuration leaves
    /// unset). Blocks that only hold defaults (`scale_in`, `prediction`, `spot`, `seed`)
    /// are left out.
    pub fn explicit(
        id: &str,
        namespace: &str,
        name: &str,
        spec: &flexus_api::PolicySpec,
    ) -> PolicyModel {
        let pol = &spec.policy;
        let def_out = ScaleOutBehaviour::default();
        let def_in = ScaleInBehaviour::default();
        let scale_out = (pol.scale_out != def_out).then(|| {
            BehaviourModel::explicit(
                pol.scale_out.cooldown,
                pol.scale_out.stabilisation_window,
                pol.scale_out.select,
                &pol.scale_out.policies,
                &def_out.policies,
            )
        });
        let scale_in = (pol.scale_in != def_in).then(|| {
            BehaviourModel::explicit(
                pol.scale_in.cooldown,
                pol.scale_in.stabilisation_window,
                pol.scale_in.select,
                &pol.scale_in.policies,
                &def_in.policies,
            )
        });
        let spot = (pol.spot != SpotMix::default()).then_some(SpotMixModel {
            on_demand_base: Some(pol.spot.on_demand_base),
            spot_percentage: Some(pol.spot.spot_percentage),
        });
        PolicyModel {
            id: Some(id.to_string()),
            namespace: Some(namespace.to_string()),
            name: name.to_string(),
            pool: spec.pool.clone(),
            enabled: Some(pol.enabled),
            dry_run: Some(pol.dry_run),
            strategy: pol.strategy.as_str().to_string(),
            evaluation_interval: Some(format_duration(pol.evaluation_interval)),
            tolerance: Some(pol.tolerance),
            bounds: BoundsModel {
                min: pol.bounds.min,
                max: pol.bounds.max,
                initial: pol.bounds.initial,
            },
            metric: pol.metrics.iter().map(MetricModel::explicit).collect(),
            scale_out,
            scale_in,
            schedule: pol.schedules.iter().map(ScheduleModel::explicit).collect(),
            prediction: (pol.prediction != PredictionSettings::default())
                .then(|| PredictionModel::explicit(&pol.prediction)),
            spot,
            seed: (pol.seed != SeedSettings::default()).then(|| SeedModel::explicit(&pol.seed)),
            step: pol.step.as_ref().map(StepModel::explicit),
        }
    }
}

impl BehaviourModel {
    /// A scale-out or scale-in block with every value explicit; the rate policies only when
    /// they differ from the defaults.
    fn explicit(
        cooldown: Duration,
        window: Duration,
        select: flexus_policy::SelectPolicy,
        policies: &[RatePolicy],
        def_policies: &[RatePolicy],
    ) -> Self {
        BehaviourModel {
            cooldown: Some(format_duration(cooldown)),
            stabilisation_window: Some(format_duration(window)),
            select: Some(enum_name(&select)),
            unlimited: Some(policies.is_empty()),
            policy: if policies == def_policies {
                Vec::new()
            } else {
                policies
                    .iter()
                    .map(|r| RatePolicyModel {
                        kind: enum_name(&r.kind),
                        value: r.value,
                        period: format_duration(r.period),
                    })
                    .collect()
            },
        }
    }
}

impl PredictionModel {
    fn explicit(p: &PredictionSettings) -> Self {
        let d = |x: Duration| format_duration(x);
        PredictionModel {
            enabled: Some(p.enabled),
            mode: Some(enum_name(&p.mode)),
            metric: p.metric.clone(),
            target_per_instance: p.target_per_instance,
            lead_time: Some(d(p.lead_time)),
            history_window: Some(d(p.history_window)),
            seasonality: Some(p.seasonality.iter().map(|x| d(*x)).collect()),
            refit_interval: Some(d(p.refit_interval)),
            max_ratio: p.max_ratio,
            min_seasonal_strength: p.min_seasonal_strength,
            relative_rise: Some(p.relative_rise),
        }
    }
}

impl SeedModel {
    /// The seed constants; a band only when it differs from its default.
    fn explicit(s: &SeedSettings) -> Self {
        let def = SeedSettings::default();
        let band = |b: &SeedBand, def: &SeedBand| {
            (b != def).then_some(SeedBandModel {
                scale_out_above: b.scale_out_above,
                scale_in_below: b.scale_in_below,
                out_origin: b.out_origin,
                out_span: b.out_span,
                in_span: b.in_span,
            })
        };
        SeedModel {
            cpu: band(&s.cpu, &def.cpu),
            memory: band(&s.memory, &def.memory),
            response_time: band(&s.response_time, &def.response_time),
            queue_length: band(&s.queue_length, &def.queue_length),
            trend_weight: Some(s.trend_weight),
            trend_divisor: Some(s.trend_divisor),
            trend_samples: Some(s.trend_samples),
            scale_out_score: Some(s.scale_out_score),
            scale_in_score: Some(s.scale_in_score),
            out_factor: Some(s.out_factor),
            in_factor: Some(s.in_factor),
            cooldown: Some(format_duration(s.cooldown)),
        }
    }
}

impl StepModel {
    fn explicit(st: &flexus_policy::StepSettings) -> Self {
        StepModel {
            metric: st.metric.clone(),
            threshold: st.threshold,
            adjustment_type: Some(enum_name(&st.adjustment_type)),
            min_adjustment_magnitude: st.min_adjustment_magnitude,
            adjustment: st
                .adjustments
                .iter()
                .map(|a| StepAdjustmentModel {
                    lower: a.lower,
                    upper: a.upper,
                    adjustment: a.adjustment,
                })
                .collect(),
        }
    }
}

impl ScheduleModel {
    fn explicit(s: &flexus_policy::Schedule) -> Self {
        ScheduleModel {
            name: s.name.clone(),
            cron: s.cron.clone(),
            duration: format_duration(s.duration),
            min_capacity: s.min_capacity,
            timezone: Some(s.timezone.clone()),
            start_time: s.start_time.clone(),
            end_time: s.end_time.clone(),
        }
    }
}

impl SourceModel {
    fn explicit(source: &MetricSource) -> Self {
        let none = SourceModel {
            source_type: String::new(),
            namespace: None,
            metric_name: None,
            query: None,
            key: None,
        };
        match source {
            MetricSource::CloudEye {
                namespace,
                metric_name,
            } => SourceModel {
                source_type: "cloud_eye".into(),
                namespace: Some(namespace.clone()),
                metric_name: Some(metric_name.clone()),
                ..none
            },
            MetricSource::Prometheus { query } => SourceModel {
                source_type: "prometheus".into(),
                query: Some(query.clone()),
                ..none
            },
            MetricSource::Redis { key } => SourceModel {
                source_type: "redis".into(),
                key: Some(key.clone()),
                ..none
            },
            MetricSource::Push => SourceModel {
                source_type: "push".into(),
                ..none
            },
        }
    }
}

impl MetricModel {
    /// A metric block with every value explicit.
    fn explicit(x: &flexus_policy::Metric) -> Self {
        let d = |x: Duration| format_duration(x);
        MetricModel {
            name: x.name.clone(),
            kind: x.kind.as_str().to_string(),
            source: SourceModel::explicit(&x.source),
            target: x.target,
            scale_out_above: x.scale_out_above,
            scale_in_below: x.scale_in_below,
            weight: x.weight,
            duration: Some(d(x.duration)),
            per_instance: Some(x.per_instance),
            missing_data: Some(enum_name(&x.missing_data)),
            period: x.period.map(d),
            delivery_delay: x.delivery_delay.map(d),
            stale_after: x.stale_after.map(d),
            fallback_capacity: x.fallback_capacity,
            trend_lead: Some(d(x.trend_lead)),
            trend_window: Some(d(x.trend_window)),
            trend_max_raise: Some(x.trend_max_raise),
            trend_significance: Some(x.trend_significance),
            trend_noise_margin: Some(x.trend_noise_margin),
            sqrt_headroom: Some(x.sqrt_headroom),
            noise_headroom: Some(x.noise_headroom),
            noise_window: Some(d(x.noise_window)),
            coarse_above: x.coarse_above.map(d),
            coarse_sqrt_headroom: x.coarse_sqrt_headroom,
            coarse_noise_headroom: x.coarse_noise_headroom,
        }
    }
}

/// The snake_case name of a policy enum value (its serde form).
fn enum_name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|j| j.as_str().map(str::to_string))
        .unwrap_or_default()
}

impl MetricModel {
    fn to_json(&self) -> J {
        let mut m = Map::new();
        m.insert("name".into(), J::String(self.name.clone()));
        m.insert("kind".into(), J::String(self.kind.clone()));
        let mut s = Map::new();
        s.insert("type".into(), J::String(self.source.source_type.clone()));
        put(&mut s, "namespace", &self.source.namespace);
        put(&mut s, "metric_name", &self.source.metric_name);
        put(&mut s, "query", &self.source.query);
        put(&mut s, "key", &self.source.key);
        m.insert("source".into(), J::Object(s));
        put(&mut m, "target", &self.target);
        put(&mut m, "scale_out_above", &self.scale_out_above);
        put(&mut m, "scale_in_below", &self.scale_in_below);
        put(&mut m, "weight", &self.weight);
        put(&mut m, "duration", &self.duration);
        put(&mut m, "per_instance", &self.per_instance);
        put(&mut m, "missing_data", &self.missing_data);
        put(&mut m, "period", &self.period);
        put(&mut m, "delivery_delay", &self.delivery_delay);
        put(&mut m, "stale_after", &self.stale_after);
        put(&mut m, "fallback_capacity", &self.fallback_capacity);
        put(&mut m, "trend_lead", &self.trend_lead);
        put(&mut m, "trend_window", &self.trend_window);
        put(&mut m, "trend_max_raise", &self.trend_max_raise);
        put(&mut m, "trend_significance", &self.trend_significance);
        put(&mut m, "trend_noise_margin", &self.trend_noise_margin);
        put(&mut m, "sqrt_headroom", &self.sqrt_headroom);
        put(&mut m, "noise_headroom", &self.noise_headroom);
        put(&mut m, "noise_window", &self.noise_window);
        put(&mut m, "coarse_above", &self.coarse_above);
        put(&mut m, "coarse_sqrt_headroom", &self.coarse_sqrt_headroom);
        put(&mut m, "coarse_noise_headroom", &self.coarse_noise_headroom);
        J::Object(m)
    }
}

impl BehaviourModel {
    fn to_json(&self) -> J {
        let mut m = Map::new();
        put(&mut m, "cooldown", &self.cooldown);
        put(&mut m, "stabilisation_window", &self.stabilisation_window);
        put(&mut m, "select", &self.select);
        if self.unlimited == Some(true) {
            m.insert("policies".into(), J::Array(Vec::new()));
        } else if !self.policy.is_empty() {
            m.insert(
                "policies".into(),
                J::Array(
                    self.policy
                        .iter()
                        .map(|p| json!({"type": p.kind, "value": p.value, "period": p.period}))
                        .collect(),
                ),
            );
        }
        J::Object(m)
    }
}
