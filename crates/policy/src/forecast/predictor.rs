//! The prediction path of one pool, shared by the agent and the simulator: samples
//! of the prediction metric go into [`Buckets`], the model is refitted on the
//! policy's schedule, and the value handed to `decide()` is the highest forecast
//! over `[now, now + lead_time]` after the policy's own rules
//! ([`PredictionSettings::prediction_value`]: the seasonality gate and the
//! relative rise).
//!
//! Pure: times are seconds in the caller's time base. The fit itself is split out
//! ([`Predictor::fit_request`] → [`super::buckets::FitRequest::run`] →
//! [`Predictor::store_fit`]) so that the agent can run it on a blocking thread
//! and the simulator inline — the same steps in the same order either way.

use super::buckets::{self, Bucket, BucketStat, Buckets, FitRequest};
use super::{Forecast, Refit};
use crate::model::PredictionSettings;

/// A sample stands for at most this long (s) when weighting a bucket's mean: the
/// time since the previous sample, capped, so a sample after an outage does not
/// stand for the outage.
pub const MAX_SAMPLE_S: f64 = 300.0;

/// One pool's forecaster state.
#[derive(Debug, Clone)]
pub struct Predictor {
    /// The bucketed history.
    pub buckets: Buckets,
    /// The last fit and its schedule.
    pub refit: Refit,
    /// Time (s) of the newest sample taken in.
    pub last_sample: Option<f64>,
    /// Seasonal strength of the history of the last fit.
    pub seasonal_strength: Option<f64>,
}

/// What [`Predictor::value`] found.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PredictedValue {
    /// The highest forecast over `[now, now + lead]` (before the policy's rules).
    pub ahead: Option<f64>,
    /// The value for `decide()` (after them).
    pub value: Option<f64>,
}

impl Predictor {
    /// A predictor over an existing history.
    pub fn new(buckets: Buckets, last_sample: Option<f64>) -> Self {
        Self {
            buckets,
            refit: Refit::default(),
            last_sample,
            seasonal_strength: None,
        }
    }

    /// Takes in samples `(time s, value)` newer than the newest one taken in
    /// (sorted here); each stands for the time since the previous sample, capped at
    /// [`MAX_SAMPLE_S`] (the first for `first_period` s). Returns the buckets it
    /// changed, oldest first.
    pub fn ingest(
        &mut self,
        samples: impl IntoIterator<Item = (f64, f64)>,
        first_period: f64,
    ) -> Vec<Bucket> {
        let mut fresh: Vec<(f64, f64)> = samples
            .into_iter()
            .filter(|&(t, v)| v.is_finite() && t.is_finite())
            .filter(|&(t, _)| self.last_sample.is_none_or(|l| t > l))
            .collect();
        fresh.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut changed: Vec<Bucket> = Vec::new();
        for (at, value) in fresh {
            let period = match self.last_sample {
                Some(prev) => (at - prev).clamp(0.001, MAX_SAMPLE_S),
                None => first_period.clamp(0.001, MAX_SAMPLE_S),
            };
            if let Some(b) = self.buckets.add(at - period, value, period) {
                match changed.last_mut() {
                    Some(last) if last.start == b.start => *last = b,
                    _ => changed.push(b),
                }
            }
            self.last_sample = Some(at);
        }
        changed
    }

    /// Drops buckets older than the history window (plus one bucket); returns the
    /// start of the oldest kept bucket and whether anything was dropped.
    pub fn prune(&mut self, now: f64, settings: &PredictionSettings) -> (f64, bool) {
        let keep_from = self
            .buckets
            .start_of(now - settings.history_window.as_secs_f64() - self.buckets.length());
        let pruned = self
            .buckets
            .buckets()
            .first()
            .is_some_and(|b| b.start < keep_from);
        self.buckets.prune_before(keep_from);
        (keep_from, pruned)
    }

    /// The fit due at `now`, if one is (and the history has two complete
    /// buckets); measures the history's seasonal strength on the way. `Err(n)`:
    /// a fit is due but only `n` complete buckets exist.
    pub fn fit_request(
        &mut self,
        now: f64,
        settings: &PredictionSettings,
    ) -> Result<Option<FitRequest>, usize> {
        if !self.refit.due(now, settings.refit_interval.as_secs_f64()) {
            return Ok(None);
        }
        match self.buckets.fit_request(now, settings, BucketStat::Mean) {
            Some(req) => {
                // Gaps are NaN in the request; interpolated for the strength as for the fit.
                self.seasonal_strength = super::clean(&req.y)
                    .ok()
                    .and_then(|y| settings.seasonal_strength(&y, req.step));
                Ok(Some(req))
            }
            None => Err(self.buckets.complete(now).len()),
        }
    }

    /// Keeps the forecast of a fit made at `now` from `req`.
    pub fn store_fit(&mut self, now: f64, req: &FitRequest, forecast: Forecast) {
        self.refit.store(now, req.starts_at, req.step, forecast);
    }

    /// The value for `decide()` at `now`, given the prediction metric's current
    /// reading.
    pub fn value(
        &self,
        now: f64,
        settings: &PredictionSettings,
        current: Option<f64>,
    ) -> PredictedValue {
        let lead = settings.lead_time.as_secs_f64();
        let ahead = buckets::peak_over(&self.refit, now, lead, self.buckets.length());
        let value = ahead.and_then(|a| {
            settings.prediction_value(a, self.refit.value_at(now), current, self.seasonal_strength)
        });
        PredictedValue { ahead, value }
    }

    /// Fits inline when due (the simulator's and the tuner's way) and returns the
    /// value for `decide()`. Fit errors leave the previous forecast in place.
    pub fn step_inline(
        &mut self,
        now: f64,
        settings: &PredictionSettings,
        current: Option<f64>,
    ) -> PredictedValue {
        if let Ok(Some(req)) = self.fit_request(now, settings)
            && let Ok(f) = req.run()
        {
            self.store_fit(now, &req, f);
        }
        self.value(now, settings, current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_sample_stands_for_the_time_since_the_previous_one_capped() {
        let mut p = Predictor::new(Buckets::new(900.0), None);
        let changed = p.ingest([(60.0, 10.0), (120.0, 20.0), (1_000.0, 30.0)], 60.0);
        // 60 s from 0, 60 s from 60, then the 300 s cap from 700 s (still bucket 0).
        assert_eq!(changed.len(), 1);
        let b = p.buckets.buckets()[0];
        assert_eq!((b.covered, b.sum), (420.0, 600.0 + 1_200.0 + 9_000.0));
        // Older or equal samples are not counted twice.
        assert!(p.ingest([(1_000.0, 99.0), (500.0, 99.0)], 60.0).is_empty());
        assert_eq!(p.last_sample, Some(1_000.0));
    }
}
