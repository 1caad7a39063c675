//! `agent.toml`: load, resolve secrets from the environment, validate — without binding
//! or connecting anything.
//!
//! ```toml
//! listen = "127.0.0.1:8470"
//! store = "/var/lib/flexus/agent.db"   # or "postgres://user:pw@host:5432/flexus"
//! log_format = "pretty"          # or "json"
//!
//! [cloud]
//! endpoint = "http://127.0.0.1:8480"   # absent: public endpoints of `region`
//! region = "cn-north-4"
//! project_id = "0123456789abcdef0123456789abcdef"
//! # credentials: HUAWEICLOUD_SDK_AK / HUAWEICLOUD_SDK_SK from the environment
//!
//! [auth]
//! admin_token_env = "FLEXUS_ADMIN_TOKEN"
//! [[auth.namespaces]]
//! name = "team-a"
//! token_env = "FLEXUS_TOKEN_TEAM_A"
//!
//! [metrics.prometheus]
//! url = "http://127.0.0.1:9090"
//! [metrics.redis]
//! url = "redis://127.0.0.1:6379"
//!
//! [cost]                         # see crate::cost
//! window = "24h"
//! [cost.prices."x1.2u.4g"]
//! on_demand = 0.06
//! spot = 0.021
//!
//! [advisor]                      # see crate::advisor
//! enabled = true
//! base_url = "https://api.deepseek.com"
//! api_key_env = "DEEPSEEK_API_KEY"
//!
//! [retention]                    # see crate::store::Retention
//! operations_max_age = "7d"
//!
//! [lease]                        # see docs/design/leases.md
//! ttl = "10s"
//!
//! [tune]                         # see crate::tuner
//! searches = 1
//! ```
//!
//! Every key: `docs/reference/agent-config.md`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use flexus_cloud::redact_url;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::store::sql::{StoreLocation, StoreOptions};
use crate::store::{LeaseConfig, Retention};

/// Errors of loading a config.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML for the agent: {message}")]
    Parse { path: String, message: String },
    #[error("config file {path} is invalid:\n  {}", problems.join("\n  "))]
    Invalid { path: String, problems: Vec<String> },
}

/// A secret read from the environment; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

/// `agent.toml` as written (every key of `docs/reference/agent-config.md` comes from these
/// types: their doc comments say what a key means and, after `Default:`, its default — a TOML
/// value in backticks is checked against what [`Config::parse`] resolves).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    /// Where the HTTP API listens (`"address:port"`). Default: `"127.0.0.1:8470"`
    #[serde(default = "default_listen")]
    listen: String,
    /// The store: a SQLite file (relative paths are taken from the config file's directory; the
    /// embedded, single-agent default) or `postgres://user:password@host:port/database` (several
    /// agents share the pools through leases, see [leases](../design/leases.md)); the password is
    /// never printed. Default: `"flexus-agent.db"`
    #[serde(default = "default_store")]
    store: String,
    /// Log output: `"pretty"` or `"json"`. Default: `"pretty"`
    #[serde(default)]
    log_format: LogFormat,
    #[serde(default)]
    cloud: RawCloud,
    #[serde(default)]
    auth: RawAuth,
    #[serde(default)]
    metrics: RawMetrics,
    #[serde(default)]
    reconcile: RawReconcile,
    #[serde(default)]
    cost: crate::cost::RawCostConfig,
    #[serde(default)]
    advisor: crate::advisor::RawAdvisorConfig,
    #[serde(default)]
    retention: RawRetention,
    #[serde(default)]
    lease: RawLease,
    #[serde(default)]
    tune: RawTune,
}

/// Tune jobs (`POST .../pools/{name}/tune`): each search replays the pool's history many times
/// and keeps one core busy while it runs.
#[derive(Debug, Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawTune {
    /// How many searches run at once (1-64); a job accepted beyond them waits its turn (it reads
    /// `running` without `started_at`). Default: one less than the machine's CPU count, at least 1
    searches: Option<u32>,
    /// How many accepted jobs may wait for a search (0-1000); a tune request beyond them is
    /// refused with `503`, nothing stored. Default: `8`
    max_waiting: Option<u32>,
}

/// What the store keeps of finished work. Ages are on the agent's clock; the count limits apply
/// on every write, the age limits every `prune_every`. Open operations are never deleted; a final
/// operation keeps no request body (it is never re-sent). Everything of a pool — operations
/// included — goes when the pool is deleted.
#[derive(Debug, Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    /// Final operations (succeeded, failed, abandoned) older than this are deleted. Default: `"7d"`
    operations_max_age: Option<String>,
    /// At most this many final operations per pool (the newest). Default: `200`
    operations_keep: Option<u32>,
    /// Policy versions older than this are deleted (never a policy's current version).
    /// Default: `"30d"`
    policy_versions_max_age: Option<String>,
    /// At most this many versions per policy (the newest). Default: `20`
    policy_versions_keep: Option<u32>,
    /// How often the age limits are applied. Default: `"10m"`
    prune_every: Option<String>,
}

/// Pool leases (see [leases](../design/leases.md)). With SQLite the one agent holds every lease;
/// with PostgreSQL the agents share them. Durations are real time.
#[derive(Debug, Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawLease {
    /// This agent's name in the lease table; unique per agent; an agent restarted under the same
    /// name takes its leases back at once. Default: `$HOSTNAME:<listen port>`
    holder: Option<String>,
    /// A lease not renewed for this long expires and another agent may take the pool.
    /// Default: `"10s"`
    ttl: Option<String>,
    /// How often leases are renewed and free pools claimed (less than `ttl`). Default: `"3s"`
    renew_every: Option<String>,
    /// The agent stops acting on a pool this long before its lease could expire
    /// (`margin + renew_every` less than `ttl`). Default: `"2s"`
    margin: Option<String>,
}

fn default_listen() -> String {
    "127.0.0.1:8470".into()
}
fn default_store() -> String {
    "flexus-agent.db".into()
}

/// The cloud the pools live in. Credentials: `HUAWEICLOUD_SDK_AK` / `HUAWEICLOUD_SDK_SK` from the
/// environment, never from this file.
#[derive(Debug, Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawCloud {
    /// One base URL for ECS and CES (the emulator's, in tests and the demo).
    /// Default: the public endpoints of `region`
    endpoint: Option<String>,
    /// The region, e.g. `"cn-north-4"`. Required
    region: Option<String>,
    /// The project the pools live in. Required
    project_id: Option<String>,
    /// Client-side rate limit on reads, calls per second (0 disables).
    /// Default: the client's default
    reads_per_second: Option<f64>,
    /// Client-side rate limit on writes, calls per second (0 disables).
    /// Default: the client's default
    writes_per_second: Option<f64>,
}

/// Tokens: the admin token and one per namespace, each read from an environment variable this
/// file names (never written here).
#[derive(Debug, Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    /// Variable holding the admin token (at least 16 characters). Required
    admin_token_env: Option<String>,
    /// Namespaces (`[[auth.namespaces]]`), each with its own token:
    #[serde(default)]
    namespaces: Vec<RawNamespace>,
}

/// A namespace and the variable holding its token.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawNamespace {
    /// the namespace the token may act in.
    name: String,
    /// the variable holding its token (at least 16 characters, unique).
    token_env: String,
}

/// Where metric sources read from.
#[derive(Debug, Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    /// Prometheus, for metrics with `source.type = "prometheus"`:
    prometheus: Option<RawUrl>,
    /// Redis, for metrics with `source.type = "redis"`:
    redis: Option<RawUrl>,
    #[serde(default)]
    cloud_eye: RawCloudEye,
}

/// A server's URL.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawUrl {
    /// its URL (credentials in it are never printed).
    url: String,
}

/// Cloud Eye (CES) queries.
#[derive(Debug, Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawCloudEye {
    /// Aggregation period in seconds: 1, 60, 300, 1200, 3600, 14400 or 86400. Default: `60`
    period: Option<u32>,
    /// How far back to look for the latest point. Default: `"10m"`
    lookback: Option<String>,
}

/// The reconcile runtime.
#[derive(Debug, Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawReconcile {
    /// Passes running at once (1–4096). Default: `64`
    concurrency: Option<usize>,
    /// Evaluation interval of pools without a policy. Default: `"15s"`
    default_interval: Option<String>,
    /// Shortest `evaluation_interval` a policy may ask for: the API refuses shorter ones (400
    /// naming the field), the runtime raises shorter stored ones to it. Default: `"10s"`
    min_evaluation_interval: Option<String>,
    /// Longest wait after failed passes. Default: `"5m"`
    max_backoff: Option<String>,
    /// How often open operations are looked at. Default: `"2s"`
    job_poll: Option<String>,
    /// Decisions kept per pool. Default: `500`
    decision_log_keep: Option<u32>,
    /// Clock speed factor, in (0, 10000]. Default: real time, or the emulator's clock when
    /// `cloud.endpoint` is a flexus-emulator (a set value must then match it)
    clock_speed: Option<f64>,
}

/// Cloud connection settings.
#[derive(Debug, Clone, PartialEq)]
pub struct CloudConfig {
    pub endpoint: Option<String>,
    pub region: String,
    pub project_id: String,
    pub reads_per_second: Option<f64>,
    pub writes_per_second: Option<f64>,
}

/// Tokens: the admin token and one per namespace.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuthConfig {
    pub admin: Option<Secret>,
    pub namespaces: BTreeMap<String, Secret>,
}

/// Reconcile runtime settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconcileConfig {
    pub concurrency: usize,
    pub default_interval: Duration,
    /// Shortest `evaluation_interval` a policy may ask for: the API refuses shorter
    /// ones (400 naming the field and this minimum) and the runtime raises shorter
    /// stored ones to it, so one tenant's policy cannot flood the cloud with calls.
    pub min_evaluation_interval: Duration,
    pub max_backoff: Duration,
    pub job_poll: Duration,
    pub decision_log_keep: u32,
    /// `None`: real time, or follow the emulator's clock (see `agent::clock_for`).
    pub clock_speed: Option<f64>,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        Self {
            concurrency: 64,
            default_interval: Duration::from_secs(15),
            min_evaluation_interval: Duration::from_secs(10),
            max_backoff: Duration::from_secs(300),
            job_poll: Duration::from_secs(2),
            decision_log_keep: 500,
            clock_speed: None,
        }
    }
}

/// Metric source settings.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsConfig {
    pub prometheus_url: Option<String>,
    pub redis_url: Option<String>,
    pub ces_period: u32,
    pub ces_lookback: Duration,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            prometheus_url: None,
            redis_url: None,
            ces_period: 60,
            ces_lookback: Duration::from_secs(600),
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: SocketAddr,
    /// A SQLite file, or a PostgreSQL URL (several agents share the work).
    pub store: StoreLocation,
    pub log_format: LogFormat,
    pub cloud: CloudConfig,
    pub auth: AuthConfig,
    pub metrics: MetricsConfig,
    pub reconcile: ReconcileConfig,
    /// `[cost]`: price table, report window, usage sampling.
    pub cost: crate::cost::CostConfig,
    /// `[advisor]`: the DeepSeek advisor (off unless enabled).
    pub advisor: crate::advisor::AdvisorConfig,
    /// `[retention]`: how long finished records are kept.
    pub retention: Retention,
    /// `[lease]`: pool leases shared with other agents.
    pub lease: LeaseConfig,
    /// `[tune]`: how many tune searches run at once, how many jobs may wait.
    pub tune: crate::tuner::TuneConfig,
}

impl Config {
    /// The store settings beyond its location.
    pub fn store_options(&self) -> StoreOptions {
        StoreOptions {
            retention: self.retention.clone(),
            lease: self.lease.clone(),
        }
    }

    /// Read and validate `path`, resolving secrets from the process environment.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, &path.display().to_string(), dir, |k| {
            std::env::var(k).ok()
        })
    }

    /// Parse and validate config text; `env` resolves secret variables; a relative
    /// `store` path is taken relative to `base_dir`. Reports every problem at once.
    pub fn parse(
        text: &str,
        name: &str,
        base_dir: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: name.to_owned(),
            message: e.to_string(),
        })?;
        let mut problems = Vec::new();
        let listen = match raw.listen.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(e) => {
                problems.push(format!(
                    "listen: {:?} is not an address:port ({e})",
                    raw.listen
                ));
                None
            }
        };
        let store = store_location(&raw.store, base_dir, &mut problems);
        let cloud = cloud_config(raw.cloud, &mut problems);
        let auth = auth_config(&raw.auth, &env, &mut problems);
        let reconcile = reconcile_config(&raw.reconcile, &mut problems);
        let mut retention = retention_config(&raw.retention, &mut problems);
        let lease = lease_config(&raw.lease, listen, &env, &mut problems);
        let metrics = metrics_config(&raw.metrics, &mut problems);
        let tune = tune_config(&raw.tune, &mut problems);
        let cost = crate::cost::CostConfig::from_raw(&raw.cost, &mut problems);
        // `cost.retention` is the one setting for usage rollups; the store prunes them.
        retention.usage_max_age = cost.retention;
        let advisor =
            crate::advisor::AdvisorConfig::from_raw(&raw.advisor, base_dir, &env, &mut problems);
        if !problems.is_empty() {
            return Err(ConfigError::Invalid {
                path: name.to_owned(),
                problems,
            });
        }
        Ok(Config {
            listen: listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8470))),
            store,
            log_format: raw.log_format,
            cloud,
            auth,
            metrics,
            reconcile,
            cost,
            advisor,
            retention,
            lease,
            tune,
        })
    }
}

/// `[tune]`: counts in range, named when not.
fn tune_config(rt: &RawTune, problems: &mut Vec<String>) -> crate::tuner::TuneConfig {
    let d = crate::tuner::TuneConfig::default();
    let mut count =
        |field: &str, v: Option<u32>, range: std::ops::RangeInclusive<u32>, default| match v {
            None => default,
            Some(n) if range.contains(&n) => n as usize,
            Some(n) => {
                problems.push(format!(
                    "tune.{field}: must be between {} and {}, got {n}",
                    range.start(),
                    range.end()
                ));
                default
            }
        };
    crate::tuner::TuneConfig {
        searches: count("searches", rt.searches, 1..=64, d.searches),
        max_waiting: count("max_waiting", rt.max_waiting, 0..=1000, d.max_waiting),
    }
}

/// A duration setting: `default` when absent; when it does not parse or is zero, a problem
/// naming `field` (and `default`, so that every other problem is still found).
pub(crate) fn duration_setting(
    field: &str,
    v: &Option<String>,
    default: Duration,
    problems: &mut Vec<String>,
) -> Duration {
    match v {
        None => default,
        Some(s) => match flexus_policy::time::parse_duration(s) {
            Ok(d) if d > Duration::ZERO => d,
            Ok(_) => {
                problems.push(format!("{field}: {s:?} must be longer than zero"));
                default
            }
            Err(e) => {
                problems.push(format!("{field}: {e}"));
                default
            }
        },
    }
}

/// `store`: a PostgreSQL URL, or a SQLite path (relative to `base_dir`).
fn store_location(store: &str, base_dir: &Path, problems: &mut Vec<String>) -> StoreLocation {
    if store.starts_with("postgres://") || store.starts_with("postgresql://") {
        if url::Url::parse(store).is_err() {
            problems.push(format!(
                "store: the PostgreSQL URL {:?} does not parse (postgres://user:password@host:port/db)",
                redact_url(store)
            ));
        }
        StoreLocation::Postgres(store.to_owned())
    } else if store.contains("://") {
        problems.push(format!(
            "store: {:?} must be a SQLite file path or a postgres:// URL",
            redact_url(store)
        ));
        StoreLocation::Sqlite(PathBuf::new())
    } else {
        if store.is_empty() {
            problems.push("store: must be a file path or a postgres:// URL".into());
        }
        let path = PathBuf::from(store);
        StoreLocation::Sqlite(if path.is_absolute() {
            path
        } else {
            base_dir.join(path)
        })
    }
}

/// `[cloud]`: region and project required, an http(s) endpoint.
fn cloud_config(raw: RawCloud, problems: &mut Vec<String>) -> CloudConfig {
    let region = raw.region.unwrap_or_default();
    if region.is_empty() {
        problems.push("cloud.region: required (e.g. \"cn-north-4\")".into());
    }
    let project_id = raw.project_id.unwrap_or_default();
    if project_id.is_empty() {
        problems.push("cloud.project_id: required".into());
    }
    if let Some(e) = &raw.endpoint
        && !(e.starts_with("http://") || e.starts_with("https://"))
    {
        problems.push(format!(
            "cloud.endpoint: {:?} must start with http:// or https://",
            redact_url(e)
        ));
    }
    CloudConfig {
        endpoint: raw.endpoint,
        region,
        project_id,
        reads_per_second: raw.reads_per_second,
        writes_per_second: raw.writes_per_second,
    }
}

/// A token read from the variable `var`: set, at least 16 characters; `what` names the key.
fn token(
    what: &str,
    var: &str,
    env: &impl Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) -> Option<Secret> {
    match env(var).filter(|v| !v.is_empty()) {
        Some(v) if v.len() >= 16 => Some(Secret(v)),
        Some(_) => {
            problems.push(format!(
                "{what}: the token in ${var} is shorter than 16 characters"
            ));
            None
        }
        None => {
            problems.push(format!("{what}: environment variable {var} is not set"));
            None
        }
    }
}

/// `[auth]`: the admin token and the namespaces' tokens, resolved and checked for reuse.
fn auth_config(
    raw: &RawAuth,
    env: &impl Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) -> AuthConfig {
    let mut auth = AuthConfig::default();
    match &raw.admin_token_env {
        None => problems.push(
            "auth.admin_token_env: required (name of the variable holding the admin token)".into(),
        ),
        Some(var) => auth.admin = token("auth.admin_token_env", var, env, problems),
    }
    for (i, ns) in raw.namespaces.iter().enumerate() {
        if let Err(e) = flexus_api::validate_name("name", &ns.name) {
            problems.push(format!("auth.namespaces[{i}].name: {}", e.message));
        }
        if auth.namespaces.contains_key(&ns.name) {
            problems.push(format!(
                "auth.namespaces[{i}].name: namespace {} is listed twice",
                ns.name
            ));
        }
        let what = format!("auth.namespaces[{i}].token_env");
        if let Some(t) = token(&what, &ns.token_env, env, problems) {
            if auth.admin.as_ref().is_some_and(|a| a.0 == t.0)
                || auth.namespaces.values().any(|s| s.0 == t.0)
            {
                problems.push(format!(
                    "{what}: the token in ${} is also used by another principal",
                    ns.token_env
                ));
            }
            auth.namespaces.insert(ns.name.clone(), t);
        }
    }
    auth
}

/// `[reconcile]`.
fn reconcile_config(rc: &RawReconcile, problems: &mut Vec<String>) -> ReconcileConfig {
    let d = ReconcileConfig::default();
    let reconcile = ReconcileConfig {
        concurrency: rc.concurrency.unwrap_or(d.concurrency),
        default_interval: duration_setting(
            "reconcile.default_interval",
            &rc.default_interval,
            d.default_interval,
            problems,
        ),
        min_evaluation_interval: duration_setting(
            "reconcile.min_evaluation_interval",
            &rc.min_evaluation_interval,
            d.min_evaluation_interval,
            problems,
        ),
        max_backoff: duration_setting(
            "reconcile.max_backoff",
            &rc.max_backoff,
            d.max_backoff,
            problems,
        ),
        job_poll: duration_setting("reconcile.job_poll", &rc.job_poll, d.job_poll, problems),
        decision_log_keep: rc.decision_log_keep.unwrap_or(d.decision_log_keep),
        clock_speed: rc.clock_speed,
    };
    if reconcile.concurrency == 0 || reconcile.concurrency > 4096 {
        problems.push("reconcile.concurrency: must be between 1 and 4096".into());
    }
    if reconcile.decision_log_keep == 0 {
        problems.push("reconcile.decision_log_keep: must be at least 1".into());
    }
    if reconcile
        .clock_speed
        .is_some_and(|s| !(s > 0.0 && s <= 10_000.0))
    {
        problems.push("reconcile.clock_speed: must be in (0, 10000]".into());
    }
    reconcile
}

/// `[retention]` (the usage rollups' age comes from `cost.retention`).
fn retention_config(rr: &RawRetention, problems: &mut Vec<String>) -> Retention {
    let d = Retention::default();
    let retention = Retention {
        operations_max_age: duration_setting(
            "retention.operations_max_age",
            &rr.operations_max_age,
            d.operations_max_age,
            problems,
        ),
        operations_keep: rr.operations_keep.unwrap_or(d.operations_keep),
        policy_versions_max_age: duration_setting(
            "retention.policy_versions_max_age",
            &rr.policy_versions_max_age,
            d.policy_versions_max_age,
            problems,
        ),
        policy_versions_keep: rr.policy_versions_keep.unwrap_or(d.policy_versions_keep),
        usage_max_age: d.usage_max_age,
        prune_every: duration_setting(
            "retention.prune_every",
            &rr.prune_every,
            d.prune_every,
            problems,
        ),
    };
    if retention.operations_keep == 0 {
        problems.push("retention.operations_keep: must be at least 1".into());
    }
    if retention.policy_versions_keep == 0 {
        problems.push("retention.policy_versions_keep: must be at least 1".into());
    }
    retention
}

/// `[lease]`; the holder defaults to `$HOSTNAME:<listen port>`.
fn lease_config(
    rl: &RawLease,
    listen: Option<SocketAddr>,
    env: &impl Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) -> LeaseConfig {
    let d = LeaseConfig::default();
    let lease = LeaseConfig {
        holder: rl.holder.clone().unwrap_or_else(|| {
            let host = env("HOSTNAME")
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "flexus-agent".into());
            let port = listen.map_or(8470, |l| l.port());
            format!("{host}:{port}")
        }),
        ttl: duration_setting("lease.ttl", &rl.ttl, d.ttl, problems),
        renew_every: duration_setting(
            "lease.renew_every",
            &rl.renew_every,
            d.renew_every,
            problems,
        ),
        margin: duration_setting("lease.margin", &rl.margin, d.margin, problems),
    };
    problems.extend(lease.problems());
    lease
}

/// `[metrics]`: source URLs by scheme, Cloud Eye's period among those CES offers.
fn metrics_config(raw: &RawMetrics, problems: &mut Vec<String>) -> MetricsConfig {
    let d = MetricsConfig::default();
    let metrics = MetricsConfig {
        prometheus_url: raw.prometheus.as_ref().map(|u| u.url.clone()),
        redis_url: raw.redis.as_ref().map(|u| u.url.clone()),
        ces_period: raw.cloud_eye.period.unwrap_or(d.ces_period),
        ces_lookback: duration_setting(
            "metrics.cloud_eye.lookback",
            &raw.cloud_eye.lookback,
            d.ces_lookback,
            problems,
        ),
    };
    if let Some(u) = &metrics.prometheus_url
        && !(u.starts_with("http://") || u.starts_with("https://"))
    {
        problems.push(format!(
            "metrics.prometheus.url: {:?} must start with http:// or https://",
            redact_url(u)
        ));
    }
    if let Some(u) = &metrics.redis_url
        && !(u.starts_with("redis://") || u.starts_with("rediss://") || u.starts_with("unix://"))
    {
        problems.push(format!(
            "metrics.redis.url: {:?} must start with redis://, rediss:// or unix://",
            redact_url(u)
        ));
    }
    if ![1, 60, 300, 1200, 3600, 14400, 86400].contains(&metrics.ces_period) {
        problems.push(format!(
            "metrics.cloud_eye.period: {} is not one of 1, 60, 300, 1200, 3600, 14400, 86400",
            metrics.ces_period
        ));
    }
    metrics
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "ADMIN" => Some("admin-token-0123456789".into()),
            "TEAM_A" => Some("team-a-token-0123456789".into()),
            "SHORT" => Some("short".into()),
            _ => None,
        }
    }

    /// `text` as the file `agent.toml` in `dir`, secrets from [`env`].
    fn parse_in(dir: &str, text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, "agent.toml", Path::new(dir), env)
    }

    #[test]
    fn every_problem_is_reported_at_once_naming_its_field() {
        let err = parse_in(
            "/tmp",
            r#"
listen = "nope"
[cloud]
endpoint = "ftp://x"
[auth]
admin_token_env = "MISSING"
[[auth.namespaces]]
name = "Team_A"
token_env = "SHORT"
[reconcile]
default_interval = "soon"
min_evaluation_interval = "0s"
"#,
        )
        .unwrap_err();
        let text = err.to_string();
        for field in [
            "listen:",
            "cloud.region:",
            "cloud.project_id:",
            "cloud.endpoint:",
            "auth.admin_token_env: environment variable MISSING",
            "auth.namespaces[0].name:",
            "auth.namespaces[0].token_env:",
            "reconcile.default_interval:",
            "reconcile.min_evaluation_interval:",
        ] {
            assert!(text.contains(field), "missing {field:?} in:\n{text}");
        }
    }

    #[test]
    fn a_url_with_a_wrong_scheme_is_named_without_its_credentials() {
        let err = parse_in(
            "/tmp",
            r#"
store = "mysql://flexus:hunter2@db:3306/agent"
[cloud]
endpoint = "ftp://ak:hunter2@emulator:8480"
region = "cn-north-4"
project_id = "p1"
[auth]
admin_token_env = "ADMIN"
[metrics.prometheus]
url = "prometheus://admin:hunter2@prom:9090"
[metrics.redis]
url = "tcp://:hunter2@cache:6379"
[advisor]
base_url = "api://key:hunter2@deepseek"
"#,
        )
        .unwrap_err()
        .to_string();
        for shown in [
            "store: \"mysql://***@db:3306/agent\"",
            "cloud.endpoint: \"ftp://***@emulator:8480\"",
            "metrics.prometheus.url: \"prometheus://***@prom:9090\"",
            "metrics.redis.url: \"tcp://***@cache:6379\"",
            "advisor.base_url: \"api://***@deepseek\"",
        ] {
            assert!(err.contains(shown), "missing {shown:?} in:\n{err}");
        }
        assert!(!err.contains("hunter2"), "{err}");
        // A PostgreSQL URL that does not parse, and one that does, shown as the agent logs it.
        let bad = parse_in(
            "/tmp",
            "store = \"postgres://flexus:hun ter2@db:port/agent\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            bad.contains("\"postgres://***@db:port/agent\" does not parse"),
            "{bad}"
        );
        assert!(!bad.contains("ter2"), "{bad}");
        let shown = StoreLocation::Postgres(
            "postgresql://flexus:hunter2@db:5432/agent?sslpassword=hunter2".into(),
        )
        .to_string();
        assert_eq!(shown, "postgresql://***@db:5432/agent?sslpassword=***");
    }

    #[test]
    fn a_valid_config_resolves_tokens_and_never_prints_them() {
        let c = parse_in(
            "/etc/flexus",
            r#"
store = "data/agent.db"
[cloud]
endpoint = "http://127.0.0.1:8480"
region = "cn-north-4"
project_id = "p1"
[auth]
admin_token_env = "ADMIN"
[[auth.namespaces]]
name = "team-a"
token_env = "TEAM_A"
"#,
        )
        .unwrap();
        assert_eq!(
            c.store,
            StoreLocation::Sqlite(PathBuf::from("/etc/flexus/data/agent.db"))
        );
        assert_eq!(
            c.auth.namespaces["team-a"].expose(),
            "team-a-token-0123456789"
        );
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("0123456789"), "{dbg}");
    }

    #[test]
    fn a_postgres_store_is_accepted_its_password_never_printed_and_bad_lease_timing_named() {
        let text = |lease: &str| {
            format!(
                r#"
store = "postgres://flexus:s3cr3t-pw@db.internal:5432/flexus"
[cloud]
region = "cn-north-4"
project_id = "p1"
[auth]
admin_token_env = "ADMIN"
[lease]
{lease}
[retention]
operations_keep = 0
"#
            )
        };
        let err = parse_in("/etc", &text("ttl = \"2s\"\nrenew_every = \"3s\""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("lease.renew_every:"), "{err}");
        assert!(err.contains("retention.operations_keep:"), "{err}");
        assert!(!err.contains("s3cr3t"), "{err}");
        let ok = text("holder = \"a1\"").replace("operations_keep = 0", "operations_keep = 9");
        let c = parse_in("/etc", &ok).unwrap();
        assert!(matches!(&c.store, StoreLocation::Postgres(_)));
        assert_eq!(
            (c.lease.holder.as_str(), c.retention.operations_keep),
            ("a1", 9)
        );
        let shown = format!("{} {c:?}", c.store);
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("db.internal"), "{shown}");
    }
}
