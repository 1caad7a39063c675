//! The `flexus-emulator` binary as a separate process (how the demo and e2e tests run it).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use flexus_cloud::{Cloud, Credentials, HuaweiClient, ServerStatus};

use common::*;

fn spawn(state: &std::path::Path) -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flexus-emulator"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--ak",
            AK,
            "--sk",
            SK,
            "--project-id",
            PROJECT,
        ])
        .args(["--boot-seconds", "1", "--time-scale", "0"])
        .arg("--state")
        .arg(state)
        .env_remove("HUAWEICLOUD_SDK_SECURITY_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("emulator binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("listening line");
    let url = line.trim().rsplit(' ').next().expect("url").to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    (child, url)
}

#[tokio::test]
async fn killed_binary_loses_no_acknowledged_create() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.json");
    let (mut child, url) = spawn(&state);
    let client = HuaweiClient::new(client_config(&url), Credentials::new(AK, SK)).expect("client");
    let req = create_req("proc", "proc", 2, false);
    let created = client
        .create_servers(&req)
        .await
        .expect("create against the binary");
    child.kill().expect("kill -9");
    let _ = child.wait();

    let (mut child, url) = spawn(&state);
    let client = HuaweiClient::new(client_config(&url), Credentials::new(AK, SK)).expect("client");
    let s = client
        .get_server(&created.server_ids[1])
        .await
        .expect("server survived a hard kill");
    assert_eq!(
        s.status,
        ServerStatus::Build,
        "the frozen clock has not moved"
    );
    assert_eq!(
        client.create_servers(&req).await.expect("same token"),
        created
    );
    child.kill().expect("kill");
    let _ = child.wait();
    let text = std::fs::read_to_string(&state).expect("state");
    assert!(!text.contains(SK));
}
