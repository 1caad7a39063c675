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
    Datapoint, DeleteServersRequest, Job, MetricQuery, MetricSeries, Server, ServerFilter,
};

/// The emulator's client, except that the first listing of one pool panics (as a bug
/// in a pass would).
#[derive(Debug)]
struct PanicsOnce {
    inner: Arc<dyn Cloud>,
    pool: String,
    armed: AtomicBool,
}

#[async_trait::async_trait]
impl Cloud for PanicsOnce {
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_pass_is_counted_by_namespace_and_the_pool_is_reconciled_again() {
    let emu = Emu::start(10.0, 10.0).await;
    let cloud: Arc<dyn Cloud> = Arc::new(PanicsOnce {
        inner: emu.cloud(),
        pool: "boom".into(),
        armed: AtomicBool::new(true),
    });
    let agent = InProcAgent::start_with_cloud(&emu, 10.0, cloud, |_| {}).await;
    let c = &agent.client;
    c.put_pool("team-a", "boom", &pool_spec(2, 4), Precondition::IfAbsent)
        .await
        .unwrap();
    // The first pass panics; the pool must still get its two instances.
    wait_for(
        "the pool reaches its minimum after the panic",
        Duration::from_secs(30),
        || async {
            let s = c.pool_status("team-a", "boom").await.ok()?;
            (s.ready_size == 2).then_some(())
        },
    )
    .await;
    let metrics = reqwest::get(format!("{}/metrics", agent.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
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

/// Runs the `flexus-agent` CLI against `agent` with a team-a token.
async fn cli(agent: &InProcAgent, args: &[&str]) -> String {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_flexus-agent"))
        .args(args)
        .env("FLEXUS_AGENT_URL", &agent.url)
        .env("FLEXUS_TOKEN", TEAM_A)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_create_error_shows_in_the_status_at_once_and_is_not_sent_again_and_again() {
    let emu = Emu::start(10.0, 5.0).await;
    // Room for one instance: a create of two is refused (Ecs.0001, a 400).
    emu.control(
        reqwest::Method::POST,
        "/_emulator/quota",
        serde_json::json!({"instances": 1, "vcpus": 1000, "ram_mb": 10_000_000}),
    )
    .await;
    let agent = InProcAgent::start(&emu, 10.0, |_| {}).await;
    let c = &agent.client;
    let started = emu.now_ms();
    c.put_pool("team-a", "stuck", &pool_spec(2, 4), Precondition::IfAbsent)
        .await
        .unwrap();
    let st = wait_for(
        "the cloud's error in the status",
        Duration::from_secs(10),
        || async {
            let s = c.pool_status("team-a", "stuck").await.ok()?;
            s.last_error.is_some().then_some(s)
        },
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
    let list = cli(&agent, &["pools", "list"]).await;
    assert!(list.contains("Ecs.0001"), "{list}");
    let status = cli(&agent, &["pools", "status", "team-a/stuck"]).await;
    assert!(
        status.contains("error:") && status.contains("Ecs.0001"),
        "{status}"
    );

    // Changing the pool's spec lifts the hold at once: one instance fits.
    let mut spec = pool_spec(1, 4);
    spec.initial_size = Some(1);
    c.put_pool("team-a", "stuck", &spec, Precondition::None)
        .await
        .unwrap();
    let st = wait_for("one ready instance", Duration::from_secs(20), || async {
        let s = c.pool_status("team-a", "stuck").await.ok()?;
        (s.ready_size == 1).then_some(s)
    })
    .await;
    assert_eq!(
        st.last_error, None,
        "a create that went through clears the error"
    );
    assert_eq!(st.phase, flexus_api::PoolPhase::Ready);
    agent.shutdown().await;
}
