//! Stabilisation windows, rate policies and cooldowns: worked examples and proptest invariants.

mod common;

use std::time::Duration;

use common::*;
use flexus_policy::*;
use proptest::prelude::*;
use proptest::strategy::Strategy;

const NOW: Timestamp = Timestamp::from_secs(1_767_600_000);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn cpu_policy(behaviour: &str) -> CompiledPolicy {
    policy(&json(
        "target_tracking",
        1,
        100,
        &metric("cpu", "cpu", r#""target": 50"#),
        behaviour,
    ))
}

/// Decides at `t` for `ready` ready instances whose cpu reads `cpu`.
fn cpu_decision(cp: &CompiledPolicy, t: Timestamp, cpu: f64, ready: u32, h: &History) -> Decision {
    run(cp, t, &obs(t, &[("cpu", cpu)]), &pool(ready, 0), h)
}

fn rec(h: &mut History, ago: u64, desired: u32) {
    h.recommendations.push_back(Recommendation {
        at: NOW.sub(secs(ago)),
        desired,
    });
}

#[test]
fn scale_in_waits_for_stabilisation_window() {
    let cp = cpu_policy(
        r#""scale_out": {"policies": []}, "scale_in": {"stabilisation_window": "5m", "policies": []}"#,
    );
    let mut h = History::new();
    rec(&mut h, 200, 10);
    rec(&mut h, 100, 8);
    // cpu 25 on 10 ready → 5; the window still holds 10.
    let d = cpu_decision(&cp, NOW, 25.0, 10, &h);
    assert_eq!(
        (d.recommendation, d.desired, d.bound_by),
        (5, 10, Some(BoundBy::Stabilisation))
    );
    // 150 s later the 10 has left the window; the max inside is 8.
    let t = NOW.add(secs(150));
    let d = cpu_decision(&cp, t, 25.0, 10, &h);
    assert_eq!(d.desired, 8);
    // After the whole window only the new recommendation remains.
    let t = NOW.add(secs(400));
    let d = cpu_decision(&cp, t, 25.0, 10, &h);
    assert_eq!(d.desired, 5);
}

#[test]
fn scale_out_stabilisation_follows_the_minimum_recommendation() {
    let cp = cpu_policy(
        r#""scale_out": {"stabilisation_window": "1m", "policies": []}, "scale_in": {"stabilisation_window": "0s", "policies": []}"#,
    );
    let mut h = History::new();
    rec(&mut h, 30, 12);
    rec(&mut h, 15, 14);
    let d = cpu_decision(&cp, NOW, 100.0, 10, &h);
    assert_eq!((d.recommendation, d.desired), (20, 12));
}

#[test]
fn scale_up_rate_follows_hpa_policies_with_select() {
    // current 10, cpu 150 → 30. Percent 100 → 20, Pods 4 → 14.
    for (select, want) in [("max", 20), ("min", 14), ("disabled", 10)] {
        let cp = cpu_policy(&format!(
            r#""scale_out": {{"select": "{select}", "policies": [{{"type": "percent", "value": 100, "period": "1m"}}, {{"type": "pods", "value": 4, "period": "1m"}}]}}, "scale_in": {{"stabilisation_window": "0s", "policies": []}}"#
        ));
        let d = cpu_decision(&cp, NOW, 150.0, 10, &History::new());
        assert_eq!(d.desired, want, "select {select}");
        if want != 30 {
            assert_eq!(d.bound_by, Some(BoundBy::RateLimit));
        }
    }
}

#[test]
fn rate_period_counts_from_the_replicas_at_its_start() {
    let cp = cpu_policy(
        r#""scale_out": {"policies": [{"type": "percent", "value": 100, "period": "1m"}, {"type": "pods", "value": 4, "period": "1m"}]}, "scale_in": {"stabilisation_window": "0s", "policies": []}"#,
    );
    let mut h = History::new();
    h.record_event(ScaleEvent {
        at: NOW.sub(secs(30)),
        from: 5,
        to: 10,
    });
    // Start of period = 10 − 5 = 5: percent → 10, pods → 9: no more scale-out yet.
    let d = cpu_decision(&cp, NOW, 150.0, 10, &h);
    assert_eq!((d.desired, d.bound_by), (10, Some(BoundBy::RateLimit)));
    // Once the event leaves the period, the full rate is back.
    let t = NOW.add(secs(31));
    let d = cpu_decision(&cp, t, 150.0, 10, &h);
    assert_eq!(d.desired, 20);
}

#[test]
fn scale_down_rate_uses_floor_of_percent() {
    let cp = cpu_policy(
        r#""scale_in": {"stabilisation_window": "0s", "policies": [{"type": "percent", "value": 30, "period": "1m"}]}"#,
    );
    // current 9, cpu 5 → 1; 30 % down: floor(9 · 0.7) = 6.
    let d = cpu_decision(&cp, NOW, 5.0, 9, &History::new());
    assert_eq!((d.desired, d.bound_by), (6, Some(BoundBy::RateLimit)));
    assert_eq!(
        engine::scale_down_limit(
            9,
            &History::new(),
            NOW,
            &[RatePolicy {
                kind: RateKind::Pods,
                value: 2,
                period: secs(60)
            }],
            SelectPolicy::Max
        ),
        7
    );
}

#[test]
fn scale_in_cooldown_follows_any_action_and_scale_out_cooldown_only_scale_outs() {
    let cp = cpu_policy(
        r#""scale_out": {"cooldown": "2m", "policies": []}, "scale_in": {"cooldown": "5m", "stabilisation_window": "0s", "policies": []}"#,
    );
    let mut h = History::new();
    h.record_event(ScaleEvent {
        at: NOW.sub(secs(60)),
        from: 8,
        to: 10,
    });
    let d = cpu_decision(&cp, NOW, 20.0, 10, &h);
    assert_eq!(
        (d.action, d.bound_by),
        (Action::None, Some(BoundBy::Cooldown))
    );
    let d = cpu_decision(&cp, NOW, 80.0, 10, &h);
    assert_eq!(
        (d.action, d.bound_by),
        (Action::None, Some(BoundBy::Cooldown))
    );
    let t = NOW.add(secs(61));
    let d = cpu_decision(&cp, t, 80.0, 10, &h);
    assert_eq!(d.action, Action::ScaleOut { by: 6 });
    let d = cpu_decision(&cp, t, 20.0, 10, &h);
    assert_eq!(
        d.action,
        Action::None,
        "scale-in still cooling down 4 minutes after the scale-out"
    );
    let t = NOW.add(secs(241));
    let d = cpu_decision(&cp, t, 20.0, 10, &h);
    assert_eq!(d.action, Action::ScaleIn { by: 6 });
}

#[test]
fn history_records_recommendations_events_and_prunes_old_entries() {
    let cp = cpu_policy("");
    let mut h = History::new();
    let d = cpu_decision(&cp, NOW, 100.0, 4, &h);
    h.record(&d);
    assert_eq!(h.recommendations.len(), 1);
    assert_eq!(h.events.len(), 1);
    assert_eq!(h.last_scale_out, Some(NOW));
    h.prune(
        NOW.add(secs(1000)),
        cp.history_horizon(),
        cp.trend_samples(),
    );
    assert!(h.recommendations.is_empty() && h.events.is_empty());
    assert_eq!(
        h.last_scale_out,
        Some(NOW),
        "the last action time survives pruning"
    );
}

// ---------------------------------------------------------------- proptest invariants

#[derive(Debug, Clone)]
struct Case {
    min: u32,
    max: u32,
    out_window: u64,
    in_window: u64,
    out_cd: u64,
    in_cd: u64,
    out_select: &'static str,
    in_select: &'static str,
    out_pods: u32,
    out_pct: u32,
    in_pods: u32,
    in_pct: u32,
    period: u64,
    ready: u32,
    booting: u32,
    cpu: Option<f64>,
    queue: Option<f64>,
    recs: Vec<(u64, u32)>,
    events: Vec<(u64, u32, u32)>,
}

fn select() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("max"), Just("min"), Just("disabled")]
}

fn case() -> impl Strategy<Value = Case> {
    (
        (
            0u32..5,
            1u32..40,
            0u64..600,
            0u64..600,
            0u64..300,
            0u64..300,
            select(),
            select(),
        ),
        (1u32..6, 1u32..200, 1u32..6, 1u32..100, 1u64..300),
        (
            0u32..45,
            0u32..5,
            proptest::option::of(0.0f64..200.0),
            proptest::option::of(0.0f64..500.0),
        ),
        proptest::collection::vec((0u64..900, 0u32..50), 0..20),
        proptest::collection::vec((0u64..900, 0u32..50, 0u32..50), 0..6),
    )
        .prop_map(
            |(
                (min, span, ow, iw, ocd, icd, os, is),
                (op, opct, ip, ipct, period),
                (ready, booting, cpu, queue),
                recs,
                events,
            )| Case {
                min,
                max: min + span,
                out_window: ow,
                in_window: iw,
                out_cd: ocd,
                in_cd: icd,
                out_select: os,
                in_select: is,
                out_pods: op,
                out_pct: opct,
                in_pods: ip,
                in_pct: ipct,
                period,
                ready,
                booting,
                cpu,
                queue,
                recs,
                events,
            },
        )
}

fn build(c: &Case) -> (CompiledPolicy, PoolState, History, Vec<Observation>) {
    let metrics = [
        metric("cpu", "cpu", r#""target": 60"#),
        metric(
            "queue",
            "queue_length",
            r#""target": 5, "per_instance": true"#,
        ),
    ]
    .join(",");
    let behaviour = format!(
        r#""scale_out": {{"cooldown": "{}s", "stabilisation_window": "{}s", "select": "{}", "policies": [{{"type": "pods", "value": {}, "period": "{}s"}}, {{"type": "percent", "value": {}, "period": "{}s"}}]}},
           "scale_in": {{"cooldown": "{}s", "stabilisation_window": "{}s", "select": "{}", "policies": [{{"type": "pods", "value": {}, "period": "{}s"}}, {{"type": "percent", "value": {}, "period": "{}s"}}]}}"#,
        c.out_cd,
        c.out_window,
        c.out_select,
        c.out_pods,
        c.period,
        c.out_pct,
        c.period,
        c.in_cd,
        c.in_window,
        c.in_select,
        c.in_pods,
        c.period,
        c.in_pct,
        c.period
    );
    let cp = policy(&json("target_tracking", c.min, c.max, &metrics, &behaviour));
    let mut h = History::new();
    let mut recs = c.recs.clone();
    recs.sort_by_key(|r| std::cmp::Reverse(r.0));
    for (ago, d) in recs {
        h.recommendations.push_back(Recommendation {
            at: NOW.sub(Duration::from_secs(ago)),
            desired: d,
        });
    }
    let mut evs = c.events.clone();
    evs.sort_by_key(|e| std::cmp::Reverse(e.0));
    for (ago, from, to) in evs {
        h.record_event(ScaleEvent {
            at: NOW.sub(Duration::from_secs(ago)),
            from,
            to,
        });
    }
    let mut o = Vec::new();
    if let Some(v) = c.cpu {
        o.push(Observation {
            metric: "cpu".into(),
            value: v,
            at: NOW,
        });
    }
    if let Some(v) = c.queue {
        o.push(Observation {
            metric: "queue".into(),
            value: v,
            at: NOW,
        });
    }
    (cp, pool(c.ready, c.booting), h, o)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_result_is_always_within_bounds(c in case()) {
        let (cp, p, h, o) = build(&c);
        let d = run(&cp, NOW, &o, &p, &h);
        prop_assert!(d.desired >= c.min && d.desired <= c.max, "{} not in [{}, {}]", d.desired, c.min, c.max);
        prop_assert_eq!(d.on_demand + d.spot, d.desired);
    }

    #[test]
    fn no_scale_in_during_a_scale_in_cooldown(c in case()) {
        let (cp, p, h, o) = build(&c);
        let d = run(&cp, NOW, &o, &p, &h);
        let current = p.counts().counted;
        let cooling = h.last_scale().is_some_and(|t| NOW.since(t) < Duration::from_secs(c.in_cd));
        if cooling && current <= c.max {
            prop_assert!(!matches!(d.action, Action::ScaleIn { .. }), "{:?}", d.explanation);
        }
    }

    #[test]
    fn no_scale_in_below_a_recommendation_inside_the_stabilisation_window(c in case()) {
        let (cp, p, h, o) = build(&c);
        let d = run(&cp, NOW, &o, &p, &h);
        let current = p.counts().counted;
        let window_max = h
            .recommendations
            .iter()
            .filter(|r| c.in_window > 0 && NOW.since(r.at) < Duration::from_secs(c.in_window))
            .map(|r| r.desired)
            .max();
        if let Some(m) = window_max && d.desired < current && current <= c.max {
            prop_assert!(d.desired >= m.min(current).max(c.min), "desired {} below window max {}", d.desired, m);
        }
    }

    #[test]
    fn rate_limits_are_never_exceeded(c in case()) {
        let (cp, p, h, o) = build(&c);
        let d = run(&cp, NOW, &o, &p, &h);
        let current = p.counts().counted;
        let pol = cp.policy();
        if d.desired > current && d.desired > c.min {
            let limit = engine::scale_up_limit(current, &h, NOW, &pol.scale_out.policies, pol.scale_out.select);
            prop_assert!(d.desired <= limit, "up {} > limit {}", d.desired, limit);
        }
        if d.desired < current && d.desired < c.max {
            let limit = engine::scale_down_limit(current, &h, NOW, &pol.scale_in.policies, pol.scale_in.select);
            prop_assert!(d.desired >= limit, "down {} < limit {}", d.desired, limit);
        }
    }

    #[test]
    fn the_decision_is_identical_for_identical_inputs(c in case()) {
        let (cp, p, h, o) = build(&c);
        let a = run(&cp, NOW, &o, &p, &h);
        let (cp2, p2, h2, o2) = build(&c);
        let b = run(&cp2, NOW, &o2, &p2, &h2);
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(serde_json::to_string(&a).ok(), serde_json::to_string(&b).ok());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Over a run where the engine's own decisions fill the history, every step stays
    /// within the HPA rate limits, the bounds, and the scale-in stabilisation window.
    #[test]
    fn a_run_of_decisions_respects_rate_limits_and_the_window_at_every_step(
        cpus in proptest::collection::vec(0.0f64..250.0, 10..60),
        start in 1u32..30,
    ) {
        let cp = policy(&json(
            "target_tracking",
            1,
            60,
            &metric("cpu", "cpu", r#""target": 60"#),
            r#""scale_out": {"policies": [{"type": "percent", "value": 50, "period": "1m"}, {"type": "pods", "value": 3, "period": "2m"}]},
               "scale_in": {"stabilisation_window": "2m", "policies": [{"type": "pods", "value": 2, "period": "1m"}]}"#,
        ));
        let pol = cp.policy().clone();
        let mut h = History::new();
        let mut n = start;
        for (i, cpu) in cpus.iter().enumerate() {
            let now = NOW.add(Duration::from_secs(15 * i as u64));
            let d = cpu_decision(&cp, now, *cpu, n, &h);
            prop_assert!((1..=60).contains(&d.desired));
            if d.desired > n && d.desired > 1 {
                let limit = engine::scale_up_limit(n, &h, now, &pol.scale_out.policies, pol.scale_out.select);
                prop_assert!(d.desired <= limit, "step {}: {} -> {} over limit {}", i, n, d.desired, limit);
            }
            if d.desired < n {
                let limit = engine::scale_down_limit(n, &h, now, &pol.scale_in.policies, pol.scale_in.select);
                prop_assert!(d.desired >= limit, "step {}: {} -> {} under limit {}", i, n, d.desired, limit);
                let window_max = h
                    .recommendations
                    .iter()
                    .filter(|r| now.since(r.at) < Duration::from_secs(120))
                    .map(|r| r.desired)
                    .chain([d.recommendation])
                    .max()
                    .unwrap_or(0);
                prop_assert!(d.desired >= window_max.min(n), "step {}: below the window max {}", i, window_max);
            }
            h.record(&d);
            h.prune(now, cp.history_horizon(), cp.trend_samples());
            n = d.desired;
        }
    }
}
