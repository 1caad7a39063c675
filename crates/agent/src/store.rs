//! Durable state of the agent, behind the [`Store`] trait (SQLite now; PostgreSQL can
//! implement the same trait).
//!
//! What lives here: namespaces, pool specs, policies (every version), operations (each
//! cloud mutation, written before it is made), the decision log, and per-pool runtime
//! state (the decision engine's history — cooldown timers and recent recommendations —
//! plus the last reported status), metric datapoints pushed through the API (bounded),
//! and each predictive pool's bucketed forecast history, so that a restarted agent
//! behaves as before.
//!
//! Every write takes its timestamp as an argument: the store never reads a clock.

use std::path::Path;
use std::str::FromStr;

use async_trait::async_trait;
use flexus_api::{DecisionRecord, Namespace, Operation, OperationKind, OperationState, Purchase};
use flexus_policy::forecast::buckets::Bucket;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

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
    Corrupt { what: &'static str, reason: String },
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
}

fn q(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { what, source }
}

/// Whether the store can commit writes, as its last write found out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreHealth {
    /// The last write committed (or none has been tried).
    Ok,
    /// The last write could not be committed (disk full, I/O error, ...); nothing of it
    /// was kept. Cleared by the next write that commits (e.g. [`Store::probe`]).
    Failing { reason: String },
}

/// Shared record of [`StoreHealth`]: set by every write, read by `/readyz` and the
/// runtime (which does not act on the cloud while the store cannot record).
#[derive(Debug, Default)]
struct HealthCell(std::sync::Mutex<Option<String>>);

impl HealthCell {
    fn get(&self) -> StoreHealth {
        match &*self.0.lock().unwrap_or_else(|p| p.into_inner()) {
            None => StoreHealth::Ok,
            Some(reason) => StoreHealth::Failing {
                reason: reason.clone(),
            },
        }
    }

    /// Notes the outcome of a write: a query failure makes the store failing, a write
    /// that committed makes it healthy again. Logical refusals (version mismatch,
    /// conflict, not found) say nothing about the store's health.
    fn note<T>(&self, r: Result<T, StoreError>) -> Result<T, StoreError> {
        let mut cell = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match &r {
            Ok(_) => {
                if cell.take().is_some() {
                    tracing::info!("store commits again");
                }
            }
            Err(e @ StoreError::Query { .. }) => {
                if cell.is_none() {
                    tracing::error!(error = %e, "store cannot commit writes");
                }
                *cell = Some(e.to_string());
            }
            Err(_) => {}
        }
        r
    }
}

/// A write transaction on a pooled connection of its own.
///
/// sqlx's `Transaction` keeps its own count of open transactions per connection and
/// assumes a failed `COMMIT` leaves the transaction open. SQLite may instead roll it
/// back by itself (a full disk), after which sqlx's rollback fails, the count stays one
/// too high, the next `begin()` issues a `SAVEPOINT` (which opens a real transaction),
/// and after a second failed commit the connection is left inside a transaction that
/// is never committed again: later writes were acknowledged, seen by this connection
/// only, held the write lock, and vanished on restart. So the store issues `BEGIN` /
/// `COMMIT` itself, and a connection whose transaction did not commit — a failed
/// statement, a failed `COMMIT`, or a future dropped half-way — is closed, never
/// returned to the pool (closing rolls back whatever is left).
struct WriteTx {
    conn: sqlx::pool::PoolConnection<sqlx::Sqlite>,
    committed: bool,
}

impl WriteTx {
    async fn begin(pool: &sqlx::SqlitePool, what: &'static str) -> Result<Self, StoreError> {
        let mut conn = pool.acquire().await.map_err(q(what))?;
        // IMMEDIATE: take the write lock now, not on the first write.
        if let Err(e) = sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await {
            conn.close_on_drop();
            return Err(q(what)(e));
        }
        Ok(Self {
            conn,
            committed: false,
        })
    }

    async fn commit(mut self) -> Result<(), StoreError> {
        sqlx::query("COMMIT")
            .execute(&mut *self.conn)
            .await
            .map_err(q("commit"))?;
        self.committed = true;
        Ok(())
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::SqliteConnection;
    fn deref(&self) -> &Self::Target {
        &self.conn
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.conn
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        if !self.committed {
            self.conn.close_on_drop();
        }
    }
}

/// Expected version of an object being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Any,
    Version(u64),
    Absent,
}

/// A stored, versioned JSON document (pool spec or policy spec).
#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    pub namespace: String,
    pub name: String,
    pub version: u64,
    pub spec: serde_json::Value,
    pub created_at: String,
    pub updated_at: String,
    /// Pools only: being deleted (instances are being removed).
    pub deleting: bool,
    /// Policies only: the pool the policy scales.
    pub pool: Option<String>,
}

/// An operation with the pool it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct OpRecord {
    pub namespace: String,
    pub pool: String,
    pub op: Operation,
    /// The exact cloud request (JSON), so that a retry after a crash sends the same
    /// body with the same client token.
    pub request: Option<serde_json::Value>,
}

/// Per-pool runtime state.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeState {
    /// The decision engine's history (JSON of `flexus_policy::History`).
    pub history: serde_json::Value,
    /// The last status written by the reconciler (JSON of `flexus_api::PoolStatus`).
    pub status: serde_json::Value,
}

/// Pushed datapoints older than this are dropped (and refused on push).
pub const PUSH_RETENTION: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
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
        spec: &serde_json::Value,
        expect: Expect,
        now: &str,
    ) -> Result<Doc, StoreError>;
    async fn get_pool(&self, ns: &str, name: &str) -> Result<Option<Doc>, StoreError>;
    /// Pools of one namespace, or of all namespaces.
    async fn list_pools(&self, ns: Option<&str>) -> Result<Vec<Doc>, StoreError>;
    /// Mark a pool as being deleted; the reconciler removes its instances, then purges it.
    async fn mark_pool_deleting(
        &self,
        ns: &str,
        name: &str,
        expect: Expect,
        now: &str,
    ) -> Result<Doc, StoreError>;
    /// Remove every trace of a pool (after its instances are gone).
    async fn purge_pool(&self, ns: &str, name: &str) -> Result<(), StoreError>;

    async fn put_policy(
        &self,
        ns: &str,
        name: &str,
        pool: &str,
        spec: &serde_json::Value,
        expect: Expect,
        now: &str,
    ) -> Result<Doc, StoreError>;
    async fn get_policy(&self, ns: &str, name: &str) -> Result<Option<Doc>, StoreError>;
    async fn list_policies(&self, ns: &str) -> Result<Vec<Doc>, StoreError>;
    async fn policy_for_pool(&self, ns: &str, pool: &str) -> Result<Option<Doc>, StoreError>;
    async fn policy_versions(&self, ns: &str, name: &str) -> Result<Vec<Doc>, StoreError>;
    async fn delete_policy(&self, ns: &str, name: &str, expect: Expect) -> Result<(), StoreError>;

    async fn insert_operation(&self, op: &OpRecord) -> Result<(), StoreError>;
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

    /// Append a decision; returns its id. Keeps at most `keep` decisions per pool.
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
    /// before `drop_before_s`. With `reset`, every stored bucket is deleted first (the
    /// metric or the bucket length changed).
    async fn put_forecast(
        &self,
        ns: &str,
        pool: &str,
        header: &ForecastHeader,
        changed: &[Bucket],
        drop_before_s: f64,
        reset: bool,
    ) -> Result<(), StoreError>;
}

/// SQLite implementation (WAL, embedded migrations).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: sqlx::SqlitePool,
    health: std::sync::Arc<HealthCell>,
    /// In-memory databases only: a connection that keeps the database alive.
    anchor: Option<std::sync::Arc<tokio::sync::Mutex<sqlx::SqliteConnection>>>,
}

impl SqliteStore {
    /// Open (creating if needed) and migrate the database at `path`.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(10));
        // One connection: SQLite has one writer at a time anyway, and a single
        // connection avoids busy-wait retries between our own connections.
        Self::with_options(opts, path.display().to_string(), 1).await
    }

    /// A private in-memory database (tests). It lives as long as the store: a spare
    /// connection keeps it open while the pool replaces connections (a write that did
    /// not commit closes its connection).
    pub async fn in_memory() -> Result<Self, StoreError> {
        let url = format!(
            "sqlite:file:flexus-mem-{}?mode=memory&cache=shared",
            uuid::Uuid::new_v4()
        );
        let opts = SqliteConnectOptions::from_str(&url)
            .map_err(|source| StoreError::Open {
                path: ":memory:".into(),
                source,
            })?
            .foreign_keys(true);
        let anchor = {
            use sqlx::Connection as _;
            sqlx::SqliteConnection::connect_with(&opts)
                .await
                .map_err(|source| StoreError::Open {
                    path: ":memory:".into(),
                    source,
                })?
        };
        let mut s = Self::with_options(opts, ":memory:".into(), 1).await?;
        s.anchor = Some(std::sync::Arc::new(tokio::sync::Mutex::new(anchor)));
        Ok(s)
    }

    async fn with_options(
        opts: SqliteConnectOptions,
        path: String,
        conns: u32,
    ) -> Result<Self, StoreError> {
        let pool = SqlitePoolOptions::new()
            .max_connections(conns)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts)
            .await
            .map_err(|source| StoreError::Open { path, source })?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self {
            pool,
            health: Default::default(),
            anchor: None,
        })
    }
}

fn parse_json(what: &'static str, s: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt {
        what,
        reason: e.to_string(),
    })
}

fn doc_from_pool_row(r: &sqlx::sqlite::SqliteRow) -> Result<Doc, StoreError> {
    Ok(Doc {
        namespace: r.get("namespace"),
        name: r.get("name"),
        version: r.get::<i64, _>("version") as u64,
        spec: parse_json("pool spec", r.get::<&str, _>("spec"))?,
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
        deleting: r.get::<i64, _>("deleting") != 0,
        pool: None,
    })
}

fn doc_from_policy_row(r: &sqlx::sqlite::SqliteRow) -> Result<Doc, StoreError> {
    Ok(Doc {
        namespace: r.get("namespace"),
        name: r.get("name"),
        version: r.get::<i64, _>("version") as u64,
        spec: parse_json("policy spec", r.get::<&str, _>("spec"))?,
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
        deleting: false,
        pool: Some(r.get("pool")),
    })
}

/// Creates namespace `ns` if it does not exist yet.
async fn insert_namespace<'c>(
    ex: impl sqlx::SqliteExecutor<'c>,
    ns: &str,
    now: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO namespaces(name, created_at) VALUES (?, ?) ON CONFLICT(name) DO NOTHING",
    )
    .bind(ns)
    .bind(now)
    .execute(ex)
    .await
    .map_err(q("ensure namespace"))?;
    Ok(())
}

/// Runs `sql` (a select of at most one pool or policy row, keyed by two
/// binds) and maps the row with `from_row`.
async fn fetch_doc<'c>(
    ex: impl sqlx::SqliteExecutor<'c>,
    sql: &'static str,
    keys: (&str, &str),
    what: &'static str,
    from_row: fn(&sqlx::sqlite::SqliteRow) -> Result<Doc, StoreError>,
) -> Result<Option<Doc>, StoreError> {
    sqlx::query(sql)
        .bind(keys.0)
        .bind(keys.1)
        .fetch_optional(ex)
        .await
        .map_err(q(what))?
        .as_ref()
        .map(from_row)
        .transpose()
}

const SELECT_POOL: &str = "SELECT * FROM pools WHERE namespace = ? AND name = ?";
const SELECT_POLICY: &str = "SELECT * FROM policies WHERE namespace = ? AND name = ?";

/// A versioned object kind: its name in errors, its single-row select and row mapping.
struct VersionedKind {
    what: &'static str,
    select: &'static str,
    read: &'static str,
    from_row: fn(&sqlx::sqlite::SqliteRow) -> Result<Doc, StoreError>,
}

impl VersionedKind {
    const POOL: Self = Self {
        what: "pool",
        select: SELECT_POOL,
        read: "read pool",
        from_row: doc_from_pool_row,
    };
    const POLICY: Self = Self {
        what: "policy",
        select: SELECT_POLICY,
        read: "read policy",
        from_row: doc_from_policy_row,
    };

    /// The object `key` (namespace, name), if it exists.
    async fn fetch<'c>(
        &self,
        ex: impl sqlx::SqliteExecutor<'c>,
        key: (&str, &str),
    ) -> Result<Option<Doc>, StoreError> {
        fetch_doc(ex, self.select, key, self.read, self.from_row).await
    }
}

/// The document a versioned write stores: the next version of `cur` (or version 1),
/// created when `cur` was (or now), updated now.
fn next_doc(
    (ns, name): (&str, &str),
    cur: Option<&Doc>,
    spec: &serde_json::Value,
    now: &str,
    pool: Option<&str>,
) -> Doc {
    Doc {
        namespace: ns.into(),
        name: name.into(),
        version: cur.map_or(1, |d| d.version + 1),
        spec: spec.clone(),
        created_at: cur.map_or_else(|| now.to_owned(), |d| d.created_at.clone()),
        updated_at: now.into(),
        deleting: false,
        pool: pool.map(Into::into),
    }
}

fn check_expect(
    what: &'static str,
    key: String,
    expect: Expect,
    found: Option<u64>,
) -> Result<(), StoreError> {
    let fail = |expected: String| {
        Err(StoreError::PreconditionFailed {
            what,
            key: key.clone(),
            expected,
            found: found.map_or("no object".into(), |v| format!("version {v}")),
        })
    };
    match (expect, found) {
        (Expect::Any, _) => Ok(()),
        (Expect::Absent, None) => Ok(()),
        (Expect::Absent, Some(_)) => fail("no object".into()),
        (Expect::Version(v), Some(f)) if v == f => Ok(()),
        (Expect::Version(v), _) => fail(format!("version {v}")),
    }
}

fn kind_str(k: OperationKind) -> &'static str {
    match k {
        OperationKind::ScaleOut => "scale_out",
        OperationKind::ScaleIn => "scale_in",
        OperationKind::Replace => "replace",
    }
}
fn state_str(s: OperationState) -> &'static str {
    match s {
        OperationState::Pending => "pending",
        OperationState::Submitted => "submitted",
        OperationState::Succeeded => "succeeded",
        OperationState::Failed => "failed",
        OperationState::Abandoned => "abandoned",
    }
}
fn purchase_str(p: Purchase) -> &'static str {
    match p {
        Purchase::Spot => "spot",
        Purchase::OnDemand => "on_demand",
    }
}

fn op_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<OpRecord, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        what: "operation",
        reason,
    };
    let kind = match r.get::<&str, _>("kind") {
        "scale_out" => OperationKind::ScaleOut,
        "scale_in" => OperationKind::ScaleIn,
        "replace" => OperationKind::Replace,
        k => return Err(corrupt(format!("unknown kind {k:?}"))),
    };
    let state = match r.get::<&str, _>("state") {
        "pending" => OperationState::Pending,
        "submitted" => OperationState::Submitted,
        "succeeded" => OperationState::Succeeded,
        "failed" => OperationState::Failed,
        "abandoned" => OperationState::Abandoned,
        s => return Err(corrupt(format!("unknown state {s:?}"))),
    };
    let purchase = match r.get::<Option<&str>, _>("purchase") {
        None => None,
        Some("spot") => Some(Purchase::Spot),
        Some("on_demand") => Some(Purchase::OnDemand),
        Some(p) => return Err(corrupt(format!("unknown purchase {p:?}"))),
    };
    let server_ids: Vec<String> =
        serde_json::from_str(r.get::<&str, _>("server_ids")).map_err(|e| corrupt(e.to_string()))?;
    let request = r
        .get::<Option<&str>, _>("request")
        .map(|t| serde_json::from_str(t).map_err(|e| corrupt(e.to_string())))
        .transpose()?;
    Ok(OpRecord {
        namespace: r.get("namespace"),
        pool: r.get("pool"),
        request,
        op: Operation {
            id: r.get("id"),
            kind,
            state,
            count: r.get::<i64, _>("count") as u32,
            purchase,
            job_id: r.get("job_id"),
            server_ids,
            error: r.get("error"),
            created_at: r.get("created_at"),
            updated_at: r.get("updated_at"),
        },
    })
}

impl SqliteStore {
    /// Starts a versioned write of a pool or policy: a transaction in which the
    /// namespace exists, the current row is read and the precondition checked.
    async fn begin_versioned(
        &self,
        kind: VersionedKind,
        (ns, name): (&str, &str),
        expect: Expect,
        now: &str,
    ) -> Result<(WriteTx, Option<Doc>), StoreError> {
        let mut tx = WriteTx::begin(&self.pool, "begin versioned write").await?;
        insert_namespace(&mut *tx, ns, now).await?;
        let cur = kind.fetch(&mut *tx, (ns, name)).await?;
        check_expect(
            kind.what,
            format!("{ns}/{name}"),
            expect,
            cur.as_ref().map(|d| d.version),
        )?;
        Ok((tx, cur))
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn health(&self) -> StoreHealth {
        self.health.get()
    }

    async fn probe(&self, now: &str) -> Result<(), StoreError> {
        self.health.note(
            async {
                let mut tx = WriteTx::begin(&self.pool, "begin store probe").await?;
                sqlx::query(
                    "INSERT INTO store_probe(id, at) VALUES (1, ?)
                     ON CONFLICT(id) DO UPDATE SET at = excluded.at",
                )
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(q("write store probe"))?;
                tx.commit().await
            }
            .await,
        )
    }

    async fn ensure_namespace(&self, ns: &str, now: &str) -> Result<(), StoreError> {
        self.health
            .note(async { insert_namespace(&self.pool, ns, now).await }.await)
    }

    async fn list_namespaces(&self) -> Result<Vec<Namespace>, StoreError> {
        let rows = sqlx::query(
            "SELECT n.name AS name,
                    (SELECT COUNT(*) FROM pools p WHERE p.namespace = n.name) AS pools,
                    (SELECT COUNT(*) FROM policies x WHERE x.namespace = n.name) AS policies
             FROM namespaces n ORDER BY n.name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(q("list namespaces"))?;
        Ok(rows
            .iter()
            .map(|r| Namespace {
                name: r.get("name"),
                pools: r.get::<i64, _>("pools") as u64,
                policies: r.get::<i64, _>("policies") as u64,
            })
            .collect())
    }

    async fn put_pool(
        &self,
        ns: &str,
        name: &str,
        spec: &serde_json::Value,
        expect: Expect,
        now: &str,
    ) -> Result<Doc, StoreError> {
        self.health.note(
            async {
                let key = (ns, name);
                let (mut tx, cur) = self
                    .begin_versioned(VersionedKind::POOL, key, expect, now)
                    .await?;
                if cur.as_ref().is_some_and(|d| d.deleting) {
                    return Err(StoreError::Conflict {
                        what: "pool",
                        key: format!("{ns}/{name}"),
                        reason: "it is being deleted; retry when its instances are gone".into(),
                    });
                }
                let doc = next_doc(key, cur.as_ref(), spec, now, None);
                sqlx::query(
                "INSERT INTO pools(namespace, name, version, spec, deleting, created_at, updated_at)
                 VALUES (?, ?, ?, ?, 0, ?, ?)
                 ON CONFLICT(namespace, name) DO UPDATE SET version = excluded.version,
                   spec = excluded.spec, updated_at = excluded.updated_at",
            )
            .bind(ns)
            .bind(name)
            .bind(doc.version as i64)
            .bind(spec.to_string())
            .bind(&doc.created_at)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(q("write pool"))?;
                tx.commit().await?;
                Ok(doc)
            }
            .await,
        )
    }

    async fn get_pool(&self, ns: &str, name: &str) -> Result<Option<Doc>, StoreError> {
        VersionedKind::POOL.fetch(&self.pool, (ns, name)).await
    }

    async fn list_pools(&self, ns: Option<&str>) -> Result<Vec<Doc>, StoreError> {
        let rows = match ns {
            Some(ns) => {
                sqlx::query("SELECT * FROM pools WHERE namespace = ? ORDER BY name")
                    .bind(ns)
                    .fetch_all(&self.pool)
                    .await
            }
            None => {
                sqlx::query("SELECT * FROM pools ORDER BY namespace, name")
                    .fetch_all(&self.pool)
                    .await
            }
        }
        .map_err(q("list pools"))?;
        rows.iter().map(doc_from_pool_row).collect()
    }

    async fn mark_pool_deleting(
        &self,
        ns: &str,
        name: &str,
        expect: Expect,
        now: &str,
    ) -> Result<Doc, StoreError> {
        self.health.note(
            async {
                let mut tx = WriteTx::begin(&self.pool, "begin delete pool").await?;
                let cur = VersionedKind::POOL.fetch(&mut *tx, (ns, name)).await?;
                let Some(mut cur) = cur else {
                    return Err(StoreError::NotFound {
                        what: "pool",
                        key: format!("{ns}/{name}"),
                    });
                };
                check_expect("pool", format!("{ns}/{name}"), expect, Some(cur.version))?;
                sqlx::query(
                "UPDATE pools SET deleting = 1, updated_at = ? WHERE namespace = ? AND name = ?",
            )
            .bind(now)
            .bind(ns)
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(q("mark pool deleting"))?;
                tx.commit().await?;
                cur.deleting = true;
                cur.updated_at = now.into();
                Ok(cur)
            }
            .await,
        )
    }

    async fn purge_pool(&self, ns: &str, name: &str) -> Result<(), StoreError> {
        self.health.note(
            async {
                let mut tx = WriteTx::begin(&self.pool, "begin purge pool").await?;
                for sql in [
                    "DELETE FROM pools WHERE namespace = ? AND name = ?",
                    "DELETE FROM pool_state WHERE namespace = ? AND pool = ?",
                    "DELETE FROM decisions WHERE namespace = ? AND pool = ?",
                    "DELETE FROM pushed_metrics WHERE namespace = ? AND pool = ?",
                    "DELETE FROM forecast_history WHERE namespace = ? AND pool = ?",
                    "DELETE FROM forecast_buckets WHERE namespace = ? AND pool = ?",
                ] {
                    sqlx::query(sql)
                        .bind(ns)
                        .bind(name)
                        .execute(&mut *tx)
                        .await
                        .map_err(q("purge pool"))?;
                }
                tx.commit().await?;
                Ok(())
            }
            .await,
        )
    }

    async fn put_policy(
        &self,
        ns: &str,
        name: &str,
        pool: &str,
        spec: &serde_json::Value,
        expect: Expect,
        now: &str,
    ) -> Result<Doc, StoreError> {
        self.health.note(async {
            let key = (ns, name);
            let (mut tx, cur) = self
                .begin_versioned(VersionedKind::POLICY, key, expect, now)
                .await?;
            let other: Option<String> = sqlx::query_scalar(
                "SELECT name FROM policies WHERE namespace = ? AND pool = ? AND name <> ?",
            )
            .bind(ns)
            .bind(pool)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(q("check policy pool"))?;
            if let Some(other) = other {
                return Err(StoreError::Conflict {
                    what: "policy",
                    key: format!("{ns}/{name}"),
                    reason: format!("pool {pool} is already scaled by policy {other}"),
                });
            }
            let doc = next_doc(key, cur.as_ref(), spec, now, Some(pool));
            let text = spec.to_string();
            sqlx::query(
                "INSERT INTO policies(namespace, name, version, pool, spec, created_at, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT(namespace, name) DO UPDATE SET version = excluded.version,
                   pool = excluded.pool, spec = excluded.spec, updated_at = excluded.updated_at",
            )
            .bind(ns)
            .bind(name)
            .bind(doc.version as i64)
            .bind(pool)
            .bind(&text)
            .bind(&doc.created_at)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(q("write policy"))?;
            sqlx::query(
                "INSERT INTO policy_versions(namespace, name, version, spec, created_at) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(ns)
            .bind(name)
            .bind(doc.version as i64)
            .bind(&text)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(q("write policy version"))?;
            tx.commit().await?;
            Ok(doc)
        }.await)
    }

    async fn get_policy(&self, ns: &str, name: &str) -> Result<Option<Doc>, StoreError> {
        VersionedKind::POLICY.fetch(&self.pool, (ns, name)).await
    }

    async fn list_policies(&self, ns: &str) -> Result<Vec<Doc>, StoreError> {
        sqlx::query("SELECT * FROM policies WHERE namespace = ? ORDER BY name")
            .bind(ns)
            .fetch_all(&self.pool)
            .await
            .map_err(q("list policies"))?
            .iter()
            .map(doc_from_policy_row)
            .collect()
    }

    async fn policy_for_pool(&self, ns: &str, pool: &str) -> Result<Option<Doc>, StoreError> {
        fetch_doc(
            &self.pool,
            "SELECT * FROM policies WHERE namespace = ? AND pool = ?",
            (ns, pool),
            "read policy of pool",
            doc_from_policy_row,
        )
        .await
    }

    async fn policy_versions(&self, ns: &str, name: &str) -> Result<Vec<Doc>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM policy_versions WHERE namespace = ? AND name = ? ORDER BY version",
        )
        .bind(ns)
        .bind(name)
        .fetch_all(&self.pool)
        .await
        .map_err(q("list policy versions"))?;
        rows.iter()
            .map(|r| {
                Ok(Doc {
                    namespace: r.get("namespace"),
                    name: r.get("name"),
                    version: r.get::<i64, _>("version") as u64,
                    spec: parse_json("policy version", r.get::<&str, _>("spec"))?,
                    created_at: r.get("created_at"),
                    updated_at: r.get("created_at"),
                    deleting: false,
                    pool: None,
                })
            })
            .collect()
    }

    async fn delete_policy(&self, ns: &str, name: &str, expect: Expect) -> Result<(), StoreError> {
        self.health.note(
            async {
                let mut tx = WriteTx::begin(&self.pool, "begin delete policy").await?;
                let cur: Option<i64> = sqlx::query_scalar(
                    "SELECT version FROM policies WHERE namespace = ? AND name = ?",
                )
                .bind(ns)
                .bind(name)
                .fetch_optional(&mut *tx)
                .await
                .map_err(q("read policy"))?;
                let Some(cur) = cur else {
                    return Err(StoreError::NotFound {
                        what: "policy",
                        key: format!("{ns}/{name}"),
                    });
                };
                check_expect("policy", format!("{ns}/{name}"), expect, Some(cur as u64))?;
                // The versions go with the policy: a policy created later under the same name
                // starts a new history at version 1.
                for sql in [
                    "DELETE FROM policies WHERE namespace = ? AND name = ?",
                    "DELETE FROM policy_versions WHERE namespace = ? AND name = ?",
                ] {
                    sqlx::query(sql)
                        .bind(ns)
                        .bind(name)
                        .execute(&mut *tx)
                        .await
                        .map_err(q("delete policy"))?;
                }
                tx.commit().await?;
                Ok(())
            }
            .await,
        )
    }

    async fn insert_operation(&self, r: &OpRecord) -> Result<(), StoreError> {
        self.health.note(
            async {
                let op = &r.op;
                sqlx::query(
                "INSERT INTO operations(id, namespace, pool, kind, state, count, purchase, job_id,
                    server_ids, error, created_at, updated_at, request)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&op.id)
            .bind(&r.namespace)
            .bind(&r.pool)
            .bind(kind_str(op.kind))
            .bind(state_str(op.state))
            .bind(op.count as i64)
            .bind(op.purchase.map(purchase_str))
            .bind(&op.job_id)
            .bind(serde_json::to_string(&op.server_ids).unwrap_or_else(|_| "[]".into()))
            .bind(&op.error)
            .bind(&op.created_at)
            .bind(&op.updated_at)
            .bind(r.request.as_ref().map(|v| v.to_string()))
            .execute(&self.pool)
            .await
            .map_err(q("insert operation"))?;
                Ok(())
            }
            .await,
        )
    }

    async fn update_operation(&self, r: &OpRecord) -> Result<(), StoreError> {
        self.health.note(async {
            let op = &r.op;
            let done = sqlx::query(
                "UPDATE operations SET state = ?, count = ?, purchase = ?, job_id = ?, server_ids = ?,
                    error = ?, updated_at = ? WHERE id = ?",
            )
            .bind(state_str(op.state))
            .bind(op.count as i64)
            .bind(op.purchase.map(purchase_str))
            .bind(&op.job_id)
            .bind(serde_json::to_string(&op.server_ids).unwrap_or_else(|_| "[]".into()))
            .bind(&op.error)
            .bind(&op.updated_at)
            .bind(&op.id)
            .execute(&self.pool)
            .await
            .map_err(q("update operation"))?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound {
                    what: "operation",
                    key: op.id.clone(),
                });
            }
            Ok(())
        }.await)
    }

    async fn open_operations(
        &self,
        pool: Option<(&str, &str)>,
    ) -> Result<Vec<OpRecord>, StoreError> {
        let rows = match pool {
            Some((ns, p)) => sqlx::query(
                "SELECT * FROM operations WHERE state IN ('pending', 'submitted')
                   AND namespace = ? AND pool = ? ORDER BY created_at, id",
            )
            .bind(ns)
            .bind(p)
            .fetch_all(&self.pool)
            .await,
            None => sqlx::query(
                "SELECT * FROM operations WHERE state IN ('pending', 'submitted') ORDER BY created_at, id",
            )
            .fetch_all(&self.pool)
            .await,
        }
        .map_err(q("list open operations"))?;
        rows.iter().map(op_from_row).collect()
    }

    async fn list_operations(
        &self,
        ns: &str,
        pool: &str,
        limit: u32,
    ) -> Result<Vec<OpRecord>, StoreError> {
        sqlx::query(
            "SELECT * FROM operations WHERE namespace = ? AND pool = ?
             ORDER BY created_at DESC, id DESC LIMIT ?",
        )
        .bind(ns)
        .bind(pool)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(q("list operations"))?
        .iter()
        .map(op_from_row)
        .collect()
    }

    async fn insert_decision(
        &self,
        ns: &str,
        pool: &str,
        rec: &DecisionRecord,
        keep: u32,
    ) -> Result<i64, StoreError> {
        self.health.note(
            async {
                let mut tx = WriteTx::begin(&self.pool, "begin insert decision").await?;
                let text = serde_json::to_string(rec).map_err(|e| StoreError::Corrupt {
                    what: "decision",
                    reason: e.to_string(),
                })?;
                let id =
                    sqlx::query("INSERT INTO decisions(namespace, pool, record) VALUES (?, ?, ?)")
                        .bind(ns)
                        .bind(pool)
                        .bind(text)
                        .execute(&mut *tx)
                        .await
                        .map_err(q("insert decision"))?
                        .last_insert_rowid();
                if id % 16 == 0 {
                    sqlx::query(
                        "DELETE FROM decisions WHERE namespace = ? AND pool = ? AND id < (
                       SELECT id FROM decisions WHERE namespace = ? AND pool = ?
                       ORDER BY id DESC LIMIT 1 OFFSET ?)",
                    )
                    .bind(ns)
                    .bind(pool)
                    .bind(ns)
                    .bind(pool)
                    .bind(keep.saturating_sub(1) as i64)
                    .execute(&mut *tx)
                    .await
                    .map_err(q("trim decisions"))?;
                }
                tx.commit().await?;
                Ok(id)
            }
            .await,
        )
    }

    async fn list_decisions(
        &self,
        ns: &str,
        pool: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<DecisionRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, record FROM decisions WHERE namespace = ? AND pool = ? AND id < ?
             ORDER BY id DESC LIMIT ?",
        )
        .bind(ns)
        .bind(pool)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(q("list decisions"))?;
        rows.iter()
            .map(|r| {
                let mut rec: DecisionRecord = serde_json::from_str(r.get::<&str, _>("record"))
                    .map_err(|e| StoreError::Corrupt {
                        what: "decision",
                        reason: e.to_string(),
                    })?;
                rec.id = r.get("id");
                Ok(rec)
            })
            .collect()
    }

    async fn get_runtime(&self, ns: &str, pool: &str) -> Result<Option<RuntimeState>, StoreError> {
        let row =
            sqlx::query("SELECT history, status FROM pool_state WHERE namespace = ? AND pool = ?")
                .bind(ns)
                .bind(pool)
                .fetch_optional(&self.pool)
                .await
                .map_err(q("read pool state"))?;
        row.map(|r| {
            Ok(RuntimeState {
                history: parse_json("pool history", r.get::<&str, _>("history"))?,
                status: parse_json("pool status", r.get::<&str, _>("status"))?,
            })
        })
        .transpose()
    }

    async fn put_runtime(&self, ns: &str, pool: &str, st: &RuntimeState) -> Result<(), StoreError> {
        self.health.note(async {
            sqlx::query(
                "INSERT INTO pool_state(namespace, pool, history, status) VALUES (?, ?, ?, ?)
                 ON CONFLICT(namespace, pool) DO UPDATE SET history = excluded.history, status = excluded.status",
            )
            .bind(ns)
            .bind(pool)
            .bind(st.history.to_string())
            .bind(st.status.to_string())
            .execute(&self.pool)
            .await
            .map_err(q("write pool state"))?;
            Ok(())
        }.await)
    }

    async fn insert_pushed(
        &self,
        ns: &str,
        pool: &str,
        points: &[PushedPoint],
        drop_before_ms: i64,
        keep: u32,
    ) -> Result<(), StoreError> {
        self.health.note(async {
            let mut tx = WriteTx::begin(&self.pool, "begin push metrics").await?;
            for p in points {
                sqlx::query(
                    "INSERT INTO pushed_metrics(namespace, pool, metric, at_ms, value) VALUES (?, ?, ?, ?, ?)
                     ON CONFLICT(namespace, pool, metric, at_ms) DO UPDATE SET value = excluded.value",
                )
                .bind(ns)
                .bind(pool)
                .bind(&p.metric)
                .bind(p.at)
                .bind(p.value)
                .execute(&mut *tx)
                .await
                .map_err(q("insert pushed metric"))?;
            }
            sqlx::query("DELETE FROM pushed_metrics WHERE namespace = ? AND pool = ? AND at_ms < ?")
                .bind(ns)
                .bind(pool)
                .bind(drop_before_ms)
                .execute(&mut *tx)
                .await
                .map_err(q("expire pushed metrics"))?;
            let mut metrics: Vec<&str> = points.iter().map(|p| p.metric.as_str()).collect();
            metrics.sort_unstable();
            metrics.dedup();
            for m in metrics {
                sqlx::query(
                    "DELETE FROM pushed_metrics WHERE namespace = ? AND pool = ? AND metric = ? AND at_ms < (
                       SELECT at_ms FROM pushed_metrics WHERE namespace = ? AND pool = ? AND metric = ?
                       ORDER BY at_ms DESC LIMIT 1 OFFSET ?)",
                )
                .bind(ns)
                .bind(pool)
                .bind(m)
                .bind(ns)
                .bind(pool)
                .bind(m)
                .bind(keep.saturating_sub(1) as i64)
                .execute(&mut *tx)
                .await
                .map_err(q("trim pushed metrics"))?;
            }
            tx.commit().await?;
            Ok(())
        }.await)
    }

    async fn pushed_since(
        &self,
        ns: &str,
        pool: &str,
        since_ms: i64,
    ) -> Result<Vec<PushedPoint>, StoreError> {
        let rows = sqlx::query(
            "SELECT metric, at_ms, value FROM pushed_metrics
             WHERE namespace = ? AND pool = ? AND at_ms >= ? ORDER BY at_ms, metric",
        )
        .bind(ns)
        .bind(pool)
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(q("read pushed metrics"))?;
        Ok(rows
            .iter()
            .map(|r| PushedPoint {
                metric: r.get("metric"),
                at: r.get("at_ms"),
                value: r.get("value"),
            })
            .collect())
    }

    async fn get_forecast(
        &self,
        ns: &str,
        pool: &str,
    ) -> Result<Option<ForecastHistory>, StoreError> {
        let Some(h) = sqlx::query(
            "SELECT metric, bucket_seconds, last_sample_ms FROM forecast_history
             WHERE namespace = ? AND pool = ?",
        )
        .bind(ns)
        .bind(pool)
        .fetch_optional(&self.pool)
        .await
        .map_err(q("read forecast history"))?
        else {
            return Ok(None);
        };
        let buckets = sqlx::query(
            "SELECT start_s, peak, covered, sum FROM forecast_buckets
             WHERE namespace = ? AND pool = ? ORDER BY start_s",
        )
        .bind(ns)
        .bind(pool)
        .fetch_all(&self.pool)
        .await
        .map_err(q("read forecast buckets"))?
        .iter()
        .map(|r| Bucket {
            start: r.get("start_s"),
            peak: r.get("peak"),
            covered: r.get("covered"),
            sum: r.get("sum"),
        })
        .collect();
        Ok(Some(ForecastHistory {
            header: ForecastHeader {
                metric: h.get("metric"),
                bucket_seconds: h.get("bucket_seconds"),
                last_sample_ms: h.get("last_sample_ms"),
            },
            buckets,
        }))
    }

    async fn put_forecast(
        &self,
        ns: &str,
        pool: &str,
        header: &ForecastHeader,
        changed: &[Bucket],
        drop_before_s: f64,
        reset: bool,
    ) -> Result<(), StoreError> {
        self.health.note(async {
            let mut tx = WriteTx::begin(&self.pool, "begin forecast write").await?;
            if reset {
                sqlx::query("DELETE FROM forecast_buckets WHERE namespace = ? AND pool = ?")
                    .bind(ns)
                    .bind(pool)
                    .execute(&mut *tx)
                    .await
                    .map_err(q("reset forecast buckets"))?;
            }
            sqlx::query(
                "INSERT INTO forecast_history(namespace, pool, metric, bucket_seconds, last_sample_ms)
                 VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT(namespace, pool) DO UPDATE SET metric = excluded.metric,
                   bucket_seconds = excluded.bucket_seconds, last_sample_ms = excluded.last_sample_ms",
            )
            .bind(ns)
            .bind(pool)
            .bind(&header.metric)
            .bind(header.bucket_seconds)
            .bind(header.last_sample_ms)
            .execute(&mut *tx)
            .await
            .map_err(q("write forecast history"))?;
            for b in changed {
                sqlx::query(
                    "INSERT INTO forecast_buckets(namespace, pool, start_s, peak, covered, sum)
                     VALUES (?, ?, ?, ?, ?, ?)
                     ON CONFLICT(namespace, pool, start_s) DO UPDATE SET peak = excluded.peak,
                       covered = excluded.covered, sum = excluded.sum",
                )
                .bind(ns)
                .bind(pool)
                .bind(b.start)
                .bind(b.peak)
                .bind(b.covered)
                .bind(b.sum)
                .execute(&mut *tx)
                .await
                .map_err(q("write forecast bucket"))?;
            }
            sqlx::query(
                "DELETE FROM forecast_buckets WHERE namespace = ? AND pool = ? AND start_s < ?",
            )
            .bind(ns)
            .bind(pool)
            .bind(drop_before_s)
            .execute(&mut *tx)
            .await
            .map_err(q("prune forecast buckets"))?;
            tx.commit().await?;
            Ok(())
        }.await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn a_put_with_a_stale_version_is_refused_and_changes_nothing() {
        let s = SqliteStore::in_memory().await.unwrap();
        let d1 = s
            .put_pool("a", "p", &json!({"x": 1}), Expect::Absent, "t1")
            .await
            .unwrap();
        assert_eq!(d1.version, 1);
        let d2 = s
            .put_pool("a", "p", &json!({"x": 2}), Expect::Version(1), "t2")
            .await
            .unwrap();
        assert_eq!(d2.version, 2);
        let err = s
            .put_pool("a", "p", &json!({"x": 3}), Expect::Version(1), "t3")
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::PreconditionFailed { .. }),
            "{err}"
        );
        let now = s.get_pool("a", "p").await.unwrap().unwrap();
        assert_eq!(now.spec, json!({"x": 2}));
        assert_eq!(now.created_at, "t1");
        let err = s
            .put_pool("a", "p", &json!({"x": 3}), Expect::Absent, "t3")
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::PreconditionFailed { .. }));
    }

    #[tokio::test]
    async fn every_policy_version_is_kept_and_one_pool_has_one_policy() {
        let s = SqliteStore::in_memory().await.unwrap();
        s.put_policy("a", "pol", "p", &json!({"v": 1}), Expect::Any, "t1")
            .await
            .unwrap();
        s.put_policy("a", "pol", "p", &json!({"v": 2}), Expect::Any, "t2")
            .await
            .unwrap();
        let vs = s.policy_versions("a", "pol").await.unwrap();
        assert_eq!(vs.iter().map(|d| d.version).collect::<Vec<_>>(), vec![1, 2]);
        let err = s
            .put_policy("a", "other", "p", &json!({}), Expect::Any, "t3")
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
        assert_eq!(
            s.policy_for_pool("a", "p").await.unwrap().unwrap().spec,
            json!({"v": 2})
        );
    }

    #[tokio::test]
    async fn a_policy_deleted_and_created_again_under_its_name_starts_at_version_one() {
        let s = SqliteStore::in_memory().await.unwrap();
        for v in 1..=2 {
            s.put_policy("a", "pol", "p", &json!({"v": v}), Expect::Any, "t1")
                .await
                .unwrap();
        }
        s.delete_policy("a", "pol", Expect::Version(2))
            .await
            .unwrap();
        assert!(s.policy_versions("a", "pol").await.unwrap().is_empty());
        let doc = s
            .put_policy("a", "pol", "p", &json!({"v": 3}), Expect::Absent, "t2")
            .await
            .expect("re-created");
        assert_eq!(doc.version, 1);
        let vs = s.policy_versions("a", "pol").await.unwrap();
        assert_eq!(vs.iter().map(|d| d.version).collect::<Vec<_>>(), vec![1]);
        assert_eq!(vs[0].spec, json!({"v": 3}));
    }

    #[tokio::test]
    async fn decisions_page_newest_first_and_are_trimmed() {
        let s = SqliteStore::in_memory().await.unwrap();
        for i in 0..40u32 {
            let rec = DecisionRecord {
                id: 0,
                at: format!("t{i}"),
                current: i,
                desired: i,
                on_demand: i,
                spot: 0,
                action: "none".into(),
                outcome: flexus_api::DecisionOutcome::None,
                bound_by: None,
                explanation: String::new(),
                detail: serde_json::Value::Null,
                operation_id: None,
                prediction: None,
            };
            s.insert_decision("a", "p", &rec, 20).await.unwrap();
        }
        let page = s.list_decisions("a", "p", None, 5).await.unwrap();
        assert_eq!(
            page.iter().map(|d| d.current).collect::<Vec<_>>(),
            vec![39, 38, 37, 36, 35]
        );
        let next = s
            .list_decisions("a", "p", Some(page[4].id), 5)
            .await
            .unwrap();
        assert_eq!(next[0].current, 34);
        let all = s.list_decisions("a", "p", None, 1000).await.unwrap();
        assert!(all.len() <= 20 + 16, "trimmed to about keep: {}", all.len());
    }

    fn point(metric: &str, at: i64, value: f64) -> PushedPoint {
        PushedPoint {
            metric: metric.into(),
            at,
            value,
        }
    }

    #[tokio::test]
    async fn pushed_datapoints_expire_are_capped_per_metric_and_replace_on_retry() {
        let s = SqliteStore::in_memory().await.unwrap();
        let pts: Vec<PushedPoint> = (0..10).map(|i| point("rps", i * 1000, i as f64)).collect();
        s.insert_pushed("a", "p", &pts, 0, 100).await.unwrap();
        s.insert_pushed("a", "p", &[point("q", 500, 7.0)], 0, 100)
            .await
            .unwrap();
        s.insert_pushed("a", "other", &[point("rps", 500, 1.0)], 0, 100)
            .await
            .unwrap();
        // Expiry drops everything measured before 3 s; the cap keeps the newest 4 of rps.
        s.insert_pushed("a", "p", &[point("rps", 9000, 99.0)], 3000, 4)
            .await
            .unwrap();
        let got = s.pushed_since("a", "p", 0).await.unwrap();
        let rps: Vec<(i64, f64)> = got
            .iter()
            .filter(|p| p.metric == "rps")
            .map(|p| (p.at, p.value))
            .collect();
        assert_eq!(
            rps,
            vec![(6000, 6.0), (7000, 7.0), (8000, 8.0), (9000, 99.0)],
            "the retried datapoint replaced the old value"
        );
        assert!(got.iter().all(|p| p.metric != "q"), "q expired: {got:?}");
        assert_eq!(s.pushed_since("a", "other", 0).await.unwrap().len(), 1);
        assert_eq!(s.pushed_since("a", "p", 8000).await.unwrap().len(), 2);
        s.purge_pool("a", "p").await.unwrap();
        assert!(s.pushed_since("a", "p", 0).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn forecast_history_survives_reopening_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.db");
        let b = |start: f64, v: f64| Bucket {
            start,
            peak: v,
            covered: 900.0,
            sum: v * 900.0,
        };
        let header = ForecastHeader {
            metric: "rps".into(),
            bucket_seconds: 900.0,
            last_sample_ms: Some(2_700_000),
        };
        {
            let s = SqliteStore::open(&path).await.unwrap();
            s.put_forecast("a", "p", &header, &[b(0.0, 1.0), b(900.0, 2.0)], 0.0, false)
                .await
                .unwrap();
            // Updating one bucket and pruning the first.
            s.put_forecast(
                "a",
                "p",
                &header,
                &[b(900.0, 3.0), b(1800.0, 4.0)],
                900.0,
                false,
            )
            .await
            .unwrap();
        }
        let s = SqliteStore::open(&path).await.unwrap();
        let h = s.get_forecast("a", "p").await.unwrap().expect("stored");
        assert_eq!(h.header, header);
        assert_eq!(h.buckets, vec![b(900.0, 3.0), b(1800.0, 4.0)]);
        // A reset (another metric) starts over.
        let other = ForecastHeader {
            metric: "q".into(),
            ..header
        };
        s.put_forecast("a", "p", &other, &[b(2700.0, 5.0)], 0.0, true)
            .await
            .unwrap();
        let h = s.get_forecast("a", "p").await.unwrap().unwrap();
        assert_eq!((h.header.metric.as_str(), h.buckets.len()), ("q", 1));
        assert!(s.get_forecast("a", "nope").await.unwrap().is_none());
    }
}
