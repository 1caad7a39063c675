//! Wiring: open the store, build the cloud client and metric sources, serve the API
//! and run the reconcile runtime until shutdown.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use flexus_cloud::{ClientConfig, Cloud, Credentials, HuaweiClient, RateLimits};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::checks::CloudFacts;
use crate::clock::{ScaledClock, SharedClock, SystemClock};
use crate::config::Config;
use crate::probe::PROBE_INTERVAL;
use crate::runtime::sources::{CloudEye, Prometheus, Redis, Sources};
use crate::runtime::{Context, Handle, Runtime};
use crate::server::{AppState, router};
use crate::store::{SqlStore, Store};
use crate::telemetry::Telemetry;

/// Errors of starting the agent.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("cannot set up the cloud client: {0}")]
    Cloud(#[from] flexus_cloud::CloudError),
    #[error("cannot set up metric source: {0}")]
    Source(#[from] crate::runtime::sources::SourceError),
    #[error("http server failed: {0}")]
    Serve(#[from] std::io::Error),
}

/// Build the cloud client the config describes (credentials from the environment).
pub fn cloud_client(config: &Config) -> Result<Arc<dyn Cloud>, flexus_cloud::CloudError> {
    let mut cc = match &config.cloud.endpoint {
        Some(e) => {
            ClientConfig::single_endpoint(e, &config.cloud.region, &config.cloud.project_id)?
        }
        None => ClientConfig::for_region(&config.cloud.region, &config.cloud.project_id)?,
    };
    if config.cloud.reads_per_second.is_some() || config.cloud.writes_per_second.is_some() {
        let d = RateLimits::default();
        cc.rate_limits = RateLimits {
            reads_per_second: config.cloud.reads_per_second.unwrap_or(d.reads_per_second),
            writes_per_second: config
                .cloud
                .writes_per_second
                .unwrap_or(d.writes_per_second),
            burst: d.burst.max(
                config
                    .cloud
                    .reads_per_second
                    .unwrap_or(0.0)
                    .max(config.cloud.writes_per_second.unwrap_or(0.0)) as u32,
            ),
        };
    }
    cc.validate()?;
    let creds = Credentials::from_env()?;
    Ok(Arc::new(HuaweiClient::new(cc, creds)?))
}

/// Everything the agent runs, assembled but not started.
#[derive(Debug)]
pub struct Agent {
    pub state: AppState,
    pub runtime: Runtime,
    /// Tasks of their own beside the runtime (usage recorder, advisor).
    pub operator: crate::web::OperatorTasks,
    /// How often the store's retention runs.
    pub prune_every: std::time::Duration,
    /// How often pool leases are renewed and claimed.
    pub lease_every: std::time::Duration,
    /// Checked by the cloud probe while the agent runs.
    pub cloud: Arc<dyn Cloud>,
}

impl Agent {
    /// Assemble from parts (tests pass their own store, cloud and clock).
    pub fn assemble(
        config: &Config,
        store: Arc<dyn Store>,
        cloud: Arc<dyn Cloud>,
        clock: SharedClock,
    ) -> Result<Self, StartError> {
        let telemetry = Arc::new(Telemetry::new());
        let ready = Arc::new(AtomicBool::new(false));
        let sources = Sources {
            cloud_eye: CloudEye {
                period: config.metrics.ces_period,
                lookback: config.metrics.ces_lookback,
            },
            prometheus: config
                .metrics
                .prometheus_url
                .as_deref()
                .map(Prometheus::new),
            redis: config
                .metrics
                .redis_url
                .as_deref()
                .map(Redis::new)
                .transpose()?
                .map(Arc::new),
        };
        let (handle, inbox) = Handle::channel();
        let facts = Arc::new(CloudFacts::new(cloud.clone(), clock.clone()));
        let handle = handle.with_min_evaluation_interval(config.reconcile.min_evaluation_interval);
        let ctx = Arc::new(Context::new(
            store.clone(),
            cloud.clone(),
            clock.clone(),
            sources,
            telemetry.clone(),
            config.reconcile.clone(),
            ready.clone(),
        ));
        let (operator, tasks) =
            crate::web::Operator::assemble(config, store.clone(), clock.clone(), telemetry.clone());
        let state = AppState {
            store,
            clock,
            auth: Arc::new(config.auth.clone()),
            runtime: handle,
            telemetry: telemetry.clone(),
            facts,
            ready,
            operator,
            cloud_probe: Arc::default(),
            tune_jobs: Arc::new(
                crate::tuner::TuneJobs::new(config.tune.clone(), telemetry.clone())
                    .with_cost(config.cost.clone()),
            ),
        };
        Ok(Self {
            state,
            runtime: Runtime::new(ctx, inbox),
            operator: tasks,
            prune_every: config.retention.prune_every,
            lease_every: config.lease.renew_every,
            cloud,
        })
    }

    /// Serve the API on `listener` and run the runtime until `shutdown` is cancelled:
    /// then stop accepting requests, finish in-flight passes, and return.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> Result<(), StartError> {
        let app = router(self.state.clone());
        // Leases first: start-up recovery and the usage recorder only touch pools this
        // agent holds.
        sync_leases(self.state.store.as_ref(), &self.state.runtime).await;
        let operator = self.operator.spawn(shutdown.clone());
        let leaser = tokio::spawn(lease_loop(
            self.state.store.clone(),
            self.state.runtime.clone(),
            self.lease_every,
            shutdown.clone(),
        ));
        // After the first lease round: this agent's heartbeat is written, so a tune it
        // takes over is not taken over again by another agent's sweep.
        let resumer = tokio::spawn(self.state.tune_jobs.clone().resume_loop(
            self.state.store.clone(),
            self.state.clock.clone(),
            self.lease_every,
            shutdown.clone(),
        ));
        let pruner = tokio::spawn(prune_loop(
            self.state.store.clone(),
            self.state.clock.clone(),
            self.prune_every,
            shutdown.clone(),
        ));
        let (probe, cloud, s) = (
            self.state.cloud_probe.clone(),
            self.cloud.clone(),
            shutdown.clone(),
        );
        tokio::spawn(async move { probe.run(cloud.as_ref(), PROBE_INTERVAL, s).await });
        let s = shutdown.clone();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { s.cancelled().await })
                .await
        });
        self.runtime.run(shutdown.clone()).await;
        let _ = resumer.await;
        self.state.tune_jobs.stop().await;
        operator.await;
        let _ = pruner.await;
        let _ = leaser.await;
        match server.await {
            Ok(r) => r?,
            Err(e) => tracing::error!(error = %e, "http server task failed"),
        }
        Ok(())
    }
}

/// Delete what the store's retention keeps no longer, every `every` (real time),
/// until `shutdown`. A failure is logged and retried at the next round.
async fn prune_loop(
    store: Arc<dyn Store>,
    clock: SharedClock,
    every: std::time::Duration,
    shutdown: CancellationToken,
) {
    loop {
        match store.prune(clock.now_ms()).await {
            Ok(p) if p.total() > 0 => {
                tracing::info!(
                    operations = p.operations,
                    policy_versions = p.policy_versions,
                    usage_hours = p.usage_hours,
                    advice = p.advice,
                    tune_jobs = p.tune_jobs,
                    "retention pruned the store"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "retention pruning failed; retrying later"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(clock.real_duration(every)) => {}
        }
    }
}

/// Keep this agent's pool leases: renew them, give up the surplus, claim free pools
/// (every `every`, real time), and ask the runtime to reconcile each pool it gains. A
/// pool whose lease is lost is dropped by its next pass.
async fn lease_loop(
    store: Arc<dyn Store>,
    runtime: crate::runtime::Handle,
    every: std::time::Duration,
    shutdown: CancellationToken,
) {
    // A fixed rate, not a sleep after each round: a slow round must not push the
    // next renewal towards the lease's expiry.
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        sync_leases(store.as_ref(), &runtime).await;
    }
}

/// One lease round; every pool gained is scheduled.
async fn sync_leases(store: &dyn Store, runtime: &crate::runtime::Handle) {
    match store.sync_leases().await {
        Ok(sync) => {
            if !sync.acquired.is_empty() || !sync.lost.is_empty() {
                tracing::info!(
                    acquired = sync.acquired.len(),
                    lost = sync.lost.len(),
                    held = sync.held,
                    agents = sync.agents,
                    share = sync.share,
                    "pool leases changed"
                );
            }
            for (ns, pool) in sync.acquired {
                runtime.notify(crate::runtime::PoolKey::new(&ns, &pool));
            }
        }
        Err(e) => tracing::warn!(error = %e, "lease renewal failed; retrying"),
    }
}

/// The clock the config asks for. With `reconcile.clock_speed` unset and a
/// `cloud.endpoint` that is a flexus-emulator, the agent follows the emulator's clock (its
/// time and its speed), so instance ages, boot times and metric windows agree with the
/// cloud's; a set `clock_speed` that differs from the emulator's is logged as an error.
pub async fn clock_for(config: &Config) -> SharedClock {
    use crate::clock::Clock as _;
    let emulator = match &config.cloud.endpoint {
        Some(e) => crate::clock::emulator_clock(e).await,
        None => None,
    };
    match (config.reconcile.clock_speed, emulator) {
        (None, Some((now_ms, speed))) => {
            tracing::info!(speed, "following the emulator's clock");
            Arc::new(ScaledClock::new(now_ms, speed))
        }
        (Some(speed), Some((now_ms, emu_speed))) if (speed - emu_speed).abs() <= 1e-9 => {
            Arc::new(ScaledClock::new(now_ms, speed))
        }
        (Some(speed), Some((_, emu_speed))) => {
            tracing::error!(
                clock_speed = speed,
                emulator_speed = emu_speed,
                "reconcile.clock_speed differs from the emulator's time scale: instance ages and \
                 metric windows will not make sense (remove reconcile.clock_speed to follow the emulator)"
            );
            Arc::new(ScaledClock::new(SystemClock.now_ms(), speed))
        }
        (Some(speed), None) if (speed - 1.0).abs() > f64::EPSILON => {
            Arc::new(ScaledClock::new(SystemClock.now_ms(), speed))
        }
        _ => Arc::new(SystemClock),
    }
}

/// Open everything the config names and run until `shutdown`.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    let store: Arc<dyn Store> =
        Arc::new(SqlStore::connect(&config.store, config.store_options()).await?);
    let cloud = cloud_client(&config)?;
    let clock = clock_for(&config).await;
    let now = crate::clock::rfc3339(clock.now_ms());
    for ns in config.auth.namespaces.keys() {
        store.ensure_namespace(ns, &now).await?;
    }
    Agent::assemble(&config, store, cloud, clock)?
        .run(listener, shutdown)
        .await
}
