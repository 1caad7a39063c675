//! Tune jobs (`POST /v1/namespaces/{ns}/pools/{name}/tune`): the policy tuner of
//! flexus-sim ([`flexus_sim::tune`]) run on a pool's recorded history, as a job the
//! client polls. Nothing is applied: the job's result is a recommendation.
//!
//! History: the request-rate history the agent already keeps for predictive pools —
//! the prediction metric's 15-minute buckets (`forecast_history`, each bucket's
//! time-weighted mean), replayed as a 15-minute trace (interpolated to the replay's
//! tick, see `Trace::interpolated`) on the pool's flavor — or, when the request names
//! one, a built-in trace.
//!
//! Guarantees: the request, the pool, its policy and the history's length are checked
//! before a job is created (a bad request or too short a history is answered at once,
//! naming what is wrong and how much history is needed); the search runs on a blocking
//! thread, never on the async workers.
//! Jobs are stored ([`crate::store::jobs`]): written when accepted, before the client is
//! answered, and again when they end; the newest [`crate::store::TUNE_JOBS_KEEP`] per
//! pool are kept. Any agent sharing the store answers a poll. A job still running when
//! its agent stopped (its session no longer renews its heartbeat: a stop, a kill, a
//! restart) is resumed: every agent looks for such jobs as often as it renews its
//! leases, takes each over in one conditional write (one agent wins) and searches again
//! from the start; after [`flexus_api::TUNE_RESUMES_MAX`] resumptions the job fails.
//!
//! Beside the advisor ([`AdviceTune`]): every answer of the advisor carries the tuner's
//! recommendation for the same pool on the same history — the usage samples the
//! model's proposal is replayed on — with the pool's policy, the recommendation and the
//! model's proposal replayed on the same validation window ([`flexus_api::TunerAdvice`]).
//! It runs on a blocking thread started by the advisor's task, never in a reconcile pass.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flexus_api::{
    TUNE_RESUMES_MAX, TuneBaseline, TuneChange, TuneJob, TuneMeasure, TuneOutcome, TuneRequest,
    TunerAdvice,
};
use flexus_sim::tune::{Aim, MIN_HISTORY_MIN, Measured, Objective, TuneResult};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::{Millis, SharedClock};
use crate::cost::CostConfig;
use crate::cost::replay::{History, Setup};
use crate::store::{Interrupted, Store, StoreError, Tracked};

/// Why a tune could not start.
#[derive(Debug, thiserror::Error)]
pub enum TuneError {
    /// The request, the pool or its history does not allow a tune.
    #[error("{0}")]
    Invalid(String),
    /// The pool does not exist.
    #[error("pool {0} not found")]
    NoPool(String),
    /// As many jobs as the agent lets wait are waiting for a search.
    #[error(
        "the agent is busy tuning: {waiting} tune jobs are waiting for its {searches} search slot(s) ([tune] in agent.toml); try again later"
    )]
    Busy { waiting: usize, searches: usize },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Longest wait between two tries to write a finished job's result.
const SAVE_RETRY_MAX: Duration = Duration::from_secs(30);

/// `[tune]` of agent.toml: how many searches run at once and how many accepted jobs may
/// wait for one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TuneConfig {
    /// Searches running at once (each keeps a core busy).
    pub searches: usize,
    /// Accepted jobs waiting for a search; one more request is refused ([`TuneError::Busy`]).
    pub max_waiting: usize,
}

impl Default for TuneConfig {
    /// One core is left to the reconcile loop and the API: one search less than the
    /// machine has cores, at least one.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            searches: cores.saturating_sub(1).max(1),
            max_waiting: 8,
        }
    }
}

/// The tune jobs of this agent: written to the store when accepted and when they
/// end, so that any agent sharing the store answers a poll and a restart loses none.
/// At most [`TuneConfig::searches`] run their search at once; the others wait, in the
/// order they were accepted.
#[derive(Debug)]
pub struct TuneJobs {
    config: TuneConfig,
    /// Finished jobs whose final write has not committed yet (it is retried until it
    /// does); a poll to this agent is answered from here meanwhile.
    unsaved: Mutex<HashMap<String, TuneJob>>,
    /// The tasks that wait for a search and write its end.
    tasks: TaskTracker,
    /// Cancelled when the agent stops.
    stopping: CancellationToken,
    /// One permit per search that may run (tokio's semaphore is fair: jobs start in
    /// the order they asked).
    slots: Arc<Semaphore>,
    /// Accepted jobs whose search has not started.
    waiting: AtomicUsize,
    /// Where the searching and waiting counts and the jobs' ends are published.
    telemetry: Arc<crate::telemetry::Telemetry>,
    /// The agent's `[cost]`: the usage samples a pool's recorded history is read from
    /// (`sample_interval`, `retention`), the prices and the spot reclamations the replays
    /// assume — as the cost report and the advisor replay the pool.
    cost: Arc<CostConfig>,
}

/// A tune as prepared: the search, and the pool's own policy the recommendation is
/// written against (the search replays the pool as the agent runs it: its bounds
/// within the pool's sizes and the pool's spot mix, which the recommendation does not
/// change).
#[derive(Debug, Clone)]
struct Prepared {
    req: flexus_sim::tune::TuneRequest,
    policy: flexus_policy::Policy,
}

impl Default for TuneJobs {
    fn default() -> Self {
        Self::new(TuneConfig::default(), Arc::default())
    }
}

/// At most this many jobs are listed (all that are kept).
pub const LIST_MAX: u32 = crate::store::TUNE_JOBS_KEEP;

/// Sets its flag when dropped.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// One waiting job less when its search starts (or it ends without one).
struct Waiting<'a>(&'a TuneJobs);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.stop_waiting();
    }
}

impl TuneJobs {
    pub fn new(config: TuneConfig, telemetry: Arc<crate::telemetry::Telemetry>) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(config.searches)),
            config,
            unsaved: Mutex::default(),
            tasks: TaskTracker::new(),
            stopping: CancellationToken::new(),
            waiting: AtomicUsize::new(0),
            telemetry,
            cost: Arc::default(),
        }
    }

    /// Replay pools' recorded history with the agent's `[cost]` settings.
    #[must_use]
    pub fn with_cost(mut self, cost: CostConfig) -> Self {
        self.cost = Arc::new(cost);
        self
    }

    /// Searches running now (slots taken).
    fn searching(&self) -> usize {
        self.config.searches - self.slots.available_permits()
    }

    /// One job waits no longer (its search started, or it ended without one).
    fn stop_waiting(&self) {
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        self.observe();
    }

    /// Publishes how many searches run and how many jobs wait.
    fn observe(&self) {
        let m = &self.telemetry.operator;
        m.tune_searching.set(self.searching() as i64);
        m.tune_waiting
            .set(self.waiting.load(Ordering::SeqCst) as i64);
    }

    /// A job of pool `ns/name` by id, as a client sees it ([`Self::as_seen`]).
    pub async fn get(
        &self,
        store: &dyn Store,
        ns: &str,
        name: &str,
        id: &str,
    ) -> Result<Option<TuneJob>, StoreError> {
        let pool = format!("{ns}/{name}");
        if let Some(j) = self.lock().get(id).filter(|j| j.pool == pool) {
            return Ok(Some(j.clone()));
        }
        Ok(store.get_tune_job(ns, name, id).await?.map(as_seen))
    }

    /// The newest jobs of pool `ns/name` (at most [`LIST_MAX`]), newest first, as a
    /// client sees them.
    pub async fn list(
        &self,
        store: &dyn Store,
        ns: &str,
        name: &str,
    ) -> Result<Vec<TuneJob>, StoreError> {
        let jobs = store.list_tune_jobs(ns, name, LIST_MAX).await?;
        let unsaved = self.lock();
        Ok(jobs
            .into_iter()
            .map(|t| match unsaved.get(&t.value.id) {
                Some(j) => j.clone(),
                None => as_seen(t),
            })
            .collect())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, TuneJob>> {
        self.unsaved.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Write a finished job, retrying (with growing pauses) until the store takes it or
    /// the agent stops; meanwhile this agent answers polls from memory.
    async fn save(
        &self,
        store: &dyn Store,
        (ns, name): (&str, &str),
        job: TuneJob,
        created_ms: i64,
    ) {
        let mut pause = Duration::from_secs(1);
        loop {
            match store.put_tune_job(ns, name, &job, created_ms).await {
                Ok(()) => {
                    self.lock().remove(&job.id);
                    return;
                }
                Err(e) => {
                    tracing::warn!(job = %job.id, error = %e, "the tune's end could not be stored; retrying");
                    self.lock().insert(job.id.clone(), job.clone());
                    tokio::select! {
                        _ = self.stopping.cancelled() => return,
                        _ = tokio::time::sleep(pause) => {}
                    }
                    pause = (pause * 2).min(SAVE_RETRY_MAX);
                }
            }
        }
    }

    /// The agent is stopping: waits and searches end (each search gives up before its
    /// next replay) and their jobs stay `running` in the store, for an agent sharing it —
    /// or this one, restarted — to resume once this session's heartbeat is gone. Returns
    /// when the job tasks have ended (a finished job's final write is tried once more).
    pub async fn stop(&self) {
        self.stopping.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }

    /// Checks the request, assembles the history, writes the job and starts its task,
    /// which waits for a search slot and runs the search on a blocking thread; returns
    /// the running job. Nothing is accepted unless the job is stored; a request while
    /// [`TuneConfig::max_waiting`] jobs wait is refused ([`TuneError::Busy`]).
    pub async fn start(
        self: &Arc<Self>,
        store: Arc<dyn Store>,
        clock: SharedClock,
        (ns, name): (&str, &str),
        req: TuneRequest,
    ) -> Result<TuneJob, TuneError> {
        let tune_req =
            prepare(store.as_ref(), (ns, name), &req, &self.cost, clock.now_ms()).await?;
        let reserved = self
            .waiting
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.config.max_waiting || self.slots.available_permits() > n).then_some(n + 1)
            });
        if let Err(n) = reserved {
            return Err(TuneError::Busy {
                waiting: n,
                searches: self.config.searches,
            });
        }
        let now_ms = clock.now_ms();
        let job = TuneJob {
            id: format!("tune-{}", uuid::Uuid::new_v4().simple()),
            pool: format!("{ns}/{name}"),
            state: "running".into(),
            created_at: crate::clock::rfc3339(now_ms),
            started_at: None,
            finished_at: None,
            request: req,
            resumed: 0,
            result: None,
            error: None,
        };
        if let Err(e) = store.put_tune_job(ns, name, &job, now_ms).await {
            self.stop_waiting();
            return Err(e.into());
        }
        self.observe();
        tracing::info!(pool = %job.pool, job = %job.id, "tune accepted");
        let pool = (ns.to_owned(), name.to_owned());
        self.spawn(store, clock, (pool, now_ms), job.clone(), Some(tune_req));
        Ok(job)
    }

    /// Start the task of a job counted as waiting (accepted at `created_ms`): wait for a
    /// search slot, search (`prepared`, or the job's request prepared again for a resumed
    /// job) and write the end. A job cut short by the agent stopping is left as stored.
    fn spawn(
        self: &Arc<Self>,
        store: Arc<dyn Store>,
        clock: SharedClock,
        (pool, created_ms): ((String, String), Millis),
        mut done: TuneJob,
        prepared: Option<Prepared>,
    ) {
        let jobs = self.clone();
        self.tasks.spawn(async move {
            let req = match prepared {
                Some(r) => Ok(r),
                None => prepare(
                    store.as_ref(),
                    (&pool.0, &pool.1),
                    &done.request,
                    &jobs.cost,
                    clock.now_ms(),
                )
                .await
                    .map_err(|e| format!("resuming the tune after its agent stopped: {e}")),
            };
            let r = match req {
                Ok(req) => {
                    jobs.search(store.as_ref(), clock.clone(), (&pool, created_ms), &mut done, req)
                        .await
                }
                Err(e) => {
                    jobs.stop_waiting();
                    Some(Err(e))
                }
            };
            jobs.observe();
            let Some(r) = r else {
                tracing::info!(job = %done.id, "the agent is stopping: the tune is left to be resumed");
                return;
            };
            if done.finished_at.is_none() {
                done.finished_at = Some(crate::clock::rfc3339(clock.now_ms()));
            }
            tracing::info!(job = %done.id, ok = r.is_ok(), "tune finished");
            let outcome = if r.is_ok() { "done" } else { "failed" };
            jobs.telemetry
                .operator
                .tune_jobs
                .get_or_create(&crate::telemetry::OutcomeLabel {
                    outcome: outcome.into(),
                })
                .inc();
            match r {
                Ok(r) => {
                    done.state = "done".into();
                    done.result = Some(r);
                }
                Err(e) => {
                    done.state = "failed".into();
                    done.error = Some(e);
                }
            }
            jobs.save(store.as_ref(), (&pool.0, &pool.1), done, created_ms)
                .await;
        });
    }

    /// Take over the running jobs of agent sessions that are gone and resume them here
    /// (as many as could search or wait here now); one resumed
    /// [`TUNE_RESUMES_MAX`] times already is written as failed instead. Returns how many
    /// were resumed.
    pub async fn resume_interrupted(
        self: &Arc<Self>,
        store: &Arc<dyn Store>,
        clock: &SharedClock,
    ) -> Result<usize, StoreError> {
        let busy = self.searching() + self.waiting.load(Ordering::SeqCst);
        let room = (self.config.searches + self.config.max_waiting).saturating_sub(busy);
        if room == 0 || self.stopping.is_cancelled() {
            return Ok(0);
        }
        let mut resumed = 0;
        for was in store.interrupted_tune_jobs(room as u32).await? {
            let job = resumed_job(&was, clock.now_ms());
            if !store.take_over_tune_job(&was, &job).await? {
                continue; // another agent was quicker
            }
            if job.state != "running" {
                tracing::warn!(job = %job.id, pool = %job.pool, "an interrupted tune is not resumed again");
                continue;
            }
            tracing::info!(job = %job.id, pool = %job.pool, from = %was.holder, resumed = job.resumed, "tune resumed");
            self.waiting.fetch_add(1, Ordering::SeqCst);
            self.telemetry.operator.tune_resumed.inc();
            self.observe();
            let pool = (was.namespace, was.pool);
            self.spawn(
                store.clone(),
                clock.clone(),
                (pool, was.created_ms),
                job,
                None,
            );
            resumed += 1;
        }
        Ok(resumed)
    }

    /// Every `every` (real time) until `shutdown`: [`Self::resume_interrupted`]. A
    /// failure is logged and tried again at the next round.
    pub async fn resume_loop(
        self: Arc<Self>,
        store: Arc<dyn Store>,
        clock: SharedClock,
        every: Duration,
        shutdown: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.resume_interrupted(&store, &clock).await {
                tracing::warn!(error = %e, "looking for interrupted tunes failed; retrying");
            }
        }
    }

    /// Wait for a search slot (the job, accepted at `created_ms`, counts as waiting
    /// until it has one), write its `started_at` and run the search; `None` when the
    /// agent stopping ended the wait or the search.
    async fn search(
        &self,
        store: &dyn Store,
        clock: SharedClock,
        ((ns, name), created_ms): (&(String, String), Millis),
        job: &mut TuneJob,
        Prepared { req, policy }: Prepared,
    ) -> Option<Result<TuneOutcome, String>> {
        let waiting = Waiting(self);
        let _slot = tokio::select! {
            s = self.slots.clone().acquire_owned() => s.ok()?,
            _ = self.stopping.cancelled() => return None,
        };
        drop(waiting);
        job.started_at = Some(crate::clock::rfc3339(clock.now_ms()));
        tracing::info!(job = %job.id, "tune search started");
        // Only informative: a poll meanwhile reads the job without `started_at`.
        if let Err(e) = store.put_tune_job(ns, name, job, created_ms).await {
            tracing::warn!(job = %job.id, error = %e, "the tune's start could not be stored");
        }
        // The search gives up before its next replay once this wait ends, whichever way
        // (the agent stopping, or this task dropped): no core is kept busy for nobody.
        let cancel = Arc::new(AtomicBool::new(false));
        let _give_up = SetOnDrop(cancel.clone());
        let req = flexus_sim::tune::TuneRequest {
            cancel: Some(cancel),
            ..req
        };
        let search = tokio::task::spawn_blocking(move || {
            flexus_sim::tune::tune(&req)
                .map(|r| outcome(r, &policy))
                .map_err(|e| e.to_string())
        });
        let r = tokio::select! {
            r = search => r.unwrap_or_else(|e| Err(format!("the search stopped unexpectedly: {e}"))),
            _ = self.stopping.cancelled() => return None,
        };
        // Stamped while the slot is still held: the next job starts after this time.
        job.finished_at = Some(crate::clock::rfc3339(clock.now_ms()));
        Some(r)
    }
}

/// A stored job as a client sees it: one still marked running whose agent session is
/// no longer alive (the agent stopped or restarted while it ran or waited) waits to be
/// resumed: running, its search not started.
fn as_seen(stored: Tracked<TuneJob>) -> TuneJob {
    let mut job = stored.value;
    if job.state == "running" && !stored.runner_alive {
        job.started_at = None;
    }
    job
}

/// The interrupted job `was` as it is taken over at `now_ms`: resumed once more,
/// waiting for a search — or, resumed [`TUNE_RESUMES_MAX`] times already, failed.
fn resumed_job(was: &Interrupted, now_ms: Millis) -> TuneJob {
    let mut job = TuneJob {
        started_at: None,
        finished_at: None,
        ..was.job.clone()
    };
    if job.resumed < TUNE_RESUMES_MAX {
        job.resumed += 1;
    } else {
        job.state = "failed".into();
        job.finished_at = Some(crate::clock::rfc3339(now_ms));
        job.error = Some(format!(
            "the agent running this tune stopped before it finished {} times (the last: {}); \
             it is not resumed again. Start it again — with fewer replays or less history if \
             the search itself brings the agent down",
            job.resumed + 1,
            was.holder
        ));
    }
    job
}

fn invalid(msg: impl Into<String>) -> TuneError {
    TuneError::Invalid(msg.into())
}

/// The pool's policy, flavor and history as a tuner request: its recorded history
/// ([`recorded_history`], up to `now_ms`), replayed with the pool as the agent runs it;
/// or a named trace, replayed with the policy as written (a what-if on other load,
/// scaled to `peak_instances`).
async fn prepare(
    store: &dyn Store,
    (ns, name): (&str, &str),
    req: &TuneRequest,
    cost: &CostConfig,
    now_ms: Millis,
) -> Result<Prepared, TuneError> {
    let objective = one_of("objective", &req.objective, OBJECTIVES)?;
    let aim = one_of("aim", &req.aim, AIMS)?;
    if !(req.budget.is_finite() && req.budget > 0.0 && req.budget < 1.0) {
        return Err(invalid(format!(
            "budget is the share of time the SLO may be missed, in (0, 1), e.g. 0.01 for 1 %; got {}",
            req.budget
        )));
    }
    if !(2..=500).contains(&req.max_evaluations) {
        return Err(invalid(format!(
            "max_evaluations must be between 2 and 500, got {}",
            req.max_evaluations
        )));
    }
    let pool = store
        .get_pool(ns, name)
        .await?
        .ok_or_else(|| TuneError::NoPool(format!("{ns}/{name}")))?;
    let spec = pool.spec;
    let doc = store.policy_for_pool(ns, name).await?.ok_or_else(|| {
        invalid(format!(
            "pool {ns}/{name} has no policy to tune; declare one first"
        ))
    })?;
    let written = doc.spec.policy.clone();
    let mut options = flexus_sim::simulation::SimulateOptions {
        flavor: Some(spec.flavor.clone()),
        peak_instances: req.peak_instances.unwrap_or(40),
        max_hours: req.hours,
        against: Vec::new(),
        ..flexus_sim::simulation::SimulateOptions::default()
    };
    let (history, flavor, policy) = match &req.trace {
        Some(t) => {
            let (history, flavor) = flexus_sim::simulation::prepare_trace(t, &options)
                .map_err(|e| invalid(e.to_string()))?;
            (history, flavor, written.clone())
        }
        None => {
            // The pool as the replays of the cost report and the advisor set it up (its
            // flavor priced, with its boot and warm-up times; the spot reclamations), with
            // the policy the agent runs: bounds within the pool's sizes, its spot mix.
            let setup = Setup::of_pool(
                &spec,
                Some(written.clone()),
                &cost.prices,
                cost.spot_hazard_per_hour,
            )
            .ok_or_else(|| {
                invalid(format!(
                    "pool {ns}/{name}: flavor {} is not in the capacity catalogue; the replay has no capacity model for it",
                    spec.flavor
                ))
            })?;
            let history = recorded_history(store, (ns, name), &written, cost, now_ms).await?;
            let policy = setup.acting(&written);
            options.spot_hazard_per_hour = setup.spot_hazard_per_hour;
            // Replayed with the pool's own monitoring, so the policy, its coarse-data
            // headroom and the baselines see readings as far apart and as late as the
            // agent does.
            flexus_sim::policy::monitor_as_pool(&mut options, &policy);
            (history, setup.flavor, policy)
        }
    };
    let r = flexus_sim::tune::TuneRequest {
        objective,
        aim,
        max_evaluations: req.max_evaluations as usize,
        options,
        ..flexus_sim::tune::TuneRequest::new(history, flavor, policy, req.budget)
    };
    flexus_sim::tune::check(&r).map_err(|e| invalid(e.to_string()))?;
    Ok(Prepared {
        req: r,
        policy: written,
    })
}

/// The tune request's `objective` values, as the API spells them.
pub const OBJECTIVES: &[(&str, Objective)] = &[
    ("cost", Objective::Cost),
    ("instance_hours", Objective::InstanceHours),
];

/// The tune request's `aim` values, as the API spells them.
pub const AIMS: &[(&str, Aim)] = &[("budget", Aim::Budget), ("baselines", Aim::Baselines)];

/// How the API spells `v` among `choices` (the CLI's request to an agent).
pub fn api_name<T: Copy + PartialEq>(choices: &[(&'static str, T)], v: T) -> &'static str {
    choices
        .iter()
        .find(|(_, c)| *c == v)
        .map_or("", |(name, _)| name)
}

/// The value named `got` among `choices`, or an error naming the field and the choices.
fn one_of<T: Copy>(field: &str, got: &str, choices: &[(&str, T)]) -> Result<T, TuneError> {
    choices
        .iter()
        .find(|(name, _)| *name == got)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<String> = choices.iter().map(|(n, _)| format!("{n:?}")).collect();
            invalid(format!(
                "{field} must be {}, got {got:?}",
                names.join(" or ")
            ))
        })
}

/// The pool's recorded request-rate history (the prediction metric's buckets) as a
/// trace; missing buckets are interpolated between their neighbours. `None` without
/// buckets, and when the prediction metric is not a request rate (a `custom` metric):
/// CPU or GPU utilisation buckets are not load without the ready counts they were
/// measured on (the sampled load turns them into load).
async fn recorded(
    store: &dyn Store,
    ns: &str,
    name: &str,
    policy: &flexus_policy::Policy,
) -> Result<Option<flexus_sim::trace::Trace>, TuneError> {
    let p = &policy.prediction;
    let rate = p.metric.as_deref().is_some_and(|m| {
        policy
            .metrics
            .iter()
            .any(|x| x.name == m && x.kind == flexus_policy::MetricKind::Custom)
    });
    if !(p.enabled && rate) {
        return Ok(None);
    }
    let Some(h) = store.get_forecast(ns, name).await? else {
        return Ok(None);
    };
    let step = h.header.bucket_seconds;
    let (Some(first), Some(last)) = (h.buckets.first(), h.buckets.last()) else {
        return Ok(None);
    };
    let slots = ((last.start - first.start) / step).round() as usize + 1;
    let mut y: Vec<Option<f64>> = vec![None; slots];
    for b in &h.buckets {
        let i = ((b.start - first.start) / step).round() as usize;
        if let Some(v) = y.get_mut(i) {
            *v = Some(b.value(flexus_policy::forecast::buckets::BucketStat::Mean))
                .filter(|x| x.is_finite());
        }
    }
    let rps = fill_gaps(&y);
    flexus_sim::trace::Trace::from_rps(
        &format!("{ns}/{name} recorded history"),
        first.start as i64,
        step.round() as u32,
        rps,
    )
    .map(Some)
    .map_err(|e| invalid(e.to_string()))
}

/// The history a tune of the pool replays: the usage recorder's sampled load (minute
/// resolution: it sees bursts) when it spans a day or at least as long as the forecast
/// buckets, else the buckets (15-minute means, kept longer), else the sampled load
/// however short (refused with what is missing).
async fn recorded_history(
    store: &dyn Store,
    pool: (&str, &str),
    policy: &flexus_policy::Policy,
    cost: &CostConfig,
    now_ms: Millis,
) -> Result<flexus_sim::trace::Trace, TuneError> {
    let buckets = recorded(store, pool.0, pool.1, policy).await?;
    let Some(buckets) = buckets else {
        return sampled(store, pool, cost, now_ms).await;
    };
    match sampled(store, pool, cost, now_ms).await {
        Ok(t) if t.duration_s() >= buckets.duration_s().min(86_400.0) => Ok(t),
        Ok(_) | Err(TuneError::Invalid(_)) => Ok(buckets),
        Err(e) => Err(e),
    }
}

/// The load the usage recorder sampled for the pool within `cost.retention` before
/// `now_ms`, on a grid of its sampling interval (what the cost report and the advisor
/// replay).
async fn sampled(
    store: &dyn Store,
    (ns, name): (&str, &str),
    cost: &CostConfig,
    now_ms: Millis,
) -> Result<flexus_sim::trace::Trace, TuneError> {
    use crate::cost::usage::hour_of;
    let from = now_ms - cost.retention.as_millis() as Millis;
    let (_, h) = crate::cost::replay::pool_history(
        store,
        (ns, name),
        (hour_of(from), hour_of(now_ms)),
        cost.sample_interval,
    )
    .await?;
    h.map(|h| h.trace).map_err(|e| {
        let why = e.strip_prefix(crate::cost::replay::TOO_LITTLE).unwrap_or(&e);
        invalid(format!(
            "pool {ns}/{name} has no recorded history to tune on yet ({why}): the agent samples every pool's load each cost.sample_interval ({} s) and keeps it for cost.retention, and a predictive pool's forecast history is used when it has one; pass \"trace\" to tune on a trace instead",
            cost.sample_interval.as_secs()
        ))
    })
}

/// Linear interpolation over missing values (ends take the nearest value).
fn fill_gaps(y: &[Option<f64>]) -> Vec<f64> {
    let known: Vec<(usize, f64)> = y
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (i, v)))
        .collect();
    (0..y.len())
        .map(|i| {
            let after = known.partition_point(|k| k.0 < i);
            match (after.checked_sub(1).map(|j| known[j]), known.get(after)) {
                (_, Some(&(j, v))) if j == i => v,
                (Some((a, va)), Some(&(b, vb))) => va + (vb - va) * (i - a) as f64 / (b - a) as f64,
                (Some((_, v)), None) | (None, Some(&(_, v))) => v,
                (None, None) => 0.0,
            }
        })
        .collect()
}

fn measure(m: &Measured) -> TuneMeasure {
    TuneMeasure {
        violation_min: m.violation_min,
        violation_share: m.violation_share,
        instance_hours: m.instance_hours,
        cost: m.cost,
    }
}

/// The search's result as the job's outcome; the recommended policy is `written` (the
/// pool's policy as declared) with the searched parameters changed, so the bounds and
/// spot mix the replay took from the pool are not part of it.
fn outcome(r: TuneResult, written: &flexus_policy::Policy) -> TuneOutcome {
    let mut policy = r.after.clone();
    policy.bounds = written.bounds;
    policy.spot = written.spot;
    TuneOutcome {
        report: r.text(),
        within_budget: r.within_budget(),
        changes: r
            .changes
            .iter()
            .map(|c| TuneChange {
                field: c.field.clone(),
                before: c.before,
                after: c.after,
            })
            .collect(),
        tune_hours: r.tune_hours,
        validation_hours: r.validation_hours,
        evaluations: r.evaluations as u32,
        before: measure(&r.validation.0),
        after: measure(&r.validation.1),
        baselines: r
            .baselines
            .iter()
            .map(|b| TuneBaseline {
                name: b.name.clone(),
                tuning: measure(&b.tuning),
                validation: measure(&b.validation),
                beaten: b.beaten_by(&r.validation.1),
            })
            .collect(),
        policy,
    }
}

/// The tuner beside the advisor: flexus-sim's tuner on the history the advisor replays
/// the model's proposal on, with the pool as the replays set it up (its flavor priced
/// from the table, with its boot and warm-up times; a policy held to its bounds and spot
/// mix, [`Setup::acting`]; its monitoring; the spot hazard), at the tune endpoint's
/// defaults (budget, objective, replays). Built on the async side; [`run`] and
/// [`measure`] block (the advisor's task calls them on a blocking thread).
///
/// [`run`]: AdviceTune::run
/// [`measure`]: AdviceTune::measure
#[derive(Debug, Clone)]
pub struct AdviceTune {
    req: flexus_sim::tune::TuneRequest,
    setup: Setup,
}

impl AdviceTune {
    /// The tune of `setup` on `history`; `Err` is the reason there is no recommendation
    /// (too little history, no policy, no capacity model for the flavor).
    pub fn new(history: &Result<History, String>, setup: Option<&Setup>) -> Result<Self, String> {
        let h = history.as_ref().map_err(|e| {
            match e.strip_prefix(crate::cost::replay::TOO_LITTLE) {
                Some(why) => format!("too little history for the tuner: {why}"),
                None => format!("the history cannot be replayed: {e}"),
            }
        })?;
        let minutes = h.trace.duration_s() / 60.0;
        if minutes < MIN_HISTORY_MIN {
            return Err(format!(
                "too little history for the tuner: {minutes:.0} minutes of load recorded in the advisor's window, at least {MIN_HISTORY_MIN:.0} needed (two thirds tune, the last third validates)"
            ));
        }
        let setup = setup.ok_or("the pool's flavor has no capacity model to replay")?;
        let policy = setup.policy.clone().ok_or(
            "the pool has no policy to tune (without one it is held at its size); declare one first",
        )?;
        let defaults = TuneRequest::default();
        let mut options = flexus_sim::simulation::SimulateOptions {
            flavor: Some(setup.flavor.name.clone()),
            spot_hazard_per_hour: setup.spot_hazard_per_hour,
            against: Vec::new(),
            ..flexus_sim::simulation::SimulateOptions::default()
        };
        // Readings as the pool gets them, as the cost report and tune jobs replay it.
        flexus_sim::policy::monitor_as_pool(&mut options, &policy);
        let req = flexus_sim::tune::TuneRequest {
            max_evaluations: defaults.max_evaluations as usize,
            options,
            ..flexus_sim::tune::TuneRequest::new(
                h.trace.clone(),
                setup.flavor.clone(),
                setup.acting(&policy),
                defaults.budget,
            )
        };
        flexus_sim::tune::check(&req).map_err(|e| e.to_string())?;
        Ok(Self {
            req,
            setup: setup.clone(),
        })
    }

    /// The search and its before/after on the validation window (blocking).
    pub fn run(&self) -> Result<TuneOutcome, String> {
        flexus_sim::tune::tune(&self.req)
            .map(|r| {
                let held = r.before.clone();
                outcome(r, &held)
            })
            .map_err(|e| e.to_string())
    }

    /// `policy` (held to the pool's bounds) replayed on the validation window exactly as
    /// [`run`](Self::run) measures its before and after (blocking).
    pub fn measure(&self, policy: &flexus_policy::Policy) -> Result<TuneMeasure, String> {
        let r = &self.req;
        let split = flexus_sim::frontier::Split::of(&r.history);
        let mut a =
            flexus_sim::policy::PolicyAutoscaler::new("validate", self.setup.acting(policy))
                .map_err(|e| e.to_string())?
                .with_forecast_bucket(r.options.forecast_bucket_s);
        let (score, _) =
            flexus_sim::frontier::eval_score(&r.history, &split, &r.flavor, &mut a, &r.options)
                .map_err(|e| e.to_string())?;
        Ok(measure(&(&score).into()))
    }

    /// The recommendation and `proposal` on the same window (blocking); failures become
    /// the reason.
    pub fn beside(&self, proposal: Option<&flexus_policy::Policy>) -> TunerAdvice {
        let (outcome, mut reason) = match self.run() {
            Ok(o) => (Some(o), None),
            Err(e) => (None, Some(format!("the tuner failed: {e}"))),
        };
        let model = match proposal.map(|p| self.measure(p)) {
            Some(Ok(m)) => Some(m),
            Some(Err(e)) => {
                if reason.is_none() {
                    reason = Some(format!("the model's proposal could not be replayed: {e}"));
                }
                None
            }
            None => None,
        };
        TunerAdvice {
            outcome,
            model,
            reason,
        }
    }
}

/// No recommendation, and why.
pub fn no_advice(reason: String) -> TunerAdvice {
    TunerAdvice {
        outcome: None,
        model: None,
        reason: Some(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::cost::replay::history;
    use crate::store::{UsageHour, UsageSample};

    /// `n` one-minute samples of `rps` on two ready instances.
    fn recorded(n: usize, rps: f64) -> Result<History, String> {
        let mut h = UsageHour::new("ns", "p", 0, "x1.2u.4g");
        h.samples = (0..n)
            .map(|i| UsageSample {
                at_ms: i as i64 * 60_000,
                load_rps: Some(rps),
                ready: 2,
                billed: 2,
                desired: Some(2),
                forecast_capacity: None,
            })
            .collect();
        history(&[h], 60, "ns/p")
    }

    fn setup(target: f64) -> Setup {
        let policy = flexus_policy::parse_json(&format!(
            r#"{{"strategy": "target_tracking", "bounds": {{"min": 1, "max": 8}},
                "metrics": [{{"name": "cpu", "kind": "cpu", "source": {{"type": "push"}}, "target": {target}}}]}}"#
        ))
        .unwrap();
        Setup {
            flavor: flexus_sim::capacity::lookup("x1.2u.4g").unwrap(),
            min: 1,
            max: 8,
            spot: flexus_policy::SpotMix::default(),
            policy: Some(policy),
            initial: None,
            spot_hazard_per_hour: 0.0,
        }
    }

    #[test]
    fn too_little_history_is_a_reason_the_advice_carries_not_silence() {
        // Fewer samples than a replay needs.
        let e = AdviceTune::new(&recorded(10, 30.0), Some(&setup(60.0))).unwrap_err();
        assert!(e.starts_with("too little history for the tuner"), "{e}");
        assert!(e.contains("10 samples"), "{e}");
        // Enough to replay the model's proposal (40 min), too little to tune and validate.
        let e = AdviceTune::new(&recorded(40, 30.0), Some(&setup(60.0))).unwrap_err();
        assert!(e.starts_with("too little history for the tuner"), "{e}");
        assert!(e.contains("40 minutes") && e.contains("45 needed"), "{e}");
        let t = no_advice(e.clone());
        assert!(t.outcome.is_none() && t.model.is_none());
        assert_eq!(t.reason, Some(e));
        // A pool without a policy has nothing to tune.
        let fixed = Setup {
            policy: None,
            ..setup(60.0)
        };
        let e = AdviceTune::new(&recorded(120, 30.0), Some(&fixed)).unwrap_err();
        assert!(e.contains("no policy"), "{e}");
    }

    #[test]
    fn the_recommendation_and_the_proposal_are_replayed_on_the_same_validation_window() {
        // Just under the SLO rate of one x1.2u.4g (34 of 50 req/s at most): one instance
        // serves it within the SLO, at 68 % CPU, so a 60 % target keeps two.
        let f = flexus_sim::capacity::lookup("x1.2u.4g").unwrap();
        assert!(
            f.rps_at_slo() > 34.0 && f.max_rps() == 50.0,
            "{}",
            f.rps_at_slo()
        );
        let t = AdviceTune::new(&recorded(180, 34.0), Some(&setup(60.0))).unwrap();
        let proposal = setup(69.0).policy.unwrap();
        let beside = t.beside(Some(&proposal));
        let o = beside.outcome.as_ref().expect("a recommendation");
        assert!(beside.reason.is_none(), "{beside:?}");
        assert!((o.validation_hours - 1.0).abs() < 0.05, "{o:?}");
        assert!((o.tune_hours - 2.0).abs() < 0.05, "{o:?}");
        // The pool's policy measured the way the proposal is equals the tuner's "before".
        let current = setup(60.0).policy.unwrap();
        assert_eq!(t.measure(&current).unwrap(), o.before);
        let model = beside.model.as_ref().expect("the proposal replayed");
        assert_eq!(model, &t.measure(&proposal).unwrap());
        assert!(o.before.instance_hours > 0.0 && model.instance_hours > 0.0);
        // Both find the idle instance: cheaper, no more violation.
        assert!(!o.changes.is_empty(), "{o:?}");
        assert!(o.after.cost < o.before.cost, "{o:?}");
        assert!(model.cost < o.before.cost, "{model:?} vs {:?}", o.before);
        assert!(
            o.after.violation_min <= o.before.violation_min + 1.0,
            "{o:?}"
        );
    }

    #[test]
    fn missing_buckets_are_interpolated_between_their_neighbours() {
        let y = [None, Some(10.0), None, None, Some(40.0), None];
        assert_eq!(fill_gaps(&y), vec![10.0, 10.0, 20.0, 30.0, 40.0, 40.0]);
    }
}
