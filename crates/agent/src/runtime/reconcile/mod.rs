//! One reconcile pass of one pool, in four stages, each a function with its data
//! passed on as a type:
//!
//! 1. **observe** ([`observe`]): load the pool, advance its open operations, list its
//!    tagged instances ([`observe::Seen`]); unless the pool is being deleted, read its
//!    policy, the engine's history, its signals and the forecast
//!    ([`observe::Inputs`]).
//! 2. **decide** ([`decide`]): `flexus_policy::decide` on those (pure) →
//!    [`decide::Decided`].
//! 3. **act** ([`act`]): carry the decision out through the operation journal
//!    ([`ops`]) → [`act::Acted`].
//! 4. **record** ([`record`]): history, decision log, status, metrics → when to run
//!    again ([`Next`]).
//!
//! See `docs/design/reconcile.md` for the guarantees. In short:
//! - Every cloud mutation is written to the store as an operation (with the exact
//!   request) before it is sent; a create's `X-Client-Token` is the operation id, so a
//!   retry after a crash (same token, same body) never creates twice.
//! - Instances requested by an open create operation but not yet listed count as
//!   booting, so a pass never asks for them again.
//! - Only instances carrying the pool's tags (`flexus-ns`, `flexus-pool`) are looked at
//!   or deleted.
//! - Decisions come from `flexus_policy::decide`; this module only gathers inputs and
//!   carries out the result.
//! - A create the cloud refuses is held back (see [`super::holds`]) and shown in the
//!   pool's status in the same pass.
//! - Instances of an older template are replaced in batches ([`refresh`]) within the
//!   desired count the engine decides.

mod act;
mod decide;
mod observe;
mod observed;
mod ops;
mod policy;
mod record;
mod refresh;
mod signals;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flexus_cloud::{Cloud, CloudError, ErrorKind};
use flexus_policy as fp;

pub use act::choose_victims;
pub use observed::Observed;
pub use policy::{effective_policy, held_to_pool, pool_spot};

use super::holds::CreateHolds;
use super::predict::Forecaster;
use super::sources::Sources;
use super::{Event, Next, PoolKey, Reconcile};
use crate::clock::{Millis, SharedClock};
use crate::config::ReconcileConfig;
use crate::store::{Store, StoreError};
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
    compiled: Mutex<HashMap<PoolKey, observe::CompiledEntry>>,
    /// When the last decision of each pool was written to the log, and its summary.
    last_logged: Mutex<HashMap<PoolKey, (Millis, String)>>,
    /// Forecast history and fits of predictive pools.
    forecaster: Forecaster,
    /// Recent readings of pulled signals (Cloud Eye, Prometheus, Redis) per pool, kept
    /// for each metric's lookback so aggregation windows and trends see more than the
    /// latest reading.
    recent: Mutex<HashMap<PoolKey, Vec<fp::Observation>>>,
    /// Creates the cloud refused, held back per pool and purchase kind.
    holds: CreateHolds,
}

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
            holds: CreateHolds::default(),
        }
    }

    /// Real time to wait for `d` of clock time.
    pub fn real(&self, d: Duration) -> Duration {
        self.clock.real_duration(d)
    }

    fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    /// The cloud as the pools of namespace `ns` reach it: through the namespace's
    /// fair share of the account's rate limits.
    fn cloud_for(&self, ns: &str) -> Arc<dyn Cloud> {
        self.cloud.for_tenant(ns)
    }

    /// `policy` with an evaluation interval no shorter than the agent's minimum
    /// (the API refuses shorter ones; this holds for what was stored before).
    fn clamped(&self, key: &PoolKey, mut policy: fp::Policy) -> fp::Policy {
        let min = self.config.min_evaluation_interval;
        if policy.evaluation_interval < min {
            tracing::warn!(pool = %key, declared = ?policy.evaluation_interval, minimum = ?min,
                "evaluation_interval is below the agent's minimum; the minimum is used");
            policy.evaluation_interval = min;
        }
        policy
    }

    /// Drop everything kept in memory about a pool.
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
        self.holds.forget(key);
        self.recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
        self.telemetry.forget_pool(&key.to_string());
    }

    /// One pass over one pool (timed, counted; a failure is shown in its status).
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
            self.record_failure(key, e).await;
        }
        r
    }

    /// observe → decide → act → record.
    async fn pass(&self, key: &PoolKey) -> Result<Next, PassError> {
        // Never act on the cloud while the store cannot record what is done.
        if let crate::store::StoreHealth::Failing { .. } = self.store.health() {
            self.store.probe(&crate::clock::rfc3339(self.now())).await?;
        }
        let Some(seen) = self.observe_pool(key).await? else {
            self.forget(key);
            return Ok(Next::Forget);
        };
        if seen.deleting {
            return self.delete_pass(key, &seen).await;
        }
        let inputs = self.observe_signals(key, &seen).await?;
        let desired_before = inputs.previous.as_ref().and_then(|s| s.desired_size);
        let view = refresh::engine_view(&seen.spec, &seen.pool, desired_before);
        let decided = decide::decide(&seen, &inputs, &view);
        let acted = self
            .act(key, &seen, inputs.compiled.policy(), &decided.decision)
            .await;
        self.record(key, seen, inputs, decided, acted).await
    }
}

#[async_trait::async_trait]
impl Reconcile for Context {
    async fn start(&self) -> Vec<PoolKey> {
        if let Err(e) = self.recover().await {
            tracing::error!(error = %e, "start-up recovery failed; pools will retry in their passes");
        }
        self.ready.store(true, Ordering::SeqCst);
        match self.store.list_pools(None).await {
            Ok(docs) => docs
                .iter()
                .map(|d| PoolKey::new(&d.namespace, &d.name))
                .collect(),
            Err(e) => {
                tracing::error!(error = %e, "cannot list pools at start");
                Vec::new()
            }
        }
    }

    async fn reconcile(&self, key: &PoolKey) -> Result<Next, PassError> {
        Context::reconcile(self, key).await
    }

    fn real(&self, d: Duration) -> Duration {
        Context::real(self, d)
    }

    fn report(&self, event: Event<'_>) {
        match event {
            Event::Pools(n) => {
                self.telemetry.pools.set(n as i64);
            }
            Event::Failed {
                key,
                error,
                failures,
                retry_in,
            } => {
                self.telemetry.error(error.kind());
                tracing::warn!(pool = %key, error = %error, failures, retry_in = ?retry_in, "reconcile pass failed");
            }
            Event::Panicked {
                key,
                panic,
                failures,
                retry_in,
            } => {
                self.telemetry.error("panic");
                self.telemetry.panic(&key.ns);
                tracing::error!(pool = %key, panic = %panic.message, failures, retry_in = ?retry_in, "reconcile pass panicked");
            }
        }
    }
}
