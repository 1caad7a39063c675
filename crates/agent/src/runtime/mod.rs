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
pub mod sources;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

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

/// A cheap handle for asking the runtime to reconcile a pool.
#[derive(Debug, Clone)]
pub struct Handle {
    tx: mpsc::UnboundedSender<Msg>,
}

impl Handle {
    /// A handle and the receiving end the runtime consumes.
    pub fn channel() -> (Self, Inbox) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { tx }, Inbox { rx })
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

#[derive(Debug, Default)]
struct PoolSched {
    /// When the pool is due (None: not scheduled).
    due: Option<Instant>,
    running: bool,
    /// When the running pass started (its next run is due one interval after that).
    started: Option<Instant>,
    /// A request arrived while running.
    again: bool,
    failures: u32,
}

/// The text of a panic payload (`panic!` with a literal or a formatted message).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
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

    fn backoff(&self, failures: u32) -> Duration {
        let base = Duration::from_millis(500);
        let max = self.ctx.config.max_backoff;
        let exp = base.saturating_mul(1u32 << failures.min(16));
        let d = exp.min(max);
        // Full jitter in [d/2, d].
        let jitter = rand::random::<f64>() * 0.5 + 0.5;
        d.mul_f64(jitter)
    }

    /// Recover (finish half-done operations), then schedule every pool and run until
    /// `shutdown` is cancelled; in-flight passes finish before this returns.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let ctx = self.ctx.clone();
        if let Err(e) = ctx.recover().await {
            tracing::error!(error = %e, "start-up recovery failed; pools will retry in their passes");
        }
        ctx.ready.store(true, std::sync::atomic::Ordering::SeqCst);

        let mut pools: HashMap<PoolKey, PoolSched> = HashMap::new();
        let mut heap: BinaryHeap<Reverse<(Instant, u64, PoolKey)>> = BinaryHeap::new();
        let mut seq: u64 = 0;
        let mut tasks: JoinSet<(PoolKey, Result<Next, PassError>)> = JoinSet::new();
        let concurrency = ctx.config.concurrency.max(1);

        let schedule = |pools: &mut HashMap<PoolKey, PoolSched>,
                        heap: &mut BinaryHeap<Reverse<(Instant, u64, PoolKey)>>,
                        seq: &mut u64,
                        key: PoolKey,
                        at: Instant| {
            let st = pools.entry(key.clone()).or_default();
            if st.running {
                st.again = true;
                return;
            }
            if st.due.is_some_and(|d| d <= at) {
                return; // an earlier run is already scheduled
            }
            st.due = Some(at);
            *seq += 1;
            heap.push(Reverse((at, *seq, key)));
        };

        // Initial schedule: spread the pools over one default interval.
        match ctx.store.list_pools(None).await {
            Ok(docs) => {
                let n = docs.len().max(1) as u32;
                let spread = ctx.real(ctx.config.default_interval);
                let start = Instant::now();
                for (i, d) in docs.iter().enumerate() {
                    let at = start + spread.mul_f64(i as f64 / n as f64);
                    schedule(
                        &mut pools,
                        &mut heap,
                        &mut seq,
                        PoolKey::new(&d.namespace, &d.name),
                        at,
                    );
                }
                ctx.telemetry.pools.set(docs.len() as i64);
            }
            Err(e) => tracing::error!(error = %e, "cannot list pools at start"),
        }

        loop {
            // Dispatch every due pool while there is room.
            let now = Instant::now();
            while tasks.len() < concurrency {
                let Some(Reverse((at, _, key))) = heap.peek().cloned() else {
                    break;
                };
                if at > now {
                    break;
                }
                heap.pop();
                let Some(st) = pools.get_mut(&key) else {
                    continue;
                };
                if st.due != Some(at) || st.running {
                    continue; // stale entry
                }
                st.due = None;
                st.running = true;
                st.started = Some(Instant::now());
                let c = ctx.clone();
                tasks.spawn(async move {
                    use futures::FutureExt as _;
                    // A panicking pass must not lose its pool: catch it here, where the
                    // key is still known, and treat it as a failed pass.
                    let r = std::panic::AssertUnwindSafe(c.reconcile(&key))
                        .catch_unwind()
                        .await
                        .unwrap_or_else(|payload| {
                            c.telemetry.panic(&key.ns);
                            Err(PassError::Panicked {
                                pool: key.to_string(),
                                message: panic_message(payload.as_ref()),
                            })
                        });
                    (key, r)
                });
            }
            let next_due = heap.peek().map(|Reverse((at, _, _))| *at);
            let has_room = tasks.len() < concurrency;
            let sleep = async move {
                match next_due {
                    Some(at) if has_room => tokio::time::sleep_until(at).await,
                    _ => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    let Ok((key, result)) = done else { continue };
                    let Some(st) = pools.get_mut(&key) else { continue };
                    st.running = false;
                    let at = match result {
                        Ok(Next::Forget) => {
                            pools.remove(&key);
                            ctx.telemetry.pools.set(pools.len() as i64);
                            continue;
                        }
                        Ok(Next::After(d)) => {
                            st.failures = 0;
                            // Evaluate every interval, measured from the start of the pass.
                            let from = st.started.unwrap_or_else(Instant::now);
                            (from + ctx.real(d)).max(Instant::now())
                        }
                        Err(e) => {
                            st.failures = st.failures.saturating_add(1);
                            let failures = st.failures;
                            ctx.telemetry.error(e.kind());
                            let wait = self.backoff(failures);
                            if matches!(e, PassError::Panicked { .. }) {
                                tracing::error!(pool = %key, error = %e, failures, retry_in = ?wait, "reconcile pass panicked");
                            } else {
                                tracing::warn!(pool = %key, error = %e, failures, retry_in = ?wait, "reconcile pass failed");
                            }
                            Instant::now() + wait
                        }
                    };
                    let again = std::mem::take(&mut st.again);
                    let at = if again { Instant::now() } else { at };
                    schedule(&mut pools, &mut heap, &mut seq, key, at);
                }
                Some(msg) = self.inbox.rx.recv() => {
                    let key = match msg { Msg::Changed(k) | Msg::Now(k) => k };
                    schedule(&mut pools, &mut heap, &mut seq, key, Instant::now());
                    ctx.telemetry.pools.set(pools.len() as i64);
                }
                _ = sleep => {}
            }
        }
        // Stop intake; let in-flight passes finish.
        tracing::info!(
            in_flight = tasks.len(),
            "runtime stopping: finishing in-flight passes"
        );
        while tasks.join_next().await.is_some() {}
    }
}
