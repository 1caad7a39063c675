//! The policy a pool is decided with: its declared policy made to fit the pool, or
//! the `fixed` strategy for a pool without one.

use std::time::Duration;

use flexus_api::{PolicySpec, PoolSpec};
use flexus_policy as fp;

/// The pool's policy as the engine sees it: bounds intersected with the pool's
/// declared bounds, the spot mix from the pool's spot block (enabled and dry-run are
/// the policy's own). A pool without a policy is held at `initial_size` (default
/// `min_size`) by the `fixed` strategy.
pub fn effective_policy(pool: &PoolSpec, spec: Option<&PolicySpec>) -> fp::Policy {
    let mut p = match spec {
        Some(s) => s.policy.clone(),
        None => fixed_policy(pool),
    };
    if p.bounds.initial.is_none() {
        p.bounds.initial = pool.initial_size;
    }
    held_to_pool(p, (pool.min_size, pool.max_size), pool_spot(pool))
}

/// The spot mix a pool buys by: its spot block's, all on-demand when spot is off.
pub fn pool_spot(pool: &PoolSpec) -> fp::SpotMix {
    if pool.spot.enabled {
        fp::SpotMix {
            on_demand_base: pool.spot.on_demand_base,
            spot_percentage: f64::from(pool.spot.spot_percentage),
        }
    } else {
        fp::SpotMix::default()
    }
}

/// `p` as the agent runs it in a pool of `min..=max` instances buying by `spot`: its
/// bounds (and initial and fixed counts) within the pool's, the pool's spot mix whatever
/// the policy declares. What the reconcile loop decides with ([`effective_policy`]) and
/// what every replay of a pool runs (`cost::replay::Setup::acting`).
pub fn held_to_pool(mut p: fp::Policy, (min, max): (u32, u32), spot: fp::SpotMix) -> fp::Policy {
    p.bounds.min = p.bounds.min.max(min).min(max);
    p.bounds.max = p.bounds.max.min(max).max(p.bounds.min);
    if let Some(i) = p.bounds.initial {
        p.bounds.initial = Some(i.clamp(p.bounds.min, p.bounds.max));
    }
    // A fixed count outside the pool's bounds is clamped to them (as documented),
    // not a policy the engine refuses on every pass.
    if let Some(f) = p.fixed.as_mut() {
        f.count = f.count.clamp(p.bounds.min, p.bounds.max);
    }
    p.spot = spot;
    p
}

/// The policy of a pool without one: the `fixed` strategy holds `initial_size`
/// (default `min_size`) within the pool's bounds; a lowered count is applied at once
/// (no stabilisation window).
fn fixed_policy(pool: &PoolSpec) -> fp::Policy {
    let count = pool
        .initial_size
        .unwrap_or(pool.min_size)
        .clamp(pool.min_size, pool.max_size);
    let bounds = fp::Bounds {
        min: pool.min_size,
        max: pool.max_size,
        initial: None,
    };
    let mut p = fp::Policy::fixed(bounds, count);
    p.scale_in.stabilisation_window = Duration::ZERO;
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(min: u32, max: u32, initial: Option<u32>) -> PoolSpec {
        let mut s: PoolSpec = serde_json::from_value(serde_json::json!({
            "flavor": "x1.2u.4g", "image": "i", "vpc_id": "v", "subnet_ids": ["s"],
            "min_size": min, "max_size": max
        }))
        .unwrap();
        s.initial_size = initial;
        s
    }

    fn policy_spec(policy: serde_json::Value, dry_run: bool) -> PolicySpec {
        let mut policy: fp::Policy = serde_json::from_value(policy).unwrap();
        policy.dry_run = dry_run;
        PolicySpec {
            pool: "p".into(),
            policy,
        }
    }

    #[test]
    fn a_pool_without_policy_is_held_at_its_initial_size_by_the_fixed_strategy() {
        let p = effective_policy(&spec(1, 5, Some(3)), None);
        assert_eq!(p.strategy, fp::Strategy::Fixed);
        assert!(p.metrics.is_empty(), "no make-believe signal");
        let cp = fp::CompiledPolicy::new(p).expect("the built-in policy compiles");
        let pool = fp::PoolState::default();
        let h = fp::History::new();
        let d = fp::decide(
            &cp,
            &fp::DecisionInput {
                now: fp::Timestamp::from_secs(1000),
                observations: &[],
                pool: &pool,
                history: &h,
                prediction: None,
            },
        );
        assert_eq!(d.desired, 3, "{:?}", d.explanation);
        assert_eq!(d.bound_by, Some(fp::BoundBy::Fixed));
        assert!(
            d.explanation
                .iter()
                .any(|s| s.to_string() == "fixed strategy holds 3"),
            "{:?}",
            d.explanation
        );
    }

    #[test]
    fn a_fixed_count_outside_the_pool_bounds_is_clamped_to_them() {
        let ps = policy_spec(
            serde_json::json!({
                "strategy": "fixed", "bounds": {"min": 1, "max": 3}, "fixed": {"count": 1}
            }),
            false,
        );
        let p = effective_policy(&spec(2, 2, None), Some(&ps));
        assert_eq!(p.fixed.as_ref().map(|f| f.count), Some(2));
        fp::CompiledPolicy::new(p).expect("the clamped policy compiles");
        let p = effective_policy(&spec(3, 5, None), Some(&ps));
        assert_eq!(p.fixed.as_ref().map(|f| f.count), Some(3));
    }

    #[test]
    fn policy_bounds_never_leave_the_pool_bounds() {
        let ps = policy_spec(
            serde_json::json!({
                "strategy": "target_tracking", "bounds": {"min": 0, "max": 100},
                "metrics": [{"name": "cpu", "kind": "cpu", "source": {"type": "push"}, "target": 60}]
            }),
            true,
        );
        let p = effective_policy(&spec(2, 8, None), Some(&ps));
        assert_eq!((p.bounds.min, p.bounds.max), (2, 8));
        assert!(p.dry_run);
    }
}
