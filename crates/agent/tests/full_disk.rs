//! The store on a real full disk (a 3 MB tmpfs): a write that cannot be committed is
//! refused and leaves nothing behind, the store says it is failing, and once space
//! returns every acknowledged write is on disk for any other connection to see — in
//! the store alone, and end to end with the agent binary and the emulator (readiness,
//! no cloud change while nothing can be recorded, SIGKILL and restart).

mod common;

use std::time::Duration;

use common::process::*;
use common::tmpfs::Tmpfs;
use common::*;
use flexus_agent::store::{Expect, SqliteStore, Store, StoreError, StoreHealth};
use flexus_api::Precondition;

/// A pool spec with a large user-data script (a write that needs disk space).
fn padded(min: u32, pad: &str) -> flexus_api::PoolSpec {
    let mut s = pool_spec(min, 10);
    s.user_data = Some(pad.to_owned());
    s
}

#[tokio::test]
async fn writes_that_fail_to_commit_on_a_full_disk_leave_no_open_transaction_behind() {
    let fs = Tmpfs::mount("3m");
    let path = fs.path().join("agent.db");
    let s = SqliteStore::open(&path).await.unwrap();
    s.put_pool("a", "p", &pool_spec(1, 10), Expect::Any, "t0")
        .await
        .unwrap();

    fs.fill();
    let pad = "x".repeat(64 * 1024);
    for i in 0..3 {
        let err = match s
            .put_pool("a", "p", &padded(2 + i, &pad), Expect::Any, "t1")
            .await
        {
            Ok(d) => panic!(
                "write {i} on a full disk acknowledged as version {}",
                d.version
            ),
            Err(e) => e,
        };
        assert!(matches!(err, StoreError::Query { .. }), "{err}");
        assert!(err.to_string().contains("full"), "{err}");
    }
    assert!(matches!(s.health(), StoreHealth::Failing { .. }));
    assert!(s.probe("t2").await.is_err(), "the probe fails while full");
    assert_eq!(s.get_pool("a", "p").await.unwrap().unwrap().version, 1);

    fs.free();
    s.probe("t3").await.expect("the store commits again");
    assert_eq!(s.health(), StoreHealth::Ok);
    let d = s
        .put_pool("a", "p", &pool_spec(6, 10), Expect::Version(1), "t4")
        .await
        .expect("a write after space returned");
    assert_eq!(d.version, 2);

    // Another connection sees the acknowledged write and can write itself (the first
    // connection holds no write lock).
    let other = SqliteStore::open(&path).await.unwrap();
    let seen = other.get_pool("a", "p").await.unwrap().unwrap();
    assert_eq!((seen.version, seen.spec.min_size), (2, 6));
    other
        .put_pool("a", "q", &pool_spec(1, 10), Expect::Absent, "t5")
        .await
        .expect("no lock left behind");
    drop(s);
    drop(other);
    // And it is on disk: a fresh open after both closed.
    let again = SqliteStore::open(&path).await.unwrap();
    assert_eq!(again.get_pool("a", "p").await.unwrap().unwrap().version, 2);
}

/// Live (not deleted) instances of pool `team-a/full`.
async fn live(emu: &Emu) -> Vec<flexus_cloud::Server> {
    pool_servers(emu.cloud().as_ref(), "team-a", "full").await
}

async fn readyz(url: &str) -> (u16, serde_json::Value) {
    let r = reqwest::get(format!("{url}/readyz")).await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or_default())
}

/// Waits until the pool has `n` live instances and no open operation.
async fn settled(client: &flexus_api::Client, emu: &Emu, n: usize) {
    wait_for(
        &format!("{n} live instances"),
        Duration::from_secs(60),
        || async {
            let s = client.pool_status("team-a", "full").await.ok()?;
            (live(emu).await.len() == n && s.pending_operations.is_empty()).then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_turns_readiness_red_stops_cloud_changes_and_loses_no_acknowledged_write() {
    let fs = Tmpfs::mount("3m");
    let emu = Emu::start(1.0, 1.0).await;
    let dir = tempfile::tempdir().unwrap();
    let store = fs.path().join("agent.db");
    let config = write_config_with(
        dir.path(),
        &emu.url,
        free_port(),
        &store.display().to_string(),
        FAST_RECONCILE,
        "",
    );
    let log = dir.path().join("agent.log");
    let mut p = start_agent(&config, &log);
    wait_ready(&mut p, &log).await;
    let client = flexus_api::Client::new(&p.url, Some(ADMIN.into())).unwrap();
    client
        .put_pool("team-a", "full", &pool_spec(1, 10), Precondition::None)
        .await
        .unwrap();
    settled(&client, &emu, 1).await;

    // Disk full: writes are refused (nothing acknowledged), readiness goes red with the
    // reason, and an instance that disappears is not replaced while nothing can be
    // recorded.
    fs.fill();
    for min in [2, 3] {
        let err = client
            .put_pool("team-a", "full", &pool_spec(min, 10), Precondition::None)
            .await
            .expect_err("a PUT on a full disk is refused");
        let f = err.failure().expect("an error body");
        assert_eq!(
            (f.status, f.code.as_str()),
            (503, "store_unavailable"),
            "{f:?}"
        );
    }
    let (code, body) = readyz(&p.url).await;
    assert_eq!(code, 503, "{body}");
    assert!(body.to_string().contains("full"), "{body}");
    let gone = live(&emu).await[0].id.clone();
    emu.cloud()
        .delete_servers(&flexus_cloud::DeleteServersRequest {
            server_ids: vec![gone],
            delete_publicip: true,
            delete_volume: true,
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        live(&emu).await.is_empty(),
        "no instance is created while the store cannot record the operation"
    );
    assert_eq!(readyz(&p.url).await.0, 503);

    // Space returns: the agent recovers by itself.
    fs.free();
    wait_for("readyz 200 again", Duration::from_secs(30), || async {
        (readyz(&p.url).await.0 == 200).then_some(())
    })
    .await;
    let put = client
        .put_pool("team-a", "full", &pool_spec(6, 10), Precondition::None)
        .await
        .expect("a PUT once space returned");
    assert_eq!(put.value.version, 2, "the refused PUTs left no version");
    // Another connection sees the acknowledged write on disk.
    let other = SqliteStore::open(&store).await.unwrap();
    let d = other.get_pool("team-a", "full").await.unwrap().unwrap();
    assert_eq!((d.version, d.spec.min_size), (2, 6));
    drop(other);
    settled(&client, &emu, 6).await;
    let ops_before = client.operations("team-a", "full").await.unwrap();

    // SIGKILL and restart: the spec, the instances and the operation records are kept.
    kill9(&mut p);
    let mut p = start_agent(&config, &log);
    wait_ready(&mut p, &log).await;
    let client = flexus_api::Client::new(&p.url, Some(ADMIN.into())).unwrap();
    let pool = client.get_pool("team-a", "full").await.unwrap().value;
    assert_eq!((pool.version, pool.spec.min_size), (2, 6));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        live(&emu).await.len(),
        6,
        "the restarted agent deleted nothing"
    );
    let ops_after = client.operations("team-a", "full").await.unwrap();
    for op in &ops_before {
        assert!(
            ops_after.iter().any(|o| o.id == op.id),
            "operation {} survived the restart",
            op.id
        );
    }
    assert!(
        ops_after
            .iter()
            .all(|o| o.kind != flexus_api::OperationKind::ScaleIn),
        "no scale-in after the restart: {ops_after:?}"
    );
    sigterm_and_wait(&mut p).await;
}
