//! A fleet of `flexus-agent` processes on one PostgreSQL against an in-process,
//! accelerated emulator (the HA test and the soak): the emulator served with a layer
//! that notes each pool's passes, agents started from a config, and what the cloud
//! holds (live instances per pool, every server ever seen with its pool and operation).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flexus_emulator::{Emulator, EmulatorConfig, Quota};
use tokio_util::sync::CancellationToken;

use super::process::*;
use super::*;

/// The fleet's emulator (emulated `boot_seconds`, `speed`× real time, a quota for
/// thousands of instances), served on loopback through [`observed_router`]; its URL.
pub async fn fleet_emulator(
    speed: f64,
    boot_seconds: f64,
    passes: SharedPasses,
    stop: CancellationToken,
) -> (Arc<Emulator>, String) {
    let emu = Emulator::new(EmulatorConfig {
        boot_seconds: Some(boot_seconds),
        delete_seconds: 2.0,
        time_scale: speed,
        quota: Quota {
            instances: 4000,
            vcpus: 16000,
            ram_mb: 64_000_000,
        },
        ..emulator_config()
    })
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = observed_router(emu.clone(), passes);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
    });
    (emu, url)
}

/// Agent `i` of a fleet: `reconcile` as its `[reconcile]` settings, a short lease
/// (3 s, renewed every 750 ms, real time), `extra` TOML appended.
pub fn write_fleet_config(
    dir: &Path,
    emu_url: &str,
    port: u16,
    store: &str,
    i: usize,
    reconcile: &str,
    extra: &str,
) -> PathBuf {
    write_config_with(
        dir,
        emu_url,
        port,
        store,
        reconcile,
        &format!(
            "[lease]\nholder = \"agent-{i}\"\nttl = \"3s\"\nrenew_every = \"750ms\"\nmargin = \"1s\"\n{extra}"
        ),
    )
}

/// One agent process of the fleet, with its config and log in a directory of its own.
pub struct FleetAgent {
    pub proc: AgentProc,
    pub config: PathBuf,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl FleetAgent {
    /// Writes the config with `write(dir, port)` and starts the agent (until ready).
    pub async fn start(write: impl FnOnce(&Path, u16) -> PathBuf) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = write(dir.path(), free_port());
        let log = dir.path().join("agent.log");
        let proc = start_ready(&config, &log).await;
        Self {
            proc,
            config,
            log,
            _dir: dir,
        }
    }

    /// Starts it again on the same config (after a SIGKILL).
    pub async fn restart(&mut self) {
        self.proc = start_ready(&self.config, &self.log).await;
    }

    /// The last `n` lines of its log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(n).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

pub async fn start_ready(config: &Path, log: &Path) -> AgentProc {
    let mut p = start_agent(config, log);
    wait_ready(&mut p, log).await;
    p
}

/// The fleet tests' pool names: `p000`, `p001`, ...
pub fn pool_name(i: usize) -> String {
    format!("p{i:03}")
}

/// Waits (at most `timeout`, real) until each of the pools `p000..` has one live
/// instance, noting every server seen meanwhile.
pub async fn wait_each_pool_at_one(emu: &Emulator, seen: &Seen, pools: usize, timeout: Duration) {
    wait_for("every pool at 1 instance", timeout, || async {
        record_servers(emu, seen);
        let live = live_counts(emu);
        (0..pools)
            .all(|i| live.get(&pool_name(i)) == Some(&1))
            .then_some(())
    })
    .await;
}

/// Every server the emulator billed (ever created) was observed in `seen`: none came
/// and went between two samples unnoticed.
pub fn assert_every_billed_server_seen(emu: &Emulator, seen: &BTreeMap<String, (String, String)>) {
    let unseen: Vec<String> = emu.with(|inner, _| {
        inner
            .state
            .billing
            .keys()
            .filter(|id| !seen.contains_key(*id))
            .cloned()
            .collect()
    });
    assert!(
        unseen.is_empty(),
        "servers created but never observed: {unseen:?}"
    );
}

pub fn admin_client(url: &str) -> flexus_api::Client {
    flexus_api::Client::new(url, Some(ADMIN.into())).unwrap()
}

/// Every server the emulator has (or had, until it is forgotten): id → (pool, op tag).
pub type Seen = Arc<Mutex<BTreeMap<String, (String, String)>>>;

pub fn record_servers(emu: &Emulator, seen: &Seen) {
    let now: Vec<(String, String, String)> = emu.with(|inner, _| {
        inner
            .state
            .servers
            .values()
            .map(|s| {
                (
                    s.id.clone(),
                    s.tag("flexus-pool").unwrap_or_default().to_owned(),
                    s.tag("flexus-op").unwrap_or_default().to_owned(),
                )
            })
            .collect()
    });
    let mut seen = seen.lock().unwrap();
    for (id, pool, op) in now {
        seen.entry(id).or_insert((pool, op));
    }
}

pub fn live_counts(emu: &Emulator) -> HashMap<String, usize> {
    emu.with(|inner, _| {
        let mut m = HashMap::new();
        for s in inner.state.servers.values() {
            if matches!(s.status(), "BUILD" | "ACTIVE")
                && let Some(p) = s.tag("flexus-pool")
            {
                *m.entry(p.to_owned()).or_default() += 1;
            }
        }
        m
    })
}

/// When (emulated ms) each pool's servers were last listed, and the longest time
/// between two listings of one pool: every pass lists its pool's servers first, so
/// this is the longest gap between two passes, on the emulator's one clock.
#[derive(Default)]
pub struct Passes {
    pub last: HashMap<String, i64>,
    pub max_gap_ms: i64,
    pub worst: Option<(String, i64, i64)>,
    pub measuring: bool,
}

pub type SharedPasses = Arc<Mutex<Passes>>;

/// The emulator's router, with a layer that notes each pool's server listings.
pub fn observed_router(emu: Arc<Emulator>, passes: SharedPasses) -> axum::Router {
    let e = emu.clone();
    flexus_emulator::router(emu).layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let pool = (req.method() == axum::http::Method::GET
                && req.uri().path().ends_with("/cloudservers/detail"))
            .then(|| req.uri().query().map(flexus_cloud::signer::parse_raw_query))
            .flatten()
            .and_then(|pairs| {
                pairs.into_iter().find_map(|(k, v)| {
                    (k == "tags")
                        .then(|| v.strip_prefix("flexus-pool=").map(str::to_owned))
                        .flatten()
                })
            });
            if let Some(pool) = pool {
                let now = e.now().timestamp_millis();
                let mut p = passes.lock().unwrap();
                if let Some(prev) = p.last.insert(pool.clone(), now)
                    && p.measuring
                    && now - prev > p.max_gap_ms
                {
                    p.max_gap_ms = now - prev;
                    p.worst = Some((pool, prev, now));
                }
            }
            next.run(req)
        },
    ))
}

/// Leases per holder (diagnostics).
pub async fn lease_table(db: &str) -> String {
    use sqlx::Connection as _;
    let mut c = sqlx::PgConnection::connect(db).await.unwrap();
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT holder, COUNT(*), SUM(CASE WHEN expires_ms = 0 THEN 1 ELSE 0 END) FROM leases GROUP BY holder",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    format!("{rows:?}")
}

/// Syncs leases until the agent of `store` holds all `pools` (a round takes a bounded
/// number), as an agent alone on its store does before it writes fenced state.
pub async fn hold_leases(store: &dyn Store, pools: usize) {
    for _ in 0..1000 {
        if store.sync_leases().await.unwrap().held >= pools {
            return;
        }
    }
    panic!("the agent did not get the leases of all {pools} pools");
}
