//! Crash safety: the agent runs as its own process and is killed with SIGKILL at
//! random points during scale-out and scale-in, then restarted. Afterwards the pool
//! has exactly the intended instances — no duplicates, no orphans — and every
//! operation is accounted for. The emulator runs in this test process, so it survives
//! the kills.

mod common;

use std::path::Path;
use std::time::Duration;

use common::process::*;
use common::*;
use flexus_agent::store::{SqliteStore, Store};
use flexus_api::{OperationKind, OperationState, Precondition};
use rand::{Rng, SeedableRng};

/// Every server the cloud still lists with the pool's tags, gone ones included.
async fn all_tagged(emu: &Emu, pool: &str) -> Vec<flexus_cloud::Server> {
    let f = flexus_cloud::ServerFilter {
        tags: vec![
            ("flexus-pool".into(), pool.into()),
            ("flexus-ns".into(), "team-a".into()),
        ],
        ..Default::default()
    };
    emu.cloud().list_servers(&f).await.unwrap()
}

/// Put the pool at a fixed size, SIGKILL the agent `rounds` times at random moments
/// while it works, then let it converge; returns the final state of the store.
async fn phase(config: &Path, log: &Path, rng: &mut rand::rngs::StdRng, size: u32, rounds: usize) {
    let mut p = start_agent(config, log);
    wait_ready(&mut p, log).await;
    let client = flexus_api::Client::new(&p.url, Some(ADMIN.into())).unwrap();
    client
        .put_pool(
            "team-a",
            "crashy",
            &pool_spec(size, size),
            Precondition::None,
        )
        .await
        .unwrap();
    for _ in 0..rounds {
        let after = Duration::from_millis(rng.random_range(5..900));
        tokio::time::sleep(after).await;
        kill9(&mut p);
        p = start_agent(config, log);
        wait_ready(&mut p, log).await;
    }
    let client = flexus_api::Client::new(&p.url, Some(ADMIN.into())).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let s = client.pool_status("team-a", "crashy").await.ok();
        if let Some(s) = s
            && s.ready_size == size
            && s.current_size == size
            && s.pending_operations.is_empty()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "pool did not converge to {size}: {:?}\n{}",
            client.pool_status("team-a", "crashy").await,
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Graceful stop: SIGTERM, exit 0.
    sigterm_and_wait(&mut p).await;
}

/// One phase to `size` with 4 kills; then the pool's instances (exactly `size` live) and
/// its operations (every one final), read from the emulator and the agent's store.
async fn killed_phase(
    emu: &Emu,
    config: &Path,
    log: &Path,
    rng: &mut rand::rngs::StdRng,
    size: u32,
    seed: u64,
    what: &str,
) -> (
    Vec<flexus_cloud::Server>,
    Vec<flexus_agent::store::OpRecord>,
) {
    phase(config, log, rng, size, 4).await;
    let servers = all_tagged(emu, "crashy").await;
    let live = servers.iter().filter(|s| !s.status.is_gone()).count();
    assert_eq!(
        live, size as usize,
        "exactly {size} instances after {what} (seed {seed})"
    );
    let db = config
        .parent()
        .expect("config in the temp dir")
        .join("agent.db");
    let store = SqliteStore::open(&db).await.unwrap();
    let ops = store
        .list_operations("team-a", "crashy", 1000)
        .await
        .unwrap();
    assert!(
        ops.iter().all(|o| o.op.state.is_final()),
        "open operations left: {ops:?}"
    );
    (servers, ops)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_scale_out_and_scale_in_leaves_exactly_the_intended_instances() {
    let seed: u64 = std::env::var("FLEXUS_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("crash test seed: {seed} (set FLEXUS_CRASH_SEED to replay)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let emu = Emu::start(1.0, 2.0).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &emu.url, free_port());
    let log = dir.path().join("agent.log");

    // Scale out 0 -> 6 with kills.
    let (servers, ops) = killed_phase(&emu, &config, &log, &mut rng, 6, seed, "scale-out").await;
    let live: Vec<_> = servers.iter().filter(|s| !s.status.is_gone()).collect();
    assert_eq!(
        servers.len(),
        6,
        "no instance was created twice and removed again (seed {seed})"
    );
    assert!(
        ops.iter().all(|o| o.op.kind == OperationKind::ScaleOut),
        "a scale-out needed no correction (seed {seed}): {ops:?}"
    );
    for s in &live {
        let op = s
            .tag("flexus-op")
            .expect("every instance names its operation");
        let rec = ops.iter().find(|o| o.op.id == op);
        assert!(
            rec.is_some(),
            "instance {} comes from unrecorded operation {op}",
            s.id
        );
        assert_eq!(rec.unwrap().op.state, OperationState::Succeeded);
    }

    // Scale in 6 -> 2 with kills.
    let (servers, ops) = killed_phase(&emu, &config, &log, &mut rng, 2, seed, "scale-in").await;
    let live: Vec<_> = servers.iter().filter(|s| !s.status.is_gone()).collect();
    let deleted: std::collections::BTreeSet<&str> = ops
        .iter()
        .filter(|o| o.op.kind == OperationKind::ScaleIn && o.op.state == OperationState::Succeeded)
        .flat_map(|o| o.op.server_ids.iter().map(String::as_str))
        .collect();
    assert_eq!(
        deleted.len(),
        4,
        "exactly the 4 surplus instances were deleted (seed {seed}): {ops:?}"
    );
    for s in &live {
        assert!(
            !deleted.contains(s.id.as_str()),
            "a kept instance is also recorded as deleted"
        );
    }
    let created: u32 = ops
        .iter()
        .filter(|o| o.op.kind == OperationKind::ScaleOut && o.op.state == OperationState::Succeeded)
        .map(|o| o.op.count)
        .sum();
    assert_eq!(
        created, 6,
        "no create happened during scale-in (seed {seed})"
    );
}
