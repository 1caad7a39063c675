//! The repository stands on its own: no build, test or run path reaches outside the
//! checkout.
//!
//! Two checks over every tracked file (docs excepted): no file names the team's reference
//! folder next to the checkout (its name is built below, not written here), and every path a source file
//! builds from its crate directory (`include_bytes!`/`include_str!` with a relative path,
//! `CARGO_MANIFEST_DIR` followed by `..` segments) resolves inside the checkout. `.ci/run`
//! adds the end-to-end check: it runs `make test` and `make demo` from a clone in an empty
//! temporary directory.

use std::path::{Component, Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn tracked_files() -> Vec<PathBuf> {
    let out = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(repo_root())
        .output()
        .expect("git ls-files runs");
    assert!(out.status.success(), "git ls-files failed");
    out.stdout
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| PathBuf::from(String::from_utf8_lossy(p).into_owned()))
        .collect()
}

/// Lexically normalises `a/b/../c` to `a/c`; `None` when `..` climbs above the start.
fn normalise(p: &Path) -> Option<PathBuf> {
    let mut out: Vec<Component> = Vec::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop()?;
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Some(out.iter().collect())
}

/// Files whose text is code or build configuration (docs and data may mention anything).
fn is_code(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
    matches!(
        ext,
        "rs" | "toml" | "sh" | "py" | "tf" | "hcl" | "json" | "yml" | "yaml"
    ) || name == "Makefile"
        || p.starts_with(".ci")
}

#[test]
fn no_tracked_code_names_the_reference_folder_beside_the_checkout() {
    let root = repo_root();
    let needles = [
        concat!("..", "/shared"),
        concat!("shared", "/traces"),
        concat!("shared", "/docs"),
    ];
    let mut hits = Vec::new();
    for f in tracked_files().into_iter().filter(|f| is_code(f)) {
        let Ok(text) = std::fs::read_to_string(root.join(&f)) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            if needles.iter().any(|n| line.contains(n)) {
                hits.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(
        hits.is_empty(),
        "code reaches outside the checkout:\n{}",
        hits.join("\n")
    );
}

/// The relative paths a Rust source builds from its location or its crate directory.
fn relative_paths(text: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let from_manifest = line.contains("CARGO_MANIFEST_DIR");
        let included = line.contains("include_bytes!") || line.contains("include_str!");
        if !(from_manifest || included) {
            continue;
        }
        // Every string literal on the line that looks like a path.
        for lit in line.split('"').skip(1).step_by(2) {
            if lit.contains('/') && !lit.contains(' ') && !lit.contains("://") {
                out.push((lit.to_owned(), from_manifest));
            }
        }
    }
    out
}

#[test]
fn every_path_built_from_a_crate_directory_stays_inside_the_checkout() {
    let root = repo_root();
    let mut escapes = Vec::new();
    let mut checked = 0;
    for f in tracked_files() {
        if f.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(root.join(&f)) else {
            continue;
        };
        // The crate directory: the nearest ancestor with a Cargo.toml.
        let crate_dir = f
            .ancestors()
            .skip(1)
            .find(|a| root.join(a).join("Cargo.toml").is_file())
            .unwrap_or(Path::new(""))
            .to_path_buf();
        let src_dir = f.parent().unwrap_or(Path::new("")).to_path_buf();
        for (lit, from_manifest) in relative_paths(&text) {
            let rel = lit.trim_start_matches('/');
            let base = if from_manifest { &crate_dir } else { &src_dir };
            checked += 1;
            if normalise(&base.join(rel)).is_none() {
                escapes.push(format!("{}: {lit:?}", f.display()));
            }
        }
    }
    assert!(checked > 0, "found no crate-relative paths to check");
    assert!(
        escapes.is_empty(),
        "paths that leave the checkout:\n{}",
        escapes.join("\n")
    );
}

#[test]
fn the_path_check_notices_a_path_that_climbs_out() {
    let paths = relative_paths(
        r#"let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../x/traces");"#,
    );
    assert_eq!(paths, vec![("../../../x/traces".to_owned(), true)]);
    assert!(normalise(&Path::new("crates/sim").join("../../../x/traces")).is_none());
    assert!(normalise(&Path::new("crates/sim").join("../../data/traces")).is_some());
}

#[test]
fn ci_runs_the_tests_and_the_demo_from_a_clone_with_nothing_beside_it() {
    let ci = std::fs::read_to_string(repo_root().join(".ci/run")).expect(".ci/run");
    for needle in ["mktemp -d", "git clone", "make test", "make demo"] {
        assert!(ci.contains(needle), ".ci/run lacks {needle:?}");
    }
}
