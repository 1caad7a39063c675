//! How seasonal a series is: the share of its detrended variance that a repeating
//! profile of one period explains (the "strength of seasonality" of Wang, Smith and
//! Hyndman, 2006, with a moving-average trend and a mean profile per phase).
//!
//! Used to decide whether a seasonal forecast may raise capacity at all
//! ([`crate::PredictionSettings::min_seasonal_strength`]): on a series whose
//! bursts do not repeat at the same time of day (flash crowds, spikes), a
//! seasonal forecast repeats yesterday's burst today and holds capacity for it.

/// Strength of the seasonal component of `y` for period `period` (in points), in
/// `[0, 1]`: `max(0, 1 − var(remainder) / var(detrended))`, where the trend is a
/// moving average one period long (centred where the series allows), the seasonal
/// component is the mean of the detrended series at each phase, and the remainder
/// is what is left. `None` when the series holds fewer than two full periods,
/// `period < 2`, a value is not finite, or the detrended series is constant.
pub fn seasonal_strength(y: &[f64], period: usize) -> Option<f64> {
    let n = y.len();
    if period < 2 || n < 2 * period || y.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mut prefix = Vec::with_capacity(n + 1);
    prefix.push(0.0);
    for v in y {
        prefix.push(prefix.last().copied().unwrap_or(0.0) + v);
    }
    let half = period / 2;
    let detrended: Vec<f64> = (0..n)
        .map(|i| {
            let hi = (i.saturating_sub(half) + period).min(n);
            let lo = hi - period;
            y[i] - (prefix[hi] - prefix[lo]) / period as f64
        })
        .collect();
    let mut sums = vec![0.0; period];
    let mut counts = vec![0usize; period];
    for (i, d) in detrended.iter().enumerate() {
        sums[i % period] += d;
        counts[i % period] += 1;
    }
    let profile: Vec<f64> = sums
        .iter()
        .zip(&counts)
        .map(|(s, &c)| s / c.max(1) as f64)
        .collect();
    let var = |it: &mut dyn Iterator<Item = f64>| {
        let (mut s, mut s2, mut k) = (0.0, 0.0, 0.0);
        for v in it {
            s += v;
            s2 += v * v;
            k += 1.0;
        }
        let m = s / k;
        (s2 / k - m * m).max(0.0)
    };
    let v_detrended = var(&mut detrended.iter().copied());
    if v_detrended <= f64::EPSILON * (1.0 + y.iter().map(|v| v * v).sum::<f64>() / n as f64) {
        return None;
    }
    let v_remainder = var(&mut detrended
        .iter()
        .enumerate()
        .map(|(i, d)| d - profile[i % period]));
    Some((1.0 - v_remainder / v_detrended).clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn daily(days: usize, noise: f64) -> Vec<f64> {
        // Deterministic pseudo-noise so the test is reproducible.
        let mut state = 12345u64;
        (0..days * 24)
            .map(|i| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
                100.0 + 50.0 * (std::f64::consts::TAU * (i % 24) as f64 / 24.0).sin() + noise * u
            })
            .collect()
    }

    #[test]
    fn a_clean_daily_cycle_is_fully_seasonal() {
        let s = seasonal_strength(&daily(7, 0.0), 24).expect("strength");
        assert!(s > 0.99, "{s}");
    }

    #[test]
    fn noise_lowers_the_strength() {
        let clean = seasonal_strength(&daily(7, 10.0), 24).expect("strength");
        let noisy = seasonal_strength(&daily(7, 400.0), 24).expect("strength");
        assert!(clean > 0.9 && noisy < 0.5, "{clean} {noisy}");
    }

    #[test]
    fn a_burst_that_does_not_repeat_is_not_seasonal() {
        let mut y = vec![100.0; 24 * 7];
        for v in &mut y[30..36] {
            *v = 400.0;
        }
        for v in &mut y[24 * 4 + 5..24 * 4 + 9] {
            *v = 300.0;
        }
        let s = seasonal_strength(&y, 24).expect("strength");
        assert!(s < 0.3, "{s}");
    }

    #[test]
    fn a_linear_trend_does_not_count_as_seasonality() {
        let mut y = daily(7, 0.0);
        for (i, v) in y.iter_mut().enumerate() {
            *v += 3.0 * i as f64;
        }
        let s = seasonal_strength(&y, 24).expect("strength");
        assert!(s > 0.95, "{s}");
    }

    fn settings(min: Option<f64>) -> crate::PredictionSettings {
        crate::PredictionSettings {
            min_seasonal_strength: min,
            seasonality: vec![std::time::Duration::from_secs(86_400)],
            ..crate::PredictionSettings::default()
        }
    }

    #[test]
    fn without_a_minimum_every_forecast_is_admitted() {
        assert!(settings(None).admits_forecast(None));
        assert!(settings(None).admits_forecast(Some(0.0)));
    }

    #[test]
    fn a_forecast_is_admitted_only_when_the_history_is_seasonal_enough() {
        let s = settings(Some(0.65));
        assert!(s.admits_forecast(Some(0.7)));
        assert!(s.admits_forecast(Some(0.65)));
        assert!(!s.admits_forecast(Some(0.6)));
        assert!(!s.admits_forecast(None), "unknown strength (short history)");
    }

    #[test]
    fn the_policy_measures_its_shortest_period_in_buckets() {
        // One-hour buckets: the daily period is 24 points.
        let s = settings(Some(0.5));
        let y = daily(3, 0.0);
        let st = s.seasonal_strength(&y, 3600.0).expect("strength");
        assert!(st > 0.99, "{st}");
        // Buckets longer than half the period leave no usable period.
        assert_eq!(s.seasonal_strength(&y, 86_400.0), None);
    }

    #[test]
    fn a_minimum_seasonal_strength_outside_zero_to_one_is_rejected() {
        let text = |v: &str| {
            format!(
                r#"{{"strategy": "target_tracking", "bounds": {{"min": 1, "max": 10}},
                    "metrics": [{{"name": "rps", "kind": "custom", "source": {{"type": "push"}}, "target": 10, "per_instance": true}}],
                    "prediction": {{"enabled": true, "mode": "forecast_and_scale", "metric": "rps",
                                    "target_per_instance": 10, "min_seasonal_strength": {v}}}}}"#
            )
        };
        let err = crate::parse_json(&text("1.5")).expect_err("out of range");
        assert!(
            err.to_string().contains("prediction.min_seasonal_strength"),
            "{err}"
        );
        let ok = crate::parse_json(&text("0.65")).expect("valid");
        assert_eq!(ok.prediction.min_seasonal_strength, Some(0.65));
    }

    #[test]
    fn a_gated_forecast_level_is_not_passed_on() {
        let s = settings(Some(0.65));
        assert_eq!(
            s.prediction_value(120.0, Some(100.0), Some(90.0), Some(0.4)),
            None
        );
        assert_eq!(
            s.prediction_value(120.0, Some(100.0), Some(90.0), Some(0.7)),
            Some(120.0)
        );
    }

    #[test]
    fn the_relative_rise_scales_the_current_value_by_the_forecast_rise() {
        let mut s = settings(Some(0.65));
        s.relative_rise = true;
        // Not seasonal enough: only the relative rise counts (90 · 120/100).
        let v = s
            .prediction_value(120.0, Some(100.0), Some(90.0), Some(0.4))
            .expect("relative");
        assert!((v - 108.0).abs() < 1e-9, "{v}");
        // Seasonal: the larger of the level and the relative rise.
        let v = s
            .prediction_value(120.0, Some(100.0), Some(200.0), Some(0.9))
            .expect("both");
        assert!((v - 240.0).abs() < 1e-9, "{v}");
    }

    #[test]
    fn a_forecast_fall_never_lowers_the_relative_value_below_the_current_one() {
        let s = crate::PredictionSettings {
            relative_rise: true,
            min_seasonal_strength: Some(1.0),
            ..settings(None)
        };
        assert_eq!(
            s.prediction_value(50.0, Some(100.0), Some(90.0), Some(0.2)),
            Some(90.0)
        );
        // Without a forecast for now or a current value there is nothing to scale.
        assert_eq!(s.prediction_value(50.0, None, Some(90.0), Some(0.2)), None);
        assert_eq!(
            s.prediction_value(50.0, Some(0.0), Some(90.0), Some(0.2)),
            None
        );
        assert_eq!(s.prediction_value(50.0, Some(100.0), None, Some(0.2)), None);
    }

    #[test]
    fn short_constant_or_non_finite_series_have_no_strength() {
        assert_eq!(seasonal_strength(&[1.0; 30], 24), None);
        assert_eq!(seasonal_strength(&[5.0; 96], 24), None);
        let mut y = daily(3, 0.0);
        y[5] = f64::NAN;
        assert_eq!(seasonal_strength(&y, 24), None);
        assert_eq!(seasonal_strength(&daily(3, 0.0), 1), None);
    }
}
