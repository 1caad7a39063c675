//! The store test suite: every case runs against SQLite (a file in a temporary
//! directory) and against a real PostgreSQL 15 server (a fresh database each).

mod common;

use std::time::Duration;

use common::postgres::PgServer;
use common::{pool_spec, wait_for};
use flexus_agent::store::sql::{StoreLocation, StoreOptions};
use flexus_agent::store::{
    ADVICE_KEEP, Expect, ForecastHeader, Interrupted, LeaseConfig, OpRecord, PushedPoint,
    RefreshProgress, Retention, RuntimeState, SqlStore, Store, StoreError, TUNE_JOBS_KEEP,
    UsageHour, UsageSample, UsageScope,
};
use flexus_api::{
    Advice, AdviceState, DecisionRecord, Operation, OperationKind, OperationState, PolicySpec,
    Purchase, TuneJob,
};
use flexus_policy::forecast::buckets::Bucket;

/// Where one case's database lives.
struct Db {
    location: StoreLocation,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite() -> Db {
    let dir = tempfile::tempdir().unwrap();
    Db {
        location: StoreLocation::Sqlite(dir.path().join("agent.db")),
        _dir: Some(dir),
    }
}

async fn postgres() -> Db {
    Db {
        location: StoreLocation::Postgres(PgServer::shared().fresh_db().await),
        _dir: None,
    }
}

fn lease(holder: &str, ttl_ms: u64) -> LeaseConfig {
    LeaseConfig {
        holder: holder.into(),
        ttl: Duration::from_millis(ttl_ms),
        renew_every: Duration::from_millis(ttl_ms / 4),
        margin: Duration::from_millis(ttl_ms / 4),
    }
}

impl Db {
    async fn open_with(&self, opts: StoreOptions) -> SqlStore {
        SqlStore::connect(&self.location, opts).await.unwrap()
    }

    /// A store of agent `holder` with the default retention.
    async fn open(&self, holder: &str) -> SqlStore {
        self.open_leasing(holder, 60_000).await
    }

    /// A store of agent `holder`, its leases lasting `ttl_ms`, with the default retention.
    async fn open_leasing(&self, holder: &str, ttl_ms: u64) -> SqlStore {
        self.open_with(StoreOptions {
            lease: lease(holder, ttl_ms),
            ..StoreOptions::default()
        })
        .await
    }

    /// A store holding the leases of pools `a/<name>` (created here).
    async fn leased(&self, pools: &[&str]) -> SqlStore {
        self.leased_retaining(Retention::default(), pools).await
    }

    /// A store that keeps what `retention` says, holding the leases of pools
    /// `a/<name>` (created here).
    async fn leased_retaining(&self, retention: Retention, pools: &[&str]) -> SqlStore {
        let s = self
            .open_with(StoreOptions {
                retention,
                lease: lease("agent-1", 60_000),
            })
            .await;
        for p in pools {
            s.put_pool("a", p, &pool_spec(0, 5), Expect::Any, "t0")
                .await
                .unwrap();
        }
        s.sync_leases().await.unwrap();
        s
    }

    /// Run raw SQL on the database (to damage what the store wrote).
    async fn raw(&self, sql: &'static str) {
        use sqlx::Connection as _;
        let url = match &self.location {
            StoreLocation::Sqlite(p) => format!("sqlite://{}", p.display()),
            StoreLocation::Postgres(u) => u.clone(),
        };
        sqlx::any::install_default_drivers();
        let mut c = sqlx::AnyConnection::connect(&url).await.unwrap();
        sqlx::query(sql).execute(&mut c).await.unwrap();
    }
}

/// Deletes pool `a/<pool>` as the agent does: marked deleting (at "t2"), then purged.
async fn delete_pool(s: &SqlStore, pool: &str) {
    s.mark_pool_deleting("a", pool, Expect::Any, "t2")
        .await
        .unwrap();
    s.purge_pool("a", pool).await.unwrap();
}

fn policy(pool: &str, max: u32) -> PolicySpec {
    common::policy(
        pool,
        serde_json::json!({
            "strategy": "target_tracking", "bounds": {"min": 0, "max": max},
            "metrics": [{"name": "cpu", "kind": "cpu", "source": {"type": "push"}, "target": 60}]
        }),
    )
}

fn op(pool: &str, id: &str, state: OperationState, at: &str) -> OpRecord {
    let req: flexus_cloud::CreateServersRequest = serde_json::from_value(serde_json::json!({
        "client_token": uuid::Uuid::new_v4(), "name": "a-p", "flavor": "f", "image": "i",
        "vpc_id": "v", "subnet_ids": ["s"], "security_groups": [], "availability_zone": null,
        "key_name": null, "user_data": null, "root_volume": {"volume_type": "SSD", "size_gb": 40},
        "tags": [], "count": 1, "spot": null
    }))
    .unwrap();
    OpRecord {
        namespace: "a".into(),
        pool: pool.into(),
        request: Some(req),
        progress: None,
        op: Operation {
            id: id.into(),
            kind: OperationKind::ScaleOut,
            state,
            count: 1,
            purchase: None,
            job_id: None,
            server_ids: vec![],
            error: None,
            created_at: at.into(),
            updated_at: at.into(),
        },
    }
}

fn decision(i: u32) -> DecisionRecord {
    DecisionRecord {
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
    }
}

async fn a_put_with_a_stale_version_is_refused_and_changes_nothing(db: Db) {
    let s = db.open("agent-1").await;
    let d1 = s
        .put_pool("a", "p", &pool_spec(1, 5), Expect::Absent, "t1")
        .await
        .unwrap();
    assert_eq!(d1.version, 1);
    let d2 = s
        .put_pool("a", "p", &pool_spec(2, 5), Expect::Version(1), "t2")
        .await
        .unwrap();
    assert_eq!(d2.version, 2);
    let err = s
        .put_pool("a", "p", &pool_spec(3, 5), Expect::Version(1), "t3")
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::PreconditionFailed { .. }),
        "{err}"
    );
    let now = s.get_pool("a", "p").await.unwrap().unwrap();
    assert_eq!((now.spec.min_size, now.created_at.as_str()), (2, "t1"));
    let err = s
        .put_pool("a", "p", &pool_spec(3, 5), Expect::Absent, "t3")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::PreconditionFailed { .. }));
    // The refusals did not cost the connection its usefulness.
    assert_eq!(s.list_pools(Some("a")).await.unwrap().len(), 1);
}

async fn only_the_newest_policy_versions_are_kept_and_one_pool_has_one_policy(db: Db) {
    let retention = Retention {
        policy_versions_keep: 3,
        ..Retention::default()
    };
    let s = db.leased_retaining(retention, &[]).await;
    for v in 1..=5 {
        s.put_policy("a", "pol", &policy("p", v), Expect::Any, "t1")
            .await
            .unwrap();
    }
    let vs = s.policy_versions("a", "pol").await.unwrap();
    assert_eq!(
        vs.iter().map(|d| d.version).collect::<Vec<_>>(),
        vec![3, 4, 5]
    );
    assert_eq!(vs[2].spec.policy.bounds.max, 5);
    let err = s
        .put_policy("a", "other", &policy("p", 1), Expect::Any, "t3")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert_eq!(
        s.policy_for_pool("a", "p").await.unwrap().unwrap().version,
        5
    );
}

async fn a_policy_deleted_and_created_again_under_its_name_starts_at_version_one(db: Db) {
    let s = db.open("agent-1").await;
    for v in 1..=2 {
        s.put_policy("a", "pol", &policy("p", v), Expect::Any, "t1")
            .await
            .unwrap();
    }
    s.delete_policy("a", "pol", Expect::Version(2))
        .await
        .unwrap();
    assert!(s.policy_versions("a", "pol").await.unwrap().is_empty());
    let doc = s
        .put_policy("a", "pol", &policy("p", 3), Expect::Absent, "t2")
        .await
        .expect("re-created");
    assert_eq!(doc.version, 1);
    let vs = s.policy_versions("a", "pol").await.unwrap();
    assert_eq!(vs.iter().map(|d| d.version).collect::<Vec<_>>(), vec![1]);
}

async fn decisions_page_newest_first_and_are_trimmed(db: Db) {
    let s = db.leased(&["p"]).await;
    for i in 0..40u32 {
        s.insert_decision("a", "p", &decision(i), 20).await.unwrap();
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

async fn pushed_datapoints_expire_are_capped_per_metric_and_replace_on_retry(db: Db) {
    let s = db.open("agent-1").await;
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
}

async fn forecast_history_survives_reopening_the_store(db: Db) {
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
        let s = db.leased(&["p"]).await;
        s.put_forecast("a", "p", &header, &[b(0.0, 1.0), b(900.0, 2.0)], 0.0, false)
            .await
            .unwrap();
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
    let s = db.open("agent-1").await;
    s.sync_leases().await.unwrap();
    let h = s.get_forecast("a", "p").await.unwrap().expect("stored");
    assert_eq!(h.header, header);
    assert_eq!(h.buckets, vec![b(900.0, 3.0), b(1800.0, 4.0)]);
    let other = ForecastHeader {
        metric: "q".into(),
        ..header
    };
    s.put_forecast("a", "p", &other, &[b(2700.0, 5.0)], 0.0, true)
        .await
        .unwrap();
    let h = s.get_forecast("a", "p").await.unwrap().unwrap();
    assert_eq!((h.header.metric.as_str(), h.buckets.len()), ("q", 1));
}

async fn stored_state_that_does_not_parse_is_an_error_naming_the_pool(db: Db) {
    let s = db.leased(&["p"]).await;
    s.put_runtime("a", "p", &RuntimeState::default())
        .await
        .unwrap();
    assert!(s.get_runtime("a", "p").await.unwrap().is_some());
    db.raw("UPDATE pool_state SET history = '{\"recommendations\": 7}'")
        .await;
    let err = s.get_runtime("a", "p").await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{text}");
    assert!(text.contains("decision history of pool a/p"), "{text}");
    db.raw("UPDATE pools SET spec = '{\"min_size\": \"two\"}'")
        .await;
    let err = s.get_pool("a", "p").await.unwrap_err();
    assert!(err.to_string().contains("pool a/p"), "{err}");
}

async fn final_operations_lose_their_request_and_only_the_newest_are_kept(db: Db) {
    let retention = Retention {
        operations_keep: 3,
        ..Retention::default()
    };
    let s = db.leased_retaining(retention, &["p"]).await;
    for i in 0..6 {
        let at = format!("2026-01-01T00:00:0{i}.000Z");
        let mut o = op("p", &format!("op-{i}"), OperationState::Pending, &at);
        s.insert_operation(&o).await.unwrap();
        assert!(
            s.open_operations(Some(("a", "p"))).await.unwrap()[0]
                .request
                .is_some(),
            "an open operation keeps its request for a resend"
        );
        o.op.state = OperationState::Failed;
        s.update_operation(&o).await.unwrap();
    }
    let ops = s.list_operations("a", "p", 100).await.unwrap();
    // The newest three final ones (op-5 was finished after the last trim).
    assert!(ops.len() <= 4, "{}", ops.len());
    assert_eq!(ops[0].op.id, "op-5");
    assert!(ops.iter().all(|o| o.request.is_none()), "final: no body");
}

async fn a_refreshs_progress_is_kept_as_it_goes_and_its_write_is_fenced(db: Db) {
    let s = db.leased(&["p"]).await;
    let mut o = op("p", "refresh-1", OperationState::Submitted, "t0");
    o.op.kind = OperationKind::Refresh;
    o.request = None;
    o.progress = Some(RefreshProgress {
        template: "abc123".into(),
        batch: 0,
    });
    s.insert_operation(&o).await.unwrap();
    o.progress = Some(RefreshProgress {
        template: "abc123".into(),
        batch: 2,
    });
    s.update_operation(&o).await.unwrap();
    let open = s.open_operations(Some(("a", "p"))).await.unwrap();
    assert_eq!(open[0].op.kind, OperationKind::Refresh);
    assert_eq!(
        open[0].progress, o.progress,
        "the newest progress is read back"
    );
    // Another agent without the pool's lease cannot move the refresh on.
    let other = db.open("agent-2").await;
    o.progress = Some(RefreshProgress {
        template: "abc123".into(),
        batch: 9,
    });
    assert!(other.update_operation(&o).await.is_err());
    let open = s.open_operations(Some(("a", "p"))).await.unwrap();
    assert_eq!(open[0].progress.as_ref().map(|p| p.batch), Some(2));
}

async fn pruning_deletes_final_operations_and_old_policy_versions_by_age(db: Db) {
    let s = db.leased(&["p"]).await;
    let day_ms = 24 * 3600 * 1000;
    let t0 = 1_800_000_000_000i64;
    let at = |ms: i64| flexus_agent::clock::rfc3339(ms);
    s.insert_operation(&op("p", "old-final", OperationState::Failed, &at(t0)))
        .await
        .unwrap();
    s.insert_operation(&op("p", "old-open", OperationState::Pending, &at(t0)))
        .await
        .unwrap();
    s.insert_operation(&op(
        "p",
        "new",
        OperationState::Failed,
        &at(t0 + 7 * day_ms),
    ))
    .await
    .unwrap();
    for v in 1..=3 {
        s.put_policy("a", "pol", &policy("p", v), Expect::Any, &at(t0 + v as i64))
            .await
            .unwrap();
    }
    let pruned = s.prune(t0 + 8 * day_ms).await.unwrap();
    assert_eq!(pruned.operations, 1);
    let ids: Vec<String> = s
        .list_operations("a", "p", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.op.id)
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&"old-open".to_owned()), "open operations stay");
    let pruned = s.prune(t0 + 31 * day_ms).await.unwrap();
    assert_eq!(pruned.policy_versions, 2, "the current version stays");
    assert_eq!(s.policy_versions("a", "pol").await.unwrap()[0].version, 3);
}

async fn a_purged_pool_leaves_nothing_for_a_pool_created_again_under_its_name(db: Db) {
    let s = db.leased(&["p"]).await;
    s.insert_operation(&op("p", "op-1", OperationState::Failed, "t1"))
        .await
        .unwrap();
    s.insert_decision("a", "p", &decision(1), 10).await.unwrap();
    s.put_runtime("a", "p", &RuntimeState::default())
        .await
        .unwrap();
    s.insert_pushed("a", "p", &[point("rps", 1, 1.0)], 0, 10)
        .await
        .unwrap();
    delete_pool(&s, "p").await;
    assert!(!s.holds("a", "p"), "the lease goes with the pool");
    s.put_pool("a", "p", &pool_spec(0, 5), Expect::Absent, "t3")
        .await
        .unwrap();
    assert!(s.list_operations("a", "p", 10).await.unwrap().is_empty());
    assert!(
        s.list_decisions("a", "p", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(s.get_runtime("a", "p").await.unwrap().is_none());
    assert!(s.pushed_since("a", "p", 0).await.unwrap().is_empty());
}

async fn a_fenced_write_without_the_current_lease_is_refused(db: Db) {
    let a = db.open_leasing("agent-a", 400).await;
    let b = db.open_leasing("agent-b", 400).await;
    a.put_pool("a", "p", &pool_spec(0, 5), Expect::Any, "t0")
        .await
        .unwrap();
    a.sync_leases().await.unwrap();
    b.sync_leases().await.unwrap();
    assert!(a.holds("a", "p") && !b.holds("a", "p"));
    let err = b
        .put_runtime("a", "p", &RuntimeState::default())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Fenced { .. }), "{err}");
    a.insert_operation(&op("p", "by-a", OperationState::Pending, "t1"))
        .await
        .unwrap();

    // A stops renewing (paused); once its lease expired, B takes the pool with a new
    // token, and A's next write is refused even though A still believes... nothing:
    // its local deadline passed first.
    wait_for(
        "b takes the lease over",
        Duration::from_secs(10),
        || async {
            b.sync_leases().await.unwrap();
            b.holds("a", "p").then_some(())
        },
    )
    .await;
    assert!(!a.holds("a", "p"), "a's lease ran out locally first");
    let err = a
        .update_operation(&op("p", "by-a", OperationState::Submitted, "t2"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Fenced { .. }), "{err}");
    // B sees A's journalled operation and carries on with it.
    let open = b.open_operations(Some(("a", "p"))).await.unwrap();
    assert_eq!(open[0].op.id, "by-a");
    b.update_operation(&op("p", "by-a", OperationState::Succeeded, "t3"))
        .await
        .unwrap();
    // A renews again: it does not get the pool back while B holds it.
    a.sync_leases().await.unwrap();
    assert!(!a.holds("a", "p"));
}

async fn pools_are_shared_fairly_and_move_when_an_agent_stops_renewing(db: Db) {
    let mut stores: Vec<SqlStore> = Vec::new();
    for i in 0..3 {
        stores.push(db.open_leasing(&format!("agent-{i}"), 600).await);
    }
    for i in 0..30 {
        stores[0]
            .put_pool(
                "a",
                &format!("p{i:02}"),
                &pool_spec(0, 5),
                Expect::Any,
                "t0",
            )
            .await
            .unwrap();
    }
    // A few rounds: every agent ends with its share of 10, and no pool has two holders.
    for _ in 0..4 {
        for s in &stores {
            s.sync_leases().await.unwrap();
        }
    }
    let held = |s: &SqlStore| {
        (0..30)
            .filter(|i| s.holds("a", &format!("p{i:02}")))
            .count()
    };
    let counts: Vec<usize> = stores.iter().map(held).collect();
    assert_eq!(counts, vec![10, 10, 10], "{counts:?}");
    for i in 0..30 {
        let n = stores
            .iter()
            .filter(|s| s.holds("a", &format!("p{i:02}")))
            .count();
        assert_eq!(n, 1, "pool p{i:02} has {n} holders");
    }
    // Agent 2 stops renewing: within a lease lifetime and a round, the others hold all.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        for s in &stores[..2] {
            s.sync_leases().await.unwrap();
        }
        if held(&stores[0]) + held(&stores[1]) == 30 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "pools did not move");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(held(&stores[0]) == 15 && held(&stores[1]) == 15);
}

/// One pool's rollup of one hour: an hour of one on-demand instance, `spot` seconds
/// of spot, one sample.
fn usage_hour(pool: &str, hour: i64, flavor: &str, spot: f64) -> UsageHour {
    let mut h = UsageHour::new("a", pool, hour, flavor);
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
        load_rps: Some(1.5),
        ready: 1,
        billed: 1,
        desired: Some(2),
        forecast_capacity: None,
    }];
    h
}

async fn usage_totals_summed_in_sql_equal_the_hours_summed_one_by_one(db: Db) {
    let s = db.leased(&["p", "q"]).await;
    let rows = vec![
        usage_hour("p", 0, "x1.2u.4g", 0.0),
        usage_hour("p", 3600, "x1.4u.8g", 1800.0),
        usage_hour("q", 3600, "x1.2u.4g", 900.0),
        usage_hour("q", 7200, "x1.2u.4g", 0.0),
    ];
    s.put_usage_hours(&rows).await.unwrap();
    let back = s
        .usage_hours(UsageScope::Pool("a", "p"), 0, 3600, true)
        .await
        .unwrap();
    assert_eq!(
        back,
        rows[..2].to_vec(),
        "read back as written, samples too"
    );
    let totals = s.usage_totals(UsageScope::All, 0, 3600).await.unwrap();
    assert_eq!(totals.len(), 2, "one row per pool, hour 7200 outside");
    let p = &totals[0];
    assert_eq!(
        (p.pool.as_str(), p.hour, p.flavor.as_str()),
        ("p", 3600, "x1.4u.8g"),
        "the newest hour and its flavor"
    );
    assert_eq!(p.billed_seconds, 3600.0 * 2.0 + 1800.0);
    assert_eq!(p.actions, 2);
    let mut by = p.by_purchase.clone();
    by.sort_by(|x, y| x.0.cmp(&y.0).then(x.2.total_cmp(&y.2)));
    assert_eq!(
        by,
        vec![
            ("x1.2u.4g".into(), Purchase::OnDemand, 3600.0),
            ("x1.4u.8g".into(), Purchase::Spot, 1800.0),
            ("x1.4u.8g".into(), Purchase::OnDemand, 3600.0),
        ]
    );
    let prices = flexus_agent::cost::PriceTable::default();
    let hours = s
        .usage_hours(UsageScope::Namespace("a"), 0, 3600, false)
        .await
        .unwrap();
    assert!(
        hours.iter().all(|h| h.samples.is_empty()),
        "no samples asked"
    );
    let one_by_one =
        flexus_agent::cost::report::figures(hours.iter().filter(|h| h.pool == "q"), &prices);
    let in_sql = flexus_agent::cost::report::figures(&totals[1..], &prices);
    assert!((one_by_one.cost - in_sql.cost).abs() < 1e-9);
    assert_eq!(one_by_one.requests, in_sql.requests);
    assert!(
        s.usage_totals(UsageScope::Namespace("b"), 0, 7200)
            .await
            .unwrap()
            .is_empty()
    );
}

/// The window's sums read pool by pool: only the window's hours count, a flavor change
/// before the window leaves one flavor inside it, and a pool whose window mixes flavors
/// (its own, changed, and another flavor's list) is summed exactly; every scope agrees
/// with the hours read one by one.
async fn usage_totals_read_only_the_window_and_match_the_hours_in_every_scope(db: Db) {
    let s = db.leased(&["p", "q", "r"]).await;
    let mut rows = vec![
        // p: an older flavor before the window, then three hours of x1.4u.8g.
        usage_hour("p", 0, "x1.2u.4g", 0.0),
        usage_hour("p", 3600, "x1.4u.8g", 600.0),
        usage_hour("p", 7200, "x1.4u.8g", 0.0),
        usage_hour("p", 10800, "x1.4u.8g", 0.0),
        // q: inside the window, an hour whose instances include another flavor's.
        usage_hour("q", 3600, "x1.2u.4g", 0.0),
        usage_hour("q", 7200, "x1.2u.4g", 300.0),
        // r: only after the window.
        usage_hour("r", 14400, "x1.2u.4g", 0.0),
    ];
    rows[5]
        .by_purchase
        .push(("x1.8u.16g".into(), Purchase::Spot, 900.0));
    s.put_usage_hours(&rows).await.unwrap();
    let prices = flexus_agent::cost::PriceTable::default();
    for scope in [
        UsageScope::All,
        UsageScope::Namespace("a"),
        UsageScope::Pool("a", "p"),
        UsageScope::Pool("a", "q"),
    ] {
        let totals = s.usage_totals(scope, 3600, 10800).await.unwrap();
        let hours = s.usage_hours(scope, 3600, 10800, false).await.unwrap();
        let pools: Vec<&str> = totals.iter().map(|t| t.pool.as_str()).collect();
        let mut want: Vec<&str> = hours.iter().map(|h| h.pool.as_str()).collect();
        want.dedup();
        assert_eq!(pools, want, "{scope:?}: one row per pool, in order");
        for t in &totals {
            let one: Vec<&UsageHour> = hours.iter().filter(|h| h.pool == t.pool).collect();
            let last = one.last().unwrap();
            assert_eq!((t.hour, &t.flavor), (last.hour, &last.flavor), "{scope:?}");
            let a = flexus_agent::cost::report::figures(one.iter().copied(), &prices);
            let b = flexus_agent::cost::report::figures([t], &prices);
            assert!((a.cost - b.cost).abs() < 1e-9, "{scope:?} {a:?} {b:?}");
            // Sums in another order: equal up to rounding.
            assert!(
                (a.instance_hours - b.instance_hours).abs() < 1e-9,
                "{scope:?}"
            );
            assert_eq!(a.scaling_actions, b.scaling_actions, "{scope:?}");
            let sorted = |mut v: Vec<flexus_api::PurchaseCost>| {
                v.sort_by(|x, y| x.flavor.cmp(&y.flavor).then(x.cost.total_cmp(&y.cost)));
                v.into_iter()
                    .map(|p| (p.flavor, p.purchase, (p.instance_hours * 1e6).round()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(sorted(a.by_purchase), sorted(b.by_purchase), "{scope:?}");
        }
    }
    let all = s.usage_totals(UsageScope::All, 3600, 10800).await.unwrap();
    assert_eq!(all.len(), 2, "r has no hour in the window");
    assert_eq!(
        all[0].by_purchase,
        vec![
            ("x1.4u.8g".into(), Purchase::OnDemand, 3.0 * 3600.0),
            ("x1.4u.8g".into(), Purchase::Spot, 600.0),
        ],
        "p's window holds one flavor"
    );
    assert!(
        all[1]
            .by_purchase
            .contains(&("x1.8u.16g".into(), Purchase::Spot, 900.0)),
        "{:?}",
        all[1]
    );
}

async fn a_usage_rollup_replaces_its_hour_and_is_refused_without_the_pools_lease(db: Db) {
    let s = db.leased(&["p"]).await;
    let mut h = usage_hour("p", 3600, "x1.2u.4g", 0.0);
    s.put_usage_hours(std::slice::from_ref(&h)).await.unwrap();
    h.requests = 99.0;
    h.samples.push(UsageSample {
        at_ms: 3_700_000,
        load_rps: None,
        ready: 2,
        billed: 2,
        desired: None,
        forecast_capacity: Some(3),
    });
    s.put_usage_hours(std::slice::from_ref(&h)).await.unwrap();
    let back = s.usage_hours(UsageScope::All, 0, 7200, true).await.unwrap();
    assert_eq!(back, vec![h.clone()], "the later write replaced the hour");
    // A batch naming a pool this agent does not hold is refused as a whole.
    let other = db.open("agent-2").await;
    other
        .put_pool("a", "r", &pool_spec(0, 5), Expect::Any, "t0")
        .await
        .unwrap();
    let mut changed = h.clone();
    changed.requests = 1.0;
    let err = s
        .put_usage_hours(&[changed, usage_hour("r", 3600, "x1.2u.4g", 0.0)])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Fenced { .. }), "{err}");
    assert!(err.to_string().contains("a/r"), "names the pool: {err}");
    let back = s.usage_hours(UsageScope::All, 0, 7200, true).await.unwrap();
    assert_eq!(back, vec![h], "nothing of the refused batch was written");
}

fn advice(pool: &str, id: &str) -> Advice {
    serde_json::from_value(serde_json::json!({
        "id": id, "pool": format!("a/{pool}"), "created_at": "t", "state": "proposed",
        "model": "deepseek-chat", "explanation": format!("answer {id}"), "tokens": 7
    }))
    .unwrap()
}

/// The newest `limit` answers of the advisor for pool `a/p`, as stored.
async fn answers(s: &SqlStore, limit: u32) -> Vec<Advice> {
    let list = s.list_advice("a", "p", limit).await.unwrap();
    list.into_iter().map(|t| t.value).collect()
}

async fn the_newest_advice_is_kept_and_goes_with_its_pool_while_usage_stays(db: Db) {
    let s = db.leased(&["p"]).await;
    let n = ADVICE_KEEP + 3;
    for i in 0..n {
        s.put_advice("a", "p", &advice("p", &format!("adv-{i:03}")), i)
            .await
            .unwrap();
    }
    let mut first = advice("p", "adv-000");
    first.state = AdviceState::Failed;
    // Replacing by id: an old id written again is the newest answer.
    s.put_advice("a", "p", &first, n).await.unwrap();
    let list = answers(&s, 1000).await;
    assert_eq!(list.len() as i64, ADVICE_KEEP, "only the newest are kept");
    assert_eq!(list[0], first);
    assert_eq!(list[1].id, format!("adv-{:03}", n - 1), "newest first");
    assert!(s.list_advice("a", "other", 10).await.unwrap().is_empty());
    assert_eq!(s.list_advice("a", "p", 2).await.unwrap().len(), 2);

    s.put_usage_hours(&[usage_hour("p", 0, "x1.2u.4g", 0.0)])
        .await
        .unwrap();
    delete_pool(&s, "p").await;
    assert!(s.list_advice("a", "p", 10).await.unwrap().is_empty());
    let cost = s.usage_totals(UsageScope::All, 0, 0).await.unwrap();
    assert_eq!(cost.len(), 1, "what the deleted pool cost stays");
    // An answer that arrives after its pool was purged is pruned.
    s.put_advice("a", "p", &advice("p", "late"), n + 1)
        .await
        .unwrap();
    let pruned = s.prune(0).await.unwrap();
    assert_eq!(pruned.advice, 1);
    assert!(s.list_advice("a", "p", 10).await.unwrap().is_empty());
}

fn tune_job(pool: &str, id: &str, state: &str) -> TuneJob {
    serde_json::from_value(serde_json::json!({
        "id": id, "pool": format!("a/{pool}"), "state": state, "created_at": "t",
        "request": {}
    }))
    .unwrap()
}

/// Whether `reader` sees job `id` of pool `a/p` as run by a live agent session.
async fn runner_alive(reader: &SqlStore, id: &str) -> bool {
    reader
        .get_tune_job("a", "p", id)
        .await
        .unwrap()
        .expect("the job is stored")
        .runner_alive
}

async fn running_tunes_of_a_gone_session_are_taken_over_by_one_agent_only(db: Db) {
    let s = db.leased(&["p"]).await;
    let brief = db.open_leasing("agent-3", 300).await;
    brief.sync_leases().await.unwrap();
    for (i, (id, state)) in [
        ("tune-x", "running"),
        ("tune-d", "done"),
        ("tune-y", "running"),
    ]
    .into_iter()
    .enumerate()
    {
        let job = tune_job("p", id, state);
        brief.put_tune_job("a", "p", &job, i as i64).await.unwrap();
    }
    let ids = |l: Vec<Interrupted>| -> Vec<String> { l.into_iter().map(|t| t.job.id).collect() };
    assert!(
        s.interrupted_tune_jobs(10).await.unwrap().is_empty(),
        "their runner is alive"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    // Its heartbeat expired: its running jobs (not the finished one), oldest first, at
    // most `limit`; never to the session that wrote them.
    let found = s.interrupted_tune_jobs(10).await.unwrap();
    assert_eq!(ids(found.clone()), ["tune-x", "tune-y"]);
    assert_eq!(
        (found[0].namespace.as_str(), found[0].pool.as_str()),
        ("a", "p")
    );
    assert_eq!(
        (found[0].holder.as_str(), found[0].created_ms),
        ("agent-3", 0)
    );
    assert_eq!(ids(s.interrupted_tune_jobs(1).await.unwrap()), ["tune-x"]);
    assert!(brief.interrupted_tune_jobs(10).await.unwrap().is_empty());

    // Two agents race for tune-x: one wins, and the job is theirs from then on.
    let other = db.open_leasing("agent-2", 60_000).await;
    other.sync_leases().await.unwrap();
    let seen_by_other = other.interrupted_tune_jobs(10).await.unwrap();
    let mut taken = found[0].job.clone();
    taken.resumed = 1;
    assert!(s.take_over_tune_job(&found[0], &taken).await.unwrap());
    assert!(
        !other
            .take_over_tune_job(&seen_by_other[0], &taken)
            .await
            .unwrap()
    );
    let now = s.get_tune_job("a", "p", "tune-x").await.unwrap().unwrap();
    assert_eq!((&now.value, now.holder.as_str()), (&taken, "agent-1"));
    assert_eq!(
        ids(other.interrupted_tune_jobs(10).await.unwrap()),
        ["tune-y"]
    );
    // The old runner writes tune-y after all (it was only slow): no take-over then.
    brief
        .put_tune_job("a", "p", &tune_job("p", "tune-y", "done"), 2)
        .await
        .unwrap();
    assert!(
        !other
            .take_over_tune_job(&seen_by_other[1], &taken)
            .await
            .unwrap()
    );
    assert!(other.interrupted_tune_jobs(10).await.unwrap().is_empty());
    // A job whose body does not read back is skipped, not an error for the others.
    for (i, id) in ["tune-z", "tune-w"].into_iter().enumerate() {
        let job = tune_job("p", id, "running");
        brief
            .put_tune_job("a", "p", &job, 3 + i as i64)
            .await
            .unwrap();
    }
    db.raw("UPDATE tune_jobs SET body = '{' WHERE id = 'tune-z'")
        .await;
    assert_eq!(
        ids(other.interrupted_tune_jobs(10).await.unwrap()),
        ["tune-w"]
    );
}

async fn work_in_progress_is_read_by_any_agent_which_sees_whether_its_runner_lives(db: Db) {
    let s = db.leased(&["p"]).await;
    let n = TUNE_JOBS_KEEP as i64 + 2;
    for i in 0..n {
        let job = tune_job("p", &format!("tune-{i:03}"), "running");
        s.put_tune_job("a", "p", &job, i).await.unwrap();
    }
    assert!(
        s.get_tune_job("a", "p", "tune-001")
            .await
            .unwrap()
            .is_none(),
        "only the newest are kept"
    );
    assert!(
        s.get_tune_job("a", "other", "tune-021")
            .await
            .unwrap()
            .is_none(),
        "a job belongs to its pool"
    );
    let newest = s.get_tune_job("a", "p", "tune-021").await.unwrap().unwrap();
    assert_eq!(
        (newest.value, newest.holder.as_str()),
        (tune_job("p", "tune-021", "running"), "agent-1")
    );
    // Listed newest first, at most `limit`, only the pool's own.
    let ids = |l: Vec<flexus_agent::store::Tracked<TuneJob>>| -> Vec<String> {
        l.into_iter().map(|t| t.value.id).collect()
    };
    assert_eq!(
        ids(s.list_tune_jobs("a", "p", 3).await.unwrap()),
        ["tune-021", "tune-020", "tune-019"]
    );
    assert_eq!(
        s.list_tune_jobs("a", "p", 100).await.unwrap().len(),
        TUNE_JOBS_KEEP as usize
    );
    assert!(
        s.list_tune_jobs("a", "other", 100)
            .await
            .unwrap()
            .is_empty()
    );
    // Its end replaces it by id.
    let done = tune_job("p", "tune-021", "done");
    s.put_tune_job("a", "p", &done, n - 1).await.unwrap();
    assert_eq!(
        s.get_tune_job("a", "p", "tune-021")
            .await
            .unwrap()
            .unwrap()
            .value,
        done
    );

    // Another agent sharing the store reads the job, its runner alive.
    let other = db.open_leasing("agent-2", 60_000).await;
    assert!(runner_alive(&other, "tune-020").await);
    // A job of agent-2, which has not renewed a heartbeat yet: alive to itself only.
    other
        .put_tune_job("a", "p", &tune_job("p", "tune-b", "running"), n)
        .await
        .unwrap();
    // A request to the advisor is tracked the same way.
    let mut asked = advice("p", "adv-b");
    asked.state = AdviceState::Pending;
    other.put_advice("a", "p", &asked, n).await.unwrap();
    let advice_alive = async |reader: &SqlStore| {
        let list = reader.list_advice("a", "p", 1).await.unwrap();
        let who = (list[0].value.id.as_str(), list[0].holder.as_str());
        assert_eq!(who, ("adv-b", "agent-2"));
        list[0].runner_alive
    };
    assert!(runner_alive(&other, "tune-b").await && advice_alive(&other).await);
    assert!(
        !runner_alive(&s, "tune-b").await,
        "no heartbeat of agent-2's session"
    );
    assert!(!advice_alive(&s).await);
    other.sync_leases().await.unwrap();
    assert!(runner_alive(&s, "tune-b").await && advice_alive(&s).await);
    // agent-2 restarts under its name: a new session, which did not run the job.
    let restarted = db.open_leasing("agent-2", 60_000).await;
    restarted.sync_leases().await.unwrap();
    assert!(
        !runner_alive(&s, "tune-b").await,
        "the session that ran it is gone"
    );
    assert!(!runner_alive(&restarted, "tune-b").await);
    assert!(!advice_alive(&s).await && !advice_alive(&restarted).await);
    // An agent whose heartbeat expires (stopped renewing, e.g. it crashed).
    let brief = db.open_leasing("agent-3", 300).await;
    brief.sync_leases().await.unwrap();
    brief
        .put_tune_job("a", "p", &tune_job("p", "tune-c", "running"), n + 1)
        .await
        .unwrap();
    assert!(runner_alive(&s, "tune-c").await);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!runner_alive(&s, "tune-c").await, "the heartbeat expired");

    // A body that does not parse is an error naming the job, not a default.
    db.raw("UPDATE tune_jobs SET body = '{' WHERE id = 'tune-020'")
        .await;
    let err = s.get_tune_job("a", "p", "tune-020").await.unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt { .. })
            && err.to_string().contains("tune job tune-020 of pool a/p"),
        "{err}"
    );

    // The jobs go with their pool; one that ends after the purge is pruned.
    delete_pool(&s, "p").await;
    assert!(
        s.get_tune_job("a", "p", "tune-021")
            .await
            .unwrap()
            .is_none()
    );
    s.put_tune_job("a", "p", &done, n + 2).await.unwrap();
    assert_eq!(s.prune(0).await.unwrap().tune_jobs, 1);
    assert!(
        s.get_tune_job("a", "p", "tune-021")
            .await
            .unwrap()
            .is_none()
    );
}

async fn pruning_deletes_usage_rollups_of_hours_before_the_retention(db: Db) {
    let retention = Retention {
        usage_max_age: Duration::from_secs(2 * 3600),
        ..Retention::default()
    };
    let s = db.leased_retaining(retention, &["p"]).await;
    let rows: Vec<UsageHour> = (0..5)
        .map(|i| usage_hour("p", i * 3600, "x1.2u.4g", 0.0))
        .collect();
    s.put_usage_hours(&rows).await.unwrap();
    // At 4:30 the cut-off is 2:30: the hours starting at 0:00 and 1:00 go.
    let pruned = s.prune(4 * 3_600_000 + 1_800_000).await.unwrap();
    assert_eq!(pruned.usage_hours, 2);
    let left = s
        .usage_hours(UsageScope::All, 0, 5 * 3600, true)
        .await
        .unwrap();
    let hours: Vec<i64> = left.iter().map(|h| h.hour).collect();
    assert_eq!(hours, vec![7200, 10800, 14400]);
    assert!(
        left.iter().all(|h| h.samples.len() == 1),
        "samples of kept hours stay"
    );
    let totals = s.usage_totals(UsageScope::All, 0, 5 * 3600).await.unwrap();
    assert_eq!(totals.len(), 1);
    assert_eq!(totals[0].billed_seconds, 3.0 * 3600.0, "the kept hours");
    // Once every hour has gone, the pool is no longer listed.
    let pruned = s.prune(9 * 3_600_000).await.unwrap();
    assert_eq!(pruned.usage_hours, 3);
    assert!(
        s.usage_totals(UsageScope::All, 0, 10 * 3600)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A SQLite file written by an agent from before the leases (migrations 0001-0003: the
/// operator's tables, no lease tables) opens in place: the newer migrations are applied
/// and its usage and advice are read back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_store_from_before_the_leases_upgrades_in_place_keeping_usage_and_advice() {
    use sqlx::Connection as _;
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("migrations");
    std::fs::create_dir(&old).unwrap();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    for f in [
        "0001_init.sql",
        "0002_forecast_and_push.sql",
        "0003_usage_and_advice.sql",
    ] {
        std::fs::copy(src.join(f), old.join(f)).unwrap();
    }
    let path = dir.path().join("agent.db");
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    sqlx::migrate::Migrator::new(old.as_path())
        .await
        .unwrap()
        .run(&mut c)
        .await
        .unwrap();
    let body = serde_json::to_string(&advice("p", "adv-1")).unwrap();
    sqlx::query(
        "INSERT INTO advice (namespace, pool, id, created_ms, body) VALUES ('a', 'p', 'adv-1', 5, $1)",
    )
    .bind(body)
    .execute(&mut c)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO usage_hours (namespace, pool, hour, flavor, billed_seconds, ready_seconds,
           idle_seconds, load_seconds, requests, violation_seconds, actions, covered_seconds,
           on_demand_seconds, spot_seconds, other_flavors)
         VALUES ('a', 'p', 3600, 'x1.2u.4g', 3600, 3600, 0, 3600, 10, 0, 1, 3600, 3600, 0, '[]')",
    )
    .execute(&mut c)
    .await
    .unwrap();
    c.close().await.unwrap();

    let s = SqlStore::open(&path).await.expect("the old file opens");
    assert_eq!(answers(&s, 10).await, vec![advice("p", "adv-1")]);
    let hours = s.usage_hours(UsageScope::All, 0, 7200, true).await.unwrap();
    assert_eq!(hours.len(), 1);
    assert_eq!(
        hours[0].by_purchase,
        vec![("x1.2u.4g".into(), Purchase::OnDemand, 3600.0)]
    );
    // The pools with usage were listed by the upgrade: the report sees the old rollup.
    let totals = s.usage_totals(UsageScope::All, 0, 7200).await.unwrap();
    assert_eq!(totals.len(), 1);
    assert_eq!(totals[0].billed_seconds, 3600.0);
    // The newer tables are there: the store commits and the agent holds its pools.
    s.put_pool("a", "p", &pool_spec(0, 5), Expect::Any, "t0")
        .await
        .unwrap();
    s.sync_leases().await.unwrap();
    s.probe("t1").await.unwrap();
    assert!(s.holds("a", "p"));
}

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::sqlite().await).await
                }
            )*
        }
        mod on_postgresql {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::postgres().await).await
                }
            )*
        }
    };
}

suite!(
    a_put_with_a_stale_version_is_refused_and_changes_nothing,
    only_the_newest_policy_versions_are_kept_and_one_pool_has_one_policy,
    a_policy_deleted_and_created_again_under_its_name_starts_at_version_one,
    decisions_page_newest_first_and_are_trimmed,
    pushed_datapoints_expire_are_capped_per_metric_and_replace_on_retry,
    forecast_history_survives_reopening_the_store,
    stored_state_that_does_not_parse_is_an_error_naming_the_pool,
    final_operations_lose_their_request_and_only_the_newest_are_kept,
    a_refreshs_progress_is_kept_as_it_goes_and_its_write_is_fenced,
    pruning_deletes_final_operations_and_old_policy_versions_by_age,
    a_purged_pool_leaves_nothing_for_a_pool_created_again_under_its_name,
    a_fenced_write_without_the_current_lease_is_refused,
    pools_are_shared_fairly_and_move_when_an_agent_stops_renewing,
    usage_totals_summed_in_sql_equal_the_hours_summed_one_by_one,
    usage_totals_read_only_the_window_and_match_the_hours_in_every_scope,
    a_usage_rollup_replaces_its_hour_and_is_refused_without_the_pools_lease,
    the_newest_advice_is_kept_and_goes_with_its_pool_while_usage_stays,
    pruning_deletes_usage_rollups_of_hours_before_the_retention,
    work_in_progress_is_read_by_any_agent_which_sees_whether_its_runner_lives,
    running_tunes_of_a_gone_session_are_taken_over_by_one_agent_only,
);
