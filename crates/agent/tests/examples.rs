//! Every agent config in `examples/agent/` loads and validates.

mod common;

use std::path::Path;

use common::succeeded;

#[test]
fn the_example_agent_configs_load_and_validate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/agent");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("examples/agent exists") {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let env = |k: &str| match k {
            "FLEXUS_ADMIN_TOKEN" | "FLEXUS_TOKEN_TEAM_A" | "FLEXUS_TOKEN_TEAM_B" => {
                Some(format!("{k}-0123456789abcdef"))
            }
            "DEEPSEEK_API_KEY" => Some("sk-flexus-emulator-0000000000000000".into()),
            _ => None,
        };
        let cfg =
            flexus_agent::config::Config::parse(&text, &path.display().to_string(), &dir, env)
                .unwrap_or_else(|e| panic!("{e}"));
        if let flexus_agent::store::sql::StoreLocation::Sqlite(store) = &cfg.store {
            assert!(
                store.starts_with(&dir),
                "relative store path resolved next to the file"
            );
        }
        n += 1;
    }
    assert!(n >= 1, "no agent example found in {}", dir.display());
}

#[test]
fn the_example_policies_validate_with_the_cli_helper() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/policies");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        panic!("examples/policies is missing");
    };
    let mut n = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("hcl") | Some("json") => {}
            _ => continue,
        }
        flexus_agent::cli::validate_policy_file(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        n += 1;
    }
    assert!(n >= 1, "no policy example in {}", dir.display());
}

#[test]
fn validate_subcommand_accepts_a_good_policy_and_locates_errors_in_a_bad_one() {
    let bin = env!("CARGO_BIN_EXE_flexus-agent");
    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/policies/queue.hcl");
    let out = std::process::Command::new(bin)
        .arg("validate")
        .arg(&good)
        .output()
        .unwrap();
    assert!(succeeded("validate", out).contains("ok"));

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.hcl");
    std::fs::write(
        &bad,
        "strategy = \"target_tracking\"\nbounds {\n  min = 5\n  max = 2\n}\n",
    )
    .unwrap();
    let out = std::process::Command::new(bin)
        .arg("validate")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.hcl:"),
        "the error names the file and line: {err}"
    );
}

#[test]
fn simulate_subcommand_prints_a_scorecard_against_the_named_baselines() {
    let bin = env!("CARGO_BIN_EXE_flexus-agent");
    let policy = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/policies/inference-target-tracking.hcl");
    let out = std::process::Command::new(bin)
        .args([
            "simulate",
            "--trace",
            "worldcup98",
            "--hours",
            "6",
            "--against",
            "hpa,aws-tt",
        ])
        .arg("--policy")
        .arg(&policy)
        .output()
        .unwrap();
    let stdout = succeeded("simulate", out);
    for name in [
        "hpa-default",
        "aws-target-tracking",
        "inference-target-tracking",
    ] {
        assert!(stdout.contains(name), "scorecard lacks {name}:\n{stdout}");
    }

    let out = std::process::Command::new(bin)
        .args(["simulate", "--trace", "no-such-trace"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no-such-trace"), "{stderr}");
}
