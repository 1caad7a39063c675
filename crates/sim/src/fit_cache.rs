//! Forecast fits shared between replays (what `tune` needs: tens of replays of one
//! history that differ only in the policy's knobs).
//!
//! A fit is a pure function of its input — the bucketed series, the seasonal periods
//! and the horizon ([`FitRequest::run`]) — so a fit already made for exactly the same
//! input is returned instead of being made again. The key is that input itself,
//! compared bit for bit (a NaN gap included), never a summary of it: a replay with a
//! cache makes the same decisions as one without. When the prediction metric depends
//! on the policy (CPU under a different fleet) the inputs differ and nothing is
//! shared; when it does not (the request rate: the trace's), every replay after the
//! first finds its fits here.
//!
//! Kept in memory for the cache's life (one tune): a fit is a few kilobytes (the
//! series of a 14-day history is 1,344 values) and a 30-day replay with the default
//! 6-hour refit makes about 120.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use flexus_policy::forecast::buckets::FitRequest;
use flexus_policy::forecast::{Forecast, ForecastError};
use serde::Serialize;

/// Fits by their input; cheap to clone (the clones share the fits).
#[derive(Debug, Clone, Default)]
pub struct FitCache {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    fits: HashMap<FitKey, Result<Forecast, ForecastError>>,
    hits: u64,
    misses: u64,
}

/// Everything [`FitRequest::run`] reads, floats as their bits (so a NaN gap equals
/// itself): equal keys are equal in every field.
#[derive(Debug, PartialEq, Eq, Hash)]
struct FitKey {
    y: Vec<u64>,
    periods: Vec<usize>,
    horizon: usize,
}

impl FitKey {
    fn of(req: &FitRequest) -> Self {
        FitKey {
            y: req.y.iter().map(|v| v.to_bits()).collect(),
            periods: req.periods.clone(),
            horizon: req.horizon,
        }
    }
}

/// How often the cache answered and how often it had to fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct FitStats {
    /// Fits returned from the cache.
    pub hits: u64,
    /// Fits made (and kept).
    pub misses: u64,
}

impl FitCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves the map consistent (an
        // insert either happened or not), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The fit of `req`: the kept one for the same input, else `req.run()` (kept).
    pub fn run(&self, req: &FitRequest) -> Result<Forecast, ForecastError> {
        let key = FitKey::of(req);
        {
            let mut inner = self.lock();
            if let Some(found) = inner.fits.get(&key).cloned() {
                inner.hits += 1;
                return found;
            }
        }
        // Fitted outside the lock: a cache shared between threads does not serialise fits.
        let fitted = req.run();
        let mut inner = self.lock();
        inner.misses += 1;
        inner.fits.insert(key, fitted.clone());
        fitted
    }

    /// Hits and misses so far.
    pub fn stats(&self) -> FitStats {
        let inner = self.lock();
        FitStats {
            hits: inner.hits,
            misses: inner.misses,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(y: Vec<f64>) -> FitRequest {
        FitRequest {
            y,
            periods: vec![4],
            horizon: 6,
            starts_at: 0.0,
            step: 900.0,
        }
    }

    #[test]
    fn the_same_input_is_fitted_once_and_gives_the_same_forecast() {
        let y: Vec<f64> = (0..24)
            .map(|i| [10.0, 20.0, 40.0, 20.0][i % 4] + i as f64)
            .collect();
        let cache = FitCache::new();
        let first = cache.run(&request(y.clone())).expect("fit");
        let again = cache.run(&request(y.clone())).expect("fit");
        assert_eq!(first, again);
        assert_eq!(first, request(y).run().expect("fit"));
        assert_eq!(cache.stats(), FitStats { hits: 1, misses: 1 });
    }

    #[test]
    fn a_different_value_gap_or_horizon_is_a_different_fit() {
        let y: Vec<f64> = (0..24).map(|i| [1.0, 5.0, 9.0, 5.0][i % 4]).collect();
        let cache = FitCache::new();
        cache.run(&request(y.clone())).expect("fit");
        let mut changed = y.clone();
        changed[23] += 1e-12;
        cache.run(&request(changed)).expect("fit");
        let mut gap = y.clone();
        gap[10] = f64::NAN;
        cache.run(&request(gap.clone())).expect("fit");
        cache.run(&request(gap)).expect("fit");
        let mut longer = request(y);
        longer.horizon = 7;
        assert_eq!(cache.run(&longer).expect("fit").point.len(), 7);
        assert_eq!(cache.stats(), FitStats { hits: 1, misses: 4 });
    }

    #[test]
    fn an_error_is_kept_like_a_fit() {
        let cache = FitCache::new();
        let empty = request(vec![f64::NAN; 8]);
        assert_eq!(cache.run(&empty), Err(ForecastError::EmptyHistory));
        assert_eq!(cache.run(&empty), Err(ForecastError::EmptyHistory));
        assert_eq!(cache.stats(), FitStats { hits: 1, misses: 1 });
    }
}
