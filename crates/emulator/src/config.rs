//! Emulator configuration (validated without binding anything).

use std::fmt;
use std::path::PathBuf;

use crate::error::EmulatorError;

/// One accepted AK/SK pair (optionally temporary: then `X-Security-Token` must match).
#[derive(Clone, PartialEq, Eq)]
pub struct AcceptedKey {
    /// Access key.
    pub access_key: String,
    /// Secret key.
    pub secret_key: String,
    /// Required security token, for temporary credentials.
    pub security_token: Option<String>,
}

impl AcceptedKey {
    /// A permanent key pair (no security token).
    pub fn new(access_key: impl Into<String>, secret_key: impl Into<String>) -> Self {
        Self {
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            security_token: None,
        }
    }
}

impl fmt::Debug for AcceptedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        flexus_cloud::credentials::debug_key_pair(
            f,
            "AcceptedKey",
            &self.access_key,
            self.security_token.as_deref(),
        )
    }
}

/// An API key of the DeepSeek stand-in; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct DeepSeekKey(pub String);

impl fmt::Debug for DeepSeekKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Quotas of the emulated project (`Ecs.0001` when exceeded).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Quota {
    /// Servers that are not deleted.
    pub instances: u32,
    /// Total vCPUs of those servers.
    pub vcpus: u32,
    /// Total RAM (MB) of those servers.
    pub ram_mb: u64,
}

impl Default for Quota {
    fn default() -> Self {
        Self {
            instances: 200,
            vcpus: 1600,
            ram_mb: 3_276_800,
        }
    }
}

/// Everything the emulator needs to start.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// The project id served in paths (`/v1/{project_id}/...`).
    pub project_id: String,
    /// Region name (AZ names are `{region}a`, `{region}b`).
    pub region: String,
    /// Accepted credentials.
    pub keys: Vec<AcceptedKey>,
    /// Allowed `X-Sdk-Date` skew against real wall time, seconds (Huawei: 900).
    pub max_clock_skew_s: i64,
    /// Boot time override (emulated seconds); `None` uses each flavor's boot time.
    pub boot_seconds: Option<f64>,
    /// Seconds a delete job takes before the server shows `DELETED`.
    pub delete_seconds: f64,
    /// Seconds a `DELETED` server stays visible to GET before 404.
    pub deleted_linger_seconds: f64,
    /// Lead time of a spot reclaim notice, seconds (Huawei CCE: 5 minutes).
    pub spot_notice_seconds: f64,
    /// Default spot reclaim hazard per instance-hour for every flavor.
    pub spot_hazard_per_hour: f64,
    /// Quotas.
    pub quota: Quota,
    /// Largest `count` of one create call.
    pub max_create_count: u32,
    /// Emulated seconds per real second at start.
    pub time_scale: f64,
    /// Emulated seconds between workload samples (the CES collection period).
    pub metric_interval_s: u32,
    /// Tag key that names a server's pool.
    pub pool_tag_key: String,
    /// Per-operation gateway limit (calls per real second, 0 = off) → 429 `APIGW.0308`.
    pub throttle_per_second: f64,
    /// State file (JSON, written atomically); `None` keeps state in memory only.
    pub state_path: Option<PathBuf>,
    /// Seed of the random source (fault rates, spot hazard).
    pub seed: u64,
    /// API keys the DeepSeek-compatible stand-in accepts (`Authorization: Bearer`).
    pub deepseek_keys: Vec<DeepSeekKey>,
    /// Starting balance of the DeepSeek stand-in, in tokens (402 once spent).
    pub deepseek_balance_tokens: i64,
}

/// The DeepSeek stand-in's key when none is configured (a local, public test key).
pub const DEFAULT_DEEPSEEK_KEY: &str = "sk-flexus-emulator-0000000000000000";

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            project_id: "0123456789abcdef0123456789abcdef".into(),
            region: "cn-north-4".into(),
            keys: vec![],
            max_clock_skew_s: 900,
            boot_seconds: None,
            delete_seconds: 5.0,
            deleted_linger_seconds: 60.0,
            spot_notice_seconds: 300.0,
            spot_hazard_per_hour: 0.0,
            quota: Quota::default(),
            max_create_count: 100,
            time_scale: 1.0,
            metric_interval_s: 60,
            pool_tag_key: "flexus-pool".into(),
            throttle_per_second: 0.0,
            state_path: None,
            seed: 0x5eed,
            deepseek_keys: vec![DeepSeekKey(DEFAULT_DEEPSEEK_KEY.into())],
            deepseek_balance_tokens: 10_000_000,
        }
    }
}

impl EmulatorConfig {
    /// Project `project_id` accepting the one key pair `key`, its clock frozen (time
    /// moves only through `/_emulator/clock`) and every server booting in
    /// `boot_seconds`; the rest as by default. What in-process tests and benchmarks start.
    pub fn frozen(project_id: &str, key: AcceptedKey, boot_seconds: f64) -> Self {
        Self {
            project_id: project_id.into(),
            keys: vec![key],
            time_scale: 0.0,
            boot_seconds: Some(boot_seconds),
            ..Self::default()
        }
    }

    /// Checks every field; reports all problems at once.
    pub fn validate(&self) -> Result<(), EmulatorError> {
        let mut p = Vec::new();
        if self.project_id.is_empty() || !self.project_id.chars().all(|c| c.is_ascii_alphanumeric())
        {
            p.push(format!(
                "project_id must be letters and digits, got {:?}",
                self.project_id
            ));
        }
        if self.region.is_empty() {
            p.push("region must not be empty".into());
        }
        if self.keys.is_empty() {
            p.push("at least one access key / secret key pair is required".into());
        }
        for k in &self.keys {
            if k.access_key.is_empty() || k.secret_key.is_empty() {
                p.push("access key and secret key must not be empty".into());
            }
        }
        let non_negative = [
            ("delete_seconds", self.delete_seconds),
            ("deleted_linger_seconds", self.deleted_linger_seconds),
            ("spot_notice_seconds", self.spot_notice_seconds),
            ("spot_hazard_per_hour", self.spot_hazard_per_hour),
            ("throttle_per_second", self.throttle_per_second),
            ("boot_seconds", self.boot_seconds.unwrap_or(0.0)),
        ];
        for (name, v) in non_negative {
            if !v.is_finite() || v < 0.0 {
                p.push(format!("{name} must be a finite number >= 0, got {v}"));
            }
        }
        if !self.time_scale.is_finite() || self.time_scale < 0.0 {
            p.push(format!("time_scale must be >= 0, got {}", self.time_scale));
        }
        if self.metric_interval_s == 0 {
            p.push("metric_interval_s must be positive".into());
        }
        if self.max_create_count == 0 {
            p.push("max_create_count must be positive".into());
        }
        if self.deepseek_keys.iter().any(|k| k.0.trim().is_empty()) {
            p.push("deepseek_keys must not contain an empty key".into());
        }
        if self.pool_tag_key.is_empty() {
            p.push("pool_tag_key must not be empty".into());
        }
        if p.is_empty() {
            Ok(())
        } else {
            Err(EmulatorError::Config(p.join("; ")))
        }
    }
}
