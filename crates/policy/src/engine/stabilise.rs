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
    if policies.is_empty() {
        return u32::MAX;
    }
    let mut limit: Option<u32> = None;
    for pol in policies {
        let (added, removed) = changes_in_period(history, now, pol.period);
        let start = i64::from(current) - i64::from(added) + i64::from(removed);
        let start = start.max(0) as f64;
        let l = match pol.kind {
            RateKind::Pods => start + f64::from(pol.value),
            RateKind::Percent => (start * (1.0 + f64::from(pol.value) / 100.0)).ceil(),
        };
        let l = l.min(f64::from(u32::MAX)) as u32;
        limit = Some(match (limit, select) {
            (None, _) => l,
            (Some(x), SelectPolicy::Min) => x.min(l),
            (Some(x), _) => x.max(l),
        });
    }
    // Do not shrink because of past scale-ups: hold until the events leave the period.
    limit.unwrap_or(u32::MAX).max(current)
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
    if policies.is_empty() {
        return 0;
    }
    let mut limit: Option<u32> = None;
    for pol in policies {
        let (added, removed) = changes_in_period(history, now, pol.period);
        let start = (i64::from(current) - i64::from(added) + i64::from(removed)).max(0) as f64;
        let l = match pol.kind {
            RateKind::Pods => (start - f64::from(pol.value)).max(0.0),
            RateKind::Percent => (start * (1.0 - f64::from(pol.value) / 100.0))
                .floor()
                .max(0.0),
        };
        let l = l.min(f64::from(u32::MAX)) as u32;
        limit = Some(match (limit, select) {
            (None, _) => l,
            // Max = the biggest change = the lowest count.
            (Some(x), SelectPolicy::Min) => x.max(l),
            (Some(x), _) => x.min(l),
        });
    }
    limit.unwrap_or(0).min(current)
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
