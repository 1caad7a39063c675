//! Turns raw observations into one value per declared metric (or a missing/stale mark).

use std::time::Duration;

use super::CompiledPolicy;
use super::explain::Reason;
use super::types::{DecisionInput, Observation};
use crate::model::Strategy;
use crate::time::Timestamp;

/// A metric's value for this decision.
#[derive(Debug, Clone)]
pub(crate) struct Signal {
    /// Aggregated value, `None` when missing or stale.
    pub value: Option<f64>,
    /// Why there is no value (when `value` is `None`).
    pub missing: Option<Reason>,
    /// When the trend raised the value: (value before, slope per second).
    pub trend: Option<(f64, f64)>,
    /// When the noise headroom raised the value: (σ, the raise).
    pub noise: Option<(f64, f64)>,
}

/// Least-squares slope (per second) of the observations of `metric` within
/// `(from, now]` against their timestamps, lowered by `sigmas` standard errors of the
/// slope; `None` with fewer than 3 points or no spread in time.
fn trend_slope(
    input: &DecisionInput<'_>,
    metric: &str,
    from: Timestamp,
    sigmas: f64,
) -> Option<f64> {
    let now = input.now;
    let (mut n, mut sx, mut sy, mut sxx, mut sxy, mut syy) = (0u32, 0.0, 0.0, 0.0, 0.0, 0.0);
    for o in input.observations {
        if o.metric != metric || !o.value.is_finite() || o.at > now || o.at <= from {
            continue;
        }
        // Seconds before now (small numbers keep the sums well conditioned).
        let x = -(now.since(o.at).as_secs_f64());
        n += 1;
        sx += x;
        sy += o.value;
        sxx += x * x;
        sxy += x * o.value;
        syy += o.value * o.value;
    }
    if n < 3 {
        return None;
    }
    let nf = f64::from(n);
    let cxx = sxx - sx * sx / nf;
    if cxx <= 1e-9 {
        return None;
    }
    let cxy = sxy - sx * sy / nf;
    let cyy = syy - sy * sy / nf;
    let slope = cxy / cxx;
    // Residual variance of the fit and the slope's standard error.
    let rss = (cyy - slope * cxy).max(0.0);
    let se = (rss / (nf - 2.0) / cxx).sqrt();
    Some(slope - sigmas * se)
}

/// Median absolute change between time-successive observations of `metric` within
/// `(from, now]` (0 with fewer than two).
fn median_step(input: &DecisionInput<'_>, metric: &str, from: Timestamp) -> f64 {
    let pts = readings_in_time_order(input, &within(input, metric, from));
    let mut steps: Vec<f64> = pts.windows(2).map(|w| (w[1].1 - w[0].1).abs()).collect();
    if steps.is_empty() {
        return 0.0;
    }
    steps.sort_by(f64::total_cmp);
    steps[steps.len() / 2]
}

/// Mean absolute change between time-successive observations of `metric` within
/// `(from, now]`: how far the signal jumps from one reading to the next (`None` with
/// fewer than two readings at different times). Readings sharing a timestamp count once.
fn mean_step(input: &DecisionInput<'_>, metric: &str, from: Timestamp) -> Option<f64> {
    let inside = within(input, metric, from);
    // Callers usually pass observations oldest first: one pass, no copy.
    let (mut last, mut sum, mut steps) = (None::<(Timestamp, f64)>, 0.0, 0u32);
    for o in input.observations.iter().filter(&inside) {
        match last {
            Some((at, _)) if o.at < at => return mean_step_unordered(input, &inside),
            Some((at, _)) if o.at == at => continue,
            Some((_, v)) => {
                sum += (o.value - v).abs();
                steps += 1;
            }
            None => {}
        }
        last = Some((o.at, o.value));
    }
    (steps > 0).then(|| sum / f64::from(steps))
}

/// Whether an observation is a finite reading of `metric` within `(from, now]`.
fn within<'a>(
    input: &DecisionInput<'_>,
    metric: &'a str,
    from: Timestamp,
) -> impl Fn(&&Observation) -> bool + 'a {
    let now = input.now;
    move |o| o.metric == metric && o.value.is_finite() && o.at <= now && o.at > from
}

/// The observations `inside` selects, as (time, value), oldest first (a stable sort:
/// readings sharing a timestamp keep their order).
fn readings_in_time_order(
    input: &DecisionInput<'_>,
    inside: &dyn Fn(&&Observation) -> bool,
) -> Vec<(Timestamp, f64)> {
    let mut pts: Vec<(Timestamp, f64)> = input
        .observations
        .iter()
        .filter(inside)
        .map(|o| (o.at, o.value))
        .collect();
    pts.sort_by_key(|p| p.0);
    pts
}

/// [`mean_step`] for observations in no particular order.
fn mean_step_unordered(
    input: &DecisionInput<'_>,
    inside: &dyn Fn(&&Observation) -> bool,
) -> Option<f64> {
    let mut pts = readings_in_time_order(input, inside);
    pts.dedup_by_key(|p| p.0);
    if pts.len() < 2 {
        return None;
    }
    let sum: f64 = pts.windows(2).map(|w| (w[1].1 - w[0].1).abs()).sum();
    Some(sum / (pts.len() - 1) as f64)
}

/// Evaluates every metric of the policy, in declaration order.
pub(crate) fn evaluate(cp: &CompiledPolicy, input: &DecisionInput<'_>) -> Vec<Signal> {
    let now = input.now;
    cp.policy
        .metrics
        .iter()
        .zip(&cp.freshness)
        .map(|(m, fresh)| {
            let mut latest: Option<Timestamp> = None;
            let mut latest_value = 0.0;
            let mut sum = 0.0;
            let mut n = 0u32;
            let window_start = if m.duration > Duration::ZERO {
                Some(now.sub(m.duration))
            } else {
                None
            };
            for o in input.observations {
                if o.metric != m.name || !o.value.is_finite() || o.at > now {
                    continue;
                }
                if latest.is_none_or(|t| o.at >= t) {
                    latest = Some(o.at);
                    latest_value = o.value;
                }
                if let Some(ws) = window_start
                    && o.at > ws
                {
                    sum += o.value;
                    n += 1;
                }
            }
            match latest {
                None => Signal {
                    value: None,
                    missing: Some(Reason::Missing(m.missing_data)),
                    trend: None,
                    noise: None,
                },
                Some(t) if now.since(t) > fresh.limit => Signal {
                    value: None,
                    missing: Some(Reason::Stale {
                        age: now.since(t),
                        rule: m.missing_data,
                        freshness: *fresh,
                    }),
                    trend: None,
                    noise: None,
                },
                Some(_) => {
                    let v = if window_start.is_some() && n > 0 {
                        sum / f64::from(n)
                    } else {
                        latest_value
                    };
                    // Trend: only a rising signal is read ahead.
                    let trend = if m.trend_lead.is_zero() {
                        None
                    } else {
                        let from = now.sub(m.trend_window);
                        trend_slope(input, &m.name, from, m.trend_significance)
                            .map(|s| {
                                if m.trend_noise_margin > 0.0 {
                                    // Lower the slope so the raise over the lead drops by the margin.
                                    let jitter = median_step(input, &m.name, from);
                                    s - m.trend_noise_margin * jitter / m.trend_lead.as_secs_f64()
                                } else {
                                    s
                                }
                            })
                            .filter(|s| *s > 0.0)
                            .map(|s| (v, s))
                    };
                    let read = match trend {
                        Some((v, s)) => {
                            let raise = s * m.trend_lead.as_secs_f64();
                            v + raise.min(v.abs() * m.trend_max_raise)
                        }
                        None => v,
                    };
                    // Noise headroom: target tracking reads the value higher by a
                    // multiple of how far it has been jumping between readings.
                    let z = m.headroom().noise;
                    let noise = (z > 0.0 && cp.policy.strategy == Strategy::TargetTracking)
                        .then(|| mean_step(input, &m.name, now.sub(m.noise_window)))
                        .flatten()
                        .map(|sigma| (sigma, z * sigma))
                        .filter(|(_, raise)| *raise > 0.0);
                    Signal {
                        value: Some(read + noise.map_or(0.0, |(_, raise)| raise)),
                        missing: None,
                        trend,
                        noise,
                    }
                }
            }
        })
        .collect()
}

/// Whether metric `i` feeds the policy's strategy (so its absence matters).
pub(crate) fn used_by(cp: &CompiledPolicy, i: usize) -> bool {
    let p = &cp.policy;
    match p.strategy {
        Strategy::TargetTracking => p.metrics[i].target.is_some(),
        Strategy::Seed => cp.seed_weights[i] > 0.0 && p.seed.band(p.metrics[i].kind).is_some(),
        Strategy::Step => cp.step_metric == Some(i),
        Strategy::Schedule | Strategy::Fixed => false,
    }
}
