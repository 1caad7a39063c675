//! The seed strategy: the original weighted-score design, faithfully.
//!
//! score = Σ weightᵢ · bandᵢ(valueᵢ) + trend_weight · tanh(slope / trend_divisor), where
//! slope is the least-squares slope (per sample) of the last `trend_samples` CPU values
//! (the history's samples followed by the current one; 0 with fewer). Score above
//! `scale_out_score` adds max(1, floor(n · min(score, 1) · out_factor)); below
//! `scale_in_score` removes max(1, floor(n · |score| · in_factor)). One cooldown for both
//! directions, from the last action.

use super::CompiledPolicy;
use super::explain::{Reason, Step};
use super::signals::Signal;
use super::target::Outcome;
use super::types::{BoundBy, DecisionInput, PoolCounts, SignalProposal};
use crate::model::{MetricKind, SeedBand};

pub(crate) struct SeedOutcome {
    pub outcome: Outcome,
    pub cpu_sample: Option<f64>,
}

/// Least-squares slope of `ys` against 0, 1, 2, … (0 for fewer than two points).
pub fn least_squares_slope(ys: &[f64]) -> f64 {
    let n = ys.len();
    if n < 2 {
        return 0.0;
    }
    let nf = n as f64;
    let mean_x = (nf - 1.0) / 2.0;
    let mean_y = ys.iter().sum::<f64>() / nf;
    let mut num = 0.0;
    let mut den = 0.0;
    for (i, y) in ys.iter().enumerate() {
        let dx = i as f64 - mean_x;
        num += dx * (y - mean_y);
        den += dx * dx;
    }
    if den == 0.0 { 0.0 } else { num / den }
}

pub(crate) fn propose(
    cp: &CompiledPolicy,
    sig: &[Signal],
    counts: PoolCounts,
    input: &DecisionInput<'_>,
    out: &mut Vec<SignalProposal>,
    steps: &mut Vec<Step>,
) -> SeedOutcome {
    let p = &cp.policy;
    let s = &p.seed;
    let n = counts.counted;
    let mut score = 0.0;
    let mut cpu_sample = None;
    for (i, m) in p.metrics.iter().enumerate() {
        let name = cp.names[i].clone();
        let weight = cp.seed_weights[i];
        let Some(default_band) = s.band(m.kind) else {
            out.push(SignalProposal::without_proposal(
                name,
                sig[i].value,
                Reason::Unused,
            ));
            continue;
        };
        let band = SeedBand {
            scale_out_above: m.scale_out_above.unwrap_or(default_band.scale_out_above),
            scale_in_below: m.scale_in_below.unwrap_or(default_band.scale_in_below),
            out_origin: if m.scale_out_above.is_some() && m.kind != MetricKind::QueueLength {
                m.scale_out_above.unwrap_or(default_band.out_origin)
            } else {
                default_band.out_origin
            },
            ..*default_band
        };
        match sig[i].value {
            Some(v) => {
                if m.kind == MetricKind::Cpu && cpu_sample.is_none() {
                    cpu_sample = Some(v);
                }
                let sc = band.score(v);
                score += weight * sc;
                out.push(SignalProposal {
                    metric: name,
                    value: Some(v),
                    observed: None,
                    proposal: None,
                    score: Some(sc),
                    reason: Reason::SeedScore { score: sc, weight },
                });
            }
            None => out.push(SignalProposal::without_proposal(
                name,
                None,
                sig[i]
                    .missing
                    .clone()
                    .unwrap_or(Reason::Missing(m.missing_data)),
            )),
        }
    }

    // Trend over the last `trend_samples` CPU samples, the current one included.
    let want = s.trend_samples as usize;
    let mut trend = 0.0;
    if let Some(c) = cpu_sample
        && want >= 2
    {
        let hist = &input.history.cpu_samples;
        if hist.len() + 1 >= want {
            let mut ys: Vec<f64> = hist
                .iter()
                .skip(hist.len() + 1 - want)
                .map(|x| x.value)
                .collect();
            ys.push(c);
            trend = (least_squares_slope(&ys) / s.trend_divisor).tanh();
        }
    }
    score += s.trend_weight * trend;
    steps.push(Step::SeedScore { score, trend });

    // One cooldown for both directions.
    if let Some(last) = input.history.last_scale() {
        let since = input.now.since(last);
        if since < s.cooldown {
            steps.push(Step::SeedCooldown {
                remaining: s.cooldown - since,
            });
            return SeedOutcome {
                outcome: Outcome {
                    proposal: n,
                    bound_by: Some(BoundBy::Cooldown),
                },
                cpu_sample,
            };
        }
    }

    let proposal = if score > s.scale_out_score {
        let by = ((f64::from(n) * score.min(1.0) * s.out_factor).floor() as u32).max(1);
        n.saturating_add(by)
    } else if score < s.scale_in_score {
        let by = ((f64::from(n) * score.abs().min(1.0) * s.in_factor).floor() as u32).max(1);
        n.saturating_sub(by)
    } else {
        n
    };
    SeedOutcome {
        outcome: Outcome {
            proposal,
            bound_by: None,
        },
        cpu_sample,
    }
}
