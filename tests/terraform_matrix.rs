//! The Terraform matrix: real Terraform (1.15.5 and 1.0.3) drives the freshly built
//! provider against a real `flexus-agent` and `flexus-emulator` on loopback. Init comes
//! from a filesystem mirror (no network).

use std::path::Path;
use std::time::Duration;

use flexus_api::Precondition;
use flexus_e2e::{Stack, StackOptions, copy_example, on_both_versions, workspace};
use tfplugin::testing::Workspace;

/// Destroy, then check the agent holds no pool and no policy in `ns`.
#[track_caller]
fn destroy_leaves_nothing(ws: &Workspace, stack: &Stack, ns: &str) {
    tf(ws, &["destroy", "-auto-approve"]).expect_code(0, "destroy");
    let client = stack.client();
    let pools = stack.block_on(client.list_pools(ns)).expect("list pools");
    let policies = stack
        .block_on(client.list_policies(ns))
        .expect("list policies");
    assert!(
        pools.is_empty() && policies.is_empty(),
        "destroy left {pools:?} {policies:?}"
    );
}

fn tf(ws: &Workspace, args: &[&str]) -> tfplugin::testing::Outcome {
    ws.terraform(args)
        .unwrap_or_else(|e| panic!("cannot run terraform {args:?}: {e}"))
}

fn plan_code(ws: &Workspace) -> (i32, String) {
    let o = tf(ws, &["plan", "-detailed-exitcode"]);
    (o.code, o.output())
}

/// A plan that must show changes (`why` says which in the failure); returns its output.
#[track_caller]
fn plan_changes(ws: &Workspace, why: &str) -> String {
    let (code, out) = plan_code(ws);
    assert_eq!(code, 2, "{why}\n{out}");
    out
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
    let out = plan_changes(&ws, "the changed variables plan an update");
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
    let out = plan_changes(&ws, "a new policy name plans a replacement");
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
    let out = plan_changes(&ws, "a policy edited outside Terraform is drift");
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
    let out = plan_changes(&ws, "a pool declaration edited outside Terraform is drift");
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
    let out = plan_changes(&ws, "a pool deleted outside Terraform is planned again");
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
    destroy_leaves_nothing(&ws, &stack, ns);
    let left = stack.emulator_instances("web");
    assert!(left.is_empty(), "destroy leaves no instances: {left:?}");
}

on_both_versions!(
    terraform_1_15_applies_updates_replaces_detects_drift_imports_and_destroys,
    terraform_1_0_applies_updates_replaces_detects_drift_imports_and_destroys,
    quickstart_lifecycle
);

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
    let out = plan_changes(&ws, "the new flavor plans an update");
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

on_both_versions!(
    terraform_1_15_replaces_instances_in_batches_when_the_flavor_changes,
    terraform_1_0_replaces_instances_in_batches_when_the_flavor_changes,
    instance_refresh_lifecycle
);

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

on_both_versions!(
    terraform_1_15_points_invalid_pool_and_policy_settings_at_their_lines,
    terraform_1_0_points_invalid_pool_and_policy_settings_at_their_lines,
    invalid_configs_point_at_the_line
);

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
  timeouts {
    create = "CREATE"
  }
}
"#;

on_both_versions!(
    terraform_1_15_fails_clearly_without_capacity_and_replaces_the_tainted_pool,
    terraform_1_0_fails_clearly_without_capacity_and_replaces_the_tainted_pool,
    sold_out
);

/// Capacity that does not come: a sold-out flavor warns at plan and the refused create fails
/// apply at once with the cloud's message; slow capacity fails with the wait or the create
/// timeout, each clearly; every time the pool stays in state as tainted and the next apply
/// replaces it.
fn sold_out(terraform: &Path) {
    let stack = Stack::start(StackOptions::default());
    let ws = workspace(terraform, &stack, "team-a");
    let header = flexus_e2e::provider().required_providers_block();
    let config = |wait: &str, create: &str| {
        format!(
            "{header}{}",
            SOLD_OUT_POOL
                .replace("WAIT", wait)
                .replace("CREATE", create)
        )
    };
    stack.emulator_post(
        "/_emulator/flavors/x1.1u.1g",
        &serde_json::json!({"sold_out": true}),
    );
    ws.write("main.tf", &config("1d", "1d")).expect("main.tf");
    tf(&ws, &["init"]).expect_code(0, "init");
    let started = std::time::Instant::now();
    let apply = tf(&ws, &["apply", "-auto-approve"]);
    assert_ne!(apply.code, 0, "no capacity, no apply");
    let out = flat(&apply.output());
    assert!(
        out.contains("Flavor sold out") && out.contains("Ecs.0018"),
        "the plan warns and apply says what the cloud said: {out}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "apply did not wait a day"
    );
    // The pool the first apply wrote is in state, tainted: nothing is orphaned.
    let shown = tf(&ws, &["state", "list"]);
    assert!(
        shown.stdout.contains("flexus_x_pool.scarce"),
        "{}",
        shown.output()
    );
    let out = plan_changes(&ws, "the tainted pool plans a replacement");
    assert!(
        out.contains("tainted") && out.contains("must be replaced"),
        "{out}"
    );

    // Capacity on sale but slow to come (every create call takes 8 s): the wait fails at
    // wait_for_capacity_timeout, pointing at it.
    stack.emulator_post(
        "/_emulator/flavors/x1.1u.1g",
        &serde_json::json!({"sold_out": false}),
    );
    stack.emulator_post(
        "/_emulator/faults",
        &serde_json::json!({"operation": "create_servers", "latency_ms": 8000}),
    );
    ws.write("main.tf", &config("3s", "1d")).expect("main.tf");
    let apply = tf(&ws, &["apply", "-auto-approve"]);
    assert_ne!(apply.code, 0);
    let out = apply.output();
    assert!(
        out.contains("Timed out waiting for capacity") && out.contains("0 of min_size 1"),
        "{out}"
    );
    let line = line_of(&ws, "wait_for_capacity_timeout");
    assert!(
        out.contains(&format!("main.tf line {line}")),
        "the error points at wait_for_capacity_timeout: {out}"
    );

    // The create timeout bounds the whole create, the wait included ("1d" is a duration
    // everywhere): it replaces the tainted pool, times out, and leaves it tainted again.
    ws.write("main.tf", &config("1d", "3s")).expect("main.tf");
    let apply = tf(&ws, &["apply", "-auto-approve"]);
    assert_ne!(apply.code, 0);
    assert!(
        apply.output().contains("create timed out") && apply.output().contains("within 3s"),
        "{}",
        apply.output()
    );
    let (code, out) = plan_code(&ws);
    assert!(code == 2 && out.contains("tainted"), "{out}");

    // Capacity comes back; apply again replaces the tainted pool and waits for capacity.
    stack.emulator_delete("/_emulator/faults");
    ws.write("main.tf", &config("2m", "1d")).expect("main.tf");
    tf(&ws, &["apply", "-auto-approve"]).expect_code(
        0,
        "a second apply replaces the tainted pool and waits for capacity",
    );
    expect_no_changes(&ws, &stack, "after replacing the pool");
    tf(&ws, &["destroy", "-auto-approve"]).expect_code(0, "destroy");
    assert!(stack.emulator_instances("scarce").is_empty());
}

const ONE_POOL: &str = r#"
provider "flexus" {}

resource "flexus_x_pool" "p" {
  name       = "NAME"
  flavor     = "FLAVOR"
  image      = "img"
  vpc_id     = "vpc"
  subnet_ids = ["s"]
  min_size   = 1
  max_size   = 2

  wait_for_capacity_timeout = "10m"
}
"#;

fn one_pool(name: &str, flavor: &str) -> String {
    format!(
        "{}{}",
        flexus_e2e::provider().required_providers_block(),
        ONE_POOL.replace("NAME", name).replace("FLAVOR", flavor)
    )
}

/// Issue #11, item 2: ECS refusing the create for good fails apply with the cloud's
/// message at once (not after `wait_for_capacity_timeout`), the pool is kept in state as
/// tainted, and the next apply or destroy cleans it: no orphan in the agent.
fn permanent_cloud_error_fails_fast_and_leaves_a_tainted_pool(terraform: &Path) {
    let stack = Stack::start(StackOptions::default());
    let client = stack.client();
    let ws = workspace(terraform, &stack, "team-a");
    ws.write("main.tf", &one_pool("refused", "x1.2u.4g"))
        .expect("main.tf");
    tf(&ws, &["init"]).expect_code(0, "init");
    stack.emulator_post(
        "/_emulator/faults",
        &serde_json::json!({"operation": "create_servers", "error_rate": 1.0, "status": 400, "code": "Ecs.0005"}),
    );
    let started = std::time::Instant::now();
    let apply = tf(&ws, &["apply", "-auto-approve"]);
    assert_ne!(apply.code, 0, "{}", apply.output());
    let out = apply.output();
    assert!(
        out.contains("The cloud refused to create the pool's instances")
            && out.contains("Ecs.0005"),
        "apply says what the cloud said: {out}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "apply failed after {:?}, not after the 10m wait",
        started.elapsed()
    );
    let plan = plan_changes(&ws, "the tainted pool plans a replacement");
    assert!(
        plan.contains("is tainted, so must be replaced"),
        "the written pool is in state, tainted: {plan}"
    );
    // Destroy removes what the failed apply wrote.
    tf(&ws, &["destroy", "-auto-approve"]).expect_code(0, "destroy the tainted pool");
    assert!(
        stack
            .block_on(client.get_pool("team-a", "refused"))
            .is_err_and(|e| e.is_not_found()),
        "no orphan pool in the agent"
    );
    // Fail again, then let the cloud accept: the next apply replaces the tainted pool.
    tf(&ws, &["apply", "-auto-approve"]).expect_code(1, "the cloud still refuses");
    stack.emulator_delete("/_emulator/faults");
    tf(&ws, &["apply", "-auto-approve"]).expect_code(0, "apply replaces the tainted pool");
    let pool = stack
        .block_on(client.get_pool("team-a", "refused"))
        .expect("pool")
        .value;
    assert!(pool.status.ready_size >= 1, "{:?}", pool.status);
    expect_no_changes(&ws, &stack, "after replacing the tainted pool");
    destroy_leaves_nothing(&ws, &stack, "team-a");
}

on_both_versions!(
    terraform_1_15_fails_fast_on_a_permanent_cloud_error_and_cleans_the_tainted_pool,
    terraform_1_0_fails_fast_on_a_permanent_cloud_error_and_cleans_the_tainted_pool,
    permanent_cloud_error_fails_fast_and_leaves_a_tainted_pool
);

const RETURNING_USER: &str = r#"
provider "flexus" {}

resource "flexus_x_pool" "p" {
  name       = "steady"
  flavor     = "FLAVOR"
  image      = "img"
  vpc_id     = "vpc"
  subnet_ids = ["s"]
  min_size   = 1
  max_size   = 3
  tags = {
    team = "TEAM"
  }
}

resource "flexus_autoscaling_policy" "p" {
  name     = "steady-step"
  pool     = flexus_x_pool.p.name
  strategy = "step"
  bounds {
    min = 1
    max = 3
  }
  metric {
    name     = "rps"
    kind     = "custom"
    duration = "0s"
    source {
      type = "push"
    }
  }
  step {
    metric          = "rps"
    threshold       = 100
    adjustment_type = "change_in_capacity"
    adjustment {
      lower      = 0
      adjustment = 1
    }
    adjustment {
      upper      = 0
      adjustment = -1
    }
  }
  schedule {
    name         = "morning"
    cron         = "0 8 * * *"
    duration     = "1h"
    min_capacity = 1
    timezone     = "Asia/Shanghai"
    start_time   = "2026-01-01T00:00:00+08:00"
  }
}
"#;

fn returning_user(flavor: &str, team: &str) -> String {
    format!(
        "{}{}",
        flexus_e2e::provider().required_providers_block(),
        RETURNING_USER
            .replace("FLAVOR", flavor)
            .replace("TEAM", team)
    )
}

/// Issue #11, items 1, 4 and 8: a one-line change plans as one line (and says running
/// instances keep their tags); a template change says running instances will be replaced;
/// import of a configuration that spells defaults plans no change; a policy deleted
/// through the API is re-created; destroy then apply of the same names works.
fn one_line_changes_import_and_recreate(terraform: &Path) {
    let stack = Stack::start(StackOptions::default());
    let client = stack.client();
    let ws = workspace(terraform, &stack, "team-a");
    ws.write("main.tf", &returning_user("x1.2u.4g", "a"))
        .expect("main.tf");
    tf(&ws, &["init"]).expect_code(0, "init");
    tf(&ws, &["apply", "-auto-approve"]).expect_code(0, "first apply");
    expect_no_changes(&ws, &stack, "after create");

    // Item 8: a one-line change looks like one line.
    ws.write("main.tf", &returning_user("x1.2u.4g", "b"))
        .expect("main.tf");
    let out = plan_changes(&ws, "the tag change plans an update");
    assert!(out.contains("~ \"team\" = \"a\" -> \"b\""), "{out}");
    assert!(
        !out.contains("known after apply"),
        "nothing but the tag changes: {out}"
    );
    tf(&ws, &["apply", "-auto-approve"]).expect_code(0, "tag change");
    expect_no_changes(&ws, &stack, "after the tag change");
    // The tag change said running instances keep their tags.
    assert!(
        flat(&out).contains("Running instances keep their network and tags"),
        "{out}"
    );
    // A template change says the running instances will be replaced, whose ids are then
    // not known before apply.
    ws.write("main.tf", &returning_user("x1.4u.8g", "b"))
        .expect("main.tf");
    let out = plan_changes(&ws, "the flavor change plans an update");
    assert!(
        out.contains("Running instances will be replaced") && out.contains("flavor"),
        "{out}"
    );
    assert!(
        out.contains("instance_ids") && out.contains("known after apply"),
        "{out}"
    );
    ws.write("main.tf", &returning_user("x1.2u.4g", "b"))
        .expect("main.tf");

    // Item 4: import of a configuration that spells defaults plans no change.
    tf(
        &ws,
        &[
            "state",
            "rm",
            "flexus_x_pool.p",
            "flexus_autoscaling_policy.p",
        ],
    )
    .expect_code(0, "state rm");
    tf(&ws, &["import", "flexus_x_pool.p", "team-a/steady"]).expect_code(0, "import pool");
    tf(
        &ws,
        &[
            "import",
            "flexus_autoscaling_policy.p",
            "team-a/steady-step",
        ],
    )
    .expect_code(0, "import policy");
    expect_no_changes(
        &ws,
        &stack,
        "after import of a configuration that spells defaults",
    );

    // Item 1: a policy deleted through the API is planned again and re-created.
    stack
        .block_on(client.delete_policy("team-a", "steady-step", Precondition::None))
        .expect("delete the policy outside terraform");
    let out = plan_changes(&ws, "a policy deleted through the API is planned again");
    assert!(
        out.contains("flexus_autoscaling_policy.p will be created"),
        "{out}"
    );
    tf(&ws, &["apply", "-auto-approve"]).expect_code(0, "re-create the policy");
    expect_no_changes(&ws, &stack, "after re-creating the policy");

    // Item 1: destroy, then apply the same names.
    tf(&ws, &["destroy", "-auto-approve"]).expect_code(0, "destroy");
    tf(&ws, &["apply", "-auto-approve"]).expect_code(0, "apply the same names again");
    let versions = stack
        .block_on(client.get_policy("team-a", "steady-step"))
        .expect("policy")
        .value
        .version;
    assert_eq!(versions, 1, "a fresh policy, not a continuation");
    expect_no_changes(&ws, &stack, "after destroy and apply");
    destroy_leaves_nothing(&ws, &stack, "team-a");
}

on_both_versions!(
    terraform_1_15_plans_one_line_changes_imports_defaults_and_recreates_after_destroy,
    terraform_1_0_plans_one_line_changes_imports_defaults_and_recreates_after_destroy,
    one_line_changes_import_and_recreate
);

const EVERY_ERROR_AT_ONCE: &str = r#"
provider "flexus" {}

resource "flexus_x_pool" "x" {
  name       = "x"
  flavor     = "x1.2u.4g"
  image      = "img"
  vpc_id     = "vpc"
  subnet_ids = ["s"]
  min_size   = 1
  max_size   = 2
}

resource "flexus_x_pool" "spotty" {
  name       = "spotty"
  flavor     = "x1.2u.4g"
  image      = "img"
  vpc_id     = "vpc"
  subnet_ids = ["s"]
  min_size   = 1
  max_size   = 2
  spot {
    enabled   = true
    max_price = "inf"
  }
}

resource "flexus_autoscaling_policy" "p" {
  name     = "p"
  pool     = flexus_x_pool.x.name
  strategy = "target_trackin"
  bounds {
    min = 5
    max = 2
  }
  metric {
    name   = "cpu"
    kind   = "cpu"
    target = 160
    source {
      type = "push"
    }
  }
  schedule {
    name         = "morning"
    cron         = "0 25 * * *"
    duration     = "1h"
    min_capacity = 1
  }
  schedule {
    name         = "evening"
    cron         = "0 18 * * *"
    duration     = "1h"
    min_capacity = 1
    timezone     = "Mars/Olympus"
  }
}
"#;

const CLOUD_REFUSALS: &str = r#"
provider "flexus" {}

resource "flexus_x_pool" "typo" {
  name       = "typo"
  flavor     = "x1.1u.2g"
  image      = "img"
  vpc_id     = "vpc"
  subnet_ids = ["s"]
  min_size   = 1
  max_size   = 2
}

resource "flexus_x_pool" "never" {
  name       = "never"
  flavor     = "x1.2u.4g"
  image      = "img"
  vpc_id     = "vpc"
  subnet_ids = [for i in range(13) : "subnet-${i}"]
  user_data  = format("%060000d", 0)
  min_size   = 1
  max_size   = 2
  root_volume {
    type = "FOO"
  }
}

resource "flexus_x_pool" "big" {
  name       = "big"
  flavor     = "x1.2u.4g"
  image      = "img"
  vpc_id     = "vpc"
  subnet_ids = ["s"]
  min_size   = 5
  max_size   = 5
}

resource "flexus_x_pool" "fine" {
  name       = "fine"
  flavor     = "x1.2u.4g"
  image      = "img"
  vpc_id     = "vpc"
  subnet_ids = ["s"]
  min_size   = 1
  max_size   = 2
}

resource "flexus_x_pool" "lost" {
  name       = "lost"
  flavor     = "x1.2u.4g"
  image      = "img-gone"
  vpc_id     = "vpc"
  subnet_ids = ["s"]
  user_data  = flexus_x_pool.fine.status
  min_size   = 1
  max_size   = 2
}

resource "flexus_x_pool" "small" {
  name       = "small"
  flavor     = "x1.2u.4g"
  image      = "img"
  vpc_id     = "vpc"
  subnet_ids = ["s"]
  min_size   = 1
  max_size   = 2
  root_volume {
    size = 20
  }
}
"#;

const BOUNDS: &str = r#"
provider "flexus" {}

resource "flexus_x_pool" "b" {
  name       = "bounded"
  flavor     = "x1.2u.4g"
  image      = "img"
  vpc_id     = "vpc"
  subnet_ids = ["s"]
  min_size   = 1
  max_size   = POOL_MAX
}

resource "flexus_autoscaling_policy" "b" {
  name     = "bounded"
  pool     = flexus_x_pool.b.name
  strategy = "target_tracking"
  bounds {
    min = POLICY_MIN
    max = POLICY_MAX
  }
  metric {
    name   = "cpu"
    kind   = "cpu"
    target = 60
    source {
      type = "push"
    }
  }
}
"#;

fn bounds(pool_max: u32, policy: (u32, u32)) -> String {
    format!(
        "{}{}",
        flexus_e2e::provider().required_providers_block(),
        BOUNDS
            .replace("POOL_MAX", &pool_max.to_string())
            .replace("POLICY_MIN", &policy.0.to_string())
            .replace("POLICY_MAX", &policy.1.to_string())
    )
}

/// Terraform wraps diagnostic text: compare with every run of whitespace as one space.
fn flat(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[track_caller]
fn line_of(ws: &Workspace, needle: &str) -> usize {
    std::fs::read_to_string(ws.path().join("main.tf"))
        .expect("main.tf")
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} in main.tf"))
        + 1
}

/// Issue #11, items 2, 3, 5, 6 and 7: every error that does not depend on an unknown comes
/// at `validate`, all in one round; what the cloud can never create, an unknown flavor and
/// an image the project does not have are plan errors on their attributes; policy bounds
/// outside the pool's are a plan error naming both, while widening or narrowing both
/// together plans and applies.
fn errors_come_early_and_all_at_once(terraform: &Path) {
    let stack = Stack::start(StackOptions::default());
    let client = stack.client();
    let ws = workspace(terraform, &stack, "team-a");
    let header = flexus_e2e::provider().required_providers_block();
    ws.write("main.tf", &format!("{header}{EVERY_ERROR_AT_ONCE}"))
        .expect("main.tf");
    tf(&ws, &["init"]).expect_code(0, "init");
    let v = tf(&ws, &["validate"]);
    assert_ne!(v.code, 0);
    let out = flat(&v.output());
    for (needle, what) in [
        ("max_price = \"inf\"", "is not a positive decimal number"),
        ("strategy = \"target_trackin\"", "strategy must be one of"),
        ("min = 5", "bounds.min (5) must be at most bounds.max (2)"),
        ("target = 160", "must be greater than 0 and at most 100"),
        ("cron         = \"0 25 * * *\"", "schedule \"morning\".cron"),
        (
            "timezone     = \"Mars/Olympus\"",
            "schedule \"evening\".timezone",
        ),
    ] {
        let line = line_of(&ws, needle);
        assert!(
            out.contains(&format!("main.tf line {line}")) && out.contains(what),
            "validate reports {what:?} at line {line} in one round:\n{out}"
        );
    }

    // Item 3: what the cloud offers, through the agent.
    ws.write(
        "main.tf",
        &format!(
            "{header}\nprovider \"flexus\" {{}}\ndata \"flexus_x_flavors\" \"one_vcpu\" {{\n  name_prefix = \"x1.1u\"\n}}\n\
             output \"names\" {{\n  value = data.flexus_x_flavors.one_vcpu.names\n}}\n"
        ),
    )
    .expect("main.tf");
    tf(&ws, &["apply", "-auto-approve"]).expect_code(0, "read the flavors");
    let names = tf(&ws, &["output", "-json", "names"]);
    let names: Vec<String> = serde_json::from_str(names.stdout.trim()).expect("a JSON list");
    assert!(
        names.contains(&"x1.1u.1g".to_string()) && names.iter().all(|n| n.starts_with("x1.1u")),
        "{names:?}"
    );

    // Plan-time checks against the agent and the cloud.
    stack.emulator_post(
        "/_emulator/quota",
        &serde_json::json!({"instances": 4, "vcpus": 100, "ram_mb": 1000000}),
    );
    stack.emulator_post(
        "/_emulator/images",
        &serde_json::json!({"images": [{"id": "img", "name": "base", "min_disk": 40}]}),
    );
    ws.write("main.tf", &format!("{header}{CLOUD_REFUSALS}"))
        .expect("main.tf");
    let plan = tf(&ws, &["plan"]);
    assert_ne!(plan.code, 0);
    let out = flat(&plan.output());
    for (needle, what) in [
        ("flavor     = \"x1.1u.2g\"", "did you mean x1.1u.1g"),
        ("type = \"FOO\"", "is not an ECS disk type"),
        ("subnet_ids = [for", "at most 12 subnets"),
        ("user_data  = format", "32 KB"),
        ("min_size   = 5", "the project's quota is 4"),
        // An unknown image, also in a pool with values unknown until apply (the
        // provider asks the agent), and a root disk smaller than the image needs.
        (
            "image      = \"img-gone\"",
            "image \"img-gone\" does not exist",
        ),
        ("size = 20", "needs a root disk of at least 40 GB, got 20"),
    ] {
        let line = line_of(&ws, needle);
        assert!(
            out.contains(&format!("main.tf line {line}")) && out.contains(what),
            "plan reports {what:?} at line {line}:\n{out}"
        );
    }
    assert!(
        stack
            .block_on(client.list_pools("team-a"))
            .expect("list")
            .is_empty()
    );

    // Item 7: a policy may narrow its pool's bounds, never widen them.
    ws.write("main.tf", &bounds(2, (5, 10))).expect("main.tf");
    let plan = tf(&ws, &["plan"]);
    assert_ne!(plan.code, 0, "{}", plan.output());
    let out = flat(&plan.output());
    let line = line_of(&ws, "max = 10");
    assert!(
        out.contains(&format!("main.tf line {line}"))
            && out.contains("bounds.max (10) is above max_size (2) of pool team-a/bounded"),
        "{out}"
    );
    ws.write("main.tf", &bounds(2, (1, 2))).expect("main.tf");
    tf(&ws, &["apply", "-auto-approve"]).expect_code(0, "bounds within the pool's");
    ws.write("main.tf", &bounds(2, (1, 4))).expect("main.tf");
    let plan = tf(&ws, &["plan"]);
    assert!(
        plan.code != 0 && flat(&plan.output()).contains("max_size (2)"),
        "widening only the policy is refused at plan while the pool is unchanged:\n{}",
        plan.output()
    );
    ws.write("main.tf", &bounds(4, (1, 4))).expect("main.tf");
    tf(&ws, &["apply", "-auto-approve"]).expect_code(0, "widening both together");
    ws.write("main.tf", &bounds(2, (1, 2))).expect("main.tf");
    tf(&ws, &["apply", "-auto-approve"]).expect_code(0, "narrowing both together");
    expect_no_changes(&ws, &stack, "after narrowing both");
    destroy_leaves_nothing(&ws, &stack, "team-a");
}

on_both_versions!(
    terraform_1_15_reports_errors_at_validate_and_plan_all_at_once,
    terraform_1_0_reports_errors_at_validate_and_plan_all_at_once,
    errors_come_early_and_all_at_once
);

/// A `terraform` command in `dir` with only the given environment (no CLI config from the
/// test harness): what a user with a fresh HOME runs.
fn bare_terraform(
    terraform: &Path,
    dir: &Path,
    env: &[(&str, &Path)],
    args: &[&str],
) -> tfplugin::testing::Outcome {
    let mut cmd = std::process::Command::new(terraform);
    cmd.current_dir(dir)
        .args(args)
        .env_remove("TF_CLI_CONFIG_FILE")
        .env_remove("TF_PLUGIN_CACHE_DIR")
        .env("CHECKPOINT_DISABLE", "1")
        .env("TF_IN_AUTOMATION", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run terraform");
    tfplugin::testing::Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `cmd`, which must succeed (the failure names `what` and shows its output); returns
/// its stdout.
#[track_caller]
fn run_ok(cmd: &mut std::process::Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn run_script(script: &str, args: &[&Path], env: &[(&str, &Path)]) -> String {
    let mut cmd = std::process::Command::new(flexus_e2e::repo_root().join("scripts").join(script));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_ok(&mut cmd, script)
}

/// The docs' provider example and one data source: a user's first configuration.
fn installed_config() -> String {
    format!(
        "{}\ndata \"flexus_x_flavors\" \"all\" {{}}\n",
        terraform_provider_flexus::docs::PROVIDER_EXAMPLE
    )
}

/// Issue #11, item 9: `make install` (scripts/install-provider.sh, with the freshly built
/// binary) puts the provider where `terraform init` finds it with no configuration, and
/// `make release` (scripts/release-provider.sh) writes zips, a manifest and SHA256SUMS
/// that work as a packed filesystem mirror.
fn installed_provider_is_found_by_terraform_init(terraform: &Path) {
    let provider_bin = flexus_e2e::bin("terraform-provider-flexus");
    let home = tempfile::tempdir().expect("home");
    let printed = run_script(
        "install-provider.sh",
        &[&provider_bin],
        &[("HOME", home.path())],
    );
    assert!(
        printed.contains("installed terraform-provider-flexus 0.1.0"),
        "{printed}"
    );
    let work = tempfile::tempdir().expect("work");
    std::fs::write(work.path().join("main.tf"), installed_config()).expect("main.tf");
    let init = bare_terraform(
        terraform,
        work.path(),
        &[("HOME", home.path())],
        &["init", "-no-color"],
    );
    init.expect_code(0, "terraform init finds the installed provider");
    assert!(
        init.stdout.contains("flexus/flexus v0.1.0"),
        "{}",
        init.output()
    );
    bare_terraform(
        terraform,
        work.path(),
        &[("HOME", home.path())],
        &["validate", "-no-color"],
    )
    .expect_code(0, "validate with the installed provider");

    // The release layout as a packed filesystem mirror.
    let dist = tempfile::tempdir().expect("dist");
    run_script(
        "release-provider.sh",
        &[&provider_bin],
        &[("DIST", dist.path())],
    );
    let sums_file = dist
        .path()
        .join("terraform-provider-flexus_0.1.0_SHA256SUMS");
    let sums = std::fs::read_to_string(&sums_file).expect("SHA256SUMS");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            dist.path()
                .join("terraform-provider-flexus_0.1.0_manifest.json"),
        )
        .expect("manifest"),
    )
    .expect("manifest is JSON");
    assert_eq!(manifest["metadata"]["protocol_versions"][0], "6.0");
    let zip = sums
        .lines()
        .find_map(|l| l.split_whitespace().nth(1).filter(|f| f.ends_with(".zip")))
        .expect("a zip in SHA256SUMS")
        .to_string();
    run_ok(
        std::process::Command::new("sha256sum")
            .arg("-c")
            .arg(&sums_file)
            .current_dir(dist.path()),
        "sha256sum -c",
    );
    let mirror = tempfile::tempdir().expect("mirror");
    let packed = mirror.path().join("registry.terraform.io/flexus/flexus");
    std::fs::create_dir_all(&packed).expect("mirror dir");
    std::fs::copy(dist.path().join(&zip), packed.join(&zip)).expect("copy zip");
    let rc = mirror.path().join("terraformrc");
    std::fs::write(
        &rc,
        format!(
            "provider_installation {{\n  filesystem_mirror {{\n    path    = \"{}\"\n    include = [\"registry.terraform.io/flexus/*\"]\n  }}\n}}\n",
            mirror.path().display()
        ),
    )
    .expect("terraformrc");
    let work = tempfile::tempdir().expect("work");
    std::fs::write(work.path().join("main.tf"), installed_config()).expect("main.tf");
    let empty_home = tempfile::tempdir().expect("home");
    bare_terraform(
        terraform,
        work.path(),
        &[("HOME", empty_home.path()), ("TF_CLI_CONFIG_FILE", &rc)],
        &["init", "-no-color"],
    )
    .expect_code(0, "terraform init from the release zip as a packed mirror");
}

on_both_versions!(
    terraform_1_15_finds_the_provider_installed_by_make_install_and_released_by_make_release,
    terraform_1_0_finds_the_provider_installed_by_make_install_and_released_by_make_release,
    installed_provider_is_found_by_terraform_init
);
