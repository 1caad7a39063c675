//! Every example directory is exercised: `examples/teams` applies the
//! `examples/modules/inference-pool` module twice (two teams, two namespaces) with both
//! Terraform versions, the registry docs' examples (`examples/resources`,
//! `examples/data-sources`) pass `terraform validate`, and
//! `examples/quickstart` is the base of the Terraform matrix (`terraform_matrix.rs`).

use std::path::Path;

use flexus_e2e::{
    Stack, StackOptions, copy_tf_files, init_and_plan, on_both_versions, repo_root, root_module,
    terraform_latest, terraform_ok, workspace,
};

fn teams(terraform: &Path) {
    let stack = Stack::start(StackOptions::default());
    let client = stack.client();
    let ws = workspace(terraform, &stack, "team-a");
    // The root refers to the module as ../modules/inference-pool.
    let module_dir = ws.path().join("../modules/inference-pool");
    std::fs::create_dir_all(&module_dir).expect("module dir");
    copy_tf_files(
        &repo_root().join("examples/modules/inference-pool"),
        &module_dir,
    );
    copy_tf_files(&repo_root().join("examples/teams"), &ws.path());

    terraform_ok(&ws, &["init"], "init");
    terraform_ok(
        &ws,
        &["apply", "-auto-approve"],
        "apply of two module instances",
    );

    let a = stack
        .block_on(client.get_pool("team-a", "inference"))
        .expect("team-a pool")
        .value;
    let b = stack
        .block_on(client.get_pool("team-b", "chat"))
        .expect("team-b pool")
        .value;
    assert!(
        a.status.ready_size >= 1 && b.status.ready_size >= 2,
        "both pools reached min_size: {:?} {:?}",
        a.status,
        b.status
    );
    assert_eq!(a.spec.tags.get("team").map(String::as_str), Some("team-a"));
    let pa = stack
        .block_on(client.get_policy("team-a", "inference-scaling"))
        .expect("team-a policy")
        .value;
    assert_eq!(
        pa.spec.policy.schedules.len(),
        1,
        "team-a has the business-hours schedule"
    );
    // The module's coarse-data headroom reached the agent (and plans clean below).
    let cpu = &pa.spec.policy.metrics[0];
    assert_eq!(
        (
            cpu.coarse_sqrt_headroom,
            cpu.coarse_noise_headroom,
            cpu.coarse_above
        ),
        (Some(0.5), None, None)
    );
    assert!(cpu.headroom().coarse, "SYS.ECS is read every 5 minutes");
    let pb = stack
        .block_on(client.get_policy("team-b", "chat-scaling"))
        .expect("team-b policy")
        .value;
    assert!(pb.spec.policy.schedules.is_empty());

    terraform_ok(
        &ws,
        &["plan", "-detailed-exitcode"],
        "no changes after applying the module twice",
    );

    terraform_ok(&ws, &["destroy", "-auto-approve"], "destroy");
    for ns in ["team-a", "team-b"] {
        assert!(
            stack
                .block_on(client.list_pools(ns))
                .expect("list")
                .is_empty(),
            "{ns} has no pool left"
        );
    }
    assert!(
        stack.emulator_instances("inference").is_empty()
            && stack.emulator_instances("chat").is_empty()
    );
}

on_both_versions!(
    terraform_1_15_applies_one_module_for_two_teams_in_two_namespaces,
    terraform_1_0_applies_one_module_for_two_teams_in_two_namespaces,
    teams
);

#[test]
fn the_registry_docs_examples_pass_terraform_validate() {
    use terraform_provider_flexus::docs;
    let stack_free =
        tfplugin::testing::Workspace::new(&terraform_latest(), &[flexus_e2e::provider()], &[])
            .expect("workspace");
    let body = [
        docs::POOL_EXAMPLE,
        docs::POLICY_EXAMPLE,
        docs::POOL_DATA_EXAMPLE,
        docs::FLAVORS_EXAMPLE,
        docs::SIMULATION_EXAMPLE,
    ]
    .join("\n");
    stack_free
        .write("main.tf", &root_module(&body))
        .expect("main.tf");
    terraform_ok(&stack_free, &["init"], "init");
    terraform_ok(&stack_free, &["validate"], "docs examples are valid");
}

#[test]
fn every_example_directory_is_covered_by_a_test() {
    // quickstart: terraform_matrix.rs; teams + modules/inference-pool: this file;
    // policies: flexus-policy's parse and golden tests (and provider/tests/models.rs);
    // agent: crates/agent/tests/examples.rs loads agent.toml; grafana:
    // crates/agent/tests/grafana.rs checks every panel's query against the agent's metrics;
    // instance-refresh: terraform_matrix.rs; provider, resources and data-sources (the
    // registry docs' examples): the validate test above, the recommendation in tune.rs,
    // the provider block in terraform_matrix.rs's install test.
    let covered = [
        "agent",
        "data-sources",
        "grafana",
        "instance-refresh",
        "modules",
        "policies",
        "provider",
        "quickstart",
        "resources",
        "teams",
    ];
    let mut found: Vec<String> = std::fs::read_dir(repo_root().join("examples"))
        .expect("examples dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    for d in &found {
        assert!(
            covered.contains(&d.as_str()),
            "examples/{d} is not exercised by any test; add it here and to a test"
        );
    }
    let modules: Vec<String> = std::fs::read_dir(repo_root().join("examples/modules"))
        .expect("modules dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        modules,
        vec!["inference-pool".to_string()],
        "each module needs a root that applies it in a test"
    );
}

#[test]
fn policy_simulation_shows_cost_and_slo_of_a_policy_in_the_plan() {
    use terraform_provider_flexus::docs;
    let ws = tfplugin::testing::Workspace::new(&terraform_latest(), &[flexus_e2e::provider()], &[])
        .expect("workspace");
    let main = root_module(&format!(
        "{}\noutput \"slo\" {{\n  value = data.flexus_policy_simulation.review.slo_violation_pct\n}}\noutput \"hpa_cost\" {{\n  value = data.flexus_policy_simulation.review.baseline_cost[\"hpa\"]\n}}\n",
        docs::SIMULATION_EXAMPLE
    ));
    let out = init_and_plan(&ws, &main, "plan with a simulation");
    let value = |name: &str| -> f64 {
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("+ {name}")))
            .unwrap_or_else(|| panic!("output {name} in plan:\n{out}"));
        line.rsplit('=')
            .next()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} is a number: {line}"))
    };
    assert!(value("policy_cost") > 0.0, "{out}");
    assert!(value("hpa_cost") > 0.0, "{out}");
    let slo = value("slo");
    assert!((0.0..=100.0).contains(&slo), "{out}");

    // A broken policy points at the `policy` argument's line.
    ws.write("main.tf", &main.replace("target = 60", "target = -60"))
        .expect("main.tf");
    let bad = ws.terraform(&["plan"]).expect("plan");
    assert_ne!(bad.code, 0, "{}", bad.output());
    let line = main
        .lines()
        .position(|l| l.trim_start().starts_with("policy = jsonencode"))
        .expect("policy line")
        + 1;
    assert!(
        bad.output().contains(&format!("main.tf line {line}")),
        "{}",
        bad.output()
    );
}
