//! Replay behaviour: lifecycle and billing, monitoring delay, determinism,
//! spot reclamation, and the oracle as a lower bound.

use flexus_sim::SimError;
use flexus_sim::capacity::lookup;
use flexus_sim::replay::{Autoscaler, Observation, SimOptions, run};
use flexus_sim::scorecard::score;
use flexus_sim::simulation::{
    BASELINES, SimulateOptions, baseline, parse_policy_for_tests, run_all,
};
use flexus_sim::trace::{self, Trace};

/// Sets the desired count once at a given time, records what it saw: when the first
/// datapoint became visible, and every datapoint visible at `read_at_s`.
struct Scripted {
    at_s: f64,
    to: u32,
    first_sample_seen_at: Option<f64>,
    read_at_s: f64,
    seen: Vec<flexus_sim::replay::MetricSample>,
}

impl Scripted {
    /// Scales to `to` at `at_s` (a negative time: never).
    fn new(at_s: f64, to: u32) -> Self {
        Scripted {
            at_s,
            to,
            first_sample_seen_at: None,
            read_at_s: -1.0,
            seen: Vec::new(),
        }
    }
}

impl Autoscaler for Scripted {
    fn name(&self) -> String {
        "scripted".into()
    }
    fn interval_s(&self) -> f64 {
        15.0
    }
    fn decide(&mut self, obs: &Observation<'_>) -> Result<Option<u32>, SimError> {
        if self.first_sample_seen_at.is_none() && obs.latest().is_some() {
            self.first_sample_seen_at = Some(obs.now_s);
        }
        if (obs.now_s - self.read_at_s).abs() < 1e-9 {
            self.seen = obs.history.to_vec();
        }
        Ok(((obs.now_s - self.at_s).abs() < 1e-9).then_some(self.to))
    }
}

fn flat(rps: f64, minutes: usize) -> Trace {
    Trace::from_rps("flat", 0, 60, vec![rps; minutes]).expect("trace")
}

#[test]
fn a_launched_instance_is_billed_from_launch_and_serves_after_boot_and_warm_up() {
    let f = lookup("x1.2u.4g").expect("flavor"); // boot 45 s + warm-up 20 s
    let mut o = SimOptions::new(f.clone());
    o.initial_instances = Some(1);
    let mut a = Scripted::new(60.0, 2);
    let r = run(&flat(10.0, 5), &mut a, &o).expect("run");
    let s = &r.series;
    // Ticks of 15 s: launch at tick 4 (60 s); ready at 125 s -> first tick >= 125 is tick 9 (135 s).
    assert_eq!(s.billed[3], 1);
    assert_eq!(s.billed[4], 2, "billed from launch");
    assert_eq!(s.supply[8], 1, "still booting/warming at 120 s");
    assert_eq!(s.supply[9], 2, "ready at 135 s");
    // Cost: 1 instance for 300 s + 1 instance for 240 s.
    let expect = f.cost(300.0, false) + f.cost(240.0, false);
    assert!(
        (r.totals.cost - expect).abs() < 1e-9,
        "{} vs {expect}",
        r.totals.cost
    );
}

#[test]
fn monitoring_data_becomes_visible_one_period_plus_the_delay_late() {
    let f = lookup("x1.2u.4g").expect("flavor");
    let mut o = SimOptions::new(f);
    o.metric_period_s = 60.0;
    o.metric_delay_s = 60.0;
    let mut a = Scripted::new(-1.0, 0);
    run(&flat(10.0, 10), &mut a, &o).expect("run");
    assert_eq!(a.first_sample_seen_at, Some(120.0));
    o.metric_period_s = 300.0;
    let mut a = Scripted::new(-1.0, 0);
    run(&flat(10.0, 10), &mut a, &o).expect("run");
    assert_eq!(a.first_sample_seen_at, Some(360.0));
}

#[test]
fn one_minute_cpu_is_each_instances_own_average_meaned_over_the_ready_ones() {
    use flexus_sim::capacity::{idle_metrics, pool_metrics};
    let f = lookup("x1.2u.4g").expect("flavor"); // boot 45 s + warm-up 20 s
    let mut o = SimOptions::new(f.clone());
    o.initial_instances = Some(1);
    o.metric_period_s = 60.0;
    o.metric_delay_s = 0.0;
    // A second instance launched at 60 s runs from 105 s (warming) and serves from 135 s.
    let mut a = Scripted {
        read_at_s: 180.0,
        ..Scripted::new(60.0, 2)
    };
    run(&flat(40.0, 4), &mut a, &o).expect("run");
    let minute = a.seen.last().expect("the minute to 180 s");
    assert_eq!(minute.end_s, 180.0);
    // Ticks 120, 135, 150, 165: at 120 the old instance serves alone, the new one warms.
    let alone = pool_metrics(40.0, 1, &f, 0.0, 15.0).per_instance.cpu_pct;
    let shared = pool_metrics(40.0, 2, &f, 0.0, 15.0).per_instance.cpu_pct;
    let idle = idle_metrics(&f).cpu_pct;
    let old = (alone + 3.0 * shared) / 4.0;
    let new = (idle + 3.0 * shared) / 4.0;
    assert!(
        (minute.cpu_pct - (old + new) / 2.0).abs() < 1e-9,
        "{} vs {}",
        minute.cpu_pct,
        (old + new) / 2.0
    );
    // The pool's per-instance CPU averaged over the minute's ticks reads higher.
    assert!(minute.cpu_pct < old);
    assert_eq!(minute.utilisation_pct, minute.cpu_pct);
}

fn worldcup_slice() -> Trace {
    let t = trace::load_named("worldcup98").expect("built-in trace");
    let f = lookup("x1.2u.4g").expect("flavor");
    // Two days around the first big match days (Jun 10-11 1998).
    t.scaled_to_fleet(&f, 40).slice(11 * 288, 2 * 288)
}

#[test]
fn replay_is_deterministic_for_a_seed() {
    let t = worldcup_slice();
    let f = lookup("x1.2u.4g").expect("flavor");
    let opts = SimulateOptions {
        spot_fraction: 0.5,
        spot_hazard_per_hour: 0.2,
        seed: 7,
        ..SimulateOptions::default()
    };
    let once = || {
        let list = ["hpa", "aws-tt"]
            .iter()
            .map(|b| baseline(b, &f, &opts).expect("baseline"))
            .collect();
        run_all(&t, &f, list, &opts, &mut |_| {}).expect("run")
    };
    let (a, b) = (once(), once());
    for (x, y) in a.runs.iter().zip(&b.runs) {
        assert_eq!(x.series.supply, y.series.supply);
        assert_eq!(x.series.billed, y.series.billed);
        assert_eq!(x.totals.reclaimed, y.totals.reclaimed);
        assert!(
            x.totals.reclaimed > 0,
            "the hazard reclaims something in two days"
        );
    }
    let other = SimulateOptions {
        seed: 8,
        ..opts.clone()
    };
    let list = vec![baseline("hpa", &f, &other).expect("hpa")];
    let c = run_all(&t, &f, list, &other, &mut |_| {}).expect("run");
    assert_ne!(
        c.runs[0].series.billed, a.runs[0].series.billed,
        "another seed reclaims differently"
    );
}

#[test]
fn spot_reclamations_follow_the_hazard_rate() {
    let f = lookup("x1.2u.4g").expect("flavor");
    let mut o = SimOptions::new(f);
    o.initial_instances = Some(1);
    o.spot_fraction = 1.0;
    o.spot_hazard_per_hour = 0.5;
    // Keeps 20 instances (one on-demand from the start, the rest spot), replacing what is reclaimed (all launches are spot).
    struct Keep;
    impl Autoscaler for Keep {
        fn name(&self) -> String {
            "keep".into()
        }
        fn interval_s(&self) -> f64 {
            15.0
        }
        fn decide(&mut self, _o: &Observation<'_>) -> Result<Option<u32>, SimError> {
            Ok(Some(20))
        }
    }
    let r = run(&flat(100.0, 24 * 60), &mut Keep, &o).expect("run");
    // Expected: 19 spot instances × 0.5/h × 24 h = 228 (Poisson sd ≈ 15).
    assert!(
        (180..=280).contains(&r.totals.reclaimed),
        "{}",
        r.totals.reclaimed
    );
}

/// Replays `t` with every baseline and `policy` (named "default").
fn every_baseline_and(
    t: &Trace,
    f: &flexus_sim::capacity::Flavor,
    policy: &flexus_policy::Policy,
) -> flexus_sim::simulation::Scorecard {
    every_baseline_with(t, f, policy, &SimulateOptions::default())
}

/// Replays `t` with every baseline and `policy` (named "default") under `opts`.
fn every_baseline_with(
    t: &Trace,
    f: &flexus_sim::capacity::Flavor,
    policy: &flexus_policy::Policy,
    opts: &SimulateOptions,
) -> flexus_sim::simulation::Scorecard {
    let opts = opts.clone();
    let mut list: Vec<Box<dyn Autoscaler>> = BASELINES
        .iter()
        .map(|b| baseline(b, f, &opts).expect("baseline"))
        .collect();
    list.push(Box::new(
        flexus_sim::policy::PolicyAutoscaler::new("default", policy.clone()).expect("policy"),
    ));
    run_all(t, f, list, &opts, &mut |_| {}).expect("run")
}

#[test]
fn the_oracle_is_never_beaten_on_cost_at_zero_violations() {
    let default_policy = parse_policy_for_tests(include_str!("../policies/sim-default-x1.json"));
    let mut traces = vec![worldcup_slice()];
    let nasa = trace::load_named("nasa-http-1995").expect("nasa");
    let f = lookup("x1.2u.4g").expect("flavor");
    traces.push(nasa.scaled_to_fleet(&f, 40).slice(0, 3 * 1440));
    let elb = trace::load_named("nab-elb").expect("elb");
    traces.push(elb.scaled_to_fleet(&f, 40).slice(0, 3 * 288));
    for t in &traces {
        let card = every_baseline_and(t, &f, &default_policy);
        let oracle = card.get("oracle").expect("oracle ran");
        assert_eq!(
            oracle.slo_violation_pct, 0.0,
            "the oracle meets the SLO on {}",
            t.name
        );
        assert_eq!(oracle.under_instance_hours, 0.0);
        for s in &card.scores {
            if s.under_instance_hours == 0.0 {
                assert!(
                    s.instance_hours >= oracle.instance_hours - 1e-9,
                    "{} beat the oracle on {}: {} < {}",
                    s.policy,
                    t.name,
                    s.instance_hours,
                    oracle.instance_hours
                );
            }
        }
        // And the scorecard is internally consistent.
        for r in &card.runs {
            let s = score(r);
            assert!(s.over_instance_hours <= s.instance_hours + 1e-9);
        }
    }
}

/// Replays `rps` for 10 minutes on `initial` x1.2u.4g instances: when (s) `a` first
/// changed the billed count, and to what.
fn first_change(a: &mut dyn Autoscaler, initial: u32, rps: f64) -> (f64, u32) {
    let mut o = SimOptions::new(lookup("x1.2u.4g").expect("flavor"));
    o.initial_instances = Some(initial);
    let r = run(&flat(rps, 10), a, &o).expect("run");
    let i = r
        .series
        .billed
        .iter()
        .position(|b| *b != initial)
        .expect("scaled out");
    (i as f64 * 15.0, r.series.billed[i])
}

/// Feeds target tracking a scripted utilisation series through the real replay:
/// a flat trace at a load that puts the pool above target; check that the
/// scale-out comes only after three high datapoints.
#[test]
fn aws_target_tracking_scales_out_after_three_high_datapoints() {
    use flexus_sim::baselines::{TargetTracking, TargetTrackingConfig};
    let mut tt = TargetTracking::new(TargetTrackingConfig::with_target(60.0));
    // 4 instances at 40 req/s each = 80 % utilisation (> 60 % target).
    let (at_s, billed) = first_change(&mut tt, 4, 160.0);
    // Datapoints end at 60, 120, 180 s and are visible 60 s later: the third at 240 s.
    assert_eq!(at_s, 240.0);
    // ceil(4 × 80.4 / 60) = 6 (CPU = 2 + 98 × 0.8).
    assert_eq!(billed, 6);
}

/// The HPA reacts at its 15 s loop as soon as a datapoint shows the breach,
/// and is capped by its rate policy (max(+100 %, +4) per 15 s).
#[test]
fn hpa_scales_out_on_the_first_visible_datapoint_within_its_rate_limit() {
    use flexus_sim::baselines::{Hpa, HpaConfig};
    let mut h = Hpa::new(HpaConfig::default_with_target(30.0));
    // 2 instances offered 95 req/s: 95 % busy (CPU 95.1 %), target 30 % -> wants ceil(2 × 3.17) = 7.
    let (at_s, billed) = first_change(&mut h, 2, 95.0);
    assert_eq!(at_s, 120.0, "first datapoint visible at 120 s");
    assert_eq!(billed, 6, "max(2 × 2, 2 + 4) = 6 in one period");
}

/// `forecast_only` computes and explains forecasts but never changes capacity: the
/// run is identical to the same policy without prediction, and the adapter
/// records the decisions where the forecast would have raised capacity.
#[test]
fn forecast_only_mode_records_but_never_changes_capacity() {
    use flexus_sim::policy::PolicyAutoscaler;
    let policy = |mode: &str, enabled: bool| {
        parse_policy_for_tests(&format!(
            r#"{{
              "strategy": "target_tracking", "evaluation_interval": "60s", "tolerance": 0.05,
              "bounds": {{"min": 1, "max": 1000}},
              "metrics": [{{"name": "requests", "kind": "custom", "source": {{"type": "push"}},
                            "target": 30.0, "per_instance": true}}],
              "prediction": {{"enabled": {enabled}, "mode": "{mode}", "metric": "requests",
                              "target_per_instance": 30.0, "lead_time": "3m",
                              "seasonality": ["1d"], "refit_interval": "24h"}}
            }}"#
        ))
    };
    let f = lookup("x1.2u.4g").expect("flavor");
    let taxi = trace::load_named("nyc-taxi").expect("nyc-taxi");
    let t = taxi.scaled_to_fleet(&f, 40).slice(0, 6 * 48);
    let o = SimOptions::new(f);
    let mut plain = PolicyAutoscaler::new("plain", policy("forecast_only", false)).expect("policy");
    let mut only = PolicyAutoscaler::new("only", policy("forecast_only", true)).expect("policy");
    let mut scale =
        PolicyAutoscaler::new("scale", policy("forecast_and_scale", true)).expect("policy");
    let a = run(&t, &mut plain, &o).expect("run");
    let b = run(&t, &mut only, &o).expect("run");
    let c = run(&t, &mut scale, &o).expect("run");
    assert_eq!(
        a.series.billed, b.series.billed,
        "forecast_only changed capacity"
    );
    assert!(only.fits > 0, "the forecaster ran");
    assert!(
        only.would_have_raised > 0,
        "forecast_only recorded nothing it would have done"
    );
    assert_ne!(
        c.series.billed, a.series.billed,
        "forecast_and_scale acted on the forecast"
    );
    let (ih_a, ih_c) = (score(&a).instance_hours, score(&c).instance_hours);
    assert!(
        ih_c >= ih_a,
        "the forecast only raises capacity: {ih_c} < {ih_a}"
    );
}

/// The lower bound of `flexus_sim::bounds` holds for every real run: no
/// baseline nor our policy bills fewer instance-hours than the bound at its own
/// number of violating ticks, and a tick that met the SLO always had its demand
/// covered by ready instances (the premise of the bound).
#[test]
fn no_run_beats_the_lower_bound_at_its_own_violation_count() {
    use flexus_sim::bounds::{BoundInput, min_instance_hours};
    use flexus_sim::replay::initial_ready;
    let default_policy = parse_policy_for_tests(include_str!("../policies/sim-default-x1.json"));
    let f = lookup("x1.2u.4g").expect("flavor");
    let elb = trace::load_named("nab-elb").expect("elb");
    for t in [
        worldcup_slice(),
        elb.scaled_to_fleet(&f, 40).slice(0, 2 * 288),
    ] {
        let card = every_baseline_and(&t, &f, &default_policy);
        let so = SimOptions::new(f.clone());
        let mut some_violated = false;
        for r in &card.runs {
            let s = &r.series;
            for k in 0..s.demand.len() {
                assert!(
                    !s.slo_met[k] || s.supply[k] >= s.demand[k],
                    "{} on {}: tick {k} met the SLO with {} ready for a demand of {}",
                    r.policy,
                    t.name,
                    s.supply[k],
                    s.demand[k]
                );
            }
            let violating = s.slo_met.iter().filter(|m| !**m).count();
            some_violated |= violating > 0;
            let input = BoundInput {
                demand: &s.demand,
                tick_s: so.tick_s,
                lead_s: so.lead_s(),
                initial: initial_ready(&s.demand, &so),
            };
            let bound = min_instance_hours(&input, violating);
            let billed = score(r).instance_hours;
            assert!(
                billed >= bound - 1e-9,
                "{} on {} billed {billed:.2} h with {violating} violating ticks, below the bound {bound:.2} h",
                r.policy,
                t.name
            );
        }
        assert!(some_violated, "the slice exercises a violation budget");
        // At zero violations the bound is at most what the oracle bills.
        let oracle = card.get("oracle").expect("oracle");
        let input = BoundInput {
            demand: &card.runs[0].series.demand,
            tick_s: so.tick_s,
            lead_s: so.lead_s(),
            initial: initial_ready(&card.runs[0].series.demand, &so),
        };
        let strict = min_instance_hours(&input, 0);
        assert!(strict <= oracle.instance_hours + 1e-9 && strict > 0.5 * oracle.instance_hours);
    }
}

#[test]
fn with_five_minute_cloud_eye_data_delivered_two_minutes_late_the_default_scales_back_in() {
    // SYS.ECS basic monitoring: one datapoint per 5 minutes, visible 2 minutes after its
    // period ends. Before freshness was relative to the source, every reading counted as
    // stale under a fixed 2-minute limit, stale readings blocked scale-in, and the pool
    // ratcheted to its peak (~22x HPA's instance-hours on a bursty trace).
    let default_policy = parse_policy_for_tests(include_str!("../policies/sim-default-x1.json"));
    let f = lookup("x1.2u.4g").expect("flavor");
    let elb = trace::load_named("nab-elb").expect("elb");
    let t = elb.scaled_to_fleet(&f, 40).slice(0, 3 * 288);
    let opts = SimulateOptions {
        metric_period_s: 300.0,
        metric_delay_s: 120.0,
        ..SimulateOptions::default()
    };
    let card = every_baseline_with(&t, &f, &default_policy, &opts);
    let ours = card.get("default").expect("ran");
    let hpa = card.get("hpa-default").expect("ran");
    assert!(
        ours.instance_hours <= 1.5 * hpa.instance_hours,
        "default {:.1} h vs HPA {:.1} h at a 300 s period with 120 s delay",
        ours.instance_hours,
        hpa.instance_hours
    );
    // It follows the load down: the supply falls well below its peak after the bursts.
    let run = card
        .runs
        .iter()
        .find(|r| r.policy == "default")
        .expect("run");
    let peak = run.series.supply.iter().copied().max().unwrap_or(0);
    let low = run.series.supply[run.series.supply.len() / 2..]
        .iter()
        .copied()
        .min()
        .unwrap_or(0);
    assert!(low * 2 < peak, "supply never fell: peak {peak}, low {low}");
}
