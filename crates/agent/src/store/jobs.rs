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
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::StoreError;
use super::sql::{json, opt_int, parse, text};
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

/// Write (replace by id) a job run by `(holder, session)`; the newest
/// [`TUNE_JOBS_KEEP`] of the pool stay.
pub(super) async fn put(
    c: &mut AnyConnection,
    (ns, pool): (&str, &str),
    job: &TuneJob,
    created_ms: i64,
    (holder, session): (&str, &str),
) -> Result<(), StoreError> {
    let body = json("tune job", job)?;
    sqlx::query(
        "INSERT INTO tune_jobs (namespace, pool, id, created_ms, holder, session, body)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT(namespace, pool, id) DO UPDATE SET body = excluded.body",
    )
    .bind(ns)
    .bind(pool)
    .bind(&job.id)
    .bind(created_ms)
    .bind(holder)
    .bind(session)
    .bind(body)
    .execute(&mut *c)
    .await
    .map_err(q("write tune job"))?;
    sqlx::query(
        "DELETE FROM tune_jobs WHERE namespace = $1 AND pool = $2 AND id NOT IN (
           SELECT id FROM tune_jobs WHERE namespace = $1 AND pool = $2
           ORDER BY created_ms DESC, id DESC LIMIT $3)",
    )
    .bind(ns)
    .bind(pool)
    .bind(i64::from(TUNE_JOBS_KEEP))
    .execute(&mut *c)
    .await
    .map_err(q("trim tune jobs"))?;
    Ok(())
}

/// One job of a pool, with its runner (see [`tracked`]).
pub(super) async fn get(
    db: &sqlx::AnyPool,
    (ns, pool): (&str, &str),
    id: &str,
    db_now_ms: i64,
    me: Option<(&str, &str)>,
) -> Result<Option<Tracked<TuneJob>>, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT t.body AS body, {RUNNER_COLUMNS} FROM tune_jobs t {RUNNER_JOIN}
         WHERE t.namespace = $1 AND t.pool = $2 AND t.id = $3"
    )))
    .bind(ns)
    .bind(pool)
    .bind(id)
    .fetch_optional(db)
    .await
    .map_err(q("read tune job"))?;
    let Some(r) = row else { return Ok(None) };
    let job = parse(
        || format!("tune job {id} of pool {ns}/{pool}"),
        &text(&r, "body", "tune job")?,
    )?;
    tracked(job, &r, "tune job", db_now_ms, me).map(Some)
}

/// Delete the tune jobs of pools that no longer exist (a job that ended after its pool
/// was purged).
pub(super) async fn drop_orphans(c: &mut AnyConnection) -> Result<u64, StoreError> {
    Ok(sqlx::query(
        "DELETE FROM tune_jobs WHERE NOT EXISTS (
           SELECT 1 FROM pools p WHERE p.namespace = tune_jobs.namespace AND p.name = tune_jobs.pool)",
    )
    .execute(&mut *c)
    .await
    .map_err(q("prune tune jobs"))?
    .rows_affected())
}
