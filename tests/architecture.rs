//! The dependency fence of the team's architecture document (docs/design), checked with `cargo metadata`.
//!
//! Each rule names a workspace crate and what it must not reach, either as a
//! direct dependency or anywhere in its normal (non-dev, non-build) dependency
//! closure.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::process::Command;

use serde_json::Value;

struct Graph {
    /// package id -> package name
    names: BTreeMap<String, String>,
    /// package id -> ids of its normal dependencies (for the host platform)
    normal: BTreeMap<String, Vec<String>>,
    workspace: BTreeSet<String>,
}

/// Runs `cargo ARGS` at the workspace root and returns its standard output.
fn cargo(args: &[&str]) -> Vec<u8> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .unwrap_or_else(|e| panic!("cargo {args:?} runs: {e}"));
    assert!(
        out.status.success(),
        "cargo {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn metadata() -> Graph {
    let out = cargo(&["metadata", "--format-version", "1"]);
    let v: Value = serde_json::from_slice(&out).expect("cargo metadata prints JSON");
    let mut names = BTreeMap::new();
    for p in v["packages"].as_array().expect("packages") {
        names.insert(
            p["id"].as_str().expect("id").to_owned(),
            p["name"].as_str().expect("name").to_owned(),
        );
    }
    let workspace = v["workspace_members"]
        .as_array()
        .expect("workspace_members")
        .iter()
        .map(|x| x.as_str().expect("member id").to_owned())
        .collect();
    let mut normal = BTreeMap::new();
    for node in v["resolve"]["nodes"].as_array().expect("resolve.nodes") {
        let id = node["id"].as_str().expect("node id").to_owned();
        let mut deps = Vec::new();
        for d in node["deps"].as_array().expect("deps") {
            let is_normal = d["dep_kinds"]
                .as_array()
                .expect("dep_kinds")
                .iter()
                .any(|k| k["kind"].is_null());
            if is_normal {
                deps.push(d["pkg"].as_str().expect("pkg").to_owned());
            }
        }
        normal.insert(id, deps);
    }
    Graph {
        names,
        normal,
        workspace,
    }
}

impl Graph {
    fn id_of(&self, name: &str) -> String {
        self.workspace
            .iter()
            .find(|id| self.names[*id] == name)
            .unwrap_or_else(|| panic!("workspace crate {name} exists"))
            .clone()
    }

    fn direct(&self, name: &str) -> BTreeSet<String> {
        self.normal[&self.id_of(name)]
            .iter()
            .map(|id| self.names[id].clone())
            .collect()
    }

    /// Every crate reachable through normal dependencies, with the path that reaches it.
    fn closure(&self, name: &str) -> BTreeMap<String, Vec<String>> {
        let start = self.id_of(name);
        let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut queue = VecDeque::from([(start, vec![name.to_owned()])]);
        while let Some((id, path)) = queue.pop_front() {
            for dep in &self.normal[&id] {
                let dep_name = self.names[dep].clone();
                if seen.contains_key(&dep_name) {
                    continue;
                }
                let mut p = path.clone();
                p.push(dep_name.clone());
                seen.insert(dep_name, p.clone());
                queue.push_back((dep.clone(), p));
            }
        }
        seen
    }

    fn workspace_names(&self) -> BTreeSet<String> {
        self.workspace
            .iter()
            .map(|id| self.names[id].clone())
            .collect()
    }
}

fn forbid_in_closure(g: &Graph, krate: &str, forbidden: &[&str]) -> Vec<String> {
    let closure = g.closure(krate);
    forbidden
        .iter()
        .filter_map(|f| {
            closure.get(*f).map(|path| {
                format!(
                    "{krate} must not depend on {f}, but reaches it via {}",
                    path.join(" -> ")
                )
            })
        })
        .collect()
}

fn forbid_direct(g: &Graph, krate: &str, forbidden: &[&str]) -> Vec<String> {
    let direct = g.direct(krate);
    forbidden
        .iter()
        .filter(|f| direct.contains(**f))
        .map(|f| format!("{krate} must not depend directly on {f}"))
        .collect()
}

#[test]
fn dependency_rules_of_the_architecture_hold() {
    let g = metadata();
    let ws = g.workspace_names();
    let ws_refs: Vec<&str> = ws.iter().map(String::as_str).collect();
    let mut errors = Vec::new();

    // flexus-policy: pure, no runtime or network stack, no other workspace crate.
    errors.extend(forbid_in_closure(
        &g,
        "flexus-policy",
        &["tokio", "reqwest", "tonic", "hyper", "axum", "sqlx", "mio"],
    ));
    errors.extend(forbid_in_closure(
        &g,
        "flexus-policy",
        &ws_refs
            .iter()
            .copied()
            .filter(|n| *n != "flexus-policy")
            .collect::<Vec<_>>(),
    ));
    // flexus-sim: no network I/O.
    errors.extend(forbid_in_closure(
        &g,
        "flexus-sim",
        &["tokio", "reqwest", "tonic", "hyper", "axum", "mio"],
    ));
    // flexus-cloud knows nothing of policies or Terraform.
    errors.extend(forbid_in_closure(
        &g,
        "flexus-cloud",
        &[
            "flexus-policy",
            "tfplugin",
            "terraform-provider-flexus",
            "flexus-agent",
            "flexus-emulator",
        ],
    ));
    // flexus-api: types and a client, never the server or the policy engine's runtime pieces.
    errors.extend(forbid_in_closure(
        &g,
        "flexus-api",
        &[
            "axum",
            "sqlx",
            "flexus-agent",
            "flexus-cloud",
            "flexus-emulator",
            "tonic",
        ],
    ));
    // tfplugin knows nothing of Flexus.
    errors.extend(forbid_in_closure(
        &g,
        "tfplugin",
        &ws_refs
            .iter()
            .copied()
            .filter(|n| *n != "tfplugin")
            .collect::<Vec<_>>(),
    ));
    // The provider never speaks gRPC or msgpack itself.
    errors.extend(forbid_direct(
        &g,
        "terraform-provider-flexus",
        &["tonic", "prost", "rmpv", "rmp", "rmp-serde"],
    ));
    // The emulator is never a normal dependency of the agent or the provider.
    errors.extend(forbid_in_closure(&g, "flexus-agent", &["flexus-emulator"]));
    errors.extend(forbid_in_closure(
        &g,
        "terraform-provider-flexus",
        &["flexus-emulator"],
    ));

    assert!(
        errors.is_empty(),
        "architecture violations:\n  {}",
        errors.join("\n  ")
    );
}

#[test]
fn the_fence_detects_a_forbidden_edge() {
    // Guard against a checker that cannot fail: the e2e crate itself depends
    // (as a dev-dependency only) on serde_json, and nothing normal; a rule that
    // forbids a crate present in some closure must report it.
    let g = metadata();
    let some_dep_of_policy: Option<String> = g.direct("flexus-policy").into_iter().next();
    if let Some(dep) = some_dep_of_policy {
        let errs = forbid_in_closure(&g, "flexus-policy", &[dep.as_str()]);
        assert_eq!(errs.len(), 1, "a present dependency is reported: {errs:?}");
    }
    let errs = forbid_in_closure(&g, "flexus-policy", &["definitely-not-a-crate"]);
    assert!(errs.is_empty());
}

/// The crates a package links when it is built alone (features resolved for it, not unified
/// with the rest of the workspace, as when `make install` builds the provider).
fn linked_alone(package: &str) -> BTreeSet<String> {
    let out = cargo(&[
        "tree", "-p", package, "-e", "normal", "--prefix", "none", "--format", "{p}",
    ]);
    String::from_utf8_lossy(&out)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_provider_and_the_emulator_link_no_command_line_or_chart_crates() {
    // The emulator's own binary parses its flags with clap; it needs no progress bars or charts.
    for (package, unwanted) in [
        (
            "terraform-provider-flexus",
            &["clap", "indicatif", "plotters"][..],
        ),
        ("flexus-emulator", &["indicatif", "plotters"][..]),
    ] {
        let linked = linked_alone(package);
        assert!(linked.contains("flexus-sim"), "{package} uses flexus-sim");
        let extra: Vec<&str> = unwanted
            .iter()
            .copied()
            .filter(|c| linked.contains(*c))
            .collect();
        assert!(
            extra.is_empty(),
            "{package} links {extra:?} (flexus-sim's `cli`/`charts` features are for the command lines)"
        );
    }
    // The agent's command line does need them.
    assert!(linked_alone("flexus-agent").contains("clap"));
}
