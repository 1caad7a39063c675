//! Table-driven tests of each strategy with hand-computed expectations.

mod common;

use common::*;
use flexus_policy::*;

const NOW: Timestamp = Timestamp::from_secs(1_767_600_000); // 2026-01-05T08:00:00Z, a Monday

/// Decides at `NOW` with an empty history and no forecast.
fn decide_fresh(cp: &CompiledPolicy, o: &[Observation], pool: &PoolState) -> Decision {
    run(cp, NOW, o, pool, &History::new())
}

fn seed_policy(min: u32, max: u32) -> CompiledPolicy {
    let metrics = [
        metric("cpu", "cpu", ""),
        metric("memory", "memory", ""),
        metric("response_time", "response_time", ""),
        metric("queue", "queue_length", ""),
    ]
    .join(",");
    policy(&json("seed", min, max, &metrics, ""))
}

fn seed_obs(cpu: f64, mem: f64, rt: f64, q: f64) -> Vec<Observation> {
    obs(
        NOW,
        &[
            ("cpu", cpu),
            ("memory", mem),
            ("response_time", rt),
            ("queue", q),
        ],
    )
}

#[test]
fn seed_band_scores_follow_the_original_formulas() {
    let s = SeedSettings::default();
    // cpu: c>70 → min((c-70)/30, 1); c<30 → max((c-30)/30, -1)
    assert_eq!(s.cpu.score(85.0), 0.5);
    assert_eq!(s.cpu.score(100.0), 1.0);
    assert_eq!(s.cpu.score(50.0), 0.0);
    assert_eq!(s.cpu.score(15.0), -0.5);
    assert_eq!(s.cpu.score(0.0), -1.0);
    // memory: m>80 → (m-80)/20; m<40 → (m-40)/40
    assert_eq!(s.memory.score(90.0), 0.5);
    assert_eq!(s.memory.score(20.0), -0.5);
    // response time (ms): r>2000 → (r-2000)/3000; r<500 → (r-500)/500
    assert!((s.response_time.score(2600.0) - 0.2).abs() < 1e-12);
    assert_eq!(s.response_time.score(250.0), -0.5);
    assert_eq!(s.response_time.score(9000.0), 1.0);
    // queue: q>100 → min(q/200, 1); q<50 → (q-50)/50
    assert_eq!(s.queue_length.score(150.0), 0.75);
    assert_eq!(s.queue_length.score(101.0), 0.505);
    assert_eq!(s.queue_length.score(400.0), 1.0);
    assert_eq!(s.queue_length.score(10.0), -0.8);
    assert_eq!(s.queue_length.score(75.0), 0.0);
}

#[test]
fn seed_reproduces_the_original_design_on_worked_examples() {
    // (n, cpu, memory, response ms, queue, expected desired)
    // score(85, 90, 2600, 150) = 0.3·0.5 + 0.25·0.5 + 0.25·0.2 + 0.15·0.75 = 0.4375
    // score(15, 20, 250, 10)   = 0.3·-0.5 + 0.25·-0.5 + 0.25·-0.5 + 0.15·-0.8 = -0.52
    let cases: &[(u32, f64, f64, f64, f64, u32)] = &[
        (4, 85.0, 90.0, 2600.0, 150.0, 5), // by = max(1, floor(4·0.4375·0.5 = 0.875)) = 1
        (10, 85.0, 90.0, 2600.0, 150.0, 12), // floor(10·0.4375·0.5 = 2.1875) = 2
        (10, 15.0, 20.0, 250.0, 10.0, 9),  // floor(10·0.52·0.3 = 1.56) = 1
        (20, 15.0, 20.0, 250.0, 10.0, 17), // floor(20·0.52·0.3 = 3.12) = 3
        (10, 50.0, 60.0, 1000.0, 75.0, 10), // all inside the bands: score 0
        (10, 80.0, 80.0, 1000.0, 75.0, 10), // score 0.1 ≤ 0.3: no action
        (1, 15.0, 20.0, 250.0, 10.0, 1),   // would go to 0; floored at min 1
        (19, 100.0, 100.0, 5000.0, 200.0, 20), // score 0.95: +9 = 28, capped at max 20
    ];
    let cp = seed_policy(1, 20);
    for &(n, c, m, r, q, want) in cases {
        let d = decide_fresh(&cp, &seed_obs(c, m, r, q), &pool(n, 0));
        assert_eq!(
            d.desired, want,
            "n={n} cpu={c} mem={m} rt={r} q={q}: {:#?}",
            d.explanation
        );
    }
}

#[test]
fn seed_score_is_reported_in_the_explanation() {
    let cp = seed_policy(1, 20);
    let d = decide_fresh(&cp, &seed_obs(85.0, 90.0, 2600.0, 150.0), &pool(4, 0));
    let score = d
        .explanation
        .iter()
        .find_map(|s| match s {
            Step::SeedScore { score, .. } => Some(*score),
            _ => None,
        })
        .expect("seed score step");
    assert!((score - 0.4375).abs() < 1e-12, "score {score}");
    assert_eq!(d.proposals.len(), 4);
    assert_eq!(d.proposals[3].score, Some(0.75));
    assert_eq!(d.cpu_sample, Some(85.0));
}

#[test]
fn seed_rising_cpu_trend_tips_the_score_over_the_threshold() {
    // cpu 80 → 0.3·(10/30) = 0.1; memory 95 → 0.25·0.75 = 0.1875; total 0.2875 (< 0.3).
    // Last 10 cpu samples 35, 40, …, 80: slope 5 per sample → 0.05·tanh(0.5) = 0.0231 → 0.3106.
    let cp = seed_policy(1, 20);
    let o = seed_obs(80.0, 95.0, 1000.0, 75.0);
    let flat = decide_fresh(&cp, &o, &pool(10, 0));
    assert_eq!(flat.desired, 10, "without history the trend is 0");
    let mut h = History::new();
    for i in 0..9 {
        h.cpu_samples.push_back(Sample {
            at: Timestamp::from_secs(i),
            value: 35.0 + 5.0 * i as f64,
        });
    }
    let d = run(&cp, NOW, &o, &pool(10, 0), &h);
    // floor(10 · 0.3106 · 0.5) = 1
    assert_eq!(d.desired, 11, "{:#?}", d.explanation);
    let trend = d
        .explanation
        .iter()
        .find_map(|s| match s {
            Step::SeedScore { trend, .. } => Some(*trend),
            _ => None,
        })
        .expect("seed score step");
    assert!((trend - 0.5f64.tanh()).abs() < 1e-12);
}

#[test]
fn seed_trend_is_a_least_squares_slope() {
    assert_eq!(engine::least_squares_slope(&[1.0, 3.0, 5.0, 7.0]), 2.0);
    assert_eq!(engine::least_squares_slope(&[5.0]), 0.0);
    // y = 2, 4, 3, 5 → slope 0.8
    assert!((engine::least_squares_slope(&[2.0, 4.0, 3.0, 5.0]) - 0.8).abs() < 1e-12);
}

#[test]
fn seed_cooldown_holds_both_directions_for_300_seconds_after_an_action() {
    let cp = seed_policy(1, 20);
    let high = seed_obs(85.0, 90.0, 2600.0, 150.0);
    let low = seed_obs(15.0, 20.0, 250.0, 10.0);
    let mut h = History::new();
    h.record_event(ScaleEvent {
        at: NOW.sub(std::time::Duration::from_secs(200)),
        from: 8,
        to: 10,
    });
    for o in [&high, &low] {
        let d = run(&cp, NOW, o, &pool(10, 0), &h);
        assert_eq!(d.action, Action::None);
        assert_eq!(d.bound_by, Some(BoundBy::Cooldown));
    }
    let later = NOW.add(std::time::Duration::from_secs(100));
    let d = run(
        &cp,
        later,
        &obs(
            later,
            &[
                ("cpu", 85.0),
                ("memory", 90.0),
                ("response_time", 2600.0),
                ("queue", 150.0),
            ],
        ),
        &pool(10, 0),
        &h,
    );
    assert_eq!(d.action, Action::ScaleOut { by: 2 });
}

fn tt(metrics: &str) -> CompiledPolicy {
    policy(&json("target_tracking", 1, 100, metrics, ""))
}

#[test]
fn target_tracking_proposes_ceil_of_ready_times_value_over_target() {
    let cp = tt(&metric("cpu", "cpu", r#""target": 60"#));
    // (ready, cpu, expected)
    let cases: &[(u32, f64, u32)] = &[
        (4, 90.0, 6),   // ceil(4·1.5)
        (10, 75.0, 13), // ceil(12.5)
        (10, 30.0, 5),  // ceil(5)
        (10, 65.0, 10), // ratio 1.083: within tolerance 0.1
        (10, 55.0, 10), // ratio 0.917: within tolerance
        (10, 53.0, 9),  // ratio 0.883: ceil(8.83)
        (3, 100.0, 5),  // ceil(5)
    ];
    for &(n, v, want) in cases {
        let d = decide_fresh(&cp, &obs(NOW, &[("cpu", v)]), &pool(n, 0));
        assert_eq!(d.desired, want, "ready={n} cpu={v}");
    }
    let d = decide_fresh(&cp, &obs(NOW, &[("cpu", 65.0)]), &pool(10, 0));
    assert_eq!(d.bound_by, Some(BoundBy::Tolerance));
}

#[test]
fn any_signal_may_scale_out_but_all_must_agree_to_scale_in() {
    let cp = tt(&[
        metric("cpu", "cpu", r#""target": 60"#),
        metric("mem", "memory", r#""target": 60"#),
    ]
    .join(","));
    let p = pool(4, 0);
    let out = decide_fresh(&cp, &obs(NOW, &[("cpu", 30.0), ("mem", 90.0)]), &p);
    assert_eq!(out.desired, 6, "memory wants 6, cpu wants 2: max wins");
    let hold = decide_fresh(&cp, &obs(NOW, &[("cpu", 30.0), ("mem", 57.0)]), &p);
    assert_eq!(
        hold.desired, 4,
        "memory within tolerance vetoes the scale-in"
    );
    let both = decide_fresh(&cp, &obs(NOW, &[("cpu", 30.0), ("mem", 45.0)]), &p);
    assert_eq!(
        both.desired, 3,
        "both want in: the larger proposal (ceil(4·0.75) = 3) wins"
    );
}

#[test]
fn booting_instances_count_toward_capacity_but_not_toward_the_metric() {
    let cp = tt(&metric("cpu", "cpu", r#""target": 60"#));
    // 4 ready at 90 % want ceil(4·1.5) = 6; 2 are already booting, so nothing more.
    let d = decide_fresh(&cp, &obs(NOW, &[("cpu", 90.0)]), &pool(4, 2));
    assert_eq!((d.current, d.desired, d.action), (6, 6, Action::None));
    // At 120 % the 4 ready ones want 8: two more.
    let d = decide_fresh(&cp, &obs(NOW, &[("cpu", 120.0)]), &pool(4, 2));
    assert_eq!(d.action, Action::ScaleOut { by: 2 });
}

#[test]
fn pending_instances_block_scale_in() {
    let cp = tt(&metric("cpu", "cpu", r#""target": 60"#));
    let d = decide_fresh(&cp, &obs(NOW, &[("cpu", 10.0)]), &pool(4, 1));
    assert_eq!(d.action, Action::None);
    assert_eq!(d.bound_by, Some(BoundBy::Warmup));
}

#[test]
fn per_instance_queue_targets_size_from_the_total() {
    let cp = tt(&metric(
        "queue",
        "queue_length",
        r#""target": 10, "per_instance": true"#,
    ));
    // (current, total queue, expected) — ceil(total / 10), independent of the count,
    // unless total / (10 · current) is within the tolerance.
    let cases: &[(u32, f64, u32)] = &[
        (2, 100.0, 10),
        (20, 100.0, 10),
        (10, 105.0, 10),
        (10, 0.0, 1),
        (5, 31.0, 4),
    ];
    for &(n, q, want) in cases {
        let d = decide_fresh(&cp, &obs(NOW, &[("queue", q)]), &pool(n, 0));
        assert_eq!(d.desired, want, "current={n} queue={q}");
    }
}

#[test]
fn missing_signals_block_scale_in_but_never_scale_out_by_default() {
    let cp = tt(&[
        metric("cpu", "cpu", r#""target": 60"#),
        metric("mem", "memory", r#""target": 60"#),
    ]
    .join(","));
    let p = pool(4, 0);
    let d = decide_fresh(&cp, &obs(NOW, &[("cpu", 30.0)]), &p);
    assert_eq!(d.desired, 4);
    assert_eq!(d.bound_by, Some(BoundBy::MissingData));
    assert_eq!(d.proposals[1].proposal, None);
    let d = decide_fresh(&cp, &obs(NOW, &[("cpu", 90.0)]), &p);
    assert_eq!(d.desired, 6, "the present signal may still scale out");
    let d = decide_fresh(&cp, &[], &p);
    assert_eq!(d.action, Action::None, "no data at all: no scaling");
}

#[test]
fn stale_signals_are_treated_as_missing() {
    let cp = tt(&metric(
        "cpu",
        "cpu",
        r#""target": 60, "stale_after": "1m""#,
    ));
    let old = NOW.sub(std::time::Duration::from_secs(61));
    let d = decide_fresh(&cp, &obs(old, &[("cpu", 10.0)]), &pool(4, 0));
    assert_eq!(d.action, Action::None);
    assert!(
        matches!(d.proposals[0].reason, Reason::Stale { .. }),
        "{:?}",
        d.proposals[0].reason
    );
    let fresh = NOW.sub(std::time::Duration::from_secs(59));
    let d = decide_fresh(&cp, &obs(fresh, &[("cpu", 10.0)]), &pool(4, 0));
    assert_eq!(d.desired, 1);
}

#[test]
fn hold_rule_blocks_scale_out_too_and_ignore_lets_others_decide() {
    let metrics = [
        metric("cpu", "cpu", r#""target": 60"#),
        metric("mem", "memory", r#""target": 60, "missing_data": "hold""#),
    ]
    .join(",");
    let d = decide_fresh(&tt(&metrics), &obs(NOW, &[("cpu", 90.0)]), &pool(4, 0));
    assert_eq!((d.desired, d.bound_by), (4, Some(BoundBy::MissingData)));
    let metrics = [
        metric("cpu", "cpu", r#""target": 60"#),
        metric("mem", "memory", r#""target": 60, "missing_data": "ignore""#),
    ]
    .join(",");
    let d = decide_fresh(&tt(&metrics), &obs(NOW, &[("cpu", 30.0)]), &pool(4, 0));
    assert_eq!(d.desired, 2);
}

#[test]
fn fallback_rule_proposes_the_fallback_capacity() {
    let cp = tt(&metric(
        "q",
        "queue_length",
        r#""target": 10, "per_instance": true, "missing_data": "fallback", "fallback_capacity": 5"#,
    ));
    let d = decide_fresh(&cp, &[], &pool(2, 0));
    assert_eq!(d.desired, 5);
    let d = decide_fresh(&cp, &[], &pool(9, 0));
    assert_eq!(d.desired, 5);
}

#[test]
fn aggregation_window_averages_observations_inside_it() {
    let cp = tt(&metric("cpu", "cpu", r#""target": 50, "duration": "1m""#));
    let s = std::time::Duration::from_secs;
    let o = vec![
        Observation {
            metric: "cpu".into(),
            value: 100.0,
            at: NOW.sub(s(90)),
        }, // outside
        Observation {
            metric: "cpu".into(),
            value: 80.0,
            at: NOW.sub(s(40)),
        },
        Observation {
            metric: "cpu".into(),
            value: 60.0,
            at: NOW.sub(s(10)),
        },
    ];
    let d = decide_fresh(&cp, &o, &pool(10, 0));
    assert_eq!(d.proposals[0].value, Some(70.0));
    assert_eq!(d.desired, 14);
}

fn step_policy() -> CompiledPolicy {
    let src = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/policies/step.hcl"
    ))
    .expect("read step.hcl");
    let mut p = parse_hcl(&src, "step.hcl").expect("step.hcl parses");
    p.scale_in.cooldown = std::time::Duration::ZERO;
    p.bounds.min = 1;
    CompiledPolicy::new(p).expect("compiles")
}

#[test]
fn step_scaling_reproduces_the_aws_worked_example() {
    // Threshold 50: +10 % at [60,70), +30 % at ≥ 70, −10 % at (30,40], −30 % at ≤ 30.
    // 10 → 11 (10 % of 10 = 1) → 14 (30 % of 11 = 3.3 → 3) → 13 (−10 % of 14 = −1.4 → −1)
    // → 10 (−30 % of 13 = −3.9 → −3).
    let cp = step_policy();
    let mut n = 10;
    let mut h = History::new();
    let mut t = NOW;
    for (cpu, want) in [(65.0, 11), (75.0, 14), (35.0, 13), (25.0, 10)] {
        let d = run(&cp, t, &obs(t, &[("cpu", cpu)]), &pool(n, 0), &h);
        assert_eq!(
            d.desired, want,
            "from {n} at cpu {cpu}: {:#?}",
            d.explanation
        );
        h.record(&d);
        n = d.desired;
        t = t.add(std::time::Duration::from_secs(600));
    }
}

#[test]
fn step_bounds_are_inclusive_on_the_side_away_from_the_threshold() {
    let cp = step_policy();
    // (cpu, expected from 10): 60 is in [60,70) → 11; 70 is in [70,∞) → 13; 40 is in (30,40] → 9;
    // 30 is in (−∞,30] → 7; 50 and 45 match no step.
    for (cpu, want) in [
        (60.0, 11),
        (69.9, 11),
        (70.0, 13),
        (40.0, 9),
        (30.0, 7),
        (50.0, 10),
        (45.0, 10),
    ] {
        let d = decide_fresh(&cp, &obs(NOW, &[("cpu", cpu)]), &pool(10, 0));
        assert_eq!(d.desired, want, "cpu {cpu}");
    }
}

#[test]
fn step_percent_changes_round_as_aws_does() {
    let s = StepSettings {
        metric: "cpu".into(),
        threshold: 50.0,
        adjustment_type: AdjustmentType::PercentChangeInCapacity,
        min_adjustment_magnitude: None,
        adjustments: vec![],
    };
    // (base, percent, change)
    for (base, pct, want) in [
        (127, 10.0, 12),
        (5, 10.0, 1),
        (5, -10.0, -1),
        (200, -3.335, -6),
        (10, 0.0, 0),
    ] {
        assert_eq!(
            engine::step_change(&s, pct, base),
            want,
            "{pct} % of {base}"
        );
    }
    let with_min = StepSettings {
        min_adjustment_magnitude: Some(3),
        ..s.clone()
    };
    assert_eq!(engine::step_change(&with_min, 10.0, 10), 3);
    assert_eq!(engine::step_change(&with_min, -10.0, 10), -3);
    assert_eq!(engine::step_change(&with_min, 50.0, 10), 5);
    let exact = StepSettings {
        adjustment_type: AdjustmentType::ExactCapacity,
        ..s
    };
    assert_eq!(engine::step_change(&exact, 7.0, 10), -3);
}

#[test]
fn step_scaling_during_warm_up_adds_only_the_difference() {
    let src = r#"{"strategy": "step", "bounds": {"min": 1, "max": 50},
        "metrics": [{"name": "cpu", "kind": "cpu", "source": {"type": "push"}}],
        "scale_out": {"policies": []}, "scale_in": {"stabilisation_window": "0s", "policies": []},
        "step": {"metric": "cpu", "threshold": 50, "adjustments": [
            {"lower": 0, "upper": 20, "adjustment": 2}, {"lower": 20, "adjustment": 3}]}}"#;
    let cp = policy(src);
    // 10 ready + 2 booting from the +2 step: the same breach adds nothing.
    let d = decide_fresh(&cp, &obs(NOW, &[("cpu", 60.0)]), &pool(10, 2));
    assert_eq!(d.action, Action::None);
    // A breach of the +3 step adds one more.
    let d = decide_fresh(&cp, &obs(NOW, &[("cpu", 75.0)]), &pool(10, 2));
    assert_eq!(d.action, Action::ScaleOut { by: 1 });
}

#[test]
fn schedules_raise_the_minimum_while_active() {
    let metrics = metric("cpu", "cpu", r#""target": 60"#);
    let extra = r#""schedules": [{"name": "peak", "cron": "0 8 * * 1-5", "duration": "10h", "min_capacity": 8}]"#;
    let cp = policy(&json("target_tracking", 1, 20, &metrics, extra));
    let h = std::time::Duration::from_secs(3600);
    // Monday 08:00 (the occurrence itself), 09:00 and 17:59 are inside; 18:00 and 07:59 are not.
    for (t, want) in [
        (NOW, 8),
        (NOW.add(h), 8),
        (NOW.add(h * 10).sub(std::time::Duration::from_secs(60)), 8),
        (NOW.add(h * 10), 4),
        (NOW.sub(std::time::Duration::from_secs(60)), 4),
    ] {
        let d = run(
            &cp,
            t,
            &obs(t, &[("cpu", 60.0)]),
            &pool(4, 0),
            &History::new(),
        );
        assert_eq!(d.desired, want, "at {t}");
        if want == 8 {
            assert_eq!(d.bound_by, Some(BoundBy::Schedule));
        }
    }
    // Saturday: not active.
    let sat = NOW.add(h * 24 * 5);
    assert_eq!(
        run(
            &cp,
            sat,
            &obs(sat, &[("cpu", 60.0)]),
            &pool(4, 0),
            &History::new()
        )
        .desired,
        4
    );
}

#[test]
fn a_schedule_reads_its_cron_in_its_time_zone_within_its_window() {
    // 16:00 in Shanghai (UTC+8) is 08:00 UTC: the occurrence NOW stands for.
    let h = std::time::Duration::from_secs(3600);
    let at = |t: Timestamp, extra: &str| {
        let schedules = format!(
            r#""schedules": [{{"name": "evening", "cron": "0 16 * * *", "duration": "1h", "min_capacity": 6{extra}}}]"#
        );
        let cp = policy(&json("schedule", 2, 20, "", &schedules));
        run(&cp, t, &[], &pool(3, 0), &History::new()).desired
    };
    assert_eq!(at(NOW, r#", "timezone": "Asia/Shanghai""#), 6);
    assert_eq!(at(NOW.add(h * 8), r#", "timezone": "Asia/Shanghai""#), 2);
    assert_eq!(at(NOW, ""), 2, "UTC by default: 16:00 UTC is later");
    assert_eq!(at(NOW.add(h * 8), ""), 6);
    // Only between start_time and end_time.
    let day = h * 24;
    let start = r#", "timezone": "Asia/Shanghai", "start_time": "2030-01-01T00:00:00Z""#;
    assert_eq!(at(NOW, start), 2, "before start_time");
    let window = format!(
        r#", "timezone": "Asia/Shanghai", "start_time": "{}", "end_time": "{}""#,
        rfc3339(NOW.sub(day)),
        rfc3339(NOW.add(day))
    );
    assert_eq!(at(NOW, &window), 6, "inside the window");
    assert_eq!(at(NOW.add(day * 2), &window), 2, "after end_time");
}

fn rfc3339(t: Timestamp) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(t.millis())
        .expect("time")
        .to_rfc3339()
}

/// A schedule holding at least 6 instances for an hour from 08:00 (`NOW`) every day.
const MORNING_PEAK: &str =
    r#""schedules": [{"name": "peak", "cron": "0 8 * * *", "duration": "1h", "min_capacity": 6}]"#;

/// Checks that `cp` wants 6 at `NOW` (from `ready` ready instances, no signal) and 2
/// once the morning peak is over (from the 6).
fn assert_six_in_the_morning_peak_then_two(cp: &CompiledPolicy, ready: u32) {
    assert_eq!(decide_fresh(cp, &[], &pool(ready, 0)).desired, 6);
    let after = NOW.add(std::time::Duration::from_secs(3600));
    assert_eq!(run(cp, after, &[], &pool(6, 0), &History::new()).desired, 2);
}

#[test]
fn schedule_strategy_follows_the_schedule_alone() {
    let cp = policy(&json("schedule", 2, 20, "", MORNING_PEAK));
    assert_six_in_the_morning_peak_then_two(&cp, 3);
}

#[test]
fn fixed_strategy_holds_its_count_whatever_the_signals_say_and_explains_it() {
    let cp = policy(&json(
        "fixed",
        1,
        10,
        &metric("cpu", "cpu", r#""target": 60"#),
        r#""fixed": {"count": 4}"#,
    ));
    for (ready, cpu) in [(2, 99.0), (4, 99.0), (7, 1.0)] {
        let d = decide_fresh(&cp, &obs(NOW, &[("cpu", cpu)]), &pool(ready, 0));
        assert_eq!(d.desired, 4, "from {ready} at cpu {cpu}");
        assert_eq!(d.bound_by, Some(BoundBy::Fixed));
        assert!(
            d.explanation
                .iter()
                .any(|s| s.to_string() == "fixed strategy holds 4"),
            "{:?}",
            d.explanation
        );
    }
    // No signal at all is not missing data for a fixed policy.
    let d = decide_fresh(&cp, &[], &pool(3, 1));
    assert_eq!(d.desired, 4);
    assert_eq!(d.action, Action::None, "3 ready + 1 booting is already 4");
}

#[test]
fn fixed_strategy_is_raised_by_an_active_schedule() {
    let extra = format!(r#""fixed": {{"count": 2}}, {MORNING_PEAK}"#);
    let cp = policy(&json("fixed", 1, 20, "", &extra));
    assert_six_in_the_morning_peak_then_two(&cp, 2);
}

/// A target-tracking policy on cpu that forecasts `rps` in `mode`, 25 requests/s an
/// instance; `more` adds prediction settings.
fn predictive(mode: &str, more: &str) -> CompiledPolicy {
    let metrics = [
        metric("cpu", "cpu", r#""target": 60"#),
        metric("rps", "custom", ""),
    ]
    .join(",");
    let extra = format!(
        r#""prediction": {{"enabled": true, "mode": "{mode}", "metric": "rps", "target_per_instance": 25{more}}}"#
    );
    policy(&json("target_tracking", 1, 50, &metrics, &extra))
}

/// Decides at `NOW` for 4 ready instances at cpu 60 and 100 requests/s, with an empty
/// history and a forecast of `rps` requests/s five minutes ahead.
fn decide_with_rps_forecast(cp: &CompiledPolicy, rps: f64) -> Decision {
    let forecast = Prediction {
        at: NOW.add(std::time::Duration::from_secs(300)),
        values: vec![("rps".into(), rps)],
    };
    decide(
        cp,
        &DecisionInput {
            now: NOW,
            observations: &obs(NOW, &[("cpu", 60.0), ("rps", 100.0)]),
            pool: &pool(4, 0),
            history: &History::new(),
            prediction: Some(&forecast),
        },
    )
}

#[test]
fn forecasts_raise_capacity_only_in_forecast_and_scale_mode_and_never_lower_it() {
    let scale = predictive("forecast_and_scale", "");
    let d = decide_with_rps_forecast(&scale, 260.0);
    assert_eq!(
        (d.desired, d.bound_by),
        (11, Some(BoundBy::Prediction)),
        "ceil(260 / 25) = 11"
    );
    let d = decide_with_rps_forecast(&predictive("forecast_only", ""), 260.0);
    assert_eq!(d.desired, 4);
    assert!(d.explanation.contains(&Step::Prediction {
        forecast: 260.0,
        capacity: 11,
        applied: false
    }));
    let d = decide_with_rps_forecast(&scale, 10.0);
    assert_eq!(d.desired, 4, "a low forecast never scales in");
}

#[test]
fn spot_split_keeps_the_on_demand_base_and_rounds_spot_down() {
    let metrics = metric("cpu", "cpu", r#""target": 60"#);
    // (desired, base, percent, on_demand, spot)
    for (n, base, pct, od, spot) in [
        (10, 2, 50.0, 6, 4),
        (10, 0, 100.0, 0, 10),
        (3, 4, 50.0, 3, 0),
        (9, 2, 50.0, 6, 3),
        (5, 0, 0.0, 5, 0),
    ] {
        let extra = format!(r#""spot": {{"on_demand_base": {base}, "spot_percentage": {pct}}}"#);
        let cp = policy(&json("target_tracking", 1, 20, &metrics, &extra));
        let d = decide_fresh(&cp, &obs(NOW, &[("cpu", 60.0)]), &pool(n, 0));
        assert_eq!(
            (d.desired, d.on_demand, d.spot),
            (n, od, spot),
            "base {base} pct {pct}"
        );
    }
}

#[test]
fn dry_run_and_disabled_policies_take_no_action() {
    let metrics = metric("cpu", "cpu", r#""target": 60"#);
    let dry = policy(&json(
        "target_tracking",
        1,
        20,
        &metrics,
        r#""dry_run": true"#,
    ));
    let d = decide_fresh(&dry, &obs(NOW, &[("cpu", 90.0)]), &pool(4, 0));
    assert_eq!((d.desired, d.action), (6, Action::None));
    assert!(d.explanation.contains(&Step::DryRun));
    let off = policy(&json(
        "target_tracking",
        1,
        20,
        &metrics,
        r#""enabled": false"#,
    ));
    let d = decide_fresh(&off, &obs(NOW, &[("cpu", 90.0)]), &pool(4, 0));
    assert_eq!(
        (d.desired, d.action, d.bound_by),
        (4, Action::None, Some(BoundBy::Disabled))
    );
}

#[test]
fn bounds_clamp_even_without_a_signal() {
    let metrics = metric("cpu", "cpu", r#""target": 60"#);
    let cp = policy(&json("target_tracking", 3, 5, &metrics, ""));
    let d = decide_fresh(&cp, &[], &pool(1, 0));
    assert_eq!((d.desired, d.bound_by), (3, Some(BoundBy::Min)));
    let d = decide_fresh(&cp, &[], &pool(9, 0));
    assert_eq!((d.desired, d.bound_by), (5, Some(BoundBy::Max)));
}

#[test]
fn next_evaluation_is_one_interval_later() {
    let metrics = metric("cpu", "cpu", r#""target": 60"#);
    let cp = policy(&json(
        "target_tracking",
        1,
        5,
        &metrics,
        r#""evaluation_interval": "30s""#,
    ));
    let d = decide_fresh(&cp, &[], &pool(1, 0));
    assert_eq!(
        d.next_evaluation,
        NOW.add(std::time::Duration::from_secs(30))
    );
}

/// Request-rate observations one minute apart, the last at `NOW`.
fn rps_series(values: &[f64]) -> Vec<Observation> {
    let n = values.len() as u64;
    values
        .iter()
        .enumerate()
        .map(|(i, v)| Observation {
            metric: "rps".to_owned(),
            value: *v,
            at: NOW.sub(std::time::Duration::from_secs((n - 1 - i as u64) * 60)),
        })
        .collect()
}

fn trend_policy(trend: &str) -> CompiledPolicy {
    policy(&json(
        "target_tracking",
        1,
        100,
        &metric(
            "rps",
            "custom",
            &format!(r#""target": 10, "per_instance": true, "stale_after": "10m", {trend}"#),
        ),
        r#""tolerance": 0"#,
    ))
}

#[test]
fn a_rising_signal_is_read_ahead_by_its_trend_lead() {
    let cp = trend_policy(r#""trend_lead": "5m", "trend_significance": 0, "trend_max_raise": 1"#);
    // Slope 10/min; 140 + 10 · 5 = 190 → ceil(190 / 10) = 19 (19 without the trend would be 14).
    let o = rps_series(&[100.0, 110.0, 120.0, 130.0, 140.0]);
    let d = decide_fresh(&cp, &o, &pool(10, 0));
    assert_eq!(d.desired, 19);
    let trend = d.explanation.iter().find_map(|s| match s {
        Step::Trend {
            value,
            slope_per_min,
            extrapolated,
            ..
        } => Some((*value, *slope_per_min, *extrapolated)),
        _ => None,
    });
    let (value, slope, extrapolated) = trend.expect("a Trend step explains the raise");
    assert_eq!(value, 140.0);
    assert!((slope - 10.0).abs() < 1e-9, "{slope}");
    assert!((extrapolated - 190.0).abs() < 1e-9, "{extrapolated}");
    // The proposal carries the value used and the value observed (what the load was).
    let p = &d.proposals[0];
    assert!((p.value.unwrap() - 190.0).abs() < 1e-9, "{p:?}");
    assert_eq!(p.observed, Some(140.0));
}

#[test]
fn a_falling_signal_is_read_as_is() {
    let cp = trend_policy(r#""trend_lead": "5m", "trend_significance": 0"#);
    let o = rps_series(&[140.0, 130.0, 120.0, 110.0, 100.0]);
    let d = decide_fresh(&cp, &o, &pool(10, 0));
    assert_eq!(d.desired, 10);
    assert!(
        !d.explanation
            .iter()
            .any(|s| matches!(s, Step::Trend { .. }))
    );
}

#[test]
fn noise_around_a_flat_level_is_not_a_trend_at_one_standard_error() {
    // Fitted slope 1.5/min with a standard error of 3.7/min: not significant.
    let noisy = rps_series(&[100.0, 115.0, 95.0, 120.0, 105.0]);
    let sure = trend_policy(r#""trend_lead": "5m""#);
    let d = decide_fresh(&sure, &noisy, &pool(11, 0));
    assert_eq!(d.desired, 11);
    // Without the significance margin the fitted slope is used: 105 + 1.5 · 5 = 112.5 → 12.
    let eager = trend_policy(r#""trend_lead": "5m", "trend_significance": 0"#);
    let d = decide_fresh(&eager, &noisy, &pool(11, 0));
    assert_eq!(d.desired, 12);
}

#[test]
fn a_spike_is_not_extrapolated_past_trend_max_raise() {
    // Slope 40/min would add 200; the raise is capped at 50 % of 300.
    let cp = trend_policy(r#""trend_lead": "5m", "trend_significance": 0"#);
    let o = rps_series(&[100.0, 100.0, 100.0, 100.0, 300.0]);
    let d = decide_fresh(&cp, &o, &pool(30, 0));
    assert_eq!(d.desired, 45);
}

#[test]
fn without_trend_lead_the_trend_is_off() {
    let cp = trend_policy(r#""trend_window": "10m""#);
    let o = rps_series(&[100.0, 110.0, 120.0, 130.0, 140.0]);
    let d = decide_fresh(&cp, &o, &pool(10, 0));
    assert_eq!(d.desired, 14);
}

#[test]
fn negative_trend_settings_are_rejected_naming_the_field() {
    let text = json(
        "target_tracking",
        1,
        10,
        &metric(
            "rps",
            "custom",
            r#""target": 10, "per_instance": true, "trend_lead": "5m", "trend_window": "0s", "trend_max_raise": -1, "trend_significance": -2, "trend_noise_margin": -3"#,
        ),
        "",
    );
    let err = parse_json(&text).expect_err("invalid");
    assert_paths_named(
        &err,
        &[
            "metrics[0].trend_window",
            "metrics[0].trend_max_raise",
            "metrics[0].trend_significance",
            "metrics[0].trend_noise_margin",
        ],
    );
}

#[test]
fn a_forecast_above_max_ratio_counts_as_that_multiple_of_the_current_value() {
    let cp = predictive("forecast_and_scale", r#", "max_ratio": 1.5"#);
    // 260 is capped at 1.5 × 100 = 150 → ceil(150 / 25) = 6 (11 without the cap).
    let d = decide_with_rps_forecast(&cp, 260.0);
    assert_eq!((d.desired, d.bound_by), (6, Some(BoundBy::Prediction)));
    assert!(d.explanation.contains(&Step::PredictionCapped {
        forecast: 260.0,
        cap: 150.0
    }));
    // A forecast under the cap is used as is.
    let d = decide_with_rps_forecast(&cp, 140.0);
    assert_eq!(d.desired, 6, "ceil(140 / 25) = 6");
    assert!(
        !d.explanation
            .iter()
            .any(|s| matches!(s, Step::PredictionCapped { .. }))
    );
}

#[test]
fn a_prediction_max_ratio_below_one_is_rejected() {
    let text = json(
        "target_tracking",
        1,
        10,
        &metric("rps", "custom", r#""target": 10, "per_instance": true"#),
        r#""prediction": {"enabled": true, "mode": "forecast_and_scale", "metric": "rps", "target_per_instance": 10, "max_ratio": 0.5}"#,
    );
    let err = parse_json(&text).expect_err("invalid");
    assert!(
        err.iter()
            .any(|d| d.path.to_string() == "prediction.max_ratio"),
        "{err}"
    );
}

#[test]
fn a_metrics_lookback_covers_its_trend_window_only_while_the_trend_is_on() {
    let on = rps_metric_policy(r#""target": 10, "trend_lead": "5m", "trend_window": "15m""#)
        .expect("valid");
    assert_eq!(
        on.metrics[0].lookback(on.evaluation_interval),
        std::time::Duration::from_secs(900)
    );
    let off = rps_metric_policy(r#""target": 10, "duration": "3m", "trend_window": "15m""#)
        .expect("valid");
    assert_eq!(
        off.metrics[0].lookback(off.evaluation_interval),
        std::time::Duration::from_secs(180)
    );
}

#[test]
fn a_noise_margin_discounts_jittery_rises_but_not_step_shaped_ones() {
    // Steps: flat, one jump, flat — no jitter. Slope 12/min; 140 + 60 = 200 → 20.
    let steps = rps_series(&[100.0, 100.0, 100.0, 140.0, 140.0]);
    // Jitter: successive changes 15, 20, 25, 15 (median 20); fitted slope 1.5/min.
    let noisy = rps_series(&[100.0, 115.0, 95.0, 120.0, 105.0]);
    let plain = trend_policy(r#""trend_lead": "5m", "trend_significance": 0"#);
    let margin =
        trend_policy(r#""trend_lead": "5m", "trend_significance": 0, "trend_noise_margin": 1"#);
    let desired =
        |cp: &CompiledPolicy, o: &[Observation], n: u32| decide_fresh(cp, o, &pool(n, 0)).desired;
    assert_eq!(desired(&plain, &steps, 14), 20);
    assert_eq!(
        desired(&margin, &steps, 14),
        20,
        "no jitter, nothing discounted"
    );
    // 105 + 1.5 · 5 = 112.5 → 12 without the margin; 7.5 − 1 · 20 < 0 → 105 → 11 with it.
    assert_eq!(desired(&plain, &noisy, 11), 12);
    assert_eq!(desired(&margin, &noisy, 11), 11);
}

#[test]
fn square_root_staffing_keeps_a_larger_share_spare_in_a_small_pool_than_in_a_large_one() {
    let staffed = trend_policy(r#""sqrt_headroom": 1"#);
    let plain = trend_policy(r#""sqrt_headroom": 0"#);
    let desired = |cp: &CompiledPolicy, rps: f64, n: u32| {
        decide_fresh(cp, &rps_series(&[rps]), &pool(n, 0)).desired
    };
    // 4 instances' worth: 4 + √4 = 6 (+50 %); 64 instances' worth: 64 + 8 = 72 (+12.5 %).
    assert_eq!(desired(&plain, 40.0, 4), 4);
    assert_eq!(desired(&staffed, 40.0, 4), 6);
    assert_eq!(desired(&plain, 640.0, 64), 64);
    assert_eq!(desired(&staffed, 640.0, 64), 72);
    let d = decide_fresh(&staffed, &rps_series(&[40.0]), &pool(4, 0));
    assert!(
        d.explanation
            .iter()
            .any(|s| s.to_string() == "rps: square-root staffing 1"),
        "{:?}",
        d.explanation
    );
    let d = decide_fresh(&plain, &rps_series(&[40.0]), &pool(4, 0));
    assert!(
        !d.explanation
            .iter()
            .any(|s| matches!(s, Step::Staffing { .. })),
        "{:?}",
        d.explanation
    );
    // No load, no spare: 0 + 1 · √0 = 0, the pool goes to its minimum.
    assert_eq!(desired(&staffed, 0.0, 4), 1);
    // Utilisation-like signals too: 10 ready at 60 % of a 60 % target = 10 → 10 + √10 → 14.
    let cpu = tt(&metric("cpu", "cpu", r#""target": 60, "sqrt_headroom": 1"#));
    let o = vec![Observation {
        metric: "cpu".to_owned(),
        value: 60.0,
        at: NOW,
    }];
    assert_eq!(decide_fresh(&cpu, &o, &pool(10, 0)).desired, 14);
}

#[test]
fn a_negative_sqrt_headroom_is_refused_by_name() {
    let e = rps_metric_policy(r#""target": 10, "per_instance": true, "sqrt_headroom": -1"#)
        .expect_err("refused");
    assert!(
        e.to_string()
            .contains("metric \"rps\".sqrt_headroom must be at least 0, got -1"),
        "{e}"
    );
}

#[test]
fn noise_headroom_keeps_spare_capacity_in_step_with_how_far_the_load_jumps() {
    let noisy = trend_policy(r#""noise_headroom": 1, "noise_window": "10m""#);
    let plain = trend_policy(r#""noise_headroom": 0"#);
    // Readings jump by 40, 40, 40, 40 (mean 40): 140 + 1 · 40 = 180 → 18 instances.
    let jumpy = rps_series(&[100.0, 140.0, 100.0, 140.0, 100.0, 140.0]);
    let d = decide_fresh(&noisy, &jumpy, &pool(14, 0));
    assert_eq!(d.desired, 18);
    let step = d.explanation.iter().find_map(|s| match s {
        Step::Noise {
            sigma, raise, read, ..
        } => Some((*sigma, *raise, *read)),
        _ => None,
    });
    assert_eq!(step, Some((40.0, 40.0, 180.0)));
    assert_eq!(
        (d.proposals[0].value, d.proposals[0].observed),
        (Some(180.0), Some(140.0))
    );
    assert!(
        d.explanation.iter().any(|s| s.to_string()
            == "rps jumps 40.000 between readings: noise headroom 40.000, read as 180.000"),
        "{:?}",
        d.explanation
    );
    // The order the readings come in does not matter.
    let mut shuffled = jumpy.clone();
    shuffled.reverse();
    shuffled.swap(1, 4);
    assert_eq!(decide_fresh(&noisy, &shuffled, &pool(14, 0)).desired, 18);
    // Off, or a steady signal: nothing added, nothing explained.
    let d = decide_fresh(&plain, &jumpy, &pool(14, 0));
    assert_eq!(d.desired, 14);
    assert_eq!(
        (d.proposals[0].value, d.proposals[0].observed),
        (Some(140.0), Some(140.0))
    );
    let steady = rps_series(&[140.0; 6]);
    let d = decide_fresh(&noisy, &steady, &pool(14, 0));
    assert_eq!(d.desired, 14);
    assert!(
        !d.explanation
            .iter()
            .any(|s| matches!(s, Step::Noise { .. }))
    );
    // Only readings inside the window count: jumps older than 10 minutes are forgotten.
    let mut calmed = rps_series(&[100.0, 300.0]);
    for o in &mut calmed {
        o.at = o.at.sub(std::time::Duration::from_secs(1200));
    }
    calmed.extend(rps_series(&[140.0, 150.0, 140.0]));
    // Inside: 140, 150, 140, mean jump 10; the latest 140 is read as 150 → 15.
    assert_eq!(decide_fresh(&noisy, &calmed, &pool(14, 0)).desired, 15);
    // A reading stored twice under one timestamp is one reading, not a jump of 0.
    let mut twice = rps_series(&[100.0, 140.0]);
    twice.push(twice[1].clone());
    assert_eq!(decide_fresh(&noisy, &twice, &pool(14, 0)).desired, 18); // With a trend read-ahead too, the observed value is the one before both raises.
    let both = trend_policy(
        r#""noise_headroom": 1, "noise_window": "10m", "trend_lead": "5m", "trend_significance": 0, "trend_max_raise": 1"#,
    );
    let rising = rps_series(&[100.0, 110.0, 120.0, 130.0, 140.0]);
    let d = decide_fresh(&both, &rising, &pool(14, 0));
    // 140 + 10 · 5 (trend) + 10 (mean jump) = 200.
    assert!(
        (d.proposals[0].value.unwrap() - 200.0).abs() < 1e-9,
        "{:?}",
        d.proposals
    );
    assert_eq!(d.proposals[0].observed, Some(140.0));
}

/// A one-metric target-tracking policy on `rps` (bounds 1-10) with `fields` in the metric.
fn rps_metric_policy(fields: &str) -> Result<flexus_policy::Policy, flexus_policy::Diagnostics> {
    parse_json(&json(
        "target_tracking",
        1,
        10,
        &metric("rps", "custom", fields),
        "",
    ))
}

#[test]
fn the_noise_window_is_read_back_and_checked_only_when_the_headroom_is_on() {
    let p = rps_metric_policy(r#""target": 10, "noise_headroom": 2, "noise_window": "2h""#)
        .expect("valid");
    assert_eq!(
        p.metrics[0].lookback(p.evaluation_interval),
        std::time::Duration::from_secs(7200)
    );
    let e = rps_metric_policy(r#""target": 10, "noise_headroom": -0.5"#).expect_err("refused");
    assert!(
        e.to_string()
            .contains("metric \"rps\".noise_headroom must be at least 0, got -0.5"),
        "{e}"
    );
    let e = rps_metric_policy(r#""target": 10, "noise_headroom": 1, "noise_window": "0s""#)
        .expect_err("refused");
    assert!(e.to_string().contains("noise_window"), "{e}");
    let e = rps_metric_policy(r#""target": 10, "noise_headroom": 1, "noise_window": "2d""#)
        .expect_err("refused");
    assert!(
        e.to_string()
            .contains("metric \"rps\".noise_window must be at most 24h"),
        "{e}"
    );
    // Off: the window is not read, so it does not lengthen the lookback.
    let off = rps_metric_policy(r#""target": 10, "noise_window": "0s""#)
        .expect("valid while the headroom is off");
    assert!(
        off.metrics[0].lookback(off.evaluation_interval) < std::time::Duration::from_secs(3600)
    );
}

/// A Cloud Eye `SYS.ECS` CPU metric (5-minute basic monitoring) with the default freshness.
fn ces_cpu(rest: &str) -> CompiledPolicy {
    let extra = if rest.is_empty() {
        String::new()
    } else {
        format!(", {rest}")
    };
    tt(&format!(
        r#"{{"name": "cpu", "kind": "cpu", "source": {{"type": "cloud_eye", "metric_name": "cpu_util"}}, "target": 60{extra}}}"#
    ))
}

#[test]
fn a_five_minute_cloud_eye_reading_within_period_plus_delay_plus_interval_still_scales_in() {
    // SYS.ECS: period 5m + delivery delay 2m + evaluation interval 15s = 7m15s.
    let cp = ces_cpu("");
    let f = cp.freshness()[0];
    assert_eq!(f.limit, std::time::Duration::from_secs(435));
    let seven_minutes_old = NOW.sub(std::time::Duration::from_secs(7 * 60));
    let d = decide_fresh(&cp, &obs(seven_minutes_old, &[("cpu", 15.0)]), &pool(8, 0));
    assert_eq!((d.action, d.desired), (Action::ScaleIn { by: 6 }, 2));
}

#[test]
fn a_reading_past_its_freshness_limit_blocks_scale_in_and_the_explanation_names_the_limit() {
    let cp = ces_cpu("");
    let old = NOW.sub(std::time::Duration::from_secs(436));
    let d = decide_fresh(&cp, &obs(old, &[("cpu", 15.0)]), &pool(8, 0));
    assert_eq!((d.action, d.desired), (Action::None, 8));
    assert_eq!(d.bound_by, Some(BoundBy::MissingData));
    let text: Vec<String> = d.explanation.iter().map(ToString::to_string).collect();
    let held = text
        .iter()
        .find(|s| s.starts_with("missing data of cpu"))
        .unwrap_or_else(|| panic!("no missing-data step in {text:?}"));
    assert!(
        held.contains("7m16s old")
            && held.contains("7m15s = period 5m + delivery delay 2m + evaluation interval 15s"),
        "{held}"
    );
}

#[test]
fn declared_period_and_delay_set_the_freshness_limit_and_stale_after_overrides_both() {
    let cp = ces_cpu(r#""period": "1m", "delivery_delay": "30s""#);
    assert_eq!(cp.freshness()[0].limit, std::time::Duration::from_secs(105));
    let cp = ces_cpu(r#""period": "1m", "stale_after": "4m""#);
    let f = cp.freshness()[0];
    assert_eq!(
        (f.limit, f.explicit),
        (std::time::Duration::from_secs(240), true)
    );
    assert_eq!(f.to_string(), "stale_after 4m");
    // Pushed metrics declare 1m and no delay by default: 1m15s.
    let cp = tt(&metric(
        "rps",
        "custom",
        r#""target": 10, "per_instance": true"#,
    ));
    assert_eq!(cp.freshness()[0].limit, std::time::Duration::from_secs(75));
}

#[test]
fn missing_data_still_blocks_scale_in_under_the_relative_freshness_rule() {
    let cp = ces_cpu("");
    let d = decide_fresh(&cp, &[], &pool(8, 0));
    assert_eq!((d.action, d.desired), (Action::None, 8));
    let text: Vec<String> = d.explanation.iter().map(ToString::to_string).collect();
    assert!(
        text.iter()
            .any(|s| s.starts_with("missing data of cpu") && s.contains("no observation")),
        "{text:?}"
    );
}

#[test]
fn readings_further_apart_than_coarse_above_take_the_coarse_headroom() {
    let with = |extra: &str| {
        trend_policy(&format!(
            r#""sqrt_headroom": 0, "noise_headroom": 1, "noise_window": "10m",
               "coarse_sqrt_headroom": 2, "coarse_noise_headroom": 0{extra}"#
        ))
    };
    // Readings jump by 40 (mean 40). At a 1-minute period (the default `coarse_above`,
    // not longer): 140 + 1 · 40 = 180 → 18, no square-root staffing.
    let jumpy = rps_series(&[100.0, 140.0, 100.0, 140.0, 100.0, 140.0]);
    let desired = |cp: &CompiledPolicy| decide_fresh(cp, &jumpy, &pool(14, 0)).desired;
    assert_eq!(desired(&with(r#", "period": "1m""#)), 18);
    // At 5 minutes the coarse values hold: no noise headroom, 14 + 2 · √14 = 21.5 → 22.
    let coarse = with(r#", "period": "5m""#);
    assert_eq!(desired(&coarse), 22);
    let d = decide_fresh(&coarse, &jumpy, &pool(14, 0));
    assert!(
        !d.explanation
            .iter()
            .any(|s| matches!(s, Step::Noise { .. })),
        "{:?}",
        d.explanation
    );
    // The explanation says which staffing held, and that the coarse settings did.
    let said: Vec<String> = d.explanation.iter().map(ToString::to_string).collect();
    assert!(
        said.iter().any(|s| s
            == "rps: square-root staffing 2 (readings coarser than coarse_above: coarse settings)"),
        "{said:?}"
    );
    // A threshold above the period: fine again.
    assert_eq!(
        desired(&with(r#", "period": "5m", "coarse_above": "10m""#)),
        18
    );
    // Without coarse values a coarse source keeps the metric's own.
    let own = trend_policy(
        r#""sqrt_headroom": 0, "noise_headroom": 1, "noise_window": "10m", "period": "5m""#,
    );
    assert_eq!(desired(&own), 18);
    // Only the coarse value is set: the fine noise headroom alone is checked for its window.
    let p = rps_metric_policy(
        r#""target": 10, "period": "5m", "coarse_noise_headroom": 1, "noise_window": "2h""#,
    )
    .expect("valid");
    assert_eq!(
        p.metrics[0].lookback(p.evaluation_interval),
        std::time::Duration::from_secs(7200)
    );
    for (field, text) in [
        ("coarse_sqrt_headroom", r#""coarse_sqrt_headroom": -1"#),
        ("coarse_noise_headroom", r#""coarse_noise_headroom": -1"#),
    ] {
        let e = rps_metric_policy(&format!(r#""target": 10, {text}"#)).expect_err("refused");
        assert!(
            e.to_string().contains(&format!(
                "metric \"rps\".{field} must be at least 0, got -1"
            )),
            "{e}"
        );
    }
}

#[test]
fn a_settled_metric_carries_the_headroom_in_effect_and_goes_back_where_it_took_effect() {
    let p = rps_metric_policy(
        r#""target": 10, "sqrt_headroom": 0.25, "noise_headroom": 1,
           "coarse_sqrt_headroom": 0.5, "coarse_noise_headroom": 0"#,
    )
    .expect("valid");
    let m = &p.metrics[0];
    let (one, five) = (
        std::time::Duration::from_secs(60),
        std::time::Duration::from_secs(300),
    );
    let fine = m.settled(one);
    assert_eq!((fine.sqrt_headroom, fine.noise_headroom), (0.25, 1.0));
    let coarse = m.settled(five);
    assert_eq!((coarse.sqrt_headroom, coarse.noise_headroom), (0.5, 0.0));
    assert_eq!(
        (coarse.coarse_sqrt_headroom, coarse.coarse_noise_headroom),
        (None, None)
    );
    // A search moved the values: at 5 minutes they go into the coarse settings and the
    // per-minute ones stay as written; at 1 minute the other way round.
    let mut moved = coarse.clone();
    (moved.sqrt_headroom, moved.noise_headroom, moved.target) = (0.75, 0.5, Some(12.0));
    let back = moved.unsettled(m, five);
    assert_eq!(
        (
            back.sqrt_headroom,
            back.noise_headroom,
            back.coarse_sqrt_headroom,
            back.coarse_noise_headroom,
            back.target
        ),
        (0.25, 1.0, Some(0.75), Some(0.5), Some(12.0))
    );
    let back = moved.unsettled(m, one);
    assert_eq!(
        (
            back.sqrt_headroom,
            back.noise_headroom,
            back.coarse_sqrt_headroom,
            back.coarse_noise_headroom
        ),
        (0.75, 0.5, Some(0.5), Some(0.0))
    );
    assert_eq!(back.headroom_at(five).sqrt, 0.5);
}
