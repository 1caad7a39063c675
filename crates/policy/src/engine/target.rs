//! Target tracking: each signal proposes a count; any may scale out, all must agree to scale in.

use super::CompiledPolicy;
use super::ceil_u32;
use super::explain::Reason;
use super::signals::Signal;
use super::types::{BoundBy, PoolCounts, SignalProposal};
use crate::model::MissingData;

/// A strategy's proposal and the rule that shaped it, if any.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outcome {
    pub proposal: u32,
    pub bound_by: Option<BoundBy>,
}

/// Target-tracking proposal.
///
/// Per signal: a utilisation-like value averaged over ready instances proposes
/// `ceil(ready · value / target)`; a `per_instance` pool total proposes `ceil(total / target)`.
/// Within the tolerance band a signal proposes the current count. Booting and warming
/// instances count toward the current count (`counts.counted`) but not toward `ready`.
pub(crate) fn propose(
    cp: &CompiledPolicy,
    sig: &[Signal],
    counts: PoolCounts,
    out: &mut Vec<SignalProposal>,
) -> Outcome {
    let p = &cp.policy;
    let current = counts.counted;
    let tol = p.tolerance;
    let mut max_prop: Option<u32> = None;
    let mut all_want_in = true;
    let mut any_within = false;
    let mut voters = 0u32;
    for (i, m) in p.metrics.iter().enumerate() {
        let name = cp.names[i].clone();
        let Some(target) = m.target else {
            out.push(SignalProposal::without_proposal(
                name,
                sig[i].value,
                Reason::NoTarget,
            ));
            continue;
        };
        let (proposal, reason) = match sig[i].value {
            None => {
                if m.missing_data == MissingData::Fallback
                    && let Some(f) = m.fallback_capacity
                {
                    (Some(f), Reason::Fallback(f))
                } else {
                    (
                        None,
                        sig[i]
                            .missing
                            .clone()
                            .unwrap_or(Reason::Missing(m.missing_data)),
                    )
                }
            }
            Some(v) if m.per_instance => {
                let need = staffed(v / target, m.headroom().sqrt);
                let ratio = if current > 0 {
                    need / f64::from(current)
                } else {
                    f64::INFINITY
                };
                if current > 0 && (ratio - 1.0).abs() <= tol {
                    any_within = true;
                    (Some(current), Reason::WithinTolerance { ratio })
                } else {
                    (Some(ceil_u32(need)), Reason::PerInstance { target })
                }
            }
            Some(v) => {
                let need = staffed(f64::from(counts.ready) * v / target, m.headroom().sqrt);
                let ratio = need / f64::from(counts.ready.max(1));
                if counts.ready == 0 {
                    (None, Reason::NoReadyInstances)
                } else if (ratio - 1.0).abs() <= tol {
                    any_within = true;
                    (Some(current), Reason::WithinTolerance { ratio })
                } else {
                    (
                        Some(ceil_u32(need)),
                        Reason::Ratio {
                            ratio,
                            ready: counts.ready,
                        },
                    )
                }
            }
        };
        match proposal {
            Some(n) => {
                voters += 1;
                max_prop = Some(max_prop.map_or(n, |x| x.max(n)));
                if n >= current {
                    all_want_in = false;
                }
            }
            None => {
                // A signal without a value never votes for scale-in; its missing-data
                // rule (applied by the caller) decides whether that blocks the others.
            }
        }
        out.push(SignalProposal {
            metric: name,
            value: sig[i].value,
            observed: None,
            proposal,
            score: None,
            reason,
        });
    }
    match max_prop {
        Some(n) if n > current => Outcome {
            proposal: n,
            bound_by: None,
        },
        Some(n) if all_want_in && voters > 0 => Outcome {
            proposal: n,
            bound_by: None,
        },
        Some(_) => Outcome {
            proposal: current,
            bound_by: if any_within {
                Some(BoundBy::Tolerance)
            } else {
                None
            },
        },
        None => Outcome {
            proposal: current,
            bound_by: None,
        },
    }
}

/// Square-root staffing: `r` instances' worth of load plus `beta · √r` spare (`r` itself
/// when `beta` is 0 or the load is not positive).
fn staffed(r: f64, beta: f64) -> f64 {
    if beta > 0.0 && r > 0.0 {
        r + beta * r.sqrt()
    } else {
        r
    }
}
