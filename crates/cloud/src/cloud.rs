//! The `Cloud` trait the agent codes against, and helpers built on it.

use std::time::Duration;

use crate::error::{CloudError, ErrorKind};
use crate::model::*;

/// Instances and metrics of one cloud project/region. Object safe (`Arc<dyn Cloud>`).
///
/// Implemented by [`HuaweiClient`](crate::HuaweiClient) for real Huawei Cloud and the
/// local emulator alike.
#[async_trait::async_trait]
pub trait Cloud: Send + Sync + std::fmt::Debug {
    /// The same account, with calls drawing on `tenant`'s fair share of the account's
    /// rate limits (a tenant with many calls waiting cannot starve another).
    fn for_tenant(&self, tenant: &str) -> std::sync::Arc<dyn Cloud>;

    /// `POST /v1/{project}/cloudservers` with `X-Client-Token`: creates post-paid servers.
    /// Retrying with the same `client_token` and request never creates twice.
    async fn create_servers(&self, req: &CreateServersRequest) -> Result<CreateResult, CloudError>;

    /// The same `POST /v1/{project}/cloudservers` with `dry_run: true` and no client
    /// token: ECS checks the request (parameters, flavor, image, quota) and creates
    /// nothing. `Ok` means a create with this request would be accepted now.
    async fn check_create_servers(&self, req: &CreateServersRequest) -> Result<(), CloudError>;

    /// `GET /v1/{project}/jobs/{job_id}`.
    async fn get_job(&self, job_id: &str) -> Result<Job, CloudError>;

    /// `GET /v1/{project}/cloudservers/detail`, every page, filtered by all given tags.
    async fn list_servers(&self, filter: &ServerFilter) -> Result<Vec<Server>, CloudError>;

    /// `GET /v1/{project}/cloudservers/{id}`; `NotFound` once it is gone.
    async fn get_server(&self, server_id: &str) -> Result<Server, CloudError>;

    /// `POST /v1/{project}/cloudservers/delete`; returns the job id.
    async fn delete_servers(&self, req: &DeleteServersRequest) -> Result<String, CloudError>;

    /// Adds or overwrites tags on a server.
    async fn set_tags(&self, server_id: &str, tags: &[(String, String)]) -> Result<(), CloudError>;

    /// Removes tags from a server.
    async fn delete_tags(
        &self,
        server_id: &str,
        tags: &[(String, String)],
    ) -> Result<(), CloudError>;

    /// Lists a server's tags.
    async fn list_tags(&self, server_id: &str) -> Result<Vec<(String, String)>, CloudError>;

    /// `GET /V1.0/{project}/metric-data`.
    async fn query_metric(&self, q: &MetricQuery) -> Result<Vec<Datapoint>, CloudError>;

    /// `POST /V1.0/{project}/batch-query-metric-data`.
    async fn batch_query_metrics(
        &self,
        q: &BatchMetricQuery,
    ) -> Result<Vec<MetricSeries>, CloudError>;

    /// `POST /V1.0/{project}/metric-data` (custom metrics).
    async fn put_custom_metrics(&self, metrics: &[CustomMetric]) -> Result<(), CloudError>;

    /// `GET /v1/{project}/cloudservers/flavors`: the flavors the project may create
    /// (in one availability zone when given).
    async fn list_flavors(
        &self,
        availability_zone: Option<&str>,
    ) -> Result<Vec<Flavor>, CloudError>;

    /// `GET /v1/{project}/cloudservers/limits`: the project's ECS quota and usage.
    async fn get_quota(&self) -> Result<Quota, CloudError>;

    /// `GET /v2/cloudimages?id=...` (IMS): the image, `None` when the project has no such image.
    async fn get_image(&self, image_id: &str) -> Result<Option<Image>, CloudError>;
}

/// Polls a job until it is `SUCCESS` or `FAIL` (both returned as `Ok`; inspect
/// `status` and the sub-jobs), or fails with a `Transient` error after `timeout`.
pub async fn wait_for_job(
    cloud: &dyn Cloud,
    job_id: &str,
    poll_every: Duration,
    timeout: Duration,
) -> Result<Job, CloudError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let job = cloud.get_job(job_id).await?;
        if job.status.is_terminal() {
            return Ok(job);
        }
        if tokio::time::Instant::now() + poll_every > deadline {
            return Err(CloudError::local(
                ErrorKind::Transient,
                "wait_for_job",
                format!("job {job_id} still {:?} after {timeout:?}", job.status),
            ));
        }
        tokio::time::sleep(poll_every).await;
    }
}

/// The kind of error a failed job (or its first failed sub-job) reports, if any.
pub fn job_failure(job: &Job) -> Option<CloudError> {
    if job.status != JobStatus::Fail {
        return None;
    }
    let failed = job.sub_jobs.iter().find(|s| s.status == JobStatus::Fail);
    let code = failed
        .and_then(|s| s.error_code.clone())
        .or_else(|| job.error_code.clone());
    let message = failed
        .and_then(|s| s.fail_reason.clone())
        .or_else(|| job.fail_reason.clone())
        .unwrap_or_else(|| format!("job {} failed", job.job_id));
    Some(CloudError {
        kind: crate::error::classify(400, code.as_deref()),
        code,
        message,
        request_id: None,
        status: None,
        operation: job.job_type.clone(),
    })
}
