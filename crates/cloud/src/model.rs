//! Typed requests and results of the `Cloud` trait, plus the wire shapes they map to.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Root disk of a new server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootVolume {
    /// `SATA`, `SAS`, `SSD`, `GPSSD`, `ESSD`, ...
    pub volume_type: String,
    /// Size in GB (1–1024); `None` = the image's minimum.
    pub size_gb: Option<u32>,
}

/// Spot purchase options (`extendparam.marketType = "spot"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SpotOptions {
    /// Highest price per hour; `None` caps at the on-demand price.
    pub max_price: Option<f64>,
}

/// Create one or more post-paid (on-demand or spot) servers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateServersRequest {
    /// Idempotency key sent as `X-Client-Token`: the same token and body never create twice.
    pub client_token: Uuid,
    /// Server name (with `count > 1` the cloud appends `-0001`, `-0002`, ...).
    pub name: String,
    /// Flavor id, e.g. `x1.2u.4g`.
    pub flavor: String,
    /// Image id.
    pub image: String,
    /// VPC id.
    pub vpc_id: String,
    /// Subnets, one NIC each (first is primary).
    pub subnet_ids: Vec<String>,
    /// Security group ids (empty = default group).
    pub security_groups: Vec<String>,
    /// Availability zone (`None` lets the cloud choose).
    pub availability_zone: Option<String>,
    /// Key pair name.
    pub key_name: Option<String>,
    /// Base64 user data.
    pub user_data: Option<String>,
    /// Root disk.
    pub root_volume: RootVolume,
    /// Server tags `(key, value)`, at most 10.
    pub tags: Vec<(String, String)>,
    /// Number of servers (1..=100 by default).
    pub count: u32,
    /// Spot options; `None` = on-demand.
    pub spot: Option<SpotOptions>,
}

/// What a create call returns right away.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateResult {
    /// The job to poll.
    pub job_id: String,
    /// Server ids (they may 404 until built, or forever if the job fails).
    pub server_ids: Vec<String>,
}

/// Batch delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DeleteServersRequest {
    /// Server ids.
    pub server_ids: Vec<String>,
    /// Also release bound EIPs.
    pub delete_publicip: bool,
    /// Also delete data disks.
    pub delete_volume: bool,
}

/// Status of an asynchronous job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobStatus {
    /// Queued.
    Init,
    /// In progress.
    Running,
    /// Done.
    Success,
    /// Failed (possibly partially: inspect the sub-jobs).
    Fail,
    /// Prepaid order not paid.
    PendingPayment,
    /// Anything else the service sends.
    Other(String),
}

impl JobStatus {
    /// Parses the wire value.
    pub fn parse(s: &str) -> Self {
        match s {
            "INIT" => JobStatus::Init,
            "RUNNING" => JobStatus::Running,
            "SUCCESS" => JobStatus::Success,
            "FAIL" => JobStatus::Fail,
            "PENDING_PAYMENT" => JobStatus::PendingPayment,
            other => JobStatus::Other(other.to_string()),
        }
    }

    /// Whether the job will not change any more.
    pub fn is_terminal(&self) -> bool {
        matches!(self, JobStatus::Success | JobStatus::Fail)
    }
}

/// One sub-job (one per server of a multi-server create or delete).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubJob {
    /// Sub-job id.
    pub job_id: String,
    /// e.g. `createSingleServer`.
    pub job_type: String,
    /// Status.
    pub status: JobStatus,
    /// The server it concerns.
    pub server_id: Option<String>,
    /// Error code when failed (from `error_code` or `entities.errorcode_message`).
    pub error_code: Option<String>,
    /// Failure reason.
    pub fail_reason: Option<String>,
}

/// An asynchronous ECS job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Job id.
    pub job_id: String,
    /// e.g. `createServer`, `deleteServer`.
    pub job_type: String,
    /// Status.
    pub status: JobStatus,
    /// Start time as sent.
    pub begin_time: Option<String>,
    /// End time as sent (empty while running).
    pub end_time: Option<String>,
    /// Error code when failed.
    pub error_code: Option<String>,
    /// Failure reason when failed.
    pub fail_reason: Option<String>,
    /// Sub-jobs.
    pub sub_jobs: Vec<SubJob>,
    /// The raw `entities` object (loosely typed on purpose).
    pub entities: serde_json::Value,
}

/// Server status (derived by ECS from vm and task state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerStatus {
    /// Being created.
    Build,
    /// Running.
    Active,
    /// Stopped.
    Shutoff,
    /// Failed.
    Error,
    /// Deleted, visible for a while before 404.
    Deleted,
    /// In the recycle bin.
    SoftDeleted,
    /// Anything else (`REBOOT`, `RESIZE`, ...).
    Other(String),
}

impl ServerStatus {
    /// Parses the wire value.
    pub fn parse(s: &str) -> Self {
        match s {
            "BUILD" => ServerStatus::Build,
            "ACTIVE" => ServerStatus::Active,
            "SHUTOFF" => ServerStatus::Shutoff,
            "ERROR" => ServerStatus::Error,
            "DELETED" => ServerStatus::Deleted,
            "SOFT_DELETED" => ServerStatus::SoftDeleted,
            other => ServerStatus::Other(other.to_string()),
        }
    }

    /// `DELETED` and `SOFT_DELETED` mean gone.
    pub fn is_gone(&self) -> bool {
        matches!(self, ServerStatus::Deleted | ServerStatus::SoftDeleted)
    }
}

/// How a server is billed (`metadata.charging_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChargingMode {
    /// `"0"`: pay per use.
    OnDemand,
    /// `"1"`: yearly/monthly.
    Prepaid,
    /// `"2"`: spot.
    Spot,
    /// Missing or unknown.
    Unknown,
}

/// Metadata key the emulator (and our reading of spot reclaim) uses for the time a spot
/// server will be reclaimed. See docs/reference/emulator.md.
pub const METADATA_SPOT_INTERRUPTION: &str = "spot_interruption_time";

/// A server as returned by list/get.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Server {
    /// Server id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Status.
    pub status: ServerStatus,
    /// Flavor id.
    pub flavor_id: String,
    /// Flavor name.
    pub flavor_name: String,
    /// vCPUs.
    pub vcpus: Option<u32>,
    /// RAM in MB.
    pub ram_mb: Option<u64>,
    /// Image id.
    pub image_id: Option<String>,
    /// Availability zone.
    pub availability_zone: Option<String>,
    /// Creation time.
    pub created: Option<DateTime<Utc>>,
    /// Launch time as sent (`2019-05-22T03:23:59.000000`).
    pub launched_at: Option<String>,
    /// Tags `(key, value)` parsed from `"key=value"` strings.
    pub tags: Vec<(String, String)>,
    /// Metadata (user and system keys).
    pub metadata: BTreeMap<String, String>,
    /// Billing mode from `metadata.charging_mode`.
    pub charging_mode: ChargingMode,
    /// When a spot server will be reclaimed, if a reclaim notice was given.
    pub spot_interruption_at: Option<DateTime<Utc>>,
    /// Fault message when status is `ERROR`.
    pub fault: Option<String>,
}

impl Server {
    /// The value of tag `key`.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Filters for listing servers. All tag pairs must match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ServerFilter {
    /// Tag `(key, value)` pairs; the first is sent as the `tags` query, the rest are
    /// checked on the client.
    pub tags: Vec<(String, String)>,
    /// `status` query (e.g. `ACTIVE`).
    pub status: Option<String>,
    /// `name` query (regex-like match on the service side).
    pub name: Option<String>,
    /// Page size (default 100, max 1000).
    pub page_size: Option<u32>,
}

/// A metric dimension `name=value` (`instance_id=<server id>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dimension {
    /// Name, e.g. `instance_id`.
    pub name: String,
    /// Value.
    pub value: String,
}

impl Dimension {
    /// Convenience constructor.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// Aggregation of a CES query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Filter {
    /// Mean.
    Average,
    /// Maximum.
    Max,
    /// Minimum.
    Min,
    /// Sum.
    Sum,
    /// Variance.
    Variance,
}

impl Filter {
    /// The wire name (also the datapoint field name).
    pub fn as_str(self) -> &'static str {
        match self {
            Filter::Average => "average",
            Filter::Max => "max",
            Filter::Min => "min",
            Filter::Sum => "sum",
            Filter::Variance => "variance",
        }
    }
}

/// One metric to read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricId {
    /// e.g. `SYS.ECS`, `AGT.ECS`, `FLEXUS.POOL`.
    pub namespace: String,
    /// e.g. `cpu_util`.
    pub metric_name: String,
    /// 1 to 4 dimensions.
    pub dimensions: Vec<Dimension>,
}

/// A single-metric query (`GET /V1.0/{project}/metric-data`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricQuery {
    /// The metric.
    pub metric: MetricId,
    /// Start, epoch milliseconds.
    pub from_ms: i64,
    /// End, epoch milliseconds (`from < to`).
    pub to_ms: i64,
    /// Period in seconds: 1, 60, 300, 1200, 3600, 14400 or 86400.
    pub period: u32,
    /// Aggregation.
    pub filter: Filter,
}

/// A batch query (`POST /V1.0/{project}/batch-query-metric-data`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchMetricQuery {
    /// Up to 500 metrics.
    pub metrics: Vec<MetricId>,
    /// Start, epoch ms.
    pub from_ms: i64,
    /// End, epoch ms.
    pub to_ms: i64,
    /// Period in seconds.
    pub period: u32,
    /// Aggregation.
    pub filter: Filter,
}

/// One aggregated point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Datapoint {
    /// Bucket start, epoch ms.
    pub timestamp_ms: i64,
    /// The value of the requested filter.
    pub value: f64,
    /// Unit, e.g. `%`.
    pub unit: Option<String>,
}

/// Datapoints of one metric from a batch query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSeries {
    /// The metric.
    pub metric: MetricId,
    /// Unit.
    pub unit: Option<String>,
    /// Points, oldest first.
    pub datapoints: Vec<Datapoint>,
}

/// One custom metric value to report (`POST /V1.0/{project}/metric-data`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomMetric {
    /// Metric (namespace must not start with `SYS`, `AGT`, `SRE`).
    pub metric: MetricId,
    /// Retention in seconds (1–604800).
    pub ttl_seconds: u32,
    /// Collection time, epoch ms.
    pub collect_time_ms: i64,
    /// Value.
    pub value: f64,
    /// Unit.
    pub unit: Option<String>,
}

/// Parses `"key=value"` tag strings (a bare key gets an empty value).
pub fn parse_tag(s: &str) -> (String, String) {
    match s.split_once('=') {
        Some((k, v)) => (k.to_string(), v.to_string()),
        None => (s.to_string(), String::new()),
    }
}

/// One flavor the project may create (`GET /v1/{project}/cloudservers/flavors`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flavor {
    /// Flavor id, e.g. `x1.2u.4g` (what a create request names).
    pub id: String,
    /// Flavor name (equal to the id for ECS flavors).
    pub name: String,
    /// vCPUs.
    pub vcpus: u32,
    /// Memory, MB.
    pub ram_mb: u64,
    /// Sale state `cond:operation:status`: `normal`, `abandon`, `sellout`, `obt`,
    /// `promotion` (`normal` when the cloud does not say).
    pub sale_status: String,
    /// Spot sale state `cond:spot:operation:status`, when the flavor is offered as spot.
    pub spot_status: Option<String>,
    /// `ecs:performancetype` (`advanced_smb` for Flexus X, `gpu`, ...).
    pub performance_type: Option<String>,
    /// GPUs per server (from `pci_passthrough:alias`, `gpu:N`), 0 without.
    pub gpus: u32,
}

impl Flavor {
    /// Whether new servers of this flavor can be bought (`abandon` and `sellout` cannot).
    pub fn on_sale(&self) -> bool {
        !matches!(self.sale_status.as_str(), "abandon" | "sellout")
    }
}

/// An image the project may use (`GET /v2/cloudimages?id=...`, IMS).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// Image id (what a create request's `imageRef` names).
    pub id: String,
    /// Image name.
    #[serde(default)]
    pub name: String,
    /// `active` when usable (`queued`, `saving`, `deleted`, `killed` otherwise).
    #[serde(default)]
    pub status: String,
    /// Smallest root disk the image needs, GB.
    #[serde(default)]
    pub min_disk: u32,
}

/// The project's ECS quota (`GET /v1/{project}/cloudservers/limits`); `None` = unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Quota {
    pub max_instances: Option<u64>,
    pub used_instances: u64,
    pub max_cores: Option<u64>,
    pub used_cores: u64,
    pub max_ram_mb: Option<u64>,
    pub used_ram_mb: u64,
}

// ---- wire shapes (what the service sends) ----

#[derive(Debug, Deserialize)]
pub(crate) struct WireFlavor {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub vcpus: Option<serde_json::Value>,
    pub ram: Option<serde_json::Value>,
}

/// A flavor of the flavors list (numbers arrive as strings or numbers).
#[derive(Debug, Deserialize)]
pub(crate) struct WireFlavorDetail {
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub vcpus: Option<serde_json::Value>,
    pub ram: Option<serde_json::Value>,
    #[serde(default)]
    pub os_extra_specs: BTreeMap<String, serde_json::Value>,
}

fn wire_u64(v: Option<&serde_json::Value>) -> u64 {
    match v {
        Some(serde_json::Value::Number(n)) => n.as_u64().unwrap_or(0),
        Some(serde_json::Value::String(s)) => s.trim().parse().unwrap_or(0),
        _ => 0,
    }
}

impl From<WireFlavorDetail> for Flavor {
    fn from(w: WireFlavorDetail) -> Self {
        let spec = |k: &str| {
            w.os_extra_specs
                .get(k)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let gpus = spec("pci_passthrough:alias")
            .and_then(|a| a.rsplit(':').next().and_then(|n| n.trim().parse().ok()))
            .unwrap_or(0);
        Flavor {
            name: if w.name.is_empty() {
                w.id.clone()
            } else {
                w.name.clone()
            },
            vcpus: u32::try_from(wire_u64(w.vcpus.as_ref())).unwrap_or(u32::MAX),
            ram_mb: wire_u64(w.ram.as_ref()),
            sale_status: spec("cond:operation:status").unwrap_or_else(|| "normal".into()),
            spot_status: spec("cond:spot:operation:status"),
            performance_type: spec("ecs:performancetype"),
            gpus,
            id: w.id,
        }
    }
}

/// `absolute` of the limits answer (`-1` = unlimited).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireLimits {
    #[serde(default)]
    pub max_total_instances: i64,
    #[serde(default)]
    pub total_instances_used: i64,
    #[serde(default)]
    pub max_total_cores: i64,
    #[serde(default)]
    pub total_cores_used: i64,
    #[serde(default, rename = "maxTotalRAMSize")]
    pub max_total_ram_size: i64,
    #[serde(default, rename = "totalRAMUsed")]
    pub total_ram_used: i64,
}

impl From<WireLimits> for Quota {
    fn from(w: WireLimits) -> Self {
        let max = |v: i64| u64::try_from(v).ok();
        let used = |v: i64| u64::try_from(v).unwrap_or(0);
        Quota {
            max_instances: max(w.max_total_instances),
            used_instances: used(w.total_instances_used),
            max_cores: max(w.max_total_cores),
            used_cores: used(w.total_cores_used),
            max_ram_mb: max(w.max_total_ram_size),
            used_ram_mb: used(w.total_ram_used),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireId {
    pub id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireServer {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub status: String,
    pub flavor: Option<WireFlavor>,
    pub image: Option<WireId>,
    #[serde(rename = "OS-EXT-AZ:availability_zone")]
    pub az: Option<String>,
    pub created: Option<String>,
    #[serde(rename = "OS-SRV-USG:launched_at")]
    pub launched_at: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    pub fault: Option<serde_json::Value>,
}

fn as_number(v: &Option<serde_json::Value>) -> Option<u64> {
    match v {
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        _ => None,
    }
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc))
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|n| n.and_utc())
        })
}

impl From<WireServer> for Server {
    fn from(w: WireServer) -> Self {
        let metadata = w.metadata.unwrap_or_default();
        let charging_mode = match metadata.get("charging_mode").map(String::as_str) {
            Some("0") => ChargingMode::OnDemand,
            Some("1") => ChargingMode::Prepaid,
            Some("2") => ChargingMode::Spot,
            _ => ChargingMode::Unknown,
        };
        let spot_interruption_at = metadata
            .get(METADATA_SPOT_INTERRUPTION)
            .and_then(|s| parse_time(s));
        let flavor = w.flavor;
        Server {
            id: w.id,
            name: w.name,
            status: ServerStatus::parse(&w.status),
            flavor_id: flavor.as_ref().map(|f| f.id.clone()).unwrap_or_default(),
            flavor_name: flavor.as_ref().map(|f| f.name.clone()).unwrap_or_default(),
            vcpus: flavor
                .as_ref()
                .and_then(|f| as_number(&f.vcpus))
                .map(|v| v as u32),
            ram_mb: flavor.as_ref().and_then(|f| as_number(&f.ram)),
            image_id: w.image.and_then(|i| i.id),
            availability_zone: w.az,
            created: w.created.as_deref().and_then(parse_time),
            launched_at: w.launched_at.filter(|s| !s.is_empty()),
            tags: w
                .tags
                .unwrap_or_default()
                .iter()
                .map(|t| parse_tag(t))
                .collect(),
            metadata,
            charging_mode,
            spot_interruption_at,
            fault: w
                .fault
                .filter(|f| !f.is_null())
                .map(|f| match f.get("message") {
                    Some(serde_json::Value::String(m)) => m.clone(),
                    _ => f.to_string(),
                }),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireSubJob {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub job_id: String,
    #[serde(default)]
    pub job_type: String,
    pub error_code: Option<String>,
    pub fail_reason: Option<String>,
    #[serde(default)]
    pub entities: serde_json::Value,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireJob {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub job_id: String,
    #[serde(default)]
    pub job_type: String,
    pub begin_time: Option<String>,
    pub end_time: Option<String>,
    pub error_code: Option<String>,
    pub fail_reason: Option<String>,
    #[serde(default)]
    pub entities: serde_json::Value,
}

fn str_field(v: &serde_json::Value, key: &str) -> Option<String> {
    match v.get(key) {
        Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

impl From<WireJob> for Job {
    fn from(w: WireJob) -> Self {
        let sub_jobs = w
            .entities
            .get("sub_jobs")
            .and_then(|s| serde_json::from_value::<Vec<WireSubJob>>(s.clone()).ok())
            .unwrap_or_default()
            .into_iter()
            .map(|s| SubJob {
                server_id: str_field(&s.entities, "server_id"),
                error_code: s
                    .error_code
                    .filter(|c| !c.is_empty())
                    .or_else(|| str_field(&s.entities, "errorcode_message")),
                job_id: s.job_id,
                job_type: s.job_type,
                status: JobStatus::parse(&s.status),
                fail_reason: s.fail_reason.filter(|c| !c.is_empty()),
            })
            .collect();
        Job {
            job_id: w.job_id,
            job_type: w.job_type,
            status: JobStatus::parse(&w.status),
            begin_time: w.begin_time,
            end_time: w.end_time,
            error_code: w.error_code.filter(|c| !c.is_empty()),
            fail_reason: w.fail_reason.filter(|c| !c.is_empty()),
            sub_jobs,
            entities: w.entities,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_wire_shape_maps_tags_spot_and_flavor() {
        let w: WireServer = serde_json::from_value(serde_json::json!({
            "id": "s1", "name": "web-0001", "status": "ACTIVE",
            "flavor": {"id": "x1.2u.4g", "name": "x1.2u.4g", "vcpus": "2", "ram": "4096", "disk": "0"},
            "tags": ["flexus-pool=web", "bare"],
            "metadata": {"charging_mode": "2", "spot_interruption_time": "2026-01-01T00:05:00Z"},
            "created": "2026-01-01T00:00:00Z",
            "OS-SRV-USG:launched_at": "2026-01-01T00:00:30.000000",
            "fault": null
        }))
        .expect("wire");
        let s = Server::from(w);
        assert_eq!(s.status, ServerStatus::Active);
        assert_eq!(s.tag("flexus-pool"), Some("web"));
        assert_eq!(s.tag("bare"), Some(""));
        assert_eq!(s.vcpus, Some(2));
        assert_eq!(s.ram_mb, Some(4096));
        assert_eq!(s.charging_mode, ChargingMode::Spot);
        assert!(s.spot_interruption_at.is_some());
        assert!(s.fault.is_none());
    }

    #[test]
    fn job_entities_are_loose_and_sub_jobs_carry_errors() {
        let w: WireJob = serde_json::from_value(serde_json::json!({
            "status": "FAIL", "job_id": "j", "job_type": "createServer",
            "entities": {"sub_jobs_total": 2, "odd": [1, 2], "sub_jobs": [
                {"status": "SUCCESS", "job_id": "a", "job_type": "createSingleServer",
                 "entities": {"server_id": "s1"}},
                {"status": "FAIL", "job_id": "b", "job_type": "createSingleServer",
                 "entities": {"server_id": "s2", "errorcode_message": "Ecs.0018"},
                 "fail_reason": "sold out"}
            ]}
        }))
        .expect("wire");
        let j = Job::from(w);
        assert_eq!(j.status, JobStatus::Fail);
        assert_eq!(j.sub_jobs.len(), 2);
        assert_eq!(j.sub_jobs[1].error_code.as_deref(), Some("Ecs.0018"));
        assert_eq!(j.sub_jobs[0].server_id.as_deref(), Some("s1"));
    }
}
