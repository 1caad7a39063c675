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
