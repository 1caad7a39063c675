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
    let other_workspace_crates =
        |name: &str| -> Vec<&str> { ws_refs.iter().copied().filter(|n| *n != name).collect() };
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
        &other_workspace_crates("flexus-policy"),
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
        &other_workspace_crates("tfplugin"),
    ));
    // The provider never speaks gRPC or msgpack itself.
    errors.extend(forbid_direct(
        &g,
        "terraform-provider-flexus",
        &["tonic", "prost", "rmpv", "rmp", "rmp-serde"],
    ));
    // flexus-fuzz drives the crates it tests; nothing depends on it.
    for name in ws_refs.iter().filter(|n| **n != "flexus-fuzz") {
        errors.extend(forbid_in_closure(&g, name, &["flexus-fuzz"]));
    }
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

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The functions of `text` longer than `limit` lines, as `(name, first line, lines)`; the code
/// after a `#[cfg(test)]` line is left out. Braces inside strings, chars and `//` comments are
/// not counted.
fn long_functions(text: &str, limit: usize) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text
        .lines()
        .take_while(|l| l.trim() != "#[cfg(test)]")
        .collect();
    let fn_name = |l: &str| -> Option<String> {
        let mut t = l.trim_start();
        for prefix in [
            "pub(crate) ",
            "pub(super) ",
            "pub ",
            "async ",
            "const ",
            "unsafe ",
        ] {
            t = t.strip_prefix(prefix).unwrap_or(t);
        }
        let rest = t.strip_prefix("fn ")?;
        Some(rest.split(['(', '<']).next()?.trim().to_owned())
    };
    let braces = |l: &str| -> (i64, bool) {
        let code = l.split("//").next().unwrap_or("");
        let (mut depth, mut opened, mut in_str, mut prev) = (0i64, false, false, ' ');
        for c in code.chars() {
            match c {
                '"' if prev != '\\' => in_str = !in_str,
                '{' if !in_str && prev != '\'' => {
                    depth += 1;
                    opened = true;
                }
                '}' if !in_str && prev != '\'' => depth -= 1,
                _ => {}
            }
            prev = c;
        }
        (depth, opened)
    };
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let Some(name) = fn_name(l) else { continue };
        let (mut depth, mut started) = (0i64, false);
        for (j, body) in lines[i..].iter().enumerate() {
            let (d, opened) = braces(body);
            depth += d;
            started |= opened;
            if !started && body.trim_end().ends_with(';') {
                break;
            }
            if started && depth <= 0 {
                if j + 1 > limit {
                    out.push((name.clone(), i + 1, j + 1));
                }
                break;
            }
        }
    }
    out
}

#[test]
fn no_function_outside_tests_is_longer_than_150_lines() {
    let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let mut files = Vec::new();
    for dir in ["crates", "provider/src"] {
        rust_files(&root.join(dir), &mut files);
    }
    // Library and binary code only: integration tests, benches and examples are exempt.
    files.retain(|p| {
        let s = p.strip_prefix(root).unwrap_or(p).to_string_lossy();
        !["tests/", "benches/", "examples/"]
            .iter()
            .any(|d| s.contains(d))
    });
    assert!(files.len() > 100, "found only {} source files", files.len());
    let mut long = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read source");
        for (name, line, n) in long_functions(&text, 150) {
            long.push(format!("{}:{line} {name} ({n} lines)", f.display()));
        }
    }
    assert!(
        long.is_empty(),
        "split these by stage or section so each part has a name:\n  {}",
        long.join("\n  ")
    );
}

#[test]
fn the_function_length_check_counts_a_long_function_and_skips_tests() {
    let body = "    let x = 1;\n".repeat(160);
    let text = format!(
        "pub async fn long(a: u32) -> u32 {{\n{body}    x\n}}\n\nfn short() {{\n    let s = \"}}{{\";\n}}\n\
         #[cfg(test)]\nmod tests {{\n    fn also_long() {{\n{body}    }}\n}}\n"
    );
    assert_eq!(
        long_functions(&text, 150),
        vec![("long".to_owned(), 1, 163)]
    );
}
