//! The decision engine: [`CompiledPolicy`] and [`decide`].
//!
//! Pipeline (each stage may bind the result; see `docs/design/decision-engine.md`):
//! signals → strategy → missing-data rules → warm-up guard → schedules → prediction →
//! stabilisation → rate policies → cooldowns → bounds → spot split.

pub mod explain;
mod seed;
mod signals;
mod stabilise;
mod step;
mod target;
pub mod types;

pub use seed::least_squares_slope;
pub use stabilise::{scale_down_limit, scale_up_limit};
pub(crate) use step::is_above as step_is_above;
pub use step::{change as step_change, matching_step};

use std::sync::Arc;
use std::time::Duration;

use croner::Cron;

use crate::diag::{Diagnostics, FieldPath};
use crate::model::{MissingData, Policy, PredictionMode, Strategy};
use crate::time::Timestamp;
use explain::Step;
use types::{Action, BoundBy, Decision, DecisionInput, SignalProposal};

/// A validated policy with everything parsed once (cron schedules, metric names), ready
/// for many calls to [`decide`].
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    policy: Policy,
    names: Vec<Arc<str>>,
    schedules: Vec<(Arc<str>, Cron)>,
    seed_weights: Vec<f64>,
    step_metric: Option<usize>,
    prediction_metric: Option<Arc<str>>,
}

impl CompiledPolicy {
    /// Validates the policy and precomputes what [`decide`] needs.
    pub fn new(policy: Policy) -> Result<Self, Diagnostics> {
        policy.validate()?;
        let mut schedules = Vec::with_capacity(policy.schedules.len());
        let mut diags = Diagnostics::new();
        for (i, s) in policy.schedules.iter().enumerate() {
            match crate::validate::parse_cron(&s.cron) {
                Ok(c) => schedules.push((Arc::from(s.name.as_str()), c)),
                Err(e) => diags.push(
                    FieldPath::root().field("schedules").index(i).field("cron"),
                    e,
                ),
            }
        }
        diags.into_result()?;
        let names = policy
            .metrics
            .iter()
            .map(|m| Arc::from(m.name.as_str()))
            .collect();
        let seed_weights = policy
            .metrics
            .iter()
            .map(|m| {
                m.weight
                    .unwrap_or_else(|| crate::model::SeedSettings::default_weight(m.kind))
            })
            .collect();
        let step_metric = policy
            .step
            .as_ref()
            .and_then(|s| policy.metrics.iter().position(|m| m.name == s.metric));
        let prediction_metric = policy.prediction.metric.as_deref().map(Arc::from);
        Ok(CompiledPolicy {
            policy,
            names,
            schedules,
            seed_weights,
            step_metric,
            prediction_metric,
        })
    }

    /// The policy this was compiled from.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// How much history [`decide`] looks at: the longest of the stabilisation windows,
    /// rate periods and cooldowns (use it with [`types::History::prune`]).
    pub fn history_horizon(&self) -> Duration {
        let p = &self.policy;
        let mut h = p
            .scale_out
            .stabilisation_window
            .max(p.scale_in.stabilisation_window);
        for r in p.scale_out.policies.iter().chain(&p.scale_in.policies) {
            h = h.max(r.period);
        }
        h.max(p.scale_out.cooldown)
            .max(p.scale_in.cooldown)
            .max(p.seed.cooldown)
    }

    /// How many CPU samples the seed trend needs kept.
    pub fn trend_samples(&self) -> usize {
        self.policy.seed.trend_samples as usize
    }

    /// The largest `min_capacity` among the schedules active at `now`, with its name.
    pub fn active_schedule_min(&self, now: Timestamp) -> Option<(Arc<str>, u32)> {
        let mut best: Option<(Arc<str>, u32)> = None;
        if self.schedules.is_empty() {
            return None;
        }
        let t = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(now.millis())?;
        for ((name, cron), s) in self.schedules.iter().zip(&self.policy.schedules) {
            let Ok(prev) = cron.find_previous_occurrence(&t, true) else {
                continue;
            };
            let started = Timestamp(prev.timestamp_millis());
            if now.since(started) < s.duration
                && best.as_ref().is_none_or(|(_, m)| s.min_capacity > *m)
            {
                best = Some((name.clone(), s.min_capacity));
            }
        }
        best
    }

    /// Decides (same as [`decide`]).
    pub fn decide(&self, input: &DecisionInput<'_>) -> Decision {
        decide(self, input)
    }
}

/// Working state of one decision as it passes the stages.
struct Run {
    value: u32,
    bound_by: Option<BoundBy>,
    steps: Vec<Step>,
}

impl Run {
    fn set(&mut self, to: u32, why: BoundBy, step: Step) {
        if to != self.value {
            self.value = to;
            self.bound_by = Some(why);
            self.steps.push(step);
        }
    }
}

/// Decides the pool's desired count. Pure: the same inputs give the same decision.
pub fn decide(cp: &CompiledPolicy, input: &DecisionInput<'_>) -> Decision {
    let p = &cp.policy;
    let now = input.now;
    let counts = input.pool.counts();
    let current = counts.counted;
    let mut run = Run {
        value: current,
        bound_by: None,
        steps: Vec::with_capacity(8),
    };
    run.steps.push(Step::Pool {
        counted: current,
        ready: counts.ready,
        pending: counts.pending,
    });

    let sig = signals::evaluate(cp, input);
    for (i, s) in sig.iter().enumerate() {
        if let (Some((value, slope)), Some(extrapolated)) = (s.trend, s.value) {
            run.steps.push(Step::Trend {
                metric: cp.names[i].clone(),
                value,
                slope_per_min: slope * 60.0,
                extrapolated,
            });
        }
    }
    let mut proposals: Vec<SignalProposal> = Vec::with_capacity(p.metrics.len());
    let mut cpu_sample = None;

    let recommendation = if !p.enabled {
        run.steps.push(Step::Disabled);
        run.bound_by = Some(BoundBy::Disabled);
        current
    } else {
        // 1. Strategy.
        let outcome = match p.strategy {
            Strategy::TargetTracking => target::propose(cp, &sig, counts, &mut proposals),
            Strategy::Seed => {
                let o = seed::propose(cp, &sig, counts, input, &mut proposals, &mut run.steps);
                cpu_sample = o.cpu_sample;
                o.outcome
            }
            Strategy::Step => step::propose(cp, &sig, counts, &mut proposals),
            Strategy::Schedule | Strategy::Fixed => {
                for (i, name) in cp.names.iter().enumerate() {
                    proposals.push(SignalProposal {
                        metric: name.clone(),
                        value: sig[i].value,
                        proposal: None,
                        score: None,
                        reason: explain::Reason::Unused,
                    });
                }
                match (p.strategy, p.fixed) {
                    (Strategy::Fixed, Some(f)) => target::Outcome {
                        proposal: f.count,
                        bound_by: Some(BoundBy::Fixed),
                    },
                    _ => target::Outcome {
                        proposal: p.bounds.min,
                        bound_by: None,
                    },
                }
            }
        };
        run.steps.push(Step::Strategy {
            strategy: p.strategy,
            proposal: outcome.proposal,
        });
        run.value = outcome.proposal;
        if outcome.bound_by.is_some() {
            run.bound_by = outcome.bound_by;
        }

        // 2. Missing data rules (target tracking folds them into its proposals; schedule
        // and fixed read no signal).
        if !matches!(p.strategy, Strategy::Schedule | Strategy::Fixed) {
            let mut hold = false;
            let mut block_in = false;
            let mut fallback: Option<u32> = None;
            for (i, m) in p.metrics.iter().enumerate() {
                if sig[i].value.is_some() || !signals::used_by(cp, i) {
                    continue;
                }
                match m.missing_data {
                    MissingData::Hold => hold = true,
                    MissingData::BlockScaleIn => block_in = true,
                    MissingData::Ignore => {}
                    MissingData::Fallback => {
                        let f = m.fallback_capacity.unwrap_or(current);
                        fallback = Some(fallback.map_or(f, |x: u32| x.max(f)));
                    }
                }
            }
            if hold {
                let from = run.value;
                run.set(
                    current,
                    BoundBy::MissingData,
                    Step::MissingData {
                        from,
                        to: current,
                        rule: MissingData::Hold,
                    },
                );
            } else {
                if let Some(f) = fallback
                    && p.strategy != Strategy::TargetTracking
                    && f > run.value
                {
                    let from = run.value;
                    run.set(
                        f,
                        BoundBy::Fallback,
                        Step::MissingData {
                            from,
                            to: f,
                            rule: MissingData::Fallback,
                        },
                    );
                }
                if block_in && run.value < current {
                    let from = run.value;
                    run.set(
                        current,
                        BoundBy::MissingData,
                        Step::MissingData {
                            from,
                            to: current,
                            rule: MissingData::BlockScaleIn,
                        },
                    );
                }
            }
        }

        // 3. Warm-up: pending capacity blocks scale-in (AWS semantics).
        if matches!(p.strategy, Strategy::TargetTracking | Strategy::Step)
            && run.value < current
            && counts.pending > 0
        {
            run.set(
                current,
                BoundBy::Warmup,
                Step::Warmup {
                    pending: counts.pending,
                },
            );
        }

        // 4. Schedules raise the floor.
        if let Some((name, min)) = cp.active_schedule_min(now)
            && min > run.value
        {
            run.set(
                min,
                BoundBy::Schedule,
                Step::Schedule {
                    name,
                    min_capacity: min,
                },
            );
        }

        // 5. Prediction raises (never lowers).
        if p.prediction.enabled
            && let (Some(metric), Some(tpi), Some(pred)) = (
                &cp.prediction_metric,
                p.prediction.target_per_instance,
                input.prediction,
            )
            && let Some(forecast) = pred.value(metric)
            && forecast.is_finite()
            && tpi > 0.0
        {
            let mut forecast = forecast;
            if let Some(r) = p.prediction.max_ratio
                && let Some(Some(current)) = cp
                    .names
                    .iter()
                    .position(|n| n == metric)
                    .map(|i| sig[i].value)
                && forecast > r * current.max(0.0)
            {
                let cap = r * current.max(0.0);
                run.steps.push(Step::PredictionCapped { forecast, cap });
                forecast = cap;
            }
            let capacity = ceil_u32(forecast.max(0.0) / tpi);
            let applied =
                p.prediction.mode == PredictionMode::ForecastAndScale && capacity > run.value;
            if applied {
                run.value = capacity;
                run.bound_by = Some(BoundBy::Prediction);
            }
            run.steps.push(Step::Prediction {
                forecast,
                capacity,
                applied,
            });
        }
        run.value
    };

    // 6. Stabilisation, rate policies, cooldowns (not when disabled).
    if p.enabled {
        stabilise::stabilise(cp, input, current, &mut run);
        stabilise::rate_limit(cp, input, current, &mut run);
        stabilise::cooldown(cp, input, current, &mut run);
    }

    // 7. Bounds.
    let clamped = run
        .value
        .clamp(p.bounds.min, p.bounds.max.max(p.bounds.min));
    if clamped != run.value {
        let why = if clamped > run.value {
            BoundBy::Min
        } else {
            BoundBy::Max
        };
        let from = run.value;
        run.set(clamped, why, Step::Clamp { from, to: clamped });
    }
    let desired = run.value;

    // 8. Spot split.
    let base = desired.min(p.spot.on_demand_base);
    let above = desired - base;
    let spot = ((f64::from(above) * p.spot.spot_percentage / 100.0).floor() as u32).min(above);
    let on_demand = desired - spot;
    run.steps.push(Step::Split { on_demand, spot });

    let mut action = match desired.cmp(&current) {
        std::cmp::Ordering::Greater => Action::ScaleOut {
            by: desired - current,
        },
        std::cmp::Ordering::Less => Action::ScaleIn {
            by: current - desired,
        },
        std::cmp::Ordering::Equal => Action::None,
    };
    if p.dry_run && action != Action::None {
        action = Action::None;
        run.steps.push(Step::DryRun);
    }

    Decision {
        at: now,
        current,
        recommendation,
        desired,
        on_demand,
        spot,
        action,
        proposals,
        bound_by: run.bound_by,
        explanation: run.steps,
        next_evaluation: now.add(p.evaluation_interval),
        cpu_sample,
        dry_run: p.dry_run,
    }
}

/// ceil of a non-negative finite f64 into u32 (saturating).
pub(crate) fn ceil_u32(x: f64) -> u32 {
    if !x.is_finite() || x <= 0.0 {
        0
    } else if x >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        // Guard against 3.0000000000000004 from 0.1-style float error.
        let r = x.round();
        if (x - r).abs() < 1e-9 {
            r as u32
        } else {
            x.ceil() as u32
        }
    }
}
