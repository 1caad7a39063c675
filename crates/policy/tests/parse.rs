//! Parsing and validation: every problem is reported, located and named.

mod common;

use std::time::Duration;

use flexus_policy::*;

fn data(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR")))
        .expect("read test data")
}

fn lines(d: &Diagnostics) -> Vec<String> {
    d.iter().map(ToString::to_string).collect()
}

/// The diagnostics of the HCL `src` read as `p.hcl`, a line each; panics when it parses.
fn hcl_errors(src: &str) -> Vec<String> {
    match parse_hcl(src, "p.hcl") {
        Ok(_) => panic!("parses, but should not:\n{src}"),
        Err(d) => lines(&d),
    }
}

/// Asserts that `got` has one line for each of `want_prefixes`, each starting with its prefix.
fn assert_prefixes(got: &[String], want_prefixes: &[&str]) {
    assert_eq!(got.len(), want_prefixes.len(), "{got:#?}");
    for (g, w) in got.iter().zip(want_prefixes) {
        assert!(g.starts_with(w), "got  {g}\nwant {w}…");
    }
}

#[test]
fn broken_hcl_reports_every_problem_at_its_line_and_column() {
    let err = parse_hcl(&data("broken.hcl"), "broken.hcl").expect_err("broken.hcl must not parse");
    let got = lines(&err);
    assert_prefixes(
        &got,
        &[
            "broken.hcl:3:1: evaluation_interval: invalid duration \"soon\"",
            "broken.hcl:6:3: bounds.min (10) must be at most bounds.max (4)",
            "broken.hcl:12:3: metric \"cpu\".target (a cpu percentage) must be greater than 0 and at most 100, got 160",
            "broken.hcl:16:3: unknown field `wieght` in metric \"cpu\". Did you mean `weight`? Allowed: coarse_above, coarse_noise_headroom, coarse_sqrt_headroom, delivery_delay, duration,",
            "broken.hcl:21:3: metric \"queue\".missing_data must be one of \"block_scale_in\", \"hold\", \"ignore\", \"fallback\", got \"skip\"",
            "broken.hcl:28:3: scale_in.cooldown: invalid duration \"5 minutes\"",
            "broken.hcl:31:5: scale_in.policies[0].value (percent) must be between 1 and 100, got 150",
            "broken.hcl:37:3: schedule \"peak\".cron: invalid cron expression \"0 8 * *\": expected 5 fields",
            "broken.hcl:43:3: spot.spot_percentage must be between 0 and 100, got 120",
        ],
    );
    // The field paths are the model's, for tools that point at attributes.
    assert_eq!(err.0[1].path.to_string(), "bounds.min");
    assert_eq!(err.0[2].path.to_string(), "metrics[0].target");
}

#[test]
fn broken_json_reports_every_problem_with_a_json_pointer() {
    let err = parse_json(&data("broken.json")).expect_err("broken.json must not parse");
    let got = lines(&err);
    assert_eq!(got.len(), 3, "{got:#?}");
    assert!(
        got[0]
            .starts_with("/metrics/0/colour: unknown field `colour` in metric \"cpu\". Allowed: "),
        "{}",
        got[0]
    );
    assert!(got[0].contains("weight"), "the allowed fields are listed");
    assert!(
        got[1].starts_with("/scale_in/cooldown: scale_in.cooldown: invalid duration \"5 minutes\""),
        "{}",
        got[1]
    );
    assert_eq!(
        got[2],
        "/spot/spot_percentage: spot.spot_percentage must be a number, got a string"
    );
}

#[test]
fn hcl_syntax_errors_are_located() {
    let err = parse_hcl("strategy = \"seed\"\nbounds {\n  min = \n}\n", "bad.hcl")
        .expect_err("syntax error");
    let Some(Location::Hcl { file, line, .. }) = &err.0[0].location else {
        panic!("no HCL location: {err}")
    };
    assert_eq!((file.as_str(), *line), ("bad.hcl", 3), "{err}");
    assert!(err.to_string().starts_with("bad.hcl:3:"), "{err}");
}

#[test]
fn missing_required_fields_point_at_their_block() {
    let err = parse_hcl("strategy = \"seed\"\n\nbounds {\n  min = 1\n}\n", "p.hcl")
        .expect_err("max missing");
    assert_eq!(
        lines(&err),
        vec![
            // Independent of bounds.max: a seed policy needs a scored metric whatever max is.
            "p.hcl:1:1: strategy \"seed\" needs at least one metric of kind cpu, memory, response_time or queue_length".to_owned(),
            "p.hcl:3:1: bounds.max is required but missing".to_owned()
        ]
    );
    let err = parse_json(r#"{"bounds": {"min": 1, "max": 2}}"#).expect_err("strategy missing");
    assert_eq!(
        lines(&err),
        vec!["/strategy: strategy is required but missing".to_owned()]
    );
}

#[test]
fn one_round_reports_every_problem_that_does_not_depend_on_a_refused_field() {
    // A misspelt strategy (required, an enum) used to stop every semantic rule.
    let src = r#"
strategy = "target_trackin"
bounds {
  min = 5
  max = 2
}
metric "cpu" {
  kind   = "cpu"
  target = 160
  source {
    type = "push"
  }
}
schedule "morning" {
  cron         = "0 25 * * *"
  duration     = "1h"
  min_capacity = 1
}
"#;
    let got = hcl_errors(src);
    let wanted = [
        "strategy must be one of",
        "bounds.min (5) must be at most bounds.max (2)",
        "metric \"cpu\".target (a cpu percentage)",
        "schedule \"morning\".cron: invalid cron expression \"0 25 * * *\"",
    ];
    for w in wanted {
        assert!(got.iter().any(|l| l.contains(w)), "{w:?} in {got:#?}");
    }
    // A problem that depends on the refused field is not guessed at: the target of a
    // metric whose kind is refused may or may not be a percentage.
    let src = src
        .replace(
            "strategy = \"target_trackin\"",
            "strategy = \"target_tracking\"",
        )
        .replace("kind   = \"cpu\"", "kind   = \"cpuu\"");
    let got = hcl_errors(&src);
    assert!(
        got.iter().any(|l| l.contains("kind must be one of")),
        "{got:#?}"
    );
    assert!(!got.iter().any(|l| l.contains("target")), "{got:#?}");
    assert!(got.iter().any(|l| l.contains("bounds.min (5)")), "{got:#?}");
    assert!(got.iter().any(|l| l.contains("cron")), "{got:#?}");
}

#[test]
fn unknown_top_level_fields_and_blocks_are_errors() {
    let src = "strategy = \"seed\"\nbounds {\n  min = 1\n  max = 3\n}\ncolour = \"red\"\nautoscale {\n}\n";
    let got = hcl_errors(src);
    // The semantic rules still run on what remains (a seed policy needs a scored metric).
    assert_prefixes(
        &got,
        &[
            "p.hcl:1:1: strategy \"seed\" needs at least one metric",
            "p.hcl:6:1: unknown field `colour` in the policy. Allowed: bounds, dry_run,",
            "p.hcl:7:1: unknown field `autoscale`",
        ],
    );
}

#[test]
fn only_literal_values_are_accepted_in_hcl() {
    let src = "strategy = var.strategy\nbounds {\n  min = 1\n  max = \"${local.max}\"\n}\n";
    let got = hcl_errors(src);
    assert_prefixes(
        &got,
        &[
            "p.hcl:1:12: strategy: only literal values",
            "p.hcl:4:9: bounds.max: interpolation",
        ],
    );
}

#[test]
fn duplicate_attributes_and_single_blocks_are_errors() {
    // hcl-edit itself rejects a redefined attribute, with its location.
    let src = "strategy = \"seed\"\nstrategy = \"step\"\n";
    let got = hcl_errors(src);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(got[0].starts_with("p.hcl:2:1: syntax error:"), "{}", got[0]);
    let src = "strategy = \"seed\"\nbounds {\n  min = 1\n  max = 3\n}\nbounds {\n  min = 1\n  max = 3\n}\n";
    let got = hcl_errors(src);
    assert_eq!(
        got,
        vec!["p.hcl:6:1: block `bounds` appears more than once in the policy".to_owned()]
    );
}

#[test]
fn negative_numbers_and_labels_lower_to_the_model() {
    let src = r#"
strategy = "step"
bounds {
  min = 1
  max = 9
}
metric "cpu" {
  kind = "cpu"
  source "push" {}
}
step {
  metric    = "cpu"
  threshold = 50
  adjustment {
    upper      = -10
    adjustment = -2
  }
  adjustment {
    lower      = 0
    adjustment = 1
  }
}
"#;
    let p = parse_hcl(src, "p.hcl").unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(p.metrics[0].name, "cpu");
    assert_eq!(p.metrics[0].source, MetricSource::Push);
    let s = p.step.expect("step");
    assert_eq!(s.adjustments[0].upper, Some(-10.0));
    assert_eq!(s.adjustments[0].adjustment, -2.0);
}

#[test]
fn validate_reports_field_paths_on_a_policy_built_in_code() {
    let mut p = parse_json(
        r#"{"strategy": "target_tracking", "bounds": {"min": 1, "max": 5},
            "metrics": [{"name": "cpu", "kind": "cpu", "source": {"type": "push"}, "target": 60}]}"#,
    )
    .expect("valid");
    p.tolerance = f64::NAN;
    p.metrics[0].target = Some(-1.0);
    p.metrics.push(p.metrics[0].clone());
    p.scale_in.policies[0].period = Duration::ZERO;
    p.bounds.initial = Some(9);
    p.schedules.push(Schedule {
        name: "x".into(),
        cron: "61 * * * *".into(),
        duration: Duration::from_secs(60),
        min_capacity: 2,
        timezone: "Mars/Olympus".into(),
        start_time: Some("2026-11-01T08:00:00+08:00".into()),
        end_time: Some("2026-10-01".into()),
    });
    let err = p.validate().expect_err("invalid");
    common::assert_paths_named(
        &err,
        &[
            "tolerance",
            "bounds.initial",
            "metrics[0].target",
            "metrics[1].name",
            "metrics[1].target",
            "scale_in.policies[0].period",
            "schedules[0].cron",
            "schedules[0].timezone",
            "schedules[0].end_time",
        ],
    );
    assert!(err.iter().all(|d| d.location.is_none()));
    let nan = err
        .iter()
        .find(|d| d.path.to_string() == "tolerance")
        .expect("tolerance");
    assert_eq!(
        nan.to_string(),
        "tolerance: tolerance must be a finite number, got NaN"
    );
}

#[test]
fn validation_covers_thresholds_weights_and_strategy_requirements() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{"strategy": "seed", "bounds": {"min": 1, "max": 5}, "metrics": [{"name": "c", "kind": "cpu", "source": {"type": "push"}, "scale_out_above": 30, "scale_in_below": 40}]}"#,
            "metrics[0].scale_out_above",
        ),
        (
            r#"{"strategy": "seed", "bounds": {"min": 1, "max": 5}, "metrics": [{"name": "c", "kind": "cpu", "source": {"type": "push"}, "weight": 0}]}"#,
            "metrics",
        ),
        (
            r#"{"strategy": "seed", "bounds": {"min": 1, "max": 5}, "metrics": [{"name": "c", "kind": "cpu", "source": {"type": "push"}, "weight": -1}]}"#,
            "metrics[0].weight",
        ),
        (
            r#"{"strategy": "target_tracking", "bounds": {"min": 1, "max": 5}}"#,
            "metrics",
        ),
        (
            r#"{"strategy": "step", "bounds": {"min": 1, "max": 5}}"#,
            "step",
        ),
        (
            r#"{"strategy": "schedule", "bounds": {"min": 1, "max": 5}}"#,
            "schedules",
        ),
        (
            r#"{"strategy": "schedule", "bounds": {"min": 1, "max": 5}, "schedules": [{"name": "a", "cron": "0 8 * * *", "duration": "0s", "min_capacity": 2}]}"#,
            "schedules[0].duration",
        ),
        (
            r#"{"strategy": "schedule", "bounds": {"min": 1, "max": 5}, "schedules": [{"name": "a", "cron": "0 8 * * *", "duration": "1h", "min_capacity": 2}], "prediction": {"enabled": true}}"#,
            "prediction.metric",
        ),
        (
            r#"{"strategy": "step", "bounds": {"min": 1, "max": 5}, "metrics": [{"name": "c", "kind": "cpu", "source": {"type": "push"}}], "step": {"metric": "c", "threshold": 50, "adjustments": [{"lower": 0, "upper": 20, "adjustment": 1}, {"lower": 10, "adjustment": 2}]}}"#,
            "step.adjustments[1]",
        ),
        (
            r#"{"strategy": "step", "bounds": {"min": 1, "max": 5}, "metrics": [{"name": "c", "kind": "cpu", "source": {"type": "push"}}], "step": {"metric": "c", "threshold": 50, "adjustments": [{"lower": -5, "upper": 5, "adjustment": 1}]}}"#,
            "step.adjustments[0]",
        ),
        (
            r#"{"strategy": "seed", "bounds": {"min": 1, "max": 5}, "metrics": [{"name": "c", "kind": "cpu", "source": {"type": "push"}}], "scale_out": {"policies": [{"type": "percent", "value": 0, "period": "15s"}]}}"#,
            "scale_out.policies[0].value",
        ),
        (
            r#"{"strategy": "seed", "bounds": {"min": 1, "max": 5}, "metrics": [{"name": "c", "kind": "cpu", "source": {"type": "push"}}], "tolerance": 1.5}"#,
            "tolerance",
        ),
        (
            r#"{"strategy": "fixed", "bounds": {"min": 1, "max": 5}}"#,
            "fixed",
        ),
        (
            r#"{"strategy": "fixed", "bounds": {"min": 1, "max": 5}, "fixed": {"count": 6}}"#,
            "fixed.count",
        ),
    ];
    for (src, path) in cases {
        let err = parse_json(src).expect_err(src);
        assert!(
            err.iter().any(|d| d.path.to_string() == *path),
            "expected a problem at {path}, got:\n{err}"
        );
        let pointer = FieldPath::parse(path).json_pointer();
        assert!(
            err.iter().any(|d| d.location
                == Some(Location::Json {
                    pointer: pointer.clone()
                })),
            "expected pointer {pointer}"
        );
    }
}

#[test]
fn durations_in_policies_round_trip_through_json() {
    let p = parse_hcl(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/policies/inference-target-tracking.hcl"
        ))
        .expect("read"),
        "x.hcl",
    )
    .expect("parses");
    let text = serde_json::to_string(&p).expect("serializes");
    assert!(text.contains(r#""stabilisation_window":"5m""#), "{text}");
    assert_eq!(parse_json(&text).expect("reparses"), p);
}

#[test]
fn counts_must_be_whole_non_negative_numbers() {
    let err = parse_json(r#"{"strategy": "schedule", "bounds": {"min": 2.5, "max": -1}}"#)
        .expect_err("bad counts");
    let got = lines(&err);
    assert!(
        got.contains(&"/bounds/min: bounds.min must be a whole number, got a number".to_owned()),
        "{got:#?}"
    );
    assert!(
        got.contains(&"/bounds/max: bounds.max must be at least 0, got -1".to_owned()),
        "{got:#?}"
    );
}

#[test]
fn a_misspelt_field_gets_the_closest_name_in_hcl_and_json_alike() {
    let hcl = "strategy = \"target_tracking\"\nbounds {\n  min = 1\n  max = 3\n}\nscale_in {\n  stabilization_window = \"5m\"\n}\nmetric \"cpu\" {\n  kind = \"cpu\"\n  target = 60\n}\n";
    let got = hcl_errors(hcl);
    assert!(
        got.iter().any(|l| l.contains(
            "unknown field `stabilization_window` in scale_in. Did you mean `stabilisation_window`?"
        )),
        "{got:#?}"
    );
    let json = r#"{"strategy": "target_tracking", "bounds": {"min": 1, "max": 3},
        "scale_in": {"stabilization_window": "5m"},
        "metrics": [{"name": "cpu", "kind": "cpu", "target": 60}]}"#;
    let got = lines(&parse_json(json).expect_err("typo"));
    assert!(
        got.iter().any(|l| l.contains(
            "unknown field `stabilization_window` in scale_in. Did you mean `stabilisation_window`?"
        )),
        "{got:#?}"
    );
}

#[test]
fn cron_errors_name_the_field_and_its_range_in_our_words() {
    use flexus_policy::parse_cron;
    let cases = [
        ("0 25 * * *", "hour 25 is out of range 0–23"),
        ("60 8 * * *", "minute 60 is out of range 0–59"),
        ("0 8 0 * *", "day-of-month 0 is out of range 1–31"),
        ("0 8 * 13 *", "month 13 is out of range 1–12"),
        ("0 8 * * 9", "day-of-week 9 is out of range 0–7"),
        ("0 8 * * FRI-MON", "day-of-week range 5-1 runs backwards"),
        (
            "0 8 * FOO *",
            "month \"FOO\" is not a number or a name (JAN,",
        ),
        (
            "*/0 8 * * *",
            "minute step \"0\" must be a whole number from 1 to 59",
        ),
    ];
    for (expr, want) in cases {
        let e = parse_cron(expr).expect_err(expr);
        assert!(e.contains(want), "{expr}: {e}");
        assert!(!e.contains("Component error"), "{expr}: {e}");
    }
    for ok in [
        "0 8 * * MON-FRI",
        "*/15 * * * *",
        "0 0 1,15 * *",
        "30 6 * JAN-MAR 1-5",
        "0 9 * * 7",
    ] {
        parse_cron(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
}

#[test]
fn a_json_key_given_twice_is_refused_at_the_pointer_of_the_second() {
    let src = r#"{
  "strategy": "target_tracking",
  "bounds": {"min": 1, "max": 10},
  "metrics": [{"name": "cpu", "kind": "cpu", "source": {"type": "push"}, "target": 60,
               "target": 90}]
}"#;
    let err = parse_json(src).expect_err("a duplicate key is refused");
    assert_eq!(err.len(), 1, "{err}");
    assert_eq!(
        err.0[0].location,
        Some(Location::Json {
            pointer: "/metrics/0/target".into()
        })
    );
    assert_eq!(
        err.to_string(),
        "/metrics/0/target: duplicate key \"target\" in metrics[0] (line 5 column 23): each key may appear once"
    );
    // At the top level too.
    let err = parse_json(r#"{"strategy": "step", "strategy": "target_tracking"}"#)
        .expect_err("duplicate");
    assert_eq!(
        err.0[0].location,
        Some(Location::Json {
            pointer: "/strategy".into()
        })
    );
}

#[test]
fn a_number_beyond_the_range_of_f64_is_out_of_range_naming_its_field_in_json_and_hcl() {
    let json = r#"{"strategy": "target_tracking", "bounds": {"min": 1, "max": 10},
  "metrics": [{"name": "cpu", "kind": "cpu", "source": {"type": "push"}, "target": 1e309}]}"#;
    let err = parse_json(json).expect_err("out of range");
    assert_eq!(err.0[0].path.to_string(), "metrics[0].target");
    assert!(
        err.to_string().starts_with(
            "/metrics/0/target: metrics[0].target: number out of range (line 2 column 88): 1e309 is beyond the largest finite number"
        ),
        "{err}"
    );
    let hcl = r#"strategy = "target_tracking"
bounds {
  min = 1
  max = 10
}
metric "cpu" {
  kind   = "cpu"
  source "push" {}
  target = 1e309
}
"#;
    let err = parse_hcl(hcl, "p.hcl").expect_err("out of range");
    assert_eq!(err.len(), 1, "{err}");
    assert_eq!(err.0[0].path.to_string(), "metrics[0].target");
    assert_eq!(
        err.to_string(),
        "p.hcl:9:12: metrics[0].target: number out of range: 1e309 is beyond the largest finite number (about ±1.8e308)"
    );
    // Negative, with a fraction, and two of them: each named.
    let two = "strategy = \"target_tracking\"\nbounds {\n  min = -2.5e400\n  max = 7e99999\n}\n";
    let err = parse_hcl(two, "p.hcl").expect_err("out of range");
    let lines: Vec<String> = err.iter().map(ToString::to_string).collect();
    assert!(
        lines[0].starts_with("p.hcl:3:9: bounds.min: number out of range: -2.5e400"),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("p.hcl:4:9: bounds.max: number out of range: 7e99999"),
        "{lines:?}"
    );
}

#[test]
fn invalid_utf8_in_a_policy_file_names_the_byte_line_and_column() {
    let mut bytes = b"strategy = \"target_tracking\"\nbounds { min = 1 }\n# caf".to_vec();
    bytes.extend([0xC3, 0x28]);
    bytes.extend(b"\n");
    let err = flexus_policy::source_text(&bytes, "p.hcl").expect_err("not UTF-8");
    assert_eq!(
        err.to_string(),
        "p.hcl:3:6: invalid UTF-8 at byte 53 (line 3, column 6): 0xc3 is not valid UTF-8; the text must be UTF-8"
    );
    // A character cut at the end of the file.
    let err = flexus_policy::source_text("é".as_bytes().split_at(1).0, "p.json").expect_err("cut");
    assert!(
        err.to_string().starts_with(
            "p.json:1:1: invalid UTF-8 at byte 0 (line 1, column 1): 0xc3 ends the file"
        ),
        "{err}"
    );
    assert_eq!(
        flexus_policy::source_text("ok é".as_bytes(), "p").expect("UTF-8"),
        "ok é"
    );
}

/// Found by the `policy` fuzz target: a JSON number was read to within one ulp only
/// (serde_json's fast float parser), so a policy written back as JSON and read again
/// was not the same policy.
#[test]
fn a_json_policy_written_back_as_json_reads_as_the_same_policy_to_the_last_bit() {
    for threshold in [
        "599999999999999999999999999",
        "0.30000000000000004",
        "2.2250738585072011e-308",
        "123456.78901234567",
    ] {
        let src = format!(
            r#"{{"strategy": "step", "bounds": {{"min": 1, "max": 50}},
            "metrics": [{{"name": "cpu", "kind": "cpu", "source": {{"type": "push"}}}}],
            "step": {{"metric": "cpu", "threshold": {threshold}, "adjustments": [
                {{"lower": 0, "adjustment": 2}}]}}}}"#
        );
        let policy = parse_json(&src).expect("parses");
        let again = parse_json(&serde_json::to_string(&policy).unwrap()).expect("parses again");
        assert_eq!(again, policy, "threshold {threshold}");
        let exact: f64 = threshold.parse().unwrap();
        let written = serde_json::to_value(&policy).unwrap();
        assert_eq!(
            written["step"]["threshold"].as_f64(),
            Some(exact),
            "{threshold}"
        );
    }
}
