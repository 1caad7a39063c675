//! `agent.toml`: load, resolve secrets from the environment, validate — without binding
//! or connecting anything.
//!
//! ```toml
//! listen = "127.0.0.1:8470"
//! store = "/var/lib/flexus/agent.db"
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
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use flexus_cloud::redact_url;
use serde::Deserialize;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default = "default_listen")]
    listen: String,
    #[serde(default = "default_store")]
    store: PathBuf,
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
}

fn default_listen() -> String {
    "127.0.0.1:8470".into()
}
fn default_store() -> PathBuf {
    PathBuf::from("flexus-agent.db")
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCloud {
    endpoint: Option<String>,
    region: Option<String>,
    project_id: Option<String>,
    /// Client-side rate limits (calls per second); 0 disables.
    reads_per_second: Option<f64>,
    writes_per_second: Option<f64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    admin_token_env: Option<String>,
    #[serde(default)]
    namespaces: Vec<RawNamespace>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNamespace {
    name: String,
    token_env: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    prometheus: Option<RawUrl>,
    redis: Option<RawUrl>,
    #[serde(default)]
    cloud_eye: RawCloudEye,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUrl {
    url: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCloudEye {
    /// Aggregation period in seconds (1, 60, 300, ...).
    period: Option<u32>,
    /// How far back to look for the latest point, e.g. "10m".
    lookback: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawReconcile {
    /// Concurrent passes.
    concurrency: Option<usize>,
    /// Interval of pools without a policy, e.g. "15s".
    default_interval: Option<String>,
    /// Shortest evaluation interval a policy may ask for, e.g. "10s".
    min_evaluation_interval: Option<String>,
    /// Longest backoff after failures, e.g. "5m".
    max_backoff: Option<String>,
    /// Job polling interval, e.g. "2s".
    job_poll: Option<String>,
    /// Decisions kept per pool.
    decision_log_keep: Option<u32>,
    /// Clock speed factor (1 = real time). Unset: real time, or the emulator's clock when
    /// `cloud.endpoint` is a flexus-emulator.
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
    pub store: PathBuf,
    pub log_format: LogFormat,
    pub cloud: CloudConfig,
    pub auth: AuthConfig,
    pub metrics: MetricsConfig,
    pub reconcile: ReconcileConfig,
    /// `[cost]`: price table, report window, usage sampling.
    pub cost: crate::cost::CostConfig,
    /// `[advisor]`: the DeepSeek advisor (off unless enabled).
    pub advisor: crate::advisor::AdvisorConfig,
}

impl Config {
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
        let store = if raw.store.is_absolute() {
            raw.store.clone()
        } else {
            base_dir.join(&raw.store)
        };
        if raw.store.as_os_str().is_empty() {
            problems.push("store: must be a file path".into());
        }
        let region = raw.cloud.region.clone().unwrap_or_default();
        if region.is_empty() {
            problems.push("cloud.region: required (e.g. \"cn-north-4\")".into());
        }
        let project_id = raw.cloud.project_id.clone().unwrap_or_default();
        if project_id.is_empty() {
            problems.push("cloud.project_id: required".into());
        }
        if let Some(e) = &raw.cloud.endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            problems.push(format!(
                "cloud.endpoint: {:?} must start with http:// or https://",
                redact_url(e)
            ));
        }
        let mut auth = AuthConfig::default();
        match &raw.auth.admin_token_env {
            None => problems.push(
                "auth.admin_token_env: required (name of the variable holding the admin token)"
                    .into(),
            ),
            Some(var) => match env(var).filter(|v| !v.is_empty()) {
                Some(v) if v.len() >= 16 => auth.admin = Some(Secret(v)),
                Some(_) => problems.push(format!(
                    "auth.admin_token_env: the token in ${var} is shorter than 16 characters"
                )),
                None => problems.push(format!(
                    "auth.admin_token_env: environment variable {var} is not set"
                )),
            },
        }
        for (i, ns) in raw.auth.namespaces.iter().enumerate() {
            if let Err(e) = flexus_api::validate_name("name", &ns.name) {
                problems.push(format!("auth.namespaces[{i}].name: {}", e.message));
            }
            if auth.namespaces.contains_key(&ns.name) {
                problems.push(format!(
                    "auth.namespaces[{i}].name: namespace {} is listed twice",
                    ns.name
                ));
            }
            match env(&ns.token_env).filter(|v| !v.is_empty()) {
                Some(v) if v.len() >= 16 => {
                    if auth.admin.as_ref().is_some_and(|a| a.0 == v)
                        || auth.namespaces.values().any(|s| s.0 == v)
                    {
                        problems.push(format!(
                            "auth.namespaces[{i}].token_env: the token in ${} is also used by another principal",
                            ns.token_env
                        ));
                    }
                    auth.namespaces.insert(ns.name.clone(), Secret(v));
                }
                Some(_) => problems.push(format!(
                    "auth.namespaces[{i}].token_env: the token in ${} is shorter than 16 characters",
                    ns.token_env
                )),
                None => problems.push(format!(
                    "auth.namespaces[{i}].token_env: environment variable {} is not set",
                    ns.token_env
                )),
            }
        }
        let dur = |field: &str,
                   v: &Option<String>,
                   default: Duration,
                   problems: &mut Vec<String>| {
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
        };
        let defaults = ReconcileConfig::default();
        let rc = &raw.reconcile;
        let reconcile = ReconcileConfig {
            concurrency: rc.concurrency.unwrap_or(defaults.concurrency),
            default_interval: dur(
                "reconcile.default_interval",
                &rc.default_interval,
                defaults.default_interval,
                &mut problems,
            ),
            min_evaluation_interval: dur(
                "reconcile.min_evaluation_interval",
                &rc.min_evaluation_interval,
                defaults.min_evaluation_interval,
                &mut problems,
            ),
            max_backoff: dur(
                "reconcile.max_backoff",
                &rc.max_backoff,
                defaults.max_backoff,
                &mut problems,
            ),
            job_poll: dur(
                "reconcile.job_poll",
                &rc.job_poll,
                defaults.job_poll,
                &mut problems,
            ),
            decision_log_keep: rc.decision_log_keep.unwrap_or(defaults.decision_log_keep),
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
        let mdef = MetricsConfig::default();
        let metrics = MetricsConfig {
            prometheus_url: raw.metrics.prometheus.as_ref().map(|u| u.url.clone()),
            redis_url: raw.metrics.redis.as_ref().map(|u| u.url.clone()),
            ces_period: raw.metrics.cloud_eye.period.unwrap_or(mdef.ces_period),
            ces_lookback: dur(
                "metrics.cloud_eye.lookback",
                &raw.metrics.cloud_eye.lookback,
                mdef.ces_lookback,
                &mut problems,
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
            && !(u.starts_with("redis://")
                || u.starts_with("rediss://")
                || u.starts_with("unix://"))
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
        let cost = crate::cost::CostConfig::from_raw(&raw.cost, &mut problems);
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
            cloud: CloudConfig {
                endpoint: raw.cloud.endpoint,
                region,
                project_id,
                reads_per_second: raw.cloud.reads_per_second,
                writes_per_second: raw.cloud.writes_per_second,
            },
            auth,
            metrics,
            reconcile,
            cost,
            advisor,
        })
    }
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

    #[test]
    fn every_problem_is_reported_at_once_naming_its_field() {
        let err = Config::parse(
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
            "agent.toml",
            Path::new("/tmp"),
            env,
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
        let err = Config::parse(
            r#"
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
            "agent.toml",
            Path::new("/tmp"),
            env,
        )
        .unwrap_err()
        .to_string();
        for shown in [
            "cloud.endpoint: \"ftp://***@emulator:8480\"",
            "metrics.prometheus.url: \"prometheus://***@prom:9090\"",
            "metrics.redis.url: \"tcp://***@cache:6379\"",
            "advisor.base_url: \"api://***@deepseek\"",
        ] {
            assert!(err.contains(shown), "missing {shown:?} in:\n{err}");
        }
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn a_valid_config_resolves_tokens_and_never_prints_them() {
        let c = Config::parse(
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
            "agent.toml",
            Path::new("/etc/flexus"),
            env,
        )
        .unwrap();
        assert_eq!(c.store, PathBuf::from("/etc/flexus/data/agent.db"));
        assert_eq!(
            c.auth.namespaces["team-a"].expose(),
            "team-a-token-0123456789"
        );
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("0123456789"), "{dbg}");
    }
}
