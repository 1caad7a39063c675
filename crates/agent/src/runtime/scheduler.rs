//! The scheduler: when each pool runs next.
//!
//! - One due time per pool: a request for an earlier time replaces a later one, a
//!   request for a later time is dropped (the earliest wins).
//! - A pool handed out by [`Scheduler::pop_due`] is *running* until
//!   [`Scheduler::finished`]; a request that arrives meanwhile is remembered and the
//!   pool is due again the moment its pass ends (never two passes of one pool at once).
//! - A successful pass asks for its next run measured from the start of the pass; a
//!   failed one is retried after `min(max, base · 2^failures)` with jitter in `[½, 1]`
//!   (`failures` counts this one);
//!   the next success resets the count.
//!
//! It owns no task and reads no clock: every method takes `now`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use super::PoolKey;

/// Exponential backoff with jitter, a pure function of the failures in a row and a
/// jitter draw: the scheduler keeps one count per pool and draws from its own (seedable)
/// random source. (The cloud and advisor clients retry one call in a loop, which is
/// what `backon` is for; a pool's backoff spans passes and is reset by the next success.)
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Doubled per failure in a row: the first failure waits `2 · base` (before jitter).
    pub base: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Backoff {
    /// The wait after `failures` failures in a row, for a jitter draw `unit` in [0, 1).
    pub fn delay(&self, failures: u32, unit: f64) -> Duration {
        let exp = self.base.saturating_mul(1u32 << failures.min(16));
        exp.min(self.max).mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
    }
}

/// How a pass ended, as the scheduler needs to know it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Finished {
    /// Run again this long (real time) after the pass started.
    After(Duration),
    /// The pool is gone.
    Forget,
    /// The pass failed (an error or a panic): back off.
    Failed,
}

#[derive(Debug, Default)]
struct Entry {
    /// When the pool is due (`None`: not scheduled).
    due: Option<Instant>,
    /// When the running pass started (`None`: not running).
    running: Option<Instant>,
    /// A request arrived while the pass ran.
    again: bool,
    /// Failed passes in a row.
    failures: u32,
}

/// Due times of every pool.
#[derive(Debug)]
pub struct Scheduler {
    pools: HashMap<PoolKey, Entry>,
    heap: BinaryHeap<Reverse<(Instant, u64, PoolKey)>>,
    seq: u64,
    backoff: Backoff,
    rng: StdRng,
}

impl Scheduler {
    pub fn new(backoff: Backoff) -> Self {
        Self::with_rng(backoff, StdRng::from_os_rng())
    }

    /// A scheduler whose jitter comes from `rng` (tests seed it).
    pub fn with_rng(backoff: Backoff, rng: StdRng) -> Self {
        Self {
            pools: HashMap::new(),
            heap: BinaryHeap::new(),
            seq: 0,
            backoff,
            rng,
        }
    }

    /// Pools known (scheduled, running or waiting).
    pub fn len(&self) -> usize {
        self.pools.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pools.is_empty()
    }

    /// Ask for a pass of `key` at `at` (the earliest request wins; while the pool
    /// runs, it runs once more right after).
    pub fn schedule(&mut self, key: PoolKey, at: Instant) {
        let e = self.pools.entry(key.clone()).or_default();
        if e.running.is_some() {
            e.again = true;
            return;
        }
        if e.due.is_some_and(|d| d <= at) {
            return;
        }
        e.due = Some(at);
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq, key)));
    }

    /// Schedule `keys` spread evenly over `over`, starting at `start`.
    pub fn spread(&mut self, keys: Vec<PoolKey>, start: Instant, over: Duration) {
        let n = keys.len().max(1) as f64;
        for (i, key) in keys.into_iter().enumerate() {
            self.schedule(key, start + over.mul_f64(i as f64 / n));
        }
    }

    /// The earliest pool due at `now`, now marked running.
    pub fn pop_due(&mut self, now: Instant) -> Option<PoolKey> {
        while let Some(Reverse((at, _, _))) = self.heap.peek() {
            if *at > now {
                return None;
            }
            let Reverse((at, _, key)) = self.heap.pop()?;
            let Some(e) = self.pools.get_mut(&key) else {
                continue; // forgotten
            };
            if e.due != Some(at) || e.running.is_some() {
                continue; // replaced by an earlier request
            }
            e.due = None;
            e.running = Some(now);
            return Some(key);
        }
        None
    }

    /// When the earliest pool is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// A pass of `key` ended at `now`. Returns the failures in a row and the wait
    /// before the retry when it failed.
    pub fn finished(
        &mut self,
        key: &PoolKey,
        how: Finished,
        now: Instant,
    ) -> Option<(u32, Duration)> {
        let e = self.pools.get_mut(key)?;
        let started = e.running.take().unwrap_or(now);
        let again = std::mem::take(&mut e.again);
        let (at, failed) = match how {
            Finished::Forget => {
                self.pools.remove(key);
                return None;
            }
            Finished::After(d) => {
                e.failures = 0;
                ((started + d).max(now), None)
            }
            Finished::Failed => {
                e.failures = e.failures.saturating_add(1);
                let wait = self.backoff.delay(e.failures, self.rng.random::<f64>());
                (now + wait, Some((e.failures, wait)))
            }
        };
        self.schedule(key.clone(), if again { now } else { at });
        failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched() -> Scheduler {
        Scheduler::with_rng(
            Backoff {
                base: Duration::from_millis(500),
                max: Duration::from_secs(8),
            },
            StdRng::seed_from_u64(7),
        )
    }

    fn k(name: &str) -> PoolKey {
        PoolKey::new("ns", name)
    }

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn the_earliest_request_wins_and_each_pool_is_handed_out_once() {
        let t0 = Instant::now();
        let mut s = sched();
        s.schedule(k("a"), t0 + 5 * S);
        s.schedule(k("a"), t0 + 2 * S);
        s.schedule(k("a"), t0 + 9 * S);
        s.schedule(k("b"), t0 + 3 * S);
        assert_eq!(s.pop_due(t0 + S), None, "nothing due yet");
        assert_eq!(s.next_due(), Some(t0 + 2 * S));
        assert_eq!(s.pop_due(t0 + 10 * S), Some(k("a")));
        assert_eq!(s.pop_due(t0 + 10 * S), Some(k("b")));
        assert_eq!(s.pop_due(t0 + 10 * S), None, "a's later entries are stale");
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn a_request_during_a_pass_runs_the_pool_once_more_right_after() {
        let t0 = Instant::now();
        let mut s = sched();
        s.schedule(k("a"), t0);
        assert_eq!(s.pop_due(t0), Some(k("a")));
        s.schedule(k("a"), t0 + S);
        s.schedule(k("a"), t0 + S);
        assert_eq!(s.pop_due(t0 + S), None, "never twice at once");
        s.finished(&k("a"), Finished::After(10 * S), t0 + 2 * S);
        assert_eq!(s.pop_due(t0 + 2 * S), Some(k("a")), "due at once");
        s.finished(&k("a"), Finished::After(10 * S), t0 + 3 * S);
        assert_eq!(s.pop_due(t0 + 3 * S), None, "the two requests ran once");
        assert_eq!(s.next_due(), Some(t0 + 12 * S), "from the pass's start");
    }

    #[test]
    fn failures_back_off_exponentially_with_jitter_up_to_the_cap_and_a_success_resets() {
        let t0 = Instant::now();
        let mut s = sched();
        s.schedule(k("a"), t0);
        let mut now = t0;
        let mut waits = Vec::new();
        for _ in 0..6 {
            assert_eq!(s.pop_due(now), Some(k("a")));
            let (failures, wait) = s.finished(&k("a"), Finished::Failed, now).unwrap();
            waits.push((failures, wait));
            assert_eq!(s.next_due(), Some(now + wait));
            now += wait;
        }
        for (failures, wait) in &waits {
            let full = Duration::from_millis(500 * (1 << failures)).min(8 * S);
            assert!(
                *wait >= full / 2 && *wait <= full,
                "{failures}: {wait:?} not in [{:?}, {full:?}]",
                full / 2
            );
        }
        assert_eq!(s.pop_due(now), Some(k("a")));
        assert_eq!(s.finished(&k("a"), Finished::After(S), now), None);
        assert_eq!(s.pop_due(now + S), Some(k("a")));
        let (failures, _) = s.finished(&k("a"), Finished::Failed, now + S).unwrap();
        assert_eq!(failures, 1, "the success reset the count");
    }

    #[test]
    fn a_forgotten_pool_is_dropped_with_its_entries() {
        let t0 = Instant::now();
        let mut s = sched();
        s.schedule(k("a"), t0);
        assert_eq!(s.pop_due(t0), Some(k("a")));
        s.finished(&k("a"), Finished::Forget, t0);
        assert!(s.is_empty());
        assert_eq!(s.pop_due(t0 + 100 * S), None);
    }

    #[test]
    fn spread_schedules_pools_evenly_over_one_interval() {
        let t0 = Instant::now();
        let mut s = sched();
        s.spread(vec![k("a"), k("b"), k("c"), k("d")], t0, 8 * S);
        let mut due = Vec::new();
        while let Some(at) = s.next_due() {
            due.push(at - t0);
            s.pop_due(at);
        }
        assert_eq!(due, vec![Duration::ZERO, 2 * S, 4 * S, 6 * S]);
    }
}
