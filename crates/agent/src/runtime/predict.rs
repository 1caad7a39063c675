//! Feeding the forecaster: the prediction metric's samples go into a bucketed
//! history per pool (`flexus_policy::forecast::buckets`, 15-minute buckets, each
//! represented by its time-weighted mean), the model is refitted every
//! `prediction.refit_interval` on a blocking thread, and the highest forecast over
//! `[now, now + lead_time]` is what the pass hands to `decide()` as a
//! [`fp::Prediction`] — after the policy's own rules on it
//! (`PredictionSettings::prediction_value`: the `min_seasonal_strength` gate measured on
//! the fitted history, and `relative_rise`), the same call the simulator makes.
//!
//! Guarantees:
//! - The history survives a restart: every pass that adds samples upserts the buckets
//!   it touched (and the newest sample time, so no sample is counted twice) and drops
//!   buckets older than `prediction.history_window`.
//! - A fit never runs on the async workers: it runs on `spawn_blocking`, and the pass
//!   awaits it (one pool's pass, never the others).
//! - After a restart the model is refitted on the first pass (the fit itself is not
//!   stored; the history is).
//!
//! Caveats: a sample older than the newest one already taken in (a late push) counts
//! as an observation but not into the history.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use flexus_api::PredictionRecord;
use flexus_policy as fp;
use flexus_policy::forecast::buckets::{Bucket, Buckets};
use flexus_policy::forecast::predictor::{MAX_SAMPLE_S, Predictor};

use super::PoolKey;
use crate::clock::{Millis, rfc3339};
use crate::store::{ForecastHeader, PushedPoint, Store, StoreError};

/// Forecast resolution (s).
pub const BUCKET_S: f64 = flexus_policy::forecast::buckets::DEFAULT_BUCKET_S;

/// One pool's forecaster state.
#[derive(Debug)]
struct PoolForecast {
    metric: String,
    /// flexus-policy's prediction path (the simulator runs the same one): buckets,
    /// refit schedule, seasonal strength, the policy's rules on the forecast.
    predictor: Predictor,
}

/// What the forecaster gives one pass.
#[derive(Debug, Default)]
pub struct Outcome {
    /// What to pass to `decide()`.
    pub prediction: Option<fp::Prediction>,
    /// How long the fit of this pass took (when one ran).
    pub fit: Option<Duration>,
    /// The decision log entry, minus what `decide()` adds (capacity, applied).
    pub record: Option<PredictionRecord>,
}

/// Forecaster states of every predictive pool.
#[derive(Debug, Default)]
pub struct Forecaster {
    pools: Mutex<HashMap<PoolKey, PoolForecast>>,
}

fn secs(ms: Millis) -> f64 {
    ms as f64 / 1000.0
}

impl Forecaster {
    /// The newest sample in a pool's history, if its state is loaded.
    pub fn cursor(&self, key: &PoolKey) -> Option<Option<Millis>> {
        self.pools
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .map(PoolForecast::last_sample_ms)
    }

    /// Forget a pool (deleted, or its policy no longer predicts).
    pub fn forget(&self, key: &PoolKey) {
        self.pools
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    /// Take in the prediction metric's new samples, refit when due, and forecast.
    ///
    /// `samples` are the prediction metric's readings of this pass (any order; those
    /// not newer than the history's newest are skipped).
    pub async fn step(
        &self,
        store: &dyn Store,
        key: &PoolKey,
        policy: &fp::Policy,
        samples: &[PushedPoint],
        now: Millis,
    ) -> Result<Outcome, StoreError> {
        let p = &policy.prediction;
        let Some(metric) = p.metric.clone().filter(|_| p.enabled) else {
            self.forget(key);
            return Ok(Outcome::default());
        };
        let taken = self
            .pools
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
        let (mut st, reset) = match taken {
            Some(st) if st.metric == metric => (st, false),
            _ => load(store, key, &metric).await?,
        };
        // 1. New samples into the history, kept in the store.
        let changed = st.take_in(samples, policy, now);
        let (keep_from, pruned) = st.predictor.prune(secs(now), p);
        if !changed.is_empty() || pruned || reset {
            let header = ForecastHeader {
                metric: metric.clone(),
                bucket_seconds: st.predictor.buckets.length(),
                last_sample_ms: st.last_sample_ms(),
            };
            store
                .put_forecast(&key.ns, &key.name, &header, &changed, keep_from, reset)
                .await?;
        }
        // 2. Refit on schedule, off the async workers.
        let (fit, note) = st.refit_if_due(key, p, now).await;
        // 3. The value for decide().
        let outcome = st.forecast(p, samples, now, fit, note);
        self.pools
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone(), st);
        Ok(outcome)
    }
}

impl PoolForecast {
    fn last_sample_ms(&self) -> Option<Millis> {
        self.predictor
            .last_sample
            .map(|t| (t * 1000.0).round() as Millis)
    }

    /// Adds the new samples (newer than the newest taken in) to the buckets; returns
    /// the buckets they changed.
    fn take_in(
        &mut self,
        samples: &[PushedPoint],
        policy: &fp::Policy,
        now: Millis,
    ) -> Vec<Bucket> {
        let first_period = policy
            .evaluation_interval
            .as_secs_f64()
            .clamp(1.0, MAX_SAMPLE_S);
        self.predictor.ingest(
            samples
                .iter()
                .filter(|s| s.metric == self.metric && s.at <= now)
                .map(|s| (secs(s.at), s.value)),
            first_period,
        )
    }

    /// Refits when `refit_interval` has passed (or after a restart) on a blocking
    /// thread; returns how long the fit took, and a note when there was none.
    async fn refit_if_due(
        &mut self,
        key: &PoolKey,
        p: &fp::PredictionSettings,
        now: Millis,
    ) -> (Option<Duration>, Option<String>) {
        let now_s = secs(now);
        let req = match self.predictor.fit_request(now_s, p) {
            Ok(Some(req)) => req,
            Ok(None) => return (None, None),
            Err(complete) => {
                let note = format!(
                    "waiting for history: {complete} of 2 complete {}-minute buckets of {}",
                    (BUCKET_S / 60.0) as u32,
                    self.metric
                );
                return (None, Some(note));
            }
        };
        let started = Instant::now();
        let joined = tokio::task::spawn_blocking(move || {
            let r = req.run();
            (req, r)
        })
        .await;
        let took = started.elapsed();
        match joined {
            Ok((req, Ok(f))) => {
                tracing::debug!(pool = %key, points = req.y.len(), method = ?f.method,
                    took_ms = took.as_secs_f64() * 1e3, "forecast refitted");
                self.predictor.store_fit(now_s, &req, f);
                (Some(took), None)
            }
            Ok((_, Err(e))) => (None, Some(format!("forecast failed: {e}"))),
            Err(e) => (None, Some(format!("forecast task failed: {e}"))),
        }
    }

    /// The highest forecast over `[now, now + lead_time]` after the policy's rules on
    /// it (seasonality gate, relative rise, as in the simulator), and its record.
    fn forecast(
        &self,
        p: &fp::PredictionSettings,
        samples: &[PushedPoint],
        now: Millis,
        fit: Option<Duration>,
        mut note: Option<String>,
    ) -> Outcome {
        let now_s = secs(now);
        let metric = &self.metric;
        let lead = p.lead_time.as_secs_f64();
        let current = samples
            .iter()
            .filter(|s| &s.metric == metric && s.at <= now && s.value.is_finite())
            .max_by_key(|s| s.at)
            .map(|s| s.value);
        let predicted = self.predictor.value(now_s, p, current);
        let (ahead, value) = (predicted.ahead, predicted.value);
        if ahead.is_none() && note.is_none() {
            note = Some("the last fit does not cover now + lead_time".into());
        }
        if ahead.is_some() && value.is_none() && note.is_none() {
            note = Some(format!(
                "forecast level not used: seasonal strength {} below min_seasonal_strength",
                self.predictor
                    .seasonal_strength
                    .map_or_else(|| "unknown".to_owned(), |x| format!("{x:.2}"))
            ));
        }
        let last = self.predictor.refit.last.as_ref();
        if note.is_none() {
            note = last.and_then(|f| f.fallback_reason.clone());
        }
        let record = PredictionRecord {
            metric: metric.clone(),
            mode: p.mode,
            forecast: value,
            capacity: None,
            applied: false,
            would_add: 0,
            method: last.map(|f| f.method.as_str().to_owned()),
            fitted_at: self
                .predictor
                .refit
                .fitted_at
                .map(|t| rfc3339((t * 1000.0) as Millis)),
            history_buckets: self.predictor.buckets.complete(now_s).len() as u32,
            note,
        };
        let prediction = value.map(|v| fp::Prediction {
            at: fp::Timestamp(now + (lead * 1000.0) as Millis),
            values: vec![(metric.clone(), v)],
        });
        Outcome {
            prediction,
            fit,
            record: Some(record),
        }
    }
}

/// The pool's stored history, or a fresh one (`reset` = stored buckets must go).
async fn load(
    store: &dyn Store,
    key: &PoolKey,
    metric: &str,
) -> Result<(PoolForecast, bool), StoreError> {
    let stored = store.get_forecast(&key.ns, &key.name).await?;
    Ok(match stored {
        Some(h)
            if h.header.metric == metric && (h.header.bucket_seconds - BUCKET_S).abs() < 1e-9 =>
        {
            (
                PoolForecast {
                    metric: metric.to_owned(),
                    predictor: Predictor::new(
                        Buckets::from_parts(BUCKET_S, h.buckets),
                        h.header.last_sample_ms.map(secs),
                    ),
                },
                false,
            )
        }
        other => (
            PoolForecast {
                metric: metric.to_owned(),
                predictor: Predictor::new(Buckets::new(BUCKET_S), None),
            },
            other.is_some(),
        ),
    })
}

/// Completes the record with what `decide()` did with the forecast (`max`: the
/// policy's upper bound, which a forecast never exceeds either).
pub fn finish_record(
    mut r: PredictionRecord,
    decision: &fp::Decision,
    max: u32,
) -> PredictionRecord {
    for s in &decision.explanation {
        if let fp::Step::Prediction {
            capacity, applied, ..
        } = s
        {
            r.capacity = Some(*capacity);
            r.applied = *applied;
            if r.mode == fp::PredictionMode::ForecastOnly {
                r.would_add = (*capacity).min(max).saturating_sub(decision.desired);
            }
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;

    fn policy(metric: &str, enabled: bool) -> fp::Policy {
        serde_json::from_value(serde_json::json!({
            "strategy": "target_tracking",
            "evaluation_interval": "60s",
            "bounds": {"min": 1, "max": 20},
            "metrics": [
                {"name": "rps", "kind": "custom", "source": {"type": "prometheus", "query": "q"},
                 "target": 10, "per_instance": true},
                {"name": "rps2", "kind": "custom", "source": {"type": "push"},
                 "target": 10, "per_instance": true}
            ],
            "prediction": {"enabled": enabled, "metric": metric, "target_per_instance": 10,
                           "lead_time": "15m", "seasonality": ["1h"], "history_window": "1d",
                           "refit_interval": "30m"}
        }))
        .unwrap()
    }

    /// One reading a minute of an hourly cycle, from `from_min` for `n` minutes.
    fn readings(metric: &str, from_min: i64, n: i64) -> Vec<PushedPoint> {
        (from_min..from_min + n)
            .map(|m| PushedPoint {
                metric: metric.into(),
                at: m * 60_000,
                value: 50.0 + 40.0 * (std::f64::consts::TAU * m as f64 / 60.0).sin(),
            })
            .collect()
    }

    #[tokio::test]
    async fn samples_are_taken_once_and_the_history_reloads_after_a_restart() {
        let store = SqliteStore::in_memory().await.unwrap();
        let key = PoolKey::new("a", "p");
        let pol = policy("rps", true);
        let f = Forecaster::default();
        // Minutes 1..=180: each reading stands for the minute before it.
        let all = readings("rps", 1, 180);
        let now = 180 * 60_000;
        let out = f.step(&store, &key, &pol, &all, now).await.unwrap();
        let r = out.record.unwrap();
        assert_eq!(r.history_buckets, 12, "three hours of 15-minute buckets");
        assert!(out.prediction.is_some() && out.fit.is_some(), "{r:?}");
        let stored = store.get_forecast("a", "p").await.unwrap().unwrap();

        // The same readings again (a source that reports its last point twice) change nothing.
        f.step(&store, &key, &pol, &all, now).await.unwrap();
        assert_eq!(store.get_forecast("a", "p").await.unwrap().unwrap(), stored);

        // A new forecaster on the same store (a restart) holds the same history and
        // refits at once; old readings are still not counted twice.
        let g = Forecaster::default();
        let out = g.step(&store, &key, &pol, &all, now + 1000).await.unwrap();
        let r2 = out.record.unwrap();
        assert_eq!(r2.history_buckets, 12);
        assert!(
            out.fit.is_some(),
            "refitted on the first pass after the restart"
        );
        assert_eq!(store.get_forecast("a", "p").await.unwrap().unwrap(), stored);
    }

    #[tokio::test]
    async fn the_forecast_level_needs_the_policys_seasonal_strength() {
        let mut pol = policy("rps", true);
        pol.prediction.min_seasonal_strength = Some(0.5);
        let step = |readings: Vec<PushedPoint>| {
            let pol = pol.clone();
            async move {
                let store = SqliteStore::in_memory().await.unwrap();
                Forecaster::default()
                    .step(
                        &store,
                        &PoolKey::new("a", "p"),
                        &pol,
                        &readings,
                        180 * 60_000,
                    )
                    .await
                    .unwrap()
            }
        };
        // The hourly cycle: strongly seasonal, the forecast counts.
        let out = step(readings("rps", 1, 180)).await;
        assert!(out.prediction.is_some(), "{:?}", out.record);
        // Noise with no cycle: the level is refused, and the log says why.
        let mut seed = 11u64;
        let noise: Vec<PushedPoint> = (1..=180)
            .map(|m| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                PushedPoint {
                    metric: "rps".into(),
                    at: m * 60_000,
                    value: 20.0 + ((seed >> 33) % 60) as f64,
                }
            })
            .collect();
        let out = step(noise).await;
        assert!(out.prediction.is_none());
        let note = out.record.and_then(|r| r.note).unwrap_or_default();
        assert!(note.contains("below min_seasonal_strength"), "{note}");
    }

    #[tokio::test]
    async fn refits_follow_the_refit_interval() {
        let store = SqliteStore::in_memory().await.unwrap();
        let key = PoolKey::new("a", "p");
        let pol = policy("rps", true);
        let f = Forecaster::default();
        let mut fits = Vec::new();
        for m in 180..300i64 {
            let out = f
                .step(&store, &key, &pol, &readings("rps", m, 1), (m + 1) * 60_000)
                .await
                .unwrap();
            if out.fit.is_some() {
                fits.push(m);
            }
        }
        // The first reading (180 min) stands for the minute before it, in the bucket
        // [165, 180) min; the second bucket [180, 195) completes at 195 min (the pass
        // of reading 194): the first fit; then one every 30 minutes.
        assert_eq!(fits, vec![194, 224, 254, 284], "{fits:?}");
    }

    #[tokio::test]
    async fn another_metric_starts_a_new_history_and_disabling_drops_the_state() {
        let store = SqliteStore::in_memory().await.unwrap();
        let key = PoolKey::new("a", "p");
        let f = Forecaster::default();
        let now = 180 * 60_000;
        let history = readings("rps", 0, 180);
        f.step(&store, &key, &policy("rps", true), &history, now)
            .await
            .unwrap();
        let out = f
            .step(&store, &key, &policy("rps2", true), &history, now)
            .await
            .unwrap();
        let r = out.record.unwrap();
        assert_eq!((r.metric.as_str(), r.history_buckets), ("rps2", 0));
        assert!(out.prediction.is_none());
        assert!(r.note.unwrap().contains("waiting for history"));
        let h = store.get_forecast("a", "p").await.unwrap().unwrap();
        assert_eq!((h.header.metric.as_str(), h.buckets.len()), ("rps2", 0));

        let out = f
            .step(&store, &key, &policy("rps2", false), &[], now)
            .await
            .unwrap();
        assert!(out.record.is_none() && out.prediction.is_none());
        assert_eq!(f.cursor(&key), None, "state dropped");
    }

    #[test]
    fn forecast_only_records_what_it_would_have_added_within_the_bounds() {
        let rec = PredictionRecord {
            metric: "rps".into(),
            mode: fp::PredictionMode::ForecastOnly,
            forecast: Some(95.0),
            capacity: None,
            applied: false,
            would_add: 0,
            method: None,
            fitted_at: None,
            history_buckets: 4,
            note: None,
        };
        let decision = fp::Decision {
            at: fp::Timestamp(0),
            current: 3,
            recommendation: 3,
            desired: 3,
            on_demand: 3,
            spot: 0,
            action: fp::Action::None,
            proposals: Vec::new(),
            bound_by: None,
            explanation: vec![fp::Step::Prediction {
                forecast: 95.0,
                capacity: 10,
                applied: false,
            }],
            next_evaluation: fp::Timestamp(60_000),
            cpu_sample: None,
            dry_run: false,
        };
        let r = finish_record(rec, &decision, 8);
        assert_eq!((r.capacity, r.applied, r.would_add), (Some(10), false, 5));
    }
}
