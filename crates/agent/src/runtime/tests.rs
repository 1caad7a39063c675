//! The loop under tokio's paused time, with scripted passes (no sleeping: the clock
//! jumps to the next timer whenever every task waits).

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// What a scripted pass does.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Take this long, then ask to run again after `again`.
    Ok { takes: Duration, again: Duration },
    /// Take this long, then fail.
    Fail { takes: Duration },
    /// Panic at once.
    Panic,
    /// The pool is gone.
    Forget,
}

impl Step {
    /// Succeed at once, then ask to run again after `again`.
    fn ok_at_once(again: Duration) -> Self {
        Step::Ok {
            takes: Duration::ZERO,
            again,
        }
    }
}

#[derive(Debug)]
struct Script {
    pools: Vec<PoolKey>,
    /// The pass number (0-based, per pool) → what it does.
    step: fn(&PoolKey, usize) -> Step,
    /// (pool, start) of every pass, in start order.
    starts: Mutex<Vec<(PoolKey, Instant)>>,
    running: Mutex<HashSet<PoolKey>>,
    /// A pool's pass started while another of its passes ran.
    overlaps: AtomicUsize,
    concurrent: AtomicUsize,
    max_concurrent: AtomicUsize,
    reports: Mutex<Vec<String>>,
}

impl Script {
    fn new(pools: &[&str], step: fn(&PoolKey, usize) -> Step) -> Arc<Self> {
        Arc::new(Self {
            pools: pools.iter().map(|p| PoolKey::new("ns", p)).collect(),
            step,
            starts: Mutex::new(Vec::new()),
            running: Mutex::new(HashSet::new()),
            overlaps: AtomicUsize::new(0),
            concurrent: AtomicUsize::new(0),
            max_concurrent: AtomicUsize::new(0),
            reports: Mutex::new(Vec::new()),
        })
    }

    /// Start times of `pool`'s passes, relative to `t0`.
    fn starts_of(&self, pool: &str, t0: Instant) -> Vec<Duration> {
        self.starts
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| &*k.name == pool)
            .map(|(_, at)| *at - t0)
            .collect()
    }
}

#[async_trait::async_trait]
impl Reconcile for Script {
    async fn start(&self) -> Vec<PoolKey> {
        self.pools.clone()
    }

    #[allow(clippy::panic)]
    async fn reconcile(&self, key: &PoolKey) -> Result<Next, PassError> {
        let n = {
            let mut starts = self.starts.lock().unwrap();
            starts.push((key.clone(), Instant::now()));
            starts.iter().filter(|(k, _)| k == key).count() - 1
        };
        if !self.running.lock().unwrap().insert(key.clone()) {
            self.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        let now = self.concurrent.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_concurrent.fetch_max(now, Ordering::SeqCst);
        let step = (self.step)(key, n);
        let out = match step {
            Step::Panic => {
                self.running.lock().unwrap().remove(key);
                self.concurrent.fetch_sub(1, Ordering::SeqCst);
                panic!("scripted panic in pass {n} of {key}");
            }
            Step::Forget => Ok(Next::Forget),
            Step::Ok { takes, again } => {
                tokio::time::sleep(takes).await;
                Ok(Next::After(again))
            }
            Step::Fail { takes } => {
                tokio::time::sleep(takes).await;
                Err(PassError::BadSpec {
                    what: "spec",
                    pool: key.to_string(),
                    reason: "scripted failure".into(),
                })
            }
        };
        self.running.lock().unwrap().remove(key);
        self.concurrent.fetch_sub(1, Ordering::SeqCst);
        out
    }

    fn report(&self, event: Event<'_>) {
        let line = match event {
            Event::Pools(n) => format!("pools {n}"),
            Event::Failed { key, failures, .. } => format!("failed {key} {failures}"),
            Event::Panicked {
                key,
                panic,
                failures,
                ..
            } => format!("panicked {key} {failures}: {}", panic.message),
        };
        self.reports.lock().unwrap().push(line);
    }
}

const S: Duration = Duration::from_secs(1);

fn settings(concurrency: usize) -> Settings {
    Settings {
        concurrency,
        spread: Duration::ZERO,
        backoff: Backoff {
            base: Duration::from_millis(500),
            max: Duration::from_secs(60),
        },
    }
}

/// Runs the loop over `script` for `for_` of (paused) time, then shuts it down.
async fn run_for(script: &Arc<Script>, settings: Settings, for_: Duration) -> (Handle, Instant) {
    let (handle, inbox) = Handle::channel();
    let stop = CancellationToken::new();
    let t0 = Instant::now();
    let task = tokio::spawn(drive(script.clone(), inbox, settings, stop.clone()));
    tokio::time::sleep(for_).await;
    stop.cancel();
    task.await.unwrap();
    (handle, t0)
}

#[tokio::test(start_paused = true)]
async fn a_panicking_pass_is_retried_after_a_backoff_and_the_pool_keeps_its_interval() {
    let script = Script::new(&["boom"], |_, n| match n {
        0 => Step::Panic,
        _ => Step::ok_at_once(10 * S),
    });
    let (_, t0) = run_for(&script, settings(4), 25 * S).await;
    let starts = script.starts_of("boom", t0);
    assert_eq!(starts.len(), 4, "{starts:?}");
    // The first failure waits 0.5 s · 2 with jitter in [½, 1].
    assert!(starts[1] >= S / 2 && starts[1] <= S, "{starts:?}");
    assert_eq!(starts[2] - starts[1], 10 * S);
    assert_eq!(starts[3] - starts[2], 10 * S);
    let reports = script.reports.lock().unwrap().clone();
    assert!(
        reports.contains(&"panicked ns/boom 1: scripted panic in pass 0 of ns/boom".to_owned()),
        "{reports:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn failures_back_off_exponentially_and_a_success_resets_the_count() {
    let script = Script::new(&["flaky"], |_, n| match n {
        0..=2 => Step::Fail {
            takes: Duration::ZERO,
        },
        _ => Step::ok_at_once(30 * S),
    });
    let (_, t0) = run_for(&script, settings(4), 20 * S).await;
    let starts = script.starts_of("flaky", t0);
    assert_eq!(starts.len(), 4, "{starts:?}");
    let waits: Vec<Duration> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    for (i, w) in waits.iter().enumerate() {
        let full = Duration::from_millis(500 << (i + 1));
        assert!(*w >= full / 2 && *w <= full, "wait {i}: {w:?} of {full:?}");
    }
    let reports = script.reports.lock().unwrap().clone();
    let failed: Vec<&String> = reports.iter().filter(|r| r.starts_with("failed")).collect();
    assert_eq!(
        failed,
        vec![
            "failed ns/flaky 1",
            "failed ns/flaky 2",
            "failed ns/flaky 3"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_pool_never_runs_twice_at_once_and_requests_during_a_pass_run_it_once_more() {
    let script = Script::new(&["slow"], |_, _| Step::Ok {
        takes: 5 * S,
        again: 60 * S,
    });
    let (handle, inbox) = Handle::channel();
    let stop = CancellationToken::new();
    let t0 = Instant::now();
    let task = tokio::spawn(drive(script.clone(), inbox, settings(4), stop.clone()));
    tokio::time::sleep(S).await;
    for _ in 0..3 {
        handle.reconcile_now(PoolKey::new("ns", "slow"));
        handle.notify(PoolKey::new("ns", "slow"));
    }
    tokio::time::sleep(20 * S).await;
    stop.cancel();
    task.await.unwrap();
    assert_eq!(
        script.starts_of("slow", t0),
        vec![Duration::ZERO, 5 * S],
        "six requests during the first pass make one more pass, right after it"
    );
    assert_eq!(script.overlaps.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn no_more_than_concurrency_passes_run_at_once() {
    let names: Vec<String> = (0..10).map(|i| format!("p{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let script = Script::new(&refs, |_, _| Step::Ok {
        takes: S,
        again: 60 * S,
    });
    let (_, t0) = run_for(&script, settings(3), 10 * S).await;
    assert_eq!(script.max_concurrent.load(Ordering::SeqCst), 3);
    let last = script
        .starts
        .lock()
        .unwrap()
        .iter()
        .map(|(_, at)| *at - t0)
        .max()
        .unwrap();
    assert_eq!(script.starts.lock().unwrap().len(), 10);
    assert_eq!(last, 3 * S, "ten one-second passes, three at a time");
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_intake_and_waits_for_passes_in_flight() {
    let script = Script::new(&["a"], |_, _| Step::Ok {
        takes: 5 * S,
        again: S,
    });
    let (handle, inbox) = Handle::channel();
    let stop = CancellationToken::new();
    let t0 = Instant::now();
    let task = tokio::spawn(drive(script.clone(), inbox, settings(4), stop.clone()));
    tokio::time::sleep(S).await;
    stop.cancel();
    handle.reconcile_now(PoolKey::new("ns", "a"));
    task.await.unwrap();
    assert_eq!(Instant::now() - t0, 5 * S, "returned when the pass ended");
    assert_eq!(script.starts_of("a", t0).len(), 1, "nothing started after");
    assert_eq!(script.concurrent.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn a_forgotten_pool_runs_again_only_when_asked() {
    let script = Script::new(&["gone"], |_, _| Step::Forget);
    let (handle, inbox) = Handle::channel();
    let stop = CancellationToken::new();
    let t0 = Instant::now();
    let task = tokio::spawn(drive(script.clone(), inbox, settings(4), stop.clone()));
    tokio::time::sleep(10 * S).await;
    assert_eq!(script.starts_of("gone", t0), vec![Duration::ZERO]);
    handle.notify(PoolKey::new("ns", "gone"));
    tokio::time::sleep(10 * S).await;
    stop.cancel();
    task.await.unwrap();
    assert_eq!(script.starts_of("gone", t0), vec![Duration::ZERO, 10 * S]);
    let reports = script.reports.lock().unwrap().clone();
    assert_eq!(reports, vec!["pools 1", "pools 0", "pools 1", "pools 0"]);
}
