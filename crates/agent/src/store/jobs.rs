//! Work an agent accepted and finishes later — tune jobs (migrations
//! `sqlite/0008_tune_jobs.sql`, `postgres/0005_tune_jobs.sql`) and the advisor's
//! requests (`sqlite/0009_advice_runner.sql`, `postgres/0006_advice_runner.sql`) — stored
//! with the agent session that works on it.
//!
//! Such work is written when it is accepted (before the client is answered) and again
//! when it ends, so that any agent sharing the store answers a poll, and a restart
//! loses nothing accepted. Whether the session working on it is alive is read from the
//! `agents` heartbeat rows on the database's clock, as leases are ([`Tracked`]): work
//! still unfinished whose session is gone was interrupted.

use flexus_api::TuneJob;
use serde::de::DeserializeOwned;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::StoreError;
use super::sql::{int, json, opt_int, parse, text};
use super::tx::q;

/// At most this many tune jobs are kept per pool (the newest).
pub const TUNE_JOBS_KEEP: u32 = 20;

/// Stored work (a tune job, a request to the advisor) and whether the agent session
/// that works on it is alive.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracked<T> {
    pub value: T,
    /// The agent that accepted the work (`lease.holder`; empty in an unshared store,
    /// or for advice stored before the store recorded it).
    pub holder: String,
    /// Whether that agent's session still renews its heartbeat (always true when the
    /// holder is empty, and for this process's own work). Only meaningful while the
    /// work is unfinished.
    pub runner_alive: bool,
}

/// Joins a query on table `t` (with `holder` and `session` columns) to the heartbeat
/// of the session named there; [`tracked`] reads [`RUNNER_COLUMNS`].
pub(super) const RUNNER_JOIN: &str =
    "LEFT JOIN agents a ON a.holder = t.holder AND a.session = t.session";
/// The columns [`tracked`] reads, selected through [`RUNNER_JOIN`].
pub(super) const RUNNER_COLUMNS: &str =
    "t.holder AS holder, t.session AS session, a.expires_ms AS expires_ms";

/// `value` with its runner, from a row with [`RUNNER_COLUMNS`], at `db_now_ms`
/// (the database's clock). Work of `me` (this process's holder and session) is alive:
/// this process works on it, whether or not its heartbeat has been written yet.
pub(super) fn tracked<T>(
    value: T,
    r: &AnyRow,
    what: &str,
    db_now_ms: i64,
    me: Option<(&str, &str)>,
) -> Result<Tracked<T>, StoreError> {
    let holder = text(r, "holder", what)?;
    let session = text(r, "session", what)?;
    let runner_alive = holder.is_empty()
        || me == Some((holder.as_str(), session.as_str()))
        || opt_int(r, "expires_ms", what)?.is_some_and(|e| e > db_now_ms);
    Ok(Tracked {
        value,
        holder,
        runner_alive,
    })
}

/// A table of tracked work: `namespace, pool, id, created_ms, body, holder, session`.
pub(super) struct WorkTable {
    pub table: &'static str,
    /// What one row is (`tune job`), as errors name it.
    pub what: &'static str,
    /// How the store's errors name a read, a write and a trim of it.
    pub read: &'static str,
    pub write: &'static str,
    pub trim: &'static str,
    pub prune: &'static str,
    /// At most this many rows per pool are kept (the newest).
    pub keep: i64,
}

/// Tune jobs.
pub(super) const TUNE_JOBS: WorkTable = WorkTable {
    table: "tune_jobs",
    what: "tune job",
    read: "read tune jobs",
    write: "write tune job",
    trim: "trim tune jobs",
    prune: "prune tune jobs",
    keep: TUNE_JOBS_KEEP as i64,
};

/// Write (replace by id) work of `(holder, session)` with its JSON `body`; the newest
/// `t.keep` of the pool stay.
pub(super) async fn put(
    c: &mut AnyConnection,
    t: &WorkTable,
    (ns, pool, id): (&str, &str, &str),
    body: String,
    created_ms: i64,
    (holder, session): (&str, &str),
) -> Result<(), StoreError> {
    let table = t.table;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {table} (namespace, pool, id, created_ms, body, holder, session)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT(namespace, pool, id) DO UPDATE SET created_ms = excluded.created_ms,
           body = excluded.body, holder = excluded.holder, session = excluded.session"
    )))
    .bind(ns)
    .bind(pool)
    .bind(id)
    .bind(created_ms)
    .bind(body)
    .bind(holder)
    .bind(session)
    .execute(&mut *c)
    .await
    .map_err(q(t.write))?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM {table} WHERE namespace = $1 AND pool = $2 AND id NOT IN (
           SELECT id FROM {table} WHERE namespace = $1 AND pool = $2
           ORDER BY created_ms DESC, id DESC LIMIT $3)"
    )))
    .bind(ns)
    .bind(pool)
    .bind(t.keep)
    .execute(&mut *c)
    .await
    .map_err(q(t.trim))?;
    Ok(())
}

/// Write (replace by id) a tune job run by `runner`, its state in its own column too
/// (migration `sqlite/0010_tune_job_state.sql`).
pub(super) async fn put_tune_job(
    c: &mut AnyConnection,
    (ns, pool): (&str, &str),
    job: &TuneJob,
    created_ms: i64,
    runner: (&str, &str),
) -> Result<(), StoreError> {
    let body = json("tune job", job)?;
    put(c, &TUNE_JOBS, (ns, pool, &job.id), body, created_ms, runner).await?;
    sqlx::query("UPDATE tune_jobs SET state = $4 WHERE namespace = $1 AND pool = $2 AND id = $3")
        .bind(ns)
        .bind(pool)
        .bind(&job.id)
        .bind(&job.state)
        .execute(&mut *c)
        .await
        .map_err(q(TUNE_JOBS.write))?;
    Ok(())
}

/// A tune job still `running` whose agent session is gone (stopped, killed, or
/// restarted under a new session), as read: [`take_over`] changes it only if nobody
/// did since.
#[derive(Debug, Clone, PartialEq)]
pub struct Interrupted {
    pub namespace: String,
    pub pool: String,
    pub created_ms: i64,
    pub job: TuneJob,
    /// The agent that ran it.
    pub holder: String,
    session: String,
    /// The body as stored (compared as written, not as re-encoded).
    body: String,
}

/// The oldest (at most `limit`) running tune jobs whose session has no live heartbeat
/// at `db_now_ms`, other than `me`'s.
pub(super) async fn interrupted(
    db: &sqlx::AnyPool,
    limit: u32,
    db_now_ms: i64,
    (holder, session): (&str, &str),
) -> Result<Vec<Interrupted>, StoreError> {
    let rows = sqlx::query(
        "SELECT t.namespace AS namespace, t.pool AS pool, t.id AS id, t.created_ms AS created_ms,
                t.body AS body, t.holder AS holder, t.session AS session
         FROM tune_jobs t LEFT JOIN agents a ON a.holder = t.holder AND a.session = t.session
         WHERE t.state = 'running' AND t.holder <> '' AND NOT (t.holder = $1 AND t.session = $2)
           AND (a.expires_ms IS NULL OR a.expires_ms <= $3)
         ORDER BY t.created_ms, t.id LIMIT $4",
    )
    .bind(holder)
    .bind(session)
    .bind(db_now_ms)
    .bind(i64::from(limit))
    .fetch_all(db)
    .await
    .map_err(q(TUNE_JOBS.read))?;
    let read = |r: &AnyRow| -> Result<Interrupted, StoreError> {
        let (ns, pool, id) = (
            text(r, "namespace", "tune job")?,
            text(r, "pool", "tune job")?,
            text(r, "id", "tune job")?,
        );
        let body = text(r, "body", "tune job")?;
        Ok(Interrupted {
            job: parse(|| format!("tune job {id} of pool {ns}/{pool}"), &body)?,
            created_ms: int(r, "created_ms", "tune job")?,
            holder: text(r, "holder", "tune job")?,
            session: text(r, "session", "tune job")?,
            namespace: ns,
            pool,
            body,
        })
    };
    // A job that does not read back is left where it is (a poll names it as corrupt)
    // rather than keeping every other interrupted job from being resumed.
    Ok(rows
        .iter()
        .filter_map(|r| {
            read(r)
                .inspect_err(
                    |e| tracing::warn!(error = %e, "an interrupted tune job is not resumed"),
                )
                .ok()
        })
        .collect())
}

/// Write `job` over the interrupted job `was` as run by `me`, if the row is still as
/// read (same runner, same body): true when this call took it over, false when another
/// agent did first or its runner wrote it meanwhile.
pub(super) async fn take_over(
    c: &mut AnyConnection,
    was: &Interrupted,
    job: &TuneJob,
    (holder, session): (&str, &str),
) -> Result<bool, StoreError> {
    let n = sqlx::query(
        "UPDATE tune_jobs SET holder = $1, session = $2, body = $3, state = $4
         WHERE namespace = $5 AND pool = $6 AND id = $7
           AND holder = $8 AND session = $9 AND body = $10",
    )
    .bind(holder)
    .bind(session)
    .bind(json("tune job", job)?)
    .bind(&job.state)
    .bind(&was.namespace)
    .bind(&was.pool)
    .bind(&was.job.id)
    .bind(&was.holder)
    .bind(&was.session)
    .bind(&was.body)
    .execute(&mut *c)
    .await
    .map_err(q(TUNE_JOBS.write))?
    .rows_affected();
    Ok(n == 1)
}

/// The newest work of a pool in `t` (newest first, at most `limit`; with `id`, only
/// that one), each with its runner (see [`tracked`]).
pub(super) async fn list<T: DeserializeOwned>(
    db: &sqlx::AnyPool,
    t: &WorkTable,
    (ns, pool): (&str, &str),
    (id, limit): (Option<&str>, u32),
    db_now_ms: i64,
    me: Option<(&str, &str)>,
) -> Result<Vec<Tracked<T>>, StoreError> {
    let table = t.table;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT t.id AS id, t.body AS body, {RUNNER_COLUMNS} FROM {table} t {RUNNER_JOIN}
         WHERE t.namespace = $1 AND t.pool = $2 AND ($3 IS NULL OR t.id = $3)
         ORDER BY t.created_ms DESC, t.id DESC LIMIT $4"
    )))
    .bind(ns)
    .bind(pool)
    .bind(id)
    .bind(i64::from(limit))
    .fetch_all(db)
    .await
    .map_err(q(t.read))?
    .iter()
    .map(|r| {
        let id = text(r, "id", t.what)?;
        let value = parse(
            || format!("{} {id} of pool {ns}/{pool}", t.what),
            &text(r, "body", t.what)?,
        )?;
        tracked(value, r, t.what, db_now_ms, me)
    })
    .collect()
}

/// Delete the work of pools that no longer exist (work that ended after its pool was
/// purged).
pub(super) async fn drop_orphans(c: &mut AnyConnection, t: &WorkTable) -> Result<u64, StoreError> {
    let table = t.table;
    Ok(sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM {table} WHERE NOT EXISTS (
           SELECT 1 FROM pools p WHERE p.namespace = {table}.namespace AND p.name = {table}.pool)"
    )))
    .execute(&mut *c)
    .await
    .map_err(q(t.prune))?
    .rows_affected())
}
