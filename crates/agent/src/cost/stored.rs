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

/// The numeric columns of a rollup row (no purchase breakdown, no samples).
fn hour_from_row(r: &sqlx::sqlite::SqliteRow) -> UsageHour {
    UsageHour {
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
        by_purchase: Vec::new(),
        samples: Vec::new(),
    }
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
        let (od, spot, others) = split_purchase(r);
        let by = serde_json::to_string(&others).map_err(corrupt("usage by purchase"))?;
        sqlx::query(
            "INSERT OR REPLACE INTO usage_hours (namespace, pool, hour, flavor, billed_seconds,
               ready_seconds, idle_seconds, load_seconds, requests, violation_seconds, actions,
               covered_seconds, on_demand_seconds, spot_seconds, other_flavors)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        .bind(by)
        .execute(&mut *tx)
        .await
        .map_err(q("write usage hour"))?;
        sqlx::query(
            "INSERT OR REPLACE INTO usage_samples (namespace, pool, hour, samples) VALUES (?, ?, ?, ?)",
        )
        .bind(&r.namespace)
        .bind(&r.pool)
        .bind(r.hour)
        .bind(samples)
        .execute(&mut *tx)
        .await
        .map_err(q("write usage samples"))?;
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
    let cols = "h.namespace AS namespace, h.pool AS pool, h.hour AS hour, flavor, billed_seconds,
                ready_seconds, idle_seconds, load_seconds, requests, violation_seconds, actions,
                covered_seconds, on_demand_seconds, spot_seconds, other_flavors";
    let (samples, join) = if with_samples {
        (
            ", s.samples AS samples",
            " LEFT JOIN usage_samples s ON s.namespace = h.namespace AND s.pool = h.pool AND s.hour = h.hour",
        )
    } else {
        ("", "")
    };
    let (filter, a, b) = match scope {
        UsageScope::All => ("", None, None),
        UsageScope::Namespace(ns) => (" AND h.namespace = ?", Some(ns), None),
        UsageScope::Pool(ns, p) => (" AND h.namespace = ? AND h.pool = ?", Some(ns), Some(p)),
    };
    let sql = format!(
        "SELECT {cols}{samples} FROM usage_hours h{join} WHERE h.hour >= ? AND h.hour <= ?{filter}
         ORDER BY h.namespace, h.pool, h.hour"
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
            let others: Vec<(String, Purchase, f64)> =
                serde_json::from_str(r.get::<&str, _>("other_flavors"))
                    .map_err(corrupt("usage by purchase"))?;
            let flavor: String = r.get("flavor");
            let by = join_purchase(
                &flavor,
                r.get("on_demand_seconds"),
                r.get("spot_seconds"),
                others,
            );
            let samples = if with_samples {
                let text = r.get::<Option<&str>, _>("samples").unwrap_or("[]");
                let t: Vec<SampleTuple> =
                    serde_json::from_str(text).map_err(corrupt("usage samples"))?;
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
                by_purchase: by,
                samples,
                ..hour_from_row(r)
            })
        })
        .collect()
}

/// The rollups of `scope` over `[from_hour, to_hour]` summed per pool, in SQL (one row
/// per pool, `hour` = its newest hour, `flavor` = that hour's; no samples): what a report
/// over many pools reads.
pub(crate) async fn usage_totals(
    db: &sqlx::SqlitePool,
    scope: UsageScope<'_>,
    from_hour: i64,
    to_hour: i64,
) -> Result<Vec<UsageHour>, StoreError> {
    let (filter, a, b) = match scope {
        UsageScope::All => ("", None, None),
        UsageScope::Namespace(ns) => (" AND namespace = ?", Some(ns), None),
        UsageScope::Pool(ns, p) => (" AND namespace = ? AND pool = ?", Some(ns), Some(p)),
    };
    // SQLite: the bare `flavor` comes from the row holding MAX(hour).
    let sums = format!(
        "SELECT namespace, pool, MAX(hour) AS hour, flavor, SUM(billed_seconds) AS billed_seconds,
           SUM(ready_seconds) AS ready_seconds, SUM(idle_seconds) AS idle_seconds,
           SUM(load_seconds) AS load_seconds, SUM(requests) AS requests,
           SUM(violation_seconds) AS violation_seconds, SUM(actions) AS actions,
           SUM(covered_seconds) AS covered_seconds
         FROM usage_hours WHERE hour >= ? AND hour <= ?{filter}
         GROUP BY namespace, pool ORDER BY namespace, pool"
    );
    let own = format!(
        "SELECT namespace, pool, flavor, SUM(on_demand_seconds) AS od, SUM(spot_seconds) AS spot
         FROM usage_hours WHERE hour >= ? AND hour <= ?{filter}
         GROUP BY namespace, pool, flavor ORDER BY namespace, pool"
    );
    // Other flavors appear only around a flavor change: json_each on those rows alone.
    let others = format!(
        "SELECT namespace, pool, json_extract(j.value, '$[0]') AS flavor,
           json_extract(j.value, '$[1]') AS purchase, SUM(json_extract(j.value, '$[2]')) AS seconds
         FROM usage_hours, json_each(usage_hours.other_flavors) AS j
         WHERE other_flavors != '[]' AND hour >= ? AND hour <= ?{filter}
         GROUP BY namespace, pool, flavor, purchase ORDER BY namespace, pool"
    );
    let run = |sql: String| {
        // Every piece of `sql` is a constant of this function.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(from_hour)
            .bind(to_hour);
        if let Some(a) = a {
            q = q.bind(a);
        }
        if let Some(b) = b {
            q = q.bind(b);
        }
        q.fetch_all(db)
    };
    let rows = run(sums).await.map_err(q("sum usage hours"))?;
    let mut parts: Vec<(String, String, String, Purchase, f64)> = Vec::new();
    for r in run(own).await.map_err(q("sum usage by purchase"))? {
        for (p, col) in [(Purchase::OnDemand, "od"), (Purchase::Spot, "spot")] {
            parts.push((
                r.get("namespace"),
                r.get("pool"),
                r.get("flavor"),
                p,
                r.get(col),
            ));
        }
    }
    for r in run(others).await.map_err(q("sum usage of other flavors"))? {
        let purchase = match r.get::<Option<&str>, _>("purchase") {
            Some("spot") => Purchase::Spot,
            Some("on_demand") => Purchase::OnDemand,
            other => {
                return Err(StoreError::Corrupt {
                    what: "usage by purchase",
                    reason: format!("purchase {other:?} is not spot or on_demand"),
                });
            }
        };
        let flavor = r.get::<Option<String>, _>("flavor").unwrap_or_default();
        parts.push((
            r.get("namespace"),
            r.get("pool"),
            flavor,
            purchase,
            r.get("seconds"),
        ));
    }
    parts.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let mut out: Vec<UsageHour> = rows.iter().map(hour_from_row).collect();
    // Both lists are ordered by (namespace, pool): walk them together.
    let mut i = 0;
    for (ns, pool, flavor, purchase, secs) in parts {
        while i < out.len()
            && (out[i].namespace.as_str(), out[i].pool.as_str()) < (ns.as_str(), pool.as_str())
        {
            i += 1;
        }
        if secs <= 0.0 {
            continue;
        }
        if let Some(row) = out
            .get_mut(i)
            .filter(|r| r.namespace == ns && r.pool == pool)
        {
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

pub(crate) async fn drop_usage_before(db: &sqlx::SqlitePool, hour: i64) -> Result<u64, StoreError> {
    sqlx::query("DELETE FROM usage_samples WHERE hour < ?")
        .bind(hour)
        .execute(db)
        .await
        .map_err(q("prune usage samples"))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{SqliteStore, Store};

    fn hour(pool: &str, hour: i64, flavor: &str, spot: f64) -> UsageHour {
        let mut h = UsageHour::new("ns", pool, hour, flavor);
        h.billed_seconds = 3600.0 + spot;
        h.requests = 10.0;
        h.actions = 1;
        h.covered_seconds = 3600.0;
        h.by_purchase = vec![(flavor.into(), Purchase::OnDemand, 3600.0)];
        if spot > 0.0 {
            h.by_purchase.push((flavor.into(), Purchase::Spot, spot));
        }
        h.samples = vec![UsageSample {
            at_ms: hour * 1000,
            load_rps: Some(1.0),
            ready: 1,
            billed: 1,
            desired: None,
            forecast_capacity: None,
        }];
        h
    }

    #[tokio::test]
    async fn totals_summed_in_sql_equal_the_hours_summed_in_rust() {
        let s = SqliteStore::in_memory().await.unwrap();
        let rows = vec![
            hour("a", 0, "x1.2u.4g", 0.0),
            hour("a", 3600, "x1.4u.8g", 1800.0),
            hour("b", 3600, "x1.2u.4g", 900.0),
            hour("b", 7200, "x1.2u.4g", 0.0),
        ];
        s.put_usage_hours(&rows).await.unwrap();
        let totals = s.usage_totals(UsageScope::All, 0, 3600).await.unwrap();
        assert_eq!(totals.len(), 2, "one row per pool, hour 7200 outside");
        let a = &totals[0];
        assert_eq!(
            (a.pool.as_str(), a.hour, a.flavor.as_str()),
            ("a", 3600, "x1.4u.8g")
        );
        assert_eq!(a.billed_seconds, 3600.0 * 2.0 + 1800.0);
        assert_eq!(a.actions, 2);
        let mut by = a.by_purchase.clone();
        by.sort_by(|x, y| {
            x.0.cmp(&y.0)
                .then((x.1 == Purchase::Spot).cmp(&(y.1 == Purchase::Spot)))
        });
        assert_eq!(
            by,
            vec![
                ("x1.2u.4g".into(), Purchase::OnDemand, 3600.0),
                ("x1.4u.8g".into(), Purchase::OnDemand, 3600.0),
                ("x1.4u.8g".into(), Purchase::Spot, 1800.0),
            ]
        );
        let with = s
            .usage_hours(UsageScope::Pool("ns", "a"), 0, 3600, true)
            .await
            .unwrap();
        assert_eq!(with.len(), 2);
        assert!(
            with.iter().all(|h| h.samples.len() == 1),
            "samples read back from their table"
        );
        s.drop_usage_before(3600).await.unwrap();
        let left = s.usage_hours(UsageScope::All, 0, 7200, true).await.unwrap();
        assert_eq!(left.len(), 3, "hour 0 pruned with its samples");
        let prices = crate::cost::PriceTable::default();
        let hours = s
            .usage_hours(UsageScope::Namespace("ns"), 0, 3600, false)
            .await
            .unwrap();
        let by_rust = crate::cost::report::figures(hours.iter().filter(|h| h.pool == "b"), &prices);
        let by_sql = crate::cost::report::figures(&totals[1..], &prices);
        assert!((by_rust.cost - by_sql.cost).abs() < 1e-12);
        assert_eq!(by_rust.requests, by_sql.requests);
    }
}
