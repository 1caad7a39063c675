//! The SQL store: one implementation over `sqlx::Any` for SQLite and PostgreSQL.
//!
//! Every statement is written once with `$n` parameters (both backends accept them);
//! what differs — how a write transaction begins, how the lease row is locked, the
//! database clock, the migrations — is in [`Backend`].

use std::collections::BTreeSet;
use std::path::Path;
use std::str::FromStr;

use async_trait::async_trait;
use flexus_api::{
    Advice, DecisionRecord, Namespace, Operation, OperationKind, OperationState, PolicySpec,
    PoolSpec, Purchase,
};
use flexus_policy::forecast::buckets::Bucket;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, Row};

use super::jobs;
use super::lease::{Fence, HeldLease, LeaseConfig, LeaseSync, LeaseTable};
use super::tx::{HealthCell, WriteTx, q};
use super::usage::{self, UsageHour, UsageScope};
use super::{
    Doc, Expect, ForecastHeader, ForecastHistory, Interrupted, OpRecord, PolicyDoc, PoolDoc,
    Pruned, PushedPoint, Retention, RuntimeState, Store, StoreError, StoreHealth, Tracked,
};
use crate::clock::{monotonic_now, rfc3339};

/// Which database a [`SqlStore`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn begin(self) -> &'static str {
        match self {
            // Take the write lock now, not on the first write.
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        }
    }

    /// Reads a pool's lease row inside a fenced write; on PostgreSQL the row stays
    /// locked until the write commits, so the lease cannot change hands meanwhile
    /// (SQLite has one writer at a time anyway).
    fn lease_row(self) -> &'static str {
        match self {
            Backend::Sqlite => {
                "SELECT holder, session, token FROM leases WHERE namespace = $1 AND pool = $2"
            }
            Backend::Postgres => {
                "SELECT holder, session, token FROM leases WHERE namespace = $1 AND pool = $2 FOR SHARE"
            }
        }
    }

    /// The database's clock (ms since the epoch): lease expiry is measured on it.
    fn now_ms(self) -> &'static str {
        match self {
            Backend::Sqlite => {
                "SELECT CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)"
            }
            Backend::Postgres => {
                "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"
            }
        }
    }
}

/// Where the store is (`store` in agent.toml): a SQLite file or a PostgreSQL URL.
#[derive(Clone, PartialEq)]
pub enum StoreLocation {
    Sqlite(std::path::PathBuf),
    /// `postgres://user:password@host:port/db`; the password is never printed.
    Postgres(String),
}

impl std::fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

impl std::fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreLocation::Sqlite(p) => write!(f, "{}", p.display()),
            // Never the credentials: the one URL redaction of the project.
            StoreLocation::Postgres(url) => f.write_str(&flexus_cloud::redact_url(url)),
        }
    }
}

/// Longest wait for the lease connection (PostgreSQL).
const LEASE_ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Settings of a store beyond where it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreOptions {
    pub retention: Retention,
    pub lease: LeaseConfig,
}

/// The store over SQLite or PostgreSQL.
#[derive(Debug)]
pub struct SqlStore {
    pool: sqlx::AnyPool,
    /// PostgreSQL: a connection of its own for lease rounds, so that renewing never
    /// waits behind the passes for a connection (SQLite: the one connection).
    lease_pool: sqlx::AnyPool,
    backend: Backend,
    retention: Retention,
    health: HealthCell,
    leases: LeaseTable,
    /// One lease round at a time in this process (rounds replace the held set).
    lease_round: tokio::sync::Mutex<()>,
    /// In-memory databases only: a connection that keeps the database alive while the
    /// pool replaces connections (a write that did not commit closes its connection).
    _anchor: Option<tokio::sync::Mutex<AnyConnection>>,
}

fn install_drivers() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(sqlx::any::install_default_drivers);
}

impl SqlStore {
    /// Open (creating if needed) and migrate the SQLite database at `path`, with the
    /// default retention and leases.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Self::connect(
            &StoreLocation::Sqlite(path.to_path_buf()),
            StoreOptions::default(),
        )
        .await
    }

    /// Open (creating a SQLite file if needed) and migrate the store at `location`.
    pub async fn connect(location: &StoreLocation, opts: StoreOptions) -> Result<Self, StoreError> {
        match location {
            StoreLocation::Sqlite(path) => {
                use sqlx::ConnectOptions as _;
                let url = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .to_url_lossy();
                let leases = LeaseTable::fenced(opts.lease);
                Self::with_url(
                    url.as_str(),
                    &location.to_string(),
                    Backend::Sqlite,
                    1,
                    leases,
                    opts.retention,
                )
                .await
            }
            StoreLocation::Postgres(url) => {
                let leases = LeaseTable::fenced(opts.lease);
                Self::with_url(
                    url,
                    &location.to_string(),
                    Backend::Postgres,
                    8,
                    leases,
                    opts.retention,
                )
                .await
            }
        }
    }

    /// A private in-memory SQLite database that nobody shares (tests): writes are not
    /// fenced by leases.
    pub async fn in_memory() -> Result<Self, StoreError> {
        let url = format!(
            "sqlite:file:flexus-mem-{}?mode=memory&cache=shared",
            uuid::Uuid::new_v4()
        );
        install_drivers();
        let open = |source| StoreError::Open {
            path: ":memory:".into(),
            source,
        };
        let anchor = {
            use sqlx::Connection as _;
            AnyConnection::connect(&url).await.map_err(open)?
        };
        let mut s = Self::with_url(
            &url,
            ":memory:",
            Backend::Sqlite,
            1,
            LeaseTable::Unfenced,
            Retention::default(),
        )
        .await?;
        s._anchor = Some(tokio::sync::Mutex::new(anchor));
        Ok(s)
    }

    async fn with_url(
        url: &str,
        shown: &str,
        backend: Backend,
        conns: u32,
        leases: LeaseTable,
        retention: Retention,
    ) -> Result<Self, StoreError> {
        install_drivers();
        let open = |source| StoreError::Open {
            path: shown.to_owned(),
            source,
        };
        let opts = AnyConnectOptions::from_str(url).map_err(open)?;
        let mut pool_opts = AnyPoolOptions::new()
            .max_connections(conns)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None);
        if backend == Backend::Sqlite {
            pool_opts = pool_opts.after_connect(|conn, _| {
                Box::pin(async move {
                    // One connection: SQLite has one writer at a time anyway, and a
                    // single connection avoids busy-wait retries between our own.
                    sqlx::query(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
                         PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                    )
                    .execute(conn)
                    .await?;
                    Ok(())
                })
            });
        }
        let pool = pool_opts.connect_with(opts.clone()).await.map_err(open)?;
        let lease_pool = match backend {
            Backend::Sqlite => pool.clone(),
            // The lease connection is used by one round at a time, so waiting for it
            // means (re)connecting: a short wait makes a server that went away show
            // within a round (the round fails, the store is `Failing`, `/readyz` red)
            // instead of after sqlx's default 30 s.
            Backend::Postgres => AnyPoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .acquire_timeout(LEASE_ACQUIRE_TIMEOUT)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(opts)
                .await
                .map_err(open)?,
        };
        match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await?,
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
        }
        Ok(Self {
            pool,
            lease_pool,
            backend,
            retention,
            health: HealthCell::default(),
            leases,
            lease_round: tokio::sync::Mutex::new(()),
            _anchor: None,
        })
    }

    /// The backend this store talks to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Now on the database's clock (ms).
    async fn db_now(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar(self.backend.now_ms())
            .fetch_one(&self.pool)
            .await
            .map_err(q("read database clock"))
    }

    /// Tracked work of a pool in `t` (with `id`, only that one; newest first, at most
    /// `limit`), each with whether its runner is alive on the database's clock.
    async fn tracked_work<T: DeserializeOwned>(
        &self,
        t: &jobs::WorkTable,
        pool: (&str, &str),
        which: (Option<&str>, u32),
    ) -> Result<Vec<Tracked<T>>, StoreError> {
        let now = self.db_now().await?;
        jobs::list(&self.pool, t, pool, which, now, self.leases.session()).await
    }

    /// Runs `f` in a write transaction that commits or leaves nothing, noting the
    /// outcome in the store's health. For each pool in `fenced`, the transaction first
    /// checks that this agent still holds the pool's lease (and keeps the row locked); a
    /// pool found taken is refused as a whole and forgotten locally.
    async fn write<T>(
        &self,
        what: &'static str,
        fenced: &[(&str, &str)],
        f: impl AsyncFnOnce(&mut AnyConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.write_on(&self.pool, what, fenced, f).await
    }

    async fn write_on<T>(
        &self,
        pool: &sqlx::AnyPool,
        what: &'static str,
        fenced: &[(&str, &str)],
        f: impl AsyncFnOnce(&mut AnyConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut fences = Vec::with_capacity(fenced.len());
        for &(ns, pool) in fenced {
            match self.leases.fence(ns, pool) {
                None => {
                    return Err(StoreError::Fenced {
                        pool: format!("{ns}/{pool}"),
                        reason: "no current lease held by this agent".into(),
                    });
                }
                Some(f) => fences.extend(f.map(|f| (ns, pool, f))),
            }
        }
        let mut refused = None;
        let r = async {
            let mut tx = WriteTx::begin(pool, self.backend.begin(), what).await?;
            for (ns, pool, fence) in &fences {
                let checked = self.check_fence(&mut tx, ns, pool, fence).await;
                if let Err(StoreError::Fenced { .. }) = &checked {
                    refused = Some((*ns, *pool));
                }
                checked?;
            }
            let v = f(&mut tx).await?;
            tx.commit().await?;
            Ok(v)
        }
        .await;
        if let Some((ns, pool)) = refused {
            self.leases.drop_lease(ns, pool);
        }
        self.health.note(r)
    }

    async fn check_fence(
        &self,
        c: &mut AnyConnection,
        ns: &str,
        pool: &str,
        fence: &Fence,
    ) -> Result<(), StoreError> {
        let row = sqlx::query(self.backend.lease_row())
            .bind(ns)
            .bind(pool)
            .fetch_optional(&mut *c)
            .await
            .map_err(q("check lease"))?;
        let found = match &row {
            None => None,
            Some(r) => Some((
                text(r, "holder", "lease")?,
                text(r, "session", "lease")?,
                int(r, "token", "lease")?,
            )),
        };
        match found {
            Some((h, s, t)) if h == fence.holder && s == fence.session && t == fence.token => {
                Ok(())
            }
            other => Err(StoreError::Fenced {
                pool: format!("{ns}/{pool}"),
                reason: match other {
                    None => "the lease is gone".into(),
                    Some((h, _, t)) => format!(
                        "the lease is held by {h} with token {t}; this agent had token {}",
                        fence.token
                    ),
                },
            }),
        }
    }
}

pub(super) fn corrupt(what: impl Into<String>, reason: impl ToString) -> StoreError {
    StoreError::Corrupt {
        what: what.into(),
        reason: reason.to_string(),
    }
}

/// Column `col` of a row of `what`, decoded as `T`; a column that is missing or of
/// another type is a corrupt `what`.
fn column<'r, T>(r: &'r AnyRow, col: &str, what: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    r.try_get::<T, _>(col)
        .map_err(|e| corrupt(format!("{what} ({col})"), e))
}
pub(super) fn text(r: &AnyRow, col: &str, what: &str) -> Result<String, StoreError> {
    column(r, col, what)
}
pub(super) fn opt_text(r: &AnyRow, col: &str, what: &str) -> Result<Option<String>, StoreError> {
    column(r, col, what)
}
pub(super) fn int(r: &AnyRow, col: &str, what: &str) -> Result<i64, StoreError> {
    column(r, col, what)
}
pub(super) fn opt_int(r: &AnyRow, col: &str, what: &str) -> Result<Option<i64>, StoreError> {
    column(r, col, what)
}
pub(super) fn float(r: &AnyRow, col: &str, what: &str) -> Result<f64, StoreError> {
    column(r, col, what)
}

/// JSON text of a value the store writes (our own types always serialise).
pub(super) fn json<T: Serialize>(what: &'static str, v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| corrupt(what, e))
}

/// Parse stored JSON text as `T`, naming the object when it does not parse.
pub(super) fn parse<T: DeserializeOwned>(
    what: impl FnOnce() -> String,
    s: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| corrupt(what(), e))
}

fn doc_from_row<S: DeserializeOwned>(r: &AnyRow, what: &'static str) -> Result<Doc<S>, StoreError> {
    let namespace = text(r, "namespace", what)?;
    let name = text(r, "name", what)?;
    let spec = parse(
        || format!("{what} {namespace}/{name}"),
        &text(r, "spec", what)?,
    )?;
    let has = |col: &str| r.try_column(col).is_ok();
    let deleting = has("deleting") && int(r, "deleting", what)? != 0;
    Ok(Doc {
        version: int(r, "version", what)? as u64,
        spec,
        created_at: text(r, "created_at", what)?,
        updated_at: if has("updated_at") {
            text(r, "updated_at", what)?
        } else {
            String::new()
        },
        deleting,
        namespace,
        name,
    })
}

/// The document a versioned write stores: the next version of `cur` (or version 1),
/// created when `cur` was (or now), updated now.
fn next_doc<S: Clone>(
    (ns, name): (&str, &str),
    cur: Option<&Doc<S>>,
    spec: &S,
    now: &str,
) -> Doc<S> {
    Doc {
        namespace: ns.into(),
        name: name.into(),
        version: cur.map_or(1, |d| d.version + 1),
        spec: spec.clone(),
        created_at: cur.map_or_else(|| now.to_owned(), |d| d.created_at.clone()),
        updated_at: now.into(),
        deleting: false,
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

/// Deletes one pool's rows of a time-keyed table whose `column` is before `before`:
/// `DELETE FROM {table} WHERE namespace = $1 AND pool = $2 AND {column} < $3` (the expiry
/// of pushed metrics and of forecast buckets after their upserts).
async fn delete_older<T>(
    c: &mut AnyConnection,
    table: &'static str,
    column: &'static str,
    (ns, pool): (&str, &str),
    before: T,
) -> Result<sqlx::any::AnyQueryResult, sqlx::Error>
where
    T: for<'e> sqlx::Encode<'e, sqlx::Any> + sqlx::Type<sqlx::Any> + Send,
{
    // `table` and `column` are names written in this file, never input.
    let sql = format!("DELETE FROM {table} WHERE namespace = $1 AND pool = $2 AND {column} < $3");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(ns)
        .bind(pool)
        .bind(before)
        .execute(c)
        .await
}

/// A refresh's progress as stored (`None` for other operations).
fn progress_json(r: &OpRecord) -> Result<Option<String>, StoreError> {
    r.progress
        .as_ref()
        .map(|p| json("operation progress", p))
        .transpose()
}

fn op_from_row(r: &AnyRow) -> Result<OpRecord, StoreError> {
    let id = text(r, "id", "operation")?;
    let what = || format!("operation {id}");
    let kind = text(r, "kind", "operation")?;
    let kind: OperationKind = kind
        .parse()
        .map_err(|_| corrupt(what(), format!("unknown kind {kind:?}")))?;
    let state = text(r, "state", "operation")?;
    let state: OperationState = state
        .parse()
        .map_err(|_| corrupt(what(), format!("unknown state {state:?}")))?;
    let purchase = opt_text(r, "purchase", "operation")?
        .map(|p| {
            p.parse::<Purchase>()
                .map_err(|_| corrupt(what(), format!("unknown purchase {p:?}")))
        })
        .transpose()?;
    let server_ids: Vec<String> = parse(
        || format!("server ids of operation {id}"),
        &text(r, "server_ids", "operation")?,
    )?;
    let request = opt_text(r, "request", "operation")?
        .map(|t| parse(|| format!("request of operation {id}"), &t))
        .transpose()?;
    let progress = opt_text(r, "progress", "operation")?
        .map(|t| parse(|| format!("progress of operation {id}"), &t))
        .transpose()?;
    Ok(OpRecord {
        namespace: text(r, "namespace", "operation")?,
        pool: text(r, "pool", "operation")?,
        request,
        progress,
        op: Operation {
            kind,
            state,
            count: int(r, "count", "operation")? as u32,
            purchase,
            job_id: opt_text(r, "job_id", "operation")?,
            server_ids,
            error: opt_text(r, "error", "operation")?,
            created_at: text(r, "created_at", "operation")?,
            updated_at: text(r, "updated_at", "operation")?,
            id,
        },
    })
}

/// Creates namespace `ns` if it does not exist yet.
async fn insert_namespace(c: &mut AnyConnection, ns: &str, now: &str) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO namespaces(name, created_at) VALUES ($1, $2) ON CONFLICT(name) DO NOTHING",
    )
    .bind(ns)
    .bind(now)
    .execute(c)
    .await
    .map_err(q("ensure namespace"))?;
    Ok(())
}

async fn fetch_docs<S: DeserializeOwned>(
    ex: impl sqlx::Executor<'_, Database = sqlx::Any>,
    sql: &'static str,
    binds: &[&str],
    what: &'static str,
) -> Result<Vec<Doc<S>>, StoreError> {
    let mut query = sqlx::query(sql);
    for b in binds {
        query = query.bind(*b);
    }
    query
        .fetch_all(ex)
        .await
        .map_err(q(what))?
        .iter()
        .map(|r| doc_from_row(r, what))
        .collect()
}

async fn fetch_doc<S: DeserializeOwned>(
    ex: impl sqlx::Executor<'_, Database = sqlx::Any>,
    sql: &'static str,
    binds: &[&str],
    what: &'static str,
) -> Result<Option<Doc<S>>, StoreError> {
    Ok(fetch_docs(ex, sql, binds, what).await?.pop())
}

const SELECT_POOL: &str = "SELECT * FROM pools WHERE namespace = $1 AND name = $2";
const SELECT_POLICY: &str = "SELECT * FROM policies WHERE namespace = $1 AND name = $2";

/// Every table holding something of one pool, with its pool column: purged together
/// (not its usage rollups: they are what the pool cost, and retention deletes them).
const POOL_TABLES: [&str; 10] = [
    "DELETE FROM pools WHERE namespace = $1 AND name = $2",
    "DELETE FROM pool_state WHERE namespace = $1 AND pool = $2",
    "DELETE FROM decisions WHERE namespace = $1 AND pool = $2",
    "DELETE FROM pushed_metrics WHERE namespace = $1 AND pool = $2",
    "DELETE FROM forecast_history WHERE namespace = $1 AND pool = $2",
    "DELETE FROM forecast_buckets WHERE namespace = $1 AND pool = $2",
    "DELETE FROM operations WHERE namespace = $1 AND pool = $2",
    "DELETE FROM advice WHERE namespace = $1 AND pool = $2",
    "DELETE FROM tune_jobs WHERE namespace = $1 AND pool = $2",
    "DELETE FROM leases WHERE namespace = $1 AND pool = $2",
];

#[async_trait]
impl Store for SqlStore {
    fn health(&self) -> StoreHealth {
        self.health.get()
    }

    async fn probe(&self, now: &str) -> Result<(), StoreError> {
        self.write("store probe", &[], async |c| {
            sqlx::query(
                "INSERT INTO store_probe(id, at) VALUES (1, $1)
                 ON CONFLICT(id) DO UPDATE SET at = excluded.at",
            )
            .bind(now)
            .execute(c)
            .await
            .map_err(q("write store probe"))?;
            Ok(())
        })
        .await
    }

    async fn ensure_namespace(&self, ns: &str, now: &str) -> Result<(), StoreError> {
        self.write("ensure namespace", &[], async |c| {
            insert_namespace(c, ns, now).await
        })
        .await
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
        rows.iter()
            .map(|r| {
                Ok(Namespace {
                    name: text(r, "name", "namespace")?,
                    pools: int(r, "pools", "namespace")? as u64,
                    policies: int(r, "policies", "namespace")? as u64,
                })
            })
            .collect()
    }

    async fn put_pool(
        &self,
        ns: &str,
        name: &str,
        spec: &PoolSpec,
        expect: Expect,
        now: &str,
    ) -> Result<PoolDoc, StoreError> {
        let text_spec = json("pool spec", spec)?;
        self.write("put pool", &[], async |c| {
            insert_namespace(c, ns, now).await?;
            let cur: Option<PoolDoc> = fetch_doc(&mut *c, SELECT_POOL, &[ns, name], "pool").await?;
            check_expect(
                "pool",
                format!("{ns}/{name}"),
                expect,
                cur.as_ref().map(|d| d.version),
            )?;
            if cur.as_ref().is_some_and(|d| d.deleting) {
                return Err(StoreError::Conflict {
                    what: "pool",
                    key: format!("{ns}/{name}"),
                    reason: "it is being deleted; retry when its instances are gone".into(),
                });
            }
            let doc = next_doc((ns, name), cur.as_ref(), spec, now);
            sqlx::query(
                "INSERT INTO pools(namespace, name, version, spec, deleting, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, 0, $5, $6)
                 ON CONFLICT(namespace, name) DO UPDATE SET version = excluded.version,
                   spec = excluded.spec, updated_at = excluded.updated_at",
            )
            .bind(ns)
            .bind(name)
            .bind(doc.version as i64)
            .bind(&text_spec)
            .bind(&doc.created_at)
            .bind(now)
            .execute(&mut *c)
            .await
            .map_err(q("write pool"))?;
            Ok(doc)
        })
        .await
    }

    async fn get_pool(&self, ns: &str, name: &str) -> Result<Option<PoolDoc>, StoreError> {
        fetch_doc(&self.pool, SELECT_POOL, &[ns, name], "pool").await
    }

    async fn list_pools(&self, ns: Option<&str>) -> Result<Vec<PoolDoc>, StoreError> {
        match ns {
            Some(ns) => {
                fetch_docs(
                    &self.pool,
                    "SELECT * FROM pools WHERE namespace = $1 ORDER BY name",
                    &[ns],
                    "pool",
                )
                .await
            }
            None => {
                fetch_docs(
                    &self.pool,
                    "SELECT * FROM pools ORDER BY namespace, name",
                    &[],
                    "pool",
                )
                .await
            }
        }
    }

    async fn mark_pool_deleting(
        &self,
        ns: &str,
        name: &str,
        expect: Expect,
        now: &str,
    ) -> Result<PoolDoc, StoreError> {
        self.write("delete pool", &[], async |c| {
            let cur: Option<PoolDoc> = fetch_doc(&mut *c, SELECT_POOL, &[ns, name], "pool").await?;
            let Some(mut cur) = cur else {
                return Err(StoreError::NotFound {
                    what: "pool",
                    key: format!("{ns}/{name}"),
                });
            };
            check_expect("pool", format!("{ns}/{name}"), expect, Some(cur.version))?;
            sqlx::query(
                "UPDATE pools SET deleting = 1, updated_at = $1 WHERE namespace = $2 AND name = $3",
            )
            .bind(now)
            .bind(ns)
            .bind(name)
            .execute(&mut *c)
            .await
            .map_err(q("mark pool deleting"))?;
            cur.deleting = true;
            cur.updated_at = now.into();
            Ok(cur)
        })
        .await
    }

    async fn purge_pool(&self, ns: &str, name: &str) -> Result<(), StoreError> {
        self.write("purge pool", &[(ns, name)], async |c| {
            for sql in POOL_TABLES {
                sqlx::query(sql)
                    .bind(ns)
                    .bind(name)
                    .execute(&mut *c)
                    .await
                    .map_err(q("purge pool"))?;
            }
            Ok(())
        })
        .await?;
        self.leases.drop_lease(ns, name);
        Ok(())
    }

    async fn put_policy(
        &self,
        ns: &str,
        name: &str,
        spec: &PolicySpec,
        expect: Expect,
        now: &str,
    ) -> Result<PolicyDoc, StoreError> {
        let text_spec = json("policy spec", spec)?;
        let keep = self.retention.policy_versions_keep.max(1) as i64;
        self.write("put policy", &[], async |c| {
            insert_namespace(c, ns, now).await?;
            let cur: Option<PolicyDoc> =
                fetch_doc(&mut *c, SELECT_POLICY, &[ns, name], "policy").await?;
            check_expect(
                "policy",
                format!("{ns}/{name}"),
                expect,
                cur.as_ref().map(|d| d.version),
            )?;
            let pool = spec.pool.as_str();
            let other: Option<String> = sqlx::query_scalar(
                "SELECT name FROM policies WHERE namespace = $1 AND pool = $2 AND name <> $3",
            )
            .bind(ns)
            .bind(pool)
            .bind(name)
            .fetch_optional(&mut *c)
            .await
            .map_err(q("check policy pool"))?;
            if let Some(other) = other {
                return Err(StoreError::Conflict {
                    what: "policy",
                    key: format!("{ns}/{name}"),
                    reason: format!("pool {pool} is already scaled by policy {other}"),
                });
            }
            let doc = next_doc((ns, name), cur.as_ref(), spec, now);
            sqlx::query(
                "INSERT INTO policies(namespace, name, version, pool, spec, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT(namespace, name) DO UPDATE SET version = excluded.version,
                   pool = excluded.pool, spec = excluded.spec, updated_at = excluded.updated_at",
            )
            .bind(ns)
            .bind(name)
            .bind(doc.version as i64)
            .bind(pool)
            .bind(&text_spec)
            .bind(&doc.created_at)
            .bind(now)
            .execute(&mut *c)
            .await
            .map_err(q("write policy"))?;
            sqlx::query(
                "INSERT INTO policy_versions(namespace, name, version, spec, created_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(ns)
            .bind(name)
            .bind(doc.version as i64)
            .bind(&text_spec)
            .bind(now)
            .execute(&mut *c)
            .await
            .map_err(q("write policy version"))?;
            // Retention by count: the newest `keep` versions stay.
            sqlx::query(
                "DELETE FROM policy_versions WHERE namespace = $1 AND name = $2 AND version <= $3",
            )
            .bind(ns)
            .bind(name)
            .bind(doc.version as i64 - keep)
            .execute(&mut *c)
            .await
            .map_err(q("trim policy versions"))?;
            Ok(doc)
        })
        .await
    }

    async fn get_policy(&self, ns: &str, name: &str) -> Result<Option<PolicyDoc>, StoreError> {
        fetch_doc(&self.pool, SELECT_POLICY, &[ns, name], "policy").await
    }

    async fn list_policies(&self, ns: &str) -> Result<Vec<PolicyDoc>, StoreError> {
        fetch_docs(
            &self.pool,
            "SELECT * FROM policies WHERE namespace = $1 ORDER BY name",
            &[ns],
            "policy",
        )
        .await
    }

    async fn policy_for_pool(&self, ns: &str, pool: &str) -> Result<Option<PolicyDoc>, StoreError> {
        fetch_doc(
            &self.pool,
            "SELECT * FROM policies WHERE namespace = $1 AND pool = $2",
            &[ns, pool],
            "policy",
        )
        .await
    }

    async fn policy_versions(&self, ns: &str, name: &str) -> Result<Vec<PolicyDoc>, StoreError> {
        let mut docs: Vec<PolicyDoc> = fetch_docs(
            &self.pool,
            "SELECT namespace, name, version, spec, created_at FROM policy_versions
             WHERE namespace = $1 AND name = $2 ORDER BY version",
            &[ns, name],
            "policy version",
        )
        .await?;
        for d in &mut docs {
            d.updated_at = d.created_at.clone();
        }
        Ok(docs)
    }

    async fn delete_policy(&self, ns: &str, name: &str, expect: Expect) -> Result<(), StoreError> {
        self.write("delete policy", &[], async |c| {
            let cur: Option<i64> = sqlx::query_scalar(
                "SELECT version FROM policies WHERE namespace = $1 AND name = $2",
            )
            .bind(ns)
            .bind(name)
            .fetch_optional(&mut *c)
            .await
            .map_err(q("read policy"))?;
            let Some(cur) = cur else {
                return Err(StoreError::NotFound {
                    what: "policy",
                    key: format!("{ns}/{name}"),
                });
            };
            check_expect("policy", format!("{ns}/{name}"), expect, Some(cur as u64))?;
            // The versions go with the policy: a policy created later under the same
            // name starts a new history at version 1.
            for sql in [
                "DELETE FROM policies WHERE namespace = $1 AND name = $2",
                "DELETE FROM policy_versions WHERE namespace = $1 AND name = $2",
            ] {
                sqlx::query(sql)
                    .bind(ns)
                    .bind(name)
                    .execute(&mut *c)
                    .await
                    .map_err(q("delete policy"))?;
            }
            Ok(())
        })
        .await
    }

    async fn insert_operation(&self, r: &OpRecord) -> Result<(), StoreError> {
        let op = &r.op;
        let request = r
            .request
            .as_ref()
            .filter(|_| !op.state.is_final())
            .map(|v| json("operation request", v))
            .transpose()?;
        let progress = progress_json(r)?;
        let server_ids = json("operation server ids", &op.server_ids)?;
        let keep = self.retention.operations_keep.max(1) as i64;
        self.write("insert operation", &[(&r.namespace, &r.pool)], async |c| {
            sqlx::query(
                "INSERT INTO operations(id, namespace, pool, kind, state, count, purchase, job_id,
                    server_ids, error, created_at, updated_at, request, progress)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(&op.id)
            .bind(&r.namespace)
            .bind(&r.pool)
            .bind(op.kind.as_str())
            .bind(op.state.as_str())
            .bind(op.count as i64)
            .bind(op.purchase.map(Purchase::as_str))
            .bind(&op.job_id)
            .bind(&server_ids)
            .bind(&op.error)
            .bind(&op.created_at)
            .bind(&op.updated_at)
            .bind(&request)
            .bind(&progress)
            .execute(&mut *c)
            .await
            .map_err(q("insert operation"))?;
            // Retention by count: the pool's newest `keep` final operations stay.
            sqlx::query(
                "DELETE FROM operations WHERE namespace = $1 AND pool = $2
                   AND state IN ('succeeded', 'failed', 'abandoned') AND created_at < (
                     SELECT created_at FROM operations WHERE namespace = $1 AND pool = $2
                       AND state IN ('succeeded', 'failed', 'abandoned')
                     ORDER BY created_at DESC LIMIT 1 OFFSET $3)",
            )
            .bind(&r.namespace)
            .bind(&r.pool)
            .bind(keep - 1)
            .execute(&mut *c)
            .await
            .map_err(q("trim operations"))?;
            Ok(())
        })
        .await
    }

    async fn update_operation(&self, r: &OpRecord) -> Result<(), StoreError> {
        let op = &r.op;
        let server_ids = json("operation server ids", &op.server_ids)?;
        let progress = progress_json(r)?;
        let done = self
            .write("update operation", &[(&r.namespace, &r.pool)], async |c| {
                // A final operation is never re-sent: its request body goes.
                let res = sqlx::query(
                    "UPDATE operations SET state = $1, count = $2, purchase = $3, job_id = $4,
                        server_ids = $5, error = $6, updated_at = $7,
                        request = CASE WHEN $8 = 1 THEN NULL ELSE request END, progress = $10
                     WHERE id = $9",
                )
                .bind(op.state.as_str())
                .bind(op.count as i64)
                .bind(op.purchase.map(Purchase::as_str))
                .bind(&op.job_id)
                .bind(&server_ids)
                .bind(&op.error)
                .bind(&op.updated_at)
                .bind(op.state.is_final() as i64)
                .bind(&op.id)
                .bind(&progress)
                .execute(&mut *c)
                .await
                .map_err(q("update operation"))?;
                Ok(res.rows_affected())
            })
            .await?;
        if done == 0 {
            return Err(StoreError::NotFound {
                what: "operation",
                key: op.id.clone(),
            });
        }
        Ok(())
    }

    async fn open_operations(
        &self,
        pool: Option<(&str, &str)>,
    ) -> Result<Vec<OpRecord>, StoreError> {
        let rows = match pool {
            Some((ns, p)) => {
                sqlx::query(
                    "SELECT * FROM operations WHERE state IN ('pending', 'submitted')
                       AND namespace = $1 AND pool = $2 ORDER BY created_at, id",
                )
                .bind(ns)
                .bind(p)
                .fetch_all(&self.pool)
                .await
            }
            None => {
                sqlx::query(
                    "SELECT * FROM operations WHERE state IN ('pending', 'submitted')
                     ORDER BY created_at, id",
                )
                .fetch_all(&self.pool)
                .await
            }
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
            "SELECT * FROM operations WHERE namespace = $1 AND pool = $2
             ORDER BY created_at DESC, id DESC LIMIT $3",
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
        let record = json("decision", rec)?;
        self.write("insert decision", &[(ns, pool)], async |c| {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO decisions(namespace, pool, record) VALUES ($1, $2, $3) RETURNING id",
            )
            .bind(ns)
            .bind(pool)
            .bind(&record)
            .fetch_one(&mut *c)
            .await
            .map_err(q("insert decision"))?;
            if id % 16 == 0 {
                sqlx::query(
                    "DELETE FROM decisions WHERE namespace = $1 AND pool = $2 AND id < (
                       SELECT id FROM decisions WHERE namespace = $1 AND pool = $2
                       ORDER BY id DESC LIMIT 1 OFFSET $3)",
                )
                .bind(ns)
                .bind(pool)
                .bind(keep.saturating_sub(1) as i64)
                .execute(&mut *c)
                .await
                .map_err(q("trim decisions"))?;
            }
            Ok(id)
        })
        .await
    }

    async fn list_decisions(
        &self,
        ns: &str,
        pool: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<DecisionRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, record FROM decisions WHERE namespace = $1 AND pool = $2 AND id < $3
             ORDER BY id DESC LIMIT $4",
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
                let id = int(r, "id", "decision")?;
                let mut rec: DecisionRecord = parse(
                    || format!("decision {id} of pool {ns}/{pool}"),
                    &text(r, "record", "decision")?,
                )?;
                rec.id = id;
                Ok(rec)
            })
            .collect()
    }

    async fn get_runtime(&self, ns: &str, pool: &str) -> Result<Option<RuntimeState>, StoreError> {
        let row = sqlx::query(
            "SELECT history, status FROM pool_state WHERE namespace = $1 AND pool = $2",
        )
        .bind(ns)
        .bind(pool)
        .fetch_optional(&self.pool)
        .await
        .map_err(q("read pool state"))?;
        row.map(|r| {
            Ok(RuntimeState {
                history: parse(
                    || format!("decision history of pool {ns}/{pool}"),
                    &text(&r, "history", "pool state")?,
                )?,
                status: parse(
                    || format!("status of pool {ns}/{pool}"),
                    &text(&r, "status", "pool state")?,
                )?,
            })
        })
        .transpose()
    }

    async fn put_runtime(&self, ns: &str, pool: &str, st: &RuntimeState) -> Result<(), StoreError> {
        let history = json("pool history", &st.history)?;
        let status = json("pool status", &st.status)?;
        self.write("write pool state", &[(ns, pool)], async |c| {
            sqlx::query(
                "INSERT INTO pool_state(namespace, pool, history, status) VALUES ($1, $2, $3, $4)
                 ON CONFLICT(namespace, pool) DO UPDATE SET history = excluded.history,
                   status = excluded.status",
            )
            .bind(ns)
            .bind(pool)
            .bind(&history)
            .bind(&status)
            .execute(c)
            .await
            .map_err(q("write pool state"))?;
            Ok(())
        })
        .await
    }

    async fn insert_pushed(
        &self,
        ns: &str,
        pool: &str,
        points: &[PushedPoint],
        drop_before_ms: i64,
        keep: u32,
    ) -> Result<(), StoreError> {
        self.write("push metrics", &[], async |c| {
            for p in points {
                sqlx::query(
                    "INSERT INTO pushed_metrics(namespace, pool, metric, at_ms, value)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT(namespace, pool, metric, at_ms) DO UPDATE SET value = excluded.value",
                )
                .bind(ns)
                .bind(pool)
                .bind(&p.metric)
                .bind(p.at)
                .bind(p.value)
                .execute(&mut *c)
                .await
                .map_err(q("insert pushed metric"))?;
            }
            delete_older(&mut *c, "pushed_metrics", "at_ms", (ns, pool), drop_before_ms)
                .await
                .map_err(q("expire pushed metrics"))?;
            let mut metrics: Vec<&str> = points.iter().map(|p| p.metric.as_str()).collect();
            metrics.sort_unstable();
            metrics.dedup();
            for m in metrics {
                sqlx::query(
                    "DELETE FROM pushed_metrics WHERE namespace = $1 AND pool = $2 AND metric = $3
                       AND at_ms < (SELECT at_ms FROM pushed_metrics
                         WHERE namespace = $1 AND pool = $2 AND metric = $3
                         ORDER BY at_ms DESC LIMIT 1 OFFSET $4)",
                )
                .bind(ns)
                .bind(pool)
                .bind(m)
                .bind(keep.saturating_sub(1) as i64)
                .execute(&mut *c)
                .await
                .map_err(q("trim pushed metrics"))?;
            }
            Ok(())
        })
        .await
    }

    async fn pushed_since(
        &self,
        ns: &str,
        pool: &str,
        since_ms: i64,
    ) -> Result<Vec<PushedPoint>, StoreError> {
        let rows = sqlx::query(
            "SELECT metric, at_ms, value FROM pushed_metrics
             WHERE namespace = $1 AND pool = $2 AND at_ms >= $3 ORDER BY at_ms, metric",
        )
        .bind(ns)
        .bind(pool)
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(q("read pushed metrics"))?;
        rows.iter()
            .map(|r| {
                Ok(PushedPoint {
                    metric: text(r, "metric", "pushed metric")?,
                    at: int(r, "at_ms", "pushed metric")?,
                    value: float(r, "value", "pushed metric")?,
                })
            })
            .collect()
    }

    async fn get_forecast(
        &self,
        ns: &str,
        pool: &str,
    ) -> Result<Option<ForecastHistory>, StoreError> {
        let Some(h) = sqlx::query(
            "SELECT metric, bucket_seconds, last_sample_ms FROM forecast_history
             WHERE namespace = $1 AND pool = $2",
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
             WHERE namespace = $1 AND pool = $2 ORDER BY start_s",
        )
        .bind(ns)
        .bind(pool)
        .fetch_all(&self.pool)
        .await
        .map_err(q("read forecast buckets"))?
        .iter()
        .map(|r| {
            Ok(Bucket {
                start: float(r, "start_s", "forecast bucket")?,
                peak: float(r, "peak", "forecast bucket")?,
                covered: float(r, "covered", "forecast bucket")?,
                sum: float(r, "sum", "forecast bucket")?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
        Ok(Some(ForecastHistory {
            header: ForecastHeader {
                metric: text(&h, "metric", "forecast history")?,
                bucket_seconds: float(&h, "bucket_seconds", "forecast history")?,
                last_sample_ms: opt_int(&h, "last_sample_ms", "forecast history")?,
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
        self.write("forecast write", &[(ns, pool)], async |c| {
            if reset {
                sqlx::query("DELETE FROM forecast_buckets WHERE namespace = $1 AND pool = $2")
                    .bind(ns)
                    .bind(pool)
                    .execute(&mut *c)
                    .await
                    .map_err(q("reset forecast buckets"))?;
            }
            sqlx::query(
                "INSERT INTO forecast_history(namespace, pool, metric, bucket_seconds, last_sample_ms)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT(namespace, pool) DO UPDATE SET metric = excluded.metric,
                   bucket_seconds = excluded.bucket_seconds, last_sample_ms = excluded.last_sample_ms",
            )
            .bind(ns)
            .bind(pool)
            .bind(&header.metric)
            .bind(header.bucket_seconds)
            .bind(header.last_sample_ms)
            .execute(&mut *c)
            .await
            .map_err(q("write forecast history"))?;
            for b in changed {
                sqlx::query(
                    "INSERT INTO forecast_buckets(namespace, pool, start_s, peak, covered, sum)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT(namespace, pool, start_s) DO UPDATE SET peak = excluded.peak,
                       covered = excluded.covered, sum = excluded.sum",
                )
                .bind(ns)
                .bind(pool)
                .bind(b.start)
                .bind(b.peak)
                .bind(b.covered)
                .bind(b.sum)
                .execute(&mut *c)
                .await
                .map_err(q("write forecast bucket"))?;
            }
            delete_older(&mut *c, "forecast_buckets", "start_s", (ns, pool), drop_before_s)
                .await
                .map_err(q("prune forecast buckets"))?;
            Ok(())
        })
        .await
    }

    async fn prune(&self, now_ms: i64) -> Result<Pruned, StoreError> {
        let ms = |d: std::time::Duration| now_ms - d.as_millis() as i64;
        let ops_before = rfc3339(ms(self.retention.operations_max_age));
        let versions_before = rfc3339(ms(self.retention.policy_versions_max_age));
        // Rollups are per clock hour (start in s): those of hours before the one that
        // holds the cut-off go.
        let usage_before = ms(self.retention.usage_max_age).div_euclid(3_600_000) * 3600;
        self.write("prune", &[], async |c| {
            let operations = sqlx::query(
                "DELETE FROM operations WHERE state IN ('succeeded', 'failed', 'abandoned')
                   AND created_at < $1",
            )
            .bind(&ops_before)
            .execute(&mut *c)
            .await
            .map_err(q("prune operations"))?
            .rows_affected();
            let policy_versions = sqlx::query(
                "DELETE FROM policy_versions WHERE created_at < $1 AND NOT EXISTS (
                   SELECT 1 FROM policies p WHERE p.namespace = policy_versions.namespace
                     AND p.name = policy_versions.name AND p.version = policy_versions.version)",
            )
            .bind(&versions_before)
            .execute(&mut *c)
            .await
            .map_err(q("prune policy versions"))?
            .rows_affected();
            Ok(Pruned {
                operations,
                policy_versions,
                usage_hours: usage::drop_before(c, usage_before).await?,
                advice: jobs::drop_orphans(c, &usage::ADVICE).await?,
                tune_jobs: jobs::drop_orphans(c, &jobs::TUNE_JOBS).await?,
            })
        })
        .await
    }

    async fn put_usage_hours(&self, rows: &[UsageHour]) -> Result<(), StoreError> {
        let pools: BTreeSet<(&str, &str)> = rows
            .iter()
            .map(|r| (r.namespace.as_str(), r.pool.as_str()))
            .collect();
        let pools: Vec<(&str, &str)> = pools.into_iter().collect();
        self.write("usage write", &pools, async |c| {
            for r in rows {
                usage::put_hour(c, r).await?;
            }
            Ok(())
        })
        .await
    }

    async fn usage_hours(
        &self,
        scope: UsageScope<'_>,
        from_hour: i64,
        to_hour: i64,
        with_samples: bool,
    ) -> Result<Vec<UsageHour>, StoreError> {
        usage::hours(&self.pool, scope, (from_hour, to_hour), with_samples).await
    }

    async fn usage_totals(
        &self,
        scope: UsageScope<'_>,
        from_hour: i64,
        to_hour: i64,
    ) -> Result<Vec<UsageHour>, StoreError> {
        usage::totals(&self.pool, scope, (from_hour, to_hour)).await
    }

    async fn put_advice(
        &self,
        ns: &str,
        pool: &str,
        advice: &Advice,
        created_ms: i64,
    ) -> Result<(), StoreError> {
        let me = self.leases.session().unwrap_or_default();
        self.write("advice write", &[], async |c| {
            usage::put_advice(c, (ns, pool), advice, created_ms, me).await
        })
        .await
    }

    async fn list_advice(
        &self,
        ns: &str,
        pool: &str,
        limit: u32,
    ) -> Result<Vec<Tracked<Advice>>, StoreError> {
        self.tracked_work(&usage::ADVICE, (ns, pool), (None, limit))
            .await
    }

    async fn put_tune_job(
        &self,
        ns: &str,
        pool: &str,
        job: &flexus_api::TuneJob,
        created_ms: i64,
    ) -> Result<(), StoreError> {
        let me = self.leases.session().unwrap_or_default();
        self.write("tune job write", &[], async |c| {
            jobs::put_tune_job(c, (ns, pool), job, created_ms, me).await
        })
        .await
    }

    async fn get_tune_job(
        &self,
        ns: &str,
        pool: &str,
        id: &str,
    ) -> Result<Option<Tracked<flexus_api::TuneJob>>, StoreError> {
        let mut one = self
            .tracked_work(&jobs::TUNE_JOBS, (ns, pool), (Some(id), 1))
            .await?;
        Ok(one.pop())
    }

    async fn list_tune_jobs(
        &self,
        ns: &str,
        pool: &str,
        limit: u32,
    ) -> Result<Vec<Tracked<flexus_api::TuneJob>>, StoreError> {
        self.tracked_work(&jobs::TUNE_JOBS, (ns, pool), (None, limit))
            .await
    }

    async fn interrupted_tune_jobs(&self, limit: u32) -> Result<Vec<Interrupted>, StoreError> {
        let Some(me) = self.leases.session() else {
            return Ok(Vec::new());
        };
        let now = self.db_now().await?;
        jobs::interrupted(&self.pool, limit, now, me).await
    }

    async fn take_over_tune_job(
        &self,
        was: &Interrupted,
        job: &flexus_api::TuneJob,
    ) -> Result<bool, StoreError> {
        let Some(me) = self.leases.session() else {
            return Ok(false);
        };
        self.write("tune job take-over", &[], async |c| {
            jobs::take_over(c, was, job, me).await
        })
        .await
    }

    async fn sync_leases(&self) -> Result<LeaseSync, StoreError> {
        let LeaseTable::Fenced {
            config, session, ..
        } = &self.leases
        else {
            return Ok(LeaseSync::default());
        };
        let _one = self.lease_round.lock().await;
        let started = monotonic_now();
        let (held, agents, share) = self
            .write_on(&self.lease_pool, "sync leases", &[], async |c| {
                sync_leases_in(c, self.backend, config, session).await
            })
            .await?;
        let count = held.len();
        let (acquired, lost) = self.leases.replace(started, held);
        Ok(LeaseSync {
            acquired,
            lost,
            held: count,
            agents,
            share,
        })
    }

    async fn claim_pool(&self, ns: &str, pool: &str) -> Result<bool, StoreError> {
        let LeaseTable::Fenced {
            config, session, ..
        } = &self.leases
        else {
            return Ok(true);
        };
        let _one = self.lease_round.lock().await;
        if !self.leases.alive() {
            // No live session (before the first round, or it lapsed): the next round
            // claims the pool.
            return Ok(false);
        }
        let held = self.leases.count() as i64;
        let claimed = self
            .write_on(&self.lease_pool, "claim pool", &[], async |c| {
                let now: i64 = sqlx::query_scalar(self.backend.now_ms())
                    .fetch_one(&mut *c)
                    .await
                    .map_err(q("read database clock"))?;
                let (_, share) = fair_share(c, now).await?;
                if held >= share {
                    return Ok(Vec::new());
                }
                claim(c, now, &config.holder, session, Some((ns, pool)), 1).await
            })
            .await?;
        for (ns, pool, token) in &claimed {
            self.leases.add(ns, pool, *token);
        }
        Ok(!claimed.is_empty())
    }

    fn holds(&self, ns: &str, pool: &str) -> bool {
        self.leases.holds(ns, pool)
    }
}

/// One lease round inside a write transaction: heartbeat (which keeps every lease of
/// this session alive), take back this holder's leases of an earlier session, give up
/// the surplus over the fair share, claim free or dead pools up to it. Returns the
/// leases held after it (namespace, pool, token), the number of live agents and the
/// share.
async fn sync_leases_in(
    c: &mut AnyConnection,
    backend: Backend,
    config: &LeaseConfig,
    session: &str,
) -> Result<(Vec<HeldLease>, u64, u64), StoreError> {
    let now = heartbeat(c, backend, config, session).await?;
    let me = config.holder.as_str();
    // Ours from an earlier session of the same holder (a restart): take back with a
    // new token, fencing anything the old session left.
    sqlx::query(
        "UPDATE leases SET session = $1, token = token + 1
         WHERE holder = $2 AND session <> $1 AND expires_ms <> 0",
    )
    .bind(session)
    .bind(me)
    .execute(&mut *c)
    .await
    .map_err(q("take back leases"))?;
    let (agents, share) = fair_share(c, now).await?;
    let mine = held_leases(c, me, session).await?;
    if (mine.len() as i64) > share + 1 {
        // Give up the surplus (the last ones by name) so that others can claim them.
        for (ns, pool, _) in mine.iter().skip(share as usize) {
            sqlx::query(
                "UPDATE leases SET expires_ms = 0 WHERE namespace = $1 AND pool = $2
                   AND holder = $3 AND session = $4",
            )
            .bind(ns)
            .bind(pool)
            .bind(me)
            .bind(session)
            .execute(&mut *c)
            .await
            .map_err(q("release lease"))?;
        }
    } else if (mine.len() as i64) < share {
        claim(c, now, me, session, None, share - mine.len() as i64).await?;
    }
    let held = held_leases(c, me, session).await?;
    Ok((held, agents as u64, share as u64))
}

/// Renew this agent's heartbeat; returns the database clock's now (ms).
async fn heartbeat(
    c: &mut AnyConnection,
    backend: Backend,
    config: &LeaseConfig,
    session: &str,
) -> Result<i64, StoreError> {
    let now: i64 = sqlx::query_scalar(backend.now_ms())
        .fetch_one(&mut *c)
        .await
        .map_err(q("read database clock"))?;
    sqlx::query(
        "INSERT INTO agents(holder, session, expires_ms) VALUES ($1, $2, $3)
         ON CONFLICT(holder) DO UPDATE SET session = excluded.session, expires_ms = excluded.expires_ms",
    )
    .bind(&config.holder)
    .bind(session)
    .bind(now + config.ttl.as_millis() as i64)
    .execute(&mut *c)
    .await
    .map_err(q("agent heartbeat"))?;
    Ok(now)
}

/// Live agents and one agent's fair share of the pools.
async fn fair_share(c: &mut AnyConnection, now: i64) -> Result<(i64, i64), StoreError> {
    let agents: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM agents WHERE expires_ms > $1")
        .bind(now)
        .fetch_one(&mut *c)
        .await
        .map_err(q("count agents"))?;
    let pools: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pools")
        .fetch_one(&mut *c)
        .await
        .map_err(q("count pools"))?;
    let agents = agents.max(1);
    Ok((agents, (pools + agents - 1) / agents))
}

/// Leases of this session that have not been given up, by namespace and name.
async fn held_leases(
    c: &mut AnyConnection,
    me: &str,
    session: &str,
) -> Result<Vec<HeldLease>, StoreError> {
    sqlx::query(
        "SELECT namespace, pool, token FROM leases
         WHERE holder = $1 AND session = $2 AND expires_ms <> 0 ORDER BY namespace, pool",
    )
    .bind(me)
    .bind(session)
    .fetch_all(&mut *c)
    .await
    .map_err(q("list held leases"))?
    .iter()
    .map(|r| {
        Ok((
            text(r, "namespace", "lease")?,
            text(r, "pool", "lease")?,
            int(r, "token", "lease")?,
        ))
    })
    .collect()
}

/// Claim up to `want` pools (only `only`, when given) that have no lease, a released
/// one, or one whose holder's session is no longer alive — in name order, so that
/// concurrent claimers lock rows in the same order. A pool never leased starts at
/// token 1; a lease changes hands with the next token, and only if its token is still
/// the one read (another claimer may have been first). Returns the pools claimed.
async fn claim(
    c: &mut AnyConnection,
    now: i64,
    me: &str,
    session: &str,
    only: Option<(&str, &str)>,
    want: i64,
) -> Result<Vec<HeldLease>, StoreError> {
    let (ns_filter, pool_filter) = only.unwrap_or(("", ""));
    let free = sqlx::query(
        "SELECT p.namespace AS namespace, p.name AS name, l.token AS token FROM pools p
         LEFT JOIN leases l ON l.namespace = p.namespace AND l.pool = p.name
         LEFT JOIN agents a ON a.holder = l.holder AND a.session = l.session
         WHERE (l.pool IS NULL OR l.expires_ms = 0 OR a.holder IS NULL OR a.expires_ms <= $1)
           AND ($3 = '' OR (p.namespace = $3 AND p.name = $4))
         ORDER BY p.namespace, p.name LIMIT $2",
    )
    .bind(now)
    .bind(want)
    .bind(ns_filter)
    .bind(pool_filter)
    .fetch_all(&mut *c)
    .await
    .map_err(q("find free pools"))?;
    let mut claimed = Vec::new();
    for r in &free {
        let ns = text(r, "namespace", "pool")?;
        let pool = text(r, "name", "pool")?;
        let (res, token) = match opt_int(r, "token", "lease")? {
            None => (
                sqlx::query(
                    "INSERT INTO leases(namespace, pool, holder, session, token, expires_ms)
                     VALUES ($1, $2, $3, $4, 1, 1) ON CONFLICT(namespace, pool) DO NOTHING",
                )
                .bind(&ns)
                .bind(&pool)
                .bind(me)
                .bind(session)
                .execute(&mut *c)
                .await,
                1,
            ),
            Some(old) => (
                sqlx::query(
                    "UPDATE leases SET holder = $3, session = $4, token = token + 1, expires_ms = 1
                     WHERE namespace = $1 AND pool = $2 AND token = $5",
                )
                .bind(&ns)
                .bind(&pool)
                .bind(me)
                .bind(session)
                .bind(old)
                .execute(&mut *c)
                .await,
                old + 1,
            ),
        };
        if res.map_err(q("claim lease"))?.rows_affected() == 1 {
            claimed.push((ns, pool, token));
        }
    }
    Ok(claimed)
}
