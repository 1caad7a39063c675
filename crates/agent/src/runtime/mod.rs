//! The reconcile runtime: a scheduler that de-duplicates work per pool and a runner
//! that never reconciles one pool twice at once (kube-runtime's controller shape).
//!
//! - Every pool has at most one pending schedule entry (the earliest wins) and at most
//!   one pass in flight. A request that arrives while a pass runs is remembered and run
//!   right after it.
//! - At most `concurrency` passes run at once.
//! - A pass returns when it wants to run next (the policy's evaluation interval); a
//!   failed pass is retried with per-pool exponential backoff (with jitter), reset by
//!   the next success.
//! - Shutdown stops intake, lets in-flight passes finish, and returns.
//!
//! The pass itself is in [`reconcile`]; metric sources in [`sources`]; the forecaster
//! feed (bucketed history, refits) in [`predict`].

pub mod holds;
pub mod predict;
pub mod reconcile;
pub mod runner;
pub mod scheduler;
pub mod sources;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use runner::{Panicked, Runner};
use scheduler::{Backoff, Finished, Scheduler};

pub use reconcile::{Context, PassError};

/// Identity of a pool: namespace and name.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PoolKey {
    pub ns: Arc<str>,
    pub name: Arc<str>,
}

impl PoolKey {
    pub fn new(ns: &str, name: &str) -> Self {
        Self {
            ns: ns.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for PoolKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ns, self.name)
    }
}

impl fmt::Debug for PoolKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ns, self.name)
    }
}

#[derive(Debug)]
enum Msg {
    /// The pool's spec or policy changed: reconcile soon.
    Changed(PoolKey),
    /// Reconcile now (API).
    Now(PoolKey),
}

/// A cheap handle for asking the runtime to reconcile a pool, and for the rules it
/// holds policies to.
#[derive(Debug, Clone)]
pub struct Handle {
    tx: mpsc::UnboundedSender<Msg>,
    min_evaluation_interval: Duration,
}

impl Handle {
    /// A handle and the receiving end the runtime consumes (with the default minimum
    /// evaluation interval).
    pub fn channel() -> (Self, Inbox) {
        let (tx, rx) = mpsc::unbounded_channel();
        let min = crate::config::ReconcileConfig::default().min_evaluation_interval;
        (
            Self {
                tx,
                min_evaluation_interval: min,
            },
            Inbox { rx },
        )
    }

    /// The handle of a runtime that runs no policy more often than every `min`.
    pub fn with_min_evaluation_interval(mut self, min: Duration) -> Self {
        self.min_evaluation_interval = min;
        self
    }

    /// The shortest evaluation interval the runtime runs a policy at (shorter stored
    /// ones are raised to it; the API refuses shorter new ones).
    pub fn min_evaluation_interval(&self) -> Duration {
        self.min_evaluation_interval
    }

    /// The spec or policy of a pool changed.
    pub fn notify(&self, key: PoolKey) {
        let _ = self.tx.send(Msg::Changed(key));
    }

    /// Ask for a pass now. `None` when the runtime is not running.
    pub fn reconcile_now(&self, key: PoolKey) -> Option<bool> {
        self.tx.send(Msg::Now(key)).ok().map(|_| true)
    }
}

/// The runtime's end of a [`Handle`].
#[derive(Debug)]
pub struct Inbox {
    rx: mpsc::UnboundedReceiver<Msg>,
}

/// What a pass reports to the scheduler.
#[derive(Debug)]
pub enum Next {
    /// Run again after this much clock time.
    After(Duration),
    /// The pool is gone: forget it.
    Forget,
}

/// What the loop needs from whoever reconciles (the agent's [`Context`]; tests use
/// scripted ones).
#[async_trait::async_trait]
pub trait Reconcile: Send + Sync + 'static {
    /// Before the first pass: start-up recovery; returns every pool to schedule.
    async fn start(&self) -> Vec<PoolKey>;
    /// One pass over one pool.
    async fn reconcile(&self, key: &PoolKey) -> Result<Next, PassError>;
    /// The real wait for `d` of clock time.
    fn real(&self, d: Duration) -> Duration {
        d
    }
    /// Something the loop reports (logs and metrics).
    fn report(&self, event: Event<'_>);
}

/// What the loop reports.
#[derive(Debug)]
pub enum Event<'a> {
    /// How many pools the runtime knows.
    Pools(usize),
    /// A pass failed; it runs again after `retry_in`.
    Failed {
        key: &'a PoolKey,
        error: &'a PassError,
        failures: u32,
        retry_in: Duration,
    },
    /// A pass panicked; it runs again after `retry_in`.
    Panicked {
        key: &'a PoolKey,
        panic: &'a Panicked,
        failures: u32,
        retry_in: Duration,
    },
}

/// Settings of the loop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Passes at once.
    pub concurrency: usize,
    /// The known pools' first passes are spread over this (real time).
    pub spread: Duration,
    /// Retry waits after failures.
    pub backoff: Backoff,
}

/// Scheduler + runner over a [`Context`].
#[derive(Debug)]
pub struct Runtime {
    ctx: Arc<Context>,
    inbox: Inbox,
}

impl Runtime {
    pub fn new(ctx: Arc<Context>, inbox: Inbox) -> Self {
        Self { ctx, inbox }
    }

    /// Recover (finish half-done operations), then schedule every pool and run until
    /// `shutdown` is cancelled; in-flight passes finish before this returns.
    pub async fn run(self, shutdown: CancellationToken) {
        let c = &self.ctx.config;
        let settings = Settings {
            concurrency: c.concurrency,
            spread: self.ctx.real(c.default_interval),
            backoff: Backoff {
                base: Duration::from_millis(500),
                max: c.max_backoff,
            },
        };
        drive(self.ctx, self.inbox, settings, shutdown).await;
    }
}

/// The loop: dispatch due pools while there is room, then wait for a pass to end, a
/// request, the next due time or shutdown.
pub async fn drive<R: Reconcile>(
    r: Arc<R>,
    mut inbox: Inbox,
    settings: Settings,
    shutdown: CancellationToken,
) {
    let mut sched = Scheduler::new(settings.backoff);
    let mut runner: Runner<Result<Next, PassError>> = Runner::new(settings.concurrency);
    let pools = r.start().await;
    sched.spread(pools, Instant::now(), settings.spread);
    r.report(Event::Pools(sched.len()));
    loop {
        let now = Instant::now();
        while runner.has_room()
            && let Some(key) = sched.pop_due(now)
        {
            let r = r.clone();
            runner.start(key.clone(), async move { r.reconcile(&key).await });
        }
        let wake = sched.next_due().filter(|_| runner.has_room());
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some((key, out)) = runner.next(), if !runner.is_empty() => {
                finished(r.as_ref(), &mut sched, &key, out);
            }
            Some(msg) = inbox.rx.recv() => {
                let (Msg::Changed(key) | Msg::Now(key)) = msg;
                sched.schedule(key, Instant::now());
                r.report(Event::Pools(sched.len()));
            }
            _ = sleep_until(wake) => {}
        }
    }
    tracing::info!(
        in_flight = runner.len(),
        "runtime stopping: finishing in-flight passes"
    );
    runner.drain().await;
}

/// Sleeps until `at`, or forever.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending::<()>().await,
    }
}

/// A pass of `key` ended: tell the scheduler, report failures.
fn finished<R: Reconcile>(
    r: &R,
    sched: &mut Scheduler,
    key: &PoolKey,
    out: Result<Result<Next, PassError>, Panicked>,
) {
    let how = match &out {
        Ok(Ok(Next::After(d))) => Finished::After(r.real(*d)),
        Ok(Ok(Next::Forget)) => Finished::Forget,
        Ok(Err(_)) | Err(_) => Finished::Failed,
    };
    let retry = sched.finished(key, how, Instant::now());
    match (out, retry) {
        (Ok(Ok(Next::Forget)), _) => r.report(Event::Pools(sched.len())),
        (Ok(Err(error)), Some((failures, retry_in))) => r.report(Event::Failed {
            key,
            error: &error,
            failures,
            retry_in,
        }),
        (Err(panic), Some((failures, retry_in))) => r.report(Event::Panicked {
            key,
            panic: &panic,
            failures,
            retry_in,
        }),
        _ => {}
    }
}

#[cfg(test)]
mod tests;
