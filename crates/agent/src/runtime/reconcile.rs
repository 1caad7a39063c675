//! One reconcile pass of one pool: track open operations → observe → decide → act →
//! record. See `docs/design/reconcile.md` for the guarantees.
//!
//! Guarantees:
//! - Every cloud mutation is written to the store as an operation (with the exact
//!   request) before it is sent; a create's `X-Client-Token` is the operation id, so a
//!   retry after a crash (same token, same body) never creates twice.
//! - Instances requested by an open create operation but not yet listed count as
//!   booting, so a pass never asks for them again.
//! - Only instances carrying the pool's tags (`flexus-ns`, `flexus-pool`) are looked at
//!   or deleted.
//! - Decisions come from `flexus_policy::decide`; this module only gathers inputs and
//!   carries out the result.
//! - Push-sourced metrics are read from the datapoints pushed through the API; when the
//!   policy predicts, the prediction metric's samples feed [`super::predict`] and its
//!   forecast goes to `decide()` (and into the decision log, in both modes).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use flexus_api::{
    DecisionOutcome, DecisionRecord, InstanceStatus, Lifecycle, Operation, OperationKind,
    OperationState, PolicySpec, PoolPhase, PoolSpec, PoolStatus, Purchase, RemovalRule,
    TAG_NAMESPACE, TAG_OPERATION, TAG_POOL,
};
use flexus_cloud::{
    ChargingMode, Cloud, CloudError, CreateServersRequest, DeleteServersRequest, ErrorKind,
    JobStatus, Server, ServerFilter, ServerStatus, SpotOptions,
};
use flexus_policy as fp;
use uuid::Uuid;

use super::predict::{self, Forecaster};
use super::sources::Sources;
use super::{Next, PoolKey};
use crate::clock::{Millis, SharedClock, parse_rfc3339, rfc3339};
use crate::config::ReconcileConfig;
use crate::store::{OpRecord, PUSH_RETENTION, PushedPoint, RuntimeState, Store, StoreError};
use crate::telemetry::Telemetry;

/// Why a pass failed (the scheduler backs off and retries).
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("cloud: {0}")]
    Cloud(#[from] CloudError),
    #[error("stored {what} of pool {pool} is invalid: {reason}")]
    BadSpec {
        what: &'static str,
        pool: String,
        reason: String,
    },
}

impl PassError {
    /// Label for the error metric.
    pub fn kind(&self) -> &'static str {
        match self {
            PassError::Store(_) => "store",
            PassError::BadSpec { .. } => "spec",
            PassError::Cloud(e) => match e.kind {
                ErrorKind::NotFound => "cloud_not_found",
                ErrorKind::Throttled => "cloud_throttled",
                ErrorKind::Quota => "cloud_quota",
                ErrorKind::SoldOut => "cloud_sold_out",
                ErrorKind::Unauthorized => "cloud_unauthorized",
                ErrorKind::Invalid => "cloud_invalid",
                ErrorKind::Conflict => "cloud_conflict",
                ErrorKind::Transient => "cloud_transient",
                ErrorKind::Protocol => "cloud_protocol",
                ErrorKind::Config => "cloud_config",
            },
        }
    }
}

/// Everything a pass needs.
#[derive(Debug)]
pub struct Context {
    pub store: Arc<dyn Store>,
    pub cloud: Arc<dyn Cloud>,
    pub clock: SharedClock,
    pub sources: Sources,
    pub telemetry: Arc<Telemetry>,
    pub config: ReconcileConfig,
    pub ready: Arc<AtomicBool>,
    /// Compiled policies by (ns/pool, policy version, pool version).
    compiled: Mutex<HashMap<PoolKey, CompiledEntry>>,
    /// When the last decision of each pool was written to the log, and its summary.
    last_logged: Mutex<HashMap<PoolKey, (Millis, String)>>,
    /// Forecast history and fits of predictive pools.
    forecaster: Forecaster,
    /// Recent readings of pulled signals (Cloud Eye, Prometheus, Redis) per pool, kept
    /// for each metric's lookback so aggregation windows and trends see more than the
    /// latest reading.
    recent: Mutex<HashMap<PoolKey, Vec<fp::Observation>>>,
}

/// A compiled policy with the policy and pool versions it was built from.
type CompiledEntry = (u64, u64, Arc<fp::CompiledPolicy>);

/// An operation about to be recorded and sent.
struct NewOp {
    kind: OperationKind,
    count: u32,
    purchase: Option<Purchase>,
    server_ids: Vec<String>,
    request: Option<CreateServersRequest>,
    id: Uuid,
}

impl NewOp {
    fn delete(kind: OperationKind, server_ids: Vec<String>) -> Self {
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

/// How long a submitted job may run before the operation is given up (instances it
/// made are then found by their tags).
const JOB_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// A decision that changes nothing is logged at most this often.
const QUIET_LOG_EVERY: Duration = Duration::from_secs(300);

impl Context {
    pub fn new(
        store: Arc<dyn Store>,
        cloud: Arc<dyn Cloud>,
        clock: SharedClock,
        sources: Sources,
        telemetry: Arc<Telemetry>,
        config: ReconcileConfig,
        ready: Arc<AtomicBool>,
    ) -> Self {
        Self {
            store,
            cloud,
            clock,
            sources,
            telemetry,
            config,
            ready,
            compiled: Mutex::new(HashMap::new()),
            last_logged: Mutex::new(HashMap::new()),
            forecaster: Forecaster::default(),
            recent: Mutex::new(HashMap::new()),
        }
    }

    /// Real time to wait for `d` of clock time.
    pub fn real(&self, d: Duration) -> Duration {
        self.clock.real_duration(d)
    }

    fn now(&self) -> Millis {
        self.clock.now_ms()
    }

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
            if let Err(e) = self.track(&key, &mut op).await {
                tracing::warn!(pool = %key, op_id = %op.op.id, error = %e, "operation not recovered yet; its pool's passes will retry");
            }
        }
        Ok(())
    }

    async fn save_op(&self, op: &mut OpRecord, state: OperationState) -> Result<(), StoreError> {
        op.op.state = state;
        op.op.updated_at = rfc3339(self.now());
        self.store.update_operation(op).await
    }

    /// Advance one open operation as far as it goes without waiting.
    async fn track(&self, key: &PoolKey, op: &mut OpRecord) -> Result<(), PassError> {
        let kind = kind_label(op.op.kind);
        match op.op.state {
            OperationState::Pending => {
                // The call may or may not have reached the cloud: send it again. For a
                // create, the same token and body make that safe.
                match self.send(op).await {
                    Ok(()) => {
                        self.save_op(op, OperationState::Submitted).await?;
                        self.telemetry.scale(kind, "submitted");
                    }
                    Err(e)
                        if e.kind == ErrorKind::Conflict
                            || e.code.as_deref() == Some("Ecs.0124") =>
                    {
                        // Token reused with another body, or expired: nothing more can be
                        // done with this operation; what it made is adopted by tags.
                        op.op.error = Some(e.to_string());
                        self.save_op(op, OperationState::Abandoned).await?;
                        self.telemetry.scale(kind, "abandoned");
                    }
                    Err(e)
                        if e.kind == ErrorKind::NotFound
                            && op.op.kind != OperationKind::ScaleOut =>
                    {
                        // Deleting servers that are already gone.
                        self.save_op(op, OperationState::Succeeded).await?;
                        self.telemetry.scale(kind, "succeeded");
                    }
                    Err(e) if !e.kind.is_retryable() => {
                        op.op.error = Some(e.to_string());
                        self.save_op(op, OperationState::Failed).await?;
                        self.telemetry.scale(kind, "failed");
                        return Err(e.into());
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            OperationState::Submitted => {
                let Some(job_id) = op.op.job_id.clone() else {
                    self.save_op(op, OperationState::Abandoned).await?;
                    return Ok(());
                };
                match self.cloud.get_job(&job_id).await {
                    Ok(job) => match job.status {
                        JobStatus::Success => {
                            self.save_op(op, OperationState::Succeeded).await?;
                            self.telemetry.scale(kind, "succeeded");
                            tracing::info!(pool = %key, op_id = %op.op.id, job_id, "operation succeeded");
                        }
                        JobStatus::Fail => {
                            let why = flexus_cloud::job_failure(&job)
                                .map(|e| e.to_string())
                                .unwrap_or_else(|| "job failed".into());
                            op.op.error = Some(why.clone());
                            self.save_op(op, OperationState::Failed).await?;
                            self.telemetry.scale(kind, "failed");
                            tracing::warn!(pool = %key, op_id = %op.op.id, job_id, error = %why, "operation failed");
                        }
                        _ => {
                            let started = parse_rfc3339(&op.op.created_at).unwrap_or(self.now());
                            if self.now() - started > JOB_TIMEOUT.as_millis() as i64 {
                                op.op.error = Some(format!(
                                    "job {job_id} did not finish within {JOB_TIMEOUT:?}"
                                ));
                                self.save_op(op, OperationState::Abandoned).await?;
                                self.telemetry.scale(kind, "abandoned");
                            }
                        }
                    },
                    Err(e) if e.kind == ErrorKind::NotFound => {
                        op.op.error = Some(format!("job {job_id} vanished"));
                        self.save_op(op, OperationState::Abandoned).await?;
                        self.telemetry.scale(kind, "abandoned");
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Send an operation's request to the cloud and remember the job.
    async fn send(&self, op: &mut OpRecord) -> Result<(), CloudError> {
        let bad = |m: String| CloudError::local(ErrorKind::Invalid, "replay_operation", m);
        match op.op.kind {
            OperationKind::ScaleOut => {
                let req: &CreateServersRequest = op
                    .request
                    .as_ref()
                    .ok_or_else(|| bad(format!("operation {} has no stored request", op.op.id)))?;
                let res = self.cloud.create_servers(req).await?;
                op.op.job_id = Some(res.job_id);
                op.op.server_ids = res.server_ids;
            }
            OperationKind::ScaleIn | OperationKind::Replace => {
                let req = DeleteServersRequest {
                    server_ids: op.op.server_ids.clone(),
                    delete_publicip: true,
                    delete_volume: true,
                };
                let job = self.cloud.delete_servers(&req).await?;
                op.op.job_id = Some(job);
            }
        }
        Ok(())
    }

    /// Record an operation, then send it. The record comes first: a crash between the
    /// two leaves a pending operation that recovery sends again with the same token.
    async fn start_op(&self, key: &PoolKey, new: NewOp) -> Result<OpRecord, PassError> {
        let NewOp {
            kind,
            count,
            purchase,
            server_ids,
            request,
            id,
        } = new;
        let now = rfc3339(self.now());
        let mut op = OpRecord {
            namespace: key.ns.to_string(),
            pool: key.name.to_string(),
            request,
            op: Operation {
                id: id.to_string(),
                kind,
                state: OperationState::Pending,
                count,
                purchase,
                job_id: None,
                server_ids,
                error: None,
                created_at: now.clone(),
                updated_at: now,
            },
        };
        self.store.insert_operation(&op).await?;
        let label = kind_label(kind);
        match self.send(&mut op).await {
            Ok(()) => {
                self.save_op(&mut op, OperationState::Submitted).await?;
                self.telemetry.scale(label, "submitted");
                tracing::info!(pool = %key, op_id = %op.op.id, kind = label, count, job_id = ?op.op.job_id, "operation submitted");
                Ok(op)
            }
            Err(e) if e.kind.is_retryable() => {
                // Left pending: the next pass (or recovery) re-sends the same request.
                Err(e.into())
            }
            Err(e) => {
                op.op.error = Some(e.to_string());
                self.save_op(&mut op, OperationState::Failed).await?;
                self.telemetry.scale(label, "failed");
                Err(e.into())
            }
        }
    }

    fn compiled(
        &self,
        key: &PoolKey,
        policy_version: u64,
        pool_version: u64,
        build: impl FnOnce() -> Result<fp::CompiledPolicy, String>,
    ) -> Result<Arc<fp::CompiledPolicy>, String> {
        let mut cache = self.compiled.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((pv, sv, c)) = cache.get(key)
            && *pv == policy_version
            && *sv == pool_version
        {
            return Ok(c.clone());
        }
        let c = Arc::new(build()?);
        cache.insert(key.clone(), (policy_version, pool_version, c.clone()));
        Ok(c)
    }

    fn forget(&self, key: &PoolKey) {
        self.compiled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
        self.last_logged
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
        self.forecaster.forget(key);
        self.recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
        self.telemetry.forget_pool(&key.to_string());
    }

    /// One pass over one pool.
    pub async fn reconcile(&self, key: &PoolKey) -> Result<Next, PassError> {
        use tracing::Instrument as _;
        // Another agent reconciles this pool (or nobody yet): drop it here; the lease
        // loop schedules it again if this agent gets its lease.
        if !self.store.holds(&key.ns, &key.name) {
            self.forget(key);
            return Ok(Next::Forget);
        }
        let started = std::time::Instant::now();
        let r = self
            .pass(key)
            .instrument(tracing::info_span!("reconcile", pool = %key))
            .await;
        self.telemetry
            .reconcile_duration
            .observe(started.elapsed().as_secs_f64());
        self.telemetry.reconcile_passes.inc();
        if let Err(e) = &r {
            // Surface the error in the pool's status (when the store takes it: a pass
            // that failed on the store may well fail to write this too).
            if let Ok(Some(mut rt)) = self.store.get_runtime(&key.ns, &key.name).await {
                rt.status.last_error = Some(e.to_string());
                rt.status.phase = PoolPhase::Degraded;
                if let Err(w) = self.store.put_runtime(&key.ns, &key.name, &rt).await {
                    tracing::warn!(pool = %key, error = %w, "cannot record the failed pass in the pool's status");
                }
            }
        }
        r
    }

    async fn pass(&self, key: &PoolKey) -> Result<Next, PassError> {
        // Never act on the cloud while the store cannot record what is done.
        if let crate::store::StoreHealth::Failing { .. } = self.store.health() {
            self.store.probe(&rfc3339(self.now())).await?;
        }
        let Some(doc) = self.store.get_pool(&key.ns, &key.name).await? else {
            self.forget(key);
            return Ok(Next::Forget);
        };
        let spec: PoolSpec = doc.spec.clone();

        // 1. Track open operations of this pool.
        let mut open = self
            .store
            .open_operations(Some((&key.ns, &key.name)))
            .await?;
        for op in open.iter_mut() {
            self.track(key, op).await?;
        }
        open.retain(|o| !o.op.state.is_final());

        // 2. Observe.
        let now = self.now();
        let servers = self.list_pool_servers(key).await?;
        let obs = Observed::new(&spec, &servers, &open, now);

        if doc.deleting {
            return self.delete_pass(key, &obs, &open).await;
        }

        // 3. Decide.
        let policy_doc = self.store.policy_for_pool(&key.ns, &key.name).await?;
        let policy_spec: Option<PolicySpec> = policy_doc.as_ref().map(|d| d.spec.clone());
        let policy_version = policy_doc.as_ref().map_or(0, |d| d.version);
        let compiled = self
            .compiled(key, policy_version, doc.version, || {
                let policy = effective_policy(&spec, policy_spec.as_ref());
                fp::CompiledPolicy::new(policy).map_err(|d| d.to_string())
            })
            .map_err(|reason| PassError::BadSpec {
                what: "policy",
                pool: key.to_string(),
                reason,
            })?;
        let mut runtime = self.store.get_runtime(&key.ns, &key.name).await?;
        let mut history: fp::History = runtime
            .as_ref()
            .map(|r| r.history.clone())
            .unwrap_or_default();
        // (A pool without a policy has nothing that can be pushed to it.)
        let pushed = match &policy_doc {
            Some(_) => self.read_pushed(key, compiled.policy(), now).await?,
            None => Vec::new(),
        };
        let observations = self
            .observe_metrics(key, compiled.policy(), &obs, &pushed, now)
            .await;
        let forecast = self
            .forecaster
            .step(
                self.store.as_ref(),
                key,
                compiled.policy(),
                &prediction_samples(compiled.policy(), &observations, &pushed),
                now,
            )
            .await?;
        if let Some(took) = forecast.fit {
            self.telemetry
                .forecast_fit_duration
                .observe(took.as_secs_f64());
        }
        let decision = fp::decide(
            &compiled,
            &fp::DecisionInput {
                now: fp::Timestamp(now),
                observations: &observations,
                pool: &obs.policy_state,
                history: &history,
                prediction: forecast.prediction.as_ref(),
            },
        );
        let prediction = forecast
            .record
            .map(|r| predict::finish_record(r, &decision, compiled.policy().bounds.max));
        let dry_run = compiled.policy().dry_run;
        let enabled = compiled.policy().enabled;

        // 4. Act.
        let mut outcome = if dry_run && decision.desired != decision.current {
            DecisionOutcome::DryRun
        } else if !enabled {
            DecisionOutcome::Disabled
        } else {
            DecisionOutcome::None
        };
        let mut op_ids = Vec::new();
        let mut act_error: Option<PassError> = None;
        let mut acted = false;
        if !dry_run {
            // Replace what the cloud took back or broke.
            let broken: Vec<String> = obs.broken.clone();
            if !broken.is_empty() {
                match self
                    .start_op(key, NewOp::delete(OperationKind::Replace, broken))
                    .await
                {
                    Ok(op) => op_ids.push(op.op.id),
                    Err(e) => act_error = Some(e),
                }
            }
            match decision.action {
                fp::Action::ScaleOut { by } if act_error.is_none() => {
                    match self.scale_out(key, &spec, &obs, &decision, by).await {
                        Ok(ids) => {
                            acted = true;
                            op_ids.extend(ids)
                        }
                        Err(e) => act_error = Some(e),
                    }
                }
                fp::Action::ScaleIn { by } if act_error.is_none() => {
                    let victims = choose_victims(&spec, &obs, by as usize);
                    if !victims.is_empty() {
                        match self
                            .start_op(key, NewOp::delete(OperationKind::ScaleIn, victims))
                            .await
                        {
                            Ok(op) => {
                                acted = true;
                                op_ids.push(op.op.id)
                            }
                            Err(e) => act_error = Some(e),
                        }
                    }
                }
                _ => {}
            }
            if acted {
                outcome = DecisionOutcome::Acted;
            }
            if act_error.is_some() && decision.action != fp::Action::None {
                outcome = DecisionOutcome::Failed;
            }
        }

        // 5. Record. A failed action leaves no scale event (no cooldown for nothing).
        if acted || decision.action == fp::Action::None {
            history.record(&decision);
        } else {
            let mut d = decision.clone();
            d.action = fp::Action::None;
            history.record(&d);
        }
        history.prune(
            fp::Timestamp(now),
            compiled.history_horizon(),
            compiled.trend_samples().max(1),
        );

        let action = match decision.action {
            fp::Action::None if dry_run && decision.desired > decision.current => "scale_out",
            fp::Action::None if dry_run && decision.desired < decision.current => "scale_in",
            fp::Action::None => "none",
            fp::Action::ScaleOut { .. } => "scale_out",
            fp::Action::ScaleIn { .. } => "scale_in",
        };
        let mut explanation: Vec<String> =
            decision.explanation.iter().map(|s| s.to_string()).collect();
        if let Some(p) = &prediction {
            if p.would_add > 0 {
                explanation.push(format!(
                    "forecast_only: would have scaled to {}",
                    decision.desired + p.would_add
                ));
            }
            if p.forecast.is_none()
                && let Some(note) = &p.note
            {
                explanation.push(format!("no forecast: {note}"));
            }
        }
        if let Some(e) = &act_error {
            explanation.push(format!("acting failed: {e}"));
        }
        let record = DecisionRecord {
            id: 0,
            at: rfc3339(now),
            current: decision.current,
            desired: decision.desired,
            on_demand: decision.on_demand,
            spot: decision.spot,
            action: action.into(),
            outcome,
            bound_by: decision
                .bound_by
                .and_then(|b| serde_json::to_value(b).ok())
                .and_then(|v| v.as_str().map(str::to_owned)),
            explanation: explanation.join("; "),
            detail: serde_json::to_value(&decision).unwrap_or_default(),
            operation_id: op_ids.first().cloned(),
            prediction,
        };
        let summary = format!(
            "{}|{}|{}|{:?}|{:?}|{:?}",
            record.current,
            record.desired,
            record.action,
            record.outcome,
            record.bound_by,
            record
                .prediction
                .as_ref()
                .map(|p| (p.capacity, p.applied, p.would_add))
        );
        let log_it = {
            let mut ll = self.last_logged.lock().unwrap_or_else(|p| p.into_inner());
            let due = match ll.get(key) {
                Some((at, s)) => *s != summary || now - at >= QUIET_LOG_EVERY.as_millis() as i64,
                None => true,
            };
            if due {
                ll.insert(key.clone(), (now, summary));
            }
            due
        };
        let mut record = record;
        if log_it {
            record.id = self
                .store
                .insert_decision(&key.ns, &key.name, &record, self.config.decision_log_keep)
                .await?;
        }
        if decision.action != fp::Action::None || outcome == DecisionOutcome::DryRun {
            tracing::info!(pool = %key, current = decision.current, desired = decision.desired,
                action, outcome = ?outcome, explanation = %record.explanation, "decision");
        }

        // Status for the API.
        let open_now = self
            .store
            .open_operations(Some((&key.ns, &key.name)))
            .await?;
        let previous_decision = runtime
            .as_ref()
            .and_then(|r| r.status.last_decision.clone());
        let last_decision = if log_it {
            Some(record.clone())
        } else {
            previous_decision.or(Some(record.clone()))
        };
        let status = obs.status(
            Some(decision.desired),
            last_decision,
            now,
            act_error.as_ref().map(|e| e.to_string()),
            open_now.into_iter().map(|o| o.op).collect(),
            spec.min_size,
        );
        self.telemetry
            .set_pool(&key.to_string(), decision.desired, obs.counted());
        let rt = RuntimeState {
            history,
            status: status.clone(),
        };
        self.store.put_runtime(&key.ns, &key.name, &rt).await?;
        runtime.take();

        if let Some(e) = act_error {
            return Err(e);
        }
        let next =
            fp::Timestamp(decision.next_evaluation.0.max(now + 200)).since(fp::Timestamp(now));
        // While operations are open, look again soon to track them.
        let next = if status.pending_operations.is_empty() {
            next
        } else {
            next.min(self.config.job_poll)
        };
        Ok(Next::After(next))
    }

    async fn list_pool_servers(&self, key: &PoolKey) -> Result<Vec<Server>, PassError> {
        let filter = ServerFilter {
            tags: vec![
                (TAG_POOL.to_owned(), key.name.to_string()),
                (TAG_NAMESPACE.to_owned(), key.ns.to_string()),
            ],
            ..ServerFilter::default()
        };
        let servers = self.cloud.list_servers(&filter).await?;
        // Belt and braces: never act on an instance without both tags.
        Ok(servers
            .into_iter()
            .filter(|s| s.tag(TAG_POOL) == Some(&key.name) && s.tag(TAG_NAMESPACE) == Some(&key.ns))
            .filter(|s| !s.status.is_gone())
            .collect())
    }

    /// The pool's pushed datapoints this pass needs: those within any push metric's
    /// aggregation window or staleness limit, and — when the prediction metric is
    /// pushed — every one newer than the forecast history's newest sample.
    async fn read_pushed(
        &self,
        key: &PoolKey,
        policy: &fp::Policy,
        now: Millis,
    ) -> Result<Vec<PushedPoint>, PassError> {
        let pushed: Vec<&fp::Metric> = policy
            .metrics
            .iter()
            .filter(|m| matches!(m.source, fp::MetricSource::Push))
            .collect();
        if pushed.is_empty() {
            return Ok(Vec::new());
        }
        let window = pushed
            .iter()
            .map(|m| m.lookback())
            .max()
            .unwrap_or_default()
            + Duration::from_secs(60);
        let mut since = now - window.as_millis() as i64;
        let p = &policy.prediction;
        if p.enabled
            && let Some(metric) = &p.metric
            && pushed.iter().any(|m| &m.name == metric)
        {
            let from = match self.forecaster.cursor(key) {
                Some(Some(last)) => last + 1,
                // Not loaded yet (first pass): everything still retained.
                _ => now - PUSH_RETENTION.as_millis() as i64,
            };
            since = since.min(from);
        }
        Ok(self.store.pushed_since(&key.ns, &key.name, since).await?)
    }

    async fn observe_metrics(
        &self,
        key: &PoolKey,
        policy: &fp::Policy,
        obs: &Observed,
        pushed: &[PushedPoint],
        now: Millis,
    ) -> Vec<fp::Observation> {
        let mut out = Vec::new();
        for m in &policy.metrics {
            if matches!(m.source, fp::MetricSource::Push) {
                // Every pushed datapoint within the metric's window; the engine
                // aggregates and applies the staleness rule.
                let from = now - m.lookback().as_millis() as i64 - 60_000;
                out.extend(
                    pushed
                        .iter()
                        .filter(|p| p.metric == m.name && p.at >= from && p.at <= now)
                        .map(|p| fp::Observation {
                            metric: m.name.clone(),
                            value: p.value,
                            at: fp::Timestamp(p.at),
                        }),
                );
                continue;
            }
            let r = match &m.source {
                fp::MetricSource::CloudEye {
                    namespace,
                    metric_name,
                } => {
                    self.sources
                        .cloud_eye
                        .mean_latest(namespace, metric_name, &obs.ready_ids, now)
                        .await
                }
                fp::MetricSource::Prometheus { query } => match &self.sources.prometheus {
                    Some(p) => p.query(query).await,
                    None => Err(super::sources::SourceError::NotConfigured {
                        source_kind: "prometheus",
                    }),
                },
                fp::MetricSource::Redis { key } => match &self.sources.redis {
                    Some(r) => r.read(key, now).await,
                    None => Err(super::sources::SourceError::NotConfigured {
                        source_kind: "redis",
                    }),
                },
                fp::MetricSource::Push => Ok(None), // handled above
            };
            match r {
                Ok(Some(reading)) => out.push(fp::Observation {
                    metric: m.name.clone(),
                    value: reading.value,
                    at: fp::Timestamp(reading.at),
                }),
                Ok(None) => {}
                Err(e) => {
                    // A missing signal follows the policy's missing-data rule.
                    self.telemetry.error("metric_source");
                    tracing::warn!(metric = %m.name, error = %e, "signal unavailable");
                }
            }
        }
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let kept = recent.entry(key.clone()).or_default();
        merge_recent(kept, &mut out, policy, now);
        out
    }

    async fn scale_out(
        &self,
        key: &PoolKey,
        spec: &PoolSpec,
        obs: &Observed,
        decision: &fp::Decision,
        by: u32,
    ) -> Result<Vec<String>, PassError> {
        let (cur_od, cur_spot) = obs.purchase_counts();
        let mut want_spot = decision.spot.saturating_sub(cur_spot);
        let mut want_od = decision.on_demand.saturating_sub(cur_od);
        if !spec.spot.enabled {
            want_od += want_spot;
            want_spot = 0;
        }
        // Exactly `by` in total.
        while want_od + want_spot > by {
            if want_spot > 0 {
                want_spot -= 1;
            } else {
                want_od -= 1;
            }
        }
        want_od += by - (want_od + want_spot);
        let mut ids = Vec::new();
        if want_od > 0 {
            let op = self
                .create(key, spec, obs, want_od, Purchase::OnDemand)
                .await?;
            ids.push(op);
        }
        if want_spot > 0 {
            match self.create(key, spec, obs, want_spot, Purchase::Spot).await {
                Ok(op) => ids.push(op),
                Err(PassError::Cloud(e))
                    if matches!(e.kind, ErrorKind::SoldOut | ErrorKind::Quota)
                        && spec.spot.fallback_to_on_demand =>
                {
                    tracing::warn!(pool = %key, error = %e, count = want_spot, "spot capacity unavailable; falling back to on-demand");
                    self.telemetry.scale("scale_out", "fallback_on_demand");
                    let op = self
                        .create(key, spec, obs, want_spot, Purchase::OnDemand)
                        .await?;
                    ids.push(op);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(ids)
    }

    async fn create(
        &self,
        key: &PoolKey,
        spec: &PoolSpec,
        obs: &Observed,
        count: u32,
        purchase: Purchase,
    ) -> Result<String, PassError> {
        let id = Uuid::new_v4();
        let mut tags = vec![
            (TAG_NAMESPACE.to_owned(), key.ns.to_string()),
            (TAG_POOL.to_owned(), key.name.to_string()),
            (TAG_OPERATION.to_owned(), id.to_string()),
        ];
        tags.extend(spec.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        let req = CreateServersRequest {
            client_token: id,
            // ECS allows at most 59 characters when count > 1.
            name: format!("{}-{}", key.ns, key.name)
                .chars()
                .take(59)
                .collect(),
            flavor: spec.flavor.clone(),
            image: spec.image.clone(),
            vpc_id: spec.vpc_id.clone(),
            subnet_ids: spec.subnet_ids.clone(),
            security_groups: spec.security_group_ids.clone(),
            availability_zone: obs.emptiest_zone(&spec.availability_zones),
            key_name: spec.key_pair.clone(),
            user_data: spec
                .user_data
                .as_ref()
                .map(|u| base64::engine::general_purpose::STANDARD.encode(u)),
            root_volume: flexus_cloud::RootVolume {
                volume_type: spec.root_volume.volume_type.clone(),
                size_gb: Some(spec.root_volume.size),
            },
            tags,
            count,
            spot: match purchase {
                Purchase::Spot => Some(SpotOptions {
                    max_price: spec.spot.max_price.as_ref().and_then(|p| p.parse().ok()),
                }),
                Purchase::OnDemand => None,
            },
        };
        let request = Some(req);
        let op = self
            .start_op(
                key,
                NewOp {
                    kind: OperationKind::ScaleOut,
                    count,
                    purchase: Some(purchase),
                    server_ids: Vec::new(),
                    request,
                    id,
                },
            )
            .await?;
        Ok(op.op.id)
    }

    async fn delete_pass(
        &self,
        key: &PoolKey,
        obs: &Observed,
        open: &[OpRecord],
    ) -> Result<Next, PassError> {
        let being_deleted: HashSet<&str> = open
            .iter()
            .filter(|o| o.op.kind != OperationKind::ScaleOut)
            .flat_map(|o| o.op.server_ids.iter().map(String::as_str))
            .collect();
        let remaining: Vec<String> = obs
            .servers
            .iter()
            .map(|s| s.id.clone())
            .filter(|id| !being_deleted.contains(id.as_str()))
            .collect();
        let creating = open.iter().any(|o| o.op.kind == OperationKind::ScaleOut);
        if obs.servers.is_empty() && open.is_empty() {
            self.store.purge_pool(&key.ns, &key.name).await?;
            self.forget(key);
            tracing::info!(pool = %key, "pool deleted; its instances are gone");
            return Ok(Next::Forget);
        }
        if !remaining.is_empty() {
            self.start_op(key, NewOp::delete(OperationKind::ScaleIn, remaining))
                .await?;
        }
        let _ = creating;
        Ok(Next::After(self.config.job_poll))
    }
}

/// The prediction metric's readings of this pass: its pushed datapoints when it is
/// pushed, else the reading its source gave.
/// Adds this pass's pulled readings to `kept` (one per metric and timestamp), drops
/// what is older than each metric's lookback (plus one minute), and returns in `out`
/// the pushed observations followed by every kept pulled reading.
fn merge_recent(
    kept: &mut Vec<fp::Observation>,
    out: &mut Vec<fp::Observation>,
    policy: &fp::Policy,
    now: Millis,
) {
    let pulled = |name: &str| {
        policy
            .metrics
            .iter()
            .find(|m| m.name == name && !matches!(m.source, fp::MetricSource::Push))
    };
    for o in out.iter().filter(|o| pulled(&o.metric).is_some()) {
        if !kept.iter().any(|k| k.metric == o.metric && k.at == o.at) {
            kept.push(o.clone());
        }
    }
    kept.retain(|k| {
        pulled(&k.metric).is_some_and(|m| {
            k.at.0 >= now - m.lookback().as_millis() as i64 - 60_000 && k.at.0 <= now
        })
    });
    kept.sort_by_key(|k| k.at.0);
    out.retain(|o| pulled(&o.metric).is_none());
    out.extend(kept.iter().cloned());
}

fn prediction_samples(
    policy: &fp::Policy,
    observations: &[fp::Observation],
    pushed: &[PushedPoint],
) -> Vec<PushedPoint> {
    let p = &policy.prediction;
    let Some(metric) = p.metric.as_deref().filter(|_| p.enabled) else {
        return Vec::new();
    };
    let is_pushed = policy
        .metrics
        .iter()
        .any(|m| m.name == metric && matches!(m.source, fp::MetricSource::Push));
    if is_pushed {
        pushed
            .iter()
            .filter(|s| s.metric == metric)
            .cloned()
            .collect()
    } else {
        observations
            .iter()
            .filter(|o| o.metric == metric)
            .map(|o| PushedPoint {
                metric: o.metric.clone(),
                at: o.at.0,
                value: o.value,
            })
            .collect()
    }
}

fn kind_label(k: OperationKind) -> &'static str {
    match k {
        OperationKind::ScaleOut => "scale_out",
        OperationKind::ScaleIn => "scale_in",
        OperationKind::Replace => "replace",
    }
}

/// The pool's policy as the engine sees it: bounds intersected with the pool's
/// declared bounds, the spot mix from the pool's spot block, enabled/dry-run from the
/// policy resource. A pool without a policy gets a metric-less policy that only keeps
/// the count within the pool's bounds (starting at `initial_size`).
pub fn effective_policy(pool: &PoolSpec, spec: Option<&PolicySpec>) -> fp::Policy {
    let mut p = match spec {
        Some(s) => {
            let mut p = s.policy.clone();
            p.enabled = p.enabled && s.enabled;
            p.dry_run = p.dry_run || s.dry_run;
            p
        }
        None => {
            // No policy: a fixed-size pool at `initial_size` (default `min_size`). The
            // engine holds it there through a signal that never reports and falls back
            // to that capacity.
            let initial = pool
                .initial_size
                .unwrap_or(pool.min_size)
                .clamp(pool.min_size, pool.max_size);
            let v = serde_json::json!({
                "strategy": "target_tracking",
                "bounds": {"min": pool.min_size, "max": pool.max_size},
                "scale_in": {"stabilisation_window": "0s"},
                "metrics": [{
                    "name": "fixed_size", "kind": "custom", "source": {"type": "push"},
                    "target": 1, "missing_data": "fallback", "fallback_capacity": initial
                }]
            });
            match serde_json::from_value::<fp::Policy>(v) {
                Ok(p) => p,
                Err(_) => unreachable_policy(),
            }
        }
    };
    p.bounds.min = p.bounds.min.max(pool.min_size).min(pool.max_size);
    p.bounds.max = p.bounds.max.min(pool.max_size).max(p.bounds.min);
    if p.bounds.initial.is_none() {
        p.bounds.initial = pool.initial_size;
    }
    if let Some(i) = p.bounds.initial {
        p.bounds.initial = Some(i.clamp(p.bounds.min, p.bounds.max));
    }
    if pool.spot.enabled {
        p.spot.on_demand_base = pool.spot.on_demand_base;
        p.spot.spot_percentage = pool.spot.spot_percentage as f64;
    } else {
        p.spot.on_demand_base = 0;
        p.spot.spot_percentage = 0.0;
    }
    p
}

#[allow(clippy::panic)]
fn unreachable_policy() -> fp::Policy {
    // The literal above is a valid policy; a test pins that.
    panic!("built-in bounds-only policy does not parse")
}

/// What a pass saw of the pool.
#[derive(Debug)]
pub struct Observed {
    pub servers: Vec<Server>,
    pub instances: Vec<InstanceStatus>,
    pub policy_state: fp::PoolState,
    pub ready_ids: Vec<String>,
    /// Failed, stopped or reclaimed instances not yet being deleted.
    pub broken: Vec<String>,
    /// Requested by open creates but not listed yet.
    pub virtual_booting: u32,
}

impl Observed {
    pub fn new(spec: &PoolSpec, servers: &[Server], open: &[OpRecord], now: Millis) -> Self {
        let deleting: HashSet<&str> = open
            .iter()
            .filter(|o| o.op.kind != OperationKind::ScaleOut)
            .flat_map(|o| o.op.server_ids.iter().map(String::as_str))
            .collect();
        let mut instances = Vec::new();
        let mut pinst = Vec::new();
        let mut ready_ids = Vec::new();
        let mut broken = Vec::new();
        let mut seen_by_op: HashMap<&str, u32> = HashMap::new();
        for s in servers {
            if let Some(op) = s.tag(TAG_OPERATION) {
                *seen_by_op.entry(op).or_default() += 1;
            }
            let created = s.created.map(|c| c.timestamp_millis()).unwrap_or(now);
            let launched = s
                .launched_at
                .as_deref()
                .and_then(|l| {
                    chrono::NaiveDateTime::parse_from_str(l, "%Y-%m-%dT%H:%M:%S%.f")
                        .ok()
                        .map(|n| n.and_utc().timestamp_millis())
                })
                .unwrap_or(created);
            let purchase = if s.charging_mode == ChargingMode::Spot {
                Purchase::Spot
            } else {
                Purchase::OnDemand
            };
            let (lifecycle, since) = if deleting.contains(s.id.as_str()) {
                (Lifecycle::Draining, now)
            } else if s.spot_interruption_at.is_some() {
                (Lifecycle::Reclaimed, now)
            } else {
                match s.status {
                    ServerStatus::Build => (Lifecycle::Booting, created),
                    ServerStatus::Active => {
                        let warm_until = launched + spec.warmup_seconds as i64 * 1000;
                        if now < warm_until {
                            (Lifecycle::Warming, launched)
                        } else {
                            (Lifecycle::Ready, warm_until)
                        }
                    }
                    ServerStatus::Error | ServerStatus::Shutoff => (Lifecycle::Failed, now),
                    ServerStatus::Other(_) => (Lifecycle::Ready, launched),
                    ServerStatus::Deleted | ServerStatus::SoftDeleted => continue,
                }
            };
            if matches!(lifecycle, Lifecycle::Failed | Lifecycle::Reclaimed) {
                broken.push(s.id.clone());
            }
            if lifecycle == Lifecycle::Ready {
                ready_ids.push(s.id.clone());
            }
            let plc = match lifecycle {
                Lifecycle::Booting => fp::Lifecycle::Booting,
                Lifecycle::Warming => fp::Lifecycle::Warming,
                Lifecycle::Ready => fp::Lifecycle::Ready,
                Lifecycle::Draining => fp::Lifecycle::Draining,
                Lifecycle::Reclaimed | Lifecycle::Failed => fp::Lifecycle::Reclaimed,
            };
            pinst.push(fp::Instance {
                id: s.id.clone(),
                lifecycle: plc,
                purchase: match purchase {
                    Purchase::Spot => fp::Purchase::Spot,
                    Purchase::OnDemand => fp::Purchase::OnDemand,
                },
                since: fp::Timestamp(since),
            });
            instances.push(InstanceStatus {
                id: s.id.clone(),
                name: s.name.clone(),
                lifecycle,
                purchase,
                flavor: if s.flavor_name.is_empty() {
                    s.flavor_id.clone()
                } else {
                    s.flavor_name.clone()
                },
                availability_zone: s.availability_zone.clone(),
                created_at: rfc3339(created),
                age_seconds: ((now - created).max(0) / 1000) as u64,
            });
        }
        // Instances an open create asked for but the listing does not show yet.
        let mut virtual_booting = 0;
        for o in open.iter().filter(|o| o.op.kind == OperationKind::ScaleOut) {
            let seen = seen_by_op.get(o.op.id.as_str()).copied().unwrap_or(0);
            let missing = o.op.count.saturating_sub(seen);
            for i in 0..missing {
                virtual_booting += 1;
                pinst.push(fp::Instance {
                    id: format!("pending:{}:{i}", o.op.id),
                    lifecycle: fp::Lifecycle::Booting,
                    purchase: match o.op.purchase {
                        Some(Purchase::Spot) => fp::Purchase::Spot,
                        _ => fp::Purchase::OnDemand,
                    },
                    since: fp::Timestamp(parse_rfc3339(&o.op.created_at).unwrap_or(now)),
                });
            }
        }
        Self {
            servers: servers.to_vec(),
            instances,
            policy_state: fp::PoolState { instances: pinst },
            ready_ids,
            broken,
            virtual_booting,
        }
    }

    /// Booting, warming and ready instances: the pool's capacity, now or soon.
    pub fn live(&self) -> impl Iterator<Item = &InstanceStatus> {
        self.instances.iter().filter(|i| {
            matches!(
                i.lifecycle,
                Lifecycle::Booting | Lifecycle::Warming | Lifecycle::Ready
            )
        })
    }

    /// Instances counting toward capacity.
    pub fn counted(&self) -> u32 {
        self.policy_state.counts().counted
    }

    /// (on-demand, spot) counted instances.
    pub fn purchase_counts(&self) -> (u32, u32) {
        let c = self.policy_state.counts();
        (c.on_demand, c.spot)
    }

    /// The zone with the fewest counted instances (first listed wins ties).
    pub fn emptiest_zone(&self, zones: &[String]) -> Option<String> {
        zones
            .iter()
            .min_by_key(|z| {
                self.live()
                    .filter(|i| i.availability_zone.as_deref() == Some(z.as_str()))
                    .count()
            })
            .cloned()
    }

    pub fn status(
        &self,
        desired: Option<u32>,
        last_decision: Option<DecisionRecord>,
        now: Millis,
        error: Option<String>,
        pending: Vec<Operation>,
        min_size: u32,
    ) -> PoolStatus {
        let counts = self.policy_state.counts();
        let live: Vec<&InstanceStatus> = self.live().collect();
        let phase = if error.is_some() {
            PoolPhase::Degraded
        } else if desired == Some(counts.counted) && pending.is_empty() && counts.ready >= min_size
        {
            PoolPhase::Ready
        } else {
            PoolPhase::Scaling
        };
        PoolStatus {
            phase,
            desired_size: desired,
            current_size: counts.counted,
            ready_size: counts.ready,
            instance_ids: live.iter().map(|i| i.id.clone()).collect(),
            instances: self.instances.clone(),
            last_decision,
            last_reconcile_at: Some(rfc3339(now)),
            last_error: error,
            pending_operations: pending,
        }
    }
}

/// Instances to remove for a scale-in of `by`, by the pool's removal rule. Booting,
/// warming and ready instances are candidates; the last ready instance is never
/// removed while others are still booting or warming.
pub fn choose_victims(spec: &PoolSpec, obs: &Observed, by: usize) -> Vec<String> {
    let mut cands: Vec<&InstanceStatus> = obs.live().collect();
    let spot_first = |i: &InstanceStatus| if i.purchase == Purchase::Spot { 0 } else { 1 };
    match spec.removal_rule {
        RemovalRule::SpotNewestFirst => cands.sort_by(|a, b| {
            spot_first(a)
                .cmp(&spot_first(b))
                .then(b.created_at.cmp(&a.created_at))
                .then(a.id.cmp(&b.id))
        }),
        RemovalRule::NewestFirst => {
            cands.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)))
        }
        RemovalRule::OldestFirst => {
            cands.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)))
        }
    }
    let mut ready_left = cands
        .iter()
        .filter(|i| i.lifecycle == Lifecycle::Ready)
        .count();
    let mut others_left = cands.len() - ready_left;
    let mut out = Vec::new();
    for c in cands {
        if out.len() >= by {
            break;
        }
        if c.lifecycle == Lifecycle::Ready {
            if ready_left == 1 && others_left > 0 {
                continue;
            }
            ready_left -= 1;
        } else {
            others_left -= 1;
        }
        out.push(c.id.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(metric: &str, value: f64, at: Millis) -> fp::Observation {
        fp::Observation {
            metric: metric.into(),
            value,
            at: fp::Timestamp(at),
        }
    }

    #[test]
    fn pulled_readings_are_kept_for_the_metric_lookback_and_pushed_ones_pass_through() {
        let policy = fp::parse_json(
            r#"{"strategy": "target_tracking", "bounds": {"min": 1, "max": 10}, "metrics": [
                {"name": "cpu", "kind": "cpu", "target": 60, "duration": "3m",
                 "source": {"type": "cloud_eye", "metric_name": "cpu_util"}},
                {"name": "rps", "kind": "custom", "target": 10, "per_instance": true,
                 "source": {"type": "push"}}]}"#,
        )
        .unwrap();
        let mut kept = Vec::new();
        let min = 60_000;
        // Four passes a minute apart; the same Cloud Eye datapoint may be read twice.
        for (pass, at, v) in [
            (0, 0, 10.0),
            (1, min, 20.0),
            (2, min, 20.0),
            (3, 3 * min, 40.0),
        ] {
            let now = pass * min + 30_000;
            let mut out = vec![obs("cpu", v, at), obs("rps", 5.0, now)];
            merge_recent(&mut kept, &mut out, &policy, now);
            let cpu: Vec<f64> = out
                .iter()
                .filter(|o| o.metric == "cpu")
                .map(|o| o.value)
                .collect();
            let rps = out.iter().filter(|o| o.metric == "rps").count();
            assert_eq!(
                rps, 1,
                "pushed readings are not buffered here (pass {pass})"
            );
            match pass {
                0 => assert_eq!(cpu, vec![10.0]),
                1 | 2 => assert_eq!(cpu, vec![10.0, 20.0], "no duplicate of one datapoint"),
                _ => assert_eq!(cpu, vec![10.0, 20.0, 40.0]),
            }
        }
        // Beyond the lookback (3 m window + 1 min margin) old readings are dropped.
        let now = 5 * min;
        let mut out = vec![obs("cpu", 50.0, 5 * min)];
        merge_recent(&mut kept, &mut out, &policy, now);
        let at: Vec<Millis> = out.iter().map(|o| o.at.0).collect();
        assert_eq!(at, vec![min, 3 * min, 5 * min]);
    }

    fn spec(min: u32, max: u32, initial: Option<u32>) -> PoolSpec {
        let mut s: PoolSpec = serde_json::from_value(serde_json::json!({
            "flavor": "x1.2u.4g", "image": "i", "vpc_id": "v", "subnet_ids": ["s"],
            "min_size": min, "max_size": max
        }))
        .unwrap();
        s.initial_size = initial;
        s
    }

    #[test]
    fn a_pool_without_policy_is_held_at_its_initial_size() {
        let p = effective_policy(&spec(1, 5, Some(3)), None);
        let cp = fp::CompiledPolicy::new(p).expect("the built-in policy compiles");
        let pool = fp::PoolState::default();
        let h = fp::History::new();
        let d = fp::decide(
            &cp,
            &fp::DecisionInput {
                now: fp::Timestamp::from_secs(1000),
                observations: &[],
                pool: &pool,
                history: &h,
                prediction: None,
            },
        );
        assert_eq!(d.desired, 3, "{:?}", d.explanation);
    }

    #[test]
    fn policy_bounds_never_leave_the_pool_bounds() {
        let pol: fp::Policy = serde_json::from_value(serde_json::json!({
            "strategy": "target_tracking", "bounds": {"min": 0, "max": 100},
            "metrics": [{"name": "cpu", "kind": "cpu", "source": {"type": "push"}, "target": 60}]
        }))
        .unwrap();
        let ps = PolicySpec {
            pool: "p".into(),
            enabled: true,
            dry_run: true,
            policy: pol,
        };
        let p = effective_policy(&spec(2, 8, None), Some(&ps));
        assert_eq!((p.bounds.min, p.bounds.max), (2, 8));
        assert!(p.dry_run);
    }

    fn inst(id: &str, lc: Lifecycle, purchase: Purchase, created: &str) -> InstanceStatus {
        InstanceStatus {
            id: id.into(),
            name: id.into(),
            lifecycle: lc,
            purchase,
            flavor: "f".into(),
            availability_zone: None,
            created_at: created.into(),
            age_seconds: 0,
        }
    }

    fn observed(instances: Vec<InstanceStatus>) -> Observed {
        Observed {
            servers: vec![],
            instances,
            policy_state: fp::PoolState::default(),
            ready_ids: vec![],
            broken: vec![],
            virtual_booting: 0,
        }
    }

    #[test]
    fn scale_in_removes_spot_and_newest_first() {
        let o = observed(vec![
            inst(
                "od-old",
                Lifecycle::Ready,
                Purchase::OnDemand,
                "2026-01-01T00:00:00Z",
            ),
            inst(
                "od-new",
                Lifecycle::Ready,
                Purchase::OnDemand,
                "2026-01-03T00:00:00Z",
            ),
            inst(
                "spot-old",
                Lifecycle::Ready,
                Purchase::Spot,
                "2026-01-01T00:00:00Z",
            ),
            inst(
                "spot-new",
                Lifecycle::Ready,
                Purchase::Spot,
                "2026-01-02T00:00:00Z",
            ),
        ]);
        let v = choose_victims(&spec(0, 9, None), &o, 3);
        assert_eq!(v, vec!["spot-new", "spot-old", "od-new"]);
    }

    #[test]
    fn scale_in_never_removes_the_last_ready_instance_while_others_boot() {
        let o = observed(vec![
            inst(
                "ready",
                Lifecycle::Ready,
                Purchase::OnDemand,
                "2026-01-03T00:00:00Z",
            ),
            inst(
                "boot",
                Lifecycle::Booting,
                Purchase::OnDemand,
                "2026-01-01T00:00:00Z",
            ),
        ]);
        let mut s = spec(0, 9, None);
        s.removal_rule = RemovalRule::NewestFirst;
        assert_eq!(choose_victims(&s, &o, 1), vec!["boot"]);
    }
}
