//! Reading a policy's signals for one pass: pushed datapoints from the store, pulled
//! readings from Cloud Eye / Prometheus / Redis (kept for each metric's lookback), and
//! the prediction metric's samples for the forecaster.

use std::time::Duration;

use flexus_policy as fp;

use super::Context;
use super::observed::Observed;
use crate::clock::Millis;
use crate::runtime::PoolKey;
use crate::runtime::sources::SourceError;
use crate::store::{PUSH_RETENTION, PushedPoint, StoreError};

impl Context {
    /// The pool's pushed datapoints this pass needs: those within any push metric's
    /// aggregation window or staleness limit, and — when the prediction metric is
    /// pushed — every one newer than the forecast history's newest sample.
    pub(super) async fn read_pushed(
        &self,
        key: &PoolKey,
        policy: &fp::Policy,
        now: Millis,
    ) -> Result<Vec<PushedPoint>, StoreError> {
        let pushed: Vec<&fp::Metric> = policy
            .metrics
            .iter()
            .filter(|m| matches!(m.source, fp::MetricSource::Push))
            .collect();
        if pushed.is_empty() {
            return Ok(Vec::new());
        }
        let window = pushed
            .iter()
            .map(|m| m.lookback())
            .max()
            .unwrap_or_default()
            + Duration::from_secs(60);
        let mut since = now - window.as_millis() as i64;
        let p = &policy.prediction;
        if p.enabled
            && let Some(metric) = &p.metric
            && pushed.iter().any(|m| &m.name == metric)
        {
            let from = match self.forecaster.cursor(key) {
                Some(Some(last)) => last + 1,
                // Not loaded yet (first pass): everything still retained.
                _ => now - PUSH_RETENTION.as_millis() as i64,
            };
            since = since.min(from);
        }
        self.store.pushed_since(&key.ns, &key.name, since).await
    }

    /// Every signal of the policy: pushed datapoints within each metric's window, one
    /// reading per pulled metric (a source that fails leaves the signal missing — the
    /// policy's missing-data rule decides), plus the pulled readings kept from earlier
    /// passes within each metric's lookback.
    pub(super) async fn observe_metrics(
        &self,
        key: &PoolKey,
        policy: &fp::Policy,
        obs: &Observed,
        pushed: &[PushedPoint],
        now: Millis,
    ) -> Vec<fp::Observation> {
        let mut out = Vec::new();
        for m in &policy.metrics {
            if matches!(m.source, fp::MetricSource::Push) {
                // Every pushed datapoint within the metric's window; the engine
                // aggregates and applies the staleness rule.
                let from = now - m.lookback().as_millis() as i64 - 60_000;
                out.extend(
                    pushed
                        .iter()
                        .filter(|p| p.metric == m.name && p.at >= from && p.at <= now)
                        .map(|p| fp::Observation {
                            metric: m.name.clone(),
                            value: p.value,
                            at: fp::Timestamp(p.at),
                        }),
                );
                continue;
            }
            match self.pull(key, &m.source, obs, now).await {
                Ok(Some(reading)) => out.push(fp::Observation {
                    metric: m.name.clone(),
                    value: reading.value,
                    at: fp::Timestamp(reading.at),
                }),
                Ok(None) => {}
                Err(e) => {
                    self.telemetry.error("metric_source");
                    tracing::warn!(metric = %m.name, error = %e, "signal unavailable");
                }
            }
        }
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let kept = recent.entry(key.clone()).or_default();
        merge_recent(kept, &mut out, policy, now);
        out
    }

    /// One reading of a pulled source.
    async fn pull(
        &self,
        key: &PoolKey,
        source: &fp::MetricSource,
        obs: &Observed,
        now: Millis,
    ) -> Result<Option<super::super::sources::Reading>, SourceError> {
        match source {
            fp::MetricSource::CloudEye {
                namespace,
                metric_name,
            } => {
                self.sources
                    .cloud_eye
                    .mean_latest(
                        self.cloud_for(&key.ns).as_ref(),
                        namespace,
                        metric_name,
                        &obs.ready_ids,
                        now,
                    )
                    .await
            }
            fp::MetricSource::Prometheus { query } => match &self.sources.prometheus {
                Some(p) => p.query(query).await,
                None => Err(SourceError::NotConfigured {
                    source_kind: "prometheus",
                }),
            },
            fp::MetricSource::Redis { key } => match &self.sources.redis {
                Some(r) => r.read(key, now).await,
                None => Err(SourceError::NotConfigured {
                    source_kind: "redis",
                }),
            },
            fp::MetricSource::Push => Ok(None), // read from the store
        }
    }
}

/// Adds this pass's pulled readings to `kept` (one per metric and timestamp), drops
/// what is older than each metric's lookback (plus one minute), and returns in `out`
/// the pushed observations followed by every kept pulled reading.
pub(super) fn merge_recent(
    kept: &mut Vec<fp::Observation>,
    out: &mut Vec<fp::Observation>,
    policy: &fp::Policy,
    now: Millis,
) {
    let pulled = |name: &str| {
        policy
            .metrics
            .iter()
            .find(|m| m.name == name && !matches!(m.source, fp::MetricSource::Push))
    };
    for o in out.iter().filter(|o| pulled(&o.metric).is_some()) {
        if !kept.iter().any(|k| k.metric == o.metric && k.at == o.at) {
            kept.push(o.clone());
        }
    }
    kept.retain(|k| {
        pulled(&k.metric).is_some_and(|m| {
            k.at.0 >= now - m.lookback().as_millis() as i64 - 60_000 && k.at.0 <= now
        })
    });
    kept.sort_by_key(|k| k.at.0);
    out.retain(|o| pulled(&o.metric).is_none());
    out.extend(kept.iter().cloned());
}

/// The prediction metric's readings of this pass: its pushed datapoints when it is
/// pushed, else the reading its source gave.
pub(super) fn prediction_samples(
    policy: &fp::Policy,
    observations: &[fp::Observation],
    pushed: &[PushedPoint],
) -> Vec<PushedPoint> {
    let p = &policy.prediction;
    let Some(metric) = p.metric.as_deref().filter(|_| p.enabled) else {
        return Vec::new();
    };
    let is_pushed = policy
        .metrics
        .iter()
        .any(|m| m.name == metric && matches!(m.source, fp::MetricSource::Push));
    if is_pushed {
        pushed
            .iter()
            .filter(|s| s.metric == metric)
            .cloned()
            .collect()
    } else {
        observations
            .iter()
            .filter(|o| o.metric == metric)
            .map(|o| PushedPoint {
                metric: o.metric.clone(),
                at: o.at.0,
                value: o.value,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(metric: &str, value: f64, at: Millis) -> fp::Observation {
        fp::Observation {
            metric: metric.into(),
            value,
            at: fp::Timestamp(at),
        }
    }

    #[test]
    fn pulled_readings_are_kept_for_the_metric_lookback_and_pushed_ones_pass_through() {
        let policy = fp::parse_json(
            r#"{"strategy": "target_tracking", "bounds": {"min": 1, "max": 10}, "metrics": [
                {"name": "cpu", "kind": "cpu", "target": 60, "duration": "3m",
                 "source": {"type": "cloud_eye", "metric_name": "cpu_util"}},
                {"name": "rps", "kind": "custom", "target": 10, "per_instance": true,
                 "source": {"type": "push"}}]}"#,
        )
        .unwrap();
        let mut kept = Vec::new();
        let min = 60_000;
        // Four passes a minute apart; the same Cloud Eye datapoint may be read twice.
        for (pass, at, v) in [
            (0, 0, 10.0),
            (1, min, 20.0),
            (2, min, 20.0),
            (3, 3 * min, 40.0),
        ] {
            let now = pass * min + 30_000;
            let mut out = vec![obs("cpu", v, at), obs("rps", 5.0, now)];
            merge_recent(&mut kept, &mut out, &policy, now);
            let cpu: Vec<f64> = out
                .iter()
                .filter(|o| o.metric == "cpu")
                .map(|o| o.value)
                .collect();
            let rps = out.iter().filter(|o| o.metric == "rps").count();
            assert_eq!(
                rps, 1,
                "pushed readings are not buffered here (pass {pass})"
            );
            match pass {
                0 => assert_eq!(cpu, vec![10.0]),
                1 | 2 => assert_eq!(cpu, vec![10.0, 20.0], "no duplicate of one datapoint"),
                _ => assert_eq!(cpu, vec![10.0, 20.0, 40.0]),
            }
        }
        // Beyond the lookback (3 m window + 1 min margin) old readings are dropped.
        let now = 5 * min;
        let mut out = vec![obs("cpu", 50.0, 5 * min)];
        merge_recent(&mut kept, &mut out, &policy, now);
        let at: Vec<Millis> = out.iter().map(|o| o.at.0).collect();
        assert_eq!(at, vec![min, 3 * min, 5 * min]);
    }
}
