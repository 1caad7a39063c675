//! Turns raw observations into one value per declared metric (or a missing/stale mark).

use std::time::Duration;

use super::CompiledPolicy;
use super::explain::Reason;
use super::types::DecisionInput;
use crate::model::Strategy;
use crate::time::Timestamp;

/// A metric's value for this decision.
#[derive(Debug, Clone)]
pub(crate) struct Signal {
    /// Aggregated value, `None` when missing or stale.
    pub value: Option<f64>,
    /// Why there is no value (when `value` is `None`).
    pub missing: Option<Reason>,
}

/// Evaluates every metric of the policy, in declaration order.
pub(crate) fn evaluate(cp: &CompiledPolicy, input: &DecisionInput<'_>) -> Vec<Signal> {
    let now = input.now;
    cp.policy
        .metrics
        .iter()
        .map(|m| {
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
                },
                Some(t) if now.since(t) > m.stale_after => Signal {
                    value: None,
                    missing: Some(Reason::Stale {
                        age: now.since(t),
                        rule: m.missing_data,
                    }),
                },
                Some(_) => {
                    let v = if window_start.is_some() && n > 0 {
                        sum / f64::from(n)
                    } else {
                        latest_value
                    };
                    Signal {
                        value: Some(v),
                        missing: None,
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
        Strategy::Schedule => false,
    }
}
