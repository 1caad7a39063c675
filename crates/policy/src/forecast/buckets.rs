//! The history a forecaster fits on: one metric's samples grouped into buckets
//! of fixed length (15 minutes by default), each summarised by its peak and its
//! time-weighted mean, plus the two steps around a fit that every caller (the
//! agent, the simulator) needs: which series to fit ([`Buckets::fit_request`])
//! and what to pass to `decide()` afterwards ([`peak_over`]).
//!
//! Pure: times are seconds in the caller's time base, passed in; nothing here
//! reads a clock or blocks. [`FitRequest::run`] is the (CPU-bound) fit itself, so
//! a caller can move it to a blocking thread.

use serde::{Deserialize, Serialize};

use super::{Forecast, ForecastError, Refit, forecast};
use crate::model::PredictionSettings;

/// Default bucket length (s): the forecast resolution.
pub const DEFAULT_BUCKET_S: f64 = 900.0;

/// One bucket: the samples whose period starts in `[start, start + length)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// Start of the bucket (s).
    pub start: f64,
    /// Highest sample value.
    pub peak: f64,
    /// Seconds of samples it holds.
    pub covered: f64,
    /// Sum of value × seconds.
    pub sum: f64,
}

impl Bucket {
    /// The value that represents the bucket.
    pub fn value(&self, stat: BucketStat) -> f64 {
        match stat {
            BucketStat::Peak => self.peak,
            BucketStat::Mean if self.covered > 0.0 => self.sum / self.covered,
            BucketStat::Mean => f64::NAN,
        }
    }
}

/// The value that represents a bucket in the fitted series.
///
/// `Mean` (the default) makes the forecast follow the level of the load and
/// leaves the per-minute noise to the reactive target; `Peak` forecasts the
/// noise too and holds far more capacity on noisy loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BucketStat {
    /// The highest sample in the bucket.
    Peak,
    /// The time-weighted mean of the bucket's samples.
    #[default]
    Mean,
}

/// A metric's bucketed history, ordered by start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Buckets {
    length: f64,
    buckets: Vec<Bucket>,
}

/// What to fit: the series, its seasonal periods and horizon (in buckets), and
/// where the forecast's first step starts.
#[derive(Debug, Clone, PartialEq)]
pub struct FitRequest {
    /// One value per bucket, oldest first; missing buckets are NaN (the
    /// forecaster interpolates them).
    pub y: Vec<f64>,
    /// Seasonal periods in buckets (at least 2 each).
    pub periods: Vec<usize>,
    /// Steps to forecast.
    pub horizon: usize,
    /// Start (s) of the first forecast step: the end of the last complete bucket.
    pub starts_at: f64,
    /// Step length (s).
    pub step: f64,
}

impl FitRequest {
    /// Fits and forecasts (CPU-bound: milliseconds for a 14-day history).
    pub fn run(&self) -> Result<Forecast, ForecastError> {
        forecast(&self.y, &self.periods, self.horizon)
    }
}

impl Buckets {
    /// An empty history with buckets of `length_s` seconds (at least 1 s).
    pub fn new(length_s: f64) -> Self {
        Self {
            length: if length_s.is_finite() && length_s >= 1.0 {
                length_s
            } else {
                DEFAULT_BUCKET_S
            },
            buckets: Vec::new(),
        }
    }

    /// A history rebuilt from stored buckets (order restored; buckets whose
    /// numbers are not finite or whose coverage is not positive are dropped;
    /// buckets with the same start are merged).
    pub fn from_parts(length_s: f64, stored: impl IntoIterator<Item = Bucket>) -> Self {
        let mut b = Self::new(length_s);
        for s in stored {
            if s.start.is_finite()
                && s.peak.is_finite()
                && s.sum.is_finite()
                && s.covered.is_finite()
                && s.covered > 0.0
            {
                b.merge(b.start_of(s.start), s);
            }
        }
        b
    }

    /// Bucket length (s).
    pub fn length(&self) -> f64 {
        self.length
    }

    /// The buckets, oldest first.
    pub fn buckets(&self) -> &[Bucket] {
        &self.buckets
    }

    /// Start of the bucket that holds time `t`.
    pub fn start_of(&self, t: f64) -> f64 {
        (t / self.length).floor() * self.length
    }

    fn merge(&mut self, start: f64, add: Bucket) -> Bucket {
        let i = self.buckets.partition_point(|b| b.start < start - 1e-6);
        match self.buckets.get_mut(i) {
            Some(b) if (b.start - start).abs() < 1e-6 => {
                b.peak = b.peak.max(add.peak);
                b.covered += add.covered;
                b.sum += add.sum;
                *b
            }
            _ => {
                let b = Bucket { start, ..add };
                self.buckets.insert(i, b);
                b
            }
        }
    }

    /// Adds a sample of `value` covering `period_s` seconds from `start_s`
    /// (attributed to the bucket where it starts). Ignores non-finite values and
    /// non-positive periods. Returns the bucket as it is now.
    pub fn add(&mut self, start_s: f64, value: f64, period_s: f64) -> Option<Bucket> {
        if !(value.is_finite() && start_s.is_finite() && period_s.is_finite() && period_s > 0.0) {
            return None;
        }
        let start = self.start_of(start_s);
        Some(self.merge(
            start,
            Bucket {
                start,
                peak: value,
                covered: period_s,
                sum: value * period_s,
            },
        ))
    }

    /// Drops buckets that start before `t`.
    pub fn prune_before(&mut self, t: f64) {
        // Sorted by start: drop the prefix (nothing to scan on the usual call, when no
        // bucket has aged out).
        let n = self.buckets.partition_point(|b| b.start < t);
        self.buckets.drain(..n);
    }

    /// Buckets that ended at or before `now`.
    pub fn complete(&self, now: f64) -> &[Bucket] {
        let n = self
            .buckets
            .partition_point(|b| b.start + self.length <= now + 1e-9);
        &self.buckets[..n]
    }

    /// The fit the prediction `settings` ask for at `now`: the last
    /// `history_window` of complete buckets (gaps as NaN), the seasons in buckets,
    /// and a horizon that covers a refit interval plus the lead time. `None`
    /// while fewer than two complete buckets exist.
    pub fn fit_request(
        &self,
        now: f64,
        settings: &PredictionSettings,
        stat: BucketStat,
    ) -> Option<FitRequest> {
        let complete = self.complete(now);
        let (first, last) = (complete.first()?, complete.last()?);
        if complete.len() < 2 {
            return None;
        }
        let window = (settings.history_window.as_secs_f64() / self.length)
            .ceil()
            .max(2.0) as usize;
        let end = last.start + self.length;
        let slots = (((end - first.start) / self.length).round() as usize).min(window);
        let from = end - slots as f64 * self.length;
        let mut y = vec![f64::NAN; slots];
        for b in complete.iter().filter(|b| b.start >= from - 1e-6) {
            let i = ((b.start - from) / self.length).round() as usize;
            if let Some(v) = y.get_mut(i) {
                *v = b.value(stat);
            }
        }
        let periods = settings
            .seasonality
            .iter()
            .map(|d| (d.as_secs_f64() / self.length).round() as usize)
            .filter(|&p| p >= 2)
            .collect();
        let horizon = ((settings.refit_interval.as_secs_f64() + settings.lead_time.as_secs_f64())
            / self.length)
            .ceil() as usize
            + 2;
        Some(FitRequest {
            y,
            periods,
            horizon,
            starts_at: end,
            step: self.length,
        })
    }
}

/// The highest forecast value over `[now, now + lead]` (capacity must be ready
/// for all of it), sampled once per `step` and at both ends. `None` when the
/// refit holds no forecast for that span.
pub fn peak_over(refit: &Refit, now: f64, lead: f64, step: f64) -> Option<f64> {
    let step = step.min(lead.max(1.0)).max(1e-3);
    let mut best: Option<f64> = None;
    let mut t = now;
    let mut take = |t: f64| {
        if let Some(v) = refit.value_at(t) {
            best = Some(best.map_or(v, |b: f64| b.max(v)));
        }
    };
    while t <= now + lead + 1e-9 {
        take(t);
        t += step;
    }
    take(now + lead);
    best
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn settings(window_h: u64, season_h: u64) -> PredictionSettings {
        PredictionSettings {
            enabled: true,
            metric: Some("rps".into()),
            target_per_instance: Some(10.0),
            history_window: Duration::from_secs(window_h * 3600),
            seasonality: vec![Duration::from_secs(season_h * 3600)],
            refit_interval: Duration::from_secs(3600),
            lead_time: Duration::from_secs(600),
            ..PredictionSettings::default()
        }
    }

    /// 15-minute buckets holding the `(at, value, seconds)` samples, added in this order.
    fn quarter_hours(samples: &[(f64, f64, f64)]) -> Buckets {
        let mut b = Buckets::new(900.0);
        for &(at, value, seconds) in samples {
            b.add(at, value, seconds);
        }
        b
    }

    #[test]
    fn a_bucket_holds_the_time_weighted_mean_and_the_peak_of_its_samples() {
        let b = quarter_hours(&[(0.0, 10.0, 60.0), (60.0, 40.0, 180.0), (905.0, 1.0, 60.0)]);
        let first = b.buckets()[0];
        assert_eq!(first.peak, 40.0);
        assert!(
            (first.value(BucketStat::Mean) - (10.0 * 60.0 + 40.0 * 180.0) / 240.0).abs() < 1e-9
        );
        assert_eq!(b.buckets().len(), 2);
        assert_eq!(
            b.complete(1000.0).len(),
            1,
            "the second bucket is still open"
        );
    }

    #[test]
    fn samples_out_of_order_land_in_their_own_bucket() {
        let b = quarter_hours(&[(1900.0, 3.0, 60.0), (100.0, 1.0, 60.0), (1000.0, 2.0, 60.0)]);
        let starts: Vec<f64> = b.buckets().iter().map(|x| x.start).collect();
        assert_eq!(starts, vec![0.0, 900.0, 1800.0]);
    }

    #[test]
    fn missing_buckets_become_gaps_in_the_fitted_series() {
        let mut b = Buckets::new(900.0);
        for start in [0.0, 900.0, 2700.0] {
            b.add(start, start / 900.0, 900.0);
        }
        let r = b
            .fit_request(3600.0, &settings(24, 1), BucketStat::Mean)
            .unwrap();
        assert_eq!(r.y.len(), 4);
        assert!(r.y[2].is_nan(), "{:?}", r.y);
        assert_eq!((r.y[0], r.y[1], r.y[3]), (0.0, 1.0, 3.0));
        assert_eq!(r.starts_at, 3600.0);
        assert_eq!(r.periods, vec![4]);
        assert_eq!(r.horizon, 4 + 1 + 2);
    }

    #[test]
    fn the_fit_uses_only_the_history_window() {
        let mut b = Buckets::new(900.0);
        for i in 0..20 {
            b.add(i as f64 * 900.0, i as f64, 900.0);
        }
        let r = b
            .fit_request(20.0 * 900.0, &settings(2, 1), BucketStat::Mean)
            .unwrap();
        assert_eq!(r.y, (12..20).map(|i| i as f64).collect::<Vec<_>>());
    }

    #[test]
    fn no_fit_before_two_complete_buckets() {
        let b = quarter_hours(&[(0.0, 1.0, 60.0), (900.0, 1.0, 60.0)]);
        assert!(
            b.fit_request(1700.0, &settings(24, 1), BucketStat::Mean)
                .is_none()
        );
        assert!(
            b.fit_request(1800.0, &settings(24, 1), BucketStat::Mean)
                .is_some()
        );
    }

    #[test]
    fn a_seasonal_history_forecasts_the_coming_peak() {
        // Hourly season of 4 buckets: 10, 20, 40, 20, repeated for 3 hours.
        let mut b = Buckets::new(900.0);
        let shape = [10.0, 20.0, 40.0, 20.0];
        for i in 0..12 {
            b.add(i as f64 * 900.0, shape[i % 4], 900.0);
        }
        let now = 12.0 * 900.0;
        let req = b
            .fit_request(now, &settings(24, 1), BucketStat::Mean)
            .unwrap();
        let mut refit = Refit::default();
        refit.store(now, req.starts_at, req.step, req.run().unwrap());
        // The next 20 minutes cover buckets 10 and 20: the peak is 20, not the current 10.
        let p = peak_over(&refit, now, 1200.0, 900.0).unwrap();
        assert!((p - 20.0).abs() < 3.0, "{p}");
        let p = peak_over(&refit, now, 1800.0, 900.0).unwrap();
        assert!((p - 40.0).abs() < 5.0, "{p}");
    }

    #[test]
    fn stored_buckets_are_restored_in_order_and_bad_ones_dropped() {
        let good = |s: f64| Bucket {
            start: s,
            peak: 1.0,
            covered: 60.0,
            sum: 60.0,
        };
        let bad = Bucket {
            covered: 0.0,
            ..good(1800.0)
        };
        let b = Buckets::from_parts(900.0, [good(900.0), bad, good(0.0), good(900.0)]);
        assert_eq!(b.buckets().len(), 2);
        assert_eq!(b.buckets()[0].start, 0.0);
        assert_eq!(b.buckets()[1].covered, 120.0);
    }
}
