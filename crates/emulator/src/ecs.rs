//! ECS handlers: create/list/get/delete servers, jobs, tags, flavors.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State as Ext};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::state::{
    JobKind, JobRec, JobState, Phase, ServerRec, SubJobRec, TOKEN_TTL_HOURS, TokenRec, ms,
};
use crate::{Emulator, flavors, json as respond};

type ApiResult = Result<Response, ApiError>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    server: ServerSpec,
    #[serde(default)]
    dry_run: bool,
}

// Fields the real API accepts are accepted (so unknown ones can be rejected) even
// where the emulator does not model them.
#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerSpec {
    name: String,
    #[serde(rename = "imageRef")]
    image_ref: String,
    #[serde(rename = "flavorRef")]
    flavor_ref: String,
    vpcid: String,
    nics: Vec<Nic>,
    root_volume: RootVolumeSpec,
    #[serde(default)]
    data_volumes: Option<Vec<Value>>,
    #[serde(default)]
    security_groups: Option<Vec<IdRef>>,
    availability_zone: Option<String>,
    batch_create_in_multi_az: Option<bool>,
    count: Option<u32>,
    #[serde(rename = "isAutoRename")]
    is_auto_rename: Option<bool>,
    key_name: Option<String>,
    #[serde(rename = "adminPass")]
    admin_pass: Option<String>,
    user_data: Option<String>,
    publicip: Option<Value>,
    server_tags: Option<Vec<TagKv>>,
    tags: Option<Vec<String>>,
    metadata: Option<BTreeMap<String, String>>,
    description: Option<String>,
    auto_terminate_time: Option<String>,
    #[serde(rename = "os:scheduler_hints")]
    scheduler_hints: Option<Value>,
    extendparam: Option<ExtendParam>,
}

// Fields the real API accepts are accepted (so unknown ones can be rejected) even
// where the emulator does not model them.
#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Nic {
    subnet_id: String,
    ip_address: Option<String>,
    ipv6_enable: Option<bool>,
    ipv6_bandwidth: Option<Value>,
    port_id: Option<String>,
    allowed_address_pairs: Option<Value>,
}

// Fields the real API accepts are accepted (so unknown ones can be rejected) even
// where the emulator does not model them.
#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RootVolumeSpec {
    volumetype: String,
    size: Option<u32>,
    iops: Option<u32>,
    throughput: Option<u32>,
    extendparam: Option<Value>,
    metadata: Option<Value>,
    cluster_type: Option<String>,
    cluster_id: Option<String>,
    #[serde(rename = "hw:passthrough")]
    passthrough: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdRef {
    id: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TagKv {
    key: String,
    #[serde(default)]
    value: String,
}

// Fields the real API accepts are accepted (so unknown ones can be rejected) even
// where the emulator does not model them.
#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExtendParam {
    #[serde(rename = "chargingMode")]
    charging_mode: Option<Value>,
    #[serde(rename = "regionID")]
    region_id: Option<String>,
    enterprise_project_id: Option<String>,
    support_auto_recovery: Option<Value>,
    #[serde(rename = "diskPrior")]
    disk_prior: Option<String>,
    #[serde(rename = "CB_CSBS_BACKUP")]
    cb_csbs_backup: Option<String>,
    #[serde(rename = "marketType")]
    market_type: Option<String>,
    #[serde(rename = "spotPrice")]
    spot_price: Option<String>,
    spot_duration_hours: Option<u32>,
    spot_duration_count: Option<u32>,
    interruption_policy: Option<String>,
}

const VOLUME_TYPES: &[&str] = &[
    "SATA", "SAS", "SSD", "GPSSD", "co-p1", "uh-l1", "ESSD", "GPSSD2", "ESSD2",
];

fn fmt_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn fmt_job_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A 32-hex job id.
pub fn job_id() -> String {
    format!("ff8080{}", &uuid::Uuid::new_v4().simple().to_string()[..26])
}

fn is_uuid_form(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn parse_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::ecs_invalid(format!("Invalid request body: {e}")))
}

fn validate_spec(s: &ServerSpec, max_count: u32) -> Result<(), ApiError> {
    let bad = |m: String| Err(ApiError::ecs_invalid(m));
    let count = s.count.unwrap_or(1);
    if !name_ok(&s.name) {
        return bad(format!(
            "server.name {:?} is invalid: 1-64 letters, digits, '_', '-' or '.'",
            s.name
        ));
    }
    if count > 1 && s.is_auto_rename != Some(true) && s.name.chars().count() > 59 {
        return bad("server.name must be at most 59 characters when count > 1".into());
    }
    if s.image_ref.is_empty() {
        return bad("server.imageRef must not be empty".into());
    }
    if s.vpcid.is_empty() {
        return bad("server.vpcid must not be empty".into());
    }
    if s.nics.is_empty() || s.nics.len() > 12 {
        return bad(format!(
            "server.nics must hold 1-12 entries, got {}",
            s.nics.len()
        ));
    }
    if s.nics.iter().any(|n| n.subnet_id.is_empty()) {
        return bad("server.nics[].subnet_id must not be empty".into());
    }
    if !VOLUME_TYPES.contains(&s.root_volume.volumetype.as_str()) {
        return bad(format!(
            "server.root_volume.volumetype {:?} is not supported",
            s.root_volume.volumetype
        ));
    }
    if let Some(size) = s.root_volume.size
        && !(1..=1024).contains(&size)
    {
        return bad(format!(
            "server.root_volume.size must be 1-1024, got {size}"
        ));
    }
    if count == 0 || count > max_count {
        return bad(format!("server.count must be 1-{max_count}, got {count}"));
    }
    let tags = s.server_tags.as_deref().unwrap_or_default();
    if tags.len() > 10 {
        return bad(format!(
            "server.server_tags: at most 10 tags, got {}",
            tags.len()
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for t in tags {
        if t.key.is_empty() || t.key.chars().count() > 36 {
            return bad(format!(
                "server.server_tags key {:?} must be 1-36 characters",
                t.key
            ));
        }
        if t.value.chars().count() > 43 {
            return bad(format!(
                "server.server_tags value of {:?} must be at most 43 characters",
                t.key
            ));
        }
        if !seen.insert(t.key.as_str()) {
            return bad(format!("server.server_tags key {:?} is duplicated", t.key));
        }
    }
    if let Some(m) = &s.metadata
        && m.len() > 10
    {
        return bad(format!(
            "server.metadata: at most 10 pairs, got {}",
            m.len()
        ));
    }
    if let Some(u) = &s.user_data
        && u.len() > 32 * 1024 * 4 / 3 + 4
    {
        return bad("server.user_data is larger than 32 KB".into());
    }
    if let Some(ext) = &s.extendparam {
        match &ext.charging_mode {
            None => {}
            Some(v) if v.as_i64() == Some(0) => {}
            Some(v) => {
                return bad(format!(
                    "server.extendparam.chargingMode must be 0 on this API, got {v}"
                ));
            }
        }
        if let Some(m) = &ext.market_type
            && m != "spot"
        {
            return bad(format!(
                "server.extendparam.marketType must be \"spot\", got {m:?}"
            ));
        }
    }
    Ok(())
}

/// The `X-Client-Token` header, which must be a UUID when present.
fn client_token(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("x-client-token") else {
        return Ok(None);
    };
    let t = v.to_str().unwrap_or_default().to_string();
    if !is_uuid_form(&t) {
        return Err(ApiError::ecs_invalid("")
            .with_code("Ecs.0123", "X-Client-Token must be a UUID (8-4-4-4-12)"));
    }
    Ok(Some(t))
}

/// A spot request's maximum price: a number, at most the on-demand price, at least the market.
fn check_spot_price(
    ext: Option<&ExtendParam>,
    flavor: &flexus_sim::capacity::Flavor,
    market: f64,
) -> Result<(), ApiError> {
    let Some(p) = ext
        .and_then(|e| e.spot_price.as_deref())
        .filter(|p| !p.is_empty())
    else {
        return Ok(());
    };
    let max: f64 = p.parse().map_err(|_| {
        ApiError::ecs_invalid(format!(
            "server.extendparam.spotPrice {p:?} is not a number"
        ))
    })?;
    if max > flavor.price_per_hour + 1e-12 {
        return Err(ApiError::ecs_invalid(format!(
            "server.extendparam.spotPrice {max} exceeds the on-demand price {}",
            flavor.price_per_hour
        )));
    }
    if max < market {
        return Err(ApiError::ecs(
            StatusCode::BAD_REQUEST,
            "Ecs.0703",
            format!("spot price {max} is below the current market price {market:.4}"),
        ));
    }
    Ok(())
}

/// `Ecs.0001` when `count` more of `flavor` exceed the project's instance, vCPU or RAM quota.
fn check_quota(
    state: &crate::state::State,
    count: u32,
    flavor: &flexus_sim::capacity::Flavor,
) -> Result<(), ApiError> {
    let (n, cpu, ram) = state.usage();
    let q = state.quota;
    if n + count > q.instances
        || cpu + count * flavor.vcpus > q.vcpus
        || ram + u64::from(count) * u64::from(flavor.memory_gib) * 1024 > q.ram_mb
    {
        return Err(ApiError::ecs(
            StatusCode::BAD_REQUEST,
            "Ecs.0001",
            format!(
                "Insufficient ECS quota: {n}/{} instances, {cpu}/{} vCPUs, {ram}/{} MB RAM in use, {count} x {} requested",
                q.instances, q.vcpus, q.ram_mb, flavor.name
            ),
        ));
    }
    Ok(())
}

/// What differs between the servers of one create request.
struct NewServer {
    id: String,
    name: String,
    az: String,
    ip: String,
    now: DateTime<Utc>,
    boot: f64,
    spot: bool,
    market: f64,
}

/// The record of a server being built from `s` (tags from `server_tags` and legacy `tags`,
/// metadata as ECS fills it).
fn new_server(s: &ServerSpec, flavor: &flexus_sim::capacity::Flavor, n: NewServer) -> ServerRec {
    let mut metadata = s.metadata.clone().unwrap_or_default();
    metadata.insert(
        "charging_mode".into(),
        if n.spot { "2" } else { "0" }.into(),
    );
    metadata.insert("vpc_id".into(), s.vpcid.clone());
    metadata.insert("metering.image_id".into(), s.image_ref.clone());
    metadata.insert("metering.imagetype".into(), "gold".into());
    metadata.insert(
        "metering.resourcespeccode".into(),
        format!("{}.linux", flavor.name),
    );
    metadata.insert("os_type".into(), "Linux".into());
    metadata.insert("os_bit".into(), "64".into());
    metadata.insert("EcmResStatus".into(), "normal".into());
    let mut tags: Vec<(String, String)> = s
        .server_tags
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|t| (t.key.clone(), t.value.clone()))
        .collect();
    for legacy in s.tags.as_deref().unwrap_or_default() {
        let (k, v) = legacy.split_once('.').unwrap_or((legacy.as_str(), ""));
        if !tags.iter().any(|(tk, _)| tk == k) {
            tags.push((k.to_string(), v.to_string()));
        }
    }
    ServerRec {
        id: n.id,
        name: n.name,
        flavor: flavor.name.clone(),
        image: s.image_ref.clone(),
        vpc_id: s.vpcid.clone(),
        subnet_ids: s.nics.iter().map(|nic| nic.subnet_id.clone()).collect(),
        security_groups: s
            .security_groups
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|g| g.id.clone())
            .collect(),
        availability_zone: n.az,
        key_name: s.key_name.clone(),
        tags,
        metadata,
        ip: n.ip,
        phase: Phase::Build,
        created: n.now,
        updated: n.now,
        boot_done_at: n.now + ms(n.boot),
        launched_at: None,
        warmup_s: flavor.warmup_s,
        spot: n.spot,
        price_per_hour: if n.spot {
            n.market
        } else {
            flavor.price_per_hour
        },
        delete_at: None,
        terminated_at: None,
        gone_at: None,
        reclaim_notice_at: None,
        reclaim_at: None,
    }
}

/// `POST /v1/{project_id}/cloudservers`.
pub async fn create(Ext(emu): Ext<Arc<Emulator>>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let token = client_token(&headers)?;
    let raw: Value = parse_body(&body)?;
    let body_hash = flexus_cloud::signer::sha256_hex(raw.to_string().as_bytes());
    let req: CreateBody = parse_body(&body)?;
    let result = emu.with(|inner, cfg| -> ApiResult {
        let now = inner.clock.now();
        let state = &mut inner.state;
        if let Some(t) = &token
            && let Some(rec) = state.tokens.get(t)
        {
            if rec.created + chrono::Duration::hours(TOKEN_TTL_HOURS) < now {
                return Err(
                    ApiError::ecs_invalid("").with_code("Ecs.0124", "X-Client-Token has expired")
                );
            }
            if rec.body_hash != body_hash {
                return Err(ApiError::ecs_invalid("").with_code(
                    "Ecs.0122",
                    "X-Client-Token was already used with different parameters",
                ));
            }
            return Ok(respond(
                StatusCode::OK,
                json!({"job_id": rec.job_id, "serverIds": rec.server_ids}),
            ));
        }
        let s = &req.server;
        validate_spec(s, cfg.max_create_count)?;
        let flavor = flavors::find(&s.flavor_ref).ok_or_else(|| {
            ApiError::ecs_invalid(format!(
                "server.flavorRef {:?} does not exist",
                s.flavor_ref
            ))
        })?;
        if state.image(&s.image_ref).is_none() {
            return Err(ApiError::ecs_invalid(format!(
                "server.imageRef {:?} does not exist",
                s.image_ref
            )));
        }
        let ext = s.extendparam.as_ref();
        let spot = ext.and_then(|e| e.market_type.as_deref()) == Some("spot");
        let market = flavors::spot_price(&flavor);
        if spot {
            check_spot_price(ext, &flavor, market)?;
        }
        let count = s.count.unwrap_or(1);
        check_quota(state, count, &flavor)?;
        if req.dry_run {
            return Ok(respond(StatusCode::ACCEPTED, json!({})));
        }
        let over = state.flavors.get(&flavor.name).cloned().unwrap_or_default();
        let failure = if over.sold_out {
            Some(("Ecs.0018", format!("flavor {} is sold out", flavor.name)))
        } else if spot && over.spot_unavailable {
            Some((
                "Ecs.0319",
                format!("insufficient spot capacity for flavor {}", flavor.name),
            ))
        } else {
            None
        };
        let boot = cfg.boot_seconds.unwrap_or(flavor.boot_s);
        let az = s
            .availability_zone
            .clone()
            .unwrap_or_else(|| format!("{}a", cfg.region));
        let mut ids = Vec::new();
        let mut sub_jobs = Vec::new();
        for i in 0..count {
            let id = uuid::Uuid::new_v4().to_string();
            let name = if count > 1 && s.is_auto_rename != Some(true) {
                format!("{}-{:04}", s.name, i + 1)
            } else {
                s.name.clone()
            };
            let (done_at, error_code, fail_reason) = match &failure {
                Some((code, why)) => (now + ms(3.0), Some(code.to_string()), Some(why.clone())),
                None => (now + ms(boot), None, None),
            };
            sub_jobs.push(SubJobRec {
                job_id: job_id(),
                server_id: id.clone(),
                state: JobState::Running,
                done_at,
                error_code,
                fail_reason,
            });
            ids.push(id.clone());
            if failure.is_some() {
                continue;
            }
            state.ip_counter += 1;
            let c = state.ip_counter;
            let ip = format!("192.168.{}.{}", (c / 250) % 250, c % 250 + 2);
            let rec = new_server(
                s,
                &flavor,
                NewServer {
                    id: id.clone(),
                    name,
                    az: az.clone(),
                    ip,
                    now,
                    boot,
                    spot,
                    market,
                },
            );
            state.servers.insert(id.clone(), rec);
            state.index_tags(&id);
        }
        let jid = job_id();
        state.events_changed();
        state.jobs.insert(
            jid.clone(),
            JobRec {
                job_id: jid.clone(),
                kind: JobKind::Create,
                begin: now,
                end: None,
                state: JobState::Running,
                sub_jobs,
            },
        );
        if let Some(t) = token {
            state.tokens.insert(
                t,
                TokenRec {
                    body_hash,
                    job_id: jid.clone(),
                    server_ids: ids.clone(),
                    created: now,
                },
            );
            state.expires_at(now + chrono::Duration::hours(crate::state::TOKEN_TTL_HOURS * 2));
        }
        Ok(respond(
            StatusCode::OK,
            json!({"job_id": jid, "serverIds": ids}),
        ))
    });
    if result.as_ref().is_ok_and(|r| r.status() == StatusCode::OK) {
        emu.mark_dirty();
        persist(&emu).await;
    }
    result
}

async fn persist(emu: &Emulator) {
    if let Err(e) = emu.persist().await {
        tracing::warn!(error = %e, "state could not be saved");
    }
}

impl ApiError {
    fn with_code(mut self, code: &str, message: &str) -> Self {
        self.code = code.into();
        self.message = message.into();
        self
    }
}

#[derive(Debug, Serialize)]
struct FlavorView<'a> {
    id: &'a str,
    name: &'a str,
    vcpus: String,
    ram: String,
    disk: &'static str,
}

#[derive(Debug, Serialize)]
struct AddressView<'a> {
    version: &'static str,
    addr: &'a str,
    #[serde(rename = "OS-EXT-IPS:type")]
    ip_type: &'static str,
    #[serde(rename = "OS-EXT-IPS-MAC:mac_addr")]
    mac: String,
    #[serde(rename = "OS-EXT-IPS:port_id")]
    port_id: String,
    primary: bool,
}

#[derive(Debug, Serialize)]
struct KeyValue<'a> {
    key: &'a str,
    value: &'a str,
}

#[derive(Debug, Serialize)]
struct SecurityGroupView<'a> {
    id: &'a str,
    name: &'a str,
}

#[derive(Debug, Serialize)]
struct IdView<'a> {
    id: &'a str,
}

/// A server exactly as ECS names the fields (borrowing from the record).
#[derive(Debug, Serialize)]
pub struct ServerView<'a> {
    id: &'a str,
    name: &'a str,
    status: &'static str,
    created: String,
    updated: String,
    flavor: FlavorView<'a>,
    image: IdView<'a>,
    addresses: BTreeMap<&'a str, [AddressView<'a>; 1]>,
    key_name: Option<&'a str>,
    metadata: &'a BTreeMap<String, String>,
    tags: Vec<String>,
    sys_tags: [KeyValue<'a>; 1],
    security_groups: Vec<SecurityGroupView<'a>>,
    #[serde(rename = "OS-EXT-AZ:availability_zone")]
    availability_zone: &'a str,
    #[serde(rename = "OS-EXT-STS:vm_state")]
    vm_state: &'static str,
    #[serde(rename = "OS-EXT-STS:task_state")]
    task_state: Option<&'static str>,
    #[serde(rename = "OS-EXT-STS:power_state")]
    power_state: u8,
    #[serde(rename = "OS-SRV-USG:launched_at")]
    launched_at: String,
    #[serde(rename = "OS-SRV-USG:terminated_at")]
    terminated_at: String,
    #[serde(rename = "OS-EXT-SRV-ATTR:hostname")]
    hostname: String,
    #[serde(rename = "OS-DCF:diskConfig")]
    disk_config: &'static str,
    #[serde(rename = "os-extended-volumes:volumes_attached")]
    volumes_attached: [(); 0],
    fault: Option<()>,
    locked: bool,
    enterprise_project_id: &'static str,
    description: &'static str,
    host_status: &'static str,
    #[serde(rename = "hostId")]
    host_id: &'static str,
    tenant_id: &'a str,
    user_id: &'static str,
    progress: u8,
    #[serde(rename = "accessIPv4")]
    access_ipv4: &'static str,
    #[serde(rename = "accessIPv6")]
    access_ipv6: &'static str,
    config_drive: &'static str,
}

fn usg_time(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string())
        .unwrap_or_default()
}

/// The ECS view of a server record.
pub fn server_view<'a>(s: &'a ServerRec, project_id: &'a str) -> ServerView<'a> {
    let f = flavors::find(&s.flavor);
    let (vm_state, task_state, power_state) = match s.phase {
        Phase::Build => ("building", Some("spawning"), 0),
        Phase::Active if s.delete_at.is_some() => ("active", Some("deleting"), 1),
        Phase::Active => ("active", None, 1),
        Phase::Deleted => ("deleted", None, 4),
    };
    let hex = |r: std::ops::Range<usize>| s.id.get(r).unwrap_or("00");
    let mut addresses = BTreeMap::new();
    addresses.insert(
        s.vpc_id.as_str(),
        [AddressView {
            version: "4",
            addr: &s.ip,
            ip_type: "fixed",
            mac: format!("fa:16:3e:{}:{}:{}", hex(0..2), hex(2..4), hex(4..6)),
            port_id: uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, s.id.as_bytes()).to_string(),
            primary: true,
        }],
    );
    ServerView {
        id: &s.id,
        name: &s.name,
        status: s.status(),
        created: fmt_time(s.created),
        updated: fmt_time(s.updated),
        flavor: FlavorView {
            id: &s.flavor,
            name: &s.flavor,
            vcpus: f.as_ref().map(|f| f.vcpus.to_string()).unwrap_or_default(),
            ram: f
                .as_ref()
                .map(|f| (f.memory_gib * 1024).to_string())
                .unwrap_or_default(),
            disk: "0",
        },
        image: IdView { id: &s.image },
        addresses,
        key_name: s.key_name.as_deref(),
        metadata: &s.metadata,
        tags: s.tags.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        sys_tags: [KeyValue {
            key: "_sys_enterprise_project_id",
            value: "0",
        }],
        security_groups: s
            .security_groups
            .iter()
            .map(|g| SecurityGroupView { id: g, name: g })
            .collect(),
        availability_zone: &s.availability_zone,
        vm_state,
        task_state,
        power_state,
        launched_at: usg_time(s.launched_at),
        terminated_at: usg_time(s.terminated_at),
        hostname: s.name.to_lowercase(),
        disk_config: "MANUAL",
        volumes_attached: [],
        fault: None,
        locked: false,
        enterprise_project_id: "0",
        description: "",
        host_status: "UP",
        host_id: "",
        tenant_id: project_id,
        user_id: "emulated-user",
        progress: if s.phase == Phase::Build { 0 } else { 100 },
        access_ipv4: "",
        access_ipv6: "",
        config_drive: "",
    }
}

/// Serialises a body to a JSON response.
fn typed<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            bytes,
        )
            .into_response(),
        Err(e) => ApiError::ecs(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Ecs.1000",
            format!("serialisation failed: {e}"),
        )
        .into_response(),
    }
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum ListItem<'a> {
    Server(Box<ServerView<'a>>),
    Missing(Value),
}

#[derive(Debug, Serialize)]
struct ListBody<'a> {
    count: usize,
    servers: Vec<ListItem<'a>>,
}

#[derive(Debug, Serialize)]
struct ShowBody<'a> {
    server: ServerView<'a>,
}

/// Nova-style fuzzy name match: substring where `.` matches any character.
fn name_matches(name: &str, pattern: &str) -> bool {
    let n: Vec<char> = name.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    if p.is_empty() {
        return true;
    }
    (0..=n.len().saturating_sub(p.len())).any(|i| {
        n.len() >= p.len()
            && p.iter()
                .enumerate()
                .all(|(j, c)| *c == '.' || n[i + j] == *c)
    })
}

/// Whether the filter `t` is exactly `"{k}={v}"` (without building that string: the
/// list filter runs for every server on every call).
fn is_pair(t: &str, k: &str, v: &str) -> bool {
    t.len() == k.len() + 1 + v.len()
        && t.starts_with(k)
        && t[k.len()..].starts_with('=')
        && t.ends_with(v)
}

/// `GET /v1/{project_id}/cloudservers/detail`.
pub async fn list(Ext(emu): Ext<Arc<Emulator>>, RawQuery(q): RawQuery) -> ApiResult {
    let pairs = q
        .as_deref()
        .map(flexus_cloud::signer::parse_raw_query)
        .unwrap_or_default();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let int = |k: &str, default: u32| -> Result<u32, ApiError> {
        match get(k) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| {
                ApiError::ecs_invalid(format!("query {k}={v:?} is not a non-negative integer"))
            }),
        }
    };
    let page = int("offset", 1)?.max(1);
    let limit = int("limit", 25)?;
    if limit == 0 || limit > 1000 {
        return Err(ApiError::ecs_invalid(format!(
            "query limit must be 1-1000, got {limit}"
        )));
    }
    let tags = pairs
        .iter()
        .filter(|(k, _)| k == "tags")
        .map(|(_, v)| v.clone())
        .collect::<Vec<_>>();
    let not_tags = pairs
        .iter()
        .filter(|(k, _)| k == "not-tags")
        .map(|(_, v)| v.clone())
        .collect::<Vec<_>>();
    let ids: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "server_id")
        .flat_map(|(_, v)| v.split(',').map(str::to_string).collect::<Vec<_>>())
        .filter(|s| !s.is_empty())
        .collect();
    let status = get("status");
    let name = get("name");
    let flavor = get("flavor");
    emu.with(|inner, cfg| {
        // A tag filter starts from the servers indexed under its first pair (every
        // server carrying it, maybe a few stale ones the full filter below drops).
        inner.state.ensure_tag_index();
        let state = &inner.state;
        let candidates: Vec<&ServerRec> = match tags.first() {
            Some(pair) if ids.is_empty() => state
                .maybe_tagged(pair)
                .unwrap_or_else(|| state.servers.values().collect()),
            _ => state.servers.values().collect(),
        };
        let mut all: Vec<&ServerRec> = candidates
            .into_iter()
            .filter(|s| {
                if !ids.is_empty() {
                    return ids.contains(&s.id);
                }
                s.phase != Phase::Deleted
                    && tags.iter().all(|t| s.tags.iter().any(|(k, v)| is_pair(t, k, v)))
                    && !not_tags.iter().any(|t| s.tags.iter().any(|(k, v)| is_pair(t, k, v) || k == t))
                    && status.as_deref().is_none_or(|st| st == s.status())
                    && name.as_deref().is_none_or(|n| name_matches(&s.name, n))
                    && flavor.as_deref().is_none_or(|f| f == s.flavor)
            })
            .collect();
        all.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        let mut rendered: Vec<ListItem<'_>> = all
            .iter()
            .skip(((page - 1) as usize).saturating_mul(limit as usize))
            .take(limit as usize)
            .map(|s| ListItem::Server(Box::new(server_view(s, &cfg.project_id))))
            .collect();
        if !ids.is_empty() {
            for id in &ids {
                if !inner.state.servers.contains_key(id) {
                    rendered.push(ListItem::Missing(
                        json!({"id": id, "fault": {"code": 404, "message": "The ECS does not exist"}}),
                    ));
                }
            }
        }
        Ok(typed(StatusCode::OK, &ListBody { count: all.len(), servers: rendered }))
    })
}

fn not_found(id: &str) -> ApiError {
    ApiError::ecs(
        StatusCode::NOT_FOUND,
        "Ecs.0114",
        format!("Instance[{id}] could not be found."),
    )
}

/// `GET /v1/{project_id}/cloudservers/{server_id}`.
pub async fn show(
    Ext(emu): Ext<Arc<Emulator>>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult {
    emu.with(|inner, cfg| match inner.state.servers.get(&id) {
        Some(s) => Ok(typed(
            StatusCode::OK,
            &ShowBody {
                server: server_view(s, &cfg.project_id),
            },
        )),
        None => Err(not_found(&id)),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteBody {
    servers: Vec<IdRef>,
    delete_publicip: Option<bool>,
    delete_volume: Option<bool>,
}

/// `POST /v1/{project_id}/cloudservers/delete`.
pub async fn delete(Ext(emu): Ext<Arc<Emulator>>, body: Bytes) -> ApiResult {
    let req: DeleteBody = parse_body(&body)?;
    if req.servers.is_empty() || req.servers.len() > 1000 {
        return Err(ApiError::ecs_invalid(format!(
            "servers must hold 1-1000 entries, got {}",
            req.servers.len()
        )));
    }
    if req.servers.iter().any(|s| s.id.is_empty()) {
        return Err(ApiError::ecs_invalid("servers[].id must not be empty"));
    }
    let _ = (req.delete_publicip, req.delete_volume);
    let jid = emu.with(|inner, cfg| {
        let now = inner.clock.now();
        let st = &mut inner.state;
        let mut seen = std::collections::HashSet::new();
        let mut sub_jobs = Vec::new();
        for r in &req.servers {
            if !seen.insert(r.id.clone()) {
                continue;
            }
            let (done_at, error_code, fail_reason) = match st.servers.get_mut(&r.id) {
                None => (
                    now + ms(1.0),
                    Some("Ecs.0114".to_string()),
                    Some(format!("Instance[{}] could not be found.", r.id)),
                ),
                Some(s) if s.phase == Phase::Deleted => (now, None, None),
                Some(s) if s.reclaim_at.is_some() => (
                    now + ms(1.0),
                    Some("Ecs.0000".to_string()),
                    Some("the spot instance is being reclaimed and cannot be deleted".to_string()),
                ),
                Some(s) => {
                    let at = *s.delete_at.get_or_insert(now + ms(cfg.delete_seconds));
                    s.updated = now;
                    (at, None, None)
                }
            };
            sub_jobs.push(SubJobRec {
                job_id: job_id(),
                server_id: r.id.clone(),
                state: JobState::Running,
                done_at,
                error_code,
                fail_reason,
            });
        }
        let jid = job_id();
        st.events_changed();
        st.jobs.insert(
            jid.clone(),
            JobRec {
                job_id: jid.clone(),
                kind: JobKind::Delete,
                begin: now,
                end: None,
                state: JobState::Running,
                sub_jobs,
            },
        );
        jid
    });
    emu.mark_dirty();
    persist(&emu).await;
    Ok(respond(StatusCode::OK, json!({"job_id": jid})))
}

/// Job JSON.
pub fn render_job(j: &JobRec) -> Value {
    let (top, single) = match j.kind {
        JobKind::Create => ("createServer", "createSingleServer"),
        JobKind::Delete => ("deleteServer", "deleteSingleServer"),
    };
    let subs: Vec<Value> = j
        .sub_jobs
        .iter()
        .map(|s| {
            let mut entities = json!({"server_id": s.server_id});
            if j.kind == JobKind::Create && s.state == JobState::Success {
                // Real sub-jobs carry more entity fields than clients use; keep one so
                // clients are exercised on loosely typed entities.
                entities["nic_id"] = json!(
                    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, s.server_id.as_bytes()).to_string()
                );
            }
            if s.state == JobState::Fail
                && let Some(c) = &s.error_code
            {
                entities["errorcode_message"] = json!(c);
            }
            json!({
                "status": s.state.as_str(),
                "job_id": s.job_id,
                "job_type": single,
                "begin_time": fmt_job_time(j.begin),
                "end_time": if s.state == JobState::Running { String::new() } else { fmt_job_time(s.done_at) },
                "error_code": if s.state == JobState::Fail { json!(s.error_code) } else { Value::Null },
                "fail_reason": if s.state == JobState::Fail { json!(s.fail_reason) } else { Value::Null },
                "entities": entities,
            })
        })
        .collect();
    let first_fail = j.sub_jobs.iter().find(|s| s.state == JobState::Fail);
    json!({
        "status": j.state.as_str(),
        "job_id": j.job_id,
        "job_type": top,
        "begin_time": fmt_job_time(j.begin),
        "end_time": j.end.filter(|_| j.state != JobState::Running).map(fmt_job_time).unwrap_or_default(),
        "error_code": if j.state == JobState::Fail { json!(first_fail.and_then(|s| s.error_code.clone())) } else { Value::Null },
        "fail_reason": if j.state == JobState::Fail { json!(first_fail.and_then(|s| s.fail_reason.clone())) } else { Value::Null },
        "entities": {"sub_jobs_total": j.sub_jobs.len(), "sub_jobs": subs},
    })
}

/// `GET /v1/{project_id}/jobs/{job_id}`.
pub async fn job(Ext(emu): Ext<Arc<Emulator>>, Path((_, id)): Path<(String, String)>) -> ApiResult {
    emu.with(|inner, _| match inner.state.jobs.get(&id) {
        Some(j) => Ok(respond(StatusCode::OK, render_job(j))),
        None => Err(ApiError::ecs(
            StatusCode::NOT_FOUND,
            "Ecs.0000",
            format!("job {id} does not exist"),
        )),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TagsBody {
    action: String,
    tags: Vec<TagKv>,
}

/// `POST /v1/{project_id}/cloudservers/{server_id}/tags/action` (204).
pub async fn tags_action(
    Ext(emu): Ext<Arc<Emulator>>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let req: TagsBody = parse_body(&body)?;
    if req.action != "create" && req.action != "delete" {
        return Err(ApiError::ecs_invalid(format!(
            "action must be \"create\" or \"delete\", got {:?}",
            req.action
        )));
    }
    if req.tags.is_empty() {
        return Err(ApiError::ecs_invalid("tags must not be empty"));
    }
    for t in &req.tags {
        if t.key.is_empty() || t.key.chars().count() > 36 || t.value.chars().count() > 43 {
            return Err(ApiError::ecs_invalid(format!(
                "tag {:?}: key 1-36 characters, value at most 43",
                t.key
            )));
        }
    }
    emu.with(|inner, _| {
        let now = inner.clock.now();
        let s = inner
            .state
            .servers
            .get_mut(&id)
            .filter(|s| s.phase != Phase::Deleted)
            .ok_or_else(|| not_found(&id))?;
        let mut tags = s.tags.clone();
        for t in &req.tags {
            tags.retain(|(k, _)| *k != t.key);
            if req.action == "create" {
                tags.push((t.key.clone(), t.value.clone()));
            }
        }
        if tags.len() > 20 {
            return Err(ApiError::ecs_invalid(format!(
                "a server has at most 20 tags, would have {}",
                tags.len()
            )));
        }
        s.tags = tags;
        s.updated = now;
        inner.state.index_tags(&id);
        Ok(())
    })?;
    emu.mark_dirty();
    persist(&emu).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /v1/{project_id}/cloudservers/{server_id}/tags`.
pub async fn list_tags(
    Ext(emu): Ext<Arc<Emulator>>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult {
    emu.with(|inner, _| match inner.state.servers.get(&id).filter(|s| s.phase != Phase::Deleted) {
        Some(s) => Ok(respond(
            StatusCode::OK,
            json!({"tags": s.tags.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>()}),
        )),
        None => Err(not_found(&id)),
    })
}

/// `GET /v1/{project_id}/cloudservers/flavors`.
pub async fn flavors(Ext(emu): Ext<Arc<Emulator>>) -> ApiResult {
    emu.with(|inner, _| {
        let list: Vec<Value> = flavors::all()
            .iter()
            .map(|f| {
                let o = inner.state.flavors.get(&f.name).cloned().unwrap_or_default();
                let mut specs = json!({
                    "cond:operation:status": if o.sold_out { "sellout" } else { "normal" },
                    "cond:spot:operation:status": if o.spot_unavailable { "abandon" } else { "normal" },
                    "ecs:virtualization_env_types": "CloudCompute",
                });
                if f.name.starts_with("x1") {
                    specs["ecs:performancetype"] = json!("advanced_smb");
                }
                if f.gpus > 0 {
                    specs["ecs:performancetype"] = json!("gpu");
                    specs["pci_passthrough:alias"] = json!(format!("gpu:{}", f.gpus));
                }
                json!({
                    "id": f.name, "name": f.name, "vcpus": f.vcpus.to_string(),
                    "ram": f.memory_gib * 1024, "disk": "0", "os_extra_specs": specs,
                })
            })
            .collect();
        Ok(respond(StatusCode::OK, json!({"flavors": list})))
    })
}

/// `GET /v2/cloudimages?id=...` (IMS): the project's images with that id.
pub async fn images(Ext(emu): Ext<Arc<Emulator>>, RawQuery(q): RawQuery) -> ApiResult {
    let id = q
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "id")
        .map(|(_, v)| v.to_string());
    let Some(id) = id else {
        return Err(ApiError::ecs_invalid(
            "the emulator lists images by id only (?id=...)",
        ));
    };
    emu.with(|inner, _| {
        let list: Vec<Value> = inner
            .state
            .image(&id)
            .map(|i| {
                json!({"id": i.id, "name": i.name, "status": "active", "min_disk": i.min_disk,
                            "visibility": "private", "__os_type": "Linux"})
            })
            .into_iter()
            .collect();
        Ok(respond(StatusCode::OK, json!({"images": list})))
    })
}

/// `GET /v1/{project_id}/cloudservers/limits`: the quota and what servers use of it.
pub async fn limits(Ext(emu): Ext<Arc<Emulator>>) -> ApiResult {
    emu.with(|inner, _| {
        let (n, cpu, ram) = inner.state.usage();
        let q = inner.state.quota;
        Ok(respond(
            StatusCode::OK,
            json!({"absolute": {
                "maxTotalInstances": q.instances, "totalInstancesUsed": n,
                "maxTotalCores": q.vcpus, "totalCoresUsed": cpu,
                "maxTotalRAMSize": q.ram_mb, "totalRAMUsed": ram,
                "maxTotalSpotInstances": q.instances, "maxTotalKeypairs": -1,
                "maxServerMeta": 10, "maxPersonality": 5, "limit_by_flavor": [],
            }}),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_view_uses_the_ecs_field_names() {
        let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("t");
        let rec = ServerRec {
            id: "a1b2c3d4-0000-4000-8000-000000000000".into(),
            name: "Web-0001".into(),
            flavor: "x1.2u.4g".into(),
            image: "img".into(),
            vpc_id: "vpc".into(),
            subnet_ids: vec!["sub".into()],
            security_groups: vec!["sg".into()],
            availability_zone: "cn-north-4a".into(),
            key_name: None,
            tags: vec![("flexus-pool".into(), "web".into())],
            metadata: BTreeMap::from([("charging_mode".to_string(), "0".to_string())]),
            ip: "192.168.0.3".into(),
            phase: Phase::Build,
            created: now,
            updated: now,
            boot_done_at: now,
            launched_at: None,
            warmup_s: 0.0,
            spot: false,
            price_per_hour: 1.0,
            delete_at: None,
            terminated_at: None,
            gone_at: None,
            reclaim_notice_at: None,
            reclaim_at: None,
        };
        let v = serde_json::to_value(server_view(&rec, "p")).expect("json");
        assert_eq!(v["status"], "BUILD");
        assert_eq!(v["OS-EXT-STS:task_state"], "spawning");
        assert_eq!(v["OS-EXT-AZ:availability_zone"], "cn-north-4a");
        assert_eq!(v["flavor"]["vcpus"], "2");
        assert_eq!(v["flavor"]["ram"], "4096");
        assert_eq!(v["tags"][0], "flexus-pool=web");
        assert_eq!(
            v["addresses"]["vpc"][0]["OS-EXT-IPS-MAC:mac_addr"],
            "fa:16:3e:a1:b2:c3"
        );
        assert_eq!(v["os-extended-volumes:volumes_attached"], json!([]));
        assert_eq!(v["fault"], Value::Null);
        assert_eq!(v["created"], "2023-11-14T22:13:20Z");
        assert_eq!(v["OS-SRV-USG:launched_at"], "");
        assert_eq!(v["OS-EXT-SRV-ATTR:hostname"], "web-0001");
    }

    #[test]
    fn name_filter_treats_dot_as_any_character() {
        assert!(name_matches("web-0001", "web"));
        assert!(name_matches("web-0001", "w.b-00"));
        assert!(!name_matches("web-0001", "api"));
        assert!(name_matches("x", ""));
    }

    #[test]
    fn tag_filter_matches_only_the_exact_key_value_pair() {
        assert!(is_pair("flexus-pool=web", "flexus-pool", "web"));
        assert!(is_pair("k=", "k", ""));
        assert!(!is_pair("flexus-pool=web", "flexus-pool", "we"));
        assert!(!is_pair("flexus-pool=web", "flexus-poo", "l=web"));
        assert!(!is_pair("flexus-pool:web", "flexus-pool", "web"));
        assert!(!is_pair("flexus-pool=web2", "flexus-pool", "web"));
        assert!(!is_pair("aflexus-pool=web", "flexus-pool", "web"));
    }

    #[test]
    fn client_token_must_be_hyphenated_uuid() {
        assert!(is_uuid_form("123e4567-e89b-12d3-a456-426614174000"));
        assert!(!is_uuid_form("123e4567e89b12d3a456426614174000"));
        assert!(!is_uuid_form("not-a-token"));
    }

    #[test]
    fn unknown_server_fields_are_rejected_with_their_name() {
        let e = parse_body::<CreateBody>(br#"{"server":{"name":"a","imageRef":"i","flavorRef":"x1.2u.4g","vpcid":"v","nics":[{"subnet_id":"s"}],"root_volume":{"volumetype":"SSD"},"colour":"red"}}"#)
            .expect_err("unknown field");
        assert_eq!(e.code, "Ecs.0005");
        assert!(e.message.contains("colour"));
    }
}
