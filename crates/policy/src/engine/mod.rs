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
use explain::{Reason, Step};

fn held_metric(held: &Option<(Arc<str>, Reason)>) -> Arc<str> {
    held.as_ref().map_or_else(|| Arc::from(""), |h| h.0.clone())
}

fn held_reason(held: &Option<(Arc<str>, Reason)>) -> Box<Reason> {
    Box::new(
        held.as_ref()
            .map_or(Reason::Missing(MissingData::BlockScaleIn), |h| h.1.clone()),
    )
}
use types::{Action, BoundBy, Decision, DecisionInput, PoolCounts, SignalProposal};

/// A validated policy with everything parsed once (cron schedules, metric names), ready
/// for many calls to [`decide`].
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    policy: Policy,
    names: Vec<Arc<str>>,
    schedules: Vec<CompiledSchedule>,
    seed_weights: Vec<f64>,
    step_metric: Option<usize>,
    prediction_metric: Option<Arc<str>>,
    freshness: Vec<crate::model::Freshness>,
}

impl CompiledPolicy {
    /// Validates the policy and precomputes what [`decide`] needs.
    pub fn new(policy: Policy) -> Result<Self, Diagnostics> {
        policy.validate()?;
        let mut schedules = Vec::with_capacity(policy.schedules.len());
        let mut diags = Diagnostics::new();
        for (i, s) in policy.schedules.iter().enumerate() {
            match CompiledSchedule::new(s) {
                Ok(c) => schedules.push(c),
                Err((field, e)) => diags.push(
                    FieldPath::root().field("schedules").index(i).field(field),
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
        let freshness = policy
            .metrics
            .iter()
            .map(|m| m.freshness(policy.evaluation_interval))
            .collect();
        Ok(CompiledPolicy {
            freshness,
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

    /// Each metric's freshness rule, in declaration order.
    pub fn freshness(&self) -> &[crate::model::Freshness] {
        &self.freshness
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
        for (c, s) in self.schedules.iter().zip(&self.policy.schedules) {
            if c.start.is_some_and(|start| now < start) || c.end.is_some_and(|end| now >= end) {
                continue;
            }
            let Ok(prev) = c
                .cron
                .find_previous_occurrence(&t.with_timezone(&c.tz), true)
            else {
                continue;
            };
            let started = Timestamp(prev.timestamp_millis());
            if now.since(started) < s.duration
                && best.as_ref().is_none_or(|(_, m)| s.min_capacity > *m)
            {
                best = Some((c.name.clone(), s.min_capacity));
            }
        }
        best
    }

    /// Decides (same as [`decide`]).
    pub fn decide(&self, input: &DecisionInput<'_>) -> Decision {
        decide(self, input)
    }
}

/// A schedule with its cron expression, zone and window parsed once.
#[derive(Debug, Clone)]
struct CompiledSchedule {
    name: Arc<str>,
    cron: Cron,
    tz: chrono_tz::Tz,
    start: Option<Timestamp>,
    end: Option<Timestamp>,
}

impl CompiledSchedule {
    /// The parsed schedule, or the field that does not parse and why.
    fn new(s: &crate::model::Schedule) -> Result<Self, (&'static str, String)> {
        let time = |field: &'static str, t: &Option<String>| {
            t.as_deref()
                .map(crate::validate::parse_time)
                .transpose()
                .map_err(|e| (field, e))
        };
        Ok(CompiledSchedule {
            name: Arc::from(s.name.as_str()),
            cron: crate::validate::parse_cron(&s.cron).map_err(|e| ("cron", e))?,
            tz: crate::validate::parse_timezone(&s.timezone).map_err(|e| ("timezone", e))?,
            start: time("start_time", &s.start_time)?,
            end: time("end_time", &s.end_time)?,
        })
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
///
/// The stages run in order, each with its own function: strategy, missing-data rules, warm-up,
/// schedules, prediction, then stabilisation/rates/cooldowns, bounds, and the spot split.
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
    push_trends(cp, &sig, &mut run);
    let mut proposals: Vec<SignalProposal> = Vec::with_capacity(p.metrics.len());
    let mut cpu_sample = None;

    let recommendation = if !p.enabled {
        run.steps.push(Step::Disabled);
        run.bound_by = Some(BoundBy::Disabled);
        current
    } else {
        cpu_sample = strategy_stage(cp, &sig, input, &mut proposals, &mut run);
        observed(cp, &sig, &mut proposals);
        if !matches!(p.strategy, Strategy::Schedule | Strategy::Fixed) {
            missing_data_stage(cp, &sig, current, &mut run);
        }
        warmup_stage(p, counts, &mut run);
        schedule_stage(cp, now, &mut run);
        prediction_stage(cp, &sig, input, &mut run);
        run.value
    };

    // 6. Stabilisation, rate policies, cooldowns (not when disabled).
    if p.enabled {
        stabilise::stabilise(cp, input, current, &mut run);
        stabilise::rate_limit(cp, input, current, &mut run);
        stabilise::cooldown(cp, input, current, &mut run);
    }
    bounds_stage(p, &mut run);
    let desired = run.value;
    let (on_demand, spot) = spot_split(p, desired);
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

/// Each proposal's value as observed: before the trend read-ahead and the noise headroom.
fn observed(cp: &CompiledPolicy, sig: &[signals::Signal], proposals: &mut [SignalProposal]) {
    for p in proposals.iter_mut().filter(|p| p.value.is_some()) {
        let Some(s) = cp
            .names
            .iter()
            .position(|n| *n == p.metric)
            .map(|i| &sig[i])
        else {
            continue;
        };
        p.observed = match (s.trend, s.noise) {
            (Some((before, _)), _) => Some(before),
            (None, Some((_, raise))) => s.value.map(|v| v - raise),
            (None, None) => s.value,
        };
    }
}

/// Records each signal's trend read-ahead, noise headroom and square-root staffing in the
/// explanation.
fn push_trends(cp: &CompiledPolicy, sig: &[signals::Signal], run: &mut Run) {
    for (i, s) in sig.iter().enumerate() {
        let noise_raise = s.noise.map_or(0.0, |(_, raise)| raise);
        if let (Some((value, slope)), Some(read)) = (s.trend, s.value) {
            run.steps.push(Step::Trend {
                metric: cp.names[i].clone(),
                value,
                slope_per_min: slope * 60.0,
                extrapolated: read - noise_raise,
            });
        }
        if let (Some((sigma, raise)), Some(read)) = (s.noise, s.value) {
            run.steps.push(Step::Noise {
                metric: cp.names[i].clone(),
                sigma,
                raise,
                read,
            });
        }
        let m = &cp.policy.metrics[i];
        let h = m.headroom();
        if cp.policy.strategy == Strategy::TargetTracking
            && m.target.is_some()
            && s.value.is_some()
            && h.sqrt > 0.0
        {
            run.steps.push(Step::Staffing {
                metric: cp.names[i].clone(),
                beta: h.sqrt,
                coarse: h.coarse
                    && (m.coarse_sqrt_headroom.is_some() || m.coarse_noise_headroom.is_some()),
            });
        }
    }
}

/// Stage 1: the strategy's proposal; returns the seed strategy's CPU sample, if any.
fn strategy_stage(
    cp: &CompiledPolicy,
    sig: &[signals::Signal],
    input: &DecisionInput<'_>,
    proposals: &mut Vec<SignalProposal>,
    run: &mut Run,
) -> Option<f64> {
    let p = &cp.policy;
    let counts = input.pool.counts();
    let mut cpu_sample = None;
    let outcome = match p.strategy {
        Strategy::TargetTracking => target::propose(cp, sig, counts, proposals),
        Strategy::Seed => {
            let o = seed::propose(cp, sig, counts, input, proposals, &mut run.steps);
            cpu_sample = o.cpu_sample;
            o.outcome
        }
        Strategy::Step => step::propose(cp, sig, counts, proposals),
        Strategy::Schedule | Strategy::Fixed => {
            for (i, name) in cp.names.iter().enumerate() {
                proposals.push(SignalProposal::without_proposal(
                    name.clone(),
                    sig[i].value,
                    explain::Reason::Unused,
                ));
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
    cpu_sample
}

/// What the missing-data rules of the used metrics without a value ask for.
struct MissingRules {
    hold: bool,
    block_in: bool,
    fallback: Option<u32>,
    /// The first metric whose rule applies, and why it has no value.
    held_by: Option<(Arc<str>, Reason)>,
}

impl MissingRules {
    fn collect(cp: &CompiledPolicy, sig: &[signals::Signal], current: u32) -> Self {
        let mut r = MissingRules {
            hold: false,
            block_in: false,
            fallback: None,
            held_by: None,
        };
        for (i, m) in cp.policy.metrics.iter().enumerate() {
            if sig[i].value.is_some() || !signals::used_by(cp, i) {
                continue;
            }
            if m.missing_data != MissingData::Ignore && r.held_by.is_none() {
                let why = sig[i]
                    .missing
                    .clone()
                    .unwrap_or(Reason::Missing(m.missing_data));
                r.held_by = Some((cp.names[i].clone(), why));
            }
            match m.missing_data {
                MissingData::Hold => r.hold = true,
                MissingData::BlockScaleIn => r.block_in = true,
                MissingData::Ignore => {}
                MissingData::Fallback => {
                    let f = m.fallback_capacity.unwrap_or(current);
                    r.fallback = Some(r.fallback.map_or(f, |x: u32| x.max(f)));
                }
            }
        }
        r
    }

    /// The explanation step for `rule` moving the count `from` → `to`.
    fn step(&self, from: u32, to: u32, rule: MissingData) -> Step {
        Step::MissingData {
            from,
            to,
            rule,
            metric: held_metric(&self.held_by),
            why: held_reason(&self.held_by),
        }
    }
}

/// Stage 2, missing-data rules: target tracking folds them into its proposals; schedule and
/// fixed read no signal, and the caller skips this stage for them.
fn missing_data_stage(cp: &CompiledPolicy, sig: &[signals::Signal], current: u32, run: &mut Run) {
    let p = &cp.policy;
    let rules = MissingRules::collect(cp, sig, current);
    if rules.hold {
        let from = run.value;
        run.set(
            current,
            BoundBy::MissingData,
            rules.step(from, current, MissingData::Hold),
        );
    } else {
        if let Some(f) = rules.fallback
            && p.strategy != Strategy::TargetTracking
            && f > run.value
        {
            let from = run.value;
            run.set(
                f,
                BoundBy::Fallback,
                rules.step(from, f, MissingData::Fallback),
            );
        }
        if rules.block_in && run.value < current {
            let from = run.value;
            run.set(
                current,
                BoundBy::MissingData,
                rules.step(from, current, MissingData::BlockScaleIn),
            );
        }
    }
    // No used signal has a value: the strategy kept the count, and it is the missing-data rule
    // that holds the pool — say so.
    let any_value = (0..p.metrics.len()).any(|i| signals::used_by(cp, i) && sig[i].value.is_some());
    if (rules.hold || rules.block_in)
        && !any_value
        && run.value == current
        && run.bound_by.is_none()
    {
        run.bound_by = Some(BoundBy::MissingData);
        let rule = if rules.hold {
            MissingData::Hold
        } else {
            MissingData::BlockScaleIn
        };
        run.steps.push(rules.step(current, current, rule));
    }
}

/// Stage 3, warm-up: pending capacity blocks scale-in (AWS semantics).
fn warmup_stage(p: &Policy, counts: PoolCounts, run: &mut Run) {
    let current = counts.counted;
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
}

/// Stage 4: schedules raise the floor.
fn schedule_stage(cp: &CompiledPolicy, now: Timestamp, run: &mut Run) {
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
}

/// Stage 5: prediction raises (never lowers).
fn prediction_stage(
    cp: &CompiledPolicy,
    sig: &[signals::Signal],
    input: &DecisionInput<'_>,
    run: &mut Run,
) {
    let p = &cp.policy;
    if !p.prediction.enabled {
        return;
    }
    let (Some(metric), Some(tpi), Some(pred)) = (
        &cp.prediction_metric,
        p.prediction.target_per_instance,
        input.prediction,
    ) else {
        return;
    };
    let Some(mut forecast) = pred.value(metric).filter(|f| f.is_finite()) else {
        return;
    };
    if tpi.is_nan() || tpi <= 0.0 {
        return;
    }
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
    let applied = p.prediction.mode == PredictionMode::ForecastAndScale && capacity > run.value;
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

/// Stage 7: bounds.
fn bounds_stage(p: &Policy, run: &mut Run) {
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
}

/// Stage 8, spot split: the on-demand base first, then the spot share of what is above it.
fn spot_split(p: &Policy, desired: u32) -> (u32, u32) {
    let base = desired.min(p.spot.on_demand_base);
    let above = desired - base;
    let spot = ((f64::from(above) * p.spot.spot_percentage / 100.0).floor() as u32).min(above);
    (desired - spot, spot)
}

/// ceil of a non-negative finite f64 into u32 (saturating; 0 for NaN and below), a
/// value within 1e-9 of a whole number counting as that number. The simulator's
/// baseline autoscalers round instance counts the same way.
pub fn ceil_u32(x: f64) -> u32 {
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
