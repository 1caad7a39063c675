//! Request and response bodies of the `/v1` control-plane API.
//!
//! Ownership rule: a `*Spec` is declared (by Terraform, a policy file or the CLI) and
//! is replaced whole by `PUT`; a `*Status` is written by the agent only. Changes of
//! the instance count live in [`PoolStatus`] and are therefore never drift.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Names of namespaces, pools and policies: 1–40 characters (they become ECS tag values, at most 43) of `[a-z0-9-]`, starting
/// with a letter, not ending with `-`.
pub fn validate_name(field: &str, value: &str) -> Result<(), FieldError> {
    let ok = !value.is_empty()
        && value.len() <= 40
        && value.as_bytes()[0].is_ascii_lowercase()
        && !value.ends_with('-')
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!(
                "{value:?} is not a valid name: use 1-40 characters of a-z, 0-9 and '-', starting with a letter"
            ),
        ))
    }
}

/// One problem with one field of a request body or path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FieldError {
    /// JSON path of the offending field, e.g. `spec.max_size`.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Body of every non-2xx answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code: `invalid_request`, `unauthorized`, `forbidden`,
    /// `not_found`, `precondition_failed`, `conflict`, `internal`, `unavailable`.
    pub code: String,
    pub message: String,
    /// The first offending field, when the problem is in the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Every offending field, when several were found at once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
}

/// Root disk of each instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RootVolume {
    /// Disk type, e.g. `SSD`, `GPSSD`, `SAS`.
    #[serde(rename = "type")]
    pub volume_type: String,
    /// Size in GiB.
    pub size: u32,
}

impl Default for RootVolume {
    fn default() -> Self {
        Self {
            volume_type: "GPSSD".into(),
            size: 40,
        }
    }
}

/// Spot purchase settings of a pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SpotSpec {
    #[serde(default)]
    pub enabled: bool,
    /// Highest hourly price to pay for a spot instance, as a decimal string; absent
    /// means the on-demand price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_price: Option<String>,
    /// Instances that are always on-demand before any spot is used.
    #[serde(default)]
    pub on_demand_base: u32,
    /// Percentage (0–100) of the capacity above the base that is spot.
    #[serde(default)]
    pub spot_percentage: u32,
    /// When spot capacity is sold out, create on-demand instances instead.
    #[serde(default = "yes")]
    pub fallback_to_on_demand: bool,
}

fn yes() -> bool {
    true
}

impl Default for SpotSpec {
    fn default() -> Self {
        Self {
            enabled: false,
            max_price: None,
            on_demand_base: 0,
            spot_percentage: 0,
            fallback_to_on_demand: true,
        }
    }
}

/// Which instances go first when a pool scales in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[derive(strum::IntoStaticStr, strum::EnumString, strum::VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum RemovalRule {
    /// Spot before on-demand, then not-ready before ready, then newest first.
    #[default]
    SpotNewestFirst,
    /// Newest first, whatever the purchase kind.
    NewestFirst,
    /// Oldest first, whatever the purchase kind.
    OldestFirst,
    /// Instances of an older template (see [`PoolSpec::template_hash`]) first, oldest
    /// of them first; then as `spot_newest_first`.
    OldestTemplateFirst,
}

/// How the agent replaces running instances when the pool's template changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[derive(strum::IntoStaticStr, strum::EnumString, strum::VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum RefreshStrategy {
    /// In batches: launch replacements (at most `max_surge` above the desired count),
    /// wait until they are ready, then delete outdated instances, never letting fewer
    /// than `min_healthy_percentage` of the desired count be ready.
    #[default]
    Rolling,
    /// Outdated instances stay until an ordinary scale-in removes them (with
    /// `removal_rule = "oldest_template_first"` they go first).
    OnScaleIn,
}

/// Replacing the instances of an older template (`instance_refresh` of a pool).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstanceRefresh {
    #[serde(default)]
    pub strategy: RefreshStrategy,
    /// Percentage (0–100) of the desired count that stays ready throughout, rounded up.
    #[serde(default = "default_min_healthy")]
    pub min_healthy_percentage: u32,
    /// Replacements launched at once above the desired count (0–100). With 0, outdated
    /// instances are deleted first, within `min_healthy_percentage` (at least one at a
    /// time).
    #[serde(default = "default_max_surge")]
    pub max_surge: u32,
}

fn default_min_healthy() -> u32 {
    90
}
fn default_max_surge() -> u32 {
    1
}

impl Default for InstanceRefresh {
    fn default() -> Self {
        Self {
            strategy: RefreshStrategy::Rolling,
            min_healthy_percentage: default_min_healthy(),
            max_surge: default_max_surge(),
        }
    }
}

impl InstanceRefresh {
    /// Instances that must stay ready while `desired` are wanted: the percentage
    /// rounded up, less one when nothing could otherwise move (no surge and 100 %).
    pub fn min_healthy(&self, desired: u32) -> u32 {
        let min =
            (u64::from(desired) * u64::from(self.min_healthy_percentage)).div_ceil(100) as u32;
        if self.max_surge == 0 && min >= desired {
            desired.saturating_sub(1)
        } else {
            min.min(desired)
        }
    }
}

/// The declared template and bounds of a pool (owned by Terraform).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolSpec {
    /// ECS flavor, e.g. `x1.4u.16g`.
    pub flavor: String,
    /// Image id.
    pub image: String,
    pub vpc_id: String,
    pub subnet_ids: Vec<String>,
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    /// Zones to spread instances over, round robin; empty lets the cloud choose.
    #[serde(default)]
    pub availability_zones: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_pair: Option<String>,
    /// Cloud-init user data (plain text; the agent base64-encodes it for ECS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
    #[serde(default)]
    pub root_volume: RootVolume,
    pub min_size: u32,
    pub max_size: u32,
    /// Size to create when no policy is attached yet; defaults to `min_size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_size: Option<u32>,
    #[serde(default)]
    pub spot: SpotSpec,
    /// Seconds from create to the instance running.
    #[serde(default = "default_boot")]
    pub boot_seconds: u32,
    /// Seconds from running to serving (model load); metrics of warming instances do not count.
    #[serde(default = "default_warmup")]
    pub warmup_seconds: u32,
    #[serde(default)]
    pub removal_rule: RemovalRule,
    /// Extra tags put on every instance (the agent adds its own ownership tags): at most 7,
    /// keys 1–36 characters, values at most 43 characters (characters, as ECS counts them).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// How running instances are replaced when a template field changes (see
    /// [`PoolSpec::template_hash`]).
    #[serde(default)]
    pub instance_refresh: InstanceRefresh,
}

/// `boot_seconds` of a pool that does not set it (the agent's and the provider's default).
pub const DEFAULT_BOOT_SECONDS: u32 = 60;
/// `warmup_seconds` of a pool that does not set it.
pub const DEFAULT_WARMUP_SECONDS: u32 = 0;

fn default_boot() -> u32 {
    DEFAULT_BOOT_SECONDS
}
fn default_warmup() -> u32 {
    DEFAULT_WARMUP_SECONDS
}

/// Tag keys the agent reserves on every instance it owns.
pub const TAG_POOL: &str = "flexus-pool";
/// Tag carrying the namespace of the owning pool.
pub const TAG_NAMESPACE: &str = "flexus-ns";
/// Tag carrying the operation that created the instance.
pub const TAG_OPERATION: &str = "flexus-op";
/// Tag carrying the template hash ([`PoolSpec::template_hash`]) an instance was created with.
pub const TAG_TEMPLATE: &str = "flexus-tpl";
/// User tags a pool may declare: ECS allows 10 per server and the agent puts 4.
pub const MAX_USER_TAGS: usize = 6;

/// The fields of a pool's template: what an instance is made of. A change to any of
/// them makes the running instances outdated; the agent replaces them
/// (`instance_refresh`). Sizes, spot settings, placement (VPC, subnets, zones), tags and
/// timings are not part of it: they apply to instances created from then on.
#[derive(Serialize)]
struct Template<'a> {
    flavor: &'a str,
    image: &'a str,
    user_data: Option<&'a str>,
    root_volume: &'a RootVolume,
    security_group_ids: Vec<&'a str>,
    key_pair: Option<&'a str>,
}

impl PoolSpec {
    /// Hash of the template fields (flavor, image, user data, root volume, security
    /// groups as a set, key pair): 12 hex digits, put on every instance as
    /// [`TAG_TEMPLATE`].
    pub fn template_hash(&self) -> String {
        use sha2::Digest as _;
        let mut security_group_ids: Vec<&str> =
            self.security_group_ids.iter().map(String::as_str).collect();
        security_group_ids.sort_unstable();
        security_group_ids.dedup();
        let t = Template {
            flavor: &self.flavor,
            image: &self.image,
            user_data: self.user_data.as_deref(),
            root_volume: &self.root_volume,
            security_group_ids,
            key_pair: self.key_pair.as_deref(),
        };
        let bytes = serde_json::to_vec(&t).unwrap_or_default();
        hex::encode(&sha2::Sha256::digest(&bytes)[..6])
    }

    /// Every problem with the spec, with field paths under `prefix` (e.g. `spec`).
    pub fn validate(&self, prefix: &str) -> Vec<FieldError> {
        let f = |name: &str| {
            if prefix.is_empty() {
                name.to_owned()
            } else {
                format!("{prefix}.{name}")
            }
        };
        let mut errs = Vec::new();
        for (name, v) in [
            ("flavor", &self.flavor),
            ("image", &self.image),
            ("vpc_id", &self.vpc_id),
        ] {
            if v.trim().is_empty() {
                errs.push(FieldError::new(f(name), "must not be empty"));
            }
        }
        if self.subnet_ids.is_empty() {
            errs.push(FieldError::new(
                f("subnet_ids"),
                "needs at least one subnet",
            ));
        }
        for (i, s) in self.subnet_ids.iter().enumerate() {
            if s.trim().is_empty() {
                errs.push(FieldError::new(
                    f(&format!("subnet_ids[{i}]")),
                    "must not be empty",
                ));
            }
        }
        if self.min_size > self.max_size {
            errs.push(FieldError::new(
                f("min_size"),
                format!(
                    "min_size {} is greater than max_size {}",
                    self.min_size, self.max_size
                ),
            ));
        }
        if self.max_size > 1000 {
            errs.push(FieldError::new(f("max_size"), "must be at most 1000"));
        }
        if let Some(init) = self.initial_size
            && (init < self.min_size || init > self.max_size)
        {
            errs.push(FieldError::new(
                f("initial_size"),
                format!(
                    "initial_size {init} is outside [min_size {}, max_size {}]",
                    self.min_size, self.max_size
                ),
            ));
        }
        if self.root_volume.size < 1 || self.root_volume.size > 1024 {
            errs.push(FieldError::new(
                f("root_volume.size"),
                "must be between 1 and 1024 GiB",
            ));
        }
        if self.root_volume.volume_type.trim().is_empty() {
            errs.push(FieldError::new(f("root_volume.type"), "must not be empty"));
        }
        if self.spot.spot_percentage > 100 {
            errs.push(FieldError::new(
                f("spot.spot_percentage"),
                "must be between 0 and 100",
            ));
        }
        if let Some(p) = &self.spot.max_price
            && p.parse::<f64>()
                .map(|x| !x.is_finite() || x <= 0.0)
                .unwrap_or(true)
        {
            errs.push(FieldError::new(
                f("spot.max_price"),
                format!("{p:?} is not a positive decimal number (a finite price per hour, e.g. \"0.05\")"),
            ));
        }
        if self.boot_seconds > 3600 {
            errs.push(FieldError::new(f("boot_seconds"), "must be at most 3600"));
        }
        if self.warmup_seconds > 7200 {
            errs.push(FieldError::new(f("warmup_seconds"), "must be at most 7200"));
        }
        if self.tags.len() > MAX_USER_TAGS {
            errs.push(FieldError::new(
                f("tags"),
                format!(
                    "at most {MAX_USER_TAGS} tags (ECS allows 10 per server; the agent uses 4)"
                ),
            ));
        }
        let r = &self.instance_refresh;
        if r.min_healthy_percentage > 100 {
            errs.push(FieldError::new(
                f("instance_refresh.min_healthy_percentage"),
                "must be between 0 and 100",
            ));
        }
        if r.max_surge > 100 {
            errs.push(FieldError::new(
                f("instance_refresh.max_surge"),
                "must be between 0 and 100",
            ));
        }
        // ECS counts tag keys and values in characters, not bytes.
        for (k, v) in &self.tags {
            let key_chars = k.chars().count();
            if key_chars == 0 || key_chars > 36 {
                errs.push(FieldError::new(
                    f(&format!("tags.{k}")),
                    format!("tag keys are 1-36 characters, this one has {key_chars}"),
                ));
            }
            if k.starts_with("flexus-") {
                errs.push(FieldError::new(
                    f(&format!("tags.{k}")),
                    "tag keys starting with 'flexus-' are reserved for the agent",
                ));
            }
            let value_chars = v.chars().count();
            if value_chars > 43 {
                errs.push(FieldError::new(
                    f(&format!("tags.{k}")),
                    format!("tag values are at most 43 characters, this one has {value_chars}"),
                ));
            }
        }
        errs
    }
}

/// An instance's lifecycle and purchase kind are the engine's own types: one
/// declaration, one wire format.
pub use flexus_policy::{Lifecycle, Purchase};

flexus_policy::wire_name_as_str!(
    RemovalRule,
    RefreshStrategy,
    PoolPhase,
    DecisionOutcome,
    OperationState
);

/// One instance of a pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InstanceStatus {
    pub id: String,
    pub name: String,
    pub lifecycle: Lifecycle,
    pub purchase: Purchase,
    pub flavor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    /// RFC 3339 creation time.
    pub created_at: String,
    pub age_seconds: u64,
    /// Hash of the template it was created with (its `flexus-tpl` tag); absent for an
    /// instance without the tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Made from an older template than the pool's: an instance refresh replaces it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub outdated: bool,
}

/// Progress of an instance refresh (the pool's template changed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RefreshStatus {
    /// The refresh's operation id (kind `refresh` in the journal).
    pub operation_id: String,
    /// Template hash the instances are being moved to.
    pub template: String,
    /// Outdated instances to replace (grows if more appear).
    pub total: u32,
    /// Outdated instances gone so far.
    pub replaced: u32,
    /// Batches of replacements launched so far.
    pub batch: u32,
    /// Replacements launched and not ready yet.
    pub waiting_for_ready: u32,
    /// Instances that must stay ready (`min_healthy_percentage` of the desired count).
    pub min_healthy: u32,
    /// RFC 3339 time the refresh started.
    pub started_at: String,
}

impl RefreshStatus {
    /// One line: `refresh: 3/8 replaced, batch 2, waiting for 2 ready`.
    pub fn summary(&self) -> String {
        format!(
            "refresh: {}/{} replaced, batch {}, waiting for {} ready",
            self.replaced, self.total, self.batch, self.waiting_for_ready
        )
    }
}

/// Coarse state of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[derive(strum::IntoStaticStr, strum::EnumString, strum::VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum PoolPhase {
    /// Not reconciled yet.
    #[default]
    Pending,
    /// Current equals desired and at least `min_size` instances are ready.
    Ready,
    /// Instances are being created or deleted.
    Scaling,
    /// The last pass failed; see `last_error`.
    Degraded,
    /// The pool was deleted; its instances are being removed.
    Deleting,
}

/// What the agent knows about a pool (owned by the agent).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct PoolStatus {
    pub phase: PoolPhase,
    /// Size the last decision asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_size: Option<u32>,
    /// Instances that exist and are not being removed.
    pub current_size: u32,
    pub ready_size: u32,
    pub instance_ids: Vec<String>,
    pub instances: Vec<InstanceStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_decision: Option<DecisionRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reconcile_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// `last_error` in parts: what failed, the cloud's code, whether retrying the same
    /// request can succeed, and when the agent tries again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_detail: Option<PoolError>,
    /// Operations not finished yet.
    #[serde(default)]
    pub pending_operations: Vec<Operation>,
    /// Hash of the pool's current template ([`PoolSpec::template_hash`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// The instance refresh under way, while outdated instances remain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<RefreshStatus>,
}

/// Why a pool is `degraded`: the last failure, in parts.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct PoolError {
    /// What failed, e.g. `create of 2 on-demand instances` or `reconcile pass`.
    pub operation: String,
    /// The cloud's error code (e.g. `Ecs.0005`), when the cloud answered one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The message.
    pub message: String,
    /// The cloud refused the request itself (a 4xx: unknown flavor or image, quota,
    /// sold out, credentials): sending it again cannot succeed until something changes
    /// (the pool's spec, the quota, the cloud's stock). A Terraform `apply` that waits
    /// for capacity fails on it at once.
    pub permanent: bool,
    /// Refusals in a row of this request (counted for creates held back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures: Option<u32>,
    /// RFC 3339 time of the latest failure.
    pub at: String,
    /// RFC 3339 time the agent tries again (first with a dry-run check, for a create).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<String>,
}

/// A pool: its declared spec plus what the agent reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Pool {
    pub namespace: String,
    pub name: String,
    /// Stable id (`<namespace>/<name>`).
    pub id: String,
    /// Incremented by every replace of the spec; the ETag is `"<version>"`.
    pub version: u64,
    pub spec: PoolSpec,
    pub status: PoolStatus,
    pub created_at: String,
    pub updated_at: String,
}

/// Body of `PUT /v1/namespaces/{ns}/pools/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PutPool {
    pub spec: PoolSpec,
}

/// The declared autoscaling policy of one pool.
///
/// Whether it acts is the policy's own `policy.enabled` and `policy.dry_run`. Older
/// clients and stores also put `enabled`/`dry_run` beside `policy` (deprecated): they
/// are still read and folded into the policy with the meaning they had (`enabled =
/// false` disables it, `dry_run = true` makes it decide-only), so nothing is lost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, from = "PolicySpecBody")]
pub struct PolicySpec {
    /// Name of the pool (in the same namespace) the policy scales.
    pub pool: String,
    /// The decision policy (the flexus-policy model, JSON form).
    pub policy: PolicyModel,
}

/// What a [`PolicySpec`] is read from: the spec, plus the switches older bodies kept
/// beside the policy.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "PolicySpec")]
struct PolicySpecBody {
    /// Name of the pool (in the same namespace) the policy scales.
    pool: String,
    /// Deprecated: set `policy.enabled`. `false` here disables the policy.
    #[serde(default)]
    #[schemars(extend("deprecated" = true))]
    enabled: Option<bool>,
    /// Deprecated: set `policy.dry_run`. `true` here makes the policy decide only.
    #[serde(default)]
    #[schemars(extend("deprecated" = true))]
    dry_run: Option<bool>,
    /// The decision policy (the flexus-policy model, JSON form).
    policy: PolicyModel,
}

impl From<PolicySpecBody> for PolicySpec {
    fn from(b: PolicySpecBody) -> Self {
        let mut policy = b.policy;
        policy.enabled &= b.enabled.unwrap_or(true);
        policy.dry_run |= b.dry_run.unwrap_or(false);
        PolicySpec {
            pool: b.pool,
            policy,
        }
    }
}

/// A stored policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Policy {
    pub namespace: String,
    pub name: String,
    pub id: String,
    pub version: u64,
    pub spec: PolicySpec,
    pub created_at: String,
    pub updated_at: String,
}

/// Body of `PUT /v1/namespaces/{ns}/policies/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PutPolicy {
    pub spec: PolicySpec,
}

/// What a decision led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[derive(strum::IntoStaticStr, strum::EnumString, strum::VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum DecisionOutcome {
    /// Nothing to do.
    None,
    /// Instances were requested or deleted.
    Acted,
    /// Dry-run: recorded, not acted on.
    DryRun,
    /// The policy is disabled: only the bounds of the pool were enforced.
    Disabled,
    /// Acting failed (see the explanation).
    Failed,
}

/// One recorded decision of one pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DecisionRecord {
    /// Monotonic id, used as the pagination cursor.
    pub id: i64,
    pub at: String,
    pub current: u32,
    pub desired: u32,
    pub on_demand: u32,
    pub spot: u32,
    /// `scale_out`, `scale_in` or `none`.
    pub action: String,
    pub outcome: DecisionOutcome,
    /// Which rule bound the result (e.g. `max_size`, `cooldown_out`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_by: Option<String>,
    /// Human-readable explanation.
    pub explanation: String,
    /// The decision engine's full output (proposals per signal, clamps).
    #[serde(default)]
    pub detail: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<String>,
    /// The forecast this decision saw (policies with `prediction.enabled` only). In
    /// `forecast_only` mode this is where what the policy would have done is recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction: Option<PredictionRecord>,
}

/// The forecast of one decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PredictionRecord {
    /// The forecast metric (`prediction.metric`).
    pub metric: String,
    /// `forecast_only` (recorded, never acted on) or `forecast_and_scale`.
    pub mode: flexus_policy::PredictionMode,
    /// The highest forecast over `[now, now + lead_time]`; absent while there is no
    /// forecast yet (see `note`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecast: Option<f64>,
    /// Instances the forecast needs as the engine counted it:
    /// `ceil(forecast / target_per_instance)`, after the `max_ratio` cap if the policy sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u32>,
    /// Whether the forecast raised the desired count (`forecast_and_scale` only).
    pub applied: bool,
    /// `forecast_only`: instances the forecast would have added to the desired count.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub would_add: u32,
    /// The model of the last fit (`flexus_policy::forecast::Method`, e.g. `ensemble`,
    /// `seasonal_naive`, `naive`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// When the model was last fitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fitted_at: Option<String>,
    /// Complete history buckets (15 minutes each) the forecaster holds.
    pub history_buckets: u32,
    /// Why there is no forecast, or why the model fell back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A flavor the cloud offers (`GET /v1/cloud/flavors`, cached by the agent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FlavorInfo {
    /// What a pool's `flavor` names, e.g. `x1.2u.4g`.
    pub name: String,
    pub vcpus: u32,
    pub memory_mb: u64,
    /// GPUs per instance.
    pub gpus: u32,
    /// New instances can be bought (the cloud's sale state is neither `sellout` nor `abandon`).
    pub on_sale: bool,
    /// Offered as spot.
    pub spot: bool,
    /// The cloud's performance type (`advanced_smb` for Flexus X, `gpu`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub performance_type: Option<String>,
}

/// An image the cloud has (`GET /v1/cloud/images/{id}`, cached by the agent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ImageInfo {
    /// What a pool's `image` names.
    pub id: String,
    pub name: String,
    /// `active` when usable.
    pub status: String,
    /// Smallest root disk the image needs, GB.
    pub min_disk_gb: u32,
}

/// The project's instance quota and what is used of it (`GET /v1/cloud/quota`);
/// an absent maximum is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct QuotaInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_instances: Option<u64>,
    pub used_instances: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_vcpus: Option<u64>,
    pub used_vcpus: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory_mb: Option<u64>,
    pub used_memory_mb: u64,
}

/// Where a policy's bounds widen its pool's `(min_size, max_size)`: the pool owns the
/// instance-count limits and a policy may only narrow them (`docs/design/provider.md`,
/// "Bounds"). Field paths are those of a policy PUT (`spec.policy.bounds.max`); `pool_id`
/// (`ns/name`) is for the message. The agent runs this on PUT, the provider at plan.
pub fn policy_bounds_errors(
    bounds: &flexus_policy::Bounds,
    (pool_min, pool_max): (u32, u32),
    pool_id: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if bounds.max > pool_max {
        errs.push(FieldError::new(
            "spec.policy.bounds.max",
            format!(
                "bounds.max ({}) is above max_size ({pool_max}) of pool {pool_id}: a policy may narrow its \
                 pool's bounds, never widen them; lower bounds.max or raise the pool's max_size",
                bounds.max
            ),
        ));
    }
    if bounds.min < pool_min {
        errs.push(FieldError::new(
            "spec.policy.bounds.min",
            format!(
                "bounds.min ({}) is below min_size ({pool_min}) of pool {pool_id}: a policy may narrow its \
                 pool's bounds, never widen them; raise bounds.min or lower the pool's min_size",
                bounds.min
            ),
        ));
    }
    errs
}

/// Why a pool's flavor is refused: "flavor "x1.1u.2g" is not offered by the cloud; did
/// you mean x1.1u.1g, ...?" (the agent's PUT and the provider's plan say the same).
pub fn unknown_flavor_message(flavor: &str, offered: &[FlavorInfo]) -> String {
    let close = close_names(flavor, offered.iter().map(|f| f.name.as_str()), 4);
    let hint = if close.is_empty() {
        "see GET /v1/cloud/flavors (or data \"flexus_x_flavors\") for the flavors offered"
            .to_string()
    } else {
        format!("did you mean {}?", close.join(", "))
    };
    format!("flavor {flavor:?} is not offered by the cloud; {hint}")
}

/// Where a pool's image is refused, given what the cloud answered for it (`None`: the
/// project has no such image): the image itself, or a root volume smaller than the image
/// needs. Field paths are those of a pool PUT; the agent's PUT and the provider's plan
/// say the same.
pub fn image_errors(
    image: &str,
    root_volume_gb: Option<u32>,
    found: Option<&ImageInfo>,
) -> Vec<FieldError> {
    match found {
        None => vec![FieldError::new(
            "spec.image",
            format!(
                "image {image:?} does not exist in the cloud project; check the image id (IMS) \
                 and that the image is shared with this project"
            ),
        )],
        Some(i) if root_volume_gb.is_some_and(|gb| gb < i.min_disk_gb) => {
            vec![FieldError::new(
                "spec.root_volume.size",
                format!(
                    "image {image:?} needs a root disk of at least {} GB, got {}",
                    i.min_disk_gb,
                    root_volume_gb.unwrap_or_default()
                ),
            )]
        }
        Some(_) => Vec::new(),
    }
}

/// The names among `known` closest to `wanted` (edit distance at most a third of its
/// length, at least 2), best first, at most `n`: for "did you mean" in errors.
pub fn close_names<'a>(
    wanted: &str,
    known: impl IntoIterator<Item = &'a str>,
    n: usize,
) -> Vec<&'a str> {
    let limit = (wanted.chars().count() / 3).max(2);
    let mut scored: Vec<(usize, &str)> = known
        .into_iter()
        .map(|k| (strsim::levenshtein(wanted, k), k))
        .filter(|(d, _)| *d <= limit)
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(n).map(|(_, k)| k).collect()
}

/// One datapoint of `POST .../pools/{name}/metrics` (the body is a JSON array of these).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricDatapoint {
    /// A metric of the pool's policy whose source is `{"type": "push"}`.
    pub metric: String,
    /// The value (finite).
    pub value: f64,
    /// When it was measured (RFC 3339); the agent's current time when absent. At most
    /// 24 hours in the past and 5 minutes in the future.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

/// Answer of `POST .../pools/{name}/metrics`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PushAccepted {
    pub pool: String,
    /// Datapoints stored.
    pub accepted: u32,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Kind of a cloud mutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[derive(strum::IntoStaticStr, strum::EnumString, strum::VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum OperationKind {
    ScaleOut,
    ScaleIn,
    Replace,
    /// An instance refresh as a whole: open while outdated instances remain (`count`:
    /// instances to replace); makes no cloud call itself.
    Refresh,
    /// A create of replacements for outdated instances (token = operation id).
    RefreshLaunch,
    /// A delete of outdated instances whose replacements are ready.
    RefreshRetire,
}

impl OperationKind {
    /// Sends a create (its token is the operation id).
    pub fn creates(self) -> bool {
        matches!(self, Self::ScaleOut | Self::RefreshLaunch)
    }

    /// Sends a delete of its `server_ids`.
    pub fn deletes(self) -> bool {
        matches!(self, Self::ScaleIn | Self::Replace | Self::RefreshRetire)
    }

    /// The name used in the journal, metrics and logs (`scale_out`, `refresh_launch`, ...).
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Where an operation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[derive(strum::IntoStaticStr, strum::EnumString, strum::VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum OperationState {
    /// Recorded, the cloud call may or may not have been made.
    Pending,
    /// The cloud accepted it; a job is being tracked.
    Submitted,
    Succeeded,
    Failed,
    /// Given up (e.g. the job vanished); the instances were reconciled by tags.
    Abandoned,
}

impl OperationState {
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Abandoned)
    }
}

/// A cloud mutation, recorded before it is made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Operation {
    /// UUID; also the `X-Client-Token` of a create.
    pub id: String,
    pub kind: OperationKind,
    pub state: OperationState,
    pub count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purchase: Option<Purchase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(default)]
    pub server_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A namespace and what it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Namespace {
    pub name: String,
    pub pools: u64,
    pub policies: u64,
}

/// Answer of `POST .../reconcile`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReconcileAccepted {
    pub pool: String,
    /// `true` when a pass was queued; `false` if one was already queued.
    pub queued: bool,
}

/// Answer of `GET /healthz` and `/readyz`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Health {
    pub status: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// The decision policy carried by a [`PolicySpec`]: the flexus-policy model (its JSON
/// form on the wire). The agent validates it with `Policy::validate` on write.
pub type PolicyModel = flexus_policy::Policy;

/// Body of `POST .../pools/{name}/tune`: search the pool's policy parameters by replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TuneRequest {
    /// Share of the time the SLO may be missed, in (0, 1). Default 0.01.
    #[serde(default = "default_tune_budget")]
    pub budget: f64,
    /// What to minimise within the budget: `cost` (default) or `instance_hours`.
    #[serde(default = "default_tune_objective")]
    pub objective: String,
    /// Replays the search may spend (2-500). Default 60.
    #[serde(default = "default_tune_evaluations")]
    pub max_evaluations: u32,
    /// What to stay within: `budget` (default; the search aims at half of `budget` on
    /// the tuning window) or `baselines` (beat HPA's and AWS target tracking's defaults
    /// on both violation minutes and instance-hours or cost; `budget` is not used).
    #[serde(default = "default_tune_aim")]
    pub aim: String,
    /// Replay a trace instead of the pool's recorded history: a built-in trace name
    /// (scaled so its 99.9th percentile needs `peak_instances`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    /// With `trace`: instances at the trace's 99.9th-percentile rate. Default 40.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_instances: Option<u32>,
    /// With `trace`: use only its first hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<f64>,
}

fn default_tune_budget() -> f64 {
    0.01
}
fn default_tune_objective() -> String {
    "cost".into()
}
fn default_tune_evaluations() -> u32 {
    60
}
fn default_tune_aim() -> String {
    "budget".into()
}

impl Default for TuneRequest {
    fn default() -> Self {
        TuneRequest {
            budget: default_tune_budget(),
            objective: default_tune_objective(),
            max_evaluations: default_tune_evaluations(),
            aim: default_tune_aim(),
            trace: None,
            peak_instances: None,
            hours: None,
        }
    }
}

/// A tune job is resumed at most this many times ([`TuneJob::resumed`]): a search that
/// keeps bringing its agent down is not tried for ever.
pub const TUNE_RESUMES_MAX: u32 = 2;

/// A tune job: `running`, then `done` (with `result`) or `failed` (with `error`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TuneJob {
    /// Job id (poll `GET .../tune/{id}`).
    pub id: String,
    /// `<namespace>/<pool>`.
    pub pool: String,
    /// `running`, `done` or `failed`.
    pub state: String,
    /// When the job was accepted (RFC 3339).
    pub created_at: String,
    /// When its search started (RFC 3339). Absent while a running job waits for one of
    /// the agent's search slots (other tunes are searching), and on a job that failed
    /// before its search started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// When it ended, done or failed (RFC 3339; absent while running, and on a job whose
    /// agent stopped without writing its end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// The request.
    pub request: TuneRequest,
    /// How many times the job was resumed: an agent that stops (or is killed, or
    /// restarts) during a search leaves its job running, and an agent sharing the store
    /// (or the same one, restarted) searches again from the start. After
    /// [`TUNE_RESUMES_MAX`] resumptions the job fails instead.
    #[serde(default)]
    pub resumed: u32,
    /// The recommendation (when done).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<TuneOutcome>,
    /// Why it failed (when failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One measured side of a before/after comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TuneMeasure {
    /// SLO-violation minutes.
    pub violation_min: f64,
    /// Share of the window's time in violation.
    pub violation_share: f64,
    /// Billed instance-hours.
    pub instance_hours: f64,
    /// Cost (the flavor's relative price units).
    pub cost: f64,
}

/// One changed policy parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TuneChange {
    /// The policy field (or `targets (× every target)` for the target scale).
    pub field: String,
    /// Value before.
    pub before: f64,
    /// Value after.
    pub after: f64,
}

/// What a finished tune recommends. Nothing is applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TuneOutcome {
    /// The recommended policy (the pool's policy with the changes applied).
    pub policy: flexus_policy::Policy,
    /// The parameters that changed.
    pub changes: Vec<TuneChange>,
    /// Hours of history that tuned (the first two thirds).
    pub tune_hours: f64,
    /// Hours of history that validated (the last third).
    pub validation_hours: f64,
    /// Replays spent.
    pub evaluations: u32,
    /// On the validation window, the pool's policy.
    pub before: TuneMeasure,
    /// On the validation window, the recommendation.
    pub after: TuneMeasure,
    /// HPA and AWS target tracking at their default targets, on both windows, and
    /// whether the recommendation beats each on both measures on the validation window.
    #[serde(default)]
    pub baselines: Vec<TuneBaseline>,
    /// Whether the recommendation stays within the request's `budget` on the validation
    /// window. `false`: the later history was harder than the part it was tuned on, and
    /// the report carries a warning; review before applying. Absent with `aim:
    /// baselines` (`baselines[].beaten` says how that went) and on jobs stored by older
    /// agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_budget: Option<bool>,
    /// The report as text (the CLI prints it).
    pub report: String,
}

/// A baseline autoscaler at its default target, replayed on the same history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TuneBaseline {
    /// `hpa` or `aws-tt`.
    pub name: String,
    /// On the tuning window.
    pub tuning: TuneMeasure,
    /// On the validation window.
    pub validation: TuneMeasure,
    /// The recommendation has fewer violation minutes and fewer instance-hours than this
    /// baseline on the validation window.
    pub beaten: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use flexus_policy::names::{check_wire_names, wire_names};

    #[test]
    fn a_policy_spec_acts_as_its_policy_says_and_older_switches_beside_it_still_count() {
        let policy = serde_json::json!({"strategy": "target_tracking",
            "bounds": {"min": 1, "max": 4},
            "metrics": [{"name": "cpu", "kind": "cpu", "source": {"type": "push"}, "target": 60}]});
        let read = |extra: serde_json::Value| {
            let mut body = serde_json::json!({"pool": "web", "policy": policy});
            body.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            serde_json::from_value::<PolicySpec>(body)
        };
        let plain = read(serde_json::json!({})).unwrap();
        assert!(plain.policy.enabled && !plain.policy.dry_run);
        // Written back, the switches are only the policy's.
        let written = serde_json::to_value(&plain).unwrap();
        assert_eq!(
            written.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["policy", "pool"]
        );
        assert_eq!(read(written).unwrap(), plain, "round trip");
        // What older clients and stores put beside the policy keeps its meaning.
        let off = read(serde_json::json!({"enabled": false})).unwrap();
        assert!(!off.policy.enabled);
        let dry = read(serde_json::json!({"dry_run": true, "enabled": true})).unwrap();
        assert!(dry.policy.enabled && dry.policy.dry_run);
        let mut disabled_policy = policy.clone();
        disabled_policy["enabled"] = false.into();
        let spec: PolicySpec = serde_json::from_value(
            serde_json::json!({"pool": "web", "enabled": true, "policy": disabled_policy}),
        )
        .unwrap();
        assert!(
            !spec.policy.enabled,
            "an old `enabled = true` never re-enables"
        );
        // Anything else is still refused, by name.
        let e = read(serde_json::json!({"dryrun": true})).unwrap_err();
        assert!(e.to_string().contains("unknown field `dryrun`"), "{e}");
    }

    #[test]
    fn every_api_enum_has_one_name_for_serde_strum_and_as_str() {
        check_wire_names::<Lifecycle>().unwrap();
        check_wire_names::<Purchase>().unwrap();
        check_wire_names::<RemovalRule>().unwrap();
        check_wire_names::<RefreshStrategy>().unwrap();
        check_wire_names::<PoolPhase>().unwrap();
        check_wire_names::<DecisionOutcome>().unwrap();
        check_wire_names::<OperationKind>().unwrap();
        check_wire_names::<OperationState>().unwrap();
        assert_eq!(OperationKind::RefreshLaunch.as_str(), "refresh_launch");
        assert_eq!(
            wire_names::<RemovalRule>(),
            [
                "spot_newest_first",
                "newest_first",
                "oldest_first",
                "oldest_template_first"
            ]
        );
    }
}
