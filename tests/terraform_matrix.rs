//! The Terraform matrix: real Terraform (1.15.5 and 1.0.3) drives the freshly built
//! provider against a real `flexus-agent` and `flexus-emulator` on loopback. Init comes
//! from a filesystem mirror (no network).

use std::path::Path;
use std::time::Duration;

use flexus_api::Precondition;
use flexus_e2e::{Stack, StackOptions, copy_example, terraform_1_0, terraform_latest, workspace};
use tfplugin::testing::Workspace;

fn tf(ws: &Workspace, args: &[&str]) -> tfplugin::testing::Outcome {
    ws.terraform(args)
        .unwrap_or_else(|e| panic!("cannot run terraform {args:?}: {e}"))
}

fn plan_code(ws: &Workspace) -> (i32, String) {
    let o = tf(ws, &["plan", "-detailed-exitcode"]);
    (o.code, o.output())
}

#[track_caller]
fn expect_no_changes(ws: &Workspace, stack: &Stack, when: &str) {
    let (code, out) = plan_code(ws);
    assert_eq!(
        code,
        0,
        "{when}: a second plan must show no changes\n{out}\n--- agent log tail\n{}",
        tail(&stack.agent_log())
    );
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn quickstart_lifecycle(terraform: &Path) {
    let stack = Stack::start(StackOptions::default());
    let ns = "team-a";
    let client = stack.client();
    let ws = workspace(terraform, &stack, ns);
    copy_example("quickstart", &ws);
    ws.write("terraform.tfvars", "max_size = 4\n")
        .expect("tfvars");

    tf(&ws, &["init"]).expect_code(0, "init from the filesystem mirror");
    let apply = tf(&ws, &["apply", "-auto-approve"]);
    apply.expect_code(0, "first apply");

    // Apply returned only once the agent reported min_size ready instances.
    let pool = stack
        .block_on(client.get_pool(ns, "web"))
        .expect("pool exists in the agent")
        .value;
    assert!(
        pool.status.ready_size >= 1,
        "apply waits for min_size ready: {:?}",
        pool.status
    );
    assert!(
        !stack.emulator_instances("web").is_empty(),
        "the agent created instances in the emulator"
    );
    expect_no_changes(&ws, &stack, "after create");
    // The data source read the pool's live status from the agent.
    let shown = tf(&ws, &["state", "show", "data.flexus_x_pool.web"]);
    shown.expect_code(0, "state show of the data source");
    assert!(
        shown.stdout.contains("ready_size")
            && shown.stdout.contains("\"team-a/web\"")
            && shown.stdout.contains("x1.2u.4g"),
        "{}",
        shown.stdout
    );

    // The agent scaling the pool out under load is not drift.
    stack.emulator_post(
        "/_emulator/workload",
        &serde_json::json!({"pool": "web", "shape": {"kind": "constant", "rps": 5000}}),
    );
    stack.wait_for(
        Duration::from_secs(120),
        "the agent to scale the pool out under load",
        || {
            let p = stack.block_on(client.get_pool(ns, "web")).ok()?.value;
            (p.status.current_size >= 2).then_some(())
        },
    );
    expect_no_changes(&ws, &stack, "after the agent scaled the pool out");
    stack.emulator_delete("/_emulator/workload/web");

    // An in-place change of both resources.
    ws.write("terraform.tfvars", "max_size = 6\ncpu_target = 70\n")
        .expect("tfvars");
    let (code, out) = plan_code(&ws);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("updated in-place") && !out.contains("must be replaced"),
        "{out}"
    );
    tf(&ws, &["apply", "-auto-approve"]).expect_code(0, "in-place apply");
    let pool = stack
        .block_on(client.get_pool(ns, "web"))
        .expect("pool")
        .value;
    assert_eq!(pool.spec.max_size, 6);
    let policy = stack
        .block_on(client.get_policy(ns, "web-cpu"))
        .expect("policy")
        .value;
    assert_eq!(policy.spec.policy.metrics[0].target, Some(70.0));
    expect_no_changes(&ws, &stack, "after the in-place update");

    // A change that forces replacement.
    ws.write(
        "terraform.tfvars",
        "max_size = 6\ncpu_target = 70\npolicy_name = \"web-cpu-v2\"\n",
    )
    .expect("tfvars");
    let (code, out) = plan_code(&ws);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("must be replaced"), "{out}");
    tf(&ws, &["apply", "-auto-approve"]).expect_code(0, "replacing apply");
    assert!(
        stack
            .block_on(client.get_policy(ns, "web-cpu"))
            .is_err_and(|e| e.is_not_found()),
        "old policy removed"
    );
    stack
        .block_on(client.get_policy(ns, "web-cpu-v2"))
        .expect("new policy");
    expect_no_changes(&ws, &stack, "after the replacement");

    // Drift: the policy edited through the agent API shows in the plan; apply restores it.
    let mut edited = stack
        .block_on(client.get_policy(ns, "web-cpu-v2"))
        .expect("policy")
        .value
        .spec;
    edited.policy.metrics[0].target = Some(85.0);
    stack
        .block_on(client.put_policy(ns, "web-cpu-v2", &edited, Precondition::None))
        .expect("edit policy outside terraform");
    let (code, out) = plan_code(&ws);
    assert_eq!(code, 2, "a policy edited outside Terraform is drift\n{out}");
    assert!(
        out.contains("85") && out.contains("70"),
        "the plan shows the edited target: {out}"
    );
    tf(&ws, &["apply", "-auto-approve"]).expect_code(0, "apply restores the policy");
    let policy = stack
        .block_on(client.get_policy(ns, "web-cpu-v2"))
        .expect("policy")
        .value;
    assert_eq!(policy.spec.policy.metrics[0].target, Some(70.0));
    expect_no_changes(&ws, &stack, "after restoring the policy");

    // Drift: the pool's declaration edited through the agent API shows in the plan.
    let mut spec = stack
        .block_on(client.get_pool(ns, "web"))
        .expect("pool")
        .value
        .spec;
    spec.max_size = 7;
    spec.tags.insert("edited".into(), "outside".into());
    stack
        .block_on(client.put_pool(ns, "web", &spec, Precondition::None))
        .expect("edit pool outside terraform");
    let (code, out) = plan_code(&ws);
    assert_eq!(
        code, 2,
        "a pool declaration edited outside Terraform is drift\n{out}"
    );
    assert!(
        out.contains("max_size") && out.contains("edited"),
        "the plan shows the edited fields: {out}"
    );
    assert!(!out.contains("must be replaced"), "{out}");
    tf(&ws, &["apply", "-auto-approve"]).expect_code(0, "apply restores the pool");
    let pool = stack
        .block_on(client.get_pool(ns, "web"))
        .expect("pool")
        .value;
    assert_eq!(pool.spec.max_size, 6);
    assert!(!pool.spec.tags.contains_key("edited"));
    expect_no_changes(&ws, &stack, "after restoring the pool");

    // Drift: a pool deleted outside Terraform is planned for creation again.
    stack
        .block_on(client.delete_pool(ns, "web", Precondition::None))
        .expect("delete pool outside terraform");
    stack.wait_for(
        Duration::from_secs(120),
        "the agent to forget the deleted pool",
        || {
            stack
                .block_on(client.get_pool(ns, "web"))
                .is_err_and(|e| e.is_not_found())
                .then_some(())
        },
    );
    let (code, out) = plan_code(&ws);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("flexus_x_pool.web will be created"), "{out}");
    tf(&ws, &["apply", "-auto-approve"]).expect_code(0, "apply recreates the pool");
    expect_no_changes(&ws, &stack, "after recreating the pool");

    // Import of both resources, then a clean plan.
    tf(
        &ws,
        &[
            "state",
            "rm",
            "flexus_x_pool.web",
            "flexus_autoscaling_policy.web",
        ],
    )
    .expect_code(0, "state rm");
    tf(&ws, &["import", "flexus_x_pool.web", "team-a/web"]).expect_code(0, "import the pool");
    tf(
        &ws,
        &[
            "import",
            "flexus_autoscaling_policy.web",
            "team-a/web-cpu-v2",
        ],
    )
    .expect_code(0, "import the policy");
    // Terraform 1.0 does not write output values on import, so its plan may list output
    // changes; resource changes there would be a provider bug.
    let (code, out) = plan_code(&ws);
    assert!(code == 0 || code == 2, "{out}");
    assert!(
        !out.contains("will be") && !out.contains("must be"),
        "imported resources match the configuration:\n{out}"
    );
    if code == 2 {
        assert!(out.contains("Changes to Outputs"), "{out}");
        tf(&ws, &["apply", "-auto-approve"]).expect_code(0, "record the outputs");
    }
    expect_no_changes(&ws, &stack, "after import");
    let missing = tf(&ws, &["import", "flexus_x_pool.other", "team-a/nope"]);
    assert_ne!(missing.code, 0);

    // Destroy leaves no pool, no policy and no instance.
    tf(&ws, &["destroy", "-auto-approve"]).expect_code(0, "destroy");
    assert!(
        stack
            .block_on(client.list_pools(ns))
            .expect("list pools")
            .is_empty()
    );
    assert!(
        stack
            .block_on(client.list_policies(ns))
            .expect("list policies")
            .is_empty()
    );
    let left = stack.emulator_instances("web");
    assert!(left.is_empty(), "destroy leaves no instances: {left:?}");
}

#[test]
fn terraform_1_15_applies_updates_replaces_detects_drift_imports_and_destroys() {
    quickstart_lifecycle(&terraform_latest());
}

#[test]
fn terraform_1_0_applies_updates_replaces_detects_drift_imports_and_destroys() {
    quickstart_lifecycle(&terraform_1_0());
}

/// Live instances of `pool` in the emulator (not being deleted) and their flavors.
fn live_flavors(stack: &Stack, pool: &str) -> Vec<String> {
    stack
        .emulator_instances(pool)
        .iter()
        .filter(|i| i["lifecycle"] != "deleting")
        .map(|i| i["flavor"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn instance_refresh_lifecycle(terraform: &Path) {
    let stack = Stack::start(StackOptions::default());
    let ns = "team-a";
    let client = stack.client();
    let ws = workspace(terraform, &stack, ns);
    copy_example("instance-refresh", &ws);
    tf(&ws, &["init"]).expect_code(0, "init from the filesystem mirror");
    tf(&ws, &["apply", "-auto-approve"]).expect_code(0, "first apply");
    assert_eq!(live_flavors(&stack, "infer"), vec!["x1.2u.4g"; 3]);

    ws.write("terraform.tfvars", "flavor = \"x1.4u.8g\"\n")
        .expect("tfvars");
    let (code, out) = plan_code(&ws);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("updated in-place") && !out.contains("must be replaced"),
        "{out}"
    );
    assert!(
        out.contains("Running instances will be replaced") && out.contains("in batches"),
        "the plan says what will happen to the running instances:\n{out}"
    );
    let apply = tf(&ws, &["apply", "-auto-approve"]);
    apply.expect_code(0, "apply of the new flavor");
    // Apply returned only once the refresh had finished.
    assert_eq!(
        live_flavors(&stack, "infer"),
        vec!["x1.4u.8g"; 3],
        "no instance of the old flavor is left when apply returns"
    );
    let pool = stack
        .block_on(client.get_pool(ns, "infer"))
        .expect("pool")
        .value;
    assert!(pool.status.refresh.is_none(), "{:?}", pool.status);
    assert!(pool.status.ready_size >= 3, "{:?}", pool.status);
    expect_no_changes(&ws, &stack, "after the refresh");
    tf(&ws, &["destroy", "-auto-approve"]).expect_code(0, "destroy");
}

#[test]
fn terraform_1_15_replaces_instances_in_batches_when_the_flavor_changes() {
    instance_refresh_lifecycle(&terraform_latest());
}

#[test]
fn terraform_1_0_replaces_instances_in_batches_when_the_flavor_changes() {
    instance_refresh_lifecycle(&terraform_1_0());
}

const BAD_POLICY: &str = r#"
provider "flexus" {}

resource "flexus_x_pool" "p" {
  name       = "bad"
  flavor     = "x1.2u.4g"
  image      = "img"
  vpc_id     = "vpc"
  subnet_ids = ["s"]
  min_size   = 5
  max_size   = 2
}

resource "flexus_autoscaling_policy" "p" {
  name     = "bad"
  pool     = "bad"
  strategy = "target_tracking"
  bounds {
    min = 1
    max = 4
  }
  metric {
    name   = "cpu"
    kind   = "cpu"
    target = -5
    source {
      type = "push"
    }
  }
  scale_in {
    stabilisation_window = "5 minutes"
  }
}
"#;

fn invalid_configs_point_at_the_line(terraform: &Path) {
    let stack = Stack::start(StackOptions::default());
    let ws = workspace(terraform, &stack, "team-a");
    ws.write(
        "main.tf",
        &format!(
            "{}{BAD_POLICY}",
            flexus_e2e::provider().required_providers_block()
        ),
    )
    .expect("main.tf");
    tf(&ws, &["init"]).expect_code(0, "init");
    let v = tf(&ws, &["validate"]);
    assert_ne!(v.code, 0, "invalid config must fail validate");
    let out = v.output();
    let lines: Vec<&str> = ws_lines(&ws);
    for (needle, attr) in [
        ("min_size   = 5", "min_size"),
        ("target = -5", "target"),
        ("\"5 minutes\"", "stabilisation_window"),
    ] {
        let line = lines
            .iter()
            .position(|l| l.contains(needle))
            .expect("needle in config")
            + 1;
        assert!(
            out.contains(&format!("main.tf line {line}")),
            "the diagnostic for {attr} points at line {line}:\n{out}"
        );
    }
    // A bad provider setting points at the provider block's line (Terraform stops there).
    let with_bad_provider = std::fs::read_to_string(ws.path().join("main.tf"))
        .expect("main.tf")
        .replace(
            "provider \"flexus\" {}",
            "provider \"flexus\" {\n  request_timeout = \"soon\"\n}",
        );
    ws.write("main.tf", &with_bad_provider).expect("main.tf");
    let v = tf(&ws, &["validate"]);
    assert_ne!(v.code, 0);
    let line = with_bad_provider
        .lines()
        .position(|l| l.contains("request_timeout"))
        .expect("line")
        + 1;
    assert!(
        v.output().contains(&format!("main.tf line {line}"))
            && v.output().contains("request_timeout"),
        "{}",
        v.output()
    );
    // Nothing reached the agent.
    assert!(
        stack
            .block_on(stack.client().list_pools("team-a"))
            .expect("list")
            .is_empty()
    );
}

fn ws_lines(ws: &Workspace) -> Vec<&'static str> {
    let text = std::fs::read_to_string(ws.path().join("main.tf")).expect("read main.tf");
    Box::leak(text.into_boxed_str()).lines().collect()
}

#[test]
fn terraform_1_15_points_invalid_pool_and_policy_settings_at_their_lines() {
    invalid_configs_point_at_the_line(&terraform_latest());
}

#[test]
fn terraform_1_0_points_invalid_pool_and_policy_settings_at_their_lines() {
    invalid_configs_point_at_the_line(&terraform_1_0());
}

const SOLD_OUT_POOL: &str = r#"
provider "flexus" {}

resource "flexus_x_pool" "scarce" {
  name       = "scarce"
  flavor     = "x1.1u.1g"
  image      = "img"
  vpc_id     = "vpc"
  subnet_ids = ["s"]
  min_size   = 1
  max_size   = 2

  wait_for_capacity_timeout = "WAIT"
}
"#;

#[test]
fn apply_fails_clearly_when_the_pool_cannot_reach_min_size_in_time_and_a_retry_adopts_it() {
    let stack = Stack::start(StackOptions::default());
    let ws = workspace(&terraform_latest(), &stack, "team-a");
    let header = flexus_e2e::provider().required_providers_block();
    stack.emulator_post(
        "/_emulator/flavors/x1.1u.1g",
        &serde_json::json!({"sold_out": true}),
    );
    ws.write(
        "main.tf",
        &format!("{header}{}", SOLD_OUT_POOL.replace("WAIT", "3s")),
    )
    .expect("main.tf");
    tf(&ws, &["init"]).expect_code(0, "init");
    let apply = tf(&ws, &["apply", "-auto-approve"]);
    assert_ne!(
        apply.code, 0,
        "apply cannot succeed while the flavor is sold out"
    );
    let out = apply.output();
    assert!(
        out.contains("Timed out waiting for capacity") && out.contains("0 of min_size 1"),
        "{out}"
    );
    let text = std::fs::read_to_string(ws.path().join("main.tf")).expect("main.tf");
    let line = text
        .lines()
        .position(|l| l.contains("wait_for_capacity_timeout"))
        .expect("line")
        + 1;
    assert!(
        out.contains(&format!("main.tf line {line}")),
        "the error points at wait_for_capacity_timeout: {out}"
    );

    // Capacity comes back; apply again adopts the pool the first apply declared.
    stack.emulator_post(
        "/_emulator/flavors/x1.1u.1g",
        &serde_json::json!({"sold_out": false}),
    );
    ws.write(
        "main.tf",
        &format!("{header}{}", SOLD_OUT_POOL.replace("WAIT", "2m")),
    )
    .expect("main.tf");
    tf(&ws, &["apply", "-auto-approve"])
        .expect_code(0, "a second apply adopts the pool and waits for capacity");
    expect_no_changes(&ws, &stack, "after adopting the pool");
    tf(&ws, &["destroy", "-auto-approve"]).expect_code(0, "destroy");
    assert!(stack.emulator_instances("scarce").is_empty());
}
