//! Crash safety: the agent runs as its own process and is killed with SIGKILL at
//! random points during scale-out and scale-in, then restarted. Afterwards the pool
//! has exactly the intended instances — no duplicates, no orphans — and every
//! operation is accounted for. A request to the advisor cut short by a kill reads as
//! failed after the restart, not pending for ever. The emulator runs in this test
//! process, so it survives the kills.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
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

/// What a crash test runs with: its seed (printed; `FLEXUS_CRASH_SEED` replays it), the
/// emulator in this process, and the agent's config and log in a temporary directory.
struct CrashRun {
    seed: u64,
    rng: rand::rngs::StdRng,
    emu: Emu,
    dir: tempfile::TempDir,
    config: PathBuf,
    log: PathBuf,
}

impl CrashRun {
    async fn start(what: &str) -> Self {
        let seed: u64 = std::env::var("FLEXUS_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(rand::random);
        println!("{what} test seed: {seed} (set FLEXUS_CRASH_SEED to replay)");
        let emu = Emu::start(1.0, 2.0).await;
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path(), &emu.url, free_port());
        let log = dir.path().join("agent.log");
        Self {
            seed,
            rng: rand::rngs::StdRng::seed_from_u64(seed),
            emu,
            dir,
            config,
            log,
        }
    }

    /// Put the pool `spec` (a fixed size: `min_size`), SIGKILL the agent `rounds` times
    /// at random moments while it works, then let it converge (every instance of the
    /// spec's template, no refresh left) and stop it with SIGTERM.
    async fn phase(&mut self, spec: &flexus_api::PoolSpec, rounds: usize) {
        let (config, log) = (&self.config, &self.log);
        let size = spec.min_size;
        let mut p = start_agent(config, log);
        wait_ready(&mut p, log).await;
        let client = flexus_api::Client::new(&p.url, Some(ADMIN.into())).unwrap();
        client
            .put_pool("team-a", "crashy", spec, Precondition::None)
            .await
            .unwrap();
        for _ in 0..rounds {
            let after = Duration::from_millis(self.rng.random_range(5..900));
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
                && s.refresh.is_none()
                && s.instances.iter().all(|i| !i.outdated)
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

    /// One phase to `spec` with 4 kills; then the pool's instances (exactly `min_size`
    /// live) and its operations (every one final), read from the emulator and the
    /// agent's store.
    async fn killed_phase(
        &mut self,
        spec: &flexus_api::PoolSpec,
        what: &str,
    ) -> (
        Vec<flexus_cloud::Server>,
        Vec<flexus_agent::store::OpRecord>,
    ) {
        let (size, seed) = (spec.min_size, self.seed);
        self.phase(spec, 4).await;
        let servers = all_tagged(&self.emu, "crashy").await;
        let live = servers.iter().filter(|s| !s.status.is_gone()).count();
        assert_eq!(
            live, size as usize,
            "exactly {size} instances after {what} (seed {seed})"
        );
        let store = SqliteStore::open(&self.dir.path().join("agent.db"))
            .await
            .unwrap();
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
}

/// Asserts that each of `live` names (tag `flexus-op`) a create in `ops` that succeeded.
fn assert_made_by_succeeded_creates(
    live: &[&flexus_cloud::Server],
    ops: &[flexus_agent::store::OpRecord],
    seed: u64,
) {
    for s in live {
        let op = s
            .tag("flexus-op")
            .expect("every instance names its operation");
        let rec = ops.iter().find(|o| o.op.id == op);
        assert!(
            rec.is_some_and(|r| r.op.kind.creates() && r.op.state == OperationState::Succeeded),
            "instance {} comes from a recorded, succeeded create (seed {seed}): {rec:?}",
            s.id
        );
    }
}

/// The servers the succeeded deleting operations in `ops` removed.
fn deleted_servers(ops: &[flexus_agent::store::OpRecord]) -> BTreeSet<&str> {
    ops.iter()
        .filter(|o| o.op.kind.deletes() && o.op.state == OperationState::Succeeded)
        .flat_map(|o| o.op.server_ids.iter().map(String::as_str))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_scale_out_and_scale_in_leaves_exactly_the_intended_instances() {
    let mut run = CrashRun::start("crash").await;
    let seed = run.seed;

    // Scale out 0 -> 6 with kills.
    let (servers, ops) = run.killed_phase(&pool_spec(6, 6), "scale-out").await;
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
    assert_made_by_succeeded_creates(&live, &ops, seed);

    // Scale in 6 -> 2 with kills.
    let (servers, ops) = run.killed_phase(&pool_spec(2, 2), "scale-in").await;
    let live: Vec<_> = servers.iter().filter(|s| !s.status.is_gone()).collect();
    let deleted = deleted_servers(&ops);
    assert!(
        ops.iter()
            .filter(|o| o.op.kind.deletes())
            .all(|o| o.op.kind == OperationKind::ScaleIn),
        "a scale-in deletes by scale-in operations only (seed {seed}): {ops:?}"
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_an_instance_refresh_resumes_it_without_duplicates_or_orphans() {
    let mut run = CrashRun::start("refresh crash").await;
    let seed = run.seed;

    // Four instances of the first flavor, no kills.
    let mut spec = pool_spec(4, 4);
    run.phase(&spec, 0).await;
    let before: BTreeSet<String> = all_tagged(&run.emu, "crashy")
        .await
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(before.len(), 4);

    // A new flavor, replaced with kills at random moments.
    spec.flavor = "x1.4u.8g".into();
    spec.instance_refresh.max_surge = 2;
    spec.instance_refresh.min_healthy_percentage = 75;
    let (servers, ops) = run.killed_phase(&spec, "refresh").await;
    let live: Vec<_> = servers.iter().filter(|s| !s.status.is_gone()).collect();
    assert!(
        live.iter()
            .all(|s| s.flavor_name == "x1.4u.8g" || s.flavor_id == "x1.4u.8g"),
        "no instance of the old flavor is left (seed {seed})"
    );
    assert!(
        live.iter().all(|s| !before.contains(&s.id)),
        "every old instance was replaced (seed {seed})"
    );
    assert_eq!(live.len(), 4);
    let of = |k: OperationKind| ops.iter().filter(move |o| o.op.kind == k);
    // Replacements are refresh launches — or, after a kill between a retire and its
    // launch, an ordinary scale-out back to the desired count: either way the cloud
    // made one per old instance, never more (gone ones counted; a final operation
    // keeps no request body, so the cloud's record is the one to count).
    let new_flavor_made = servers
        .iter()
        .filter(|s| s.flavor_name == "x1.4u.8g" || s.flavor_id == "x1.4u.8g")
        .count();
    assert_eq!(
        new_flavor_made, 4,
        "exactly one replacement per instance was ever created (seed {seed}): {servers:?}"
    );
    assert!(
        ops.iter().all(|o| o.op.state == OperationState::Succeeded),
        "nothing failed or was abandoned (seed {seed}): {ops:?}"
    );
    let refreshes: Vec<_> = of(OperationKind::Refresh).collect();
    assert_eq!(
        refreshes.len(),
        1,
        "one refresh, resumed across restarts (seed {seed})"
    );
    assert_eq!(refreshes[0].op.state, OperationState::Succeeded);
    assert_eq!(refreshes[0].op.count, 4);
    assert_made_by_succeeded_creates(&live, &ops, seed);
    // Old instances go through refresh retirements (or a scale-in after a restart).
    assert_eq!(
        deleted_servers(&ops),
        before.iter().map(String::as_str).collect(),
        "exactly the old instances were deleted (seed {seed}): {ops:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_to_the_advisor_cut_short_by_sigkill_reads_as_failed_after_the_restart() {
    let emu = Emu::start(1.0, 2.0).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("deepseek.key"),
        flexus_emulator::config::DEFAULT_DEEPSEEK_KEY,
    )
    .unwrap();
    let advisor = format!(
        "[advisor]\nenabled = true\nbase_url = \"{}\"\napi_key_file = \"deepseek.key\"\ntimeout = \"60s\"\n",
        emu.url
    );
    let config = write_config_with(
        dir.path(),
        &emu.url,
        free_port(),
        "agent.db",
        FAST_RECONCILE,
        &advisor,
    );
    let log = dir.path().join("agent.log");
    let mut p = start_agent(&config, &log);
    wait_ready(&mut p, &log).await;
    let c = flexus_api::Client::new(&p.url, Some(ADMIN.into())).unwrap();
    c.put_pool("team-a", "steady", &pool_spec(1, 2), Precondition::None)
        .await
        .unwrap();
    // The model hangs; the agent is killed while it waits for the answer.
    emu.control(
        reqwest::Method::POST,
        "/_emulator/deepseek",
        serde_json::json!({"script": [{"kind": "hang", "times": 5}]}),
    )
    .await;
    let asked = c.request_advice("team-a", "steady").await.unwrap();
    wait_for("the model is asked", Duration::from_secs(30), || async {
        let state = emu
            .control(
                reqwest::Method::GET,
                "/_emulator/deepseek",
                serde_json::json!({}),
            )
            .await;
        (state["calls"].as_u64() >= Some(1)).then_some(())
    })
    .await;
    kill9(&mut p);

    let mut p = start_agent(&config, &log);
    wait_ready(&mut p, &log).await;
    let c = flexus_api::Client::new(&p.url, Some(ADMIN.into())).unwrap();
    let list = c.list_advice("team-a", "steady").await.unwrap();
    let a = list
        .iter()
        .find(|a| a.id == asked.id)
        .expect("the request is kept");
    assert_eq!(a.state, flexus_api::AdviceState::Failed, "{a:?}");
    assert!(
        a.error
            .as_deref()
            .is_some_and(|e| e.contains("stopped before the model answered; ask again")),
        "{a:?}"
    );
    sigterm_and_wait(&mut p).await;
    emu.stop.cancel();
}
