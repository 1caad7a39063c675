//! The stored shape of usage rollups and advice (migration `0003_usage_and_advice.sql`)
//! and their SQLite queries. [`crate::store::Store`] exposes them as trait methods; the
//! SQLite implementation delegates here so that this data stays in one place.

use flexus_api::Purchase;
use sqlx::Row;

use crate::store::StoreError;

/// One sample of a pool, as the usage recorder took it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UsageSample {
    pub at_ms: i64,
    /// Offered load, requests/s; `None` without a load signal.
    pub load_rps: Option<f64>,
    pub ready: u32,
    pub billed: u32,
    pub desired: Option<u32>,
    pub forecast_capacity: Option<u32>,
}

/// One pool's usage in one clock hour.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageHour {
    pub namespace: String,
    pub pool: String,
    /// Start of the hour, seconds since the epoch.
    pub hour: i64,
    pub flavor: String,
    pub billed_seconds: f64,
    pub ready_seconds: f64,
    /// Ready instance-seconds above demand.
    pub idle_seconds: f64,
    /// Seconds with a load signal (the base of `idle_seconds` and violations).
    pub load_seconds: f64,
    pub requests: f64,
    pub violation_seconds: f64,
    pub actions: u32,
    pub covered_seconds: f64,
    /// Instance-seconds by (flavor, purchase).
    pub by_purchase: Vec<(String, Purchase, f64)>,
    /// Empty unless read with samples.
    pub samples: Vec<UsageSample>,
}

impl UsageHour {
    /// An empty hour.
    pub fn new(namespace: &str, pool: &str, hour: i64, flavor: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
            pool: pool.to_owned(),
            hour,
            flavor: flavor.to_owned(),
            billed_seconds: 0.0,
            ready_seconds: 0.0,
            idle_seconds: 0.0,
            load_seconds: 0.0,
            requests: 0.0,
            violation_seconds: 0.0,
            actions: 0,
            covered_seconds: 0.0,
            by_purchase: Vec::new(),
            samples: Vec::new(),
        }
    }
}

/// Which pools a usage query covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageScope<'a> {
    All,
    Namespace(&'a str),
    Pool(&'a str, &'a str),
}

type SampleTuple = (i64, Option<f64>, u32, u32, Option<u32>, Option<u32>);

fn corrupt(what: &'static str) -> impl FnOnce(serde_json::Error) -> StoreError {
    move |e| StoreError::Corrupt {
        what,
        reason: e.to_string(),
    }
}

fn q(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { what, source }
}

pub(crate) async fn put_usage_hours(
    db: &sqlx::SqlitePool,
    rows: &[UsageHour],
) -> Result<(), StoreError> {
    let mut tx = db.begin().await.map_err(q("begin usage write"))?;
    for r in rows {
        let samples: Vec<SampleTuple> = r
            .samples
            .iter()
            .map(|s| {
                (
                    s.at_ms,
                    s.load_rps,
                    s.ready,
                    s.billed,
                    s.desired,
                    s.forecast_capacity,
                )
            })
            .collect();
        let samples = serde_json::to_string(&samples).map_err(corrupt("usage samples"))?;
        let by = serde_json::to_string(&r.by_purchase).map_err(corrupt("usage by purchase"))?;
        sqlx::query(
            "INSERT OR REPLACE INTO usage_hours (namespace, pool, hour, flavor, billed_seconds,
               ready_seconds, idle_seconds, load_seconds, requests, violation_seconds, actions,
               covered_seconds, by_purchase, samples)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&r.namespace)
        .bind(&r.pool)
        .bind(r.hour)
        .bind(&r.flavor)
        .bind(r.billed_seconds)
        .bind(r.ready_seconds)
        .bind(r.idle_seconds)
        .bind(r.load_seconds)
        .bind(r.requests)
        .bind(r.violation_seconds)
        .bind(i64::from(r.actions))
        .bind(r.covered_seconds)
        .bind(by)
        .bind(samples)
        .execute(&mut *tx)
        .await
        .map_err(q("write usage hour"))?;
    }
    tx.commit().await.map_err(q("commit usage write"))
}

pub(crate) async fn usage_hours(
    db: &sqlx::SqlitePool,
    scope: UsageScope<'_>,
    from_hour: i64,
    to_hour: i64,
    with_samples: bool,
) -> Result<Vec<UsageHour>, StoreError> {
    let cols = "namespace, pool, hour, flavor, billed_seconds, ready_seconds, idle_seconds,
                load_seconds, requests, violation_seconds, actions, covered_seconds, by_purchase";
    let samples = if with_samples { ", samples" } else { "" };
    let (filter, a, b) = match scope {
        UsageScope::All => ("", None, None),
        UsageScope::Namespace(ns) => (" AND namespace = ?", Some(ns), None),
        UsageScope::Pool(ns, p) => (" AND namespace = ? AND pool = ?", Some(ns), Some(p)),
    };
    let sql = format!(
        "SELECT {cols}{samples} FROM usage_hours WHERE hour >= ? AND hour <= ?{filter}
         ORDER BY namespace, pool, hour"
    );
    // Every piece of `sql` is a constant of this function.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(from_hour)
        .bind(to_hour);
    if let Some(a) = a {
        query = query.bind(a);
    }
    if let Some(b) = b {
        query = query.bind(b);
    }
    let rows = query.fetch_all(db).await.map_err(q("read usage hours"))?;
    rows.iter()
        .map(|r| {
            let by: Vec<(String, Purchase, f64)> =
                serde_json::from_str(r.get::<&str, _>("by_purchase"))
                    .map_err(corrupt("usage by purchase"))?;
            let samples = if with_samples {
                let t: Vec<SampleTuple> = serde_json::from_str(r.get::<&str, _>("samples"))
                    .map_err(corrupt("usage samples"))?;
                t.into_iter()
                    .map(
                        |(at_ms, load_rps, ready, billed, desired, forecast_capacity)| {
                            UsageSample {
                                at_ms,
                                load_rps,
                                ready,
                                billed,
                                desired,
                                forecast_capacity,
                            }
                        },
                    )
                    .collect()
            } else {
                Vec::new()
            };
            Ok(UsageHour {
                namespace: r.get("namespace"),
                pool: r.get("pool"),
                hour: r.get("hour"),
                flavor: r.get("flavor"),
                billed_seconds: r.get("billed_seconds"),
                ready_seconds: r.get("ready_seconds"),
                idle_seconds: r.get("idle_seconds"),
                load_seconds: r.get("load_seconds"),
                requests: r.get("requests"),
                violation_seconds: r.get("violation_seconds"),
                actions: r.get::<i64, _>("actions").max(0) as u32,
                covered_seconds: r.get("covered_seconds"),
                by_purchase: by,
                samples,
            })
        })
        .collect()
}

pub(crate) async fn drop_usage_before(db: &sqlx::SqlitePool, hour: i64) -> Result<u64, StoreError> {
    sqlx::query("DELETE FROM usage_hours WHERE hour < ?")
        .bind(hour)
        .execute(db)
        .await
        .map(|r| r.rows_affected())
        .map_err(q("prune usage hours"))
}

/// At most this many answers of the advisor are kept per pool (the newest).
pub const ADVICE_KEEP: i64 = 50;

pub(crate) async fn put_advice(
    db: &sqlx::SqlitePool,
    ns: &str,
    pool: &str,
    advice: &flexus_api::Advice,
    created_ms: i64,
) -> Result<(), StoreError> {
    let body = serde_json::to_string(advice).map_err(corrupt("advice"))?;
    let mut tx = db.begin().await.map_err(q("begin advice write"))?;
    sqlx::query(
        "INSERT OR REPLACE INTO advice (namespace, pool, id, created_ms, body) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(ns)
    .bind(pool)
    .bind(&advice.id)
    .bind(created_ms)
    .bind(body)
    .execute(&mut *tx)
    .await
    .map_err(q("write advice"))?;
    sqlx::query(
        "DELETE FROM advice WHERE namespace = ? AND pool = ? AND id NOT IN
           (SELECT id FROM advice WHERE namespace = ? AND pool = ? ORDER BY created_ms DESC LIMIT ?)",
    )
    .bind(ns)
    .bind(pool)
    .bind(ns)
    .bind(pool)
    .bind(ADVICE_KEEP)
    .execute(&mut *tx)
    .await
    .map_err(q("trim advice"))?;
    tx.commit().await.map_err(q("commit advice write"))
}

pub(crate) async fn list_advice(
    db: &sqlx::SqlitePool,
    ns: &str,
    pool: &str,
    limit: u32,
) -> Result<Vec<flexus_api::Advice>, StoreError> {
    let rows = sqlx::query(
        "SELECT body FROM advice WHERE namespace = ? AND pool = ?
         ORDER BY created_ms DESC, id DESC LIMIT ?",
    )
    .bind(ns)
    .bind(pool)
    .bind(i64::from(limit))
    .fetch_all(db)
    .await
    .map_err(q("read advice"))?;
    rows.iter()
        .map(|r| serde_json::from_str(r.get::<&str, _>("body")).map_err(corrupt("advice")))
        .collect()
}
