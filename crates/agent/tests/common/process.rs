//! The agent as its own process (the `flexus-agent` binary): a config file on disk,
//! start, wait until ready, SIGKILL, SIGTERM.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{ADMIN, AK, PROJECT, REGION, SK};

pub struct AgentProc {
    pub child: Child,
    pub url: String,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The crash tests' `[reconcile]` settings: fast passes and short backoff.
pub const FAST_RECONCILE: &str = r#"default_interval = "1s"
job_poll = "300ms"
max_backoff = "2s""#;

/// Write `dir/agent.toml` for an agent on `port` against the emulator at `emu_url`,
/// with its store at `store` (a path, relative to `dir`, or a URL), `reconcile` as the
/// `[reconcile]` settings and `extra` TOML appended (further sections).
pub fn write_config_with(
    dir: &Path,
    emu_url: &str,
    port: u16,
    store: &str,
    reconcile: &str,
    extra: &str,
) -> PathBuf {
    let path = dir.join("agent.toml");
    std::fs::write(
        &path,
        format!(
            r#"
listen = "127.0.0.1:{port}"
store = "{store}"
log_format = "json"

[cloud]
endpoint = "{emu_url}"
region = "{REGION}"
project_id = "{PROJECT}"
reads_per_second = 0
writes_per_second = 0

[auth]
admin_token_env = "FLEXUS_TEST_ADMIN_TOKEN"

[reconcile]
{reconcile}
{extra}
"#
        ),
    )
    .unwrap();
    path
}

/// The crash tests' config: store `agent.db` next to it.
pub fn write_config(dir: &Path, emu_url: &str, port: u16) -> PathBuf {
    write_config_with(dir, emu_url, port, "agent.db", FAST_RECONCILE, "")
}

pub fn start_agent(config: &Path, log: &Path) -> AgentProc {
    start_agent_logging(config, log, "info")
}

/// Starts the agent on `config`, its log (at `level`, as `FLEXUS_LOG` takes it)
/// appended to `log`.
pub fn start_agent_logging(config: &Path, log: &Path, level: &str) -> AgentProc {
    let text = std::fs::read_to_string(config).unwrap();
    let port = text
        .lines()
        .find_map(|l| l.strip_prefix("listen = \"127.0.0.1:"))
        .and_then(|p| p.trim_end_matches('"').parse::<u16>().ok())
        .unwrap();
    let logf = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_flexus-agent"))
        .args(["run", "--config"])
        .arg(config)
        .env("FLEXUS_TEST_ADMIN_TOKEN", ADMIN)
        .env("HUAWEICLOUD_SDK_AK", AK)
        .env("HUAWEICLOUD_SDK_SK", SK)
        .env("FLEXUS_LOG", level)
        .stdout(Stdio::null())
        .stderr(logf)
        .spawn()
        .expect("the flexus-agent binary starts");
    AgentProc {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

pub async fn wait_ready(p: &mut AgentProc, log: &Path) {
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(Some(status)) = p.child.try_wait() {
            panic!(
                "agent exited early ({status}):\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if let Ok(r) = http.get(format!("{}/readyz", p.url)).send().await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "agent not ready:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

pub fn kill9(p: &mut AgentProc) {
    p.child.kill().expect("SIGKILL the agent");
    let _ = p.child.wait();
}

/// SIGTERM and wait (at most 15 s) for a clean exit.
pub async fn sigterm_and_wait(p: &mut AgentProc) {
    let status = Command::new("kill")
        .args(["-TERM", &p.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(st) = p.child.try_wait().unwrap() {
            assert!(st.success(), "agent exits cleanly on SIGTERM: {st}");
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "agent did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
