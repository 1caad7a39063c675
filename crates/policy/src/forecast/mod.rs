//! Load forecasting for predictive scaling (pure: series in, forecast out).
//!
//! The default forecast ([`forecast`], [`Method::Ensemble`]) is the pointwise
//! median of three models fitted on the history, with the policy's seasonal
//! periods (daily and weekly by default; a period is used once the history
//! holds two cycles of it):
//!
//! - [`Model::SeasonalAr`]: a least-squares autoregression on the seasonal
//!   differences `y[t] - y[t-m]` (m the shortest period) — an
//!   ARIMA(p,0,0)(P,1,0)m fitted by conditional least squares. Its lags are
//!   1..=p and the seasonal lags k·m with their neighbours k·m ± 1 (and
//!   m ± 2), k up to 1, 2 or a week of days; the lag set is chosen by BIC and
//!   fitted on the last [`AR_WINDOW`] differences. The neighbour lags let it
//!   borrow from the adjacent hours of earlier days (a daily shape that
//!   drifts by an hour, a smoother profile than one noisy day).
//! - [`Model::SeasonalArLog`]: the same on the logarithm, for positive series
//!   whose daily swing grows with the level (multiplicative seasonality).
//! - [`Model::MstlEts`]: MSTL (`augurs-mstl`) over the usable periods with an
//!   ETS model (additive trend, [`TREND_SPEC`], damped or not by AICc) on the
//!   last [`TREND_WINDOW`] points of the deseasonalised series.
//!
//! The median of three keeps the forecast when one model runs away and needs no
//! per-series choice. Measured on M4-Hourly (414 series, horizon 48; MASE with
//! the in-sample m = 24 scale; `forecast-m4 --candidates` in flexus-sim): the
//! median scores 0.720, the seasonal AR alone 0.739, its log twin 0.754,
//! MSTL + ETS 1.140, seasonal naive 1.193. Choosing per series by a holdout on
//! the last 48 training points (then refitting) scored worse — best single
//! model 0.797, mean of the best two 0.747, weights 1/MASE² 0.723 — at twice
//! the cost, so the forecaster does not select; statsforecast's AutoARIMA
//! (published 0.92) is compared in docs/benchmarks.md.
//!
//! Each model rejects its own output when it is not finite or leaves a band of
//! twice the history's range around it. Fallbacks, in order, each saying why in
//! [`Forecast::fallback_reason`]: a series that is not positive (no log scale)
//! gets the seasonal AR alone ([`Method::SeasonalAr`]); when MSTL does not fit,
//! the mean of the two autoregressions; when no autoregression fits, MSTL + ETS
//! averaged with seasonal naive ([`Method::Mstl`], the previous default); and
//! seasonal naive over the shortest usable period when the history is shorter
//! than two cycles of every period, constant, or nothing fits. Non-finite
//! values are interpolated first ([`clean`]). [`candidates`] returns every
//! model's forecast, for diagnostics.
//!
//! Cost: about 2 ms per M4 series (700-960 points) and 10 ms for 2,000 points
//! of 15-minute buckets with periods 96 and 672 (the agent's and simulator's
//! use), single-threaded.
//!
//! The engine itself never forecasts: a caller (the agent, the simulator) keeps
//! the history, calls [`forecast`] on a schedule ([`Refit`]), and passes the
//! value at `now + lead time` to `decide()` as a [`crate::Prediction`]. `decide()`
//! lets the forecast only raise capacity, and in `forecast_only` mode only
//! records what it would have done.
//!
//! Accuracy is measured with [`mase`] (scaled by the in-sample seasonal-naive
//! error, as in M4) and [`smape`], always next to the seasonal-naive forecast of
//! the same series ([`evaluate`]).

pub mod buckets;
pub mod predictor;
pub mod seasonality;

use serde::Serialize;

mod models;

pub use models::{AR_WINDOW, Model, TREND_SPEC, TREND_WINDOW};

/// One model's forecast in [`candidates`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// The model.
    pub model: Model,
    /// Its point forecasts, `None` where it does not apply to the history.
    pub point: Option<Vec<f64>>,
}

/// Every candidate model's forecast on the cleaned history, over the periods
/// with at least two cycles of history (for diagnostics and comparisons).
pub fn candidates(
    history: &[f64],
    periods: &[usize],
    horizon: usize,
) -> Result<Vec<Candidate>, ForecastError> {
    let y = clean(history)?;
    let usable = usable_periods(periods, y.len());
    Ok(Model::ALL
        .iter()
        .map(|&model| Candidate {
            model,
            point: if usable.is_empty() {
                None
            } else {
                model.run(&y, &usable, horizon)
            },
        })
        .collect())
}

fn usable_periods(periods: &[usize], n: usize) -> Vec<usize> {
    let mut usable: Vec<usize> = periods
        .iter()
        .copied()
        .filter(|&p| p >= 2 && n >= 2 * p)
        .collect();
    usable.sort_unstable();
    usable.dedup();
    usable
}

/// Which model produced a forecast.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::IntoStaticStr, strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Method {
    /// The default: the pointwise median of [`Model::SeasonalAr`],
    /// [`Model::SeasonalArLog`] and [`Model::MstlEts`].
    Ensemble,
    /// The seasonal autoregression alone (or the mean of it and its log-scale
    /// twin when MSTL does not fit).
    SeasonalAr,
    /// MSTL with an AutoETS trend, averaged with seasonal naive over the
    /// shortest usable period (an equal-weight forecast combination).
    Mstl,
    /// The value one season earlier.
    SeasonalNaive,
    /// The last value (history shorter than one season).
    Naive,
}

impl Method {
    /// The snake_case name in decision records and metrics (`ensemble`, `seasonal_ar`, ...).
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Problems that prevent any forecast.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ForecastError {
    /// No usable (finite) value in the history.
    #[error("forecast history has no finite value")]
    EmptyHistory,
    /// A zero horizon or season.
    #[error("forecast {field} must be positive")]
    Zero {
        /// The offending argument.
        field: &'static str,
    },
}

/// A forecast and how it was made.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Forecast {
    /// Point forecasts for steps 1..=horizon after the history.
    pub point: Vec<f64>,
    /// The model that produced them.
    pub method: Method,
    /// Why the default model was not used (when it was not).
    pub fallback_reason: Option<String>,
}

/// Replaces non-finite values by linear interpolation (edges copy the nearest value).
pub fn clean(history: &[f64]) -> Result<Vec<f64>, ForecastError> {
    let mut y: Vec<f64> = history.to_vec();
    let known: Vec<usize> = (0..y.len()).filter(|&i| y[i].is_finite()).collect();
    let (Some(&first), Some(&last)) = (known.first(), known.last()) else {
        return Err(ForecastError::EmptyHistory);
    };
    for v in y.iter_mut().take(first) {
        *v = history[first];
    }
    for v in y.iter_mut().skip(last + 1) {
        *v = history[last];
    }
    for w in known.windows(2) {
        let (a, b) = (w[0], w[1]);
        for (k, v) in y.iter_mut().enumerate().take(b).skip(a + 1) {
            let f = (k - a) as f64 / (b - a) as f64;
            *v = history[a] + (history[b] - history[a]) * f;
        }
    }
    Ok(y)
}

/// Seasonal-naive forecast: each step repeats the value one `season` earlier
/// (the last value when the history is shorter than a season).
pub fn seasonal_naive(
    history: &[f64],
    season: usize,
    horizon: usize,
) -> Result<Vec<f64>, ForecastError> {
    if season == 0 {
        return Err(ForecastError::Zero { field: "season" });
    }
    let y = clean(history)?;
    let n = y.len();
    if n < season {
        let last = y[n - 1];
        return Ok(vec![last; horizon]);
    }
    Ok((0..horizon).map(|h| y[n - season + (h % season)]).collect())
}

/// Forecasts `horizon` steps after `history`: the median of the seasonal
/// autoregression, its log-scale twin and MSTL + ETS over the given seasonal
/// `periods` (in steps), with the fallbacks of the module documentation.
/// Periods need at least two full cycles of history to be used. Errors only on
/// a zero horizon or a history without a finite value.
pub fn forecast(
    history: &[f64],
    periods: &[usize],
    horizon: usize,
) -> Result<Forecast, ForecastError> {
    if horizon == 0 {
        return Err(ForecastError::Zero { field: "horizon" });
    }
    let y = clean(history)?;
    let n = y.len();
    let usable = usable_periods(periods, n);
    let shortest = periods
        .iter()
        .copied()
        .filter(|&p| p >= 1)
        .min()
        .unwrap_or(1);
    let fallback = |reason: String| -> Result<Forecast, ForecastError> {
        let season = usable.first().copied().unwrap_or(shortest);
        let method = if n >= season {
            Method::SeasonalNaive
        } else {
            Method::Naive
        };
        Ok(Forecast {
            point: seasonal_naive(&y, season, horizon)?,
            method,
            fallback_reason: Some(reason),
        })
    };
    if usable.is_empty() {
        return fallback(format!(
            "{n} points are fewer than two cycles of every period {periods:?}"
        ));
    }
    if y.iter().all(|v| *v == y[0]) {
        return fallback("the history is constant".into());
    }
    let ar = Model::SeasonalAr.run(&y, &usable, horizon);
    let ar_log = Model::SeasonalArLog.run(&y, &usable, horizon);
    let ok = |point: Vec<f64>, method: Method, reason: Option<String>| Forecast {
        point,
        method,
        fallback_reason: reason,
    };
    if let (Some(a), Some(b)) = (&ar, &ar_log) {
        if let Some(c) = Model::MstlEts.run(&y, &usable, horizon) {
            let point = (0..horizon).map(|h| median3(a[h], b[h], c[h])).collect();
            return Ok(ok(point, Method::Ensemble, None));
        }
        let point = a.iter().zip(b).map(|(a, b)| 0.5 * (a + b)).collect();
        let why = "MSTL did not fit: mean of the two seasonal autoregressions";
        return Ok(ok(point, Method::SeasonalAr, Some(why.into())));
    }
    if let Some(a) = ar {
        let why = if y.iter().all(|v| *v > 0.0) {
            "the log-scale seasonal autoregression did not fit: seasonal autoregression alone"
        } else {
            "the series is not positive (no log scale): seasonal autoregression alone"
        };
        return Ok(ok(a, Method::SeasonalAr, Some(why.into())));
    }
    match Model::MstlEts.run(&y, &usable, horizon) {
        Some(f) => {
            // Equal-weight combination with seasonal naive over the shortest period.
            let sn = seasonal_naive(&y, usable[0], horizon)?;
            let point = f.iter().zip(sn).map(|(a, b)| 0.5 * (a + b)).collect();
            let why = "the seasonal autoregression did not fit: MSTL with seasonal naive";
            Ok(ok(point, Method::Mstl, Some(why.into())))
        }
        None => fallback("neither the seasonal autoregression nor MSTL fitted".into()),
    }
}

fn median3(a: f64, b: f64, c: f64) -> f64 {
    a.max(b).min(a.min(b).max(c))
}

/// Mean absolute scaled error: the forecast's mean absolute error divided by the
/// in-sample mean absolute error of the seasonal-naive forecast (lag `season`).
/// `None` when the scale is zero or the in-sample is shorter than a season.
pub fn mase(actual: &[f64], predicted: &[f64], insample: &[f64], season: usize) -> Option<f64> {
    if season == 0
        || insample.len() <= season
        || actual.is_empty()
        || actual.len() != predicted.len()
    {
        return None;
    }
    let scale = insample
        .windows(season + 1)
        .map(|w| (w[season] - w[0]).abs())
        .sum::<f64>()
        / (insample.len() - season) as f64;
    if scale.is_nan() || scale <= 0.0 {
        return None;
    }
    let mae = actual
        .iter()
        .zip(predicted)
        .map(|(a, p)| (a - p).abs())
        .sum::<f64>()
        / actual.len() as f64;
    Some(mae / scale)
}

/// Symmetric mean absolute percentage error, in percent (0..=200), M4 definition.
pub fn smape(actual: &[f64], predicted: &[f64]) -> f64 {
    let n = actual.len().min(predicted.len());
    if n == 0 {
        return 0.0;
    }
    let s: f64 = actual
        .iter()
        .zip(predicted)
        .map(|(a, p)| {
            let d = a.abs() + p.abs();
            if d == 0.0 {
                0.0
            } else {
                2.0 * (a - p).abs() / d
            }
        })
        .sum();
    100.0 * s / n as f64
}

/// Accuracy of the default forecaster next to seasonal naive on one split.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Accuracy {
    /// MASE of [`forecast`].
    pub mase: Option<f64>,
    /// sMAPE (%) of [`forecast`].
    pub smape: f64,
    /// MASE of seasonal naive.
    pub naive_mase: Option<f64>,
    /// sMAPE (%) of seasonal naive.
    pub naive_smape: f64,
    /// The model [`forecast`] used.
    pub method: Method,
}

/// Fits on `train`, forecasts `test.len()` steps, and scores both the default
/// forecaster and seasonal naive (lag `season`) against `test`.
pub fn evaluate(
    train: &[f64],
    test: &[f64],
    periods: &[usize],
    season: usize,
) -> Result<Accuracy, ForecastError> {
    let f = forecast(train, periods, test.len())?;
    let naive = seasonal_naive(train, season, test.len())?;
    Ok(Accuracy {
        mase: mase(test, &f.point, train, season),
        smape: smape(test, &f.point),
        naive_mase: mase(test, &naive, train, season),
        naive_smape: smape(test, &naive),
        method: f.method,
    })
}

/// Forecast lead time: how far ahead capacity must be decided — boot plus
/// warm-up plus one evaluation interval (seconds).
pub fn lead_time_s(boot_s: f64, warmup_s: f64, evaluation_interval_s: f64) -> f64 {
    boot_s + warmup_s + evaluation_interval_s
}

/// A refit schedule: remembers when the model was last fitted and the forecast
/// it produced, and says when to fit again.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Refit {
    /// Time (caller's units, e.g. seconds) of the last fit.
    pub fitted_at: Option<f64>,
    /// Time of the first forecast step.
    pub starts_at: f64,
    /// Step length (same units).
    pub step: f64,
    /// The forecast of the last fit.
    pub last: Option<Forecast>,
}

impl Refit {
    /// Whether a fit is due at `now` with refit interval `every`.
    pub fn due(&self, now: f64, every: f64) -> bool {
        self.fitted_at.is_none_or(|t| now - t >= every)
    }

    /// Stores a new forecast whose first step starts at `starts_at`.
    pub fn store(&mut self, now: f64, starts_at: f64, step: f64, forecast: Forecast) {
        self.fitted_at = Some(now);
        self.starts_at = starts_at;
        self.step = step;
        self.last = Some(forecast);
    }

    /// The forecast value covering time `t` (`None` outside the forecast).
    pub fn value_at(&self, t: f64) -> Option<f64> {
        let f = self.last.as_ref()?;
        if t < self.starts_at || self.step <= 0.0 {
            return None;
        }
        f.point
            .get(((t - self.starts_at) / self.step) as usize)
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seasonal(n: usize, noise: u64) -> Vec<f64> {
        // Daily (24) and weekly (168) cycles, a slow trend, and deterministic noise.
        let mut state = noise;
        (0..n)
            .map(|i| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let e = ((state >> 33) as f64 / (1u64 << 31) as f64 - 0.5) * 6.0;
                let t = i as f64;
                100.0
                    + 0.05 * t
                    + 40.0 * (2.0 * std::f64::consts::PI * t / 24.0).sin()
                    + 15.0 * (2.0 * std::f64::consts::PI * t / 168.0).sin()
                    + e
            })
            .collect()
    }

    #[test]
    fn the_ensemble_beats_seasonal_naive_on_a_clearly_seasonal_series() {
        let y = seasonal(24 * 7 * 5 + 48, 7);
        let (train, test) = y.split_at(y.len() - 48);
        let a = evaluate(train, test, &[24, 168], 24).expect("forecast");
        assert_eq!(a.method, Method::Ensemble);
        let (m, n) = (a.mase.expect("mase"), a.naive_mase.expect("naive mase"));
        assert!(m < n, "ensemble MASE {m} should beat seasonal naive {n}");
        assert!(a.smape < a.naive_smape);
    }

    #[test]
    fn a_constant_series_falls_back_to_seasonal_naive_and_says_why() {
        let f = forecast(&[5.0; 400], &[24, 168], 30).expect("forecast");
        assert_eq!(f.method, Method::SeasonalNaive);
        assert!(f.fallback_reason.is_some());
        assert_eq!(f.point, vec![5.0; 30]);
    }

    #[test]
    fn a_series_with_zeros_uses_the_seasonal_autoregression_alone() {
        let mut y = seasonal(24 * 7 * 3, 3);
        for v in y.iter_mut().step_by(24) {
            *v = 0.0;
        }
        let f = forecast(&y, &[24, 168], 48).expect("forecast");
        assert_eq!(f.method, Method::SeasonalAr);
        assert!(f.fallback_reason.expect("reason").contains("not positive"));
        assert!(f.point.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn every_candidate_forecasts_a_long_seasonal_series() {
        let y = seasonal(24 * 7 * 4, 11);
        for c in candidates(&y, &[24, 168], 48).expect("candidates") {
            let point = c
                .point
                .unwrap_or_else(|| panic!("{:?} did not run", c.model));
            assert_eq!(point.len(), 48, "{:?}", c.model);
        }
    }

    #[test]
    fn the_seasonal_autoregression_follows_a_pattern_that_grows_each_day() {
        // y = (1 + day / 10) * daily shape: the seasonal differences grow steadily,
        // which the autoregression on them carries forward; seasonal naive lags a day.
        let shape = |h: usize| 10.0 + (h % 24) as f64;
        let y: Vec<f64> = (0..24 * 30)
            .map(|t| (1.0 + (t / 24) as f64 / 10.0) * shape(t))
            .collect();
        let truth: Vec<f64> = (24 * 30..24 * 31)
            .map(|t| (1.0 + (t / 24) as f64 / 10.0) * shape(t))
            .collect();
        let f = forecast(&y, &[24], 24).expect("forecast");
        let naive = seasonal_naive(&y, 24, 24).expect("naive");
        let err = |p: &[f64]| -> f64 { p.iter().zip(&truth).map(|(a, b)| (a - b).abs()).sum() };
        assert!(
            err(&f.point) < 0.5 * err(&naive),
            "{:?}: {} vs naive {}",
            f.method,
            err(&f.point),
            err(&naive)
        );
    }

    #[test]
    fn extreme_magnitudes_give_a_finite_forecast() {
        for scale in [1e-300, 1e300, 1e305] {
            let y: Vec<f64> = seasonal(24 * 7 * 3, 5).iter().map(|v| v * scale).collect();
            let f = forecast(&y, &[24, 168], 48).expect("forecast");
            assert!(f.point.iter().all(|v| v.is_finite()), "{scale}: {f:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_finite_or_missing_history_gives_a_finite_forecast_of_the_horizon(
            y in proptest::collection::vec(
                proptest::prop_oneof![
                    8 => -1e6f64..1e6,
                    1 => proptest::strategy::Just(0.0),
                    1 => proptest::strategy::Just(f64::NAN),
                ],
                1..700,
            ),
            horizon in 1usize..60,
        ) {
            match forecast(&y, &[24, 168], horizon) {
                Ok(f) => {
                    proptest::prop_assert_eq!(f.point.len(), horizon);
                    proptest::prop_assert!(f.point.iter().all(|v| v.is_finite()));
                }
                Err(e) => proptest::prop_assert_eq!(e, ForecastError::EmptyHistory),
            }
        }
    }

    #[test]
    fn short_history_falls_back_to_seasonal_naive_and_says_why() {
        let y: Vec<f64> = (0..30).map(|i| f64::from(i % 24)).collect();
        let f = forecast(&y, &[24, 168], 5).expect("forecast");
        assert_eq!(f.method, Method::SeasonalNaive);
        assert!(f.fallback_reason.expect("reason").contains("two cycles"));
        // Repeats the value 24 steps back: y[30-24+h] = (6+h) % 24.
        assert_eq!(f.point, vec![6.0, 7.0, 8.0, 9.0, 10.0]);
    }

    #[test]
    fn gaps_are_interpolated_before_fitting() {
        let mut y: Vec<f64> = (0..10).map(f64::from).collect();
        y[4] = f64::NAN;
        let f = seasonal_naive(&y, 5, 5).expect("forecast");
        assert_eq!(f, vec![5.0, 6.0, 7.0, 8.0, 9.0]);
        assert_eq!(
            seasonal_naive(&[f64::NAN], 3, 2),
            Err(ForecastError::EmptyHistory)
        );
    }

    #[test]
    fn mase_and_smape_match_hand_computed_values() {
        let insample = [1.0, 2.0, 3.0, 5.0];
        // Lag-1 in-sample MAE = (1 + 1 + 2) / 3 = 4/3.
        let m = mase(&[6.0, 8.0], &[5.0, 6.0], &insample, 1).expect("mase");
        assert!((m - 1.5 / (4.0 / 3.0)).abs() < 1e-12);
        let s = smape(&[100.0, 0.0], &[50.0, 0.0]);
        assert!((s - 100.0 * (2.0 * 50.0 / 150.0) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn refit_is_due_on_schedule_and_serves_the_covering_step() {
        let mut r = Refit::default();
        assert!(r.due(0.0, 3600.0));
        r.store(
            0.0,
            100.0,
            10.0,
            Forecast {
                point: vec![1.0, 2.0, 3.0],
                method: Method::Naive,
                fallback_reason: None,
            },
        );
        assert!(!r.due(3599.0, 3600.0));
        assert!(r.due(3600.0, 3600.0));
        assert_eq!(r.value_at(115.0), Some(2.0));
        assert_eq!(r.value_at(99.0), None);
        assert_eq!(r.value_at(130.0), None);
    }
}
