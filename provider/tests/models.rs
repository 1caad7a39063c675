//! Model conversions and plan-time validation, without Terraform or an agent.

use flexus_api::{PolicySpec, Pool, PoolPhase, PoolSpec, PoolStatus};
use terraform_provider_flexus::errors::policy_diagnostics;
use terraform_provider_flexus::policy::PolicyResource;
use terraform_provider_flexus::policy_model::PolicyModel;
use terraform_provider_flexus::pool::{PoolModel, PoolResource};
use tfplugin::AttrPath;

fn examples_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/policies")
}

fn spec_of(policy: flexus_policy::Policy) -> PolicySpec {
    PolicySpec {
        pool: "web".into(),
        policy,
    }
}

#[test]
fn every_example_policy_round_trips_through_the_terraform_model() {
    let mut n = 0;
    // The examples, and the simulator's candidate policies (they use the newest options).
    let sim = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/sim/policies");
    let files = std::fs::read_dir(examples_dir())
        .expect("examples/policies")
        .chain(std::fs::read_dir(sim).expect("crates/sim/policies"));
    for e in files {
        let path = e.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read policy");
        let policy = match path.extension().and_then(|x| x.to_str()) {
            Some("hcl") => flexus_policy::parse_hcl(&text, &path.display().to_string()),
            Some("json") => flexus_policy::parse_json(&text),
            _ => continue,
        }
        .unwrap_or_else(|d| panic!("{} is a valid policy: {d}", path.display()));
        let spec = spec_of(policy.clone());
        let model = PolicyModel::from_policy("ns/p", "ns", "p", &spec, None);
        let back = model
            .to_policy()
            .unwrap_or_else(|d| panic!("{}: rendered model is valid: {d}", path.display()));
        assert_eq!(
            back,
            policy,
            "{} survives policy -> terraform model -> policy",
            path.display()
        );
        n += 1;
    }
    assert!(n >= 8, "found the example and candidate policies ({n})");
}

fn base_model() -> PolicyModel {
    let policy = flexus_policy::parse_json(
        r#"{"strategy":"target_tracking","bounds":{"min":1,"max":8},
            "metrics":[{"name":"cpu","kind":"cpu","target":60,"duration":"60s","source":{"type":"cloud_eye","metric_name":"cpu_util"}}],
            "scale_in":{"stabilisation_window":"2m","policies":[{"type":"pods","value":2,"period":"1m"}]}}"#,
    )
    .expect("valid");
    PolicyModel::from_policy("ns/p", "ns", "p", &spec_of(policy), None)
}

#[test]
fn an_unchanged_policy_keeps_the_spelling_of_the_state() {
    let mut prior = base_model();
    prior.metric[0].duration = Some("60s".into()); // the agent would print "1m"
    let stored = spec_of(prior.to_policy().expect("valid"));
    let read = PolicyModel::from_policy("ns/p", "ns", "p", &stored, Some(&prior));
    assert_eq!(read, prior);
}

#[test]
fn a_policy_edited_outside_terraform_reads_back_as_the_agents_version() {
    let prior = base_model();
    let mut stored = spec_of(prior.to_policy().expect("valid"));
    stored.policy.metrics[0].target = Some(85.0);
    let read = PolicyModel::from_policy("ns/p", "ns", "p", &stored, Some(&prior));
    assert_eq!(read.metric[0].target, Some(85.0));
    assert_eq!(
        read.scale_in, prior.scale_in,
        "unchanged parts render as before"
    );
}

#[test]
fn policy_errors_point_at_the_terraform_attribute() {
    let mut m = base_model();
    m.metric[0].target = Some(-5.0);
    m.scale_in.as_mut().expect("scale_in").stabilisation_window = Some("5 minutes".into());
    m.bounds.min = 9;
    let d = policy_diagnostics(&m.to_policy().expect_err("invalid"));
    let paths: Vec<String> = d
        .iter()
        .filter_map(|x| x.path.as_ref().map(ToString::to_string))
        .collect();
    assert!(
        paths.iter().any(|p| p == "scale_in.stabilisation_window"),
        "{paths:?}"
    );
    // The structural error hides the dependent semantic ones only where they overlap.
    assert!(!paths.is_empty());
}

#[test]
fn a_metrics_period_and_delivery_delay_reach_the_policy_and_its_freshness_limit() {
    let mut m = base_model();
    m.metric[0].period = Some("5m".into());
    m.metric[0].delivery_delay = Some("2m".into());
    let policy = m.to_policy().expect("valid");
    let metric = &policy.metrics[0];
    assert_eq!(metric.period, Some(std::time::Duration::from_secs(300)));
    assert_eq!(
        metric.delivery_delay,
        Some(std::time::Duration::from_secs(120))
    );
    // period + delivery delay + the default 15 s evaluation interval.
    let limit = metric.freshness(policy.evaluation_interval).limit;
    assert_eq!(limit, std::time::Duration::from_secs(300 + 120 + 15));
    // And back: the agent's copy renders the same attributes.
    let read = PolicyModel::from_policy("ns/p", "ns", "p", &spec_of(policy), Some(&m));
    assert_eq!(read.metric[0].period.as_deref(), Some("5m"));
    assert_eq!(read.metric[0].delivery_delay.as_deref(), Some("2m"));
    // A bad duration names the attribute.
    m.metric[0].delivery_delay = Some("two minutes".into());
    assert_refused_naming(&m, "delivery_delay");
}

/// `m` is refused with a diagnostic whose attribute path names `attr`.
fn assert_refused_naming(m: &PolicyModel, attr: &str) {
    let d = policy_diagnostics(&m.to_policy().expect_err("invalid"));
    assert!(
        d.iter().any(|x| x
            .path
            .as_ref()
            .is_some_and(|p| p.to_string().contains(attr))),
        "{d:?}"
    );
}

#[test]
fn a_metrics_noise_headroom_reaches_the_policy_and_reads_back() {
    let mut m = base_model();
    m.metric[0].noise_headroom = Some(1.5);
    m.metric[0].noise_window = Some("2h".into());
    let policy = m.to_policy().expect("valid");
    assert_eq!(policy.metrics[0].noise_headroom, 1.5);
    assert_eq!(
        policy.metrics[0].noise_window,
        std::time::Duration::from_secs(7200)
    );
    let read = PolicyModel::from_policy("ns/p", "ns", "p", &spec_of(policy), Some(&m));
    assert_eq!(read.metric[0].noise_headroom, Some(1.5));
    assert_eq!(read.metric[0].noise_window.as_deref(), Some("2h"));
    // Out of range: the diagnostic names the attribute.
    m.metric[0].noise_headroom = Some(-1.0);
    assert_refused_naming(&m, "noise_headroom");
}

#[test]
fn plan_time_validation_reads_the_raw_configuration() {
    let mut m = base_model();
    m.metric[0].target = Some(-5.0);
    let ty = tfplugin::testing::resource_type(&PolicyResource).expect("type");
    let v = tfplugin::model::to_value(&m, &ty, "test").expect("value");
    let d = tfplugin::testing::validate(PolicyResource, &v).expect("schema");
    let paths: Vec<AttrPath> = d.iter().filter_map(|x| x.path.clone()).collect();
    assert!(
        paths.contains(&AttrPath::new("metric").index(0).attr("target")),
        "{d}"
    );
    // A valid policy passes.
    let ok = tfplugin::model::to_value(&base_model(), &ty, "test").expect("value");
    let d = tfplugin::testing::validate(PolicyResource, &ok).expect("schema");
    assert!(d.is_empty(), "{d}");
}

/// Issue #11, item 5: `pool = flexus_x_pool.x.name` (unknown at validate) used to hold
/// back every policy check until apply.
#[test]
fn validate_reports_every_error_that_does_not_depend_on_an_unknown_value() {
    let mut m = base_model();
    m.metric[0].target = Some(160.0);
    m.bounds.min = 5;
    m.bounds.max = 2;
    let ty = tfplugin::testing::resource_type(&PolicyResource).expect("type");
    let mut v = tfplugin::model::to_value(&m, &ty, "test").expect("value");
    *AttrPath::new("pool").get_mut(&mut v).expect("pool") = tfplugin::Value::Unknown;
    let d = tfplugin::testing::validate(PolicyResource, &v).expect("schema");
    let paths: Vec<String> = d
        .iter()
        .filter_map(|x| x.path.as_ref().map(ToString::to_string))
        .collect();
    assert!(paths.contains(&"metric[0].target".to_string()), "{d}");
    assert!(paths.contains(&"bounds.min".to_string()), "{d}");
    // bounds.max unknown: whether min <= max holds is not known yet, so it is not reported;
    // the target error does not depend on it and still is.
    *AttrPath::new("bounds")
        .attr("max")
        .get_mut(&mut v)
        .expect("max") = tfplugin::Value::Unknown;
    let d = tfplugin::testing::validate(PolicyResource, &v).expect("schema");
    let paths: Vec<String> = d
        .iter()
        .filter_map(|x| x.path.as_ref().map(ToString::to_string))
        .collect();
    assert_eq!(paths, ["metric[0].target"], "{d}");
    // The whole metric block unknown (a dynamic block): nothing about metrics is guessed.
    *AttrPath::new("metric").get_mut(&mut v).expect("metric") = tfplugin::Value::Unknown;
    let d = tfplugin::testing::validate(PolicyResource, &v).expect("schema");
    assert!(d.is_empty(), "{d}");
}

fn pool_model() -> PoolModel {
    PoolModel {
        id: None,
        namespace: None,
        name: "web".into(),
        flavor: "x1.2u.4g".into(),
        image: "img".into(),
        vpc_id: "vpc".into(),
        subnet_ids: vec!["s1".into()],
        security_group_ids: None,
        availability_zones: None,
        key_pair: None,
        user_data: None,
        root_volume: None,
        min_size: 1,
        max_size: 4,
        initial_size: None,
        spot: None,
        boot_seconds: Some(60),
        warmup_seconds: Some(0),
        removal_rule: Some("spot_newest_first".into()),
        tags: Some([("app".to_string(), "x".to_string())].into()),
        instance_refresh: None,
        wait_for_capacity_timeout: Some("5m".into()),
        current_size: None,
        ready_size: None,
        instance_ids: None,
        status: None,
    }
}

fn pool(spec: PoolSpec, current: u32) -> Pool {
    Pool {
        namespace: "ns".into(),
        name: "web".into(),
        id: "ns/web".into(),
        version: 1,
        spec,
        status: PoolStatus {
            phase: PoolPhase::Ready,
            current_size: current,
            ready_size: current,
            instance_ids: (0..current).map(|i| format!("i-{i}")).collect(),
            ..PoolStatus::default()
        },
        created_at: String::new(),
        updated_at: String::new(),
    }
}

#[test]
fn the_agent_scaling_a_pool_changes_only_computed_attributes() {
    let prior = pool_model();
    let read = PoolModel::from_pool(&pool(prior.to_spec(), 3), Some(&prior));
    assert_eq!(read.current_size, Some(3));
    assert_eq!(read.instance_ids.as_ref().map(Vec::len), Some(3));
    let mut declared = read.clone();
    declared.current_size = None;
    declared.ready_size = None;
    declared.instance_ids = None;
    declared.status = None;
    declared.id = None;
    declared.namespace = None;
    assert_eq!(
        declared, prior,
        "the declaration and its spelling are kept (no root_volume or spot block appears)"
    );
}

#[test]
fn a_pool_declaration_changed_outside_terraform_is_read_back() {
    let prior = pool_model();
    let mut spec = prior.to_spec();
    spec.max_size = 10;
    spec.root_volume.size = 100;
    let read = PoolModel::from_pool(&pool(spec, 1), Some(&prior));
    assert_eq!(read.max_size, 10);
    assert_eq!(read.root_volume.as_ref().and_then(|r| r.size), Some(100));
    assert_eq!(
        read.spot, None,
        "the unchanged default spot block stays unset"
    );
    assert_eq!(
        read.wait_for_capacity_timeout.as_deref(),
        Some("5m"),
        "provider-only settings are kept"
    );
}

#[test]
fn pool_bounds_are_checked_at_plan_time_with_the_agents_rules() {
    let mut m = pool_model();
    m.min_size = 5;
    m.max_size = 2;
    let ty = tfplugin::testing::resource_type(&PoolResource).expect("type");
    let mut v = tfplugin::model::to_value(&m, &ty, "test").expect("value");
    let d = tfplugin::testing::validate(PoolResource, &v).expect("schema");
    assert!(
        d.iter().any(|x| x.path == Some(AttrPath::new("min_size"))),
        "{d}"
    );
    // With the image from another resource (unknown), the bounds are still checked.
    *AttrPath::new("image").get_mut(&mut v).expect("image") = tfplugin::Value::Unknown;
    let d = tfplugin::testing::validate(PoolResource, &v).expect("schema");
    assert!(
        d.iter().any(|x| x.path == Some(AttrPath::new("min_size"))),
        "{d}"
    );
}

#[test]
fn a_plan_that_changes_the_flavor_warns_that_running_instances_will_be_replaced() {
    let ty = tfplugin::testing::resource_type(&PoolResource).expect("type");
    let mut prior = pool_model();
    prior.id = Some("ns/web".into());
    prior.current_size = Some(3);
    let prior_v = tfplugin::model::to_value(&prior, &ty, "test").expect("value");
    let mut next = pool_model();
    next.flavor = "x1.4u.8g".into();
    let next_v = tfplugin::model::to_value(&next, &ty, "test").expect("value");
    let w =
        tfplugin::testing::plan_warnings(PoolResource, &prior_v, &next_v, &next_v).expect("plans");
    let text = w.to_string();
    assert!(
        text.contains("Running instances will be replaced"),
        "{text}"
    );
    assert!(text.contains("flavor"), "names the changed field: {text}");
    assert!(text.contains("3 running instance(s)"), "{text}");
    assert!(text.contains("at least 90 %"), "{text}");
    // A change outside the template (the bounds) warns of nothing.
    let mut bounds = pool_model();
    bounds.max_size = 8;
    let v = tfplugin::model::to_value(&bounds, &ty, "test").expect("value");
    let w = tfplugin::testing::plan_warnings(PoolResource, &prior_v, &v, &v).expect("plans");
    assert!(w.is_empty(), "{w}");
}
