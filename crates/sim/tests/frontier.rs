//! The cost/SLO frontier and the tuning/evaluation windows.

use flexus_sim::capacity::lookup;
use flexus_sim::frontier::{BUDGETS, Family, Split, sweep, write_svg};
use flexus_sim::replay::run;
use flexus_sim::simulation::{SimulateOptions, baseline, default_policy, sim_options};
use flexus_sim::trace;

fn worldcup_half_day() -> trace::Trace {
    let f = lookup("x1.2u.4g").expect("flavor");
    trace::load_named("worldcup98")
        .expect("trace")
        .scaled_to_fleet(&f, 40)
        .slice(11 * 288 + 144, 144)
}

#[test]
fn a_trace_tunes_on_its_first_two_thirds_and_evaluates_on_the_last_third() {
    let t = worldcup_half_day();
    let s = Split::of(&t);
    assert_eq!(s.tune.rps.len(), 96);
    assert_eq!(s.tune.rps[..], t.rps[..96]);
    assert_eq!(s.eval_from_s, 96.0 * 300.0);
    assert_eq!(s.eval_tick(15.0), 96 * 20);
    assert_eq!(s.eval_minutes(), 48.0 * 5.0);
}

#[test]
fn a_windowed_run_adds_up_to_the_whole_run_from_tick_zero() {
    let t = worldcup_half_day();
    let f = lookup("x1.2u.4g").expect("flavor");
    let opts = SimulateOptions::default();
    let mut hpa = baseline("hpa", &f, &opts).expect("hpa");
    let r = run(&t, hpa.as_mut(), &sim_options(f.clone(), &opts)).expect("run");
    let whole = r.window(0);
    assert!((whole.totals.cost - r.totals.cost).abs() < 1e-6);
    assert_eq!(whole.totals.actions, r.totals.actions);
    let late = r.window(1000);
    assert_eq!(late.series.demand.len(), r.series.demand.len() - 1000);
    let early: f64 = r.series.ticks[..1000].iter().map(|t| t.cost).sum();
    assert!((late.totals.cost + early - r.totals.cost).abs() < 1e-6);
}

#[test]
fn the_frontier_gives_each_family_its_cheapest_setting_within_each_budget() {
    let t = worldcup_half_day();
    let f = lookup("x1.2u.4g").expect("flavor");
    let policy = default_policy(&f).expect("default");
    let fr = sweep(&t, &f, &policy, &SimulateOptions::default(), &mut |_| {}).expect("sweep");
    // 13 targets + the default for both baselines, 10 policy scales, 6 noise headrooms.
    assert_eq!(fr.points.len(), 2 * 14 + 10 + 6);
    for family in Family::ALL {
        assert_eq!(
            fr.points
                .iter()
                .filter(|p| p.family == family && p.default)
                .count(),
            usize::from(family != Family::PolicyNoise),
            "{family:?} has one default (the noise headroom's is the policy's)"
        );
        for &b in &BUDGETS {
            let budget = fr.budget_minutes(b);
            if let Some(best) = fr.best(family, budget) {
                assert!(best.violation_min <= budget);
                for p in fr.points.iter().filter(|p| p.family == family) {
                    assert!(
                        p.violation_min > budget || p.instance_hours >= best.instance_hours,
                        "{p:?} is cheaper than the best {best:?}"
                    );
                }
            }
        }
    }
    // The lower bound is below every point that meets the budget.
    for (i, &b) in BUDGETS.iter().enumerate() {
        let budget = fr.budget_minutes(b);
        for p in fr.points.iter().filter(|p| p.violation_min <= budget) {
            assert!(
                fr.bounds[i] <= p.instance_hours + 1e-9,
                "{p:?} under the bound"
            );
        }
    }
    // HPA at a higher target holds fewer instance-hours: the sweep moves along the knob.
    let hpa = |k: f64| {
        fr.points
            .iter()
            .find(|p| p.family == Family::Hpa && !p.default && p.knob == k)
            .expect("point")
    };
    assert!(hpa(90.0).instance_hours < hpa(30.0).instance_hours);
    // More noise headroom holds more instances.
    let noise = |z: f64| {
        fr.points
            .iter()
            .find(|p| p.family == Family::PolicyNoise && p.knob == z)
            .expect("noise point")
    };
    assert!(noise(16.0).instance_hours > noise(0.5).instance_hours);
    let md = fr.markdown();
    assert!(
        md.contains("| 0.1 % (0 min)") && md.contains("| 1.0 % (2 min)"),
        "{md}"
    );
    let dir = std::env::temp_dir().join(format!("flexus-frontier-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let svg = dir.join("f.svg");
    write_svg(&svg, &fr).expect("chart");
    let text = std::fs::read_to_string(&svg).expect("svg");
    assert!(
        text.contains("hpa")
            && text.contains("aws-tt")
            && text.contains("policy")
            && text.contains("policy-noise")
    );
    std::fs::remove_dir_all(&dir).ok();
}
