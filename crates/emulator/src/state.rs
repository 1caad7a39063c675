//! The emulated project's state and how it evolves with the clock.
//!
//! Everything here is plain data (persisted as JSON) plus [`State::advance`], which
//! moves the world to a new emulated time: boots finish, deletes complete, deleted
//! servers expire, spot servers get reclaim notices and disappear, jobs settle and the
//! workload driver writes metric samples.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::config::{EmulatorConfig, Quota};
use crate::metrics::MetricStore;
use crate::workload::{PoolRuntime, WorkloadSpec};

/// Lifecycle of an emulated server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Being built (`BUILD`).
    Build,
    /// Running (`ACTIVE`).
    Active,
    /// Deleted, still visible to GET (`DELETED`).
    Deleted,
}

/// One server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerRec {
    /// Id (UUID).
    pub id: String,
    /// Name.
    pub name: String,
    /// Flavor id.
    pub flavor: String,
    /// Image id.
    pub image: String,
    /// VPC id.
    pub vpc_id: String,
    /// Subnets.
    pub subnet_ids: Vec<String>,
    /// Security groups.
    pub security_groups: Vec<String>,
    /// AZ.
    pub availability_zone: String,
    /// Key pair.
    pub key_name: Option<String>,
    /// Tags in order.
    pub tags: Vec<(String, String)>,
    /// Metadata (user + system keys).
    pub metadata: BTreeMap<String, String>,
    /// Private IPv4.
    pub ip: String,
    /// Phase.
    pub phase: Phase,
    /// Creation time.
    pub created: DateTime<Utc>,
    /// Last change.
    pub updated: DateTime<Utc>,
    /// When the boot finishes.
    pub boot_done_at: DateTime<Utc>,
    /// When it became ACTIVE (billing starts).
    pub launched_at: Option<DateTime<Utc>>,
    /// Seconds after launch until it serves at full speed.
    pub warmup_s: f64,
    /// Spot instance.
    pub spot: bool,
    /// Price per hour it is billed at.
    pub price_per_hour: f64,
    /// When a delete will complete.
    pub delete_at: Option<DateTime<Utc>>,
    /// When it became DELETED.
    pub terminated_at: Option<DateTime<Utc>>,
    /// When GET starts answering 404.
    pub gone_at: Option<DateTime<Utc>>,
    /// When a spot reclaim notice was given.
    pub reclaim_notice_at: Option<DateTime<Utc>>,
    /// When the spot reclaim happens.
    pub reclaim_at: Option<DateTime<Utc>>,
}

impl ServerRec {
    /// The wire `status`.
    pub fn status(&self) -> &'static str {
        match self.phase {
            Phase::Build => "BUILD",
            Phase::Active => "ACTIVE",
            Phase::Deleted => "DELETED",
        }
    }

    /// Value of tag `key`.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Running at `t`: launched at or before `t` and not yet terminated.
    pub fn running_at(&self, t: DateTime<Utc>) -> bool {
        self.launched_at.is_some_and(|l| l <= t) && self.terminated_at.is_none_or(|e| t < e)
    }

    /// Ready to serve at `t`: running and warmed up.
    pub fn serving_at(&self, t: DateTime<Utc>) -> bool {
        self.running_at(t)
            && self
                .launched_at
                .is_some_and(|l| l + Duration::milliseconds((self.warmup_s * 1000.0) as i64) <= t)
    }
}

/// Status of a (sub-)job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobState {
    /// In progress.
    Running,
    /// Done.
    Success,
    /// Failed.
    Fail,
}

impl JobState {
    /// Wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Running => "RUNNING",
            JobState::Success => "SUCCESS",
            JobState::Fail => "FAIL",
        }
    }
}

/// One sub-job (one server).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubJobRec {
    /// Id.
    pub job_id: String,
    /// Server concerned.
    pub server_id: String,
    /// State.
    pub state: JobState,
    /// When it completes (or completed).
    pub done_at: DateTime<Utc>,
    /// Failure code.
    pub error_code: Option<String>,
    /// Failure reason.
    pub fail_reason: Option<String>,
}

/// Kind of job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobKind {
    /// `createServer`.
    Create,
    /// `deleteServer`.
    Delete,
}

/// An ECS job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRec {
    /// Id (32 hex).
    pub job_id: String,
    /// Kind.
    pub kind: JobKind,
    /// Start.
    pub begin: DateTime<Utc>,
    /// End.
    pub end: Option<DateTime<Utc>>,
    /// State.
    pub state: JobState,
    /// Sub-jobs.
    pub sub_jobs: Vec<SubJobRec>,
}

/// A remembered `X-Client-Token`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRec {
    /// Hash of the canonical request body.
    pub body_hash: String,
    /// The job created.
    pub job_id: String,
    /// The server ids returned.
    pub server_ids: Vec<String>,
    /// First use.
    pub created: DateTime<Utc>,
}

/// Billing record of one server (kept after the server is gone).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BillingRec {
    /// Server id.
    pub server_id: String,
    /// Name.
    pub name: String,
    /// Flavor.
    pub flavor: String,
    /// Pool tag value.
    pub pool: Option<String>,
    /// Spot.
    pub spot: bool,
    /// Price per hour.
    pub price_per_hour: f64,
    /// Billing start (launch).
    pub start: DateTime<Utc>,
    /// Billing end (deletion), `None` while running.
    pub end: Option<DateTime<Utc>>,
    /// Whether it ended by spot reclamation.
    pub reclaimed: bool,
}

impl BillingRec {
    /// Billed seconds up to `now`.
    pub fn seconds(&self, now: DateTime<Utc>) -> f64 {
        let end = self.end.unwrap_or(now).min(now);
        ((end - self.start).num_milliseconds() as f64 / 1000.0).max(0.0)
    }
    /// Cost up to `now` (per-second billing).
    pub fn cost(&self, now: DateTime<Utc>) -> f64 {
        self.seconds(now) * self.price_per_hour / 3600.0
    }
}

/// Per-flavor switches set through the control API.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FlavorOverride {
    /// Creates of this flavor fail with `Ecs.0018`.
    pub sold_out: bool,
    /// Spot purchase disabled for this flavor.
    pub spot_unavailable: bool,
    /// Spot reclaim hazard per instance-hour (overrides the default).
    pub spot_hazard_per_hour: Option<f64>,
}

/// A fault rule under `/_emulator/faults`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// Operation name (`create_servers`, `list_servers`, ...) or `*`.
    pub operation: String,
    /// Fraction of calls that fail with `status`/`code`.
    #[serde(default)]
    pub error_rate: f64,
    /// Status of injected errors (default 500).
    #[serde(default = "default_fault_status")]
    pub status: u16,
    /// Code of injected errors (default `Ecs.1000`; `APIGW.*` codes use the gateway shape).
    #[serde(default = "default_fault_code")]
    pub code: String,
    /// Added latency, real milliseconds.
    #[serde(default)]
    pub latency_ms: u64,
    /// The next N calls answer 429 `APIGW.0308`.
    #[serde(default)]
    pub throttle_burst: u32,
}

fn default_fault_status() -> u16 {
    500
}
fn default_fault_code() -> String {
    "Ecs.1000".into()
}

/// An image of the project's catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRec {
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// Smallest root disk, GB.
    #[serde(default)]
    pub min_disk: u32,
}

/// The whole persisted state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    /// Format version.
    pub version: u32,
    /// Emulated time the state was advanced to.
    pub now: DateTime<Utc>,
    /// Clock speed.
    pub time_scale: f64,
    /// Servers by id.
    pub servers: BTreeMap<String, ServerRec>,
    /// Jobs by id.
    pub jobs: BTreeMap<String, JobRec>,
    /// Idempotency tokens.
    pub tokens: BTreeMap<String, TokenRec>,
    /// Billing by server id.
    pub billing: BTreeMap<String, BillingRec>,
    /// Workloads by pool tag value.
    pub workloads: BTreeMap<String, WorkloadSpec>,
    /// Workload runtime (backlog, last sample) by pool.
    pub pools: BTreeMap<String, PoolRuntime>,
    /// Flavor switches.
    pub flavors: BTreeMap<String, FlavorOverride>,
    /// Fault rules.
    pub faults: Vec<FaultRule>,
    /// Quota (initialised from the config, changeable at run time).
    pub quota: Quota,
    /// The images the project has. `None` (the default): every image id exists, so
    /// clients that do not care need not register any; once a list is set, only its
    /// images exist, for IMS lookups and server creates alike.
    #[serde(default)]
    pub images: Option<Vec<ImageRec>>,
    /// Counter for private IPs.
    pub ip_counter: u32,
    /// Custom metrics reported by clients (persisted).
    pub custom_metrics: MetricStore,
    /// Metrics written by the workload driver (not persisted; regenerated).
    #[serde(skip)]
    pub driver_metrics: MetricStore,
    /// No token or finished job expires before this time (`None`: unknown, scan). Not
    /// persisted; lets [`State::advance`] skip the expiry scans on most requests. Code
    /// that inserts a token or sets a job's end calls [`State::expires_at`].
    #[serde(skip)]
    pub housekeeping_due: Option<DateTime<Utc>>,
    /// Server ids by `"key=value"` tag pair (`None`: not built yet). Not persisted. A
    /// superset: every current pair of every server is in it, but an entry may be stale
    /// (a tag since changed), so readers re-check the server's tags.
    #[serde(skip)]
    pub tag_index: Option<HashMap<String, BTreeSet<String>>>,
    /// No server boots, deletes, is reclaimed or expires and no job settles before this
    /// time, and no spot server is exposed to the reclaim hazard (`None`: unknown, scan).
    /// Not persisted. Code outside [`State::advance`] that adds servers or jobs or sets
    /// such a time calls [`State::events_changed`].
    #[serde(skip)]
    pub quiet_until: Option<DateTime<Utc>>,
}

/// Current format version.
pub const STATE_VERSION: u32 = 1;
/// Lifetime of `X-Client-Token`s.
pub const TOKEN_TTL_HOURS: i64 = 8;
/// How long a finished job stays visible.
pub const JOB_TTL_HOURS: i64 = 24;

impl State {
    /// The image with this id, when the project has it (every id, while no catalogue is set).
    pub fn image(&self, id: &str) -> Option<ImageRec> {
        match &self.images {
            None => Some(ImageRec {
                id: id.to_owned(),
                name: id.to_owned(),
                min_disk: 0,
            }),
            Some(list) => list.iter().find(|i| i.id == id).cloned(),
        }
    }

    /// Empty state at `now`.
    pub fn new(now: DateTime<Utc>, config: &EmulatorConfig) -> Self {
        Self {
            version: STATE_VERSION,
            now,
            time_scale: config.time_scale,
            servers: BTreeMap::new(),
            jobs: BTreeMap::new(),
            tokens: BTreeMap::new(),
            billing: BTreeMap::new(),
            workloads: BTreeMap::new(),
            pools: BTreeMap::new(),
            flavors: BTreeMap::new(),
            faults: Vec::new(),
            quota: config.quota,
            ip_counter: 0,
            images: None,
            custom_metrics: MetricStore::default(),
            driver_metrics: MetricStore::default(),
            housekeeping_due: None,
            tag_index: None,
            quiet_until: None,
        }
    }

    /// Servers or jobs were added, or a boot/delete/reclaim time set: the next
    /// [`State::advance`] scans them all.
    pub fn events_changed(&mut self) {
        self.quiet_until = None;
    }

    /// The earliest time at which [`State::advance`] has server or job work to do, or
    /// `None` when every advance must scan (a spot server exposed to the hazard).
    fn next_event(&self) -> Option<DateTime<Utc>> {
        let mut next = DateTime::<Utc>::MAX_UTC;
        for s in self.servers.values() {
            let at = match s.phase {
                Phase::Active if s.spot && s.reclaim_at.is_none() => return None,
                Phase::Deleted => s.gone_at,
                Phase::Build if s.delete_at.is_none() => Some(
                    s.reclaim_at
                        .map_or(s.boot_done_at, |r| r.min(s.boot_done_at)),
                ),
                _ => match (s.delete_at, s.reclaim_at) {
                    (Some(d), Some(r)) => Some(d.min(r)),
                    (d, r) => d.or(r),
                },
            };
            if let Some(at) = at {
                next = next.min(at);
            }
        }
        for j in self.jobs.values().filter(|j| j.state == JobState::Running) {
            for sj in &j.sub_jobs {
                if sj.state == JobState::Running {
                    next = next.min(sj.done_at);
                }
            }
        }
        Some(next)
    }

    /// Adds the tag pairs of server `id` to the tag index (call after inserting a server
    /// or changing its tags).
    pub fn index_tags(&mut self, id: &str) {
        let (Some(ix), Some(s)) = (self.tag_index.as_mut(), self.servers.get(id)) else {
            return;
        };
        for (k, v) in &s.tags {
            ix.entry(format!("{k}={v}"))
                .or_default()
                .insert(id.to_string());
        }
    }

    fn unindex_tags(&mut self, id: &str) {
        let (Some(ix), Some(s)) = (self.tag_index.as_mut(), self.servers.get(id)) else {
            return;
        };
        for (k, v) in &s.tags {
            let pair = format!("{k}={v}");
            if let Some(set) = ix.get_mut(&pair) {
                set.remove(id);
                if set.is_empty() {
                    ix.remove(&pair);
                }
            }
        }
    }

    /// Builds the tag index if it is not built yet.
    pub fn ensure_tag_index(&mut self) {
        if self.tag_index.is_some() {
            return;
        }
        let mut ix: HashMap<String, BTreeSet<String>> = HashMap::new();
        for (id, s) in &self.servers {
            for (k, v) in &s.tags {
                ix.entry(format!("{k}={v}")).or_default().insert(id.clone());
            }
        }
        self.tag_index = Some(ix);
    }

    /// Servers that may carry the tag pair `"key=value"` (a superset: check the tags).
    /// `None` when the index is not built.
    pub fn maybe_tagged<'a>(&'a self, pair: &str) -> Option<Vec<&'a ServerRec>> {
        let ix = self.tag_index.as_ref()?;
        Some(
            ix.get(pair)
                .map(|ids| ids.iter().filter_map(|id| self.servers.get(id)).collect())
                .unwrap_or_default(),
        )
    }

    /// Notes that a token or job will expire at `at` (keeps `housekeeping_due` a lower bound).
    pub fn expires_at(&mut self, at: DateTime<Utc>) {
        if let Some(d) = self.housekeeping_due {
            self.housekeeping_due = Some(d.min(at));
        }
    }

    /// Hazard per hour of a flavor.
    pub fn hazard(&self, flavor: &str, config: &EmulatorConfig) -> f64 {
        self.flavors
            .get(flavor)
            .and_then(|f| f.spot_hazard_per_hour)
            .unwrap_or(config.spot_hazard_per_hour)
    }

    /// Schedules a spot reclaim of `id` at `at` with a notice now.
    pub fn schedule_reclaim(
        &mut self,
        id: &str,
        notice_at: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> bool {
        self.quiet_until = None;
        let Some(s) = self.servers.get_mut(id) else {
            return false;
        };
        if s.phase == Phase::Deleted || s.reclaim_at.is_some() {
            return false;
        }
        s.reclaim_notice_at = Some(notice_at);
        s.reclaim_at = Some(at);
        s.updated = notice_at;
        s.metadata.insert(
            flexus_cloud::METADATA_SPOT_INTERRUPTION.to_string(),
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        );
        true
    }

    fn terminate(&mut self, id: &str, at: DateTime<Utc>, linger_s: f64, reclaimed: bool) {
        if let Some(s) = self.servers.get_mut(id) {
            if s.phase == Phase::Deleted {
                return;
            }
            s.phase = Phase::Deleted;
            s.terminated_at = Some(at);
            s.updated = at;
            s.gone_at = Some(at + ms(linger_s));
            if let Some(b) = self.billing.get_mut(id) {
                b.end = Some(at);
                b.reclaimed = reclaimed;
            }
        }
    }

    /// Moves the world to `now` (never backwards). Returns whether anything persisted changed.
    pub fn advance(
        &mut self,
        now: DateTime<Utc>,
        config: &EmulatorConfig,
        rng: &mut impl Rng,
    ) -> bool {
        if now <= self.now {
            return false;
        }
        let prev = self.now;
        let mut changed = false;
        // Servers and jobs: skipped while nothing can be due (most requests).
        if self.quiet_until.is_none_or(|q| q <= now) {
            changed |= self.spot_notices(prev, now, config, rng);
            changed |= self.advance_servers(now, config);
            changed |= self.advance_jobs(now);
            self.quiet_until = self.next_event();
        }
        // Housekeeping: old tokens and jobs.
        // Tokens live until `created + 2 × TTL`, finished jobs until `end + JOB_TTL`; both
        // scans run only once the earliest of those times has come.
        if self.housekeeping_due.is_none_or(|d| d <= now) {
            let token_ttl = Duration::hours(TOKEN_TTL_HOURS * 2);
            let job_ttl = Duration::hours(JOB_TTL_HOURS);
            let token_cutoff = now - token_ttl;
            self.tokens.retain(|_, t| t.created > token_cutoff);
            let job_cutoff = now - job_ttl;
            self.jobs
                .retain(|_, j| j.end.is_none_or(|e| e > job_cutoff));
            let next_token = self.tokens.values().map(|t| t.created + token_ttl).min();
            let next_job = self
                .jobs
                .values()
                .filter_map(|j| j.end)
                .map(|e| e + job_ttl)
                .min();
            self.housekeeping_due = Some(
                next_token
                    .into_iter()
                    .chain(next_job)
                    .min()
                    .unwrap_or(DateTime::<Utc>::MAX_UTC),
            );
        }
        // Workload driver.
        crate::workload::drive(self, prev, now, config);
        self.custom_metrics.expire(now);
        self.now = now;
        changed
    }

    /// Spot hazard over (prev, now]: schedules reclaim notices. Every request advances the
    /// world, so this only collects the active spot servers (no clones of the others).
    fn spot_notices(
        &mut self,
        prev: DateTime<Utc>,
        now: DateTime<Utc>,
        config: &EmulatorConfig,
        rng: &mut impl Rng,
    ) -> bool {
        let mut changed = false;
        let dt_h = (now - prev).num_milliseconds() as f64 / 3_600_000.0;
        let spot_ids: Vec<(String, String)> = self
            .servers
            .iter()
            .filter(|(_, s)| s.spot && s.phase == Phase::Active && s.reclaim_at.is_none())
            .map(|(id, s)| (id.clone(), s.flavor.clone()))
            .collect();
        for (id, flavor) in &spot_ids {
            let h = self.hazard(flavor, config);
            if h > 0.0 && rng.random::<f64>() < 1.0 - (-h * dt_h).exp() {
                let span = (now - prev).num_milliseconds().max(1);
                let notice = prev + Duration::milliseconds(rng.random_range(0..span));
                self.schedule_reclaim(id, notice, notice + ms(config.spot_notice_seconds));
                changed = true;
            }
        }
        changed
    }

    /// Boots, deletes, reclaims and expiry, in time order per server; only the few servers
    /// with something due are visited (O(servers) comparisons to find them).
    fn advance_servers(&mut self, now: DateTime<Utc>, config: &EmulatorConfig) -> bool {
        let mut changed = false;
        let due = |s: &ServerRec| match s.phase {
            Phase::Build if s.delete_at.is_none() && s.boot_done_at <= now => true,
            Phase::Deleted => s.gone_at.is_some_and(|g| g <= now),
            _ => s.delete_at.is_some_and(|t| t <= now) || s.reclaim_at.is_some_and(|t| t <= now),
        };
        let ids: Vec<String> = self
            .servers
            .iter()
            .filter(|(_, s)| due(s))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &ids {
            let Some(s) = self.servers.get(id).cloned() else {
                continue;
            };
            if s.phase == Phase::Build && s.delete_at.is_none() && s.boot_done_at <= now {
                let t = s.boot_done_at;
                let pool = s.tag(&config.pool_tag_key).map(str::to_string);
                if let Some(m) = self.servers.get_mut(id) {
                    m.phase = Phase::Active;
                    m.launched_at = Some(t);
                    m.updated = t;
                }
                self.billing.insert(
                    id.clone(),
                    BillingRec {
                        server_id: id.clone(),
                        name: s.name.clone(),
                        flavor: s.flavor.clone(),
                        pool,
                        spot: s.spot,
                        price_per_hour: s.price_per_hour,
                        start: t,
                        end: None,
                        reclaimed: false,
                    },
                );
                changed = true;
            }
            let s = match self.servers.get(id) {
                Some(s) => s.clone(),
                None => continue,
            };
            if s.phase != Phase::Deleted {
                let del = s.delete_at.filter(|t| *t <= now);
                let rec = s.reclaim_at.filter(|t| *t <= now);
                match (del, rec) {
                    (Some(d), Some(r)) if r < d => {
                        self.terminate(id, r, config.deleted_linger_seconds, true)
                    }
                    (Some(d), _) => self.terminate(id, d, config.deleted_linger_seconds, false),
                    (None, Some(r)) => self.terminate(id, r, config.deleted_linger_seconds, true),
                    (None, None) => {}
                }
                if del.is_some() || rec.is_some() {
                    changed = true;
                }
            }
            if let Some(s) = self.servers.get(id)
                && s.phase == Phase::Deleted
                && s.gone_at.is_some_and(|g| g <= now)
            {
                self.unindex_tags(id);
                self.servers.remove(id);
                changed = true;
            }
        }
        changed
    }

    /// Finishes the sub-jobs whose time has come, and the jobs whose sub-jobs all finished.
    fn advance_jobs(&mut self, now: DateTime<Utc>) -> bool {
        let mut changed = false;
        for job in self.jobs.values_mut() {
            if job.state != JobState::Running {
                continue;
            }
            for sj in job.sub_jobs.iter_mut() {
                if sj.state == JobState::Running && sj.done_at <= now {
                    sj.state = if sj.error_code.is_some() {
                        JobState::Fail
                    } else {
                        JobState::Success
                    };
                    changed = true;
                }
            }
            if job.sub_jobs.iter().all(|s| s.state != JobState::Running) {
                job.state = if job.sub_jobs.iter().any(|s| s.state == JobState::Fail) {
                    JobState::Fail
                } else {
                    JobState::Success
                };
                job.end = job.sub_jobs.iter().map(|s| s.done_at).max().or(Some(now));
                if let (Some(d), Some(e)) = (self.housekeeping_due, job.end) {
                    self.housekeeping_due = Some(d.min(e + Duration::hours(JOB_TTL_HOURS)));
                }
                changed = true;
            }
        }
        changed
    }

    /// Servers counted against the quota: `(instances, vcpus, ram_mb)`.
    pub fn usage(&self) -> (u32, u32, u64) {
        let mut n = 0;
        let mut cpu = 0;
        let mut ram = 0;
        for s in self.servers.values().filter(|s| s.phase != Phase::Deleted) {
            n += 1;
            if let Some(f) = crate::flavors::find(&s.flavor) {
                cpu += f.vcpus;
                ram += u64::from(f.memory_gib) * 1024;
            }
        }
        (n, cpu, ram)
    }
}

/// Seconds as a chrono duration (millisecond precision).
pub fn ms(seconds: f64) -> Duration {
    Duration::milliseconds((seconds * 1000.0).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(id: &str, pool: &str, now: DateTime<Utc>) -> ServerRec {
        ServerRec {
            id: id.into(),
            name: id.into(),
            flavor: "x1.1u.1g".into(),
            image: "img".into(),
            vpc_id: "vpc".into(),
            subnet_ids: vec!["subnet".into()],
            security_groups: Vec::new(),
            availability_zone: "az1".into(),
            key_name: None,
            tags: vec![("flexus-pool".into(), pool.into())],
            metadata: BTreeMap::new(),
            ip: "192.168.0.2".into(),
            phase: Phase::Active,
            created: now,
            updated: now,
            boot_done_at: now,
            launched_at: Some(now),
            warmup_s: 0.0,
            spot: false,
            price_per_hour: 0.0,
            delete_at: None,
            terminated_at: None,
            gone_at: None,
            reclaim_notice_at: None,
            reclaim_at: None,
        }
    }

    fn ids(v: Option<Vec<&ServerRec>>) -> Vec<String> {
        v.unwrap_or_default().iter().map(|s| s.id.clone()).collect()
    }

    #[test]
    fn quiet_advances_skip_the_scan_but_never_miss_a_due_boot_or_a_new_delete() {
        let t0 = Utc::now();
        let cfg = EmulatorConfig::default();
        let mut rng = rand::rng();
        let mut st = State::new(t0, &cfg);
        let mut b = server("b", "web", t0);
        b.phase = Phase::Build;
        b.launched_at = None;
        b.boot_done_at = t0 + Duration::seconds(10);
        st.servers.insert("b".into(), b);
        st.events_changed();
        st.advance(t0 + Duration::seconds(1), &cfg, &mut rng);
        assert_eq!(st.quiet_until, Some(t0 + Duration::seconds(10)));
        st.advance(t0 + Duration::seconds(5), &cfg, &mut rng);
        assert_eq!(st.servers["b"].phase, Phase::Build);
        st.advance(t0 + Duration::seconds(10), &cfg, &mut rng);
        assert_eq!(st.servers["b"].phase, Phase::Active);
        assert_eq!(st.quiet_until, Some(DateTime::<Utc>::MAX_UTC));
        // A delete set from outside announces itself.
        if let Some(s) = st.servers.get_mut("b") {
            s.delete_at = Some(t0 + Duration::seconds(12));
        }
        st.events_changed();
        st.advance(t0 + Duration::seconds(13), &cfg, &mut rng);
        assert_eq!(st.servers["b"].phase, Phase::Deleted);
    }

    #[test]
    fn tag_index_holds_every_current_pair_and_forgets_removed_servers() {
        let now = Utc::now();
        let cfg = EmulatorConfig::default();
        let mut st = State::new(now, &cfg);
        st.servers.insert("a".into(), server("a", "web", now));
        assert_eq!(st.maybe_tagged("flexus-pool=web").map(|v| v.len()), None);
        st.ensure_tag_index();
        st.servers.insert("b".into(), server("b", "web", now));
        st.index_tags("b");
        assert_eq!(ids(st.maybe_tagged("flexus-pool=web")), ["a", "b"]);
        // A tag change adds the new pair; the old entry may stay (readers re-check).
        if let Some(s) = st.servers.get_mut("b") {
            s.tags = vec![("flexus-pool".into(), "api".into())];
        }
        st.index_tags("b");
        assert_eq!(ids(st.maybe_tagged("flexus-pool=api")), ["b"]);
        // A server that expires leaves the index.
        if let Some(s) = st.servers.get_mut("a") {
            s.phase = Phase::Deleted;
            s.gone_at = Some(now);
        }
        st.advance(now + Duration::seconds(1), &cfg, &mut rand::rng());
        assert!(!st.servers.contains_key("a"));
        assert_eq!(ids(st.maybe_tagged("flexus-pool=web")), ["b"]);
        assert!(ids(st.maybe_tagged("flexus-pool=missing")).is_empty());
    }
}
