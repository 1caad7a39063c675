//! Step scaling with AWS semantics.
//!
//! Bounds are relative to the threshold. A step whose lower bound is ≥ 0 lies above the
//! threshold and matches `lower ≤ value − threshold < upper`; a step whose upper bound is
//! ≤ 0 lies below it and matches `lower < value − threshold ≤ upper`. Percent changes
//! round as AWS does (> 1 down, 0..1 → 1, −1..0 → −1, < −1 up) and respect
//! `min_adjustment_magnitude`. While instances boot or warm, a scale-out step is sized
//! from the ready instances so that repeated breaches of the same step add nothing.

use super::CompiledPolicy;
use super::explain::Reason;
use super::signals::Signal;
use super::target::Outcome;
use super::types::{PoolCounts, SignalProposal};
use crate::model::{AdjustmentType, StepAdjustment, StepSettings};

/// Whether a step lies above the threshold (lower bound ≥ 0).
pub(crate) fn is_above(a: &StepAdjustment) -> bool {
    a.lower.is_some_and(|l| l >= 0.0)
}

/// The step that matches `diff = value − threshold`, if any.
pub fn matching_step(steps: &[StepAdjustment], diff: f64) -> Option<&StepAdjustment> {
    steps.iter().find(|a| {
        if is_above(a) {
            a.lower.is_none_or(|l| diff >= l) && a.upper.is_none_or(|u| diff < u)
        } else {
            a.lower.is_none_or(|l| diff > l) && a.upper.is_none_or(|u| diff <= u)
        }
    })
}

/// The change in instances a step makes from `base` instances.
pub fn change(settings: &StepSettings, adjustment: f64, base: u32) -> i64 {
    match settings.adjustment_type {
        AdjustmentType::ChangeInCapacity => adjustment.trunc() as i64,
        AdjustmentType::ExactCapacity => adjustment.max(0.0).trunc() as i64 - i64::from(base),
        AdjustmentType::PercentChangeInCapacity => {
            let raw = f64::from(base) * adjustment / 100.0;
            let mut c = if raw > 1.0 {
                raw.floor() as i64
            } else if raw > 0.0 {
                1
            } else if raw == 0.0 {
                0
            } else if raw > -1.0 {
                -1
            } else {
                raw.ceil() as i64
            };
            if let Some(m) = settings.min_adjustment_magnitude {
                let m = i64::from(m);
                if c != 0 && c.abs() < m {
                    c = c.signum() * m;
                }
            }
            c
        }
    }
}

fn apply(base: u32, change: i64) -> u32 {
    (i64::from(base) + change).clamp(0, i64::from(u32::MAX)) as u32
}

pub(crate) fn propose(
    cp: &CompiledPolicy,
    sig: &[Signal],
    counts: PoolCounts,
    out: &mut Vec<SignalProposal>,
) -> Outcome {
    let p = &cp.policy;
    let current = counts.counted;
    let mut proposal = current;
    for (i, _m) in p.metrics.iter().enumerate() {
        let name = cp.names[i].clone();
        if cp.step_metric != Some(i) {
            out.push(SignalProposal::without_proposal(
                name,
                sig[i].value,
                Reason::Unused,
            ));
            continue;
        }
        let Some(settings) = p.step.as_ref() else {
            continue;
        };
        let Some(v) = sig[i].value else {
            out.push(SignalProposal::without_proposal(
                name,
                None,
                sig[i].missing.clone().unwrap_or(Reason::NoStep),
            ));
            continue;
        };
        let diff = v - settings.threshold;
        match matching_step(&settings.adjustments, diff) {
            Some(a) => {
                let c = change(settings, a.adjustment, current);
                let mut n = apply(current, c);
                if n > current && counts.pending > 0 {
                    // Warm-up: size from ready capacity; pending instances already count.
                    let from_ready =
                        apply(counts.ready, change(settings, a.adjustment, counts.ready));
                    n = from_ready.max(current);
                }
                proposal = n;
                out.push(SignalProposal {
                    metric: name,
                    value: Some(v),
                    observed: None,
                    proposal: Some(n),
                    score: None,
                    reason: Reason::Step {
                        adjustment: a.adjustment,
                        change: c,
                    },
                });
            }
            None => out.push(SignalProposal {
                metric: name,
                value: Some(v),
                observed: None,
                proposal: Some(current),
                score: None,
                reason: Reason::NoStep,
            }),
        }
    }
    Outcome {
        proposal,
        bound_by: None,
    }
}
