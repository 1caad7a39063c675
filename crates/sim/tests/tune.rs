//! The tuner: search by replay on the tuning window, measured on the validation window.

use flexus_sim::SimError;
use flexus_sim::capacity::lookup;
use flexus_sim::simulation::default_policy;
use flexus_sim::trace;
use flexus_sim::tune::{TuneRequest, knobs, policy_at, tune};

fn worldcup_day() -> trace::Trace {
    let f = lookup("x1.2u.4g").expect("flavor");
    trace::load_named("worldcup98")
        .expect("trace")
        .scaled_to_fleet(&f, 40)
        .slice(11 * 288, 288)
}

#[test]
fn tune_recommends_a_policy_that_meets_the_budget_on_the_window_it_tuned_on_and_reports_the_later_window()
 {
    let f = lookup("x1.2u.4g").expect("flavor");
    let policy = default_policy(&f).expect("policy");
    let mut req = TuneRequest::new(worldcup_day(), f, policy.clone(), 0.02);
    req.max_evaluations = 12;
    let r = tune(&req).expect("tune");
    assert!((r.tune_hours - 16.0).abs() < 1e-9 && (r.validation_hours - 8.0).abs() < 1e-9);
    assert!(r.evaluations >= 12, "{}", r.evaluations);
    let (before, after) = &r.tuning;
    // The start point is kept unless something beats it on the penalised objective
    // (the search aims at SAFETY × the budget on the tuning window's last third).
    assert!((r.recent_hours - 16.0 * flexus_sim::tune::RECENT).abs() < 1e-6);
    let within = |share: f64| share <= 0.02 * flexus_sim::tune::SAFETY;
    if within(r.recent_share.0) {
        assert!(
            within(r.recent_share.1) && after.cost <= before.cost + 1e-9,
            "{}",
            r.text()
        );
    }
    // The recommendation validates and the report names every changed field.
    flexus_policy::CompiledPolicy::new(r.after.clone()).expect("recommendation validates");
    let text = r.text();
    for c in &r.changes {
        assert!(text.contains(&c.field), "{text}");
    }
    assert!(text.contains("validation  before:"), "{text}");
    assert!(!text.contains("note:"), "{text}");
    // Deterministic for a seed.
    let again = tune(&req).expect("tune");
    assert_eq!(again.after, r.after);
}

#[test]
fn a_budget_under_a_minute_of_the_tuning_window_is_pointed_out() {
    let f = lookup("x1.2u.4g").expect("flavor");
    // 60 minutes: 40 tune, the aim holds on their last 13.3; 0.5 % of those is 4 s.
    let hour = worldcup_day().slice(0, 12);
    let mut req = TuneRequest::new(hour, f.clone(), default_policy(&f).expect("p"), 0.01);
    req.max_evaluations = 4;
    let text = tune(&req).expect("tune").text();
    assert!(
        text.contains("tuning window's last 0.2 h")
            && text.contains("note: that is under one minute of those 13 minutes"),
        "{text}"
    );
}

#[test]
fn too_short_a_history_is_refused_with_how_much_is_needed() {
    let f = lookup("x1.2u.4g").expect("flavor");
    let short = worldcup_day().slice(0, 6); // 30 minutes
    let req = TuneRequest::new(short, f.clone(), default_policy(&f).expect("p"), 0.01);
    let e = tune(&req).expect_err("too short");
    assert!(matches!(e, SimError::NotEnoughHistory { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        "not enough history to tune: 30 minutes given, at least 45 needed (two thirds tune, the last third validates)"
    );
    let bad = TuneRequest::new(
        worldcup_day(),
        f.clone(),
        default_policy(&f).expect("p"),
        1.5,
    );
    assert!(
        tune(&bad)
            .expect_err("budget")
            .to_string()
            .contains("budget")
    );
}

#[test]
fn every_knob_maps_the_unit_interval_onto_its_range_and_clamps_outside_it() {
    let f = lookup("x1.2u.4g").expect("flavor");
    let p = default_policy(&f).expect("policy");
    let k = knobs(&p);
    let names: Vec<&str> = k.iter().map(|k| k.name).collect();
    assert!(names.contains(&"trend_lead (s)") && names.contains(&"prediction.max_ratio"));
    assert!(names.contains(&"sqrt_headroom"), "{names:?}");
    let low = policy_at(&p, &k, &vec![-1.0; k.len()]);
    let high = policy_at(&p, &k, &vec![2.0; k.len()]);
    assert_eq!(low.metrics[0].target, Some(34.0 * 0.6));
    assert_eq!(high.metrics[0].target, Some(34.0 * 1.5));
    assert_eq!(high.scale_in.stabilisation_window.as_secs(), 900);
    assert_eq!(p.metrics[0].sqrt_headroom, 0.25);
    assert_eq!(low.metrics[0].sqrt_headroom, 0.0);
    assert_eq!(high.metrics[0].sqrt_headroom, 2.0);
    assert!(names.contains(&"noise_headroom"), "{names:?}");
    assert_eq!(low.metrics[0].noise_headroom, 0.0);
    assert_eq!(high.metrics[0].noise_headroom, 24.0);
    assert_eq!(low.prediction.max_ratio, Some(1.0));
    flexus_policy::CompiledPolicy::new(low).expect("low corner validates");
    flexus_policy::CompiledPolicy::new(high).expect("high corner validates");
}

#[test]
fn aiming_at_the_baselines_aims_under_the_better_baseline_default_and_reports_both_on_both_windows()
{
    use flexus_sim::tune::Aim;
    let f = lookup("x1.2u.4g").expect("flavor");
    let mut req = TuneRequest::new(
        worldcup_day(),
        f.clone(),
        default_policy(&f).expect("p"),
        0.05,
    );
    req.aim = Aim::Baselines;
    req.max_evaluations = 10;
    let r = tune(&req).expect("tune");
    let names: Vec<&str> = r.baselines.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["hpa", "aws-tt"]);
    let fewer = r
        .baselines
        .iter()
        .map(|b| b.tuning.violation_share)
        .fold(f64::INFINITY, f64::min);
    assert!((r.aimed_share - fewer).abs() < 1e-12, "{}", r.text());
    // The search minimises the worse of the two ratios to the better default: the
    // recommendation is no worse than the start on it (the start is kept unless beaten),
    // and the report states both ratios.
    let worse = |m| {
        let (v, o) = r.baseline_ratios(m);
        v.max(o)
    };
    assert!(worse(&r.tuning.1) <= worse(&r.tuning.0), "{}", r.text());
    // The request's objective is cost: the second ratio is cost over the cheaper default's.
    let cheaper = r
        .baselines
        .iter()
        .map(|b| b.tuning.cost)
        .fold(f64::INFINITY, f64::min);
    let (_, o) = r.baseline_ratios(&r.tuning.1);
    assert!((o - r.tuning.1.cost / cheaper).abs() < 1e-9, "{o}");
    assert!(
        r.text()
            .contains("aimed at beating both baselines' defaults"),
        "{}",
        r.text()
    );
    // Beating both on the tuning window is both ratios under 1 — impossible when a
    // default has no violation there (the ratio of none to none reads 0, and the report
    // says nothing can have fewer); the report says when the search found no such setting.
    let (v, o) = r.baseline_ratios(&r.tuning.1);
    assert_eq!(
        r.beats_baselines_on_tuning(),
        r.aimed_share > 0.0 && v < 1.0 && o < 1.0,
        "{}",
        r.text()
    );
    assert_eq!(
        r.text()
            .contains("note: no setting tried beats both defaults"),
        r.aimed_share > 0.0 && !r.beats_baselines_on_tuning(),
        "{}",
        r.text()
    );
    // HPA at its default target replayed by hand gives the reported validation figures.
    let split = flexus_sim::frontier::Split::of(&req.history);
    let mut hpa = flexus_sim::simulation::baseline("hpa", &f, &req.options).expect("hpa");
    let (s, _) =
        flexus_sim::frontier::eval_score(&req.history, &split, &f, hpa.as_mut(), &req.options)
            .expect("replay");
    assert_eq!(r.baselines[0].validation.violation_min, s.slo_violation_min);
    assert_eq!(r.baselines[0].validation.instance_hours, s.instance_hours);
    // "Beaten" means fewer violation minutes and fewer instance-hours on the validation window.
    let after = &r.validation.1;
    for b in &r.baselines {
        assert_eq!(
            b.beaten_by(after),
            after.violation_min < b.validation.violation_min
                && after.instance_hours < b.validation.instance_hours
        );
    }
    assert_eq!(
        r.beats_baselines(),
        r.baselines.iter().all(|b| b.beaten_by(after))
    );
    let text = r.text();
    assert!(
        text.contains("aimed at") && text.contains("aws-tt"),
        "{text}"
    );
    // The budget aim is SAFETY × the budget, whatever the baselines do.
    req.aim = Aim::Budget;
    let r = tune(&req).expect("tune");
    assert!((r.aimed_share - 0.05 * flexus_sim::tune::SAFETY).abs() < 1e-12);
}

#[test]
fn the_search_does_no_worse_than_scaling_the_targets_alone() {
    use flexus_sim::frontier::{Split, eval_score, scaled_policy};
    use flexus_sim::policy::PolicyAutoscaler;
    use flexus_sim::tune::{Aim, LINE};
    let f = lookup("x1.2u.4g").expect("flavor");
    let policy = default_policy(&f).expect("policy");
    let mut req = TuneRequest::new(worldcup_day(), f.clone(), policy.clone(), 0.05);
    req.aim = Aim::Baselines;
    req.max_evaluations = 6;
    // With this seed and 5 replays CMA-ES alone does not find targets × 1.1 (checked: the
    // assertion below fails when the line is skipped).
    req.seed = 2;
    let r = tune(&req).expect("tune");
    let worse = |m: &flexus_sim::tune::Measured| {
        let (v, o) = r.baseline_ratios(m);
        v.max(o)
    };
    // Each scaling of the line, replayed by hand on the tuning window as the tuner does.
    let split = Split::of(&req.history);
    let tune_split = Split {
        tune: split.tune.clone(),
        eval_from_s: 0.0,
        total_s: split.tune.duration_s(),
    };
    for scale in LINE {
        let mut a = PolicyAutoscaler::new("line", scaled_policy(&policy, scale)).expect("policy");
        let (s, _) =
            eval_score(&split.tune, &tune_split, &f, &mut a, &req.options).expect("replay");
        let line = worse(&(&s).into());
        assert!(
            worse(&r.tuning.1) <= line + 1e-12,
            "targets × {scale}: {line} beats the recommendation's {}\n{}",
            worse(&r.tuning.1),
            r.text()
        );
    }
}

#[test]
fn a_cancelled_search_gives_up_before_its_next_replay() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let f = lookup("x1.2u.4g").expect("flavor");
    let policy = default_policy(&f).expect("policy");
    let cancel = Arc::new(AtomicBool::new(false));
    let mut req = TuneRequest::new(worldcup_day(), f, policy, 0.02);
    req.max_evaluations = 500;
    req.cancel = Some(cancel.clone());
    // Given up while it runs (500 replays of a day take seconds): the search
    // ends with `Cancelled`, not with a recommendation from the replays it managed.
    let setter = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(100));
        cancel.store(true, Ordering::Relaxed);
    });
    let started = std::time::Instant::now();
    let r = tune(&req);
    setter.join().unwrap();
    assert!(
        matches!(r, Err(SimError::Cancelled)),
        "{:?}",
        r.map(|r| r.evaluations)
    );
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );
    // Set before it starts: not one replay.
    assert!(matches!(tune(&req), Err(SimError::Cancelled)));
}

/// A day at 5-minute steps with bursts (2.5×, half an hour on, half an hour off) only
/// in steps `from..to`.
fn bursts_in(name: &str, from: u32, to: u32) -> trace::Trace {
    let f = lookup("x1.2u.4g").expect("flavor");
    let rps = (0..288)
        .map(|i| {
            let v = 100.0 + 10.0 * (f64::from(i) / 20.0).sin();
            if (from..to).contains(&i) && (i / 6) % 2 == 0 {
                v * 2.5
            } else {
                v
            }
        })
        .collect();
    trace::Trace::from_rps(name, 1_609_459_200, 300, rps)
        .expect("trace")
        .scaled_to_fleet(&f, 40)
}

/// The last third (the validation window) carries bursts the first two thirds never had.
fn bursts_only_later() -> trace::Trace {
    bursts_in("bursts-later", 192, 288)
}

#[test]
fn a_recommendation_over_its_budget_on_the_validation_window_is_flagged_and_warned_about() {
    let f = lookup("x1.2u.4g").expect("flavor");
    let policy = default_policy(&f).expect("policy");
    let mut req = TuneRequest::new(bursts_only_later(), f.clone(), policy.clone(), 0.01);
    req.max_evaluations = 12;
    let r = tune(&req).expect("tune");
    let (before, after) = &r.validation;
    assert!(
        after.violation_share > 0.01 && before.violation_share > 0.01,
        "{}",
        r.text()
    );
    assert_eq!(r.within_budget(), Some(false));
    let text = r.text();
    let warning = text
        .lines()
        .find(|l| l.starts_with("warning: "))
        .unwrap_or_else(|| panic!("no warning in\n{text}"));
    assert!(
        warning.contains(&format!(
            "in violation {:.2} % of the time ({:.0} min), over the 1.00 % budget; so is the current policy ({:.2} %)",
            after.violation_share * 100.0,
            after.violation_min,
            before.violation_share * 100.0
        )),
        "{warning}"
    );
    // Within its budget on the later window (a World Cup day at 5 %): no warning.
    let calm = worldcup_day();
    let mut req = TuneRequest::new(calm, f.clone(), policy.clone(), 0.05);
    req.max_evaluations = 4;
    let r = tune(&req).expect("tune");
    assert!(r.validation.1.violation_share <= 0.05, "{}", r.text());
    assert_eq!(r.within_budget(), Some(true));
    assert!(!r.text().contains("warning:"), "{}", r.text());
    // Aimed at the baselines, the budget is not what was searched for: no verdict on it.
    let mut req = TuneRequest::new(bursts_only_later(), f.clone(), policy, 0.01);
    req.max_evaluations = 4;
    req.aim = flexus_sim::tune::Aim::Baselines;
    let r = tune(&req).expect("tune");
    assert_eq!(r.within_budget(), None);
    assert!(!r.text().contains("warning:"), "{}", r.text());
}

#[test]
fn a_policy_that_only_watches_or_is_off_is_tuned_as_if_it_acted_and_keeps_its_switches() {
    let f = lookup("x1.2u.4g").expect("flavor");
    let on = default_policy(&f).expect("policy");
    let run = |p: &flexus_policy::Policy| {
        let mut req = TuneRequest::new(worldcup_day(), f.clone(), p.clone(), 0.02);
        req.max_evaluations = 6;
        tune(&req).expect("tune")
    };
    let acting = run(&on);
    let measures = |m: &flexus_sim::tune::Measured| (m.violation_min, m.instance_hours, m.cost);
    for (what, p) in [
        (
            "dry_run",
            flexus_policy::Policy {
                dry_run: true,
                ..on.clone()
            },
        ),
        (
            "enabled = false",
            flexus_policy::Policy {
                enabled: false,
                ..on.clone()
            },
        ),
    ] {
        let r = run(&p);
        // Replayed as the policy switched on: the same measures and the same search.
        for (a, b) in [
            (&r.tuning.0, &acting.tuning.0),
            (&r.tuning.1, &acting.tuning.1),
            (&r.validation.0, &acting.validation.0),
            (&r.validation.1, &acting.validation.1),
        ] {
            assert_eq!(measures(a), measures(b), "{what}\n{}", r.text());
        }
        // The recommendation is the acting one's with the pool's own switches.
        assert_eq!(
            (r.after.dry_run, r.after.enabled),
            (p.dry_run, p.enabled),
            "{what}"
        );
        let mut after = r.after.clone();
        after.dry_run = false;
        after.enabled = true;
        assert_eq!(after, acting.after, "{what}");
    }
}

#[test]
fn a_coarse_source_is_tuned_on_its_coarse_headroom_and_the_result_written_back_there() {
    let f = lookup("x1.2u.4g").expect("flavor");
    // The default: β 0.25 and noise headroom 1 per minute, β 0.5 and none for coarser data.
    let default = default_policy(&f).expect("policy");
    let m = &default.metrics[0];
    assert_eq!(
        (m.coarse_sqrt_headroom, m.coarse_noise_headroom),
        (Some(0.5), Some(0.0))
    );
    // Far more coarse square-root staffing than needed, for the search to take back.
    let mut default = default.clone();
    default.metrics[0].coarse_sqrt_headroom = Some(2.0);
    let m = &default.metrics[0];
    // The same policy as it acts on 5-minute data, written without coarse settings.
    let mut plain = default.clone();
    plain.metrics[0] = m.settled(std::time::Duration::from_secs(300));
    let run = |p: &flexus_policy::Policy| {
        let mut req = TuneRequest::new(worldcup_day(), f.clone(), p.clone(), 0.02);
        req.max_evaluations = 30;
        req.options.metric_period_s = 300.0;
        req.options.metric_delay_s = 120.0;
        tune(&req).expect("tune")
    };
    let (r, rp) = (run(&default), run(&plain));
    let measures = |m: &flexus_sim::tune::Measured| (m.violation_min, m.instance_hours);
    // Searched alike: what moved is the headroom in effect at 5 minutes.
    assert_eq!(
        measures(&r.tuning.1),
        measures(&rp.tuning.1),
        "{}",
        r.text()
    );
    assert_eq!(measures(&r.validation.1), measures(&rp.validation.1));
    let (a, ap) = (&r.after.metrics[0], &rp.after.metrics[0]);
    assert_eq!(
        (a.coarse_sqrt_headroom, a.coarse_noise_headroom),
        (Some(ap.sqrt_headroom), Some(ap.noise_headroom)),
        "{}",
        r.text()
    );
    // The per-minute values are kept as written, and the report names the coarse fields.
    assert_eq!((a.sqrt_headroom, a.noise_headroom), (0.25, 1.0));
    let fields: Vec<_> = r.changes.iter().map(|c| c.field.as_str()).collect();
    let plain_fields: Vec<_> = rp.changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(
        fields,
        plain_fields
            .iter()
            .map(|f| match *f {
                "sqrt_headroom" => "coarse_sqrt_headroom",
                "noise_headroom" => "coarse_noise_headroom",
                f => f,
            })
            .collect::<Vec<_>>()
    );
    assert!(
        fields.iter().any(|f| f.starts_with("coarse_")),
        "the search moved no headroom: {fields:?}\n{}",
        r.text()
    );
}

/// The first third carries bursts the rest never has.
fn bursts_only_early() -> trace::Trace {
    bursts_in("bursts-early", 0, 96)
}

#[test]
fn the_aim_holds_on_the_most_recent_part_of_the_tuning_window() {
    // Bursts in the first half of the tuning window only: the start policy misses them
    // there, and meets the aim on the window's last third, the part most like what comes
    // next. The search does not buy capacity for load the pool stopped seeing.
    let f = lookup("x1.2u.4g").expect("flavor");
    let policy = default_policy(&f).expect("policy");
    let mut req = TuneRequest::new(bursts_only_early(), f, policy, 0.01);
    req.max_evaluations = 12;
    let r = tune(&req).expect("tune");
    let aim = 0.01 * flexus_sim::tune::SAFETY;
    let text = r.text();
    assert!(
        r.tuning.0.violation_share > 2.0 * aim && r.recent_share.0 <= aim,
        "the start misses the aim over the whole window only: {text}"
    );
    assert!(r.recent_share.1 <= aim, "{text}");
    assert!(
        r.tuning.1.instance_hours <= r.tuning.0.instance_hours + 1e-9,
        "no capacity bought for the early bursts: {text}"
    );
    assert!(r.validation.1.violation_share <= 0.01, "{text}");
}
