//! Stabilisation windows, rate policies (HPA `behavior` semantics) and cooldowns.

use std::time::Duration;

use super::explain::Step;
use super::types::{BoundBy, DecisionInput, Direction, History};
use super::{CompiledPolicy, Run};
use crate::model::{RateKind, RatePolicy, SelectPolicy};
use crate::time::Timestamp;

/// HPA stabilisation: upLimit = min of the recommendations inside the scale-out window,
/// downLimit = max inside the scale-in window (both including this one); the result is
/// the current count clamped into [upLimit, downLimit].
pub(crate) fn stabilise(
    cp: &CompiledPolicy,
    input: &DecisionInput<'_>,
    current: u32,
    run: &mut Run,
) {
    let p = &cp.policy;
    let rec = run.value;
    let up_window = p.scale_out.stabilisation_window;
    let down_window = p.scale_in.stabilisation_window;
    let mut up_limit = rec;
    let mut down_limit = rec;
    let up_start = input.now.sub(up_window);
    let down_start = input.now.sub(down_window);
    if up_window > Duration::ZERO || down_window > Duration::ZERO {
        for r in input.history.recommendations.iter().rev() {
            if r.at > input.now {
                continue;
            }
            let in_up = up_window > Duration::ZERO && r.at > up_start;
            let in_down = down_window > Duration::ZERO && r.at > down_start;
            if !in_up && !in_down {
                break;
            }
            if in_up {
                up_limit = up_limit.min(r.desired);
            }
            if in_down {
                down_limit = down_limit.max(r.desired);
            }
        }
    }
    let stabilised = if current < up_limit {
        up_limit
    } else if current > down_limit {
        down_limit
    } else {
        current
    };
    if stabilised != rec {
        run.set(
            stabilised,
            BoundBy::Stabilisation,
            Step::Stabilisation {
                from: rec,
                to: stabilised,
            },
        );
    }
}

/// Instances added and removed by events inside (now − period, now].
fn changes_in_period(history: &History, now: Timestamp, period: Duration) -> (u32, u32) {
    let start = now.sub(period);
    let mut added = 0u32;
    let mut removed = 0u32;
    for e in history.events.iter().rev() {
        if e.at <= start {
            break;
        }
        if e.at > now {
            continue;
        }
        match e.direction() {
            Some(Direction::Out) => added = added.saturating_add(e.to - e.from),
            Some(Direction::In) => removed = removed.saturating_add(e.from - e.to),
            None => {}
        }
    }
    (added, removed)
}

/// The most instances allowed after scaling out now (HPA `calculateScaleUpLimitWithScalingRules`).
pub fn scale_up_limit(
    current: u32,
    history: &History,
    now: Timestamp,
    policies: &[RatePolicy],
    select: SelectPolicy,
) -> u32 {
    if select == SelectPolicy::Disabled {
        return current;
    }
    // Do not shrink because of past scale-ups: hold until the events leave the period.
    rate_policy_limit(Direction::Out, current, history, now, policies, select)
        .map_or(u32::MAX, |l| l.max(current))
}

/// The fewest instances allowed after scaling in now (HPA `calculateScaleDownLimitWithBehaviors`).
pub fn scale_down_limit(
    current: u32,
    history: &History,
    now: Timestamp,
    policies: &[RatePolicy],
    select: SelectPolicy,
) -> u32 {
    if select == SelectPolicy::Disabled {
        return current;
    }
    rate_policy_limit(Direction::In, current, history, now, policies, select)
        .map_or(0, |l| l.min(current))
}

/// The count the rate `policies` allow in direction `dir`, each from the count at the
/// start of its period: the policy allowing the biggest change wins (`Min`: the
/// smallest). `None` when there are no policies.
fn rate_policy_limit(
    dir: Direction,
    current: u32,
    history: &History,
    now: Timestamp,
    policies: &[RatePolicy],
    select: SelectPolicy,
) -> Option<u32> {
    let mut limit: Option<u32> = None;
    for pol in policies {
        let (added, removed) = changes_in_period(history, now, pol.period);
        let start = (i64::from(current) - i64::from(added) + i64::from(removed)).max(0) as f64;
        let value = f64::from(pol.value);
        let l = match (dir, pol.kind) {
            (Direction::Out, RateKind::Pods) => start + value,
            (Direction::Out, RateKind::Percent) => (start * (1.0 + value / 100.0)).ceil(),
            (Direction::In, RateKind::Pods) => (start - value).max(0.0),
            (Direction::In, RateKind::Percent) => (start * (1.0 - value / 100.0)).floor().max(0.0),
        };
        let l = l.min(f64::from(u32::MAX)) as u32;
        // The biggest change is the highest count out and the lowest count in.
        let highest = (dir == Direction::Out) != (select == SelectPolicy::Min);
        limit = Some(match limit {
            None => l,
            Some(x) if highest => x.max(l),
            Some(x) => x.min(l),
        });
    }
    limit
}

/// Rate policies per direction.
pub(crate) fn rate_limit(
    cp: &CompiledPolicy,
    input: &DecisionInput<'_>,
    current: u32,
    run: &mut Run,
) {
    let p = &cp.policy;
    let v = run.value;
    if v > current {
        let l = scale_up_limit(
            current,
            input.history,
            input.now,
            &p.scale_out.policies,
            p.scale_out.select,
        );
        if v > l {
            run.set(l, BoundBy::RateLimit, Step::RateLimit { from: v, to: l });
        }
    } else if v < current {
        let l = scale_down_limit(
            current,
            input.history,
            input.now,
            &p.scale_in.policies,
            p.scale_in.select,
        );
        if v < l {
            run.set(l, BoundBy::RateLimit, Step::RateLimit { from: v, to: l });
        }
    }
}

/// Cooldowns: scale-out waits `scale_out.cooldown` after the last scale-out; scale-in waits
/// `scale_in.cooldown` after the last action of either direction.
pub(crate) fn cooldown(
    cp: &CompiledPolicy,
    input: &DecisionInput<'_>,
    current: u32,
    run: &mut Run,
) {
    let p = &cp.policy;
    let v = run.value;
    let (last, cd) = if v > current {
        (input.history.last_scale_out, p.scale_out.cooldown)
    } else if v < current {
        (input.history.last_scale(), p.scale_in.cooldown)
    } else {
        return;
    };
    if cd == Duration::ZERO {
        return;
    }
    if let Some(t) = last {
        let since = input.now.since(t);
        if since < cd {
            run.set(
                current,
                BoundBy::Cooldown,
                Step::Cooldown {
                    from: v,
                    to: current,
                    remaining: cd - since,
                },
            );
        }
    }
}
