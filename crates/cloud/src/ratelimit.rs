//! A small async token bucket (one for reads, one for writes).

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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bucket_allows_a_burst_then_paces_at_the_rate() {
        let b = TokenBucket::new(10.0, 3);
        let start = Instant::now();
        for _ in 0..3 {
            b.acquire().await;
        }
        assert!(start.elapsed() < Duration::from_millis(1));
        for _ in 0..5 {
            b.acquire().await;
        }
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
        for _ in 0..100 {
            b.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
