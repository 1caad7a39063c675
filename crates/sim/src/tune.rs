//! `tune`: search a policy's parameters by replaying a pool's history.
//!
//! Input: a request-rate history (a pool's recorded history or a trace), the
//! pool's flavor, the policy to start from, a violation budget (fraction of the
//! time the SLO may be missed) and an objective (cost or instance-hours). The
//! history is split ([`Split`]): the search replays only the first two thirds;
//! the result is then measured, before and after, on the last third (the whole
//! history is replayed and only the last third is scored), which the search
//! never saw.
//!
//! The search is CMA-ES (the `cmaes` crate) over the knobs that apply to the
//! policy ([`knobs`]), each mapped to `[0, 1]`, with a fixed seed (a tune is
//! deterministic), starting from the best of the policy as written and a few
//! scalings of its targets ([`LINE`]). The objective is
//! `objective / objective(start) + 50 · max(0, violation share − aim) / aim`, with
//! `aim = SAFETY · budget` and the violation share that of the tuning window's most
//! recent third ([`RECENT`]; the objective is over the whole window): within the aim it
//! is the relative cost, outside it a steep penalty. Aiming under the budget leaves
//! room for the later window to be harder than the tuning window (on worldcup98 a tune
//! aimed at the full 1 % budget reached 0.62 % on its tuning window and 1.55 % on the
//! window after it), and aiming on the most recent part weighs what the pool went
//! through last, the best guide to what comes next. The
//! start point is evaluated first and kept unless something beats it on the
//! tuning window. Nothing is applied: the caller gets the policy diff.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cmaes::{CMAESOptions, DVector};
use flexus_policy::{Metric, Policy, RateKind, RatePolicy, Strategy};
use serde::Serialize;

use crate::SimError;
use crate::capacity::Flavor;
use crate::fit_cache::{FitCache, FitStats};
use crate::frontier::{Split, eval_score, scaled_policy, with_noise_headroom};
use crate::policy::{PolicyAutoscaler, replay_period};
use crate::scorecard::Score;
use crate::simulation::SimulateOptions;
use crate::trace::Trace;

/// Share of the budget the search aims at on the tuning window's most recent part.
pub const SAFETY: f64 = 0.5;

/// The most recent part of the tuning window (a share of its length) on which the search
/// holds the budget's aim: what the pool went through last is the best guide to what comes
/// next. Chosen on the nested split (`docs/benchmarks.md` § `tune`: the aim on the most
/// recent third): within budget on the later window in 21 of 26 runs against 19 with the aim
/// on the whole window, 2.7 % fewer instance-hours where both were.
pub const RECENT: f64 = 1.0 / 3.0;

/// Shortest history `tune` accepts (minutes): 30 to tune, 15 to validate.
pub const MIN_HISTORY_MIN: f64 = 45.0;

/// What the search minimises within the violation budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Objective {
    /// Money (the flavor's price; spot at its discount).
    #[default]
    Cost,
    /// Billed instance-hours.
    InstanceHours,
}

/// What the search must stay within.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Aim {
    /// The violation budget: aim at [`SAFETY`] × `budget` on the tuning window.
    #[default]
    Budget,
    /// Beat HPA and AWS target tracking at their default targets on both measures (the
    /// `budget` is not used): on the tuning window, minimise the larger of the two ratios
    /// "violation share / the fewer of the two defaults'" and "instance-hours (or cost) /
    /// the fewer of the two defaults'". Below 1 the policy beats both on both; the
    /// minimum leaves the same relative margin on each measure for the later window.
    Baselines,
}

/// Target scales tried from the start before CMA-ES (the first knob's line); the search
/// then starts from the best of them and the start.
pub const LINE: [f64; 4] = [0.7, 0.85, 1.1, 1.25];

/// Highest `noise_headroom` the search tries: on spiky traces (nab-elb) a quiet hour's
/// mean jump is small against the spikes, so the multiple that covers them is large.
pub const NOISE_HEADROOM_MAX: f64 = 24.0;

/// A tuning request.
#[derive(Debug, Clone)]
pub struct TuneRequest {
    /// The history (requests/s per step), already scaled to the pool.
    pub history: Trace,
    /// The pool's flavor.
    pub flavor: Flavor,
    /// The policy to start from.
    pub policy: Policy,
    /// Share of the time the SLO may be missed (e.g. 0.01).
    pub budget: f64,
    /// What to minimise.
    pub objective: Objective,
    /// What to stay within.
    pub aim: Aim,
    /// Replays the search may spend (the start point included).
    pub max_evaluations: usize,
    /// Seed of the search.
    pub seed: u64,
    /// Replay options (monitoring period and delay, tick, spot).
    pub options: SimulateOptions,
    /// Share forecast fits between the replays (the same result: `false` is the plain
    /// path the tests compare with).
    pub reuse: bool,
    /// Set by the caller to give up: the tune stops before its next replay and
    /// [`tune`] returns [`SimError::Cancelled`] (a tune job whose agent is stopping).
    pub cancel: Option<Arc<AtomicBool>>,
}

impl TuneRequest {
    /// A request with the default search budget (60 replays, seed 1).
    pub fn new(history: Trace, flavor: Flavor, policy: Policy, budget: f64) -> Self {
        TuneRequest {
            history,
            flavor,
            policy,
            budget,
            objective: Objective::Cost,
            aim: Aim::Budget,
            max_evaluations: 60,
            seed: 1,
            options: SimulateOptions::default(),
            reuse: true,
            cancel: None,
        }
    }

    /// [`SimError::Cancelled`] once the caller set [`TuneRequest::cancel`]: checked
    /// before every replay.
    fn check_cancelled(&self) -> Result<(), SimError> {
        match &self.cancel {
            Some(c) if c.load(Ordering::Relaxed) => Err(SimError::Cancelled),
            _ => Ok(()),
        }
    }
}

/// One tunable parameter.
#[derive(Debug, Clone, Copy)]
pub struct Knob {
    /// The policy field it sets.
    pub name: &'static str,
    /// Lowest value searched.
    pub lo: f64,
    /// Highest value searched.
    pub hi: f64,
    get: fn(&Policy) -> f64,
    set: fn(&mut Policy, f64),
}

fn secs(v: f64) -> Duration {
    Duration::from_secs((v.max(0.0) / 15.0).round() as u64 * 15)
}

fn targeted(p: &Policy) -> impl Iterator<Item = &flexus_policy::Metric> {
    p.metrics.iter().filter(|m| m.target.is_some())
}

/// The knobs that apply to `policy`: the target scale always; scale-in window
/// and rate; the trend read-ahead, the square-root headroom and the noise headroom
/// under target tracking; the forecast's cap, lead and seasonality gate when
/// prediction is on.
pub fn knobs(policy: &Policy) -> Vec<Knob> {
    let mut k = vec![
        Knob {
            name: "targets (× every target)",
            lo: 0.6,
            hi: 1.5,
            get: |_| 1.0,
            set: |p, v| *p = scaled_policy(p, v),
        },
        Knob {
            name: "scale_in.stabilisation_window (s)",
            lo: 0.0,
            hi: 900.0,
            get: |p| p.scale_in.stabilisation_window.as_secs_f64(),
            set: |p, v| p.scale_in.stabilisation_window = secs(v),
        },
        Knob {
            name: "scale_in rate (% per minute)",
            lo: 5.0,
            hi: 100.0,
            get: |p| match p.scale_in.policies.first() {
                Some(r) if r.kind == RateKind::Percent => {
                    (f64::from(r.value) * 60.0 / r.period.as_secs_f64().max(1.0)).min(100.0)
                }
                _ => 100.0,
            },
            set: |p, v| {
                p.scale_in.policies = vec![RatePolicy {
                    kind: RateKind::Percent,
                    value: v.round().clamp(1.0, 100.0) as u32,
                    period: Duration::from_secs(60),
                }]
            },
        },
    ];
    if p_is_tt(policy) {
        k.push(Knob {
            name: "trend_lead (s)",
            lo: 0.0,
            hi: 600.0,
            get: |p| {
                targeted(p)
                    .next()
                    .map_or(0.0, |m| m.trend_lead.as_secs_f64())
            },
            set: |p, v| {
                for m in p.metrics.iter_mut().filter(|m| m.target.is_some()) {
                    m.trend_lead = secs(v);
                }
            },
        });
    }
    if p_is_tt(policy) {
        k.push(Knob {
            name: "sqrt_headroom",
            lo: 0.0,
            hi: 2.0,
            get: |p| targeted(p).next().map_or(0.0, |m| m.sqrt_headroom),
            set: |p, v| {
                for m in p.metrics.iter_mut().filter(|m| m.target.is_some()) {
                    m.sqrt_headroom = (v * 100.0).round() / 100.0;
                }
            },
        });
    }
    if p_is_tt(policy) {
        k.push(Knob {
            name: "noise_headroom",
            lo: 0.0,
            hi: NOISE_HEADROOM_MAX,
            get: |p| targeted(p).next().map_or(0.0, |m| m.noise_headroom),
            set: |p, v| *p = with_noise_headroom(p, (v * 10.0).round() / 10.0),
        });
    }
    if policy.prediction.enabled {
        k.push(Knob {
            name: "prediction.max_ratio",
            lo: 1.0,
            hi: 1.6,
            get: |p| p.prediction.max_ratio.unwrap_or(1.6),
            set: |p, v| p.prediction.max_ratio = Some((v * 100.0).round() / 100.0),
        });
        k.push(Knob {
            name: "prediction.lead_time (s)",
            lo: 60.0,
            hi: 900.0,
            get: |p| p.prediction.lead_time.as_secs_f64(),
            set: |p, v| p.prediction.lead_time = secs(v.max(60.0)),
        });
        k.push(Knob {
            name: "prediction.min_seasonal_strength",
            lo: 0.0,
            hi: 0.95,
            get: |p| p.prediction.min_seasonal_strength.unwrap_or(0.0),
            set: |p, v| {
                p.prediction.min_seasonal_strength =
                    (v >= 0.01).then(|| (v * 100.0).round() / 100.0)
            },
        });
    }
    k
}

fn p_is_tt(p: &Policy) -> bool {
    p.strategy == Strategy::TargetTracking
}

/// The policy at point `u` (one value in `[0, 1]` per knob, clamped).
pub fn policy_at(base: &Policy, knobs: &[Knob], u: &[f64]) -> Policy {
    let mut p = base.clone();
    for (k, &x) in knobs.iter().zip(u) {
        (k.set)(&mut p, k.lo + x.clamp(0.0, 1.0) * (k.hi - k.lo));
    }
    p
}

/// One side of the before/after comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    /// SLO-violation minutes.
    pub violation_min: f64,
    /// Share of the window's time in violation.
    pub violation_share: f64,
    /// Billed instance-hours.
    pub instance_hours: f64,
    /// Cost.
    pub cost: f64,
}

impl From<&Score> for Measured {
    fn from(s: &Score) -> Self {
        Measured {
            violation_min: s.slo_violation_min,
            violation_share: s.slo_violation_pct / 100.0,
            instance_hours: s.instance_hours,
            cost: s.cost,
        }
    }
}

/// One changed parameter.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// The policy field.
    pub field: String,
    /// Its value before.
    pub before: f64,
    /// Its value after.
    pub after: f64,
}

/// What `tune` found.
#[derive(Debug, Clone, Serialize)]
pub struct TuneResult {
    /// The policy it started from.
    pub before: Policy,
    /// The recommended policy.
    pub after: Policy,
    /// The parameters that changed.
    pub changes: Vec<Change>,
    /// The violation budget (share of time).
    pub budget: f64,
    /// Replays spent searching.
    pub evaluations: usize,
    /// Hours of history that tuned.
    pub tune_hours: f64,
    /// Hours of history that validated.
    pub validation_hours: f64,
    /// On the tuning window: before, after.
    pub tuning: (Measured, Measured),
    /// On the validation window: before, after.
    pub validation: (Measured, Measured),
    /// HPA and AWS target tracking at their default targets, on the tuning and the
    /// validation window (what `--aim baselines` must beat).
    pub baselines: Vec<BaselineDefault>,
    /// What the search stayed within.
    pub aim: Aim,
    /// What it minimised.
    pub objective: Objective,
    /// The violation share the search aimed at: on the tuning window's most recent part
    /// ([`RECENT`], `recent_hours`) for a budget; on the whole tuning window with `--aim
    /// baselines` (the fewer of the two baseline defaults' there).
    pub aimed_share: f64,
    /// Hours of the tuning window's most recent part.
    pub recent_hours: f64,
    /// The violation share there: before, after.
    pub recent_share: (f64, f64),
    /// Forecast fits made, and fits shared from another replay ([`TuneRequest::reuse`]).
    pub fits: FitStats,
}

/// A baseline at its default target, on both windows.
#[derive(Debug, Clone, Serialize)]
pub struct BaselineDefault {
    /// `hpa` or `aws-tt`.
    pub name: String,
    /// On the tuning window.
    pub tuning: Measured,
    /// On the validation window.
    pub validation: Measured,
}

impl BaselineDefault {
    /// Whether `m` has fewer violation minutes and fewer instance-hours than this
    /// baseline on the validation window.
    pub fn beaten_by(&self, m: &Measured) -> bool {
        m.violation_min < self.validation.violation_min
            && m.instance_hours < self.validation.instance_hours
    }
}

fn objective(s: &Score, o: Objective) -> f64 {
    measured_objective(&s.into(), o)
}

/// The better baseline default's objective on the tuning window.
fn fewest_objective(baselines: &[BaselineDefault], o: Objective) -> f64 {
    baselines
        .iter()
        .map(|b| measured_objective(&b.tuning, o))
        .fold(f64::INFINITY, f64::min)
}

fn measured_objective(m: &Measured, o: Objective) -> f64 {
    match o {
        Objective::Cost => m.cost,
        Objective::InstanceHours => m.instance_hours,
    }
}

/// Checks the request and the history's length.
pub fn check(req: &TuneRequest) -> Result<(), SimError> {
    if !(req.budget.is_finite() && req.budget > 0.0 && req.budget < 1.0) {
        return Err(SimError::BadOption {
            field: "budget",
            reason: format!(
                "the violation budget is a share of time in (0, 1), e.g. 0.01 for 1 %; got {}",
                req.budget
            ),
        });
    }
    let minutes = req.history.duration_s() / 60.0;
    if minutes < MIN_HISTORY_MIN {
        return Err(SimError::NotEnoughHistory {
            needed_min: MIN_HISTORY_MIN,
            got_min: minutes,
        });
    }
    if req.max_evaluations < 2 {
        return Err(SimError::BadOption {
            field: "max_evaluations",
            reason: format!("at least 2 replays are needed, got {}", req.max_evaluations),
        });
    }
    Ok(())
}

/// Runs the search and measures before/after on the validation window.
pub fn tune(req: &TuneRequest) -> Result<TuneResult, SimError> {
    check(req)?;
    let split = Split::of(&req.history);
    let tune_split = Split {
        tune: split.tune.clone(),
        eval_from_s: 0.0,
        total_s: split.tune.duration_s(),
    };
    // The search moves the headroom in effect at the replay's monitoring period.
    let base = settled(&req.policy, &req.options);
    let knobs = knobs(&base);
    let fit_cache = req.reuse.then(FitCache::new);
    let autoscaler = |name: &str, p: &Policy| -> Result<PolicyAutoscaler, SimError> {
        let a = PolicyAutoscaler::new(name, p.clone())?
            .with_forecast_bucket(req.options.forecast_bucket_s);
        Ok(match &fit_cache {
            Some(c) => a.with_fit_cache(c.clone()),
            None => a,
        })
    };
    let replay_tune = |p: &Policy| -> Result<Tried, SimError> {
        req.check_cancelled()?;
        let mut a = autoscaler("tuned", p)?;
        let (score, run) = eval_score(&split.tune, &tune_split, &req.flavor, &mut a, &req.options)?;
        Ok(Tried {
            score,
            recent_share: recent_share(&run),
        })
    };
    let base_tried = replay_tune(&base)?;
    let base_score = base_tried.score.clone();
    let scale = objective(&base_score, req.objective).max(1e-9);
    let budget = req.budget;
    let baselines = baseline_defaults(req, &split, &tune_split)?;
    let aim = aimed_share(req, &baselines);
    // One tick of the part the aim holds on: the unit of the penalty when the aim is zero.
    let tick_share = |part_s: f64| req.options.tick_s / part_s.max(req.options.tick_s);
    let recent_s = RECENT * tune_split.total_s;
    // `--aim baselines`: the better of the two defaults on each measure, on the tuning window.
    let fewest = fewest_objective(&baselines, req.objective).max(1e-9);
    let penalised = |t: &Tried| {
        let s = &t.score;
        match req.aim {
            Aim::Budget => {
                objective(s, req.objective) / scale
                    + 50.0 * ((t.recent_share - aim).max(0.0) / aim.max(tick_share(recent_s)))
            }
            Aim::Baselines => {
                let share = s.slo_violation_pct / 100.0;
                (share / aim.max(tick_share(tune_split.total_s)))
                    .max(objective(s, req.objective) / fewest)
            }
        }
    };
    let found = search(req, &base, &knobs, &base_tried, &replay_tune, &penalised)?;
    let best = found.best;
    let evaluations = found.evaluations;
    let after = unsettled(&best.1, &req.policy, &req.options);
    let validate = |p: &Policy| -> Result<Score, SimError> {
        req.check_cancelled()?;
        let mut a = autoscaler("validate", p)?;
        Ok(eval_score(&req.history, &split, &req.flavor, &mut a, &req.options)?.0)
    };
    let (vb, va) = (validate(&req.policy)?, validate(&after)?);
    let changes = knobs
        .iter()
        .map(|k| Change {
            field: coarse_name(k.name, &req.policy, &req.options),
            before: (k.get)(&base),
            after: if k.name.starts_with("targets") {
                ratio_of_targets(&base, &best.1)
            } else {
                (k.get)(&best.1)
            },
        })
        .filter(|c| (c.before - c.after).abs() > 1e-9)
        .collect();
    let fits = fit_cache.map(|c| c.stats()).unwrap_or_default();
    Ok(TuneResult {
        before: req.policy.clone(),
        after,
        changes,
        budget,
        evaluations,
        tune_hours: split.tune.duration_s() / 3600.0,
        validation_hours: (split.total_s - split.eval_from_s) / 3600.0,
        tuning: ((&base_score).into(), (&best.2.score).into()),
        recent_hours: recent_s / 3600.0,
        recent_share: (base_tried.recent_share, best.2.recent_share),
        validation: ((&vb).into(), (&va).into()),
        baselines,
        aim: req.aim,
        objective: req.objective,
        aimed_share: aim,
        fits,
    })
}

/// What [`search`] found: the best (penalised value, policy, its replay) and the replays spent.
struct Found {
    best: (f64, Policy, Tried),
    evaluations: usize,
}

/// A candidate replayed on the tuning window: its score there, and its violation share
/// in the window's last [`RECENT`] part, which the budget's aim holds on.
#[derive(Clone)]
struct Tried {
    score: Score,
    recent_share: f64,
}

/// The share of `run`'s ticks in its last [`RECENT`] part that missed the SLO.
fn recent_share(run: &crate::replay::Run) -> f64 {
    let met = &run.series.slo_met;
    let from = ((1.0 - RECENT) * met.len() as f64).round() as usize;
    let part = &met[from.min(met.len())..];
    part.iter().filter(|m| !**m).count() as f64 / part.len().max(1) as f64
}

/// CMA-ES from `base_policy` (the request's policy with its headroom settled, already
/// scored as `base`), each candidate replayed on the tuning window.
fn search(
    req: &TuneRequest,
    base_policy: &Policy,
    knobs: &[Knob],
    base: &Tried,
    replay_tune: &dyn Fn(&Policy) -> Result<Tried, SimError>,
    penalised: &dyn Fn(&Tried) -> f64,
) -> Result<Found, SimError> {
    let mut best = (penalised(base), base_policy.clone(), base.clone());
    let mut evaluations = 1usize;
    let mut failure: Option<SimError> = None;
    let mut start: Vec<f64> = knobs
        .iter()
        .map(|k| (((k.get)(base_policy) - k.lo) / (k.hi - k.lo)).clamp(0.0, 1.0))
        .collect();
    {
        // A line over the first knob (every target scaled) from the start: the knob that
        // moves both measures most; CMA-ES then starts from the best point of the line.
        let k = &knobs[0];
        for scale in LINE {
            if evaluations + 1 >= req.max_evaluations {
                break;
            }
            let mut u = start.clone();
            u[0] = ((scale * (k.get)(base_policy) - k.lo) / (k.hi - k.lo)).clamp(0.0, 1.0);
            let p = policy_at(base_policy, knobs, &u);
            evaluations += 1;
            let s = replay_tune(&p)?;
            let v = penalised(&s);
            if v < best.0 {
                best = (v, p, s);
                start = u;
            }
        }
    }
    let budget_left = req.max_evaluations - evaluations;
    {
        let f = |x: &DVector<f64>| -> f64 {
            let u: Vec<f64> = x.iter().copied().collect();
            if failure.is_some() {
                // One replay failed (or the search was cancelled): spend no more.
                return f64::MAX / 4.0;
            }
            let outside: f64 = u.iter().map(|v| (v - v.clamp(0.0, 1.0)).abs()).sum();
            let p = policy_at(base_policy, knobs, &u);
            evaluations += 1;
            match replay_tune(&p) {
                Ok(s) => {
                    let v = penalised(&s) + outside;
                    if v < best.0 {
                        best = (v, p, s);
                    }
                    v
                }
                Err(e) => {
                    failure.get_or_insert(e);
                    f64::MAX / 4.0
                }
            }
        };
        let mut cma = CMAESOptions::new(start, 0.2)
            .max_function_evals(budget_left)
            .seed(req.seed)
            .build(f)
            .map_err(|e| SimError::BadOption {
                field: "optimiser",
                reason: format!("{e:?}"),
            })?;
        cma.run();
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(Found { best, evaluations }),
    }
}

/// HPA and AWS target tracking at the flavor's default target, replayed on the tuning
/// window and on the whole history (scored on the validation window).
fn baseline_defaults(
    req: &TuneRequest,
    split: &Split,
    tune_split: &Split,
) -> Result<Vec<BaselineDefault>, SimError> {
    ["hpa", "aws-tt"]
        .into_iter()
        .map(|name| {
            let on = |trace: &Trace, w: &Split| -> Result<Measured, SimError> {
                req.check_cancelled()?;
                let mut a = crate::simulation::baseline(name, &req.flavor, &req.options)?;
                Ok((&eval_score(trace, w, &req.flavor, a.as_mut(), &req.options)?.0).into())
            };
            Ok(BaselineDefault {
                name: name.to_owned(),
                tuning: on(&split.tune, tune_split)?,
                validation: on(&req.history, split)?,
            })
        })
        .collect()
}

/// The violation share the search aims at on the tuning window.
fn aimed_share(req: &TuneRequest, baselines: &[BaselineDefault]) -> f64 {
    match req.aim {
        Aim::Budget => req.budget * SAFETY,
        Aim::Baselines => baselines
            .iter()
            .map(|b| b.tuning.violation_share)
            .fold(f64::INFINITY, f64::min),
    }
}

/// `policy` with each metric's headroom in effect at the replay's period written into its
/// own `sqrt_headroom` / `noise_headroom` ([`Metric::settled`]).
fn settled(policy: &Policy, o: &SimulateOptions) -> Policy {
    let mut p = policy.clone();
    for m in &mut p.metrics {
        *m = m.settled(replay_period(m, o.metric_period_s));
    }
    p
}

/// The searched policy `found` (a [`settled`] form of `original`) with `original`'s
/// `coarse_*` settings back, the searched headroom where it takes effect.
fn unsettled(found: &Policy, original: &Policy, o: &SimulateOptions) -> Policy {
    let mut p = found.clone();
    for (m, orig) in p.metrics.iter_mut().zip(&original.metrics) {
        *m = m.unsettled(orig, replay_period(orig, o.metric_period_s));
    }
    p
}

/// A knob's field as the recommendation writes it: `coarse_sqrt_headroom` /
/// `coarse_noise_headroom` when the search moved that value for a coarse source.
fn coarse_name(knob: &str, policy: &Policy, o: &SimulateOptions) -> String {
    let coarse = |pick: fn(&Metric) -> Option<f64>| {
        targeted(policy).next().is_some_and(|m| {
            m.headroom_at(replay_period(m, o.metric_period_s)).coarse && pick(m).is_some()
        })
    };
    match knob {
        "sqrt_headroom" if coarse(|m| m.coarse_sqrt_headroom) => "coarse_sqrt_headroom".into(),
        "noise_headroom" if coarse(|m| m.coarse_noise_headroom) => "coarse_noise_headroom".into(),
        _ => knob.to_owned(),
    }
}

fn ratio_of_targets(before: &Policy, after: &Policy) -> f64 {
    let a = targeted(before).next().and_then(|m| m.target);
    let b = targeted(after).next().and_then(|m| m.target);
    match (a, b) {
        (Some(a), Some(b)) if a > 0.0 => ((b / a) * 1000.0).round() / 1000.0,
        _ => 1.0,
    }
}

impl TuneResult {
    /// The report: the policy diff and before/after on both windows.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "tuned on {:.1} h, validated on the next {:.1} h ({} replays), budget {:.2} % of the time in violation",
            self.tune_hours,
            self.validation_hours,
            self.evaluations,
            self.budget * 100.0
        );
        if self.changes.is_empty() {
            out.push_str("no change: nothing beat the current policy on the tuning window\n");
        }
        for c in &self.changes {
            let _ = writeln!(out, "  {}: {} -> {}", c.field, num(c.before), num(c.after));
        }
        match self.aim {
            Aim::Budget => {
                let _ = writeln!(
                    out,
                    "aimed at {:.2} % of the time in violation on the tuning window's last {:.1} h: {:.2} % before, {:.2} % after",
                    self.aimed_share * 100.0,
                    self.recent_hours,
                    self.recent_share.0 * 100.0,
                    self.recent_share.1 * 100.0
                );
            }
            Aim::Baselines => {
                let (unit, fewest) = self.fewest_baseline_objective();
                let (v, o) = self.baseline_ratios(&self.tuning.1);
                let v = if self.aimed_share > 0.0 {
                    format!("{v:.2} ×")
                } else {
                    format!("{:.0} violation min", self.tuning.1.violation_min)
                };
                let _ = writeln!(
                    out,
                    "aimed at beating both baselines' defaults on the tuning window: under {:.2} % of the time in violation and {fewest:.1} {unit}; reached {v} and {o:.2} × those",
                    self.aimed_share * 100.0
                );
                if self.aimed_share <= 0.0 {
                    let _ = writeln!(
                        out,
                        "note: a baseline default has no violation on the tuning window, so nothing can have fewer there; the search allowed none"
                    );
                } else if !self.beats_baselines_on_tuning() {
                    let _ = writeln!(
                        out,
                        "note: no setting tried beats both defaults on both measures even on the tuning window; this is the nearest found (more replays, --evaluations, may find a closer one)"
                    );
                }
            }
        }
        let recent_min = self.recent_hours * 60.0;
        if self.aim == Aim::Budget && self.aimed_share * recent_min < 1.0 {
            let _ = writeln!(
                out,
                "note: that is under one minute of those {recent_min:.0} minutes, so the search allows no violation at all and pays for it in instances; a longer history gives a cheaper recommendation"
            );
        }
        for (name, (b, a)) in [("tuning", &self.tuning), ("validation", &self.validation)] {
            let _ = writeln!(
                out,
                "{name:<10}  before: {:>7.0} violation min ({:.2} %), {:>9.1} instance-hours, cost {:>9.1}\n{:<10}  after:  {:>7.0} violation min ({:.2} %), {:>9.1} instance-hours, cost {:>9.1}",
                b.violation_min,
                b.violation_share * 100.0,
                b.instance_hours,
                b.cost,
                "",
                a.violation_min,
                a.violation_share * 100.0,
                a.instance_hours,
                a.cost
            );
        }
        for b in &self.baselines {
            let _ = writeln!(
                out,
                "{:<10}  default: {:>6.0} violation min ({:.2} %), {:>9.1} instance-hours on tuning; {:>6.0} min, {:>9.1} h on validation: {}",
                b.name,
                b.tuning.violation_min,
                b.tuning.violation_share * 100.0,
                b.tuning.instance_hours,
                b.validation.violation_min,
                b.validation.instance_hours,
                if b.beaten_by(&self.validation.1) {
                    "beaten on both"
                } else {
                    "not beaten on both"
                }
            );
        }
        if let Some(w) = self.budget_warning() {
            let _ = writeln!(out, "warning: {w}");
        }
        out
    }

    /// Whether the recommendation stays within the violation budget on the validation
    /// window (the later history it was not tuned on); `None` when the search aimed at
    /// the baselines instead ([`beats_baselines`](Self::beats_baselines) says how that went).
    pub fn within_budget(&self) -> Option<bool> {
        (self.aim == Aim::Budget).then_some(self.validation.1.violation_share <= self.budget)
    }

    /// The warning a recommendation over its budget on the validation window deserves,
    /// or `None` within it.
    pub fn budget_warning(&self) -> Option<String> {
        if self.within_budget() != Some(false) {
            return None;
        }
        let (before, after) = (&self.validation.0, &self.validation.1);
        let current = if before.violation_share <= self.budget {
            format!(
                "the current policy stays within it ({:.2} %)",
                before.violation_share * 100.0
            )
        } else {
            format!(
                "so is the current policy ({:.2} %)",
                before.violation_share * 100.0
            )
        };
        Some(format!(
            "on the validation window the recommendation is in violation {:.2} % of the time ({:.0} min), over the {:.2} % budget; {current}. The later history was harder than the part it was tuned on: review the recommendation before applying it, or tune again once the history covers load like the later part's",
            after.violation_share * 100.0,
            after.violation_min,
            self.budget * 100.0,
        ))
    }

    /// The better baseline default's objective on the tuning window, and its unit.
    fn fewest_baseline_objective(&self) -> (&'static str, f64) {
        let unit = match self.objective {
            Objective::Cost => "cost",
            Objective::InstanceHours => "instance-hours",
        };
        (unit, fewest_objective(&self.baselines, self.objective))
    }

    /// `m` on the tuning window relative to the better baseline default on each measure:
    /// (violation share, objective); both under 1 beats both defaults on both there. With
    /// no baseline violation the first is 0 without violation and infinite with some.
    pub fn baseline_ratios(&self, m: &Measured) -> (f64, f64) {
        let (_, fewest) = self.fewest_baseline_objective();
        let v = if self.aimed_share > 0.0 {
            m.violation_share / self.aimed_share
        } else if m.violation_share > 0.0 {
            f64::INFINITY
        } else {
            0.0
        };
        (v, measured_objective(m, self.objective) / fewest.max(1e-9))
    }

    /// Whether the recommendation beats both baseline defaults on both measures on the
    /// tuning window (violation share and the objective, each below the better default's).
    pub fn beats_baselines_on_tuning(&self) -> bool {
        let m = &self.tuning.1;
        !self.baselines.is_empty()
            && self.baselines.iter().all(|b| {
                m.violation_share < b.tuning.violation_share
                    && measured_objective(m, self.objective)
                        < measured_objective(&b.tuning, self.objective)
            })
    }

    /// Whether the recommendation has fewer violation minutes and fewer instance-hours
    /// than both baselines' defaults on the validation window.
    pub fn beats_baselines(&self) -> bool {
        !self.baselines.is_empty()
            && self
                .baselines
                .iter()
                .all(|b| b.beaten_by(&self.validation.1))
    }
}

fn num(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}
