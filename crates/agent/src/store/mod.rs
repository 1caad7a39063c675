//! Durable state of the agent, behind the typed [`Store`] trait, with one SQL
//! implementation ([`SqlStore`]) for SQLite (the embedded, single-agent default) and
//! PostgreSQL (several agents sharing the work through per-pool leases).
//!
//! What lives here: namespaces, pool specs, policies (recent versions), operations (each
//! cloud mutation, written before it is made), the decision log, per-pool runtime state
//! (the decision engine's history — cooldown timers and recent recommendations — plus
//! the last reported status), metric datapoints pushed through the API (bounded), each
//! predictive pool's bucketed forecast history, the pool leases, and the operator's
//! data: hourly usage rollups and the advisor's answers; tune jobs.
//!
//! Rules:
//! - Everything is read back as the type it was written as; a stored value that does
//!   not parse is a [`StoreError::Corrupt`] naming the object, never a default.
//! - A write either commits or is refused with an error; a connection whose
//!   transaction did not commit is closed, never reused (see [`tx`]).
//! - Writes of what the reconciler owns (operations, decisions, runtime state,
//!   forecast history, purging a pool) and the usage rollups of a pool are *fenced*:
//!   they commit only while this
//!   store's lease on the pool is the current one (see [`lease`] and
//!   `docs/design/leases.md`).
//! - Every write takes its timestamp as an argument; lease expiry alone is measured
//!   on the database's clock, so that agents need not agree on the time.
//!
//! Layout: this file (trait and types), [`sql`] (the implementation), [`tx`] (write
//! transactions and commit health), [`lease`] (the lease table kept in memory), [`usage`]
//! (the operator's stored shapes and their SQL).

pub mod jobs;
pub mod lease;
pub mod sql;
pub mod tx;
pub mod usage;

use std::time::Duration;

use async_trait::async_trait;
use flexus_api::{DecisionRecord, Namespace, Operation, PolicySpec, PoolSpec, PoolStatus};
use flexus_cloud::CreateServersRequest;
use flexus_policy::forecast::buckets::Bucket;

pub use jobs::{Interrupted, TUNE_JOBS_KEEP, Tracked};
pub use lease::{Fence, LeaseConfig, LeaseSync};
pub use sql::SqlStore;
pub use tx::StoreHealth;
pub use usage::{ADVICE_KEEP, UsageHour, UsageSample, UsageScope};

/// The SQLite store (the same implementation as every other backend).
pub type SqliteStore = SqlStore;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("failed to open the store at {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("failed to migrate the store: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("store query failed ({what}): {source}")]
    Query {
        what: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("stored {what} is corrupt: {reason}")]
    Corrupt { what: String, reason: String },
    /// The object's version is not the expected one (or it exists when it must not).
    #[error("{what} {key} changed: expected {expected}, found {found}")]
    PreconditionFailed {
        what: &'static str,
        key: String,
        expected: String,
        found: String,
    },
    #[error("{what} {key} conflicts: {reason}")]
    Conflict {
        what: &'static str,
        key: String,
        reason: String,
    },
    #[error("{what} {key} not found")]
    NotFound { what: &'static str, key: String },
    /// A fenced write for a pool whose lease this agent does not hold (any more).
    #[error("pool {pool} is not leased to this agent ({reason}); the write was refused")]
    Fenced { pool: String, reason: String },
}

impl StoreError {
    /// The store could not run or commit the statement (as opposed to refusing it).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Query { .. } | StoreError::Open { .. })
    }
}

/// Expected version of an object being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Any,
    Version(u64),
    Absent,
}

/// A stored, versioned spec (pool or policy).
#[derive(Debug, Clone, PartialEq)]
pub struct Doc<S> {
    pub namespace: String,
    pub name: String,
    pub version: u64,
    pub spec: S,
    pub created_at: String,
    pub updated_at: String,
    /// Pools only: being deleted (instances are being removed).
    pub deleting: bool,
}

/// A stored pool.
pub type PoolDoc = Doc<PoolSpec>;
/// A stored policy (the pool it scales is `spec.pool`).
pub type PolicyDoc = Doc<PolicySpec>;

/// An operation with the pool it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct OpRecord {
    pub namespace: String,
    pub pool: String,
    pub op: Operation,
    /// A create's exact cloud request, so that a retry after a crash sends the same
    /// body with the same client token. Kept only while the operation is open: a
    /// final operation needs no resend, so its body is dropped.
    pub request: Option<CreateServersRequest>,
    /// A `refresh` operation's progress, updated as it goes (`None` for other kinds).
    pub progress: Option<RefreshProgress>,
}

/// What an instance refresh keeps in its journal entry, so that a restarted agent
/// carries on where it stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RefreshProgress {
    /// Template hash the instances are being moved to.
    pub template: String,
    /// Batches of replacements launched so far.
    pub batch: u32,
}

/// Per-pool runtime state.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RuntimeState {
    /// The decision engine's history (cooldowns, stabilisation windows).
    pub history: flexus_policy::History,
    /// The last status written by the reconciler.
    pub status: PoolStatus,
}

/// Pushed datapoints older than this are dropped (and refused on push).
pub const PUSH_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// At most this many pushed datapoints are kept per pool and metric (the newest).
pub const PUSH_KEEP: u32 = 10_000;

/// A datapoint pushed through the API.
#[derive(Debug, Clone, PartialEq)]
pub struct PushedPoint {
    pub metric: String,
    /// When it was measured (ms since the epoch).
    pub at: i64,
    pub value: f64,
}

/// Which metric a pool's forecast history is of, and how far it goes.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastHeader {
    pub metric: String,
    pub bucket_seconds: f64,
    /// The newest sample taken into the history (ms), so none is counted twice.
    pub last_sample_ms: Option<i64>,
}

/// A pool's stored forecast history.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastHistory {
    pub header: ForecastHeader,
    /// Oldest first.
    pub buckets: Vec<Bucket>,
}

/// How long finished records are kept (`[retention]` in agent.toml).
#[derive(Debug, Clone, PartialEq)]
pub struct Retention {
    /// Final operations (succeeded, failed, abandoned) older than this are deleted.
    pub operations_max_age: Duration,
    /// At most this many final operations are kept per pool (the newest).
    pub operations_keep: u32,
    /// Policy versions older than this are deleted (the current version never is).
    pub policy_versions_max_age: Duration,
    /// At most this many versions are kept per policy (the newest).
    pub policy_versions_keep: u32,
    /// Hourly usage rollups of hours that ended longer ago than this are deleted
    /// (`cost.retention`); a deleted pool's rollups stay until then (they are what it
    /// cost).
    pub usage_max_age: Duration,
    /// How often the age-based pruning runs.
    pub prune_every: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            operations_max_age: Duration::from_secs(7 * 24 * 3600),
            operations_keep: 200,
            policy_versions_max_age: Duration::from_secs(30 * 24 * 3600),
            policy_versions_keep: 20,
            usage_max_age: Duration::from_secs(7 * 24 * 3600),
            prune_every: Duration::from_secs(600),
        }
    }
}

/// What one pruning run deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pruned {
    pub operations: u64,
    pub policy_versions: u64,
    /// Hourly usage rollups (each with its samples).
    pub usage_hours: u64,
    /// Answers of the advisor about pools that no longer exist.
    pub advice: u64,
    /// Tune jobs of pools that no longer exist.
    pub tune_jobs: u64,
}

impl Pruned {
    /// Rows deleted in all.
    pub fn total(&self) -> u64 {
        self.operations + self.policy_versions + self.usage_hours + self.advice + self.tune_jobs
    }
}

/// The agent's durable state.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// Whether the last write committed.
    fn health(&self) -> StoreHealth;
    /// Commit a tiny write (at `now`) to find out whether the store can commit; updates
    /// [`Store::health`].
    async fn probe(&self, now: &str) -> Result<(), StoreError>;

    async fn ensure_namespace(&self, ns: &str, now: &str) -> Result<(), StoreError>;
    async fn list_namespaces(&self) -> Result<Vec<Namespace>, StoreError>;

    async fn put_pool(
        &self,
        ns: &str,
        name: &str,
        spec: &PoolSpec,
        expect: Expect,
        now: &str,
    ) -> Result<PoolDoc, StoreError>;
    async fn get_pool(&self, ns: &str, name: &str) -> Result<Option<PoolDoc>, StoreError>;
    /// Pools of one namespace, or of all namespaces.
    async fn list_pools(&self, ns: Option<&str>) -> Result<Vec<PoolDoc>, StoreError>;
    /// Mark a pool as being deleted; the reconciler removes its instances, then purges it.
    async fn mark_pool_deleting(
        &self,
        ns: &str,
        name: &str,
        expect: Expect,
        now: &str,
    ) -> Result<PoolDoc, StoreError>;
    /// Remove every trace of a pool — spec, state, decisions, operations, pushed
    /// metrics, forecast, the advisor's answers, tune jobs, lease — once its instances are gone
    /// (fenced). Its usage rollups stay until retention deletes them.
    async fn purge_pool(&self, ns: &str, name: &str) -> Result<(), StoreError>;

    /// Write a policy (it scales `spec.pool`); the newest `keep` versions are kept.
    async fn put_policy(
        &self,
        ns: &str,
        name: &str,
        spec: &PolicySpec,
        expect: Expect,
        now: &str,
    ) -> Result<PolicyDoc, StoreError>;
    async fn get_policy(&self, ns: &str, name: &str) -> Result<Option<PolicyDoc>, StoreError>;
    async fn list_policies(&self, ns: &str) -> Result<Vec<PolicyDoc>, StoreError>;
    async fn policy_for_pool(&self, ns: &str, pool: &str) -> Result<Option<PolicyDoc>, StoreError>;
    /// The kept versions of a policy, oldest first.
    async fn policy_versions(&self, ns: &str, name: &str) -> Result<Vec<PolicyDoc>, StoreError>;
    async fn delete_policy(&self, ns: &str, name: &str, expect: Expect) -> Result<(), StoreError>;

    /// Journal a new operation (fenced); the pool's oldest final operations beyond the
    /// retention count go.
    async fn insert_operation(&self, op: &OpRecord) -> Result<(), StoreError>;
    /// Record an operation's progress (fenced); a final one loses its request body.
    async fn update_operation(&self, op: &OpRecord) -> Result<(), StoreError>;
    /// Operations not in a final state, oldest first (all pools when `pool` is `None`).
    async fn open_operations(
        &self,
        pool: Option<(&str, &str)>,
    ) -> Result<Vec<OpRecord>, StoreError>;
    async fn list_operations(
        &self,
        ns: &str,
        pool: &str,
        limit: u32,
    ) -> Result<Vec<OpRecord>, StoreError>;

    /// Append a decision (fenced); returns its id. Keeps at most `keep` decisions per pool.
    async fn insert_decision(
        &self,
        ns: &str,
        pool: &str,
        rec: &DecisionRecord,
        keep: u32,
    ) -> Result<i64, StoreError>;
    /// Decisions newest first, with ids below `before` when given.
    async fn list_decisions(
        &self,
        ns: &str,
        pool: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<DecisionRecord>, StoreError>;

    async fn get_runtime(&self, ns: &str, pool: &str) -> Result<Option<RuntimeState>, StoreError>;
    /// Write the pool's runtime state (fenced).
    async fn put_runtime(&self, ns: &str, pool: &str, st: &RuntimeState) -> Result<(), StoreError>;

    /// Store pushed datapoints (a datapoint with the same metric and time replaces the
    /// old one), then drop the pool's datapoints measured before `drop_before_ms` and
    /// keep at most `keep` per metric (the newest).
    async fn insert_pushed(
        &self,
        ns: &str,
        pool: &str,
        points: &[PushedPoint],
        drop_before_ms: i64,
        keep: u32,
    ) -> Result<(), StoreError>;
    /// Pushed datapoints measured at or after `since_ms`, oldest first.
    async fn pushed_since(
        &self,
        ns: &str,
        pool: &str,
        since_ms: i64,
    ) -> Result<Vec<PushedPoint>, StoreError>;

    /// The pool's forecast history, if it has one.
    async fn get_forecast(
        &self,
        ns: &str,
        pool: &str,
    ) -> Result<Option<ForecastHistory>, StoreError>;
    /// Write the header, upsert the `changed` buckets and delete buckets that start
    /// before `drop_before_s` (fenced). With `reset`, every stored bucket is deleted
    /// first (the metric or the bucket length changed).
    async fn put_forecast(
        &self,
        ns: &str,
        pool: &str,
        header: &ForecastHeader,
        changed: &[Bucket],
        drop_before_s: f64,
        reset: bool,
    ) -> Result<(), StoreError>;

    /// Delete what the retention keeps no longer (at `now_ms`).
    async fn prune(&self, now_ms: i64) -> Result<Pruned, StoreError>;

    /// Write (replace) hourly usage rollups, all or none. Fenced: every row's pool must
    /// be leased to this agent (the usage recorder samples only the pools it holds).
    async fn put_usage_hours(&self, rows: &[UsageHour]) -> Result<(), StoreError>;
    /// Usage rollups of `scope` with `from_hour <= hour <= to_hour`, ordered by pool and
    /// hour; samples only when `with_samples`.
    async fn usage_hours(
        &self,
        scope: UsageScope<'_>,
        from_hour: i64,
        to_hour: i64,
        with_samples: bool,
    ) -> Result<Vec<UsageHour>, StoreError>;
    /// Rollups of `scope` over `[from_hour, to_hour]` summed per pool (no samples; `hour`
    /// is the pool's newest, `flavor` that hour's): what a report over many pools reads.
    async fn usage_totals(
        &self,
        scope: UsageScope<'_>,
        from_hour: i64,
        to_hour: i64,
    ) -> Result<Vec<UsageHour>, StoreError>;
    /// Write (replace by id) an answer of the advisor; the newest [`ADVICE_KEEP`] per
    /// pool are kept. Not fenced: answers are written by the agent that was asked.
    async fn put_advice(
        &self,
        ns: &str,
        pool: &str,
        advice: &flexus_api::Advice,
        created_ms: i64,
    ) -> Result<(), StoreError>;
    /// The newest answers of the advisor for a pool, newest first, each with whether
    /// the agent session answering it is alive.
    async fn list_advice(
        &self,
        ns: &str,
        pool: &str,
        limit: u32,
    ) -> Result<Vec<Tracked<flexus_api::Advice>>, StoreError>;

    /// Write (replace by id) a tune job, as run by this agent's session; the newest
    /// [`TUNE_JOBS_KEEP`] per pool are kept. Not fenced: a job is written by the agent
    /// that accepted it.
    async fn put_tune_job(
        &self,
        ns: &str,
        pool: &str,
        job: &flexus_api::TuneJob,
        created_ms: i64,
    ) -> Result<(), StoreError>;
    /// A tune job of a pool, with whether the session running it is alive.
    async fn get_tune_job(
        &self,
        ns: &str,
        pool: &str,
        id: &str,
    ) -> Result<Option<Tracked<flexus_api::TuneJob>>, StoreError>;
    /// The newest tune jobs of a pool, newest first, each with whether the session
    /// running it is alive.
    async fn list_tune_jobs(
        &self,
        ns: &str,
        pool: &str,
        limit: u32,
    ) -> Result<Vec<Tracked<flexus_api::TuneJob>>, StoreError>;

    /// The oldest running tune jobs (at most `limit`) whose agent session is gone
    /// (stopped, killed, or restarted under a new session), not this agent's own. Empty
    /// for a store without agent sessions.
    async fn interrupted_tune_jobs(&self, limit: u32) -> Result<Vec<Interrupted>, StoreError>;
    /// Write `job` over the interrupted job `was`, as run by this agent's session, if
    /// nobody changed it since it was read: true when this agent took it over, false
    /// when another agent did first (or its runner wrote it meanwhile).
    async fn take_over_tune_job(
        &self,
        was: &Interrupted,
        job: &flexus_api::TuneJob,
    ) -> Result<bool, StoreError>;

    /// Renew this agent's leases, give up its surplus and claim free or expired pools
    /// up to its fair share; see [`lease`].
    async fn sync_leases(&self) -> Result<LeaseSync, StoreError>;
    /// Claim one pool that nobody holds (a pool just created through this agent's API),
    /// if this agent is below its fair share; true when it holds the pool now.
    async fn claim_pool(&self, ns: &str, pool: &str) -> Result<bool, StoreError>;
    /// Whether this agent holds a current lease on the pool (known locally, without a
    /// query: a lease counts as lost a safety margin before it expires).
    fn holds(&self, ns: &str, pool: &str) -> bool;
}
