//! End-to-end: real Terraform (1.15.5 and 1.0.3) drives the toy provider built on tfplugin,
//! installed from a filesystem mirror with no network.

mod common;

use std::path::Path;

use tfplugin::testing::Workspace;

/// `main.tf`: the toy provider pinned and configured with `store.json`, then `body`.
fn main_tf(body: &str) -> String {
    format!(
        "{}\nprovider \"toyfs\" {{\n  path = \"store.json\"\n}}\n\n{body}",
        common::toyfs().required_providers_block()
    )
}

/// A workspace with the toy provider and `main_tf`, initialised.
fn initialised(terraform: &Path, main_tf: &str) -> Workspace {
    let ws = Workspace::new(terraform, &[common::toyfs()], &[]).expect("workspace");
    ws.write("main.tf", main_tf).expect("write main.tf");
    ws.terraform_expect(&["init"], 0, "init");
    ws
}

/// Reads a JSON state file.
fn read_state(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read state")).expect("state JSON")
}

fn config(name: &str, size: i64) -> String {
    main_tf(&format!(
        r#"resource "toyfs_item" "a" {{
  name   = "{name}"
  size   = {size}
  ratio  = 0.1
  secret = "s3cret"
  tags   = {{ team = "x" }}

  rule {{
    port     = 80
    protocol = "tcp"
  }}
  rule {{
    port = 443
  }}
}}

data "toyfs_item_lookup" "a" {{
  name       = toyfs_item.a.name
  depends_on = [toyfs_item.a]
}}

output "revision" {{
  value = toyfs_item.a.revision
}}
"#
    ))
}

fn store(ws: &Workspace) -> serde_json::Value {
    let text =
        std::fs::read_to_string(ws.path().join("store.json")).unwrap_or_else(|_| "{}".into());
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("store.json is not JSON: {e}: {text}"))
}

fn only_item(ws: &Workspace) -> serde_json::Value {
    let s = store(ws);
    let items = s.as_object().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1, "expected one stored item, got {s}");
    items.into_iter().next().map(|(_, v)| v).unwrap_or_default()
}

fn lifecycle(terraform: &Path, tls: bool) {
    let mut ws = Workspace::new(terraform, &[common::toyfs()], &[]).expect("workspace");
    if !tls {
        ws.set_env("TF_DISABLE_PLUGIN_TLS", "1");
    }
    ws.write("main.tf", &config("alpha", 3))
        .expect("write main.tf");

    let init = ws.terraform_expect(&["init"], 0, "init from the filesystem mirror");
    assert!(
        init.output().contains("tfplugin/toyfs v0.1.0"),
        "{}",
        init.output()
    );

    let apply = ws.terraform_expect(&["apply", "-auto-approve"], 0, "create");
    apply.expect_stdout("1 added, 0 changed, 0 destroyed");
    assert!(
        apply.stdout.contains("(sensitive value)"),
        "secret must be hidden: {}",
        apply.stdout
    );
    let item = only_item(&ws);
    assert_eq!(item["name"], "alpha");
    assert_eq!(item["color"], "blue", "default applied");
    assert_eq!(item["revision"], 1);
    assert_eq!(item["rule"][1]["port"], 443);

    ws.terraform_expect(
        &["plan", "-detailed-exitcode"],
        0,
        "no perpetual diff after create",
    );

    // In-place update.
    ws.write("main.tf", &config("alpha", 4))
        .expect("write main.tf");
    ws.terraform_expect(&["apply", "-auto-approve"], 0, "update in place")
        .expect_stdout("0 added, 1 changed, 0 destroyed")
        .expect_stdout("revision = 2");
    assert_eq!(only_item(&ws)["size"], 4);
    ws.terraform_expect(&["plan", "-detailed-exitcode"], 0, "no diff after update");

    // Replacement (name requires replace).
    ws.write("main.tf", &config("beta", 4))
        .expect("write main.tf");
    ws.terraform_expect(&["plan"], 0, "plan replace")
        .expect_stdout("# forces replacement");
    ws.terraform_expect(&["apply", "-auto-approve"], 0, "replace")
        .expect_stdout("1 added, 0 changed, 1 destroyed");
    let item = only_item(&ws);
    assert_eq!(item["name"], "beta");
    ws.terraform_expect(&["plan", "-detailed-exitcode"], 0, "no diff after replace");

    // Import: forget the object, import it by id, and the plan is empty again.
    let id = item["id"].as_str().expect("stored id").to_string();
    ws.terraform_expect(&["state", "rm", "toyfs_item.a"], 0, "state rm");
    ws.terraform_expect(&["import", "toyfs_item.a", &id], 0, "import");
    // Terraform 1.0 drops outputs with `state rm`; an apply restores them and must change
    // no resource.
    let after = ws.terraform_expect(&["apply", "-auto-approve"], 0, "apply after import");
    assert!(
        after.stdout.contains("0 added, 0 changed, 0 destroyed"),
        "imported state differs: {}",
        after.stdout
    );
    ws.terraform_expect(
        &["plan", "-detailed-exitcode"],
        0,
        "imported state matches the config",
    );
    let bad = ws
        .terraform(&["import", "toyfs_item.b", "item-missing"])
        .expect("run import");
    assert_ne!(bad.code, 0, "importing an unknown id must fail");

    // Drift: the object vanished outside Terraform, so the plan recreates it.
    std::fs::write(ws.path().join("store.json"), "{}").expect("empty the store");
    ws.terraform_expect(
        &["plan", "-detailed-exitcode"],
        2,
        "plan after out-of-band delete",
    )
    .expect_stdout("1 to add");
    ws.terraform_expect(&["apply", "-auto-approve"], 0, "recreate");

    ws.terraform_expect(&["destroy", "-auto-approve"], 0, "destroy")
        .expect_stdout("1 destroyed");
    assert_eq!(
        store(&ws),
        serde_json::json!({}),
        "destroy removes the object"
    );
}

#[test]
fn terraform_1_15_runs_the_whole_lifecycle_over_automtls() {
    lifecycle(&common::terraform_latest(), true);
}

#[test]
fn terraform_1_0_runs_the_whole_lifecycle_over_automtls() {
    lifecycle(&common::terraform_1_0(), true);
}

#[test]
fn terraform_1_15_runs_the_whole_lifecycle_in_plaintext_when_plugin_tls_is_disabled() {
    lifecycle(&common::terraform_latest(), false);
}

fn invalid_config_points_at_the_attribute(terraform: &Path) {
    let ws = initialised(
        terraform,
        &main_tf(
            "resource \"toyfs_item\" \"a\" {\n  name = \"Not-Valid\"\n  size = 5000\n}\n\nresource \"toyfs_item\" \"b\" {\n  name   = \"b\"\n  secret = \"x\"\n  rule {\n    port     = 70000\n    protocol = \"sctp\"\n  }\n}\n",
        ),
    );
    ws.terraform(&["version"]).expect("run version");
    let v = ws.terraform_expect(&["validate"], 1, "validate rejects the config");
    let out = v.output();
    for needle in [
        "on main.tf line 15",
        "name must match the pattern /^[a-z0-9-]+$/, got \"Not-Valid\"",
        "on main.tf line 16",
        "size must be between 0 and 1000, got 5000",
        "an item with a secret must also set size",
        "rule[0].port must be between 1 and 65535, got 70000",
        "rule[0].protocol must be one of \"tcp\", \"udp\", got \"sctp\"",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
}

#[test]
fn terraform_1_15_shows_validation_errors_at_the_offending_attribute() {
    invalid_config_points_at_the_attribute(&common::terraform_latest());
}

#[test]
fn terraform_1_0_shows_validation_errors_at_the_offending_attribute() {
    invalid_config_points_at_the_attribute(&common::terraform_1_0());
}

#[test]
fn timeouts_block_is_accepted_and_does_not_cause_a_diff() {
    let cfg = config("gamma", 1).replace(
        "  rule {\n    port = 443\n  }\n",
        "  rule {\n    port = 443\n  }\n  timeouts {\n    create = \"2m\"\n  }\n",
    );
    assert!(cfg.contains("timeouts"), "config rewrite failed");
    let ws = initialised(&common::terraform_latest(), &cfg);
    ws.terraform_expect(&["apply", "-auto-approve"], 0, "apply with timeouts");
    ws.terraform_expect(&["plan", "-detailed-exitcode"], 0, "no diff with timeouts");
    let bad = cfg.replace("\"2m\"", "\"soon\"");
    ws.write("main.tf", &bad).expect("write main.tf");
    let v = ws.terraform_expect(&["validate"], 1, "invalid duration");
    assert!(
        v.output()
            .contains("timeouts.create: \"soon\" is not a duration"),
        "{}",
        v.output()
    );
}

#[test]
fn debug_mode_prints_a_reattach_config_terraform_can_use() {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(common::toyfs_binary())
        .arg("--debug")
        .env_remove("TF_PLUGIN_MAGIC_COOKIE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("spawn provider in debug mode");
    let stdout = child.stdout.take().expect("stdout");
    let mut reattach = None;
    for line in BufReader::new(stdout).lines().take(20) {
        let line = line.expect("read stdout");
        if let Some(rest) = line.trim().strip_prefix("TF_REATTACH_PROVIDERS='") {
            reattach = Some(rest.trim_end_matches('\'').to_string());
            break;
        }
    }
    let result = std::panic::catch_unwind(|| {
        let reattach = reattach.expect("debug mode prints TF_REATTACH_PROVIDERS");
        let parsed: serde_json::Value = serde_json::from_str(&reattach).expect("reattach JSON");
        let entry = &parsed["registry.terraform.io/tfplugin/toyfs"];
        assert_eq!(entry["ProtocolVersion"], 6);
        assert_eq!(entry["Addr"]["Network"], "tcp");

        let mut ws = Workspace::new(&common::terraform_latest(), &[], &[]).expect("workspace");
        ws.set_env("TF_REATTACH_PROVIDERS", &reattach);
        // The provider runs in its own directory here: give it an absolute store path.
        let store_path = ws.path().join("store.json");
        let cfg = config("delta", 2).replace(
            "\"store.json\"",
            &format!("{:?}", store_path.display().to_string()),
        );
        ws.write("main.tf", &cfg).expect("write main.tf");
        ws.terraform_expect(&["apply", "-auto-approve"], 0, "apply through reattach");
        assert_eq!(only_item(&ws)["name"], "delta");
        ws.terraform_expect(&["destroy", "-auto-approve"], 0, "destroy through reattach");
    });
    let _ = child.kill();
    let _ = child.wait();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// Index of `toyfs_item.a` in a state file's `resources`.
fn managed_index(state: &serde_json::Value) -> usize {
    state["resources"]
        .as_array()
        .and_then(|rs| {
            rs.iter()
                .position(|r| r["mode"] == "managed" && r["type"] == "toyfs_item")
        })
        .expect("toyfs_item in state")
}

#[test]
fn stored_state_of_an_older_schema_version_is_upgraded() {
    let ws = initialised(&common::terraform_latest(), &config("old", 7));
    ws.terraform_expect(&["apply", "-auto-approve"], 0, "create");
    // Rewrite the state as schema version 0, where `size` was a string.
    let path = ws.path().join("terraform.tfstate");
    let mut state = read_state(&path);
    let idx = managed_index(&state);
    let inst = &mut state["resources"][idx]["instances"][0];
    assert_eq!(
        inst["schema_version"], 1,
        "current schema version is stored"
    );
    inst["schema_version"] = 0.into();
    inst["attributes"]["size"] = "7".into();
    state["serial"] = (state["serial"].as_i64().unwrap_or(1) + 1).into();
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&state).expect("encode state"),
    )
    .expect("write state");

    ws.terraform_expect(
        &["plan", "-detailed-exitcode"],
        0,
        "upgraded state matches the config",
    );
    ws.terraform_expect(&["apply", "-refresh-only", "-auto-approve"], 0, "refresh");
    let state = read_state(&path);
    let inst = &state["resources"][managed_index(&state)]["instances"][0];
    assert_eq!(inst["schema_version"], 1);
    assert_eq!(inst["attributes"]["size"], 7);
}

#[test]
fn terraform_reads_the_schema_derived_from_the_model() {
    for terraform in [common::terraform_latest(), common::terraform_1_0()] {
        let ws = initialised(&terraform, &config("schema", 1));
        let out = ws.terraform_expect(&["providers", "schema", "-json"], 0, "providers schema");
        let j: serde_json::Value = serde_json::from_str(&out.stdout).expect("schema JSON");
        let p = &j["provider_schemas"]["registry.terraform.io/tfplugin/toyfs"];
        assert_eq!(
            p["provider"]["block"]["attributes"]["path"]["required"],
            true
        );
        let item = &p["resource_schemas"]["toyfs_item"];
        assert_eq!(item["version"], 1);
        let attrs = &item["block"]["attributes"];
        assert_eq!(attrs["id"]["computed"], true);
        assert!(attrs["id"]["optional"].is_null(), "id is computed only");
        assert_eq!(attrs["name"]["required"], true);
        assert_eq!(
            attrs["name"]["description"],
            "Name; changing it replaces the item."
        );
        assert_eq!(attrs["secret"]["sensitive"], true);
        assert_eq!(
            (
                attrs["color"]["optional"].clone(),
                attrs["color"]["computed"].clone()
            ),
            (true.into(), true.into())
        );
        assert_eq!(attrs["tags"]["type"], serde_json::json!(["map", "string"]));
        assert_eq!(attrs["ratio"]["type"], "number");
        let blocks = &item["block"]["block_types"];
        assert_eq!(blocks["rule"]["nesting_mode"], "list");
        assert_eq!(
            blocks["rule"]["block"]["attributes"]["port"]["required"],
            true
        );
        assert_eq!(blocks["timeouts"]["nesting_mode"], "single");
        assert_eq!(
            p["data_source_schemas"]["toyfs_item_lookup"]["block"]["attributes"]["id"]["computed"],
            true
        );
    }
}

#[test]
fn blocks_and_names_unknown_until_apply_plan_and_converge() {
    for terraform in [common::terraform_latest(), common::terraform_1_0()] {
        let ws = initialised(
            &terraform,
            &main_tf(
                r#"resource "toyfs_item" "a" {
  name = "alpha"
}

resource "toyfs_item" "b" {
  name = "copy-${toyfs_item.a.id}"
  size = toyfs_item.a.revision
  dynamic "rule" {
    for_each = toyfs_item.a.id != "" ? [80, 443] : []
    content {
      port = rule.value
    }
  }
}
"#,
            ),
        );
        ws.terraform_expect(&["apply", "-auto-approve"], 0, "apply with unknowns");
        ws.terraform_expect(&["plan", "-detailed-exitcode"], 0, "converged");
        let s = store(&ws);
        let b = s
            .as_object()
            .and_then(|m| {
                m.values().find(|v| {
                    v["name"]
                        .as_str()
                        .is_some_and(|n| n.starts_with("copy-item-"))
                })
            })
            .cloned()
            .unwrap_or_else(|| panic!("no copy item in {s}"));
        assert_eq!(b["size"], 1);
        assert_eq!(b["rule"].as_array().map(Vec::len), Some(2));
    }
}
