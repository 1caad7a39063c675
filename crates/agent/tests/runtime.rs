//! The reconcile runtime against the emulator: a panicking pass, permanent cloud
//! errors, fair tenants.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;
use flexus_api::Precondition;
use flexus_cloud::{
    BatchMetricQuery, Cloud, CloudError, CreateResult, CreateServersRequest, CustomMetric,
    Datapoint, DeleteServersRequest, Flavor, Image, Job, MetricQuery, MetricSeries, Quota, Server,
    ServerFilter,
};

/// The emulator's client, except that the first listing of one pool panics (as a bug
/// in a pass would).
#[derive(Debug)]
struct PanicsOnce {
    inner: Arc<dyn Cloud>,
    pool: String,
    armed: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl Cloud for PanicsOnce {
    fn for_tenant(&self, tenant: &str) -> Arc<dyn Cloud> {
        Arc::new(PanicsOnce {
            inner: self.inner.for_tenant(tenant),
            pool: self.pool.clone(),
            armed: self.armed.clone(),
        })
    }
    async fn create_servers(&self, req: &CreateServersRequest) -> Result<CreateResult, CloudError> {
        self.inner.create_servers(req).await
    }
    async fn check_create_servers(&self, req: &CreateServersRequest) -> Result<(), CloudError> {
        self.inner.check_create_servers(req).await
    }
    async fn get_job(&self, job_id: &str) -> Result<Job, CloudError> {
        self.inner.get_job(job_id).await
    }
    #[allow(clippy::panic)]
    async fn list_servers(&self, filter: &ServerFilter) -> Result<Vec<Server>, CloudError> {
        let ours = filter
            .tags
            .iter()
            .any(|(k, v)| k == "flexus-pool" && *v == self.pool);
        if ours && self.armed.swap(false, Ordering::SeqCst) {
            panic!("a bug in the pass of pool {}", self.pool);
        }
        self.inner.list_servers(filter).await
    }
    async fn get_server(&self, server_id: &str) -> Result<Server, CloudError> {
        self.inner.get_server(server_id).await
    }
    async fn delete_servers(&self, req: &DeleteServersRequest) -> Result<String, CloudError> {
        self.inner.delete_servers(req).await
    }
    async fn set_tags(&self, server_id: &str, tags: &[(String, String)]) -> Result<(), CloudError> {
        self.inner.set_tags(server_id, tags).await
    }
    async fn delete_tags(
        &self,
        server_id: &str,
        tags: &[(String, String)],
    ) -> Result<(), CloudError> {
        self.inner.delete_tags(server_id, tags).await
    }
    async fn list_tags(&self, server_id: &str) -> Result<Vec<(String, String)>, CloudError> {
        self.inner.list_tags(server_id).await
    }
    async fn query_metric(&self, q: &MetricQuery) -> Result<Vec<Datapoint>, CloudError> {
        self.inner.query_metric(q).await
    }
    async fn batch_query_metrics(
        &self,
        q: &BatchMetricQuery,
    ) -> Result<Vec<MetricSeries>, CloudError> {
        self.inner.batch_query_metrics(q).await
    }
    async fn put_custom_metrics(&self, metrics: &[CustomMetric]) -> Result<(), CloudError> {
        self.inner.put_custom_metrics(metrics).await
    }
    async fn list_flavors(&self, az: Option<&str>) -> Result<Vec<Flavor>, CloudError> {
        self.inner.list_flavors(az).await
    }
    async fn get_quota(&self) -> Result<Quota, CloudError> {
        self.inner.get_quota().await
    }
    async fn get_image(&self, id: &str) -> Result<Option<Image>, CloudError> {
        self.inner.get_image(id).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_pass_is_counted_by_namespace_and_the_pool_is_reconciled_again() {
    let emu = Emu::start(10.0, 10.0).await;
    let cloud: Arc<dyn Cloud> = Arc::new(PanicsOnce {
        inner: emu.cloud(),
        pool: "boom".into(),
        armed: Arc::new(AtomicBool::new(true)),
    });
    let agent = InProcAgent::start_with_cloud(&emu, 10.0, cloud, |_| {}).await;
    let c = &agent.client;
    c.put_pool("team-a", "boom", &pool_spec(2, 4), Precondition::IfAbsent)
        .await
        .unwrap();
    // The first pass panics; the pool must still get its two instances.
    wait_pool_ready(c, ("team-a", "boom"), 2, Duration::from_secs(30)).await;
    let metrics = scrape(&agent.url, None).await;
    let line = metrics
        .lines()
        .find(|l| l.starts_with("flexus_agent_reconcile_panics_total{"))
        .unwrap_or_else(|| panic!("no panic counter in /metrics:\n{metrics}"));
    assert_eq!(
        line, "flexus_agent_reconcile_panics_total{namespace=\"team-a\"} 1",
        "one panic, labelled by namespace only"
    );
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_create_error_shows_in_the_status_at_once_and_is_not_sent_again_and_again() {
    let emu = Emu::start(10.0, 5.0).await;
    // Room for one instance: a create of two is refused (Ecs.0001, a 400).
    emu.set_quota(1, 1000, 10_000_000).await;
    let agent = InProcAgent::start(&emu, 10.0, |_| {}).await;
    let c = &agent.client;
    let started = emu.now_ms();
    c.put_pool("team-a", "stuck", &pool_spec(2, 4), Precondition::IfAbsent)
        .await
        .unwrap();
    let st = wait_status(
        c,
        ("team-a", "stuck"),
        "the cloud's error in the status",
        Duration::from_secs(10),
        |s| s.last_error.is_some().then_some(s),
    )
    .await;
    assert_eq!(st.phase, flexus_api::PoolPhase::Degraded);
    let e = st.last_error.unwrap();
    assert!(e.contains("Ecs.0001") && e.contains("create"), "{e}");
    let d = st.last_error_detail.expect("the error's detail");
    assert_eq!(d.code.as_deref(), Some("Ecs.0001"));
    assert!(d.permanent, "a 4xx is permanent: {d:?}");
    assert!(d.retry_at.is_some(), "{d:?}");

    // Five emulated minutes later: one recorded operation, a handful of checks.
    wait_for("five emulated minutes", Duration::from_secs(60), || async {
        (emu.now_ms() - started >= 300_000).then_some(())
    })
    .await;
    let ops = c.operations("team-a", "stuck").await.unwrap();
    assert_eq!(
        ops.len(),
        1,
        "one failed create recorded, not one per retry: {ops:?}"
    );
    let creates = emu
        .emu
        .call_counts()
        .get("create_servers")
        .copied()
        .unwrap_or(0);
    assert!(
        creates <= 5,
        "{creates} create calls in five minutes: the pool must back off"
    );
    let st = c.pool_status("team-a", "stuck").await.unwrap();
    assert!(
        st.last_error
            .as_deref()
            .is_some_and(|e| e.contains("Ecs.0001"))
    );
    // The CLI shows it too, in the list and in the status.
    let list = agent.cli(&["pools", "list"]).await;
    assert!(list.contains("Ecs.0001"), "{list}");
    let status = agent.cli(&["pools", "status", "team-a/stuck"]).await;
    assert!(
        status.contains("error:") && status.contains("Ecs.0001"),
        "{status}"
    );

    // Changing the pool's spec lifts the hold at once: one instance fits.
    let mut spec = pool_spec(1, 4);
    spec.initial_size = Some(1);
    put_pool(c, "stuck", &spec).await;
    let st = wait_pool_ready(c, ("team-a", "stuck"), 1, Duration::from_secs(20)).await;
    assert_eq!(
        st.last_error, None,
        "a create that went through clears the error"
    );
    assert_eq!(st.phase, flexus_api::PoolPhase::Ready);
    agent.shutdown().await;
}

fn list_calls(emu: &Emu) -> u64 {
    emu.emu
        .call_counts()
        .get("list_servers")
        .copied()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_interval_below_the_minimum_is_raised_to_it() {
    let emu = Emu::start(10.0, 5.0).await;
    // An agent that allowed 1 ms stored this policy (as older agents did)...
    let agent = InProcAgent::start(&emu, 10.0, |c| {
        c.reconcile.min_evaluation_interval = Duration::from_millis(1);
    })
    .await;
    let c = &agent.client;
    c.put_pool("team-a", "eager", &pool_spec(0, 2), Precondition::IfAbsent)
        .await
        .unwrap();
    let greedy = policy(
        "eager",
        serde_json::json!({
            "strategy": "target_tracking", "evaluation_interval": "1ms",
            "bounds": {"min": 0, "max": 2},
            "metrics": [{"name": "rps", "kind": "custom", "source": {"type": "push"}, "target": 10}]
        }),
    );
    c.put_policy("team-a", "eager", &greedy, Precondition::IfAbsent)
        .await
        .unwrap();
    let (_, dir) = agent.stop_keeping_store().await;
    // ...and this one, with the default minimum of 10 s, runs it every 10 s.
    let agent = InProcAgent::start_in(dir, &emu, 10.0, |_| {}).await;
    let (from_calls, from) = (list_calls(&emu), emu.now_ms());
    wait_for("60 emulated seconds", Duration::from_secs(30), || async {
        (emu.now_ms() - from >= 60_000).then_some(())
    })
    .await;
    let calls = list_calls(&emu) - from_calls;
    assert!(
        (3..=9).contains(&calls),
        "{calls} listings in 60 s: one pass per 10 s (plus the first), not one per millisecond"
    );
    agent.shutdown().await;
}

/// Clock times of a pool's passes, read from its status every 50 ms for `for_`
/// of real time.
async fn pass_times(c: &flexus_api::Client, ns: &str, pool: &str, for_: Duration) -> Vec<i64> {
    let mut seen: Vec<i64> = Vec::new();
    let end = tokio::time::Instant::now() + for_;
    while tokio::time::Instant::now() < end {
        if let Ok(s) = c.pool_status(ns, pool).await
            && let Some(at) = s.last_reconcile_at.as_deref()
        {
            let at = flexus_agent::clock::parse_rfc3339(at).unwrap();
            if seen.last() != Some(&at) {
                seen.push(at);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_greedy_namespace_cannot_slow_down_a_modest_ones_passes() {
    let emu = Emu::start(10.0, 5.0).await;
    // The account allows 5 reads/s; forty pools of team-b want one listing every
    // 1.5 s each (15 s of emulated time), about 27/s.
    let mut cc = flexus_cloud::ClientConfig::single_endpoint(&emu.url, REGION, PROJECT).unwrap();
    cc.rate_limits = flexus_cloud::RateLimits {
        reads_per_second: 5.0,
        writes_per_second: 5.0,
        burst: 1,
    };
    let cloud: Arc<dyn Cloud> = Arc::new(
        flexus_cloud::HuaweiClient::new(cc, flexus_cloud::Credentials::new(AK, SK)).unwrap(),
    );
    let agent = InProcAgent::start_with_cloud(&emu, 10.0, cloud, |_| {}).await;
    let c = &agent.client;
    c.put_pool("team-a", "modest", &pool_spec(0, 1), Precondition::IfAbsent)
        .await
        .unwrap();
    for i in 0..40 {
        c.put_pool(
            "team-b",
            &format!("greedy-{i}"),
            &pool_spec(0, 1),
            Precondition::IfAbsent,
        )
        .await
        .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let times = pass_times(c, "team-a", "modest", Duration::from_secs(15)).await;
    let gaps: Vec<i64> = times.windows(2).map(|w| (w[1] - w[0]) / 1000).collect();
    assert!(gaps.len() >= 6, "passes at {times:?}");
    // Every 15 s of emulated time: a listing waits for at most two tokens (0.4 s
    // real, 4 s emulated) while team-b has dozens queued (in one shared queue it
    // would wait for all of them: about 8 s real, 80 s emulated).
    assert!(
        gaps.iter().all(|g| (12..=25).contains(g)),
        "gaps between the modest pool's passes (emulated seconds): {gaps:?}"
    );
    let greedy = pass_times(c, "team-b", "greedy-0", Duration::from_secs(5)).await;
    assert!(!greedy.is_empty(), "team-b still gets its share");
    agent.shutdown().await;
}
