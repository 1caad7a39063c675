//! Client ↔ emulator over loopback: the real signed client against the in-process emulator.

mod common;

use flexus_cloud::{
    BatchMetricQuery, ChargingMode, Cloud, Credentials, CustomMetric, DeleteServersRequest,
    Dimension, ErrorKind, Filter, HuaweiClient, JobStatus, MetricId, MetricQuery, RawRequest,
    ServerFilter, ServerStatus, Service, job_failure,
};
use serde_json::json;

use common::*;

fn pool_filter(pool: &str) -> ServerFilter {
    ServerFilter {
        tags: vec![(POOL_TAG.into(), pool.into())],
        ..ServerFilter::default()
    }
}

/// A raw create_servers call with `body` as it is (no client-side shaping).
async fn post_create(
    h: &Harness,
    body: &serde_json::Value,
) -> Result<flexus_cloud::RawResponse, flexus_cloud::CloudError> {
    h.client
        .send(RawRequest::post(
            "create_servers",
            Service::Ecs,
            format!("/v1/{PROJECT}/cloudservers"),
            body.to_string().into_bytes(),
        ))
        .await
}

/// POSTs `body` as a create call and checks that it is refused with `Ecs.0005` naming `field`.
async fn assert_create_refused(h: &Harness, body: &serde_json::Value, field: &str) {
    let err = post_create(h, body).await.expect_err("a refused create");
    assert_eq!(err.code.as_deref(), Some("Ecs.0005"));
    assert!(err.message.contains(field), "{}", err.message);
}

#[tokio::test]
async fn create_list_get_delete_follow_jobs_to_completion() {
    let h = start(config()).await;
    let c = &h.client;
    let created = c
        .create_servers(&create_req("web", "web", 2, false))
        .await
        .expect("create");
    assert_eq!(created.server_ids.len(), 2);
    assert_eq!(created.job_id.len(), 32);

    let job = c.get_job(&created.job_id).await.expect("job");
    assert_eq!(job.status, JobStatus::Running);
    assert_eq!(job.job_type, "createServer");
    assert_eq!(job.sub_jobs.len(), 2);
    let s = c
        .get_server(&created.server_ids[0])
        .await
        .expect("get while building");
    assert_eq!(s.status, ServerStatus::Build);

    h.advance(31.0).await;
    let job = c.get_job(&created.job_id).await.expect("job");
    assert_eq!(job.status, JobStatus::Success);
    assert!(job.sub_jobs.iter().all(|s| s.status == JobStatus::Success));
    let mut from_subjobs: Vec<String> = job
        .sub_jobs
        .iter()
        .filter_map(|s| s.server_id.clone())
        .collect();
    from_subjobs.sort();
    let mut ids = created.server_ids.clone();
    ids.sort();
    assert_eq!(from_subjobs, ids);

    let listed = c.list_servers(&pool_filter("web")).await.expect("list");
    assert_eq!(listed.len(), 2);
    assert!(
        listed
            .iter()
            .all(|s| s.status == ServerStatus::Active && s.tag(POOL_TAG) == Some("web"))
    );
    let mut names: Vec<&str> = listed.iter().map(|s| s.name.as_str()).collect();
    names.sort();
    assert_eq!(names, vec!["web-0001", "web-0002"]);
    assert!(
        listed
            .iter()
            .all(|s| s.charging_mode == ChargingMode::OnDemand && s.vcpus == Some(2))
    );
    assert!(
        c.list_servers(&pool_filter("other"))
            .await
            .expect("list other")
            .is_empty()
    );

    let del = c
        .delete_servers(&DeleteServersRequest {
            server_ids: created.server_ids.clone(),
            ..Default::default()
        })
        .await
        .expect("delete");
    assert_eq!(
        c.get_job(&del).await.expect("job").status,
        JobStatus::Running
    );
    h.advance(6.0).await;
    let dj = c.get_job(&del).await.expect("delete job");
    assert_eq!(dj.status, JobStatus::Success);
    assert_eq!(dj.job_type, "deleteServer");
    let gone = c
        .get_server(&created.server_ids[0])
        .await
        .expect("deleted servers linger");
    assert_eq!(gone.status, ServerStatus::Deleted);
    assert!(
        c.list_servers(&pool_filter("web"))
            .await
            .expect("list")
            .is_empty()
    );

    h.advance(61.0).await;
    let err = c
        .get_server(&created.server_ids[0])
        .await
        .expect_err("404 after linger");
    assert_eq!(err.kind, ErrorKind::NotFound);
    assert_eq!(err.code.as_deref(), Some("Ecs.0114"));
    assert!(err.request_id.is_some());
    h.stop().await;
}

#[tokio::test]
async fn wrong_secret_key_is_rejected_with_apigw_0301_and_not_retried() {
    let h = start(config()).await;
    let bad = HuaweiClient::new(
        client_config(&h.base),
        Credentials::new(AK, "not-the-secret"),
    )
    .expect("client");
    let err = bad
        .list_servers(&ServerFilter::default())
        .await
        .expect_err("bad signature");
    assert_eq!(err.kind, ErrorKind::Unauthorized);
    assert_eq!(err.code.as_deref(), Some("APIGW.0301"));
    assert_eq!(err.status, Some(401));
    assert!(err.request_id.is_some());
    assert_eq!(h.calls("list_servers").await, 1);
    assert!(!format!("{err} {err:?}").contains("not-the-secret"));
    let unknown =
        HuaweiClient::new(client_config(&h.base), Credentials::new("OTHERAK", SK)).expect("client");
    let err = unknown.get_job("ff80").await.expect_err("unknown ak");
    assert_eq!(err.code.as_deref(), Some("APIGW.0301"));
    h.stop().await;
}

#[tokio::test]
async fn clock_skew_over_fifteen_minutes_is_rejected_with_apigw_0303() {
    let h = start(config()).await;
    let skewed = h
        .client
        .clone()
        .with_signing_clock(|| chrono::Utc::now() - chrono::Duration::minutes(16));
    let err = skewed
        .list_servers(&ServerFilter::default())
        .await
        .expect_err("skew");
    assert_eq!(err.kind, ErrorKind::Unauthorized);
    assert_eq!(err.code.as_deref(), Some("APIGW.0303"));
    let slightly = h
        .client
        .clone()
        .with_signing_clock(|| chrono::Utc::now() - chrono::Duration::minutes(14));
    slightly
        .list_servers(&ServerFilter::default())
        .await
        .expect("14 minutes is within the window");
    h.stop().await;
}

#[tokio::test]
async fn temporary_credentials_need_the_signed_security_token() {
    let mut cfg = config();
    cfg.keys[0].security_token = Some("sts-token-1".into());
    let h = start(cfg).await;
    let err = h
        .client
        .list_servers(&ServerFilter::default())
        .await
        .expect_err("no token");
    assert_eq!(err.code.as_deref(), Some("APIGW.0301"));
    let sts = HuaweiClient::new(
        client_config(&h.base),
        Credentials::new(AK, SK).with_security_token("sts-token-1"),
    )
    .expect("client");
    sts.list_servers(&ServerFilter::default())
        .await
        .expect("token accepted");
    h.stop().await;
}

#[tokio::test]
async fn retried_create_with_the_same_token_makes_one_server() {
    let h = start(config()).await;
    let c = &h.client;
    let req = create_req("api", "api", 1, false);
    let first = c.create_servers(&req).await.expect("first");
    let again = c.create_servers(&req).await.expect("replay");
    assert_eq!(first, again);

    // A create whose first two attempts are throttled is retried with the same token.
    h.post(
        "/_emulator/faults",
        json!({"operation": "create_servers", "throttle_burst": 2}),
    )
    .await;
    let req2 = create_req("api", "api", 1, false);
    let before = h.calls("create_servers").await;
    let second = c
        .create_servers(&req2)
        .await
        .expect("retried create succeeds");
    assert_eq!(h.calls("create_servers").await - before, 3);
    assert_ne!(second.server_ids, first.server_ids);
    assert_eq!(
        c.list_servers(&pool_filter("api"))
            .await
            .expect("list")
            .len(),
        2
    );

    let mut changed = req.clone();
    changed.flavor = "x1.4u.8g".into();
    let err = c
        .create_servers(&changed)
        .await
        .expect_err("token reused with another body");
    assert_eq!(err.kind, ErrorKind::Conflict);
    assert_eq!(err.code.as_deref(), Some("Ecs.0122"));
    h.stop().await;
}

#[tokio::test]
async fn throttle_bursts_are_retried_and_succeed() {
    let h = start(config()).await;
    h.post(
        "/_emulator/faults",
        json!({"operation": "list_servers", "throttle_burst": 3}),
    )
    .await;
    let servers = h
        .client
        .list_servers(&ServerFilter::default())
        .await
        .expect("succeeds after retries");
    assert!(servers.is_empty());
    assert_eq!(h.calls("list_servers").await, 4);
    let faults = h.get("/_emulator/faults").await;
    assert_eq!(faults["faults"][0]["throttle_burst"], 0);
    h.stop().await;
}

#[tokio::test]
async fn bad_request_is_not_retried() {
    let h = start(config()).await;
    let mut req = create_req("web", "web", 1, false);
    req.flavor = "no.such.flavor".into();
    let err = h
        .client
        .create_servers(&req)
        .await
        .expect_err("unknown flavor");
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert_eq!(err.code.as_deref(), Some("Ecs.0005"));
    assert!(err.message.contains("flavorRef"));
    assert_eq!(h.calls("create_servers").await, 1);

    // Injected 5xx are retried; injected 400s are not.
    h.post(
        "/_emulator/faults",
        json!({"operation": "get_job", "error_rate": 1.0, "status": 400, "code": "Ecs.0005"}),
    )
    .await;
    let err = h.client.get_job("ff8080aa").await.expect_err("400");
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert_eq!(h.calls("get_job").await, 1);
    h.ctl(reqwest::Method::DELETE, "/_emulator/faults", None)
        .await;
    h.post(
        "/_emulator/faults",
        json!({"operation": "get_job", "error_rate": 1.0, "status": 503, "code": "Ecs.1000"}),
    )
    .await;
    let err = h
        .client
        .get_job("ff8080aa")
        .await
        .expect_err("503 every time");
    assert_eq!(err.kind, ErrorKind::Transient);
    assert_eq!(h.calls("get_job").await, 1 + 5);
    h.stop().await;
}

#[tokio::test]
async fn unknown_body_fields_are_rejected_with_ecs_0005() {
    let h = start(config()).await;
    let body = json!({"server": {"name": "x", "imageRef": "i", "flavorRef": "x1.2u.4g", "vpcid": "v",
        "nics": [{"subnet_id": "s"}], "root_volume": {"volumetype": "SSD"}, "flavour": "typo"}});
    assert_create_refused(&h, &body, "flavour").await;
    h.stop().await;
}

#[tokio::test]
async fn pagination_spans_more_than_one_page() {
    let h = start(config()).await;
    let c = &h.client;
    c.create_servers(&create_req("batch", "batch", 7, false))
        .await
        .expect("create 7");
    c.create_servers(&create_req("other", "other", 2, false))
        .await
        .expect("create 2");
    let filter = ServerFilter {
        page_size: Some(3),
        ..pool_filter("batch")
    };
    let all = c.list_servers(&filter).await.expect("list");
    assert_eq!(all.len(), 7);
    let mut ids: Vec<&str> = all.iter().map(|s| s.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 7);
    assert_eq!(
        h.calls("list_servers").await,
        3,
        "pages 1, 2 and 3 of 3, 3, 1"
    );
    let every = c
        .list_servers(&ServerFilter {
            page_size: Some(4),
            ..ServerFilter::default()
        })
        .await
        .expect("all");
    assert_eq!(every.len(), 9);
    h.stop().await;
}

#[tokio::test]
async fn quota_and_sold_out_flavors_fail_as_documented() {
    let h = start(config()).await;
    let c = &h.client;
    h.post(
        "/_emulator/quota",
        json!({"instances": 2, "vcpus": 100, "ram_mb": 1000000}),
    )
    .await;
    let err = c
        .create_servers(&create_req("q", "q", 3, false))
        .await
        .expect_err("over quota");
    assert_eq!(err.kind, ErrorKind::Quota);
    assert_eq!(err.code.as_deref(), Some("Ecs.0001"));

    h.post("/_emulator/flavors/x1.2u.4g", json!({"sold_out": true}))
        .await;
    let created = c
        .create_servers(&create_req("so", "so", 1, false))
        .await
        .expect("accepted");
    h.advance(5.0).await;
    let job = c.get_job(&created.job_id).await.expect("job");
    assert_eq!(job.status, JobStatus::Fail);
    let failure = job_failure(&job).expect("failure");
    assert_eq!(failure.kind, ErrorKind::SoldOut);
    assert_eq!(failure.code.as_deref(), Some("Ecs.0018"));
    let err = c
        .get_server(&created.server_ids[0])
        .await
        .expect_err("never built");
    assert_eq!(err.kind, ErrorKind::NotFound);
    h.stop().await;
}

#[tokio::test]
async fn flavors_and_quota_report_what_the_project_may_create() {
    let h = start(config()).await;
    let c = &h.client;
    let flavors = c.list_flavors(None).await.expect("flavors");
    let f = flavors
        .iter()
        .find(|f| f.id == "x1.2u.4g")
        .expect("x1.2u.4g is offered");
    assert_eq!((f.vcpus, f.ram_mb), (2, 4096));
    assert!(f.on_sale());
    assert_eq!(f.performance_type.as_deref(), Some("advanced_smb"));
    assert!(
        flavors.iter().any(|f| f.gpus > 0),
        "GPU flavors carry their GPU count"
    );
    h.post("/_emulator/flavors/x1.2u.4g", json!({"sold_out": true}))
        .await;
    let f = c.list_flavors(None).await.expect("flavors");
    let f = f.iter().find(|f| f.id == "x1.2u.4g").expect("still listed");
    assert_eq!(f.sale_status, "sellout");
    assert!(!f.on_sale());
    h.post("/_emulator/flavors/x1.2u.4g", json!({"sold_out": false}))
        .await;

    h.post(
        "/_emulator/quota",
        json!({"instances": 5, "vcpus": 40, "ram_mb": 81920}),
    )
    .await;
    c.create_servers(&create_req("q", "q", 2, false))
        .await
        .expect("create");
    let q = c.get_quota().await.expect("quota");
    assert_eq!(q.max_instances, Some(5));
    assert_eq!(q.max_cores, Some(40));
    assert_eq!(q.max_ram_mb, Some(81920));
    assert_eq!(q.used_instances, 2);
    assert!(q.used_cores > 0 && q.used_ram_mb > 0, "{q:?}");
    h.stop().await;
}

#[tokio::test]
async fn images_are_looked_up_by_id_and_an_unknown_image_refuses_the_create() {
    let h = start(config()).await;
    let c = &h.client;
    let any = c.get_image("img-anything").await.expect("lookup");
    assert_eq!(
        any.map(|i| i.id).as_deref(),
        Some("img-anything"),
        "without a catalogue every image exists"
    );
    h.post(
        "/_emulator/images",
        json!({"images": [{"id": "img-ubuntu-22", "name": "Ubuntu 22.04", "min_disk": 40}]}),
    )
    .await;
    let i = c.get_image("img-ubuntu-22").await.expect("lookup");
    let i = i.expect("the catalogue's image");
    assert_eq!(
        (i.name.as_str(), i.status.as_str(), i.min_disk),
        ("Ubuntu 22.04", "active", 40)
    );
    assert_eq!(c.get_image("img-gone").await.expect("lookup"), None);
    let mut req = create_req("web", "web", 1, false);
    req.image = "img-gone".into();
    let err = c.create_servers(&req).await.expect_err("refused");
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert!(
        err.message.contains("imageRef \"img-gone\""),
        "{}",
        err.message
    );
    c.create_servers(&create_req("web", "web", 1, false))
        .await
        .expect("the catalogue's image creates");
    assert_eq!(h.calls("get_image").await, 3);
    h.stop().await;
}

#[tokio::test]
async fn requests_ecs_can_never_accept_are_refused_before_sending() {
    let h = start(config()).await;
    let mut req = create_req("web", "web", 1, false);
    req.root_volume.volume_type = "FOO".into();
    req.subnet_ids = (0..13).map(|i| format!("subnet-{i}")).collect();
    req.user_data = Some("A".repeat(60 * 1024));
    let err = h.client.create_servers(&req).await.expect_err("refused");
    assert_eq!(err.kind, ErrorKind::Invalid);
    for needle in ["volume_type \"FOO\"", "1-12 subnets, got 13", "user_data"] {
        assert!(err.message.contains(needle), "{needle}: {}", err.message);
    }
    assert_eq!(h.calls("create_servers").await, 0, "nothing was sent");
    h.stop().await;
}

#[tokio::test]
async fn spot_reclamation_is_visible_through_get_and_list() {
    let h = start(config()).await;
    let c = &h.client;
    let created = c
        .create_servers(&create_req("spot", "gpu", 2, true))
        .await
        .expect("create spot");
    h.advance(31.0).await;
    let id = created.server_ids[0].clone();
    let s = c.get_server(&id).await.expect("get");
    assert_eq!(s.charging_mode, ChargingMode::Spot);
    assert!(s.spot_interruption_at.is_none());

    let r = h
        .post(
            "/_emulator/spot/reclaim",
            json!({"server_id": id, "notice_seconds": 300}),
        )
        .await;
    assert!(r["reclaim_at"].is_string());
    let noticed = c.get_server(&id).await.expect("get after notice");
    assert_eq!(noticed.status, ServerStatus::Active);
    let at = noticed
        .spot_interruption_at
        .expect("interruption time in metadata");
    let listed = c.list_servers(&pool_filter("gpu")).await.expect("list");
    let mine = listed.iter().find(|s| s.id == id).expect("listed");
    assert_eq!(mine.spot_interruption_at, Some(at));
    let del = c
        .delete_servers(&DeleteServersRequest {
            server_ids: vec![id.clone()],
            ..Default::default()
        })
        .await
        .expect("delete call");
    h.advance(2.0).await;
    let dj = c.get_job(&del).await.expect("job");
    assert_eq!(
        dj.status,
        JobStatus::Fail,
        "a server being reclaimed cannot be deleted"
    );

    h.advance(300.0).await;
    let reclaimed = c.get_server(&id).await.expect("lingers");
    assert_eq!(reclaimed.status, ServerStatus::Deleted);
    assert_eq!(
        c.list_servers(&pool_filter("gpu"))
            .await
            .expect("list")
            .len(),
        1
    );
    let bill = h.get("/_emulator/billing").await;
    let rec = bill["instances"]
        .as_array()
        .expect("items")
        .iter()
        .find(|b| b["server_id"] == id.as_str())
        .expect("billed");
    assert_eq!(rec["reclaimed"], true);
    assert_eq!(rec["spot"], true);
    // Launched at +30 s, notice at +31 s, reclaimed 300 s later: 301 billed seconds.
    assert!(
        (rec["seconds"].as_f64().expect("seconds") - 301.0).abs() < 0.01,
        "{rec}"
    );

    // The hazard rate reclaims on its own.
    h.post(
        "/_emulator/flavors/x1.2u.4g",
        json!({"spot_hazard_per_hour": 1.0e6}),
    )
    .await;
    h.advance(10.0).await;
    let other = c.get_server(&created.server_ids[1]).await.expect("other");
    assert!(other.spot_interruption_at.is_some());
    h.stop().await;
}

#[tokio::test]
async fn restart_keeps_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("emulator.json");
    let mut cfg = config();
    cfg.state_path = Some(path.clone());
    let h = start(cfg.clone()).await;
    let req = create_req("keep", "keep", 1, false);
    let created = h.client.create_servers(&req).await.expect("create");
    h.advance(31.0).await;
    h.client
        .set_tags(&created.server_ids[0], &[("team".into(), "a".into())])
        .await
        .expect("tag");
    h.post(
        "/_emulator/workload",
        json!({"pool": "keep", "shape": {"kind": "constant", "rps": 5.0}}),
    )
    .await;
    let before = h.now_ms().await;
    h.stop().await;
    let saved = std::fs::read_to_string(&path).expect("state file");
    assert!(!saved.contains(SK), "secrets never reach the state file");

    let h = start(cfg).await;
    let s = h
        .client
        .get_server(&created.server_ids[0])
        .await
        .expect("server survived");
    assert_eq!(s.status, ServerStatus::Active);
    assert_eq!(s.tag("team"), Some("a"));
    let after = h.now_ms().await;
    assert!(after >= before);
    assert_eq!(
        h.client.create_servers(&req).await.expect("replay"),
        created,
        "tokens survive too"
    );
    assert_eq!(
        h.get("/_emulator/workload").await["workloads"]["keep"]["current_rps"],
        5.0
    );
    let bill = h.get("/_emulator/billing").await;
    assert_eq!(bill["instances"].as_array().map(Vec::len), Some(1));
    h.stop().await;
}

/// The latest value of `ns/metric` for dimension `(name, value)` in the 10 minutes up to `now_ms`.
async fn latest(
    c: &HuaweiClient,
    ns: &str,
    metric: &str,
    (name, value): (&str, &str),
    now_ms: i64,
) -> f64 {
    let pts = c
        .query_metric(&MetricQuery {
            metric: MetricId {
                namespace: ns.into(),
                metric_name: metric.into(),
                dimensions: vec![Dimension::new(name, value)],
            },
            from_ms: now_ms - 600_000,
            to_ms: now_ms + 1,
            period: 1,
            filter: Filter::Average,
        })
        .await
        .expect("query");
    pts.last()
        .map(|p| p.value)
        .unwrap_or_else(|| panic!("no datapoints for {ns}/{metric}"))
}

#[tokio::test]
async fn ces_returns_the_driver_metrics_and_more_instances_lower_them() {
    let h = start(config()).await;
    let c = &h.client;
    // x1.2u.4g serves 50 requests/s at saturation; 40 requests/s is 80 % of one instance.
    h.post(
        "/_emulator/workload",
        json!({"pool": "web", "shape": {"kind": "constant", "rps": 40.0}}),
    )
    .await;
    let first = c
        .create_servers(&create_req("web", "web", 1, false))
        .await
        .expect("create");
    let id = first.server_ids[0].clone();
    h.advance(30.0 + 20.0 + 180.0).await;
    let now = h.now_ms().await;
    let cpu1 = latest(c, "SYS.ECS", "cpu_util", ("instance_id", &id), now).await;
    assert!((cpu1 - 80.4).abs() < 1.0, "one instance at 80 %: {cpu1}");
    let rt1 = latest(c, "FLEXUS.POOL", "response_time", ("pool", "web"), now).await;
    let load = h.get("/_emulator/pools/web/load").await;
    assert_eq!(load["sample"]["ready_instances"], 1);

    c.create_servers(&create_req("web", "web", 3, false))
        .await
        .expect("scale out");
    h.advance(30.0 + 20.0 + 120.0).await;
    let now = h.now_ms().await;
    let cpu4 = latest(c, "AGT.ECS", "cpu_usage", ("instance_id", &id), now).await;
    assert!((cpu4 - 21.6).abs() < 1.0, "four instances at 20 %: {cpu4}");
    let rt4 = latest(c, "FLEXUS.POOL", "response_time", ("pool", "web"), now).await;
    assert!(
        rt4 < rt1,
        "latency falls when capacity is added: {rt1} -> {rt4}"
    );
    assert_eq!(
        latest(c, "FLEXUS.POOL", "ready_instances", ("pool", "web"), now).await,
        4.0
    );

    let batch = c
        .batch_query_metrics(&BatchMetricQuery {
            metrics: vec![
                MetricId {
                    namespace: "SYS.ECS".into(),
                    metric_name: "cpu_util".into(),
                    dimensions: vec![Dimension::new("instance_id", &id)],
                },
                MetricId {
                    namespace: "FLEXUS.POOL".into(),
                    metric_name: "queue_depth".into(),
                    dimensions: vec![Dimension::new("pool", "web")],
                },
            ],
            from_ms: now - 3_600_000,
            to_ms: now,
            period: 300,
            filter: Filter::Max,
        })
        .await
        .expect("batch");
    assert_eq!(batch.len(), 2);
    assert!(
        batch[0].datapoints.iter().any(|p| p.value > 79.0),
        "max over 5 minutes keeps the busy period"
    );
    assert_eq!(batch[0].unit.as_deref(), Some("%"));

    // Custom metrics round-trip.
    c.put_custom_metrics(&[CustomMetric {
        metric: MetricId {
            namespace: "APP.WEB".into(),
            metric_name: "inflight".into(),
            dimensions: vec![Dimension::new("pool", "web")],
        },
        ttl_seconds: 3600,
        collect_time_ms: now - 1000,
        value: 42.0,
        unit: Some("count".into()),
    }])
    .await
    .expect("put");
    assert_eq!(
        latest(c, "APP.WEB", "inflight", ("pool", "web"), now).await,
        42.0
    );
    let err = c
        .put_custom_metrics(&[CustomMetric {
            metric: MetricId {
                namespace: "SYS.FAKE".into(),
                metric_name: "x".into(),
                dimensions: vec![Dimension::new("a", "b")],
            },
            ttl_seconds: 60,
            collect_time_ms: now,
            value: 1.0,
            unit: None,
        }])
        .await
        .expect_err("reserved namespace");
    assert_eq!(err.kind, ErrorKind::Invalid);
    h.stop().await;
}

#[tokio::test]
async fn booting_instances_serve_nothing_and_queue_builds() {
    let h = start(config()).await;
    h.post(
        "/_emulator/workload",
        json!({"pool": "q", "shape": {"kind": "constant", "rps": 120.0}}),
    )
    .await;
    let c = &h.client;
    c.create_servers(&create_req("q", "q", 1, false))
        .await
        .expect("create");
    h.advance(20.0).await;
    let load = h.get("/_emulator/pools/q/load").await;
    assert_eq!(load["instances"][0]["lifecycle"], "booting");
    h.advance(30.0 + 20.0 + 120.0).await;
    let now = h.now_ms().await;
    let q = latest(c, "FLEXUS.POOL", "queue_depth", ("pool", "q"), now).await;
    assert!(
        q > 0.0,
        "120 requests/s on one 50 requests/s instance queues: {q}"
    );
    h.stop().await;
}

#[tokio::test]
async fn trace_workload_replays_a_csv_file_and_bad_traces_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("trace.csv");
    // 60 s steps: 600, 600, 6000 requests → 10, 10, 100 requests/s.
    std::fs::write(
        &path,
        "timestamp,requests\n1700000000,600\n1700000060,600\n1700000120,6000\n1700000180,6000\n",
    )
    .expect("write trace");
    let h = start(config()).await;
    let set = h
        .post(
            "/_emulator/workload",
            json!({"pool": "t", "shape": {"kind": "trace", "trace": path.to_str().expect("utf8"), "scale": 2.0}}),
        )
        .await;
    assert_eq!(set["workload"]["current_rps"], 20.0);
    h.advance(125.0).await;
    assert_eq!(
        h.get("/_emulator/workload").await["workloads"]["t"]["current_rps"],
        200.0
    );
    // Samples sit on minute boundaries; one more minute guarantees a sample at t >= 120 s.
    h.advance(60.0).await;
    let load = h.get("/_emulator/pools/t/load").await;
    assert_eq!(
        load["sample"]["offered_rps"], 200.0,
        "the latest sample replays the third step"
    );
    assert!(
        load["sample"]["dropped"].as_f64().expect("dropped") > 0.0,
        "no instance: everything is dropped"
    );

    // Another column, read as a rate.
    let wide = dir.path().join("wide.csv");
    std::fs::write(
        &wide,
        "time,cpu,rps\n2024-01-01 00:00:00,1,7.5\n2024-01-01 00:05:00,1,30\n2024-01-01 00:10:00,1,30\n",
    )
    .expect("write wide trace");
    let wide = wide.to_str().expect("utf8");
    let set = h
        .post(
            "/_emulator/workload",
            json!({"pool": "w", "shape": {"kind": "trace", "trace": wide, "column": 2, "values": "rate"}}),
        )
        .await;
    assert_eq!(set["workload"]["current_rps"], 7.5);
    // Refused workloads name what is wrong.
    for (workload, needle) in [
        (
            json!({"pool": "w", "shape": {"kind": "trace", "trace": wide, "column": 5}}),
            "no column 5",
        ),
        (
            json!({"pool": "t", "shape": {"kind": "trace", "trace": "no-such-trace"}}),
            "no-such-trace",
        ),
        (
            json!({"pool": "t", "shape": {"kind": "constant", "rps": -1}}),
            "rps",
        ),
    ] {
        let (status, body) = h
            .ctl(reqwest::Method::POST, "/_emulator/workload", Some(workload))
            .await;
        assert_eq!(status, 400);
        assert!(
            body["error"].as_str().expect("message").contains(needle),
            "{body}"
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn wait_for_job_returns_once_the_job_settles_on_a_running_clock() {
    let mut cfg = config();
    cfg.time_scale = 200.0; // 30 s boots take 150 ms of real time
    let h = start(cfg).await;
    let created = h
        .client
        .create_servers(&create_req("w", "w", 1, false))
        .await
        .expect("create");
    let job = flexus_cloud::wait_for_job(
        &h.client,
        &created.job_id,
        std::time::Duration::from_millis(20),
        std::time::Duration::from_secs(10),
    )
    .await
    .expect("settles");
    assert_eq!(job.status, JobStatus::Success);
    assert_eq!(
        h.client
            .get_server(&created.server_ids[0])
            .await
            .expect("get")
            .status,
        ServerStatus::Active
    );
    h.stop().await;
}

#[tokio::test]
async fn gateway_throttle_answers_429_apigw_0308_with_the_documented_message() {
    let mut cfg = config();
    cfg.throttle_per_second = 1.0;
    let h = start(cfg).await;
    let mut one_shot = client_config(&h.base);
    one_shot.retry.max_attempts = 1;
    let c = HuaweiClient::new(one_shot, Credentials::new(AK, SK)).expect("client");
    c.list_servers(&ServerFilter::default())
        .await
        .expect("first call within the limit");
    let err = c
        .list_servers(&ServerFilter::default())
        .await
        .expect_err("second call in the same second");
    assert_eq!(err.kind, ErrorKind::Throttled);
    assert_eq!(err.status, Some(429));
    assert_eq!(err.code.as_deref(), Some("APIGW.0308"));
    assert!(
        err.message
            .contains("policy user over ratelimit,limit:1,time:1 second"),
        "{}",
        err.message
    );
    // Other operations have their own budget.
    let err = c.get_job("ff8080").await.expect_err("unknown job");
    assert_eq!(err.kind, ErrorKind::NotFound);
    h.stop().await;
}

#[tokio::test]
async fn slow_responses_time_out_and_are_retried_as_transient() {
    let h = start(config()).await;
    let mut cfg = client_config(&h.base);
    cfg.request_timeout = std::time::Duration::from_millis(100);
    cfg.retry.max_attempts = 3;
    let c = HuaweiClient::new(cfg, Credentials::new(AK, SK)).expect("client");
    h.post(
        "/_emulator/faults",
        json!({"operation": "get_server", "latency_ms": 400}),
    )
    .await;
    let err = c
        .get_server("any")
        .await
        .expect_err("every attempt times out");
    assert_eq!(err.kind, ErrorKind::Transient);
    assert!(err.message.contains("timed out"), "{}", err.message);
    assert_eq!(h.calls("get_server").await, 3);
    h.stop().await;
}

#[tokio::test]
async fn dry_run_validates_without_creating() {
    let h = start(config()).await;
    let mut body = flexus_cloud::client::create_body(&create_req("dry", "dry", 1, false));
    body["dry_run"] = json!(true);
    let r = post_create(&h, &body).await.expect("dry run passes");
    assert_eq!(r.status, 202);
    assert!(
        h.client
            .list_servers(&pool_filter("dry"))
            .await
            .expect("list")
            .is_empty()
    );
    // The client's check is the same dry run: quota is checked, nothing is created.
    h.client
        .check_create_servers(&create_req("dry", "dry", 2, false))
        .await
        .expect("a create that fits is accepted by the check");
    h.post(
        "/_emulator/quota",
        json!({"instances": 1, "vcpus": 100, "ram_mb": 1000000}),
    )
    .await;
    let err = h
        .client
        .check_create_servers(&create_req("dry", "dry", 2, false))
        .await
        .expect_err("over quota");
    assert_eq!(err.code.as_deref(), Some("Ecs.0001"));
    assert!(
        h.client
            .list_servers(&pool_filter("dry"))
            .await
            .expect("list")
            .is_empty(),
        "a check creates nothing"
    );
    body["server"]["root_volume"]["size"] = json!(4096);
    assert_create_refused(&h, &body, "root_volume.size").await;
    h.stop().await;
}

#[tokio::test]
async fn the_clock_advances_to_an_exact_instant_and_refuses_to_go_back() {
    let h = start(config()).await;
    let now = h.now_ms().await;
    let target = (now / 60_000 + 2) * 60_000 - 1;
    let v = h
        .post("/_emulator/clock", json!({"advance_to_ms": target}))
        .await;
    assert_eq!(v["now_ms"].as_i64(), Some(target), "{v}");
    let (status, v) = h
        .ctl(
            reqwest::Method::POST,
            "/_emulator/clock",
            Some(json!({"advance_to_ms": target - 1})),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("advance_to_ms")),
        "{v}"
    );
    let (status, v) = h
        .ctl(
            reqwest::Method::POST,
            "/_emulator/clock",
            Some(json!({"advance_to_ms": target + 5, "advance_seconds": 1})),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"].as_str().is_some_and(|e| e.contains("exclude")),
        "{v}"
    );
    assert_eq!(
        Some(h.now_ms().await),
        Some(target),
        "a refused request moves nothing"
    );
}
