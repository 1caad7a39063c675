//! Client-side rate limits: a small async token bucket, and the account's budget
//! shared fairly among the tenants that call through it.
//!
//! Huawei throttles per account (AK) and API. One [`AccountLimits`] holds the
//! account's two buckets (reads = GET, writes = everything else); every client of the
//! account made with [`crate::Cloud::for_tenant`] draws on them through its tenant's
//! fair share ([`FairLimiter`]): a tenant with many callers cannot starve one with few.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// Token bucket: `rate` tokens per second, at most `burst` stored.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    /// A full bucket. `rate <= 0` means unlimited.
    pub fn new(rate: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            rate,
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Waits until a token is available and takes it.
    pub async fn acquire(&self) {
        if self.rate <= 0.0 {
            return;
        }
        let wait = {
            let mut st = self.state.lock().await;
            let now = Instant::now();
            let elapsed = now.saturating_duration_since(st.1).as_secs_f64();
            st.0 = (st.0 + elapsed * self.rate).min(self.burst);
            st.1 = now;
            st.0 -= 1.0;
            if st.0 >= 0.0 {
                Duration::ZERO
            } else {
                // Reserve the token now; the debt is paid by waiting.
                Duration::from_secs_f64(-st.0 / self.rate)
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// One bucket shared fairly among tenants.
///
/// Each tenant may have at most one call waiting on the bucket at a time; its other
/// calls queue behind that one on the tenant's own gate (a FIFO lock). The bucket
/// reserves tokens in the order calls reach it, so with `n` tenants waiting each gets
/// one call in `n` (round-robin fair queueing): a call of a tenant waits at most `n`
/// token intervals, however many calls the other tenants have queued. A tenant alone
/// gets the whole rate.
#[derive(Debug)]
pub struct FairLimiter {
    bucket: TokenBucket,
    gates: std::sync::Mutex<HashMap<Arc<str>, Arc<Mutex<()>>>>,
}

impl FairLimiter {
    /// `rate` calls per second (`<= 0`: unlimited), `burst` at most in a burst.
    pub fn new(rate: f64, burst: u32) -> Self {
        Self {
            bucket: TokenBucket::new(rate, burst),
            gates: std::sync::Mutex::new(HashMap::new()),
        }
    }

    fn gate(&self, tenant: &str) -> Arc<Mutex<()>> {
        let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        match gates.get(tenant) {
            Some(g) => g.clone(),
            None => {
                let g = Arc::new(Mutex::new(()));
                gates.insert(Arc::from(tenant), g.clone());
                g
            }
        }
    }

    /// Waits for `tenant`'s turn and a token, and takes it.
    pub async fn acquire(&self, tenant: &str) {
        if self.bucket.rate <= 0.0 {
            return;
        }
        let gate = self.gate(tenant);
        let _turn = gate.lock().await;
        self.bucket.acquire().await;
    }
}

/// An account's call budget: reads and writes, each shared fairly among tenants.
#[derive(Debug)]
pub struct AccountLimits {
    pub reads: FairLimiter,
    pub writes: FairLimiter,
}

impl AccountLimits {
    pub fn new(limits: &crate::RateLimits) -> Self {
        Self {
            reads: FairLimiter::new(limits.reads_per_second, limits.burst),
            writes: FairLimiter::new(limits.writes_per_second, limits.burst),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits of a modest tenant (one call every `every`) while a greedy one keeps
    /// `greedy` calls queued, over `calls` calls.
    async fn modest_waits(limiter: Arc<FairLimiter>, greedy: usize, calls: usize) -> Vec<Duration> {
        for _ in 0..greedy {
            let l = limiter.clone();
            tokio::spawn(async move {
                loop {
                    l.acquire("greedy").await;
                }
            });
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut waits = Vec::new();
        for _ in 0..calls {
            let start = Instant::now();
            limiter.acquire("modest").await;
            waits.push(start.elapsed());
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        waits
    }

    #[tokio::test(start_paused = true)]
    async fn a_greedy_tenant_cannot_starve_a_modest_one() {
        let limiter = Arc::new(FairLimiter::new(10.0, 1));
        let waits = modest_waits(limiter, 50, 10).await;
        // Two tenants waiting: the modest call waits for at most two tokens (0.2 s),
        // not behind the greedy tenant's fifty.
        for w in &waits {
            assert!(*w <= Duration::from_millis(200), "{waits:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn callers_of_one_tenant_wait_in_order_behind_each_other() {
        // The same load within one tenant: the last call queues behind the fifty
        // (what separate tenants are protected from).
        let limiter = Arc::new(FairLimiter::new(10.0, 1));
        for _ in 0..50 {
            let l = limiter.clone();
            tokio::spawn(async move {
                loop {
                    l.acquire("shared").await;
                }
            });
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let start = Instant::now();
        limiter.acquire("shared").await;
        assert!(
            start.elapsed() >= Duration::from_secs(4),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_tenant_alone_gets_the_whole_rate() {
        let limiter = FairLimiter::new(10.0, 1);
        let start = Instant::now();
        for _ in 0..21 {
            limiter.acquire("only").await;
        }
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    /// Takes `n` tokens from `b`, one after the other.
    async fn acquire_n(b: &TokenBucket, n: usize) {
        for _ in 0..n {
            b.acquire().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn bucket_allows_a_burst_then_paces_at_the_rate() {
        let b = TokenBucket::new(10.0, 3);
        let start = Instant::now();
        acquire_n(&b, 3).await;
        assert!(start.elapsed() < Duration::from_millis(1));
        acquire_n(&b, 5).await;
        let e = start.elapsed();
        assert!(
            e >= Duration::from_millis(490) && e <= Duration::from_millis(510),
            "{e:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn zero_rate_means_unlimited() {
        let b = TokenBucket::new(0.0, 1);
        let start = Instant::now();
        acquire_n(&b, 100).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
