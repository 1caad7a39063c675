//! Test harness: the emulator in-process on loopback, the agent either in-process (its
//! clock follows the emulator's) or as a separate process, and helpers to wait for
//! conditions with a deadline.

#![allow(dead_code)]

pub mod fleet;
pub mod lockstep;
pub mod postgres;
pub mod process;
pub mod tmpfs;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use flexus_agent::agent::Agent;
use flexus_agent::clock::{Clock, Millis, SharedClock};
use flexus_agent::config::{
    AuthConfig, CloudConfig, Config, LogFormat, MetricsConfig, ReconcileConfig, Secret,
};
use flexus_agent::runtime::Context;
use flexus_agent::runtime::sources::{CloudEye, Sources};
use flexus_agent::store::sql::StoreLocation;
use flexus_agent::store::{LeaseConfig, Retention, SqlStore, Store};
use flexus_agent::telemetry::Telemetry;
use flexus_cloud::{
    ClientConfig, Cloud, CreateServersRequest, Credentials, HuaweiClient, RateLimits, RetryPolicy,
    RootVolume,
};
use flexus_emulator::{AcceptedKey, Emulator, EmulatorConfig};
use tokio_util::sync::CancellationToken;

pub const AK: &str = "TESTACCESSKEY0000001";
pub const SK: &str = "test-secret-key-not-real-0000000000001";
pub const ADMIN: &str = "admin-token-0123456789";
pub const TEAM_A: &str = "team-a-token-0123456789";
pub const TEAM_B: &str = "team-b-token-0123456789";
pub const PROJECT: &str = "0123456789abcdef0123456789abcdef";
pub const REGION: &str = "cn-north-4";

/// A running emulator.
pub struct Emu {
    pub emu: Arc<Emulator>,
    pub url: String,
    pub stop: CancellationToken,
    pub http: reqwest::Client,
}

impl Emu {
    pub async fn start(time_scale: f64, boot_seconds: f64) -> Self {
        Self::serve(EmulatorConfig {
            boot_seconds: Some(boot_seconds),
            delete_seconds: 1.0,
            time_scale,
            metric_interval_s: 5,
            ..emulator_config()
        })
        .await
    }

    /// The emulator with `config`, served on loopback until `stop` is cancelled.
    pub async fn serve(config: EmulatorConfig) -> Self {
        let emu = Emulator::new(config).expect("emulator config is valid");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let s = stop.clone();
        let e = emu.clone();
        tokio::spawn(async move {
            let _ = flexus_emulator::serve(listener, e, async move { s.cancelled().await }).await;
        });
        Self {
            emu,
            url: format!("http://{addr}"),
            stop,
            http: reqwest::Client::new(),
        }
    }

    /// The signed Huawei client against the emulator (no rate limit, short retries).
    pub fn cloud(&self) -> Arc<dyn Cloud> {
        self.cloud_retrying(RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(400),
        })
    }

    /// The signed Huawei client against the emulator, without a rate limit, retrying
    /// as `retry` says.
    pub fn cloud_retrying(&self, retry: RetryPolicy) -> Arc<dyn Cloud> {
        let mut cc = ClientConfig::single_endpoint(&self.url, REGION, PROJECT).unwrap();
        cc.rate_limits = RateLimits::unlimited();
        cc.retry = retry;
        Arc::new(HuaweiClient::new(cc, Credentials::new(AK, SK)).unwrap())
    }

    pub async fn control(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> serde_json::Value {
        let r = self
            .http
            .request(method, format!("{}{}", self.url, path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: serde_json::Value = r.json().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "emulator control {path} failed: {status} {v}"
        );
        v
    }

    pub fn now_ms(&self) -> Millis {
        self.emu.now().timestamp_millis()
    }

    /// Adds `fault` (`POST /_emulator/faults`: which operation, how often, what answer)
    /// to what the cloud does.
    pub async fn inject_fault(&self, fault: serde_json::Value) {
        self.control(reqwest::Method::POST, "/_emulator/faults", fault)
            .await;
    }

    /// Removes every injected fault: the cloud recovers.
    pub async fn clear_faults(&self) {
        self.control(
            reqwest::Method::DELETE,
            "/_emulator/faults",
            serde_json::json!({}),
        )
        .await;
    }

    /// Sets the project's quota (`POST /_emulator/quota`).
    pub async fn set_quota(&self, instances: u32, vcpus: u32, ram_mb: u64) {
        self.control(
            reqwest::Method::POST,
            "/_emulator/quota",
            serde_json::json!({"instances": instances, "vcpus": vcpus, "ram_mb": ram_mb}),
        )
        .await;
    }

    /// Drives pool `pool` with a constant load of `rps` requests per second.
    pub async fn set_load(&self, pool: &str, rps: f64) {
        self.control(
            reqwest::Method::POST,
            "/_emulator/workload",
            serde_json::json!({"pool": pool, "shape": {"kind": "constant", "rps": rps}}),
        )
        .await;
    }
}

/// The emulator's defaults, accepting the tests' key ([`AK`], [`SK`]).
pub fn emulator_config() -> EmulatorConfig {
    EmulatorConfig {
        keys: vec![AcceptedKey {
            access_key: AK.into(),
            secret_key: SK.into(),
            security_token: None,
        }],
        ..EmulatorConfig::default()
    }
}

/// The agent's clock follows the emulator's (accelerated) clock.
#[derive(Debug)]
pub struct EmuClock {
    pub emu: Arc<Emulator>,
    pub scale: f64,
}

impl Clock for EmuClock {
    fn now_ms(&self) -> Millis {
        self.emu.now().timestamp_millis()
    }
    fn real_duration(&self, d: Duration) -> Duration {
        if self.scale > 0.0 {
            d.div_f64(self.scale)
        } else {
            d
        }
    }
}

/// The agent's reconcile context on `store` and `cloud` at `clock`, reading Cloud Eye
/// as `cloud_eye` says (no Prometheus, no Redis), with the default settings; `ready`
/// is the agent's readiness flag.
pub fn reconcile_context(
    store: Arc<dyn Store>,
    cloud: Arc<dyn Cloud>,
    clock: SharedClock,
    cloud_eye: CloudEye,
    ready: bool,
) -> Context {
    Context::new(
        store,
        cloud,
        clock,
        Sources {
            cloud_eye,
            prometheus: None,
            redis: None,
        },
        Arc::new(Telemetry::new()),
        ReconcileConfig::default(),
        Arc::new(AtomicBool::new(ready)),
    )
}

/// A create of `count` servers from `spec`'s template (no availability zone), named
/// `name` and tagged with `tags`.
pub fn create_request(
    spec: &flexus_api::PoolSpec,
    name: &str,
    tags: &[(&str, &str)],
    count: u32,
) -> CreateServersRequest {
    CreateServersRequest {
        client_token: uuid::Uuid::new_v4(),
        name: name.into(),
        flavor: spec.flavor.clone(),
        image: spec.image.clone(),
        vpc_id: spec.vpc_id.clone(),
        subnet_ids: spec.subnet_ids.clone(),
        security_groups: vec![],
        availability_zone: None,
        key_name: None,
        user_data: None,
        root_volume: RootVolume {
            volume_type: "GPSSD".into(),
            size_gb: Some(40),
        },
        tags: tags
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        count,
        spot: None,
    }
}

pub fn auth() -> AuthConfig {
    let mut namespaces = BTreeMap::new();
    namespaces.insert("team-a".to_owned(), Secret::new(TEAM_A));
    namespaces.insert("team-b".to_owned(), Secret::new(TEAM_B));
    AuthConfig {
        admin: Some(Secret::new(ADMIN)),
        namespaces,
    }
}

pub fn config(store: &Path, emu_url: &str) -> Config {
    Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        store: StoreLocation::Sqlite(store.to_path_buf()),
        log_format: LogFormat::Pretty,
        cloud: CloudConfig {
            endpoint: Some(emu_url.to_owned()),
            region: REGION.into(),
            project_id: PROJECT.into(),
            reads_per_second: None,
            writes_per_second: None,
        },
        auth: auth(),
        metrics: MetricsConfig {
            ces_period: 1,
            ces_lookback: Duration::from_secs(120),
            ..MetricsConfig::default()
        },
        reconcile: ReconcileConfig {
            job_poll: Duration::from_secs(2),
            ..ReconcileConfig::default()
        },
        cost: Default::default(),
        advisor: Default::default(),
        retention: Retention::default(),
        lease: LeaseConfig::default(),
        tune: Default::default(),
    }
}

/// An agent running in this process.
pub struct InProcAgent {
    pub url: String,
    pub stop: CancellationToken,
    pub done: tokio::task::JoinHandle<()>,
    pub store: Arc<dyn Store>,
    pub client: flexus_api::Client,
    pub dir: tempfile::TempDir,
}

impl InProcAgent {
    pub async fn start(emu: &Emu, scale: f64, tweak: impl FnOnce(&mut Config)) -> Self {
        Self::start_in(tempfile::tempdir().unwrap(), emu, scale, tweak).await
    }

    /// An agent that reaches the emulator through `cloud` (e.g. a client with rate
    /// limits, or one that injects a fault around the emulator's client).
    pub async fn start_with_cloud(
        emu: &Emu,
        scale: f64,
        cloud: Arc<dyn Cloud>,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        Self::start_on(tempfile::tempdir().unwrap(), emu, scale, cloud, tweak).await
    }

    /// An agent on the store in `dir` (e.g. the directory of a stopped agent: a restart).
    pub async fn start_in(
        dir: tempfile::TempDir,
        emu: &Emu,
        scale: f64,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        Self::start_on(dir, emu, scale, emu.cloud(), tweak).await
    }

    async fn start_on(
        dir: tempfile::TempDir,
        emu: &Emu,
        scale: f64,
        cloud: Arc<dyn Cloud>,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        let mut cfg = config(&dir.path().join("agent.db"), &emu.url);
        tweak(&mut cfg);
        let store: Arc<dyn Store> = Arc::new(
            SqlStore::connect(&cfg.store, cfg.store_options())
                .await
                .unwrap(),
        );
        let clock = Arc::new(EmuClock {
            emu: emu.emu.clone(),
            scale,
        });
        let agent = Agent::assemble(&cfg, store.clone(), cloud, clock).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        let s = stop.clone();
        let done = tokio::spawn(async move {
            agent.run(listener, s).await.unwrap();
        });
        let client = flexus_api::Client::new(&url, Some(ADMIN.into())).unwrap();
        Self {
            url,
            stop,
            done,
            store,
            client,
            dir,
        }
    }

    /// Stop the agent and keep its store directory (for a restart with `start_in`).
    pub async fn stop_keeping_store(self) -> (Arc<dyn Store>, tempfile::TempDir) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.done)
            .await
            .expect("agent shuts down within 30 s")
            .unwrap();
        (self.store, self.dir)
    }

    /// Runs the `flexus-agent` CLI against this agent with team-a's token; fails the
    /// test when it does not succeed; returns its output.
    pub async fn cli(&self, args: &[&str]) -> String {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_flexus-agent"))
            .args(args)
            .env("FLEXUS_AGENT_URL", &self.url)
            .env("FLEXUS_TOKEN", TEAM_A)
            .output()
            .await
            .unwrap();
        succeeded(args, out)
    }

    pub async fn shutdown(self) -> Arc<dyn Store> {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.done)
            .await
            .expect("agent shuts down within 30 s")
            .unwrap();
        self.store
    }
}

/// The `/metrics` text the agent at `url` serves (to `token`, when given).
pub async fn scrape(url: &str, token: Option<&str>) -> String {
    let mut request = reqwest::Client::new().get(format!("{url}/metrics"));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    request.send().await.unwrap().text().await.unwrap()
}

/// The value of the first sample in `metrics` whose line starts with `prefix` (0 when
/// there is none).
pub fn metric_value(metrics: &str, prefix: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// The standard output of the finished command `what`; fails the test with its standard
/// error (and output) unless it succeeded.
pub fn succeeded(what: impl std::fmt::Debug, out: std::process::Output) -> String {
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{what:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Poll `f` until it returns `Some`, failing the test after `timeout` (real time).
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls the status of pool `ns/name` until `pick` takes something from it, failing
/// the test after `timeout` (real time) with `what` it waited for.
pub async fn wait_status<T>(
    c: &flexus_api::Client,
    (ns, name): (&str, &str),
    what: &str,
    timeout: Duration,
    pick: impl Fn(flexus_api::PoolStatus) -> Option<T>,
) -> T {
    wait_for(what, timeout, || async {
        pick(c.pool_status(ns, name).await.ok()?)
    })
    .await
}

/// Waits until pool `ns/name` has exactly `n` ready instances, failing the test after
/// `timeout`; returns that status.
pub async fn wait_pool_ready(
    c: &flexus_api::Client,
    (ns, name): (&str, &str),
    n: u32,
    timeout: Duration,
) -> flexus_api::PoolStatus {
    let what = format!("{n} ready instance(s) in {ns}/{name}");
    wait_status(c, (ns, name), &what, timeout, |s| {
        (s.ready_size == n).then_some(s)
    })
    .await
}

pub fn pool_spec(min: u32, max: u32) -> flexus_api::PoolSpec {
    serde_json::from_value(serde_json::json!({
        "flavor": "x1.2u.4g", "image": "img-ubuntu-22", "vpc_id": "vpc-1", "subnet_ids": ["subnet-1"],
        "availability_zones": ["cn-north-4a", "cn-north-4b"],
        "min_size": min, "max_size": max, "boot_seconds": 30
    }))
    .unwrap()
}

pub fn policy(pool: &str, v: serde_json::Value) -> flexus_api::PolicySpec {
    flexus_api::PolicySpec {
        pool: pool.into(),
        policy: serde_json::from_value(v).unwrap(),
    }
}

/// Puts team-a's pool `pool` as `spec` (unconditionally), failing the test when the
/// agent refuses it.
pub async fn put_pool(c: &flexus_api::Client, pool: &str, spec: &flexus_api::PoolSpec) {
    c.put_pool("team-a", pool, spec, flexus_api::Precondition::None)
        .await
        .unwrap();
}

/// Declares team-a's pool `pool` as `spec` and its policy `{pool}-policy` as `policy`
/// (both unconditionally), failing the test when the agent refuses either.
pub async fn declare_pool(
    c: &flexus_api::Client,
    pool: &str,
    spec: &flexus_api::PoolSpec,
    policy_json: serde_json::Value,
) {
    put_pool(c, pool, spec).await;
    c.put_policy(
        "team-a",
        &format!("{pool}-policy"),
        &policy(pool, policy_json),
        flexus_api::Precondition::None,
    )
    .await
    .unwrap();
}

/// Servers of a pool in the emulator (through the cloud API), not yet deleted.
pub async fn pool_servers(cloud: &dyn Cloud, ns: &str, pool: &str) -> Vec<flexus_cloud::Server> {
    let f = flexus_cloud::ServerFilter {
        tags: vec![
            ("flexus-pool".into(), pool.into()),
            ("flexus-ns".into(), ns.into()),
        ],
        ..Default::default()
    };
    cloud
        .list_servers(&f)
        .await
        .unwrap()
        .into_iter()
        .filter(|s| !s.status.is_gone())
        .collect()
}

pub fn temp_path(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

/// A target-tracking policy on the emulator's `SYS.ECS` `cpu_util` (target 60, bounds
/// 1..10, no scale-out stabilisation or cooldown); `extra` replaces top-level fields.
pub fn cpu_policy(extra: serde_json::Value) -> serde_json::Value {
    let mut p = serde_json::json!({
        "strategy": "target_tracking",
        "evaluation_interval": "15s",
        "bounds": {"min": 1, "max": 10},
        "metrics": [{
            "name": "cpu", "kind": "cpu",
            "source": {"type": "cloud_eye", "namespace": "SYS.ECS", "metric_name": "cpu_util"},
            "target": 60, "stale_after": "2m"
        }],
        "scale_out": {"stabilisation_window": "0s", "cooldown": "0s"},
    });
    if let (Some(a), Some(b)) = (p.as_object_mut(), extra.as_object()) {
        for (k, v) in b {
            a.insert(k.clone(), v.clone());
        }
    }
    p
}
