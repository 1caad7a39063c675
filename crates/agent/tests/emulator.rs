//! The agent against the emulator over loopback (in-process, clocks accelerated).

mod common;

use std::time::Duration;

use common::*;
use flexus_api::{DecisionOutcome, OperationKind, OperationState, Precondition};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_pool_reaches_its_minimum_and_adopts_nothing_foreign() {
    let emu = Emu::start(10.0, 20.0).await;
    let cloud = emu.cloud();
    // One instance that carries the pool's tags already (adopted), one that does not
    // (never touched).
    let spec = pool_spec(2, 5);
    let mk = |tags: &[(&str, &str)], name: &str| create_request(&spec, name, tags, 1);
    let adopted = cloud
        .create_servers(&mk(
            &[("flexus-ns", "team-a"), ("flexus-pool", "web")],
            "handmade",
        ))
        .await
        .unwrap();
    let foreign = cloud
        .create_servers(&mk(&[("flexus-pool", "web")], "foreign"))
        .await
        .unwrap();
    let agent = InProcAgent::start(&emu, 10.0, |_| {}).await;
    let c = &agent.client;
    c.put_pool("team-a", "web", &spec, Precondition::IfAbsent)
        .await
        .unwrap();
    let st = wait_pool_ready(c, ("team-a", "web"), 2, Duration::from_secs(30)).await;
    assert_eq!(st.current_size, 2);
    assert_eq!(st.desired_size, Some(2));
    let servers = pool_servers(emu.cloud().as_ref(), "team-a", "web").await;
    assert_eq!(servers.len(), 2, "exactly the minimum, no duplicates");
    assert!(
        servers.iter().any(|s| s.id == adopted.server_ids[0]),
        "the tagged instance was adopted"
    );
    let ops = c.operations("team-a", "web").await.unwrap();
    assert!(ops.iter().all(|o| o.state.is_final()), "{ops:?}");
    assert_eq!(
        ops.iter()
            .filter(|o| o.kind == OperationKind::ScaleOut)
            .map(|o| o.count)
            .sum::<u32>(),
        1,
        "only the missing instance was created"
    );
    let f = cloud.get_server(&foreign.server_ids[0]).await.unwrap();
    assert!(
        !f.status.is_gone(),
        "an instance without the namespace tag is never touched"
    );
    agent.shutdown().await;
}

fn ms(rfc: &str) -> i64 {
    flexus_agent::clock::parse_rfc3339(rfc).expect("rfc3339 time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_scales_out_within_one_evaluation_interval_plus_boot_time() {
    // Modest acceleration: real scheduling jitter on a busy machine stays small in
    // emulated seconds. (A fresh clone's first test run — the disk still writing back
    // the build — has stalled the pass after the step past the slack: 29.4 s at 8×, and
    // 29.6 s at 4×, about 2.4 real seconds; at 2× that stall is 4.8 emulated seconds.)
    const SCALE: f64 = 2.0;
    const BOOT: f64 = 30.0;
    let emu = Emu::start(SCALE, BOOT).await;
    emu.set_load("burst", 10.0).await;
    let agent = InProcAgent::start(&emu, SCALE, |_| {}).await;
    let c = &agent.client;
    declare_pool(c, "burst", &pool_spec(1, 10), cpu_policy(json!({}))).await;
    // Steady state: one ready instance, its CPU seen and within tolerance.
    wait_status(
        c,
        ("team-a", "burst"),
        "one ready instance with cpu observed",
        Duration::from_secs(90),
        |s| {
            let d = s.last_decision.as_ref()?;
            let seen = d.detail["proposals"][0]["value"].is_number();
            (s.ready_size == 1 && seen && d.desired == 1).then_some(())
        },
    )
    .await;
    let t0 = emu.now_ms();
    emu.set_load("burst", 120.0).await;
    let create = wait_for(
        "a scale-out after the load step",
        Duration::from_secs(90),
        || async {
            let ops = c.operations("team-a", "burst").await.ok()?;
            ops.into_iter()
                .find(|o| o.kind == OperationKind::ScaleOut && ms(&o.created_at) > t0)
        },
    )
    .await;
    let to_create = (ms(&create.created_at) - t0) as f64 / 1000.0;
    // One evaluation interval plus one metric sample period, plus scheduling slack.
    assert!(
        to_create <= 15.0 + 5.0 + 5.0,
        "load step to create call took {to_create:.1} s (emulated)"
    );
    let t_ready = wait_status(
        c,
        ("team-a", "burst"),
        "the new capacity ready",
        Duration::from_secs(90),
        |s| (s.ready_size >= 2).then(|| emu.now_ms()),
    )
    .await;
    let to_ready = (t_ready - t0) as f64 / 1000.0;
    assert!(
        to_ready <= 15.0 + 5.0 + BOOT + 10.0,
        "load step to ready capacity took {to_ready:.1} s (emulated)"
    );
    println!("load step -> create call: {to_create:.1} s emulated; -> ready: {to_ready:.1} s");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_period_scales_in_only_after_the_stabilisation_window_and_bounds_hold() {
    const SCALE: f64 = 20.0;
    let emu = Emu::start(SCALE, 20.0).await;
    emu.set_load("quiet", 150.0).await;
    let agent = InProcAgent::start(&emu, SCALE, |_| {}).await;
    let c = &agent.client;
    // The policy may not widen the pool's bounds (1..4), so it spells them.
    let pol = cpu_policy(json!({
        "bounds": {"min": 1, "max": 4},
        "scale_out": {"stabilisation_window": "0s", "cooldown": "60s"},
        "scale_in": {"stabilisation_window": "120s", "cooldown": "0s"},
    }));
    declare_pool(c, "quiet", &pool_spec(1, 4), pol).await;
    let cloud = emu.cloud();
    let mut max_seen = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    // Grows to the pool's max (4) and never beyond.
    loop {
        let n = pool_servers(cloud.as_ref(), "team-a", "quiet").await.len();
        max_seen = max_seen.max(n);
        let s = c.pool_status("team-a", "quiet").await.unwrap();
        if s.ready_size == 4 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never reached the pool's max of 4"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let outs: Vec<_> = c
        .operations("team-a", "quiet")
        .await
        .unwrap()
        .into_iter()
        .filter(|o| o.kind == OperationKind::ScaleOut)
        .collect();
    // Cooldown: successive scale-outs at least 60 s apart (emulated).
    let mut times: Vec<i64> = outs.iter().map(|o| ms(&o.created_at)).collect();
    times.sort();
    for w in times.windows(2) {
        assert!(
            w[1] - w[0] >= 60_000,
            "scale-outs {} ms apart violate the 60 s cooldown",
            w[1] - w[0]
        );
    }
    // Quiet.
    let t_quiet = emu.now_ms();
    emu.set_load("quiet", 2.0).await;
    let first_in = wait_for(
        "a scale-in after the quiet period",
        Duration::from_secs(60),
        || async {
            let n = pool_servers(cloud.as_ref(), "team-a", "quiet").await.len();
            assert!(n <= 4, "max crossed: {n} servers");
            let ops = c.operations("team-a", "quiet").await.ok()?;
            ops.into_iter().find(|o| o.kind == OperationKind::ScaleIn)
        },
    )
    .await;
    let waited = (ms(&first_in.created_at) - t_quiet) as f64 / 1000.0;
    assert!(
        waited >= 120.0 - 15.0,
        "scaled in {waited:.0} s after the load dropped, inside the 120 s window"
    );
    // Settles at the minimum, never below.
    wait_status(
        c,
        ("team-a", "quiet"),
        "the pool back at its minimum",
        Duration::from_secs(60),
        |s| (s.current_size == 1 && s.pending_operations.is_empty()).then_some(()),
    )
    .await;
    let page = c
        .decisions("team-a", "quiet", Some(500), None)
        .await
        .unwrap();
    for d in &page.items {
        assert!(
            (1..=4).contains(&d.desired),
            "decision outside bounds: {d:?}"
        );
    }
    assert!(max_seen <= 4);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_faults_slow_the_agent_down_but_never_corrupt_its_state() {
    let emu = Emu::start(10.0, 10.0).await;
    // 429 bursts and 5xx on the calls the agent makes.
    for fault in [
        json!({"operation": "*", "throttle_burst": 12}),
        json!({"operation": "create_servers", "error_rate": 1.0, "status": 500, "code": "Ecs.1000"}),
        json!({"operation": "list_servers", "error_rate": 0.3, "status": 503, "code": "Ecs.1000"}),
    ] {
        emu.inject_fault(fault).await;
    }
    let agent = InProcAgent::start(&emu, 10.0, |_| {}).await;
    let c = &agent.client;
    put_pool(c, "flaky", &pool_spec(3, 6)).await;
    // While every create fails: the pool is degraded, the operation stays recorded
    // as pending, nothing is created and nothing is recorded twice.
    let pending = wait_for(
        "a failing pass with its operation pending",
        Duration::from_secs(30),
        || async {
            let s = c.pool_status("team-a", "flaky").await.ok()?;
            let ops = c.operations("team-a", "flaky").await.ok()?;
            (s.last_error.is_some() && ops.len() == 1 && ops[0].state == OperationState::Pending)
                .then(|| ops[0].clone())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ops = c.operations("team-a", "flaky").await.unwrap();
    assert_eq!(
        ops.len(),
        1,
        "retries reuse the recorded operation: {ops:?}"
    );
    let cloud = emu.cloud();
    assert!(
        pool_servers(cloud.as_ref(), "team-a", "flaky")
            .await
            .is_empty()
    );
    emu.clear_faults().await;
    wait_status(
        c,
        ("team-a", "flaky"),
        "three ready instances once the cloud recovers",
        Duration::from_secs(60),
        |s| (s.ready_size == 3 && s.pending_operations.is_empty()).then_some(()),
    )
    .await;
    let ops = c.operations("team-a", "flaky").await.unwrap();
    let first = ops
        .iter()
        .find(|o| o.id == pending.id)
        .expect("the pending operation is kept");
    assert_eq!(
        first.state,
        OperationState::Succeeded,
        "the pending create was finished with its token"
    );
    assert_eq!(first.count, 3);
    // Let a few more passes run: the count stays put.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let servers = pool_servers(cloud.as_ref(), "team-a", "flaky").await;
    assert_eq!(servers.len(), 3, "no duplicates after retries: {servers:?}");
    let ops = c.operations("team-a", "flaky").await.unwrap();
    assert!(ops.iter().all(|o| o.state.is_final()), "{ops:?}");
    // Every instance was made by a recorded operation.
    for s in &servers {
        let op = s.tag("flexus-op").expect("instances carry their operation");
        assert!(
            ops.iter().any(|o| o.id == op),
            "instance {} from unknown operation {op}",
            s.id
        );
    }
    let metrics = scrape(&agent.url, None).await;
    assert!(
        metrics.contains("flexus_agent_reconcile_passes_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains("flexus_agent_reconcile_errors_total{kind=\"cloud_transient\"}"),
        "{metrics}"
    );
    let st = c.pool_status("team-a", "flaky").await.unwrap();
    assert!(st.last_decision.is_some());
    assert_ne!(st.last_decision.unwrap().outcome, DecisionOutcome::Failed);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_recorded_before_a_crash_is_sent_once_and_a_resend_creates_nothing_new() {
    use flexus_agent::runtime::sources::CloudEye;
    use flexus_agent::store::{OpRecord, SqliteStore, Store};
    use std::sync::Arc;

    let emu = Emu::start(10.0, 5.0).await;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("a.db")).await.unwrap());
    // Operations are journalled under the pool's lease.
    store
        .put_pool(
            "team-a",
            "replay",
            &pool_spec(0, 5),
            flexus_agent::store::Expect::Any,
            "2026-01-01T00:00:00Z",
        )
        .await
        .unwrap();
    store.sync_leases().await.unwrap();
    let cloud = emu.cloud();
    let clock = Arc::new(EmuClock {
        emu: emu.emu.clone(),
        scale: 10.0,
    });
    let ctx = reconcile_context(
        store.clone(),
        cloud.clone(),
        clock,
        CloudEye {
            period: 1,
            lookback: Duration::from_secs(60),
        },
        false,
    );
    // The state a crash right after "record the operation" leaves behind.
    let id = uuid::Uuid::new_v4();
    let id_tag = id.to_string();
    let req = flexus_cloud::CreateServersRequest {
        client_token: id,
        ..create_request(
            &pool_spec(0, 5),
            "team-a-replay",
            &[
                ("flexus-ns", "team-a"),
                ("flexus-pool", "replay"),
                ("flexus-op", &id_tag),
            ],
            2,
        )
    };
    let mut op = OpRecord {
        namespace: "team-a".into(),
        pool: "replay".into(),
        request: Some(req.clone()),
        progress: None,
        op: flexus_api::Operation {
            id: id.to_string(),
            kind: OperationKind::ScaleOut,
            state: OperationState::Pending,
            count: 2,
            purchase: Some(flexus_api::Purchase::OnDemand),
            job_id: None,
            server_ids: vec![],
            error: None,
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
        },
    };
    store.insert_operation(&op).await.unwrap();
    ctx.recover().await.unwrap();
    let after_first = store.list_operations("team-a", "replay", 10).await.unwrap();
    assert_eq!(after_first[0].op.state, OperationState::Submitted);
    let job = after_first[0].op.job_id.clone().expect("job recorded");
    assert_eq!(
        pool_servers(cloud.as_ref(), "team-a", "replay").await.len(),
        2
    );

    // A crash after the call but before its result was saved: the operation is
    // pending again and is re-sent with the same token.
    op.op.state = OperationState::Pending;
    store.update_operation(&op).await.unwrap();
    ctx.recover().await.unwrap();
    let after_second = store.list_operations("team-a", "replay", 10).await.unwrap();
    assert_eq!(
        after_second[0].op.job_id.as_deref(),
        Some(job.as_str()),
        "the same job answers the resend"
    );
    assert_eq!(
        pool_servers(cloud.as_ref(), "team-a", "replay").await.len(),
        2,
        "nothing created twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_lists_pools_and_shows_status_and_decisions_as_tables() {
    let emu = Emu::start(10.0, 5.0).await;
    let agent = InProcAgent::start(&emu, 10.0, |_| {}).await;
    let c = &agent.client;
    put_pool(c, "cli", &pool_spec(2, 3)).await;
    wait_pool_ready(c, ("team-a", "cli"), 2, Duration::from_secs(30)).await;
    let run = |args: &'static [&'static str]| agent.cli(args);
    let list = run(&["pools", "list"]).await;
    assert!(list.starts_with("POOL"), "{list}");
    assert!(
        list.contains("team-a/cli") && list.contains("ready"),
        "{list}"
    );
    let status = run(&["pools", "status", "team-a/cli"]).await;
    let rows = status
        .lines()
        .filter(|l| l.contains(" ready ") && l.contains(" on-demand "))
        .count();
    assert!(status.contains("INSTANCE") && rows == 2, "{status}");
    let decisions = run(&["decisions", "team-a/cli"]).await;
    assert!(
        decisions.contains("0 -> 2") && decisions.contains("scale_out"),
        "{decisions}"
    );
    // A namespace token cannot use another namespace from the CLI either.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_flexus-agent"))
        .args(["pools", "status", "team-b/cli"])
        .env("FLEXUS_AGENT_URL", &agent.url)
        .env("FLEXUS_TOKEN", TEAM_A)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("403"));
    agent.shutdown().await;
}
