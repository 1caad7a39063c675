//! Work shared between the replays of one history (what `tune` does): the same
//! decisions and the same recommendation as the plain path.

use flexus_sim::capacity::{Flavor, lookup};
use flexus_sim::fit_cache::FitCache;
use flexus_sim::frontier::scaled_policy;
use flexus_sim::policy::PolicyAutoscaler;
use flexus_sim::replay::{Run, SimOptions, run};
use flexus_sim::simulation::{default_policy, parse_policy_for_tests};
use flexus_sim::trace::{self, Trace};
use flexus_sim::tune::{Measured, TuneRequest, tune};

fn flavor() -> Flavor {
    lookup("x1.2u.4g").expect("flavor")
}

/// Three days of worldcup98 (5-minute steps) at 40 instances at peak.
fn three_days() -> Trace {
    trace::load_named("worldcup98")
        .expect("trace")
        .scaled_to_fleet(&flavor(), 40)
        .slice(10 * 288, 3 * 288)
}

/// A policy that forecasts its own fleet's CPU: what it fits depends on the policy.
const CPU_FORECAST: &str = r#"{
  "strategy": "target_tracking",
  "evaluation_interval": "15s",
  "bounds": {"min": 1, "max": 1000},
  "metrics": [{"name": "cpu", "kind": "cpu", "source": {"type": "push"}, "target": 60}],
  "scale_in": {"stabilisation_window": "5m"},
  "prediction": {
    "enabled": true, "mode": "forecast_and_scale", "metric": "cpu",
    "target_per_instance": 60, "lead_time": "5m", "refit_interval": "1h"
  }
}"#;

fn replay(trace: &Trace, policy: &flexus_policy::Policy, cache: Option<&FitCache>) -> (Run, u64) {
    let mut a = PolicyAutoscaler::new("p", policy.clone()).expect("policy");
    if let Some(c) = cache {
        a = a.with_fit_cache(c.clone());
    }
    let r = run(trace, &mut a, &SimOptions::new(flavor())).expect("replay");
    (r, a.fits)
}

fn assert_same_run(a: &Run, b: &Run) {
    assert_eq!(a.series.supply, b.series.supply);
    assert_eq!(a.series.billed, b.series.billed);
    assert_eq!(a.series.slo_met, b.series.slo_met);
    assert_eq!(a.totals, b.totals);
}

#[test]
fn replays_sharing_fits_make_the_same_decisions_as_replays_that_fit_inline() {
    let t = three_days();
    let rate_policy = default_policy(&flavor()).expect("policy");
    for policy in [rate_policy.clone(), parse_policy_for_tests(CPU_FORECAST)] {
        let cache = FitCache::new();
        let (plain, fits) = replay(&t, &policy, None);
        assert!(fits > 3, "the replay refits its forecast ({fits} fits)");
        let (first, _) = replay(&t, &policy, Some(&cache));
        let (second, _) = replay(&t, &policy, Some(&cache));
        assert_same_run(&plain, &first);
        assert_same_run(&plain, &second);
        let stats = cache.stats();
        assert_eq!(stats.misses + stats.hits, 2 * fits);
        assert!(
            stats.hits >= fits,
            "the second replay finds its fits: {stats:?}"
        );
    }
    // Another candidate on the same history: the request rate it forecasts is the trace's,
    // so every fit is shared, and its decisions are still its own.
    let cache = FitCache::new();
    replay(&t, &rate_policy, Some(&cache));
    let other = scaled_policy(&rate_policy, 0.8);
    let before = cache.stats();
    let (shared, fits) = replay(&t, &other, Some(&cache));
    assert_eq!(cache.stats().hits - before.hits, fits);
    assert_eq!(cache.stats().misses, before.misses, "nothing fitted again");
    let (plain, _) = replay(&t, &other, None);
    assert_same_run(&plain, &shared);
    assert_ne!(
        plain.totals.cost,
        replay(&t, &rate_policy, None).0.totals.cost,
        "the candidates differ"
    );
}

#[test]
fn tune_sharing_work_recommends_what_the_plain_search_recommends() {
    let f = flavor();
    let day = three_days().slice(0, 288);
    let mut req = TuneRequest::new(day, f.clone(), default_policy(&f).expect("policy"), 0.02);
    req.max_evaluations = 10;
    let shared = tune(&req).expect("tune");
    req.reuse = false;
    let plain = tune(&req).expect("tune");
    assert_eq!(shared.after, plain.after);
    assert_eq!(shared.evaluations, plain.evaluations);
    let json = |v: &(Measured, Measured)| serde_json::to_string(v).expect("json");
    assert_eq!(json(&shared.tuning), json(&plain.tuning));
    assert_eq!(json(&shared.validation), json(&plain.validation));
    assert_eq!(shared.text(), plain.text());
    assert!(shared.fits.hits > shared.fits.misses, "{:?}", shared.fits);
    assert_eq!((plain.fits.hits, plain.fits.misses), (0, 0));
}
