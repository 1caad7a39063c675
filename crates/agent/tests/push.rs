//! Pushed metrics over real HTTP: `POST /v1/namespaces/{ns}/pools/{name}/metrics`
//! through the typed client and the `flexus-agent metrics push` CLI, against an
//! in-process agent and emulator on loopback.

mod common;

use std::time::Duration;

use common::*;
use flexus_api::MetricDatapoint;
use serde_json::json;

fn rps_policy() -> serde_json::Value {
    json!({
        "strategy": "target_tracking",
        "evaluation_interval": "15s",
        "bounds": {"min": 1, "max": 8},
        "metrics": [
            {"name": "rps", "kind": "custom", "source": {"type": "push"},
             "target": 10, "per_instance": true, "stale_after": "5m"},
            {"name": "cpu", "kind": "cpu",
             "source": {"type": "cloud_eye", "namespace": "SYS.ECS", "metric_name": "cpu_util"},
             "target": 60, "missing_data": "ignore"}
        ],
        "scale_out": {"stabilisation_window": "0s", "cooldown": "0s"}
    })
}

fn dp(metric: &str, value: f64, at: Option<String>) -> MetricDatapoint {
    MetricDatapoint {
        metric: metric.into(),
        value,
        at,
    }
}

async fn setup(emu: &Emu) -> InProcAgent {
    let agent = InProcAgent::start(emu, 10.0, |_| {}).await;
    let c = &agent.client;
    declare_pool(c, "web", &pool_spec(1, 8), rps_policy()).await;
    agent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_datapoints_drive_a_push_sourced_policy() {
    let emu = Emu::start(10.0, 20.0).await;
    let agent = setup(&emu).await;
    let team_a = flexus_api::Client::new(&agent.url, Some(TEAM_A.into())).unwrap();
    let r = team_a
        .push_metrics("team-a", "web", &[dp("rps", 45.0, None)])
        .await
        .unwrap();
    assert_eq!((r.pool.as_str(), r.accepted), ("team-a/web", 1));
    team_a.reconcile("team-a", "web").await.unwrap();
    let st = wait_for(
        "the pushed 45 rps to ask for 5 instances",
        Duration::from_secs(30),
        || async {
            let s = team_a.pool_status("team-a", "web").await.ok()?;
            (s.desired_size == Some(5)).then_some(s)
        },
    )
    .await;
    let d = st.last_decision.expect("a decision");
    assert!(
        d.detail["proposals"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["value"] == json!(45.0))),
        "the pushed value is the rps signal: {}",
        d.detail
    );
    // A later, lower push lowers the desired count (after the stabilisation window,
    // which the policy leaves at its default: the push is what is checked here).
    team_a
        .push_metrics("team-a", "web", &[dp("rps", 12.0, None)])
        .await
        .unwrap();
    team_a.reconcile("team-a", "web").await.unwrap();
    wait_for(
        "the newer push to be the observed value",
        Duration::from_secs(30),
        || async {
            let s = team_a.pool_status("team-a", "web").await.ok()?;
            let d = s.last_decision?;
            d.detail["proposals"]
                .as_array()?
                .iter()
                .any(|p| p["value"] == json!(12.0))
                .then_some(())
        },
    )
    .await;
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_push_is_refused_naming_each_field_and_stores_nothing() {
    let emu = Emu::start(10.0, 20.0).await;
    let agent = setup(&emu).await;
    let c = &agent.client;
    let old = flexus_agent::clock::rfc3339(emu.now_ms() - 2 * 86_400_000);
    let err = c
        .push_metrics(
            "team-a",
            "web",
            &[
                dp("rps", 1.0, None),
                dp("qps", 2.0, None),
                dp("cpu", 3.0, None),
                dp("rps", 4.0, Some("yesterday".into())),
                dp("rps", 5.0, Some(old)),
            ],
        )
        .await
        .unwrap_err();
    let f = err.failure().expect("an error body");
    assert_eq!((f.status, f.code.as_str()), (400, "invalid_request"));
    let fields: Vec<&str> = f.fields.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, vec!["[1].metric", "[2].metric", "[3].at", "[4].at"]);
    assert!(
        f.fields[0].message.contains("\"qps\"") && f.fields[0].message.contains("rps"),
        "names the unknown metric and the push metrics: {}",
        f.fields[0].message
    );
    assert!(
        f.fields[1].message.contains("\"cpu\""),
        "cpu is a cloud_eye metric, not a push metric: {}",
        f.fields[1].message
    );
    assert!(
        f.fields[3].message.contains("24 h"),
        "{}",
        f.fields[3].message
    );
    assert!(
        agent
            .store
            .pushed_since("team-a", "web", 0)
            .await
            .unwrap()
            .is_empty(),
        "a refused push stores nothing, not even its valid datapoints"
    );

    // Empty body, wrong shape, unknown field.
    let err = c.push_metrics("team-a", "web", &[]).await.unwrap_err();
    assert_eq!(err.failure().unwrap().field.as_deref(), Some("(body)"));
    let http = reqwest::Client::new();
    let url = format!(
        "{}{}",
        agent.url,
        flexus_api::paths::pool_metrics("team-a", "web")
    );
    for (body, field) in [
        (json!({"metric": "rps", "value": 1}), "(body)"),
        (json!([{"metric": "rps", "value": "high"}]), "[0].value"),
        (json!([{"metric": "rps", "value": 1, "unit": "rps"}]), "[0]"),
    ] {
        let r = http
            .post(&url)
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
        let v: serde_json::Value = r.json().await.unwrap();
        let got = v["error"]["field"].as_str().unwrap_or_default().to_owned();
        assert!(got.starts_with(field), "{body}: field {got:?}, {v}");
    }

    // Another namespace's token; a pool that does not exist; a pool without policy.
    let team_b = flexus_api::Client::new(&agent.url, Some(TEAM_B.into())).unwrap();
    let err = team_b
        .push_metrics("team-a", "web", &[dp("rps", 1.0, None)])
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403));
    let err = c
        .push_metrics("team-a", "nope", &[dp("rps", 1.0, None)])
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(404));
    put_pool(c, "bare", &pool_spec(0, 2)).await;
    let err = c
        .push_metrics("team-a", "bare", &[dp("rps", 1.0, None)])
        .await
        .unwrap_err();
    let f = err.failure().unwrap();
    assert_eq!(f.field.as_deref(), Some("[0].metric"));
    assert!(f.message.contains("no policy"), "{}", f.message);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_pushes_datapoints_and_reports_refusals() {
    let emu = Emu::start(10.0, 20.0).await;
    let agent = setup(&emu).await;
    let at = flexus_agent::clock::rfc3339(emu.now_ms() - 60_000);
    let run = |args: Vec<String>| {
        std::process::Command::new(env!("CARGO_BIN_EXE_flexus-agent"))
            .args(["--agent-url", &agent.url, "--token", TEAM_A])
            .args(args)
            .output()
            .unwrap()
    };
    let out = tokio::task::block_in_place(|| {
        run(vec![
            "metrics".into(),
            "push".into(),
            "team-a/web".into(),
            format!("rps=7.5@{at}"),
            "rps=8".into(),
        ])
    });
    let stdout = succeeded("metrics push", out);
    assert!(
        stdout.contains("team-a/web: 2 datapoint(s) accepted"),
        "{stdout}"
    );
    let stored = agent.store.pushed_since("team-a", "web", 0).await.unwrap();
    let values: Vec<f64> = stored.iter().map(|p| p.value).collect();
    assert_eq!(values, vec![7.5, 8.0]);
    assert_eq!(Some(stored[0].at), flexus_agent::clock::parse_rfc3339(&at));

    let out = tokio::task::block_in_place(|| {
        run(vec![
            "metrics".into(),
            "push".into(),
            "team-a/web".into(),
            "latency=3".into(),
        ])
    });
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("\"latency\"") && stderr.contains("[0].metric"),
        "{stderr}"
    );
    agent.shutdown().await;
}
