//! The first hour of a new operator: `check-config` and `/readyz` say when the cloud
//! endpoint is wrong or refuses the credentials, the agent follows an emulator's clock,
//! `validate` takes many files, and `policies` manages policies from the command line.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use flexus_agent::agent::Agent;
use flexus_agent::store::{SqlStore, Store};
use flexus_api::Precondition;
use flexus_cloud::{ClientConfig, Credentials, HuaweiClient, RateLimits, RetryPolicy};
use tokio_util::sync::CancellationToken;

const BIN: &str = env!("CARGO_BIN_EXE_flexus-agent");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// An agent.toml for `endpoint`, with `extra` appended to its `[reconcile]` table.
fn agent_toml(dir: &Path, endpoint: &str, reconcile_extra: &str) -> PathBuf {
    let p = dir.join("agent.toml");
    std::fs::write(
        &p,
        format!(
            "store = \"agent.db\"\n[cloud]\nendpoint = \"{endpoint}\"\nregion = \"{REGION}\"\n\
             project_id = \"{PROJECT}\"\n[auth]\nadmin_token_env = \"FLEXUS_ADMIN_TOKEN\"\n\
             [reconcile]\n{reconcile_extra}\n"
        ),
    )
    .unwrap();
    p
}

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

async fn run_cli(args: &[&str], sk: &str) -> Out {
    let out = tokio::process::Command::new(BIN)
        .args(args)
        .env("FLEXUS_ADMIN_TOKEN", ADMIN)
        .env("HUAWEICLOUD_SDK_AK", AK)
        .env("HUAWEICLOUD_SDK_SK", sk)
        .current_dir(repo())
        .output()
        .await
        .unwrap();
    Out {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A loopback port nothing listens on.
async fn closed_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_calls_the_cloud_and_names_what_is_wrong() {
    let emu = Emu::start(10.0, 5.0).await;
    let dir = tempfile::tempdir().unwrap();

    let good = agent_toml(dir.path(), &emu.url, "");
    let out = run_cli(&["check-config", "-c", good.to_str().unwrap()], SK).await;
    assert!(out.ok, "{}", out.stderr);
    assert!(out.stdout.contains("cloud: ok"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("clock: following the emulator's clock (x10)"),
        "{}",
        out.stdout
    );

    let wrong_sk = "another-secret-key-not-real-0000000001";
    let out = run_cli(&["check-config", "-c", good.to_str().unwrap()], wrong_sk).await;
    assert!(!out.ok);
    assert!(out.stderr.contains("HUAWEICLOUD_SDK_SK"), "{}", out.stderr);
    assert!(
        !out.stderr.contains(wrong_sk) && !out.stdout.contains(wrong_sk),
        "the secret key is never printed"
    );

    let port = closed_port().await;
    let closed = agent_toml(dir.path(), &format!("http://127.0.0.1:{port}"), "");
    let out = run_cli(&["check-config", "-c", closed.to_str().unwrap()], SK).await;
    assert!(!out.ok);
    assert!(out.stderr.contains("cloud.endpoint"), "{}", out.stderr);

    let mismatch = agent_toml(dir.path(), &emu.url, "clock_speed = 3");
    let out = run_cli(&["check-config", "-c", mismatch.to_str().unwrap()], SK).await;
    assert!(!out.ok);
    assert!(
        out.stderr.contains("reconcile.clock_speed") && out.stderr.contains("10"),
        "{}",
        out.stderr
    );

    let out = run_cli(
        &["check-config", "--offline", "-c", closed.to_str().unwrap()],
        SK,
    )
    .await;
    assert!(out.ok, "--offline does not call the cloud: {}", out.stderr);
    emu.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_turns_red_naming_the_cloud_when_it_refuses_the_credentials() {
    let emu = Emu::start(10.0, 5.0).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir.path().join("agent.db"), &emu.url);
    let store: Arc<dyn Store> = Arc::new(
        SqlStore::connect(&cfg.store, cfg.store_options())
            .await
            .unwrap(),
    );
    let mut cc = ClientConfig::single_endpoint(&emu.url, REGION, PROJECT).unwrap();
    cc.rate_limits = RateLimits::unlimited();
    cc.retry = RetryPolicy {
        max_attempts: 1,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(10),
    };
    let bad = Arc::new(
        HuaweiClient::new(
            cc,
            Credentials::new(AK, "wrong-secret-key-0000000000000001"),
        )
        .unwrap(),
    );
    let clock = Arc::new(EmuClock {
        emu: emu.emu.clone(),
        scale: 10.0,
    });
    let agent = Agent::assemble(&cfg, store, bad, clock).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/readyz", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let s = stop.clone();
    let done = tokio::spawn(async move { agent.run(listener, s).await.unwrap() });
    let body = wait_for("/readyz names the cloud", Duration::from_secs(20), || {
        let url = url.clone();
        async move {
            let r = reqwest::get(&url).await.ok()?;
            let status = r.status();
            let v: serde_json::Value = r.json().await.ok()?;
            let problems = v["problems"].to_string();
            (status == 503 && problems.contains("cloud:")).then_some(v)
        }
    })
    .await;
    assert!(
        body["problems"].to_string().contains("HUAWEICLOUD_SDK_AK"),
        "{body}"
    );
    stop.cancel();
    done.await.unwrap();
    emu.stop.cancel();
}

#[tokio::test]
async fn validate_checks_every_file_given_and_fails_if_any_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.hcl");
    std::fs::write(
        &broken,
        "strategy = \"target_tracking\"\nbounds { min = 5 max = 2 }\n",
    )
    .unwrap();
    let out = run_cli(
        &[
            "validate",
            "examples/policies/step.hcl",
            "examples/policies/inference-target-tracking.json",
            broken.to_str().unwrap(),
        ],
        SK,
    )
    .await;
    assert!(!out.ok);
    assert!(
        out.stdout.contains("examples/policies/step.hcl: ok")
            && out.stdout.contains("inference-target-tracking.json: ok"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains("broken.hcl") && out.stderr.contains("1 of 3"),
        "{}",
        out.stderr
    );
    let out = run_cli(&["validate", "examples/policies/step.hcl"], SK).await;
    assert!(out.ok, "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policies_command_applies_lists_shows_and_deletes_a_policy() {
    let emu = Emu::start(10.0, 5.0).await;
    let agent = InProcAgent::start(&emu, 10.0, |_| {}).await;
    // examples/policies/step.hcl has bounds 2..50: a policy may not widen its pool's.
    agent
        .client
        .put_pool("team-a", "web", &pool_spec(1, 50), Precondition::None)
        .await
        .unwrap();
    let cli = |args: Vec<String>| {
        let url = agent.url.clone();
        async move {
            let out = tokio::process::Command::new(BIN)
                .args(&args)
                .env("FLEXUS_ENDPOINT", url)
                .env("FLEXUS_TOKEN", TEAM_A)
                .current_dir(repo())
                .output()
                .await
                .unwrap();
            succeeded(&args, out)
        }
    };
    let args = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    let applied = cli(args(
        "policies apply team-a/web-scaling examples/policies/step.hcl --pool web --dry-run",
    ))
    .await;
    assert!(applied.contains("stored version 1"), "{applied}");
    let list = cli(args("policies list team-a")).await;
    assert!(
        list.starts_with("POLICY")
            && list.contains("team-a/web-scaling")
            && list.contains("dry-run"),
        "{list}"
    );
    let shown = cli(args("policies show team-a/web-scaling")).await;
    let v: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(v["spec"]["pool"], "web");
    cli(args("policies delete team-a/web-scaling")).await;
    let list = cli(args("policies list team-a")).await;
    assert!(!list.contains("web-scaling"), "{list}");
    agent.shutdown().await;
    emu.stop.cancel();
}
