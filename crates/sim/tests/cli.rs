//! The library entry points behind `flexus-agent simulate`.

use flexus_sim::simulation::{
    BASELINES, SimulateArgs, SimulateOptions, parse_policy_for_tests, simulate,
    simulate_named_trace,
};

#[test]
fn simulate_named_trace_scores_the_policy_next_to_every_requested_baseline() {
    let policy = parse_policy_for_tests(include_str!("../policies/sim-default-gpu.json"));
    let opts = SimulateOptions {
        against: vec!["hpa".into(), "aws-tt".into(), "oracle".into()],
        ..SimulateOptions::default()
    };
    let card = simulate_named_trace("azure-llm-conv", &policy, &opts).expect("simulate");
    let names: Vec<&str> = card.scores.iter().map(|s| s.policy.as_str()).collect();
    assert_eq!(
        names,
        ["policy", "hpa-default", "aws-target-tracking", "oracle"]
    );
    assert_eq!(card.flavor, "pi2.2xlarge.4");
    assert!(card.hours > 0.9 && card.hours < 1.1, "{}", card.hours);
    let md = card.markdown();
    assert!(
        md.contains("| oracle |") && md.contains("azure-llm-conv"),
        "{md}"
    );
}

#[test]
fn simulate_writes_a_chart_naming_every_policy() {
    let dir = std::env::temp_dir().join(format!("flexus-sim-chart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let chart = dir.join("chart.svg");
    let args = SimulateArgs {
        trace: "azure-llm-code".into(),
        policy: Some(concat!(env!("CARGO_MANIFEST_DIR"), "/policies/sim-default-gpu.json").into()),
        options: SimulateOptions {
            against: BASELINES.iter().map(|s| (*s).to_owned()).collect(),
            ..SimulateOptions::default()
        },
        chart: Some(chart.clone()),
    };
    let mut seen = Vec::new();
    let card = simulate(&args, &mut |n| seen.push(n.to_owned())).expect("simulate");
    assert_eq!(
        seen.len(),
        BASELINES.len() + 1,
        "progress reported per policy"
    );
    assert_eq!(card.scores.len(), BASELINES.len() + 1);
    let svg = std::fs::read_to_string(&chart).expect("chart written");
    assert!(svg.starts_with("<svg") || svg.contains("<svg"), "an SVG");
    for name in ["sim-default-gpu", "hpa-default", "oracle", "demand"] {
        assert!(svg.contains(name), "chart legend lacks {name}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn an_unknown_baseline_is_rejected_by_name() {
    let policy = parse_policy_for_tests(include_str!("../policies/sim-default-x1.json"));
    let opts = SimulateOptions {
        against: vec!["kubernetes-vpa".into()],
        ..SimulateOptions::default()
    };
    let e = simulate_named_trace("azure-llm-conv", &policy, &opts).expect_err("unknown baseline");
    let msg = e.to_string();
    assert!(
        msg.contains("against") && msg.contains("kubernetes-vpa") && msg.contains("aws-tt"),
        "{msg}"
    );
}

#[test]
fn a_policy_file_with_a_bad_field_is_reported_with_the_file_name() {
    let dir = std::env::temp_dir().join(format!("flexus-sim-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let file = dir.join("bad.json");
    std::fs::write(
        &file,
        r#"{"strategy": "target_tracking", "bounds": {"min": 5, "max": 1}, "metrics": []}"#,
    )
    .expect("write");
    let args = SimulateArgs {
        trace: "azure-llm-conv".into(),
        policy: Some(file.clone()),
        options: SimulateOptions {
            against: vec![],
            ..SimulateOptions::default()
        },
        chart: None,
    };
    let e = simulate(&args, &mut |_| {}).expect_err("invalid policy");
    assert!(e.to_string().contains("bad.json"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

/// examples/policies/web-predictive.hcl is the benchmarked default in HCL: the two
/// must not drift apart.
#[test]
fn the_hcl_example_is_the_benchmarked_default_policy() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let hcl = flexus_sim::policy::load_policy_file(
        &root.join("../../examples/policies/web-predictive.hcl"),
    )
    .expect("the example parses");
    let json = flexus_sim::policy::load_policy_file(&root.join("policies/sim-default-x1.json"))
        .expect("the default parses");
    assert_eq!(hcl, json);
}

#[test]
fn a_window_too_quiet_to_compare_autoscalers_is_named_in_a_warning_and_the_columns_are_explained() {
    let quiet = SimulateArgs {
        trace: "nasa-http-1995".into(),
        policy: None,
        options: SimulateOptions {
            peak_instances: 2,
            max_hours: Some(6.0),
            against: vec!["hpa".into(), "aws-tt".into()],
            ..SimulateOptions::default()
        },
        chart: None,
    };
    let card = simulate(&quiet, &mut |_| {}).expect("simulate");
    let text = card.markdown();
    assert!(
        card.warnings().iter().any(|w| w.contains("too quiet")),
        "{text}"
    );
    assert!(text.contains("**warning:**"), "{text}");
    assert!(
        text.contains("jitter/h = "),
        "the legend explains jitter: {text}"
    );

    let busy = SimulateArgs {
        options: SimulateOptions {
            peak_instances: 20,
            max_hours: Some(48.0),
            ..quiet.options.clone()
        },
        ..quiet
    };
    let card = simulate(&busy, &mut |_| {}).expect("simulate");
    assert!(card.warnings().is_empty(), "{:?}", card.warnings());
}
