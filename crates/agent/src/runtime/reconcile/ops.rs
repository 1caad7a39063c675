//! The operation journal: every cloud mutation is recorded before it is sent, sent
//! again with the same token and body while pending, and followed to a final state
//! through its job.

use std::time::Duration;

use flexus_api::{Operation, OperationKind, OperationState, Purchase};
use flexus_cloud::{CloudError, CreateServersRequest, DeleteServersRequest, ErrorKind, JobStatus};
use uuid::Uuid;

use super::{Context, PassError};
use crate::clock::{parse_rfc3339, rfc3339};
use crate::runtime::PoolKey;
use crate::store::{OpRecord, StoreError};

/// How long a submitted job may run before the operation is given up (instances it
/// made are then found by their tags).
const JOB_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// An operation about to be recorded and sent.
pub(super) struct NewOp {
    pub kind: OperationKind,
    pub count: u32,
    pub purchase: Option<Purchase>,
    pub server_ids: Vec<String>,
    pub request: Option<CreateServersRequest>,
    pub id: Uuid,
}

impl NewOp {
    pub fn delete(kind: OperationKind, server_ids: Vec<String>) -> Self {
        Self {
            kind,
            count: server_ids.len() as u32,
            purchase: None,
            server_ids,
            request: None,
            id: Uuid::new_v4(),
        }
    }
}

/// The metric label of an operation kind.
pub(super) fn kind_label(k: OperationKind) -> &'static str {
    k.as_str()
}

impl Context {
    /// Start-up recovery: finish or give up every operation left open by a previous
    /// run (creates are re-sent with their original token and body; deletes re-sent).
    pub async fn recover(&self) -> Result<(), PassError> {
        let mut open = self.store.open_operations(None).await?;
        // Only pools leased to this agent (the others' holders recover theirs).
        open.retain(|o| self.store.holds(&o.namespace, &o.pool));
        if !open.is_empty() {
            tracing::info!(
                count = open.len(),
                "recovering operations left open by a previous run"
            );
        }
        for mut op in open {
            let key = PoolKey::new(&op.namespace, &op.pool);
            if let Err(e) = self.track(&key, &mut op, None).await {
                tracing::warn!(pool = %key, op_id = %op.op.id, error = %e, "operation not recovered yet; its pool's passes will retry");
            }
        }
        Ok(())
    }

    pub(super) async fn save_op(
        &self,
        op: &mut OpRecord,
        state: OperationState,
    ) -> Result<(), StoreError> {
        op.op.state = state;
        op.op.updated_at = rfc3339(self.now());
        self.store.update_operation(op).await
    }

    /// Mark `op` ended in `state` (with `error`), and count it.
    pub(super) async fn end_op(
        &self,
        op: &mut OpRecord,
        state: OperationState,
        error: Option<String>,
    ) -> Result<(), StoreError> {
        if error.is_some() {
            op.op.error = error;
        }
        self.save_op(op, state).await?;
        let outcome = match state {
            OperationState::Succeeded => "succeeded",
            OperationState::Failed => "failed",
            OperationState::Abandoned => "abandoned",
            _ => "submitted",
        };
        self.telemetry.scale(kind_label(op.op.kind), outcome);
        Ok(())
    }

    /// Advance one open operation as far as it goes without waiting. A create's job
    /// that fails with an error the cloud will repeat holds further creates (when the
    /// pool's `spec_version` is known; start-up recovery leaves that to the pass).
    pub(super) async fn track(
        &self,
        key: &PoolKey,
        op: &mut OpRecord,
        spec_version: Option<u64>,
    ) -> Result<(), PassError> {
        if op.op.kind == OperationKind::Refresh {
            // Makes no cloud call: the refresh step of a pass advances it.
            return Ok(());
        }
        match op.op.state {
            OperationState::Pending => self.resend(op).await,
            OperationState::Submitted => self.follow_job(key, op, spec_version).await,
            _ => Ok(()),
        }
    }

    /// A pending operation: the call may or may not have reached the cloud, so send it
    /// again. For a create, the same token and body make that safe.
    async fn resend(&self, op: &mut OpRecord) -> Result<(), PassError> {
        match self.send(op).await {
            Ok(()) => self.end_op(op, OperationState::Submitted, None).await?,
            Err(e) if e.kind == ErrorKind::Conflict || e.code.as_deref() == Some("Ecs.0124") => {
                // Token reused with another body, or expired: nothing more can be done
                // with this operation; what it made is adopted by tags.
                self.end_op(op, OperationState::Abandoned, Some(e.to_string()))
                    .await?;
            }
            Err(e) if e.kind == ErrorKind::NotFound && op.op.kind.deletes() => {
                // Deleting servers that are already gone.
                self.end_op(op, OperationState::Succeeded, None).await?;
            }
            Err(e) if !e.kind.is_retryable() => {
                self.end_op(op, OperationState::Failed, Some(e.to_string()))
                    .await?;
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// A submitted operation: poll its job.
    async fn follow_job(
        &self,
        key: &PoolKey,
        op: &mut OpRecord,
        spec_version: Option<u64>,
    ) -> Result<(), PassError> {
        let Some(job_id) = op.op.job_id.clone() else {
            self.save_op(op, OperationState::Abandoned).await?;
            return Ok(());
        };
        let job = match self.cloud_for(&key.ns).get_job(&job_id).await {
            Ok(job) => job,
            Err(e) if e.kind == ErrorKind::NotFound => {
                let why = format!("job {job_id} vanished");
                self.end_op(op, OperationState::Abandoned, Some(why))
                    .await?;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let create = op.op.kind.creates().then_some(op.op.purchase);
        match job.status {
            JobStatus::Success => {
                if let Some(Some(p)) = create {
                    self.holds.succeeded(key, p);
                }
                self.end_op(op, OperationState::Succeeded, None).await?;
                tracing::info!(pool = %key, op_id = %op.op.id, job_id, "operation succeeded");
            }
            JobStatus::Fail => {
                let failure = flexus_cloud::job_failure(&job);
                if let (Some(e), Some(v), Some(p)) = (&failure, spec_version, create)
                    && !e.kind.is_retryable()
                {
                    let purchase = p.unwrap_or(Purchase::OnDemand);
                    self.refuse(key, v, op.op.count, purchase, e.clone());
                }
                let why = failure.map_or_else(|| "job failed".into(), |e| e.to_string());
                tracing::warn!(pool = %key, op_id = %op.op.id, job_id, error = %why, "operation failed");
                self.end_op(op, OperationState::Failed, Some(why)).await?;
            }
            _ => {
                let started = parse_rfc3339(&op.op.created_at).unwrap_or(self.now());
                if self.now() - started > JOB_TIMEOUT.as_millis() as i64 {
                    let why = format!("job {job_id} did not finish within {JOB_TIMEOUT:?}");
                    self.end_op(op, OperationState::Abandoned, Some(why))
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Send an operation's request to the cloud and remember the job.
    async fn send(&self, op: &mut OpRecord) -> Result<(), CloudError> {
        let bad = |m: String| CloudError::local(ErrorKind::Invalid, "replay_operation", m);
        let cloud = self.cloud_for(&op.namespace);
        match op.op.kind {
            OperationKind::ScaleOut | OperationKind::RefreshLaunch => {
                let req: &CreateServersRequest = op
                    .request
                    .as_ref()
                    .ok_or_else(|| bad(format!("operation {} has no stored request", op.op.id)))?;
                let res = cloud.create_servers(req).await?;
                op.op.job_id = Some(res.job_id);
                op.op.server_ids = res.server_ids;
            }
            OperationKind::ScaleIn | OperationKind::Replace | OperationKind::RefreshRetire => {
                let req = DeleteServersRequest {
                    server_ids: op.op.server_ids.clone(),
                    delete_publicip: true,
                    delete_volume: true,
                };
                let job = cloud.delete_servers(&req).await?;
                op.op.job_id = Some(job);
            }
            OperationKind::Refresh => {}
        }
        Ok(())
    }

    /// Record an operation, then send it. The record comes first: a crash between the
    /// two leaves a pending operation that recovery sends again with the same token.
    pub(super) async fn start_op(&self, key: &PoolKey, new: NewOp) -> Result<OpRecord, PassError> {
        let now = rfc3339(self.now());
        let mut op = OpRecord {
            namespace: key.ns.to_string(),
            pool: key.name.to_string(),
            request: new.request,
            progress: None,
            op: Operation {
                id: new.id.to_string(),
                kind: new.kind,
                state: OperationState::Pending,
                count: new.count,
                purchase: new.purchase,
                job_id: None,
                server_ids: new.server_ids,
                error: None,
                created_at: now.clone(),
                updated_at: now,
            },
        };
        self.store.insert_operation(&op).await?;
        match self.send(&mut op).await {
            Ok(()) => {
                self.end_op(&mut op, OperationState::Submitted, None)
                    .await?;
                tracing::info!(pool = %key, op_id = %op.op.id, kind = kind_label(new.kind),
                    count = new.count, job_id = ?op.op.job_id, "operation submitted");
                Ok(op)
            }
            // Left pending: the next pass (or recovery) re-sends the same request.
            Err(e) if e.kind.is_retryable() => Err(e.into()),
            Err(e) => {
                self.end_op(&mut op, OperationState::Failed, Some(e.to_string()))
                    .await?;
                Err(e.into())
            }
        }
    }
}
