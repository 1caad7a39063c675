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

use flexus_policy::forecast::buckets::{self, Buckets};
use flexus_policy::forecast::predictor::Predictor;
use std::time::Duration;

use flexus_policy::{
    CompiledPolicy, Decision, DecisionInput, History, Instance, Lifecycle, Metric, MetricKind,
    Observation, Policy, PoolState, Prediction, Purchase, Timestamp,
};

use crate::SimError;
use crate::fit_cache::FitCache;
use crate::replay::{
    Autoscaler, Foresight, InstanceState, MetricSample, Observation as SimObs, SimInstance,
};
use crate::simulation::SimulateOptions;

/// Forecast resolution (s): the agent's ([`buckets::DEFAULT_BUCKET_S`]).
pub const FORECAST_BUCKET_S: f64 = buckets::DEFAULT_BUCKET_S;

/// Reads a policy file (HCL by default, JSON when the name ends in `.json`).
pub fn load_policy_file(path: &std::path::Path) -> Result<Policy, SimError> {
    let bytes = std::fs::read(path).map_err(|source| SimError::Io {
        path: path.to_owned(),
        source,
    })?;
    let file = path.display().to_string();
    let text = flexus_policy::source_text(&bytes, &file).map_err(|d| SimError::BadPolicy {
        file: file.clone(),
        reason: d.to_string(),
    })?;
    parse_policy(text, &file)
}

/// How the agent reads `policy`'s load: the period and delivery delay, in seconds, of its
/// targeted metric (else its first), as declared or by its source's default. A replay of a
/// pool's own history uses them as its monitoring, so the policy (its freshness rule, its
/// coarse-data headroom) and any baseline beside it see readings as the pool gets them.
/// `None` for a policy without metrics.
pub fn monitoring(policy: &Policy) -> Option<(f64, f64)> {
    let m = policy
        .metrics
        .iter()
        .find(|m| m.target.is_some())
        .or(policy.metrics.first())?;
    Some((
        m.source_period().as_secs_f64(),
        m.source_delay().as_secs_f64(),
    ))
}

/// Sets a replay's monitoring to the pool's own ([`monitoring`]): readings come as far
/// apart (at least one tick) and as late as the agent gets them. A policy without metrics
/// leaves `options` as they are.
pub fn monitor_as_pool(options: &mut SimulateOptions, policy: &Policy) {
    if let Some((period, delay)) = monitoring(policy) {
        options.metric_period_s = period.max(options.tick_s);
        options.metric_delay_s = delay;
    }
}

/// How far apart a metric's readings come in a replay whose monitoring period is
/// `metric_period_s`: the metric's declared `period`, else the replay's
/// ([`PolicyAutoscaler`] fills it in so).
pub fn replay_period(m: &Metric, metric_period_s: f64) -> Duration {
    m.period.unwrap_or_else(|| secs(metric_period_s))
}

/// How late a metric's readings arrive in a replay whose delivery delay is
/// `metric_delay_s`: the metric's declared `delivery_delay`, else the replay's.
pub fn replay_delay(m: &Metric, metric_delay_s: f64) -> Duration {
    m.delivery_delay.unwrap_or_else(|| secs(metric_delay_s))
}

fn secs(s: f64) -> Duration {
    Duration::from_millis((s * 1000.0).round() as u64)
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
    /// The prediction path the agent runs (buckets, refit schedule, policy rules).
    predictor: Predictor,
    /// Cached instance ids ("i-<n>") by simulator id.
    ids: std::collections::HashMap<u64, String>,
    /// The instances `pool` was built from (id, state): rebuilt only when they change.
    pool_of: Vec<(u64, InstanceState)>,
    /// Forecast-only mode: what the policy would have added (instance-decisions).
    pub would_have_raised: u64,
    /// Forecast fits performed.
    pub fits: u64,
    last_decision: Option<Decision>,
    /// Fits shared with other replays of the same history (`tune`); `None`: fit inline.
    fit_cache: Option<FitCache>,
    /// The policy's metrics (name, kind), in order.
    metrics: Vec<(String, MetricKind)>,
    /// How far back (s) observations are passed: the longest lookback, plus a period.
    window_s: f64,
    /// What `observations` was built from: (datapoints published, how many of the newest).
    observed: (usize, usize),
    /// Datapoints published at the last prediction (the newer ones are not ingested yet).
    ingested: usize,
    /// The last prediction (kept to be refilled, not rebuilt, at each decision).
    predicted: Prediction,
}

impl PolicyAutoscaler {
    /// Compiles the policy. A replay measures what the policy does when it acts: one
    /// that only watches (`dry_run`) or is switched off (`enabled = false`) is replayed
    /// as if switched on, so that tuning, costing or simulating a policy before turning
    /// it on measures it rather than a pool that never scales.
    pub fn new(name: &str, mut policy: Policy) -> Result<Self, SimError> {
        policy.enabled = true;
        policy.dry_run = false;
        let cp = CompiledPolicy::new(policy).map_err(|d| SimError::BadPolicy {
            file: name.to_owned(),
            reason: d.to_string(),
        })?;
        let (metrics, window_s) = metric_plan(&cp);
        Ok(PolicyAutoscaler {
            name: name.to_owned(),
            cp,
            history: History::new(),
            observations: Vec::new(),
            pool: PoolState::default(),
            predictor: Predictor::new(Buckets::new(FORECAST_BUCKET_S), None),
            ids: std::collections::HashMap::new(),
            pool_of: Vec::new(),
            would_have_raised: 0,
            fits: 0,
            last_decision: None,
            fit_cache: None,
            metrics,
            window_s,
            observed: (0, 0),
            ingested: 0,
            predicted: Prediction {
                at: Timestamp::from_millis(0),
                values: Vec::new(),
            },
        })
    }

    /// Shares forecast fits with every autoscaler given a clone of `cache` (same
    /// decisions as fitting inline: see [`FitCache`]).
    pub fn with_fit_cache(mut self, cache: FitCache) -> Self {
        self.fit_cache = Some(cache);
        self
    }

    /// Sets the forecast bucket length (s; default [`FORECAST_BUCKET_S`]).
    pub fn with_forecast_bucket(mut self, seconds: f64) -> Self {
        if seconds.is_finite() && seconds >= 60.0 {
            self.predictor = Predictor::new(Buckets::new(seconds), None);
        }
        self
    }

    /// The last decision (with its explanation).
    pub fn last_decision(&self) -> Option<&Decision> {
        self.last_decision.as_ref()
    }

    /// The prediction for `decide()`, left in `self.predicted` (`None` when there is
    /// none): the datapoints published since the last call go through the agent's
    /// prediction path ([`Predictor`]), fitted inline when due.
    fn prediction(&mut self, obs: &SimObs<'_>, epoch_ms: i64) -> Option<()> {
        let p = &self.cp.policy().prediction;
        if !p.enabled {
            return None;
        }
        let metric = p.metric.as_deref()?;
        let kind = self
            .cp
            .policy()
            .metrics
            .iter()
            .find(|m| m.name == metric)?
            .kind;
        if obs.history.len() != self.ingested {
            // Only datapoints published since the last call are new (the history only grows).
            self.ingested = obs.history.len();
            let last = self.predictor.last_sample.unwrap_or(f64::NEG_INFINITY);
            let new: Vec<&MetricSample> = obs
                .history
                .iter()
                .rev()
                .take_while(|s| s.end_s > last)
                .collect();
            let first_period = new.last().map_or(60.0, |s| s.period_s);
            self.predictor.ingest(
                new.iter()
                    .filter_map(|s| metric_value(kind, s).map(|v| (s.end_s, v))),
                first_period,
            );
        }
        let now = obs.now_s;
        self.predictor.prune(now, p);
        let fitted = self.predictor.refit.fitted_at;
        let current = obs.history.last().and_then(|s| metric_value(kind, s));
        let v = match &self.fit_cache {
            // Predictor::step_inline's steps, with the fit looked up first.
            Some(cache) => {
                if let Ok(Some(req)) = self.predictor.fit_request(now, p)
                    && let Ok(f) = cache.run(&req)
                {
                    self.predictor.store_fit(now, &req, f);
                }
                self.predictor.value(now, p, current)
            }
            None => self.predictor.step_inline(now, p, current),
        };
        if self.predictor.refit.fitted_at != fitted {
            self.fits += 1;
        }
        let lead = p.lead_time.as_secs_f64();
        let value = v.value?;
        self.predicted.at = Timestamp::from_millis(epoch_ms + (lead * 1000.0) as i64);
        match self.predicted.values.as_mut_slice() {
            [(name, v)] if name == metric => *v = value,
            _ => self.predicted.values = vec![(metric.to_owned(), value)],
        }
        Some(())
    }
}

impl PolicyAutoscaler {
    /// The replay's instances as the engine's [`PoolState`]. When the same instances are
    /// there (only states changed), the changed ones are updated in place.
    fn rebuild_pool(&mut self, obs: &SimObs<'_>, start_ms: i64) {
        let boot_s = obs.flavor.boot_s;
        let same_ids = self.pool_of.len() == obs.instances.len()
            && self.pool.instances.len() == obs.instances.len()
            && self
                .pool_of
                .iter()
                .zip(obs.instances)
                .all(|(a, i)| a.0 == i.id);
        if same_ids {
            for ((was, i), inst) in self
                .pool_of
                .iter_mut()
                .zip(obs.instances)
                .zip(&mut self.pool.instances)
            {
                if was.1 != i.state {
                    was.1 = i.state;
                    let (lifecycle, since) = lifecycle_of(i, boot_s);
                    inst.lifecycle = lifecycle;
                    inst.since = ts(start_ms, since);
                }
            }
            return;
        }
        self.pool.instances.clear();
        self.pool_of.clear();
        self.pool_of
            .extend(obs.instances.iter().map(|i| (i.id, i.state)));
        if self.ids.len() > 4 * obs.instances.len() + 64 {
            let live: std::collections::HashSet<u64> = obs.instances.iter().map(|i| i.id).collect();
            self.ids.retain(|k, _| live.contains(k));
        }
        for i in obs.instances {
            let (lifecycle, since) = lifecycle_of(i, boot_s);
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
    }
}

/// An instance's lifecycle for the engine and when (s) it entered it.
fn lifecycle_of(i: &SimInstance, boot_s: f64) -> (Lifecycle, f64) {
    match i.state {
        InstanceState::Booting => (Lifecycle::Booting, i.launched_s),
        InstanceState::Warming => (Lifecycle::Warming, i.launched_s + boot_s),
        InstanceState::Ready => (Lifecycle::Ready, i.ready_s),
    }
}

/// The policy's metrics (name, kind) and how far back (s) observations are passed: the
/// longest lookback (aggregation window, staleness limit or trend window) plus 60 s.
fn metric_plan(cp: &CompiledPolicy) -> (Vec<(String, MetricKind)>, f64) {
    let policy = cp.policy();
    let metrics = policy
        .metrics
        .iter()
        .map(|m| (m.name.clone(), m.kind))
        .collect();
    let window = policy
        .metrics
        .iter()
        .map(|m| m.lookback(policy.evaluation_interval).as_secs_f64())
        .fold(0.0, f64::max)
        + 60.0;
    (metrics, window)
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

    /// The replay's monitoring is the metrics' source: a metric that does not declare
    /// its `period` / `delivery_delay` gets the replay's, so the freshness rule (period
    /// + delay + interval) judges the data the policy will actually see.
    fn prepare(&mut self, foresight: &Foresight<'_>) -> Result<(), SimError> {
        let o = foresight.options;
        let mut policy = self.cp.policy().clone();
        for m in &mut policy.metrics {
            (m.period, m.delivery_delay) = (
                Some(replay_period(m, o.metric_period_s)),
                Some(replay_delay(m, o.metric_delay_s)),
            );
        }
        self.cp = CompiledPolicy::new(policy).map_err(|d| SimError::BadPolicy {
            file: self.name.clone(),
            reason: d.to_string(),
        })?;
        (self.metrics, self.window_s) = metric_plan(&self.cp);
        (self.observed, self.ingested) = ((0, 0), 0);
        Ok(())
    }

    fn spot_fraction(&self) -> Option<f64> {
        let s = &self.cp.policy().spot;
        (s.spot_percentage > 0.0).then_some(s.spot_percentage / 100.0)
    }

    fn decide(&mut self, obs: &SimObs<'_>) -> Result<Option<u32>, SimError> {
        let start_ms = obs.start_unix * 1000;
        let now = ts(start_ms, obs.now_s);
        // Observations: every metric from the datapoints within the lookback (only what
        // the engine can use: each metric's aggregation window, staleness limit or trend
        // window), oldest first. When that set of datapoints changes, what fell out of
        // the window is dropped and what was published since is appended.
        let recent = obs
            .history
            .iter()
            .rev()
            .take_while(|s| obs.now_s - s.end_s <= self.window_s)
            .count();
        if self.observed != (obs.history.len(), recent) {
            let first = obs.history.len() - recent;
            let (seen, _) = self.observed;
            let seen = if seen > obs.history.len() {
                self.observations.clear();
                first
            } else {
                seen.max(first)
            };
            self.observed = (obs.history.len(), recent);
            match obs.history.get(first) {
                Some(oldest) => {
                    let from = ts(start_ms, oldest.end_s);
                    let gone = self.observations.partition_point(|o| o.at < from);
                    self.observations.drain(..gone);
                }
                None => self.observations.clear(),
            }
            for s in &obs.history[seen..] {
                for (name, kind) in &self.metrics {
                    if let Some(v) = metric_value(*kind, s) {
                        self.observations.push(Observation {
                            metric: name.clone(),
                            value: v,
                            at: ts(start_ms, s.end_s),
                        });
                    }
                }
            }
        }
        // Pool (rebuilt only when an instance came, went or changed state).
        let same = self.pool_of.len() == obs.instances.len()
            && self
                .pool_of
                .iter()
                .zip(obs.instances)
                .all(|(a, i)| a.0 == i.id && a.1 == i.state);
        if !same {
            self.rebuild_pool(obs, start_ms);
        }
        let predicted = self.prediction(obs, now.millis()).is_some();
        let decision = self.cp.decide(&DecisionInput {
            now,
            observations: &self.observations,
            pool: &self.pool,
            history: &self.history,
            prediction: predicted.then_some(&self.predicted),
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
