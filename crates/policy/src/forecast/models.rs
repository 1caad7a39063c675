//! The candidate models of the forecaster. Each one maps a clean (finite)
//! history to `horizon` point forecasts, or `None` when it cannot be used on
//! that history (too short, failed fit, non-finite or runaway output).

use std::borrow::Cow;

use augurs::ets::AutoETS;
use augurs::ets::trend::AutoETSTrendModel;
use augurs::mstl::{FittedTrendModel, MSTLModel, TrendModel};
use augurs::{Fit, Predict};
use serde::Serialize;

/// The trend model is fitted on at most this many of the most recent points
/// (the deseasonalised series). The trend's recent course is what a
/// short-horizon forecast extrapolates, and the ETS optimiser's cost grows with
/// the length: this keeps a 14-day history fit in a few milliseconds.
pub const TREND_WINDOW: usize = 168;

/// ETS specification of the trend model: additive errors, additive trend, no
/// season (Holt's linear method, damped or not by AICc; the seasons are MSTL's).
pub const TREND_SPEC: &str = "AAN";

/// The seasonal autoregression is fitted on at most this many of the most
/// recent seasonal differences (four weeks of hours).
pub const AR_WINDOW: usize = 672;

/// One candidate model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    /// The value one shortest period earlier.
    SeasonalNaive,
    /// MSTL over the usable periods with an ETS trend on the deseasonalised series.
    MstlEts,
    /// Autoregression on the seasonal differences `y[t] - y[t-m]` (m the
    /// shortest period) with short lags and seasonal lags, order chosen by AIC:
    /// a least-squares ARIMA(p,0,0)(P,1,0)m.
    SeasonalAr,
    /// [`Model::SeasonalAr`] on the logarithm, positive series only.
    SeasonalArLog,
}

impl Model {
    /// Every candidate, in a fixed order.
    pub const ALL: [Model; 4] = [
        Model::SeasonalNaive,
        Model::MstlEts,
        Model::SeasonalAr,
        Model::SeasonalArLog,
    ];

    /// Point forecasts of this model, or `None` when it does not apply.
    /// `periods` must be sorted, deduplicated, each at least 2 and at most half
    /// the history.
    pub(crate) fn run(self, y: &[f64], periods: &[usize], horizon: usize) -> Option<Vec<f64>> {
        let out = match self {
            Model::SeasonalNaive => Some(snaive(y, *periods.first()?, horizon)),
            Model::MstlEts => mstl_ets(y, periods, horizon),
            Model::SeasonalAr => seasonal_ar(y, periods, horizon),
            Model::SeasonalArLog => in_logs(y, |l| seasonal_ar(l, periods, horizon)),
        }?;
        sane(y, &out).then_some(out)
    }
}

/// Whether a forecast is finite and within a generous band around the history
/// (a runaway fit is rejected rather than trusted).
fn sane(y: &[f64], f: &[f64]) -> bool {
    let lo = y.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = y.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let span = (hi - lo).max(hi.abs() * 1e-6).max(1e-9);
    f.iter()
        .all(|v| v.is_finite() && *v >= lo - 2.0 * span && *v <= hi + 2.0 * span)
}

fn snaive(y: &[f64], season: usize, horizon: usize) -> Vec<f64> {
    let n = y.len();
    (0..horizon).map(|h| y[n - season + (h % season)]).collect()
}

fn in_logs(y: &[f64], f: impl FnOnce(&[f64]) -> Option<Vec<f64>>) -> Option<Vec<f64>> {
    if !y.iter().all(|v| *v > 0.0) {
        return None;
    }
    let l: Vec<f64> = y.iter().map(|v| v.ln()).collect();
    Some(f(&l)?.into_iter().map(f64::exp).collect())
}

/// ETS on the most recent [`TREND_WINDOW`] points of the trend.
#[derive(Debug, Clone)]
pub(crate) struct RecentEts {
    pub(crate) inner: AutoETSTrendModel,
    pub(crate) window: usize,
}

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

impl TrendModel for RecentEts {
    fn name(&self) -> Cow<'_, str> {
        Cow::Borrowed("AutoETS (recent window)")
    }

    fn fit(&self, y: &[f64]) -> Result<Box<dyn FittedTrendModel + Sync + Send>, BoxError> {
        let from = y.len().saturating_sub(self.window);
        self.inner.fit(&y[from..])
    }
}

fn mstl_ets(y: &[f64], periods: &[usize], horizon: usize) -> Option<Vec<f64>> {
    let ets = AutoETS::new(1, TREND_SPEC).ok()?;
    let trend = RecentEts {
        inner: ets.into_trend_model(),
        window: TREND_WINDOW,
    };
    let fitted = MSTLModel::new(periods.to_vec(), trend).fit(y).ok()?;
    let f = fitted.predict(horizon, None).ok()?;
    (f.point.len() == horizon).then_some(f.point)
}

/// Lag sets tried by [`Model::SeasonalAr`] for shortest period `m` and longest
/// period `long`: short lags 1..=p (p = 1..=3) plus seasonal lags k·m for
/// k = 1..=K (K = 1, 2, or long/m when the long period is a multiple of m),
/// each seasonal lag with its neighbours k·m ± 1, and m ± 2 around the first
/// one. The neighbours let the model borrow from the adjacent hours of the
/// previous days (a daily pattern that shifts by an hour, a smoother
/// seasonal profile) — on M4-Hourly they lower MASE from 0.86 to 0.74.
fn ar_lag_sets(m: usize, long: usize) -> Vec<Vec<usize>> {
    let mut ks = vec![1usize, 2];
    if long > 2 * m && long.is_multiple_of(m) {
        ks.push(long / m);
    }
    let mut sets = Vec::new();
    for p in 1..=3usize.min(m.saturating_sub(3)) {
        for &k in &ks {
            let mut lags: Vec<usize> = (1..=p).collect();
            for j in 1..=k {
                lags.extend([j * m - 1, j * m, j * m + 1]);
            }
            lags.extend([m - 2, m + 2]);
            lags.sort_unstable();
            lags.dedup();
            sets.push(lags);
        }
    }
    sets
}

/// Least-squares autoregression on seasonal differences `z[t] = y[t] - y[t-m]`
/// (m the shortest period): the lag set with the lowest BIC among
/// [`ar_lag_sets`] that the history can support, fitted on the last
/// [`AR_WINDOW`] differences, forecast recursively and integrated back.
fn seasonal_ar(y: &[f64], periods: &[usize], horizon: usize) -> Option<Vec<f64>> {
    let m = *periods.first()?;
    let n = y.len();
    if m < 4 || n <= m {
        return None;
    }
    let long = periods.last().copied().unwrap_or(m);
    let z: Vec<f64> = (m..n).map(|t| y[t] - y[t - m]).collect();
    // Keep the lag sets that leave at least max(m, 10 per coefficient) rows.
    let sets: Vec<Vec<usize>> = ar_lag_sets(m, long)
        .into_iter()
        .filter(|l| {
            let max = l.last().copied().unwrap_or(0);
            z.len() >= max + m.max(10 * l.len())
        })
        .collect();
    let max_lag = sets.iter().filter_map(|l| l.last().copied()).max()?;
    // A common sample for every lag set so the criterion compares like with like.
    let start = max_lag.max(z.len().saturating_sub(AR_WINDOW));
    let rows = (z.len() - start) as f64;
    // Every lag set is a subset of the union: the cross products are computed
    // once and each set's normal equations are a sub-block of them.
    let mut union: Vec<usize> = sets.iter().flatten().copied().collect();
    union.sort_unstable();
    union.dedup();
    let cross = Cross::new(&z, start, &union);
    let mut best: Option<(f64, &Vec<usize>, Vec<f64>)> = None;
    for lags in &sets {
        let Some((coef, rss)) = cross.ols(lags) else {
            continue;
        };
        if rss <= 0.0 {
            continue;
        }
        let bic = rows * (rss / rows).ln() + rows.ln() * lags.len() as f64;
        if best.as_ref().is_none_or(|b| bic < b.0) {
            best = Some((bic, lags, coef));
        }
    }
    let (_, lags, coef) = best?;
    let mut zz = z;
    let mut yy = y.to_vec();
    for _ in 0..horizon {
        let t = zz.len();
        let v: f64 = lags.iter().zip(&coef).map(|(l, c)| c * zz[t - l]).sum();
        zz.push(v);
        let ty = yy.len();
        yy.push(yy[ty - m] + v);
    }
    Some(yy.split_off(n))
}

/// Cross products of the regression of `z[t]` on `z[t - lag]` (lag in
/// `lags`) over t in start..len, without intercept.
struct Cross<'a> {
    lags: &'a [usize],
    /// X'X, row-major, `lags.len()` squared.
    xx: Vec<f64>,
    /// X'z.
    xz: Vec<f64>,
    /// z'z.
    zz: f64,
}

impl<'a> Cross<'a> {
    fn new(z: &[f64], start: usize, lags: &'a [usize]) -> Self {
        let k = lags.len();
        let (mut xx, mut xz, mut zz) = (vec![0.0; k * k], vec![0.0; k], 0.0);
        let mut x = vec![0.0; k];
        for t in start..z.len() {
            for (xi, l) in x.iter_mut().zip(lags) {
                *xi = z[t - l];
            }
            for i in 0..k {
                xz[i] += x[i] * z[t];
                for j in i..k {
                    xx[i * k + j] += x[i] * x[j];
                }
            }
            zz += z[t] * z[t];
        }
        for i in 0..k {
            for j in 0..i {
                xx[i * k + j] = xx[j * k + i];
            }
        }
        Cross { lags, xx, xz, zz }
    }

    /// Least squares on the subset `lags` of the union, solved from the normal
    /// equations with a tiny ridge for conditioning: the coefficients and the
    /// residual sum of squares (z'z - c'X'z).
    fn ols(&self, lags: &[usize]) -> Option<(Vec<f64>, f64)> {
        let k = self.lags.len();
        let idx: Vec<usize> = lags
            .iter()
            .map(|l| self.lags.binary_search(l).ok())
            .collect::<Option<_>>()?;
        let s = idx.len();
        let mut a: Vec<f64> = idx
            .iter()
            .flat_map(|&i| idx.iter().map(move |&j| (i, j)))
            .map(|(i, j)| self.xx[i * k + j])
            .collect();
        let b: Vec<f64> = idx.iter().map(|&i| self.xz[i]).collect();
        let scale = (0..s).map(|i| a[i * s + i]).fold(0.0, f64::max);
        if scale <= 0.0 {
            return None;
        }
        for i in 0..s {
            a[i * s + i] += scale * 1e-9;
        }
        let coef = solve(&mut a, &mut b.clone(), s)?;
        let rss = self.zz - coef.iter().zip(&b).map(|(c, b)| c * b).sum::<f64>();
        Some((coef, rss))
    }
}

/// Gaussian elimination with partial pivoting on a k x k system.
fn solve(a: &mut [f64], b: &mut [f64], k: usize) -> Option<Vec<f64>> {
    for col in 0..k {
        let piv =
            (col..k).max_by(|&i, &j| a[i * k + col].abs().total_cmp(&a[j * k + col].abs()))?;
        if a[piv * k + col].abs() < 1e-300 {
            return None;
        }
        if piv != col {
            for j in 0..k {
                a.swap(piv * k + j, col * k + j);
            }
            b.swap(piv, col);
        }
        for i in col + 1..k {
            let f = a[i * k + col] / a[col * k + col];
            for j in col..k {
                a[i * k + j] -= f * a[col * k + j];
            }
            b[i] -= f * b[col];
        }
    }
    let mut x = vec![0.0; k];
    for i in (0..k).rev() {
        let s: f64 = (i + 1..k).map(|j| a[i * k + j] * x[j]).sum();
        x[i] = (b[i] - s) / a[i * k + i];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}
