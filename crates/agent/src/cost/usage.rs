//! The usage recorder: a task of its own (never part of a reconcile pass) that samples
//! every pool every `cost.sample_interval` of clock time and keeps hourly rollups.
//!
//! A sample reads what the reconcile pass last wrote to the pool's status: instances
//! (flavor, purchase type, lifecycle), the desired count, and the last decision's
//! signal values and forecast. Between two samples instance counts are the mean of both
//! ends (trapezoid) and the load holds, split at hour boundaries; a gap longer than three
//! intervals (the agent was down) is not counted.
//!
//! The load signal, in this order: the policy's `custom`-kind metric read as a request
//! rate (the simulator's convention), else the CPU (or GPU) utilisation of the ready
//! instances turned into requests/s through the flavor's capacity model
//! (`flexus_sim::capacity`: CPU % = 2 + 98 · utilisation, GPU % = 100 · utilisation).
//! Demand is the instances that load needs at the flavor's SLO rate; idle capacity is
//! ready instances above demand; a violation is demand above ready.
//!
//! Rollups of the current hour live in memory and are written every
//! [`FLUSH_EVERY`] rounds and at shutdown (a crash loses at most those minutes of usage,
//! never a declared object); on start the current hour is read back. A write that
//! fails is kept and tried again the next round.
//!
//! With several agents on one store, each samples only the pools it holds a lease on
//! (the holder's reconcile passes write the status it reads), and the store refuses a
//! rollup of a pool this agent no longer holds. A pool gained from another agent has
//! its current hour read back before it is sampled, so the hour carries on from the
//! other agent's last write; the open hour of a pool lost is dropped, not written.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use flexus_api::{Lifecycle, PolicySpec, PoolSpec, PoolStatus, Purchase};
use flexus_policy::MetricKind;
use flexus_sim::capacity::Flavor;
use tokio_util::sync::CancellationToken;

use super::CostConfig;
use crate::clock::{Millis, SharedClock};
use crate::store::{PoolDoc, Store, StoreError};
use crate::store::{UsageHour, UsageSample, UsageScope};
use crate::telemetry::Telemetry;

/// Rollups are written every this many sampling rounds.
pub const FLUSH_EVERY: u32 = 5;

/// What a pool looked like at one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub sample: UsageSample,
    /// Instances by (flavor, purchase).
    pub by_purchase: Vec<(String, Purchase, u32)>,
    /// Instances the load needs, when the load is known.
    pub demand: Option<u32>,
}

/// Requests/s served by `ready` instances of `flavor` at a utilisation reading.
fn load_from_utilisation(kind: MetricKind, value: f64, ready: u32, flavor: &Flavor) -> Option<f64> {
    let rho = match kind {
        MetricKind::Cpu if flavor.gpus == 0 => (value - 2.0) / 98.0,
        MetricKind::Gpu if flavor.gpus > 0 => value / 100.0,
        _ => return None,
    };
    Some(rho.clamp(0.0, 1.0) * f64::from(ready) * flavor.max_rps())
}

/// The pool's load (requests/s) from its last decision's signal values as observed
/// (before a trend read-ahead or a noise headroom raised them; the value used, for a
/// decision recorded before proposals carried both).
pub fn load_signal(
    status: &PoolStatus,
    policy: Option<&PolicySpec>,
    ready: u32,
    flavor: Option<&Flavor>,
) -> Option<f64> {
    let policy = policy?;
    let proposals = status
        .last_decision
        .as_ref()?
        .detail
        .get("proposals")?
        .as_array()?;
    let value_of = |name: &str| {
        proposals
            .iter()
            .find(|p| p["metric"].as_str() == Some(name))
            .and_then(|p| p["observed"].as_f64().or_else(|| p["value"].as_f64()))
            .filter(|v| v.is_finite())
    };
    let metrics = &policy.policy.metrics;
    if let Some(v) = metrics
        .iter()
        .filter(|m| m.kind == MetricKind::Custom)
        .find_map(|m| value_of(&m.name))
    {
        return Some(v.max(0.0));
    }
    let flavor = flavor?;
    metrics
        .iter()
        .filter(|m| matches!(m.kind, MetricKind::Cpu | MetricKind::Gpu))
        .find_map(|m| load_from_utilisation(m.kind, value_of(&m.name)?, ready, flavor))
}

/// A sample of a pool at `now`.
pub fn snapshot(
    spec: &PoolSpec,
    status: &PoolStatus,
    policy: Option<&PolicySpec>,
    now: Millis,
) -> Snapshot {
    let flavor = flexus_sim::capacity::lookup(&spec.flavor).ok();
    let mut by: BTreeMap<(String, bool), u32> = BTreeMap::new();
    let (mut ready, mut billed) = (0, 0);
    for i in &status.instances {
        // Billed from the end of boot until deleted (Huawei's pay-per-use, and the
        // emulator's bill); a booting or failed instance costs nothing yet.
        if matches!(i.lifecycle, Lifecycle::Booting | Lifecycle::Failed) {
            continue;
        }
        billed += 1;
        *by.entry((i.flavor.clone(), i.purchase == Purchase::Spot))
            .or_default() += 1;
        if i.lifecycle == Lifecycle::Ready {
            ready += 1;
        }
    }
    let load_rps = load_signal(status, policy, ready, flavor.as_ref());
    let demand = match (load_rps, &flavor) {
        (Some(l), Some(f)) => Some(f.demand_instances(l)),
        _ => None,
    };
    Snapshot {
        sample: UsageSample {
            at_ms: now,
            load_rps,
            ready,
            billed,
            desired: status.desired_size,
            forecast_capacity: status
                .last_decision
                .as_ref()
                .and_then(|d| d.prediction.as_ref())
                .and_then(|p| p.capacity),
        },
        by_purchase: by
            .into_iter()
            .map(|((f, spot), n)| {
                (
                    f,
                    if spot {
                        Purchase::Spot
                    } else {
                        Purchase::OnDemand
                    },
                    n,
                )
            })
            .collect(),
        demand,
    }
}

/// Adds the span `[prev.at, next.at)` (or the `secs` of it that fall in `row`'s hour) to
/// `row`. Instance counts are the mean of both ends (a change happened somewhere between
/// them: the trapezoid is unbiased for a change at a uniformly random time); the load,
/// idle capacity and violations are `prev`'s, held.
fn accumulate(row: &mut UsageHour, prev: &Snapshot, next: &Snapshot, secs: f64, action: bool) {
    let (s, n) = (&prev.sample, &next.sample);
    let half = secs / 2.0;
    row.covered_seconds += secs;
    row.billed_seconds += f64::from(s.billed + n.billed) * half;
    row.ready_seconds += f64::from(s.ready + n.ready) * half;
    for (flavor, purchase, count) in prev.by_purchase.iter().chain(next.by_purchase.iter()) {
        let add = f64::from(*count) * half;
        match row
            .by_purchase
            .iter_mut()
            .find(|(f, p, _)| f == flavor && p == purchase)
        {
            Some(e) => e.2 += add,
            None => row.by_purchase.push((flavor.clone(), *purchase, add)),
        }
    }
    if let (Some(load), Some(demand)) = (s.load_rps, prev.demand) {
        row.load_seconds += secs;
        row.requests += load * secs;
        row.idle_seconds += f64::from(s.ready.saturating_sub(demand)) * secs;
        if demand > s.ready {
            row.violation_seconds += secs;
        }
    }
    if action {
        row.actions += 1;
    }
}

/// The last copy of each (pool, hour) in `rows`, in the order of those last copies (a
/// later copy of an hour is newer).
fn newest_per_hour(rows: Vec<UsageHour>) -> Vec<UsageHour> {
    let mut at: HashMap<(String, String, i64), usize> = HashMap::new();
    let mut out: Vec<Option<UsageHour>> = Vec::with_capacity(rows.len());
    for r in rows {
        let key = (r.namespace.clone(), r.pool.clone(), r.hour);
        if let Some(i) = at.insert(key, out.len()) {
            out[i] = None;
        }
        out.push(Some(r));
    }
    out.into_iter().flatten().collect()
}

/// Hour start (s) of a time in ms.
pub fn hour_of(ms: Millis) -> i64 {
    ms.div_euclid(3_600_000) * 3600
}

type Key = (String, String);

/// The keys of `map` not in `seen`.
fn unseen<V>(map: &HashMap<Key, V>, seen: &HashSet<Key>) -> Vec<Key> {
    map.keys().filter(|k| !seen.contains(*k)).cloned().collect()
}

/// The recorder's state: open hours and each pool's last snapshot.
#[derive(Debug)]
pub struct UsageRecorder {
    store: Arc<dyn Store>,
    clock: SharedClock,
    telemetry: Arc<Telemetry>,
    config: CostConfig,
    hours: HashMap<Key, UsageHour>,
    last: HashMap<Key, Snapshot>,
    dirty: HashSet<(Key, i64)>,
    /// Rollups a write failed to store: tried again with the next write.
    unwritten: Vec<UsageHour>,
    /// The current hour of every pool was read back (start-up): no pool needs its own.
    resumed: bool,
    rounds: u32,
}

impl UsageRecorder {
    pub fn new(
        store: Arc<dyn Store>,
        clock: SharedClock,
        telemetry: Arc<Telemetry>,
        config: CostConfig,
    ) -> Self {
        Self {
            store,
            clock,
            telemetry,
            config,
            hours: HashMap::new(),
            last: HashMap::new(),
            dirty: HashSet::new(),
            unwritten: Vec::new(),
            resumed: false,
            rounds: 0,
        }
    }

    /// The open hour of `key` if it is not `hour` (it is finished: write it).
    fn take_stale(&mut self, key: &Key, hour: i64) -> Option<UsageHour> {
        if self.hours.get(key).is_some_and(|r| r.hour != hour) {
            self.hours.remove(key)
        } else {
            None
        }
    }

    /// The open hour of `key` (created when needed); call [`Self::take_stale`] first.
    fn row(&mut self, key: &Key, hour: i64, flavor: &str) -> &mut UsageHour {
        self.dirty.insert((key.clone(), hour));
        self.hours
            .entry(key.clone())
            .or_insert_with(|| UsageHour::new(&key.0, &key.1, hour, flavor))
    }

    /// Integrate the span from `prev` to `next`, splitting at hour boundaries.
    fn integrate(
        &mut self,
        key: &Key,
        flavor: &str,
        prev: &Snapshot,
        next: &Snapshot,
        action: bool,
        finished: &mut Vec<UsageHour>,
    ) {
        let now = next.sample.at_ms;
        let mut t = prev.sample.at_ms;
        let mut first = true;
        while t < now {
            let h = hour_of(t);
            let edge = ((h + 3600) * 1000).min(now);
            finished.extend(self.take_stale(key, h));
            let row = self.row(key, h, flavor);
            accumulate(row, prev, next, (edge - t) as f64 / 1000.0, action && first);
            first = false;
            t = edge;
        }
    }

    /// Read back the current hour's rollups of every pool (after a restart).
    pub async fn resume(&mut self) -> Result<(), StoreError> {
        let h = hour_of(self.clock.now_ms());
        let rows = self.store.usage_hours(UsageScope::All, h, h, true).await?;
        self.keep_read_back(rows);
        self.resumed = true;
        Ok(())
    }

    /// Read back one pool's rollup of `hour` (a pool this agent did not sample last
    /// round: newly held, or new), replacing what is in memory.
    async fn read_back(&mut self, key: &Key, hour: i64) -> Result<(), StoreError> {
        let scope = UsageScope::Pool(&key.0, &key.1);
        let rows = self.store.usage_hours(scope, hour, hour, true).await?;
        self.hours.remove(key);
        self.keep_read_back(rows);
        Ok(())
    }

    fn keep_read_back(&mut self, rows: Vec<UsageHour>) {
        for mut row in rows {
            row.samples.sort_by_key(|s| s.at_ms);
            self.hours
                .insert((row.namespace.clone(), row.pool.clone()), row);
        }
    }

    /// Every policy of the namespaces of `docs`, by the pool it scales.
    async fn policies(&self, docs: &[PoolDoc]) -> Result<HashMap<Key, PolicySpec>, StoreError> {
        let mut policies = HashMap::new();
        let namespaces: HashSet<&str> = docs.iter().map(|d| d.namespace.as_str()).collect();
        for ns in namespaces {
            for p in self.store.list_policies(ns).await? {
                policies.insert((ns.to_owned(), p.spec.pool.clone()), p.spec);
            }
        }
        Ok(policies)
    }

    /// One sampling round over every pool this agent holds; writes finished hours
    /// (and, every [`FLUSH_EVERY`] rounds, the open ones).
    pub async fn sample_all(&mut self) -> Result<(), StoreError> {
        let now = self.clock.now_ms();
        let docs = self.store.list_pools(None).await?;
        let policies = self.policies(&docs).await?;
        let max_gap = 3 * self.config.sample_interval.as_millis() as i64;
        let bulk_read = std::mem::take(&mut self.resumed);
        let mut finished = Vec::new();
        let mut seen = HashSet::new();
        let store = self.store.clone();
        let sampled = docs
            .iter()
            .filter(|d| !d.deleting && store.holds(&d.namespace, &d.name));
        for d in sampled {
            let key = (d.namespace.clone(), d.name.clone());
            let status = match self.store.get_runtime(&d.namespace, &d.name).await {
                Ok(Some(rt)) => rt.status,
                Ok(None) => continue,
                // Damaged state stops the pool's passes too; the others are sampled.
                Err(StoreError::Corrupt { .. }) => continue,
                Err(e) => return Err(e),
            };
            if !bulk_read && !self.last.contains_key(&key) {
                self.read_back(&key, hour_of(now)).await?;
            }
            let spec = &d.spec;
            let snap = snapshot(spec, &status, policies.get(&key), now);
            self.gauges(&key, &snap);
            if let Some(prev) = self.last.remove(&key)
                && now > prev.sample.at_ms
                && now - prev.sample.at_ms <= max_gap
            {
                let action =
                    prev.sample.desired.is_some() && prev.sample.desired != snap.sample.desired;
                self.integrate(&key, &spec.flavor, &prev, &snap, action, &mut finished);
            }
            finished.extend(self.take_stale(&key, hour_of(now)));
            let row = self.row(&key, hour_of(now), &spec.flavor);
            row.flavor.clone_from(&spec.flavor);
            row.samples.push(snap.sample);
            seen.insert(key.clone());
            self.last.insert(key, snap);
        }
        self.forget_missing(&seen, &mut finished);
        self.rounds += 1;
        if !finished.is_empty()
            || !self.unwritten.is_empty()
            || self.rounds.is_multiple_of(FLUSH_EVERY)
        {
            self.flush(finished).await?;
        }
        Ok(())
    }

    fn gauges(&self, key: &Key, snap: &Snapshot) {
        let pool = format!("{}/{}", key.0, key.1);
        let per_hour: f64 = snap
            .by_purchase
            .iter()
            .map(|(f, p, n)| f64::from(*n) * self.config.prices.hourly(f, *p))
            .sum();
        let idle = match snap.demand {
            Some(d) if snap.sample.billed > 0 => {
                f64::from(snap.sample.ready.saturating_sub(d)) / f64::from(snap.sample.billed)
            }
            _ => 0.0,
        };
        self.telemetry.set_pool_cost(&pool, per_hour, idle);
    }

    /// Forget pools not sampled this round. The open hour of one this agent still
    /// holds (it is being deleted) is written now — its last minutes of cost; that of
    /// one it no longer holds is dropped (its new holder carries the hour on).
    fn forget_missing(&mut self, seen: &HashSet<Key>, finished: &mut Vec<UsageHour>) {
        for k in unseen(&self.last, seen) {
            self.last.remove(&k);
            self.telemetry.forget_pool_cost(&format!("{}/{}", k.0, k.1));
        }
        for k in unseen(&self.hours, seen) {
            let Some(row) = self.hours.remove(&k) else {
                continue;
            };
            if self.dirty.remove(&(k.clone(), row.hour)) && self.store.holds(&k.0, &k.1) {
                finished.push(row);
            }
        }
        self.dirty.retain(|(k, _)| seen.contains(k));
    }

    /// Write rollups not yet stored: `finished` hours, every open hour touched since the
    /// last write, and what an earlier write failed to store — of the pools this agent
    /// holds. What fails is kept for the next write.
    pub async fn flush(&mut self, finished: Vec<UsageHour>) -> Result<(), StoreError> {
        let mut rows = std::mem::take(&mut self.unwritten);
        rows.extend(finished);
        for (key, hour) in std::mem::take(&mut self.dirty) {
            if let Some(r) = self.hours.get(&key).filter(|r| r.hour == hour) {
                rows.push(r.clone());
            }
        }
        let mut rows = newest_per_hour(rows);
        rows.retain(|r| self.store.holds(&r.namespace, &r.pool));
        if rows.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.store.put_usage_hours(&rows).await {
            self.unwritten = rows;
            return Err(e);
        }
        Ok(())
    }

    /// Sample every `sample_interval` until `shutdown`, then flush.
    pub async fn run(mut self, shutdown: CancellationToken) {
        if let Err(e) = self.resume().await {
            tracing::warn!(error = %e, "usage recorder could not read back the current hour");
        }
        // Rollups older than `cost.retention` are deleted by the store's pruning.
        loop {
            if let Err(e) = self.sample_all().await {
                tracing::warn!(error = %e, "usage sampling failed; retrying next interval");
            }
            let wait = self.clock.real_duration(self.config.sample_interval);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        if let Err(e) = self.flush(Vec::new()).await {
            tracing::warn!(error = %e, "usage rollups could not be written at shutdown");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(at_ms: i64, ready: u32, load: Option<f64>, demand: Option<u32>) -> Snapshot {
        Snapshot {
            sample: UsageSample {
                at_ms,
                load_rps: load,
                ready,
                billed: ready,
                desired: Some(ready),
                forecast_capacity: None,
            },
            by_purchase: vec![("x1.2u.4g".into(), Purchase::OnDemand, ready)],
            demand,
        }
    }

    #[test]
    fn a_span_counts_the_mean_instances_and_holds_the_load() {
        let mut row_a = UsageHour::new("ns", "p", 0, "x1.2u.4g");
        let s = snap(3_540_000, 4, Some(100.0), Some(3));
        let next = snap(3_600_000, 2, Some(100.0), Some(3));
        accumulate(&mut row_a, &s, &next, 60.0, true);
        assert_eq!(
            row_a.billed_seconds, 180.0,
            "the mean of 4 and 2 instances over 60 s"
        );
        assert_eq!(row_a.by_purchase[0].2, 180.0);
        assert_eq!(row_a.idle_seconds, 60.0, "one ready instance above demand");
        assert_eq!(row_a.requests, 6000.0);
        assert_eq!(row_a.actions, 1);
        let short = snap(0, 2, Some(100.0), Some(3));
        let mut row_b = UsageHour::new("ns", "p", 0, "x1.2u.4g");
        accumulate(&mut row_b, &short, &short, 30.0, false);
        assert_eq!(
            row_b.violation_seconds, 30.0,
            "demand above ready is a violation"
        );
    }

    #[test]
    fn cpu_utilisation_turns_into_load_through_the_capacity_model() {
        let f = flexus_sim::capacity::lookup("x1.2u.4g").unwrap();
        let l = load_from_utilisation(MetricKind::Cpu, 51.0, 2, &f).unwrap();
        assert!((l - 0.5 * 2.0 * f.max_rps()).abs() < 1e-9);
        assert_eq!(load_from_utilisation(MetricKind::Memory, 50.0, 2, &f), None);
    }

    #[test]
    fn the_load_recorded_is_the_signal_as_observed_not_as_read_ahead() {
        use flexus_policy as fp;
        let policy: fp::Policy = serde_json::from_value(serde_json::json!({
            "strategy": "target_tracking", "bounds": {"min": 1, "max": 100}, "tolerance": 0,
            "metrics": [{"name": "rps", "kind": "custom", "source": {"type": "push"},
                "target": 10, "per_instance": true, "stale_after": "10m",
                "trend_lead": "5m", "trend_significance": 0, "trend_max_raise": 1,
                "noise_headroom": 1, "noise_window": "10m"}]
        }))
        .unwrap();
        let spec = PolicySpec {
            pool: "p".into(),
            policy: policy.clone(),
        };
        let cp = fp::CompiledPolicy::new(policy).unwrap();
        let now = fp::Timestamp::from_millis(3_600_000);
        // Rising 10 a minute to 140: read ahead to 190, plus a mean jump of 10.
        let obs: Vec<fp::Observation> = [100.0, 110.0, 120.0, 130.0, 140.0]
            .iter()
            .enumerate()
            .map(|(i, v)| fp::Observation {
                metric: "rps".into(),
                value: *v,
                at: now.sub(std::time::Duration::from_secs((4 - i as u64) * 60)),
            })
            .collect();
        let pool = fp::PoolState::ready(14, fp::Timestamp::from_millis(0));
        let history = fp::History::new();
        let decision = fp::decide(
            &cp,
            &fp::DecisionInput {
                now,
                observations: &obs,
                pool: &pool,
                history: &history,
                prediction: None,
            },
        );
        let mut detail = serde_json::to_value(&decision).unwrap();
        assert_eq!(detail["proposals"][0]["value"].as_f64(), Some(200.0));
        let status = |detail: serde_json::Value| PoolStatus {
            last_decision: Some(
                serde_json::from_value(serde_json::json!({
                    "id": 1, "at": "1970-01-01T01:00:00Z", "current": 14, "desired": 20,
                    "on_demand": 20, "spot": 0, "action": "scale_out", "outcome": "acted",
                    "explanation": "", "detail": detail
                }))
                .unwrap(),
            ),
            ..PoolStatus::default()
        };
        assert_eq!(
            load_signal(&status(detail.clone()), Some(&spec), 14, None),
            Some(140.0)
        );
        // A decision recorded before proposals carried the observed value: the value used.
        detail["proposals"][0]
            .as_object_mut()
            .unwrap()
            .remove("observed");
        assert_eq!(
            load_signal(&status(detail), Some(&spec), 14, None),
            Some(200.0)
        );
    }

    #[test]
    fn hours_start_on_the_hour() {
        assert_eq!(hour_of(3_599_999), 0);
        assert_eq!(hour_of(3_600_000), 3600);
    }
}
