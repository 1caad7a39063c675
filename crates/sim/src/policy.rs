//! Drives flexus-policy's `decide()` from the replay, the way the agent does:
//! published monitoring datapoints become [`Observation`]s (timestamped at the
//! end of their period, so staleness rules see the real delay), the simulated
//! instances become a [`PoolState`] with lifecycles, the [`History`] is kept
//! and pruned between calls, and — when the policy enables prediction — the
//! forecast of the prediction metric at `now + lead_time` is computed with
//! [`flexus_policy::forecast`] on a refit schedule and passed in as a
//! [`Prediction`].
//!
//! Metric mapping by kind: `cpu` → CPU %, `memory` → memory %, `gpu` → GPU %,
//! `response_time` → p95 latency (ms), `queue_length` → load-balancer queue,
//! `error_rate` → 0 (the model has no errors besides drops, which are not
//! reported as a rate), `custom` → the pool's request rate (requests/s).

use std::sync::Arc;

use flexus_policy::forecast::{self, Refit};
use flexus_policy::{
    CompiledPolicy, Decision, DecisionInput, History, Instance, Lifecycle, MetricKind, Observation,
    Policy, PoolState, Prediction, Purchase, Timestamp,
};

use crate::SimError;
use crate::replay::{Autoscaler, InstanceState, MetricSample, Observation as SimObs};

/// Forecast resolution (s): the prediction metric's datapoints are grouped into
/// buckets this long, each represented by its time-weighted mean (see [`BucketStat`]).
pub const FORECAST_BUCKET_S: f64 = 900.0;

/// The value that represents a forecast bucket.
///
/// `Mean` is the default: the forecast then follows the level of the load, and
/// the policy's `target_per_instance` sets the headroom; the reactive target
/// covers the per-minute noise. `Peak` forecasts the noise too, which on a noisy
/// trace holds far more capacity than needed (nasa-http-1995: +1 900 instance-hours
/// for the same policy), see docs/design/simulator.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketStat {
    /// The highest datapoint in the bucket (capacity must cover the peaks).
    Peak,
    /// The time-weighted mean of the bucket's datapoints.
    Mean,
}

/// Reads a policy file (HCL by default, JSON when the name ends in `.json`).
pub fn load_policy_file(path: &std::path::Path) -> Result<Policy, SimError> {
    let text = std::fs::read_to_string(path).map_err(|source| SimError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse_policy(&text, &path.display().to_string())
}

/// Parses policy text (JSON if it starts with `{`, else HCL).
pub fn parse_policy(text: &str, file: &str) -> Result<Policy, SimError> {
    let parsed = if text.trim_start().starts_with('{') {
        flexus_policy::parse_json(text)
    } else {
        flexus_policy::parse_hcl(text, file)
    };
    parsed.map_err(|d| SimError::BadPolicy {
        file: file.to_owned(),
        reason: d.to_string(),
    })
}

/// The value of a metric kind in a datapoint.
pub fn metric_value(kind: MetricKind, s: &MetricSample) -> Option<f64> {
    let per_instance = s.ready_instances > 0.0;
    match kind {
        MetricKind::Cpu if per_instance => Some(s.cpu_pct),
        MetricKind::Memory if per_instance => Some(s.mem_pct),
        MetricKind::Gpu if per_instance => Some(s.gpu_pct),
        MetricKind::ResponseTime if per_instance => Some(s.p95_latency_ms),
        MetricKind::Cpu | MetricKind::Memory | MetricKind::Gpu | MetricKind::ResponseTime => None,
        MetricKind::QueueLength => Some(s.queue_depth),
        MetricKind::ErrorRate => Some(0.0),
        MetricKind::Custom => Some(s.request_rps),
    }
}

/// flexus-policy as an [`Autoscaler`].
#[derive(Debug)]
pub struct PolicyAutoscaler {
    name: String,
    cp: CompiledPolicy,
    history: History,
    observations: Vec<Observation>,
    pool: PoolState,
    refit: Refit,
    /// (bucket start s, peak value, seconds covered, time-weighted sum) of the prediction metric.
    buckets: Vec<(f64, f64, f64, f64)>,
    /// Which value represents a bucket.
    bucket_stat: BucketStat,
    /// Forecast bucket length (s).
    bucket_s: f64,
    /// Cached instance ids ("i-<n>") by simulator id.
    ids: std::collections::HashMap<u64, String>,
    last_sample_end: f64,
    /// Forecast-only mode: what the policy would have added (instance-decisions).
    pub would_have_raised: u64,
    /// Forecast fits performed.
    pub fits: u64,
    last_decision: Option<Decision>,
    /// Seasonal strength of the history at the last fit (see
    /// `prediction.min_seasonal_strength`).
    seasonal_strength: Option<f64>,
}

impl PolicyAutoscaler {
    /// Compiles the policy.
    pub fn new(name: &str, policy: Policy) -> Result<Self, SimError> {
        let cp = CompiledPolicy::new(policy).map_err(|d| SimError::BadPolicy {
            file: name.to_owned(),
            reason: d.to_string(),
        })?;
        Ok(PolicyAutoscaler {
            name: name.to_owned(),
            cp,
            history: History::new(),
            observations: Vec::new(),
            pool: PoolState::default(),
            refit: Refit::default(),
            buckets: Vec::new(),
            ids: std::collections::HashMap::new(),
            bucket_s: FORECAST_BUCKET_S,
            bucket_stat: BucketStat::Mean,
            last_sample_end: f64::NEG_INFINITY,
            would_have_raised: 0,
            fits: 0,
            last_decision: None,
            seasonal_strength: None,
        })
    }

    /// Sets the forecast bucket length (s; default [`FORECAST_BUCKET_S`]).
    pub fn with_forecast_bucket(mut self, seconds: f64) -> Self {
        if seconds.is_finite() && seconds >= 60.0 {
            self.bucket_s = seconds;
        }
        self
    }

    /// Sets which value represents a forecast bucket (default [`BucketStat::Mean`]).
    pub fn with_bucket_statistic(mut self, stat: BucketStat) -> Self {
        self.bucket_stat = stat;
        self
    }

    /// The last decision (with its explanation).
    pub fn last_decision(&self) -> Option<&Decision> {
        self.last_decision.as_ref()
    }

    fn ingest_forecast_samples(&mut self, obs: &SimObs<'_>) {
        let p = &self.cp.policy().prediction;
        let Some(metric) = p.metric.as_deref() else {
            return;
        };
        let Some(kind) = self
            .cp
            .policy()
            .metrics
            .iter()
            .find(|m| m.name == metric)
            .map(|m| m.kind)
        else {
            return;
        };
        for s in obs
            .history
            .iter()
            .rev()
            .take_while(|s| s.end_s > self.last_sample_end)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
        {
            if let Some(v) = metric_value(kind, s) {
                let start = s.end_s - s.period_s;
                let b = (start / self.bucket_s).floor() * self.bucket_s;
                match self.buckets.last_mut() {
                    Some(last) if (last.0 - b).abs() < 1e-6 => {
                        last.1 = last.1.max(v);
                        last.2 += s.period_s;
                        last.3 += v * s.period_s;
                    }
                    _ => self.buckets.push((b, v, s.period_s, v * s.period_s)),
                }
            }
            self.last_sample_end = s.end_s;
        }
    }

    fn prediction(&mut self, obs: &SimObs<'_>, epoch_ms: i64) -> Option<Prediction> {
        let p = self.cp.policy().prediction.clone();
        if !p.enabled {
            return None;
        }
        let metric = p.metric.clone()?;
        self.ingest_forecast_samples(obs);
        let now = obs.now_s;
        // Complete buckets only.
        let complete: Vec<&(f64, f64, f64, f64)> = self
            .buckets
            .iter()
            .filter(|b| b.0 + self.bucket_s <= now - 1e-9 && b.2 > 0.0)
            .collect();
        if complete.len() < 2 {
            return None;
        }
        if self.refit.due(now, p.refit_interval.as_secs_f64()) {
            let window = (p.history_window.as_secs_f64() / self.bucket_s).ceil() as usize;
            let from = complete.len().saturating_sub(window);
            let stat = self.bucket_stat;
            let y: Vec<f64> = complete[from..]
                .iter()
                .map(|b| match stat {
                    BucketStat::Peak => b.1,
                    BucketStat::Mean => b.3 / b.2,
                })
                .collect();
            let periods: Vec<usize> = p
                .seasonality
                .iter()
                .map(|d| (d.as_secs_f64() / self.bucket_s).round() as usize)
                .filter(|&x| x >= 2)
                .collect();
            let horizon = ((p.refit_interval.as_secs_f64() + p.lead_time.as_secs_f64())
                / self.bucket_s)
                .ceil() as usize
                + 2;
            let first = complete.last().map_or(0.0, |b| b.0 + self.bucket_s);
            self.seasonal_strength = p.seasonal_strength(&y, self.bucket_s);
            if let Ok(f) = forecast::forecast(&y, &periods, horizon) {
                self.fits += 1;
                self.refit.store(now, first, self.bucket_s, f);
            }
        }
        // The highest forecast over [now, now + lead]: capacity must be ready for all of it.
        let lead = p.lead_time.as_secs_f64();
        let mut best: Option<f64> = None;
        let mut t = now;
        while t <= now + lead + 1e-9 {
            if let Some(v) = self.refit.value_at(t) {
                best = Some(best.map_or(v, |b: f64| b.max(v)));
            }
            t += self.bucket_s.min(lead.max(1.0));
        }
        if let Some(v) = self.refit.value_at(now + lead) {
            best = Some(best.map_or(v, |b: f64| b.max(v)));
        }
        let ahead = best?;
        let current = self
            .cp
            .policy()
            .metrics
            .iter()
            .find(|m| m.name == metric)
            .and_then(|m| obs.history.last().and_then(|s| metric_value(m.kind, s)));
        let value = p.prediction_value(
            ahead,
            self.refit.value_at(now),
            current,
            self.seasonal_strength,
        )?;
        Some(Prediction {
            at: Timestamp::from_millis(epoch_ms + (lead * 1000.0) as i64),
            values: vec![(metric, value)],
        })
    }
}

fn ts(epoch_start_ms: i64, t_s: f64) -> Timestamp {
    Timestamp::from_millis(epoch_start_ms + (t_s * 1000.0).round() as i64)
}

impl Autoscaler for PolicyAutoscaler {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn interval_s(&self) -> f64 {
        self.cp.policy().evaluation_interval.as_secs_f64().max(1.0)
    }

    fn spot_fraction(&self) -> Option<f64> {
        let s = &self.cp.policy().spot;
        (s.spot_percentage > 0.0).then_some(s.spot_percentage / 100.0)
    }

    fn decide(&mut self, obs: &SimObs<'_>) -> Result<Option<u32>, SimError> {
        let start_ms = obs.start_unix * 1000;
        let now = ts(start_ms, obs.now_s);
        // Observations: every metric from the recent datapoints.
        self.observations.clear();
        let metrics: Vec<(Arc<str>, MetricKind)> = self
            .cp
            .policy()
            .metrics
            .iter()
            .map(|m| (Arc::from(m.name.as_str()), m.kind))
            .collect();
        // Only what the engine can use: each metric's lookback (aggregation window,
        // staleness limit or trend window).
        let window = self
            .cp
            .policy()
            .metrics
            .iter()
            .map(|m| m.lookback().as_secs_f64())
            .fold(0.0, f64::max)
            + 60.0;
        for s in obs
            .history
            .iter()
            .rev()
            .take_while(|s| obs.now_s - s.end_s <= window)
        {
            for (name, kind) in &metrics {
                if let Some(v) = metric_value(*kind, s) {
                    self.observations.push(Observation {
                        metric: name.to_string(),
                        value: v,
                        at: ts(start_ms, s.end_s),
                    });
                }
            }
        }
        // Pool.
        self.pool.instances.clear();
        if self.ids.len() > 4 * obs.instances.len() + 64 {
            let live: std::collections::HashSet<u64> = obs.instances.iter().map(|i| i.id).collect();
            self.ids.retain(|k, _| live.contains(k));
        }
        for i in obs.instances {
            let (lifecycle, since) = match i.state {
                InstanceState::Booting => (Lifecycle::Booting, i.launched_s),
                InstanceState::Warming => (Lifecycle::Warming, i.launched_s + obs.flavor.boot_s),
                InstanceState::Ready => (Lifecycle::Ready, i.ready_s),
            };
            self.pool.instances.push(Instance {
                id: self
                    .ids
                    .entry(i.id)
                    .or_insert_with(|| format!("i-{}", i.id))
                    .clone(),
                lifecycle,
                purchase: if i.spot {
                    Purchase::Spot
                } else {
                    Purchase::OnDemand
                },
                since: ts(start_ms, since),
            });
        }
        let prediction = self.prediction(obs, now.millis());
        let decision = self.cp.decide(&DecisionInput {
            now,
            observations: &self.observations,
            pool: &self.pool,
            history: &self.history,
            prediction: prediction.as_ref(),
        });
        if decision.explanation.iter().any(|s| matches!(s, flexus_policy::Step::Prediction { applied: false, capacity, .. } if *capacity > decision.desired))
        {
            self.would_have_raised += 1;
        }
        self.history.record(&decision);
        self.history.prune(
            now,
            self.cp.history_horizon(),
            self.cp.trend_samples().max(1),
        );
        let desired = decision.desired;
        let acts = decision.action != flexus_policy::Action::None;
        self.last_decision = Some(decision);
        Ok(acts.then_some(desired))
    }
}
