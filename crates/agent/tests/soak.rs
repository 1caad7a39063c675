//! Soak: a fleet of `flexus-agent` processes on one PostgreSQL runs many emulated hours
//! against the emulator while faults are injected on a seeded schedule — 429 bursts,
//! 5xx windows, added latency, spot reclamations, SIGKILL of an agent (restarted after
//! a pause) and PostgreSQL restarts — and pool sizes and policies keep changing through
//! the API of the agents that are up.
//!
//! Invariants are checked every few emulated minutes (and at the end): every
//! acknowledged write is in the store; no operation made more instances than it asked
//! for; every instance names a recorded operation of its pool; a pool that has been
//! left alone has exactly the cloud's instances in the agent's status and the size its
//! spec and policy ask for. At the end also: the rows of the store stay within
//! retention. The first violation fails the run, named.
//!
//! Defaults are the smoke run of `make test` (2 emulated hours, 30 pools, 3 agents, 72×);
//! `make soak` runs 24 emulated hours with 200 pools. Every parameter is an env var
//! (`FLEXUS_SOAK_*`, see [`Params::from_env`]); the seed is printed for replay.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::fleet::*;
use common::postgres::PgServer;
use common::process::*;
use common::*;
use flexus_agent::store::sql::{StoreLocation, StoreOptions};
use flexus_agent::store::{SqlStore, Store};
use flexus_api::Precondition;
use flexus_emulator::Emulator;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tokio_util::sync::CancellationToken;

const NS: &str = "soak";
/// Retention the agents run with (small, so that 24 emulated hours reach it).
const OPERATIONS_KEEP: i64 = 20;
const DECISIONS_KEEP: i64 = 50;
const POLICY_VERSIONS_KEEP: i64 = 5;
const USAGE_RETENTION_H: i64 = 6;

/// The run's parameters (`FLEXUS_SOAK_<NAME>`, emulated seconds unless said).
#[derive(Debug, Clone)]
struct Params {
    hours: f64,
    pools: usize,
    agents: usize,
    /// Emulated seconds per real second.
    speed: f64,
    /// Evaluation interval of every pool.
    interval_s: f64,
    check_every_s: f64,
    /// Mean spacing of the faults.
    fault_every_s: f64,
    /// Spacing of the API writes.
    write_every_s: f64,
    /// The fault kinds injected (`FLEXUS_SOAK_FAULTS`, comma-separated names; all by
    /// default).
    faults: Vec<Fault>,
    seed: u64,
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(format!("FLEXUS_SOAK_{name}")) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("FLEXUS_SOAK_{name}: cannot parse {v:?}")),
        Err(_) => default,
    }
}

impl Params {
    fn from_env() -> Self {
        Self {
            hours: env("HOURS", 2.0),
            pools: env("POOLS", 30),
            agents: env("AGENTS", 3),
            speed: env("SPEED", 72.0),
            interval_s: env("INTERVAL", 120.0),
            check_every_s: env("CHECK_EVERY", 300.0),
            fault_every_s: env("FAULT_EVERY", 600.0),
            write_every_s: env("WRITE_EVERY", 60.0),
            faults: std::env::var("FLEXUS_SOAK_FAULTS")
                .map(|v| v.split(',').map(Fault::parse).collect())
                .unwrap_or_else(|_| FAULTS.to_vec()),
            seed: env("SEED", rand::random()),
        }
    }

    /// Emulated seconds → real time.
    fn real(&self, emulated_s: f64) -> Duration {
        Duration::from_secs_f64(emulated_s / self.speed)
    }

    /// A pool left alone this long (no write, no reclaim) must be settled.
    fn settle_s(&self) -> f64 {
        4.0 * self.interval_s
    }

    fn reconcile(&self) -> String {
        format!(
            "default_interval = \"{i}s\"\njob_poll = \"{p}s\"\nmax_backoff = \"{b}s\"\n\
             decision_log_keep = {DECISIONS_KEEP}",
            i = self.interval_s,
            p = (self.interval_s / 4.0).max(1.0),
            b = 2.0 * self.interval_s,
        )
    }
}

/// What the agents run with besides the fleet's lease settings.
fn retention_toml() -> String {
    format!(
        "[retention]\noperations_keep = {OPERATIONS_KEEP}\npolicy_versions_keep = {POLICY_VERSIONS_KEEP}\n\
         operations_max_age = \"12h\"\n[cost]\nretention = \"{USAGE_RETENTION_H}h\"\nwindow = \"{USAGE_RETENTION_H}h\"\n"
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    Throttle,
    ServerErrors,
    Latency,
    SpotReclaim,
    KillAgent,
    PgRestart,
}

impl Fault {
    fn parse(name: &str) -> Self {
        match name.trim() {
            "throttle" => Fault::Throttle,
            "5xx" => Fault::ServerErrors,
            "latency" => Fault::Latency,
            "spot" => Fault::SpotReclaim,
            "kill" => Fault::KillAgent,
            "pg" => Fault::PgRestart,
            other => panic!(
                "FLEXUS_SOAK_FAULTS: unknown fault {other:?} (throttle, 5xx, latency, spot, kill, pg)"
            ),
        }
    }
}

const FAULTS: [Fault; 6] = [
    Fault::Throttle,
    Fault::ServerErrors,
    Fault::Latency,
    Fault::SpotReclaim,
    Fault::KillAgent,
    Fault::PgRestart,
];

/// The seeded schedule: one fault per `fault_every_s` slot at a random point of the
/// slot, the kinds dealt round after round in a shuffled order (so every kind comes
/// up equally often). Emulated seconds from the start.
fn schedule(p: &Params, rng: &mut StdRng) -> Vec<(f64, Fault)> {
    let slots = (p.hours * 3600.0 / p.fault_every_s).floor() as usize;
    let mut kinds = Vec::new();
    while kinds.len() < slots {
        assert!(!p.faults.is_empty(), "FLEXUS_SOAK_FAULTS names no fault");
        let mut round = p.faults.clone();
        round.shuffle(rng);
        kinds.extend(round);
    }
    (0..slots)
        .map(|i| {
            let at = (i as f64 + rng.random_range(0.1..0.9)) * p.fault_every_s;
            (at, kinds[i])
        })
        .collect()
}

/// A pool's last acknowledged spec and policy, and what was sent without an answer
/// (a write that timed out or failed may still have been committed).
#[derive(Debug, Default)]
struct Written {
    pool: (u64, u32, u32),
    policy: (u64, u32),
    unanswered_pools: BTreeSet<(u32, u32)>,
    unanswered_policies: BTreeSet<u32>,
    /// Emulated ms of the last write or reclaim of the pool.
    last_change_ms: i64,
}

#[derive(Debug, Default)]
struct Stats {
    faults: BTreeMap<String, u32>,
    writes_acked: u32,
    writes_unanswered: u32,
    checks: u32,
    settled_pool_checks: u32,
    skipped_checks: u32,
    readiness_red: u32,
    peak_rss_kb: u64,
    cpu_ticks: HashMap<u32, u64>,
}

fn spot_pool_spec(min: u32, max: u32) -> flexus_api::PoolSpec {
    let mut s = pool_spec(min, max);
    s.spot.enabled = true;
    s.spot.spot_percentage = 100;
    s
}

fn fixed_policy(pool: &str, count: u32, interval_s: f64) -> flexus_api::PolicySpec {
    policy(
        pool,
        serde_json::json!({
            "strategy": "fixed",
            "evaluation_interval": format!("{interval_s}s"),
            "bounds": {"min": 1, "max": 3},
            "fixed": {"count": count},
            "scale_out": {"stabilisation_window": "0s", "cooldown": "0s"},
            "scale_in": {"stabilisation_window": "0s", "cooldown": "0s"},
        }),
    )
}

fn fixed_count(doc: &flexus_agent::store::PolicyDoc) -> u32 {
    doc.spec.policy.fixed.as_ref().map(|f| f.count).unwrap_or(0)
}

/// The cloud's instances of each pool that are neither being deleted nor reclaimed.
fn cloud_live(emu: &Emulator) -> HashMap<String, BTreeSet<String>> {
    emu.with(|inner, _| {
        let mut m: HashMap<String, BTreeSet<String>> = HashMap::new();
        for s in inner.state.servers.values() {
            if s.phase != flexus_emulator::state::Phase::Deleted
                && s.delete_at.is_none()
                && s.reclaim_at.is_none()
                && let Some(p) = s.tag("flexus-pool")
            {
                m.entry(p.to_owned()).or_default().insert(s.id.clone());
            }
        }
        m
    })
}

/// Peak RSS (kB) and CPU ticks of a process, from `/proc`.
fn proc_usage(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some((hwm, ticks))
}

struct Soak {
    p: Params,
    rng: StdRng,
    emu: Arc<Emulator>,
    emu_url: String,
    http: reqwest::Client,
    pg: &'static PgServer,
    db: sqlx::PgPool,
    db_url: String,
    store: SqlStore,
    agents: Vec<FleetAgent>,
    /// When (real) a killed agent is started again.
    restart_at: Vec<Option<Instant>>,
    seen: Seen,
    /// Every operation the store ever showed: id → (pool, count asked for).
    ops: HashMap<String, (String, u32)>,
    written: BTreeMap<String, Written>,
    /// Settled pools found wrong once: confirmed (a violation) if still wrong next check.
    suspects: BTreeMap<String, String>,
    /// End (emulated ms) of the fault window in force.
    window_end_ms: Option<i64>,
    passes: SharedPasses,
    stats: Stats,
    t0_ms: i64,
    /// When the pools were declared: usage is recorded from then on.
    declared_ms: i64,
}

impl Soak {
    fn now_ms(&self) -> i64 {
        self.emu.now().timestamp_millis()
    }

    fn elapsed_s(&self) -> f64 {
        (self.now_ms() - self.t0_ms) as f64 / 1000.0
    }

    fn fail(&self, what: String) -> ! {
        panic!(
            "soak violation at +{:.0} emulated s (seed {}): {what}",
            self.elapsed_s(),
            self.p.seed
        );
    }

    fn up_agents(&self) -> Vec<usize> {
        (0..self.agents.len())
            .filter(|k| self.restart_at[*k].is_none())
            .collect()
    }

    async fn control(&self, method: reqwest::Method, path: &str, body: serde_json::Value) {
        let r = self
            .http
            .request(method, format!("{}{path}", self.emu_url))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        assert!(
            status.is_success(),
            "emulator control {path}: {status} {}",
            r.text().await.unwrap_or_default()
        );
    }

    fn sample_agents(&mut self) {
        for a in &self.agents {
            if let Some((rss, ticks)) = proc_usage(a.proc.child.id()) {
                self.stats.peak_rss_kb = self.stats.peak_rss_kb.max(rss);
                self.stats.cpu_ticks.insert(a.proc.child.id(), ticks);
            }
        }
    }

    /// Declares every pool (1 instance, a fixed policy of 1) and waits until each
    /// has its instance.
    async fn declare(&mut self) {
        let urls: Vec<String> = self.agents.iter().map(|a| a.proc.url.clone()).collect();
        for i in 0..self.p.pools {
            let name = pool_name(i);
            let c = admin_client(&urls[i % urls.len()]);
            let pool = c
                .put_pool(NS, &name, &spot_pool_spec(1, 3), Precondition::None)
                .await
                .unwrap();
            let pol = c
                .put_policy(
                    NS,
                    &name,
                    &fixed_policy(&name, 1, self.p.interval_s),
                    Precondition::None,
                )
                .await
                .unwrap();
            self.written.insert(
                name,
                Written {
                    pool: (pool.value.version, 1, 3),
                    policy: (pol.value.version, 1),
                    ..Default::default()
                },
            );
        }
        wait_each_pool_at_one(
            &self.emu,
            &self.seen,
            self.p.pools,
            Duration::from_secs(180),
        )
        .await;
    }

    /// One write through a random agent that is up: a pool's `max_size` (3 or 4) or
    /// its policy's fixed count (1..3).
    async fn write_one(&mut self, limit: Duration) {
        let up = self.up_agents();
        let k = up[self.rng.random_range(0..up.len())];
        let name = pool_name(self.rng.random_range(0..self.p.pools));
        let c = admin_client(&self.agents[k].proc.url);
        let now = self.now_ms();
        let w = self.written.get_mut(&name).unwrap();
        w.last_change_ms = now;
        if self.rng.random_bool(0.5) {
            // The policy's bounds (1..3) must stay within the pool's: the API refuses a
            // policy that widens its pool's bounds.
            let min = 1;
            let max = self.rng.random_range(3..=4u32);
            let spec = spot_pool_spec(min, max);
            let put = c.put_pool(NS, &name, &spec, Precondition::None);
            match tokio::time::timeout(limit, put).await {
                Ok(Ok(v)) => w.pool = (v.value.version, min, max),
                _ => {
                    w.unanswered_pools.insert((min, max));
                    self.stats.writes_unanswered += 1;
                    return;
                }
            }
        } else {
            let count = self.rng.random_range(1..=3u32);
            let spec = fixed_policy(&name, count, self.p.interval_s);
            let put = c.put_policy(NS, &name, &spec, Precondition::None);
            match tokio::time::timeout(limit, put).await {
                Ok(Ok(v)) => w.policy = (v.value.version, count),
                _ => {
                    w.unanswered_policies.insert(count);
                    self.stats.writes_unanswered += 1;
                    return;
                }
            }
        }
        self.stats.writes_acked += 1;
    }

    async fn inject(&mut self, fault: Fault) {
        let window_s = 2.0 * self.p.interval_s;
        let window_end = self.now_ms() + (window_s * 1000.0) as i64;
        let label = match fault {
            Fault::Throttle => {
                let body = serde_json::json!({"operation": "*", "throttle_burst": 30});
                self.control(reqwest::Method::POST, "/_emulator/faults", body)
                    .await;
                "429 burst (30 calls)"
            }
            Fault::ServerErrors => {
                let body = serde_json::json!({"operation": "*", "error_rate": 0.3, "status": 503, "code": "Ecs.1000"});
                self.control(reqwest::Method::POST, "/_emulator/faults", body)
                    .await;
                self.window_end_ms = Some(window_end);
                "5xx window (30 % of calls answer 503)"
            }
            Fault::Latency => {
                let body = serde_json::json!({"operation": "*", "latency_ms": 300});
                self.control(reqwest::Method::POST, "/_emulator/faults", body)
                    .await;
                self.window_end_ms = Some(window_end);
                "latency window (+300 ms real per call)"
            }
            Fault::SpotReclaim => {
                self.reclaim_some().await;
                "spot reclamation"
            }
            Fault::KillAgent => {
                let up = self.up_agents();
                if up.len() < 2 {
                    return;
                }
                let k = up[self.rng.random_range(0..up.len())];
                self.sample_agents();
                kill9(&mut self.agents[k].proc);
                self.restart_at[k] = Some(Instant::now() + Duration::from_secs(3));
                "agent SIGKILL (restarted after 3 s real)"
            }
            Fault::PgRestart => {
                self.pg_restart().await;
                "PostgreSQL restart (down 5 s real)"
            }
        };
        *self.stats.faults.entry(label.to_owned()).or_default() += 1;
        println!("soak: +{:.0}s {label}", self.elapsed_s());
    }

    /// Reclaims up to three random live spot instances (notice: one interval).
    async fn reclaim_some(&mut self) {
        let live = cloud_live(&self.emu);
        let mut ids: Vec<(String, String)> = live
            .iter()
            .flat_map(|(p, ids)| ids.iter().map(move |id| (p.clone(), id.clone())))
            .collect();
        ids.sort();
        ids.shuffle(&mut self.rng);
        let now = self.now_ms();
        for (pool, id) in ids.into_iter().take(3) {
            let body = serde_json::json!({"server_id": id, "notice_seconds": self.p.interval_s});
            self.control(reqwest::Method::POST, "/_emulator/spot/reclaim", body)
                .await;
            if let Some(w) = self.written.get_mut(&pool) {
                w.last_change_ms = now;
            }
        }
    }

    /// Stops PostgreSQL for 5 s (real) and starts it again on the same data directory
    /// and port. Meanwhile the agents that are up must say they are not ready, and a
    /// write through them must not be acknowledged; afterwards their readiness must
    /// stop naming the store within 30 s.
    async fn pg_restart(&mut self) {
        self.pg.stop();
        let down_until = Instant::now() + Duration::from_secs(5);
        let up = self.up_agents();
        let mut red = BTreeSet::new();
        let mut tried_write = false;
        while Instant::now() < down_until {
            for &k in &up {
                let url = format!("{}/readyz", self.agents[k].proc.url);
                let r = self.http.get(url).timeout(Duration::from_secs(2)).send();
                if let Ok(Ok(r)) = tokio::time::timeout(Duration::from_secs(2), r).await
                    && r.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE
                    && let Ok(body) = r.json::<serde_json::Value>().await
                    && body["status"] == "store_unavailable"
                {
                    red.insert(k);
                }
            }
            if !tried_write {
                tried_write = true;
                let acked_before = self.stats.writes_acked;
                self.write_one(Duration::from_secs(2)).await;
                if self.stats.writes_acked != acked_before {
                    self.fail("a write was acknowledged while PostgreSQL was down".into());
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.pg.start();
        if red.is_empty() {
            self.fail(format!(
                "no agent ({up:?}) reported not ready while PostgreSQL was down"
            ));
        }
        self.stats.readiness_red += 1;
        for &k in &up {
            self.wait_store_ready_again(k).await;
        }
    }

    /// Agent `k`'s `/readyz` stops naming the store within 30 s (real); otherwise the
    /// run fails with its last answer and the tail of its log. (It may still be red for
    /// the cloud: during a 5xx window the agent's cloud probe, every 30 s, can fail.)
    async fn wait_store_ready_again(&self, k: usize) {
        let url = format!("{}/readyz", self.agents[k].proc.url);
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = String::new();
        while Instant::now() < deadline {
            let r = self
                .http
                .get(&url)
                .timeout(Duration::from_secs(5))
                .send()
                .await;
            match r {
                Ok(r) => {
                    let body: serde_json::Value = r.json().await.unwrap_or_default();
                    if matches!(body["status"].as_str(), Some("ready" | "not ready")) {
                        return;
                    }
                    last = body.to_string();
                }
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.fail(format!(
            "agent-{k}: the store still not ready 30 s after the PostgreSQL restart: {last}\nlog:\n{}",
            self.agents[k].log_tail(30)
        ));
    }

    /// The store's pools and policies, checked against what was written; the size each
    /// pool must have.
    async fn check_writes(&self) -> Result<HashMap<String, u32>, sqlx::Error> {
        let pools = self.store.list_pools(Some(NS)).await.map_err(to_sqlx)?;
        let policies = self.store.list_policies(NS).await.map_err(to_sqlx)?;
        let policies: HashMap<&str, _> = policies.iter().map(|d| (d.name.as_str(), d)).collect();
        let mut want = HashMap::new();
        if pools.len() != self.written.len() {
            self.fail(format!(
                "the store has {} pools, {} were declared",
                pools.len(),
                self.written.len()
            ));
        }
        for d in &pools {
            let w = &self.written[&d.name];
            let got = (d.spec.min_size, d.spec.max_size);
            let ok = if d.version == w.pool.0 {
                got == (w.pool.1, w.pool.2)
            } else {
                d.version > w.pool.0 && w.unanswered_pools.contains(&got)
            };
            if !ok {
                self.fail(format!(
                    "pool {} lost an acknowledged write: store has version {} {got:?}, \
                     acknowledged version {} {:?}",
                    d.name,
                    d.version,
                    w.pool.0,
                    (w.pool.1, w.pool.2)
                ));
            }
            let Some(pol) = policies.get(d.name.as_str()) else {
                self.fail(format!("policy {} is missing from the store", d.name));
            };
            let count = fixed_count(pol);
            let ok = if pol.version == w.policy.0 {
                count == w.policy.1
            } else {
                pol.version > w.policy.0 && w.unanswered_policies.contains(&count)
            };
            if !ok {
                self.fail(format!(
                    "policy {} lost an acknowledged write: store has version {} count {count}, \
                     acknowledged version {} count {}",
                    d.name, pol.version, w.policy.0, w.policy.1
                ));
            }
            want.insert(d.name.clone(), count.clamp(got.0, got.1));
        }
        Ok(want)
    }

    /// No duplicate, no orphan: every server seen names an operation of its pool that
    /// the store recorded, and no operation made more servers than it asked for.
    /// Returns the pools with an open operation.
    async fn check_ops(&mut self) -> Result<BTreeSet<String>, sqlx::Error> {
        record_servers(&self.emu, &self.seen);
        let rows: Vec<(String, String, i64, String)> =
            sqlx::query_as("SELECT id, pool, count, state FROM operations WHERE namespace = $1")
                .bind(NS)
                .fetch_all(&self.db)
                .await?;
        let mut open = BTreeSet::new();
        for (id, pool, count, state) in rows {
            if matches!(state.as_str(), "pending" | "submitted") {
                open.insert(pool.clone());
            }
            self.ops.insert(id, (pool, count as u32));
        }
        let seen = self.seen.lock().unwrap().clone();
        let mut per_op: HashMap<&str, u32> = HashMap::new();
        for (id, (pool, op)) in &seen {
            match self.ops.get(op) {
                Some((p, _)) if p == pool => *per_op.entry(op).or_default() += 1,
                _ => self.fail(format!(
                    "orphan: server {id} of pool {pool} names no recorded operation of it ({op:?})"
                )),
            }
        }
        for (op, n) in per_op {
            let (pool, asked) = &self.ops[op];
            if n > *asked {
                self.fail(format!(
                    "duplicate: operation {op} of pool {pool} made {n} servers for {asked} asked"
                ));
            }
        }
        Ok(open)
    }

    /// A pool left alone for the settle window, with no open operation and a status
    /// written after its last change, must be ready with the cloud's instances and
    /// its wanted size. Returns how many pools were settled.
    async fn check_settled(
        &mut self,
        want: &HashMap<String, u32>,
        open: &BTreeSet<String>,
    ) -> Result<u32, sqlx::Error> {
        let cloud = cloud_live(&self.emu);
        let now = self.now_ms();
        let settle_ms = (self.p.settle_s() * 1000.0) as i64;
        let mut settled = 0;
        let mut wrong = BTreeMap::new();
        for (name, w) in &self.written {
            if open.contains(name) || now - w.last_change_ms < settle_ms {
                self.suspects.remove(name);
                continue;
            }
            let rt = self.store.get_runtime(NS, name).await.map_err(to_sqlx)?;
            let Some(st) = rt.map(|r| r.status) else {
                continue;
            };
            let at = st
                .last_reconcile_at
                .as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.timestamp_millis())
                .unwrap_or(0);
            if at < w.last_change_ms || st.phase != flexus_api::PoolPhase::Ready {
                continue;
            }
            settled += 1;
            let ids: BTreeSet<String> = st.instance_ids.iter().cloned().collect();
            let cloud_ids = cloud.get(name).cloned().unwrap_or_default();
            if ids != cloud_ids || cloud_ids.len() as u32 != want[name] {
                wrong.insert(
                    name.clone(),
                    format!(
                        "pool {name} settled but wrong: wants {} instances, the agent's status \
                         has {ids:?}, the cloud has {cloud_ids:?}",
                        want[name]
                    ),
                );
            }
        }
        for (name, msg) in &wrong {
            if self.suspects.contains_key(name) {
                self.fail(format!("{msg} (on two checks in a row)"));
            }
        }
        self.suspects = wrong;
        Ok(settled)
    }

    async fn check(&mut self) {
        let r = async {
            let want = self.check_writes().await?;
            let open = self.check_ops().await?;
            self.check_settled(&want, &open).await
        }
        .await;
        match r {
            Ok(settled) => {
                self.stats.checks += 1;
                self.stats.settled_pool_checks += settled;
            }
            Err(e) => {
                self.stats.skipped_checks += 1;
                println!("soak: +{:.0}s check skipped: {e}", self.elapsed_s());
            }
        }
        self.sample_agents();
    }

    async fn run_faults(&mut self) {
        let plan = schedule(&self.p, &mut self.rng);
        let end_ms = self.t0_ms + (self.p.hours * 3_600_000.0) as i64;
        let (mut next_fault, mut next_write, mut next_check) = (0, 0.0, self.p.check_every_s);
        while self.now_ms() < end_ms {
            record_servers(&self.emu, &self.seen);
            let t = self.elapsed_s();
            for k in 0..self.agents.len() {
                if self.restart_at[k].is_some_and(|at| Instant::now() >= at) {
                    self.agents[k].restart().await;
                    self.restart_at[k] = None;
                }
            }
            if self.window_end_ms.is_some_and(|e| self.now_ms() >= e) {
                self.window_end_ms = None;
                self.control(
                    reqwest::Method::DELETE,
                    "/_emulator/faults",
                    serde_json::json!({}),
                )
                .await;
            }
            if next_fault < plan.len() && t >= plan[next_fault].0 {
                let f = plan[next_fault].1;
                next_fault += 1;
                self.inject(f).await;
            }
            if t >= next_write {
                next_write += self.p.write_every_s;
                self.write_one(Duration::from_secs(10)).await;
            }
            if t >= next_check {
                next_check += self.p.check_every_s;
                self.check().await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Faults off, every agent up: every pool converges to its wanted size with no
    /// open operation, and the checks pass.
    async fn converge(&mut self) {
        self.control(
            reqwest::Method::DELETE,
            "/_emulator/faults",
            serde_json::json!({}),
        )
        .await;
        for k in 0..self.agents.len() {
            if self.restart_at[k].take().is_some() {
                self.agents[k].restart().await;
            }
        }
        let deadline = Instant::now() + Duration::from_secs(240);
        loop {
            let want = self.check_writes().await.unwrap();
            let open = self.check_ops().await.unwrap();
            let live = cloud_live(&self.emu);
            let unsettled: Vec<String> = want
                .iter()
                .filter(|(n, w)| {
                    open.contains(*n) || live.get(*n).map_or(0, |s| s.len()) != **w as usize
                })
                .map(|(n, w)| format!("{n} wants {w} has {:?}", live.get(n).map(|s| s.len())))
                .collect();
            if unsettled.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = self.agents.iter().map(|a| a.log_tail(10)).collect();
                self.fail(format!(
                    "not converged 240 s after the faults stopped: {unsettled:?}\nleases: {}\nlogs:\n{}",
                    lease_table(&self.db_url).await,
                    logs.join("\n---\n")
                ));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        // Statuses catch up within an interval or two.
        for w in self.written.values_mut() {
            w.last_change_ms = 0;
        }
        tokio::time::sleep(self.p.real(2.5 * self.p.interval_s)).await;
        self.check().await;
        self.check().await;
    }

    /// The store's row counts, the first one beyond retention (if any), and the
    /// database size.
    async fn rows(&self) -> (BTreeMap<String, i64>, Option<String>, i64) {
        let pools = self.p.pools as i64;
        // Usage rows are per clock hour: a run touches every hour from its declaration's to
        // now's (it goes on past `hours` while it converges and checks), and retention
        // keeps the last USAGE_RETENTION_H + 1 of them, plus one while a prune lags and
        // one for the hour just begun.
        let hour = |ms: i64| ms.div_euclid(3_600_000);
        let touched = hour(self.now_ms()) - hour(self.declared_ms) + 1;
        let hours = touched.min(USAGE_RETENTION_H + 3);
        let bounds: [(&str, Option<i64>); 10] = [
            ("operations", Some(pools * OPERATIONS_KEEP)),
            // Decisions are trimmed on one insert in 16 (by the global id), so a pool
            // holds `keep` plus 16 on average; the bound leaves twice that.
            ("decisions", Some(pools * (DECISIONS_KEEP + 32))),
            ("policy_versions", Some(pools * POLICY_VERSIONS_KEEP)),
            ("pool_state", Some(pools)),
            ("leases", Some(pools)),
            ("agents", Some(self.p.agents as i64)),
            ("usage_hours", Some(pools * hours)),
            ("usage_samples", Some(pools * hours)),
            ("forecast_history", None),
            ("pushed_metrics", None),
        ];
        let mut counts = BTreeMap::new();
        let mut beyond = None;
        for (table, bound) in bounds {
            let n: i64 =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                    .fetch_one(&self.db)
                    .await
                    .unwrap();
            if let Some(b) = bound
                && n > b
                && beyond.is_none()
            {
                beyond = Some(format!(
                    "table {table} has {n} rows, retention allows at most {b}"
                ));
            }
            counts.insert(table.to_owned(), n);
        }
        let size: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
            .fetch_one(&self.db)
            .await
            .unwrap();
        (counts, beyond, size)
    }
}

fn to_sqlx(e: flexus_agent::store::StoreError) -> sqlx::Error {
    sqlx::Error::Protocol(e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_on_postgresql_keep_every_invariant_through_hours_of_injected_faults() {
    let p = Params::from_env();
    println!("soak: {p:?} (set FLEXUS_SOAK_SEED={} to replay)", p.seed);
    let started = Instant::now();
    let pg = PgServer::shared();
    let db_url = pg.fresh_db().await;
    let passes: SharedPasses = Arc::default();
    let emu_stop = CancellationToken::new();
    let (emu, emu_url) = fleet_emulator(p.speed, 60.0, passes.clone(), emu_stop.clone()).await;
    let mut agents = Vec::new();
    for i in 0..p.agents {
        let (reconcile, extra) = (p.reconcile(), retention_toml());
        agents.push(
            FleetAgent::start(|dir, port| {
                write_fleet_config(dir, &emu_url, port, &db_url, i, &reconcile, &extra)
            })
            .await,
        );
    }
    let store = SqlStore::connect(
        &StoreLocation::Postgres(db_url.clone()),
        StoreOptions::default(),
    )
    .await
    .unwrap();
    let db = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&db_url)
        .await
        .unwrap();
    let mut soak = Soak {
        rng: StdRng::seed_from_u64(p.seed),
        restart_at: vec![None; p.agents],
        p,
        emu: emu.clone(),
        emu_url,
        http: reqwest::Client::new(),
        pg,
        db,
        db_url: db_url.clone(),
        store,
        agents,
        seen: Arc::default(),
        ops: HashMap::new(),
        written: BTreeMap::new(),
        suspects: BTreeMap::new(),
        window_end_ms: None,
        passes: passes.clone(),
        stats: Stats::default(),
        t0_ms: 0,
        declared_ms: 0,
    };
    soak.declared_ms = soak.now_ms();
    soak.declare().await;
    println!(
        "soak: declared and settled in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    soak.t0_ms = soak.now_ms();
    soak.passes.lock().unwrap().measuring = true;
    soak.run_faults().await;
    println!(
        "soak: fault phase done at {:.0} s real",
        started.elapsed().as_secs_f64()
    );
    soak.converge().await;
    soak.passes.lock().unwrap().measuring = false;
    let (rows, beyond, db_size) = soak.rows().await;
    report(&soak, &rows, db_size, started.elapsed());
    if let Some(b) = beyond {
        soak.fail(b);
    }
    assert_every_billed_server_seen(&emu, &soak.seen.lock().unwrap());
    assert_eq!(
        soak.suspects.len(),
        0,
        "unconfirmed mismatches at the end: {:?}",
        soak.suspects
    );
    for a in &mut soak.agents {
        sigterm_and_wait(&mut a.proc).await;
    }
    emu_stop.cancel();
}

fn report(s: &Soak, rows: &BTreeMap<String, i64>, db_size: i64, real: Duration) {
    let gap_s = s.passes.lock().unwrap().max_gap_ms as f64 / 1000.0;
    let cpu_s: u64 = s.stats.cpu_ticks.values().sum::<u64>() / 100;
    println!("soak: real duration {:.0} s", real.as_secs_f64());
    println!("soak: faults injected: {:?}", s.stats.faults);
    println!(
        "soak: writes acknowledged {}, unanswered {}; checks run {} (skipped {}), settled-pool \
         checks {}; PostgreSQL outages with readiness red {}",
        s.stats.writes_acked,
        s.stats.writes_unanswered,
        s.stats.checks,
        s.stats.skipped_checks,
        s.stats.settled_pool_checks,
        s.stats.readiness_red
    );
    println!(
        "soak: servers created {}; operations recorded {}; violations 0",
        s.seen.lock().unwrap().len(),
        s.ops.len()
    );
    println!(
        "soak: longest gap between two passes of a pool: {gap_s:.0} emulated s ({:.1} intervals)",
        gap_s / s.p.interval_s
    );
    println!(
        "soak: agents' peak RSS {} MiB, CPU {cpu_s} s (all agent processes)",
        s.stats.peak_rss_kb / 1024
    );
    println!(
        "soak: rows at the end {rows:?}; database size {} MiB",
        db_size / (1 << 20)
    );
}
