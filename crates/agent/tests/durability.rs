//! What the agent keeps, end to end against the emulator: a pool whose creates the
//! cloud keeps rejecting does not grow the store without bound and leaves nothing for
//! a pool created again under its name; stored state that does not parse stops the
//! pool's passes (with the reason) instead of being replaced by an empty history.

mod common;

use std::time::Duration;

use common::*;
use flexus_api::{OperationState, Precondition};
use serde_json::json;

/// `flexus_agent_scale_operations_total{direction="scale_out",outcome="failed"}`.
async fn failed_creates(url: &str) -> f64 {
    scrape(url, None)
        .await
        .lines()
        .find(|l| {
            l.starts_with("flexus_agent_scale_operations_total")
                && l.contains("direction=\"scale_out\"")
                && l.contains("outcome=\"failed\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_the_cloud_keeps_rejecting_store_a_bounded_journal_without_request_bodies() {
    let emu = Emu::start(1.0, 1.0).await;
    emu.inject_fault(json!({"operation": "create_servers", "error_rate": 1.0, "status": 400, "code": "Ecs.0005"})).await;
    let agent = InProcAgent::start(&emu, 1.0, |c| {
        c.reconcile.max_backoff = Duration::from_millis(300);
        c.retention.operations_keep = 1;
    })
    .await;
    let c = &agent.client;
    put_pool(c, "rejected", &pool_spec(1, 3)).await;
    // The runtime holds creates after a refusal; a spec change lifts the hold, so each
    // change makes one more rejected create.
    for max in [4, 3, 4, 3, 4, 3] {
        if failed_creates(&agent.url).await >= 4.0 {
            break;
        }
        let before = failed_creates(&agent.url).await;
        put_pool(c, "rejected", &pool_spec(1, max)).await;
        wait_for(
            "one more rejected create",
            Duration::from_secs(30),
            || async { (failed_creates(&agent.url).await > before).then_some(()) },
        )
        .await;
    }
    assert!(failed_creates(&agent.url).await >= 4.0);
    let ops = agent
        .store
        .list_operations("team-a", "rejected", 1000)
        .await
        .unwrap();
    assert!(
        ops.len() <= 1 + 1,
        "at most the retention count (+ the one being written): {}",
        ops.len()
    );
    assert!(
        ops.iter()
            .filter(|o| o.op.state.is_final())
            .all(|o| o.request.is_none()),
        "a final operation keeps no request body"
    );
    let old: Vec<String> = ops.iter().map(|o| o.op.id.clone()).collect();

    // Delete the pool; once it is gone, a pool of the same name starts with nothing.
    c.delete_pool("team-a", "rejected", Precondition::None)
        .await
        .unwrap();
    wait_for("the pool purged", Duration::from_secs(30), || async {
        c.get_pool("team-a", "rejected")
            .await
            .err()
            .filter(|e| e.is_not_found())
            .map(|_| ())
    })
    .await;
    emu.clear_faults().await;
    put_pool(c, "rejected", &pool_spec(1, 3)).await;
    let ops = wait_for("the new pool's create", Duration::from_secs(30), || async {
        let ops = c.operations("team-a", "rejected").await.ok()?;
        ops.iter()
            .any(|o| o.state == OperationState::Succeeded)
            .then_some(ops)
    })
    .await;
    assert!(
        ops.iter().all(|o| !old.contains(&o.id)),
        "no operation of the deleted pool shows up under the new one: {ops:?}"
    );
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_history_that_does_not_parse_stops_the_pool_instead_of_being_forgotten() {
    let emu = Emu::start(1.0, 1.0).await;
    let agent = InProcAgent::start(&emu, 1.0, |c| {
        c.reconcile.max_backoff = Duration::from_millis(300);
    })
    .await;
    let c = &agent.client;
    put_pool(c, "damaged", &pool_spec(0, 5)).await;
    wait_status(
        c,
        ("team-a", "damaged"),
        "a first pass",
        Duration::from_secs(30),
        |s| s.last_reconcile_at.map(|_| ()),
    )
    .await;

    // Damage the stored history (another process, as an operator's mistake would).
    {
        use sqlx::Connection as _;
        sqlx::any::install_default_drivers();
        let url = format!("sqlite://{}", agent.dir.path().join("agent.db").display());
        let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
        sqlx::query("UPDATE pool_state SET history = '{\"events\": \"lost\"}'")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    put_pool(c, "damaged", &pool_spec(2, 5)).await;
    let status = wait_status(
        c,
        ("team-a", "damaged"),
        "the damage reported",
        Duration::from_secs(30),
        |s| s.last_error.clone().map(|_| s),
    )
    .await;
    let why = status.last_error.unwrap_or_default();
    assert!(
        why.contains("decision history of pool team-a/damaged"),
        "{why}"
    );
    assert_eq!(status.phase, flexus_api::PoolPhase::Degraded);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        pool_servers(emu.cloud().as_ref(), "team-a", "damaged")
            .await
            .is_empty(),
        "no pass acted on an empty history"
    );
    agent.shutdown().await;
}
