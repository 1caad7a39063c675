//! Replays a pool's own recent load through `flexus-sim` (the same `replay::run` and
//! `PolicyAutoscaler` the simulator scores policies with), as the pool is and as
//! changed, so that every recommendation shows a measured before/after.

use flexus_api::{CostRecommendation, PoolSpec, ReplayEffect, ReplayScore};
use flexus_policy as fp;
use flexus_sim::capacity::{Flavor, catalogue};
use flexus_sim::policy::PolicyAutoscaler;
use flexus_sim::replay::{Autoscaler, Observation, run};
use flexus_sim::simulation::{SimulateOptions, sim_options};
use flexus_sim::trace::Trace;

use std::time::Duration;

use super::PriceTable;
use crate::store::{Store, StoreError, UsageHour, UsageScope};

/// At least this many samples with a load signal are needed to replay.
pub const MIN_SAMPLES: usize = 30;

/// How [`history`]'s refusal for too few samples begins.
pub const TOO_LITTLE: &str = "too little history to replay: ";

/// A pool's usage hours `from..=to` (hour starts, seconds) with their samples, and its
/// load on the replay grid of samples taken every `sample_interval` (`Err`: why there is
/// too little to replay) — what every replay of a pool's own history starts from.
pub async fn pool_history(
    store: &dyn Store,
    (ns, pool): (&str, &str),
    (from, to): (i64, i64),
    sample_interval: Duration,
) -> Result<(Vec<UsageHour>, Result<History, String>), StoreError> {
    let rows = store
        .usage_hours(UsageScope::Pool(ns, pool), from, to, true)
        .await?;
    let step = sample_interval.as_secs().clamp(1, 3600) as u32;
    let h = history(&rows, step, &format!("{ns}/{pool}"));
    Ok((rows, h))
}

/// A pool's recent load, on a regular grid.
#[derive(Debug, Clone)]
pub struct History {
    pub trace: Trace,
    /// Ready instances at the first sample.
    pub start_ready: u32,
}

impl History {
    pub fn hours(&self) -> f64 {
        self.trace.duration_s() / 3600.0
    }
}

/// The load of `rows` (with samples) on a grid of `step_s`, holding the last known load
/// across samples without one. `Err` says why there is too little.
pub fn history(rows: &[UsageHour], step_s: u32, name: &str) -> Result<History, String> {
    let mut samples: Vec<_> = rows.iter().flat_map(|r| r.samples.iter()).collect();
    samples.sort_by_key(|s| s.at_ms);
    let known: Vec<_> = samples.iter().filter(|s| s.load_rps.is_some()).collect();
    if known.len() < MIN_SAMPLES {
        return Err(format!(
            "{TOO_LITTLE}{} samples with a load signal, {MIN_SAMPLES} needed",
            known.len()
        ));
    }
    let step = i64::from(step_s.max(1)) * 1000;
    let (t0, t1) = (known[0].at_ms, known[known.len() - 1].at_ms);
    let mut rps = Vec::with_capacity(((t1 - t0) / step + 1) as usize);
    let mut i = 0;
    let mut t = t0;
    while t <= t1 {
        while i + 1 < known.len() && known[i + 1].at_ms <= t {
            i += 1;
        }
        rps.push(known[i].load_rps.unwrap_or(0.0));
        t += step;
    }
    let trace = Trace::from_rps(name, t0.div_euclid(1000), step_s.max(1), rps)
        .map_err(|e| e.to_string())?;
    Ok(History {
        trace,
        start_ready: known[0].ready,
    })
}

/// A fixed-size pool (no policy): the replay holds `n` instances.
#[derive(Debug)]
struct Fixed(u32);

impl Autoscaler for Fixed {
    fn name(&self) -> String {
        format!("fixed {}", self.0)
    }
    fn interval_s(&self) -> f64 {
        60.0
    }
    fn decide(&mut self, _obs: &Observation<'_>) -> Result<Option<u32>, flexus_sim::SimError> {
        Ok(Some(self.0))
    }
}

/// The pool as replayed: flavor (priced from the table), bounds, spot mix, policy.
#[derive(Debug, Clone)]
pub struct Setup {
    pub flavor: Flavor,
    pub min: u32,
    pub max: u32,
    /// The spot mix the pool buys by (its spot block's; all on-demand when spot is off).
    pub spot: fp::SpotMix,
    /// The policy as declared (`None`: a pool without one, held at `initial` within
    /// `min..=max`, as the agent holds it); replayed as the agent runs it
    /// ([`Setup::acting`]).
    pub policy: Option<fp::Policy>,
    /// The pool's `initial_size` (default `min`): the count a pool without a policy holds.
    pub initial: Option<u32>,
    pub spot_hazard_per_hour: f64,
}

impl Setup {
    /// The pool as it is: its flavor (with the pool's boot and warm-up times), bounds,
    /// spot mix and policy. `None` when the flavor is not in the capacity catalogue.
    pub fn of_pool(
        spec: &PoolSpec,
        policy: Option<fp::Policy>,
        prices: &PriceTable,
        hazard: f64,
    ) -> Option<Self> {
        let mut flavor = flexus_sim::capacity::lookup(&spec.flavor).ok()?;
        flavor.boot_s = f64::from(spec.boot_seconds);
        flavor.warmup_s = f64::from(spec.warmup_seconds);
        Some(Self {
            flavor: priced(flavor, prices),
            min: spec.min_size,
            max: spec.max_size.max(1),
            spot: crate::runtime::reconcile::pool_spot(spec),
            policy,
            initial: spec.initial_size,
            spot_hazard_per_hour: hazard,
        })
    }

    /// `policy` as the agent runs it on this pool: its bounds within the pool's
    /// `min..=max`, the pool's spot mix (whatever the policy declares), no initial count
    /// (a replay starts from the history's first ready count).
    pub fn acting(&self, policy: &fp::Policy) -> fp::Policy {
        let max = self.max.max(self.min).max(1);
        let mut p =
            crate::runtime::reconcile::held_to_pool(policy.clone(), (self.min, max), self.spot);
        p.bounds.initial = None;
        p
    }
}

fn priced(mut f: Flavor, prices: &PriceTable) -> Flavor {
    if let Some(p) = prices.get(&f.name) {
        f.price_per_hour = p.on_demand;
        f.spot_price_factor = if p.on_demand > 0.0 {
            p.spot / p.on_demand
        } else {
            0.0
        };
    }
    f
}

/// Replays `h` with `s`.
pub fn replay(h: &History, s: &Setup) -> Result<ReplayScore, String> {
    // Readings as the pool gets them (as the tuner replays it).
    let mut monitored = SimulateOptions {
        spot_fraction: (s.spot.spot_percentage / 100.0).clamp(0.0, 1.0),
        spot_hazard_per_hour: s.spot_hazard_per_hour,
        ..SimulateOptions::default()
    };
    if let Some(p) = &s.policy {
        flexus_sim::policy::monitor_as_pool(&mut monitored, p);
    }
    let mut o = sim_options(s.flavor.clone(), &monitored);
    o.min_instances = s.min;
    o.max_instances = s.max.max(s.min).max(1);
    o.initial_instances = Some(h.start_ready.clamp(o.min_instances, o.max_instances));
    let r = match &s.policy {
        Some(p) => {
            let mut a = PolicyAutoscaler::new("pool", s.acting(p)).map_err(|e| e.to_string())?;
            run(&h.trace, &mut a, &o)
        }
        None => {
            let held = s.initial.unwrap_or(s.min).clamp(s.min, o.max_instances);
            run(&h.trace, &mut Fixed(held.max(1)), &o)
        }
    }
    .map_err(|e| e.to_string())?;
    let sc = flexus_sim::scorecard::score(&r);
    Ok(ReplayScore {
        cost: sc.cost,
        instance_hours: sc.instance_hours,
        violation_minutes: sc.slo_violation_min,
        scaling_actions_per_hour: sc.actions_per_hour,
    })
}

/// Whether `after` is worth recommending over `before`: cheaper without more SLO
/// violation (one minute or 1 % of the replayed time of slack), or — when the pool
/// missed its SLO — fewer violation minutes.
fn better(before: &ReplayScore, after: &ReplayScore, hours: f64) -> bool {
    let slack = (hours * 60.0 * 0.01).max(1.0);
    let cheaper = after.cost < before.cost * 0.995
        && after.violation_minutes <= before.violation_minutes + slack;
    let safer = before.violation_minutes > slack
        && after.violation_minutes < before.violation_minutes - slack;
    cheaper || safer
}

fn candidate(
    h: &History,
    base: &ReplayScore,
    s: &Setup,
    rec: (&str, &str, String, String),
) -> Option<CostRecommendation> {
    let after = replay(h, s).ok()?;
    if !better(base, &after, h.hours()) {
        return None;
    }
    let (kind, setting, current, proposed) = rec;
    let summary = format!(
        "{setting} {current} -> {proposed}: cost {:.3} -> {:.3}, SLO violation {:.0} -> {:.0} min over {:.1} h replayed",
        base.cost,
        after.cost,
        base.violation_minutes,
        after.violation_minutes,
        h.hours()
    );
    Some(CostRecommendation {
        kind: kind.into(),
        setting: setting.into(),
        current,
        proposed,
        summary,
        effect: ReplayEffect {
            hours: h.hours(),
            before: base.clone(),
            after,
        },
    })
}

/// For a pool without a policy, the count it holds (its `initial_size`, default
/// `min_size`) replayed at other counts. When the pool misses its SLO: the smallest count
/// that meets it (else its `max_size`, when that misses less). Otherwise: the smallest
/// that is not worse (slack as in [`better`]). Violation minutes fall as the count rises,
/// so each is found by bisection (a few replays, whatever the bounds). The setting is
/// `initial_size` when the pool declares one (within `min_size..=max_size`), else
/// `min_size`, which the count follows.
fn held_size(
    h: &History,
    base: &ReplayScore,
    s: &Setup,
) -> Result<Option<CostRecommendation>, String> {
    let max = s.max.max(s.min).max(1);
    let held = s.initial.unwrap_or(s.min).clamp(s.min, max).max(1);
    let (setting, lo) = match s.initial {
        Some(_) => ("flexus_x_pool.initial_size", s.min.max(1)),
        None => ("flexus_x_pool.min_size", 1),
    };
    let at = |n: u32| {
        let mut c = s.clone();
        match c.initial {
            Some(_) => c.initial = Some(n),
            None => c.min = n,
        }
        c
    };
    let violation = |n: u32| replay(h, &at(n)).map(|r| r.violation_minutes);
    // The smallest n in lo..=hi with violation(n) <= limit, given violation(hi) <= limit.
    let smallest = |mut lo: u32, mut hi: u32, limit: f64| -> Result<u32, String> {
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if violation(mid)? <= limit {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        Ok(hi)
    };
    let slack = (h.hours() * 60.0 * 0.01).max(1.0);
    let proposed = if base.violation_minutes > slack {
        if held >= max {
            return Ok(None);
        }
        if violation(max)? <= slack {
            smallest(held + 1, max, slack)?
        } else {
            max
        }
    } else if lo < held {
        smallest(lo, held, base.violation_minutes + slack)?
    } else {
        return Ok(None);
    };
    if proposed == held {
        return Ok(None);
    }
    Ok(candidate(
        h,
        base,
        &at(proposed),
        ("size", setting, held.to_string(), proposed.to_string()),
    ))
}

/// The best change of one kind among `options` (lowest replayed cost among those worth it).
fn best(found: Vec<CostRecommendation>) -> Option<CostRecommendation> {
    found
        .into_iter()
        .min_by(|a, b| a.effect.after.cost.total_cmp(&b.effect.after.cost))
}

/// Recommendations for the pool's size (`min_size` with a policy; the count a pool without
/// one holds), spot share and flavor, each replayed.
pub fn recommendations(
    h: &History,
    base_setup: &Setup,
    prices: &PriceTable,
) -> Result<Vec<CostRecommendation>, String> {
    let base = replay(h, base_setup)?;
    let mut out = Vec::new();
    if base_setup.policy.is_some() {
        // min_size: one lower, one higher (the policy scales above it).
        let mins: Vec<u32> = [base_setup.min.checked_sub(1), Some(base_setup.min + 1)]
            .into_iter()
            .flatten()
            .filter(|m| *m <= base_setup.max)
            .collect();
        let found = mins
            .into_iter()
            .filter_map(|m| {
                let s = Setup {
                    min: m,
                    ..base_setup.clone()
                };
                candidate(
                    h,
                    &base,
                    &s,
                    (
                        "min_size",
                        "flexus_x_pool.min_size",
                        base_setup.min.to_string(),
                        m.to_string(),
                    ),
                )
            })
            .collect();
        out.extend(best(found));
    } else {
        out.extend(held_size(h, &base, base_setup)?);
    }
    // Spot share: the pool's spot block decides the mix (a policy's own is not used).
    let now = base_setup.spot.spot_percentage;
    let setting = if now > 0.0 {
        "flexus_x_pool.spot.spot_percentage"
    } else {
        "flexus_x_pool.spot { enabled = true, spot_percentage }"
    };
    let found = [0.0, 30.0, 60.0]
        .into_iter()
        .filter(|pct: &f64| (pct - now).abs() > 1.0)
        .filter_map(|pct| {
            let s = Setup {
                spot: fp::SpotMix {
                    spot_percentage: pct,
                    ..base_setup.spot
                },
                ..base_setup.clone()
            };
            candidate(
                h,
                &base,
                &s,
                (
                    "spot_share",
                    setting,
                    format!("{now:.0}%"),
                    format!("{pct:.0}%"),
                ),
            )
        })
        .collect();
    out.extend(best(found));
    // Flavor: the other flavors of the same kind (CPU or GPU) the cloud offers.
    let found = catalogue()
        .into_iter()
        .filter(|f| {
            f.name != base_setup.flavor.name && (f.gpus > 0) == (base_setup.flavor.gpus > 0)
        })
        .filter_map(|mut f| {
            f.boot_s = base_setup.flavor.boot_s;
            f.warmup_s = base_setup.flavor.warmup_s;
            let s = Setup {
                flavor: priced(f.clone(), prices),
                ..base_setup.clone()
            };
            candidate(
                h,
                &base,
                &s,
                (
                    "flavor",
                    "flexus_x_pool.flavor",
                    base_setup.flavor.name.clone(),
                    f.name,
                ),
            )
        })
        .collect();
    out.extend(best(found));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::UsageSample;

    fn rows(load: impl Fn(usize) -> f64, n: usize) -> Vec<UsageHour> {
        let mut h = UsageHour::new("ns", "p", 0, "x1.2u.4g");
        h.samples = (0..n)
            .map(|i| UsageSample {
                at_ms: i as i64 * 60_000,
                load_rps: Some(load(i)),
                ready: 4,
                billed: 4,
                desired: Some(4),
                forecast_capacity: None,
            })
            .collect();
        vec![h]
    }

    #[test]
    fn too_little_history_is_refused_with_a_reason() {
        let e = history(&rows(|_| 10.0, 5), 60, "p").unwrap_err();
        assert!(e.contains("5 samples"), "{e}");
    }

    fn fixed(f: Flavor, min: u32, max: u32, initial: Option<u32>) -> Setup {
        Setup {
            flavor: f,
            min,
            max,
            spot: fp::SpotMix::default(),
            policy: None,
            initial,
            spot_hazard_per_hour: 0.0,
        }
    }

    fn size_advice(h: &History, s: &Setup) -> Option<CostRecommendation> {
        let recs = recommendations(h, s, &PriceTable::default()).unwrap();
        assert!(recs.iter().all(|r| r.kind != "min_size"), "{recs:?}");
        recs.into_iter().find(|r| r.kind == "size")
    }

    #[test]
    fn an_oversized_fixed_pool_is_told_the_smallest_size_that_serves_it_as_well() {
        let f = flexus_sim::capacity::lookup("x1.2u.4g").unwrap();
        // Load that one instance serves comfortably, on a pool held at its min_size of 4.
        let h = history(&rows(|_| 0.3 * f.rps_at_slo(), 120), 60, "p").unwrap();
        let r = size_advice(&h, &fixed(f.clone(), 4, 8, None)).expect("a size recommendation");
        assert_eq!(
            (r.setting.as_str(), r.current.as_str(), r.proposed.as_str()),
            ("flexus_x_pool.min_size", "4", "1"),
            "{r:?}"
        );
        assert!(r.effect.after.cost < 0.3 * r.effect.before.cost, "{r:?}");
        assert!(r.effect.after.violation_minutes <= r.effect.before.violation_minutes + 1.0);
        // Held at an initial_size of 4 above a min_size of 1, as the agent holds it: the
        // replay bills 4 instances, and the advice is on initial_size (a lower min_size
        // would change nothing).
        let held = fixed(f.clone(), 1, 8, Some(4));
        let b = replay(&h, &held).unwrap();
        assert!(
            (b.instance_hours - 4.0 * h.hours()).abs() < 0.1,
            "{b:?} over {} h",
            h.hours()
        );
        let r = size_advice(&h, &held).expect("a size recommendation");
        assert_eq!(
            (r.setting.as_str(), r.current.as_str(), r.proposed.as_str()),
            ("flexus_x_pool.initial_size", "4", "1"),
            "{r:?}"
        );
        // An initial_size cannot go under min_size: held at 4 with min_size 3, 3 is offered.
        let r = size_advice(&h, &fixed(f, 3, 8, Some(4))).expect("a size recommendation");
        assert_eq!(r.proposed, "3", "{r:?}");
    }

    #[test]
    fn an_undersized_fixed_pool_is_told_the_smallest_size_that_meets_its_slo() {
        let f = flexus_sim::capacity::lookup("x1.2u.4g").unwrap();
        // 3.5 instances' worth of load at the SLO rate on a pool held at 2 of at most 40.
        let h = history(&rows(|_| 3.5 * f.rps_at_slo(), 120), 60, "p").unwrap();
        let held = fixed(f.clone(), 1, 40, Some(2));
        let r = size_advice(&h, &held).expect("a size recommendation");
        assert_eq!(
            (r.setting.as_str(), r.current.as_str(), r.proposed.as_str()),
            ("flexus_x_pool.initial_size", "2", "4"),
            "{r:?}"
        );
        assert!(r.effect.before.violation_minutes > 100.0, "{r:?}");
        assert!(r.effect.after.violation_minutes <= 1.0, "{r:?}");
        // One size fewer misses it: 4 is the smallest, not merely one that works.
        let three = replay(&h, &fixed(f.clone(), 1, 40, Some(3))).unwrap();
        assert!(three.violation_minutes > 1.0, "{three:?}");
        // Capped at max_size 3, the pool is told its max_size when that misses less: on
        // load of 2.5 and 3.5 instances' worth by turns, 3 serves half the minutes that 2
        // misses.
        let turns = history(
            &rows(
                |i| if i % 20 < 10 { 2.5 } else { 3.5 } * f.rps_at_slo(),
                120,
            ),
            60,
            "p",
        )
        .unwrap();
        let r =
            size_advice(&turns, &fixed(f.clone(), 1, 3, Some(2))).expect("a size recommendation");
        assert_eq!(r.proposed, "3", "{r:?}");
        assert!(
            r.effect.after.violation_minutes < 0.7 * r.effect.before.violation_minutes,
            "{r:?}"
        );
        // Where 3 misses as much as 2, nothing is offered.
        assert!(size_advice(&h, &fixed(f.clone(), 1, 3, Some(2))).is_none());
        // At max_size already: nothing to offer.
        assert!(size_advice(&h, &fixed(f, 1, 2, Some(2))).is_none());
    }

    fn rps_policy(f: &Flavor, bounds: (u32, u32), spot: &str) -> fp::Policy {
        fp::parse_json(&format!(
            r#"{{"strategy": "target_tracking", "bounds": {{"min": {}, "max": {}}}, {spot}
                "metrics": [{{"name": "rps", "kind": "custom", "source": {{"type": "push"}},
                              "target": {}, "per_instance": true}}]}}"#,
            bounds.0,
            bounds.1,
            0.8 * f.rps_at_slo()
        ))
        .unwrap()
    }

    fn pool(f: &Flavor, policy: fp::Policy) -> Setup {
        Setup {
            flavor: f.clone(),
            min: 1,
            max: 20,
            spot: fp::SpotMix::default(),
            policy: Some(policy),
            initial: None,
            spot_hazard_per_hour: 0.0,
        }
    }

    #[test]
    fn a_policy_narrower_than_its_pool_is_replayed_within_its_own_bounds() {
        let f = flexus_sim::capacity::lookup("x1.2u.4g").unwrap();
        // Two hours of a load that needs about eight instances.
        let h = history(&rows(|_| 6.0 * f.rps_at_slo(), 120), 60, "p").unwrap();
        let wide = replay(&h, &pool(&f, rps_policy(&f, (1, 20), ""))).unwrap();
        // The agent never runs this policy past 3 instances, whatever the pool allows.
        let narrow = replay(&h, &pool(&f, rps_policy(&f, (1, 3), ""))).unwrap();
        assert!(
            narrow.violation_minutes > wide.violation_minutes + 60.0
                && narrow.instance_hours < 0.5 * wide.instance_hours,
            "{narrow:?} against {wide:?}"
        );
    }

    #[test]
    fn the_spot_mix_is_the_pools_and_its_share_is_recommended_on_the_pool() {
        let f = flexus_sim::capacity::lookup("x1.2u.4g").unwrap();
        let h = history(&rows(|_| 6.0 * f.rps_at_slo(), 120), 60, "p").unwrap();
        let plain = rps_policy(&f, (1, 20), "");
        let spotty = rps_policy(
            &f,
            (1, 20),
            r#""spot": {"on_demand_base": 0, "spot_percentage": 60},"#,
        );
        // A policy's own spot mix is not what the agent buys by: on a pool with spot off
        // it costs what the same policy without one costs.
        let (a, b) = (
            replay(&h, &pool(&f, plain.clone())).unwrap(),
            replay(&h, &pool(&f, spotty)).unwrap(),
        );
        assert_eq!(a.cost, b.cost);
        // The pool's spot block is, and the recommendation names it.
        let prices = PriceTable::default();
        let recs = recommendations(&h, &pool(&f, plain.clone()), &prices).unwrap();
        let spot = recs
            .iter()
            .find(|r| r.kind == "spot_share")
            .expect("a spot recommendation");
        assert_eq!(
            (
                spot.setting.as_str(),
                spot.current.as_str(),
                spot.proposed.as_str()
            ),
            (
                "flexus_x_pool.spot { enabled = true, spot_percentage }",
                "0%",
                "60%"
            )
        );
        let on_spot = Setup {
            spot: fp::SpotMix {
                on_demand_base: 0,
                spot_percentage: 60.0,
            },
            ..pool(&f, plain)
        };
        assert!(replay(&h, &on_spot).unwrap().cost < 0.8 * a.cost);
        let recs = recommendations(&h, &on_spot, &prices).unwrap();
        assert!(
            recs.iter()
                .filter(|r| r.kind == "spot_share")
                .all(|r| r.setting == "flexus_x_pool.spot.spot_percentage"),
            "{recs:?}"
        );
    }

    #[test]
    fn a_pool_is_replayed_with_the_readings_its_policy_gets() {
        let f = flexus_sim::capacity::lookup("x1.2u.4g").unwrap();
        // Three hours of a load that doubles and halves every half hour.
        let rps = f.rps_at_slo();
        let h = history(
            &rows(
                |i| {
                    if (i / 30) % 2 == 0 {
                        3.0 * rps
                    } else {
                        6.0 * rps
                    }
                },
                180,
            ),
            60,
            "p",
        )
        .unwrap();
        let replayed = |period: &str| {
            let p: fp::Policy = fp::parse_json(&format!(
                r#"{{"strategy": "target_tracking", "bounds": {{"min": 1, "max": 20}},
                    "metrics": [{{"name": "rps", "kind": "custom", "source": {{"type": "push"}},
                                  "target": {}, "per_instance": true, "period": "{period}"}}]}}"#,
                0.8 * rps
            ))
            .unwrap();
            let s = Setup {
                flavor: f.clone(),
                min: 1,
                max: 20,
                spot: fp::SpotMix::default(),
                policy: Some(p),
                initial: None,
                spot_hazard_per_hour: 0.0,
            };
            replay(&h, &s).unwrap().violation_minutes
        };
        // Readings five minutes apart leave each doubling unserved for longer.
        let (fine, coarse) = (replayed("1m"), replayed("5m"));
        assert!(
            coarse > fine + 5.0,
            "{coarse} against {fine} violation minutes"
        );
    }
}
