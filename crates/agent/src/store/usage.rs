//! The operator's data: hourly usage rollups (written by the usage recorder, read by
//! the cost report, the dashboard and the advisor) and the advisor's answers — their
//! stored shapes and their SQL, written once for SQLite and PostgreSQL
//! (migrations `sqlite/0003_usage_and_advice.sql`, `postgres/0002_usage_and_advice.sql`;
//! `usage_pools`, the list a report walks: `sqlite/0007_usage_pools.sql`,
//! `postgres/0004_usage_pools.sql`).
//!
//! A rollup keeps its own flavor's instance-seconds in two columns and any other
//! flavor's (only around a flavor change) as a small JSON list, so that a report over
//! many pools sums plain columns in SQL and parses JSON only for the rare rows that
//! have some.

use std::collections::BTreeMap;

use flexus_api::{Advice, Purchase};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::StoreError;
use super::jobs::{self, WorkTable};
use super::sql::{float, int, json, opt_text, parse, text};
use super::tx::q;

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

impl<'a> UsageScope<'a> {
    /// The SQL condition (parameters from `$3` on, columns prefixed by `t`) and its binds.
    fn filter(self, t: &str) -> (String, Vec<&'a str>) {
        match self {
            UsageScope::All => (String::new(), vec![]),
            UsageScope::Namespace(ns) => (format!(" AND {t}namespace = $3"), vec![ns]),
            UsageScope::Pool(ns, p) => (
                format!(" AND {t}namespace = $3 AND {t}pool = $4"),
                vec![ns, p],
            ),
        }
    }
}

/// At most this many answers of the advisor are kept per pool (the newest).
pub const ADVICE_KEEP: i64 = 50;

type SampleTuple = (i64, Option<f64>, u32, u32, Option<u32>, Option<u32>);

/// Instance-seconds by (flavor, purchase), as in [`UsageHour::by_purchase`].
type ByPurchase = Vec<(String, Purchase, f64)>;

/// A rollup's instance-seconds of its own flavor (on demand, spot) and of other flavors.
fn split_purchase(r: &UsageHour) -> (f64, f64, Vec<(String, Purchase, f64)>) {
    let (mut od, mut spot, mut others) = (0.0, 0.0, Vec::new());
    for (f, p, secs) in &r.by_purchase {
        match (f == &r.flavor, p) {
            (true, Purchase::OnDemand) => od += secs,
            (true, Purchase::Spot) => spot += secs,
            (false, _) => others.push((f.clone(), *p, *secs)),
        }
    }
    (od, spot, others)
}

/// `by_purchase` from the stored columns.
fn join_purchase(
    flavor: &str,
    od: f64,
    spot: f64,
    others: Vec<(String, Purchase, f64)>,
) -> Vec<(String, Purchase, f64)> {
    let mut by = Vec::with_capacity(2 + others.len());
    if od > 0.0 {
        by.push((flavor.to_owned(), Purchase::OnDemand, od));
    }
    if spot > 0.0 {
        by.push((flavor.to_owned(), Purchase::Spot, spot));
    }
    by.extend(others);
    by
}

fn others_of(r: &AnyRow, what: &str) -> Result<Vec<(String, Purchase, f64)>, StoreError> {
    parse(
        || format!("{what} (other flavors)"),
        &text(r, "other_flavors", what)?,
    )
}

/// The numeric columns of a rollup row (no purchase breakdown, no samples).
fn hour_from_row(r: &AnyRow) -> Result<UsageHour, StoreError> {
    let namespace = text(r, "namespace", "usage hour")?;
    let pool = text(r, "pool", "usage hour")?;
    let what = format!("usage hour of pool {namespace}/{pool}");
    Ok(UsageHour {
        hour: int(r, "hour", &what)?,
        flavor: text(r, "flavor", &what)?,
        billed_seconds: float(r, "billed_seconds", &what)?,
        ready_seconds: float(r, "ready_seconds", &what)?,
        idle_seconds: float(r, "idle_seconds", &what)?,
        load_seconds: float(r, "load_seconds", &what)?,
        requests: float(r, "requests", &what)?,
        violation_seconds: float(r, "violation_seconds", &what)?,
        actions: int(r, "actions", &what)?.clamp(0, u32::MAX.into()) as u32,
        covered_seconds: float(r, "covered_seconds", &what)?,
        by_purchase: Vec::new(),
        samples: Vec::new(),
        namespace,
        pool,
    })
}

/// Write (replace) one rollup and its samples.
pub(super) async fn put_hour(c: &mut AnyConnection, r: &UsageHour) -> Result<(), StoreError> {
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
    let samples = json("usage samples", &samples)?;
    let (od, spot, others) = split_purchase(r);
    let others = json("usage by purchase", &others)?;
    sqlx::query(
        "INSERT INTO usage_hours (namespace, pool, hour, flavor, billed_seconds, ready_seconds,
           idle_seconds, load_seconds, requests, violation_seconds, actions, covered_seconds,
           on_demand_seconds, spot_seconds, other_flavors)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
         ON CONFLICT(namespace, pool, hour) DO UPDATE SET flavor = excluded.flavor,
           billed_seconds = excluded.billed_seconds, ready_seconds = excluded.ready_seconds,
           idle_seconds = excluded.idle_seconds, load_seconds = excluded.load_seconds,
           requests = excluded.requests, violation_seconds = excluded.violation_seconds,
           actions = excluded.actions, covered_seconds = excluded.covered_seconds,
           on_demand_seconds = excluded.on_demand_seconds, spot_seconds = excluded.spot_seconds,
           other_flavors = excluded.other_flavors",
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
    .bind(od)
    .bind(spot)
    .bind(others)
    .execute(&mut *c)
    .await
    .map_err(q("write usage hour"))?;
    sqlx::query(
        "INSERT INTO usage_pools (namespace, pool) VALUES ($1, $2)
         ON CONFLICT(namespace, pool) DO NOTHING",
    )
    .bind(&r.namespace)
    .bind(&r.pool)
    .execute(&mut *c)
    .await
    .map_err(q("list the pool of a usage hour"))?;
    sqlx::query(
        "INSERT INTO usage_samples (namespace, pool, hour, samples) VALUES ($1, $2, $3, $4)
         ON CONFLICT(namespace, pool, hour) DO UPDATE SET samples = excluded.samples",
    )
    .bind(&r.namespace)
    .bind(&r.pool)
    .bind(r.hour)
    .bind(samples)
    .execute(&mut *c)
    .await
    .map_err(q("write usage samples"))?;
    Ok(())
}

/// Rollups of `scope` in `[from_hour, to_hour]`, ordered by pool and hour.
pub(super) async fn hours(
    db: &sqlx::AnyPool,
    scope: UsageScope<'_>,
    (from_hour, to_hour): (i64, i64),
    with_samples: bool,
) -> Result<Vec<UsageHour>, StoreError> {
    let (samples, join) = if with_samples {
        (
            ", s.samples AS samples",
            " LEFT JOIN usage_samples s
                ON s.namespace = h.namespace AND s.pool = h.pool AND s.hour = h.hour",
        )
    } else {
        ("", "")
    };
    let (filter, binds) = scope.filter("h.");
    let sql = format!(
        "SELECT h.namespace AS namespace, h.pool AS pool, h.hour AS hour, h.flavor AS flavor,
           h.billed_seconds AS billed_seconds, h.ready_seconds AS ready_seconds,
           h.idle_seconds AS idle_seconds, h.load_seconds AS load_seconds,
           h.requests AS requests, h.violation_seconds AS violation_seconds,
           h.actions AS actions, h.covered_seconds AS covered_seconds,
           h.on_demand_seconds AS on_demand_seconds, h.spot_seconds AS spot_seconds,
           h.other_flavors AS other_flavors{samples}
         FROM usage_hours h{join} WHERE h.hour >= $1 AND h.hour <= $2{filter}
         ORDER BY h.namespace, h.pool, h.hour"
    );
    // Every piece of `sql` is a constant of this function; values are bound.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(from_hour)
        .bind(to_hour);
    for b in binds {
        query = query.bind(b);
    }
    let rows = query.fetch_all(db).await.map_err(q("read usage hours"))?;
    rows.iter()
        .map(|r| {
            let h = hour_from_row(r)?;
            let what = format!("usage hour {} of pool {}/{}", h.hour, h.namespace, h.pool);
            let by_purchase = join_purchase(
                &h.flavor,
                float(r, "on_demand_seconds", &what)?,
                float(r, "spot_seconds", &what)?,
                others_of(r, &what)?,
            );
            let samples = match with_samples {
                true => samples_of(r, &what)?,
                false => Vec::new(),
            };
            Ok(UsageHour {
                by_purchase,
                samples,
                ..h
            })
        })
        .collect()
}

fn samples_of(r: &AnyRow, what: &str) -> Result<Vec<UsageSample>, StoreError> {
    let Some(text) = opt_text(r, "samples", what)? else {
        return Ok(Vec::new());
    };
    let t: Vec<SampleTuple> = parse(|| format!("{what} (samples)"), &text)?;
    Ok(t.into_iter()
        .map(
            |(at_ms, load_rps, ready, billed, desired, forecast_capacity)| UsageSample {
                at_ms,
                load_rps,
                ready,
                billed,
                desired,
                forecast_capacity,
            },
        )
        .collect())
}

/// The rollups of `scope` over `[from_hour, to_hour]` summed per pool in SQL: one row
/// per pool, `hour` its newest hour and `flavor` that hour's, no samples.
///
/// One pass: `usage_pools` is walked in key order and each pool's window read as a
/// range of `usage_hours`' primary key (`CROSS JOIN` fixes that join order in SQLite,
/// whose planner otherwise drives it by the hour index: a key lookup per row and a
/// sort to group them), so rows outside the window are never read and the groups come
/// out in order. A pool whose window holds one flavor and no other-flavor list — every
/// pool but those around a flavor change — is complete from that pass; the others are
/// summed again on their own ([`totals_by_flavor`]).
pub(super) async fn totals(
    db: &sqlx::AnyPool,
    scope: UsageScope<'_>,
    (from_hour, to_hour): (i64, i64),
) -> Result<Vec<UsageHour>, StoreError> {
    let (filter, binds) = scope.filter("p.");
    let sql = format!(
        "SELECT p.namespace AS namespace, p.pool AS pool, MAX(h.hour) AS hour,
           MIN(h.flavor) AS flavor, MAX(h.flavor) AS flavor_max,
           SUM(h.billed_seconds) AS billed_seconds, SUM(h.ready_seconds) AS ready_seconds,
           SUM(h.idle_seconds) AS idle_seconds, SUM(h.load_seconds) AS load_seconds,
           SUM(h.requests) AS requests, SUM(h.violation_seconds) AS violation_seconds,
           CAST(SUM(h.actions) AS BIGINT) AS actions, SUM(h.covered_seconds) AS covered_seconds,
           SUM(h.on_demand_seconds) AS od, SUM(h.spot_seconds) AS spot,
           CAST(SUM(CASE WHEN h.other_flavors <> '[]' THEN 1 ELSE 0 END) AS BIGINT) AS mixed
         FROM usage_pools p CROSS JOIN usage_hours h
         WHERE h.namespace = p.namespace AND h.pool = p.pool
           AND h.hour >= $1 AND h.hour <= $2{filter}
         GROUP BY p.namespace, p.pool
         ORDER BY p.namespace, p.pool"
    );
    // Every piece of `sql` is a constant of this function; values are bound.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(from_hour)
        .bind(to_hour);
    for b in binds {
        query = query.bind(b);
    }
    let rows = query.fetch_all(db).await.map_err(q("sum usage hours"))?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let h = hour_from_row(r)?;
        let what = format!("usage of pool {}/{}", h.namespace, h.pool);
        let one_flavor = text(r, "flavor_max", &what)? == h.flavor;
        if one_flavor && int(r, "mixed", &what)? == 0 {
            let (od, spot) = (float(r, "od", &what)?, float(r, "spot", &what)?);
            out.push(UsageHour {
                by_purchase: join_purchase(&h.flavor, od, spot, Vec::new()),
                ..h
            });
        } else {
            let scope = UsageScope::Pool(&h.namespace, &h.pool);
            out.extend(totals_by_flavor(db, scope, (from_hour, to_hour)).await?);
        }
    }
    Ok(out)
}

/// [`totals`] for a window that mixes flavors: sums per pool, then the newest hour's
/// flavor joined back, the own-flavor seconds summed per flavor, and the other-flavor
/// lists parsed.
async fn totals_by_flavor(
    db: &sqlx::AnyPool,
    scope: UsageScope<'_>,
    (from_hour, to_hour): (i64, i64),
) -> Result<Vec<UsageHour>, StoreError> {
    let (filter, binds) = scope.filter("");
    let run = |sql: String| {
        // Every piece of `sql` is a constant of this function; values are bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(from_hour)
            .bind(to_hour);
        for b in &binds {
            query = query.bind(*b);
        }
        query.fetch_all(db)
    };
    // The flavor is the newest hour's: joined back on (pool, MAX(hour)).
    let sums = format!(
        "SELECT t.namespace AS namespace, t.pool AS pool, t.hour AS hour, h.flavor AS flavor,
           t.billed_seconds AS billed_seconds, t.ready_seconds AS ready_seconds,
           t.idle_seconds AS idle_seconds, t.load_seconds AS load_seconds,
           t.requests AS requests, t.violation_seconds AS violation_seconds,
           t.actions AS actions, t.covered_seconds AS covered_seconds
         FROM (SELECT namespace, pool, MAX(hour) AS hour,
                 SUM(billed_seconds) AS billed_seconds, SUM(ready_seconds) AS ready_seconds,
                 SUM(idle_seconds) AS idle_seconds, SUM(load_seconds) AS load_seconds,
                 SUM(requests) AS requests, SUM(violation_seconds) AS violation_seconds,
                 CAST(SUM(actions) AS BIGINT) AS actions,
                 SUM(covered_seconds) AS covered_seconds
               FROM usage_hours WHERE hour >= $1 AND hour <= $2{filter}
               GROUP BY namespace, pool) t
         JOIN usage_hours h ON h.namespace = t.namespace AND h.pool = t.pool AND h.hour = t.hour
         ORDER BY t.namespace, t.pool"
    );
    let own = format!(
        "SELECT namespace, pool, flavor, SUM(on_demand_seconds) AS od, SUM(spot_seconds) AS spot
         FROM usage_hours WHERE hour >= $1 AND hour <= $2{filter}
         GROUP BY namespace, pool, flavor"
    );
    // Other flavors appear only around a flavor change: those few rows are parsed here.
    let others = format!(
        "SELECT namespace, pool, hour, other_flavors FROM usage_hours
         WHERE other_flavors <> '[]' AND hour >= $1 AND hour <= $2{filter}"
    );
    let mut out: Vec<UsageHour> = run(sums)
        .await
        .map_err(q("sum usage hours"))?
        .iter()
        .map(hour_from_row)
        .collect::<Result<_, _>>()?;
    let mut parts: BTreeMap<(String, String), ByPurchase> = BTreeMap::new();
    for r in run(own).await.map_err(q("sum usage by purchase"))? {
        let key = (text(&r, "namespace", "usage")?, text(&r, "pool", "usage")?);
        let what = format!("usage of pool {}/{}", key.0, key.1);
        let flavor = text(&r, "flavor", &what)?;
        let (od, spot) = (float(&r, "od", &what)?, float(&r, "spot", &what)?);
        let e = parts.entry(key).or_default();
        e.push((flavor.clone(), Purchase::OnDemand, od));
        e.push((flavor, Purchase::Spot, spot));
    }
    for r in run(others)
        .await
        .map_err(q("read usage of other flavors"))?
    {
        let key = (text(&r, "namespace", "usage")?, text(&r, "pool", "usage")?);
        let what = format!(
            "usage hour {} of pool {}/{}",
            int(&r, "hour", "usage")?,
            key.0,
            key.1
        );
        parts.entry(key).or_default().extend(others_of(&r, &what)?);
    }
    for row in &mut out {
        let Some(list) = parts.remove(&(row.namespace.clone(), row.pool.clone())) else {
            continue;
        };
        for (flavor, purchase, secs) in list.into_iter().filter(|p| p.2 > 0.0) {
            match row
                .by_purchase
                .iter_mut()
                .find(|e| e.0 == flavor && e.1 == purchase)
            {
                Some(e) => e.2 += secs,
                None => row.by_purchase.push((flavor, purchase, secs)),
            }
        }
    }
    Ok(out)
}

/// Delete rollups (and their samples) of hours before `hour`; returns how many rollups.
pub(super) async fn drop_before(c: &mut AnyConnection, hour: i64) -> Result<u64, StoreError> {
    sqlx::query("DELETE FROM usage_samples WHERE hour < $1")
        .bind(hour)
        .execute(&mut *c)
        .await
        .map_err(q("prune usage samples"))?;
    let dropped = sqlx::query("DELETE FROM usage_hours WHERE hour < $1")
        .bind(hour)
        .execute(&mut *c)
        .await
        .map_err(q("prune usage hours"))?
        .rows_affected();
    sqlx::query(
        "DELETE FROM usage_pools WHERE NOT EXISTS (SELECT 1 FROM usage_hours h
           WHERE h.namespace = usage_pools.namespace AND h.pool = usage_pools.pool)",
    )
    .execute(&mut *c)
    .await
    .map_err(q("prune the pools with usage"))?;
    Ok(dropped)
}

/// Write (replace by id) an answer of the advisor; the newest [`ADVICE_KEEP`] per pool
/// stay.
pub(super) async fn put_advice(
    c: &mut AnyConnection,
    (ns, pool): (&str, &str),
    advice: &Advice,
    created_ms: i64,
    runner: (&str, &str),
) -> Result<(), StoreError> {
    let body = json("advice", advice)?;
    jobs::put(c, &ADVICE, (ns, pool, &advice.id), body, created_ms, runner).await
}

/// The advisor's answers.
pub(super) const ADVICE: WorkTable = WorkTable {
    table: "advice",
    what: "advice",
    read: "read advice",
    write: "write advice",
    trim: "trim advice",
    prune: "prune advice",
    keep: ADVICE_KEEP,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rollup_splits_its_own_flavor_into_columns_and_keeps_the_others_as_a_list() {
        let mut h = UsageHour::new("ns", "p", 0, "x1.2u.4g");
        h.by_purchase = vec![
            ("x1.2u.4g".into(), Purchase::OnDemand, 10.0),
            ("x1.4u.8g".into(), Purchase::Spot, 5.0),
            ("x1.2u.4g".into(), Purchase::Spot, 2.0),
        ];
        let (od, spot, others) = split_purchase(&h);
        assert_eq!((od, spot), (10.0, 2.0));
        assert_eq!(others, vec![("x1.4u.8g".into(), Purchase::Spot, 5.0)]);
        let back = join_purchase(&h.flavor, od, spot, others);
        assert_eq!(back.len(), 3);
        assert!(back.contains(&("x1.2u.4g".into(), Purchase::Spot, 2.0)));
        assert!(
            join_purchase("f", 0.0, 0.0, vec![]).is_empty(),
            "no zero entries"
        );
    }
}
