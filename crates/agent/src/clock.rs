//! The only place the agent reads the time.
//!
//! Everything else takes a [`Clock`] and asks it for `now()` (wall time, for records and
//! for the decision engine) or `sleep_until()` (for scheduling). The real clock reads
//! `SystemTime` and sleeps with tokio; [`ManualClock`] is advanced by tests (and can be
//! made to follow an emulator's accelerated clock).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// A source of time.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Wall time in milliseconds since the epoch.
    fn now_ms(&self) -> Millis;
    /// How long the scheduler should really wait for `d` of clock time to pass.
    fn real_duration(&self, d: Duration) -> Duration {
        d
    }
}

/// Shared handle to the clock.
pub type SharedClock = Arc<dyn Clock>;

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> Millis {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// A clock that runs `speed` times faster than real time from a start point, or is
/// set by hand (tests).
#[derive(Debug)]
pub struct ManualClock {
    now: AtomicI64,
}

impl ManualClock {
    pub fn new(start_ms: Millis) -> Arc<Self> {
        Arc::new(Self {
            now: AtomicI64::new(start_ms),
        })
    }
    pub fn set(&self, ms: Millis) {
        self.now.store(ms, Ordering::SeqCst);
    }
    pub fn advance(&self, d: Duration) {
        self.now.fetch_add(d.as_millis() as i64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> Millis {
        self.now.load(Ordering::SeqCst)
    }
}

/// Real time scaled by a factor: one real second is `speed` clock seconds. Used to run
/// the agent alongside an emulator whose clock is accelerated by the same factor.
#[derive(Debug)]
pub struct ScaledClock {
    origin_real: std::time::Instant,
    origin_ms: Millis,
    speed: f64,
}

impl ScaledClock {
    pub fn new(origin_ms: Millis, speed: f64) -> Self {
        Self {
            origin_real: std::time::Instant::now(),
            origin_ms,
            speed: if speed > 0.0 { speed } else { 1.0 },
        }
    }
}

impl Clock for ScaledClock {
    fn now_ms(&self) -> Millis {
        let real = self.origin_real.elapsed().as_secs_f64() * 1000.0;
        self.origin_ms + (real * self.speed) as i64
    }
    fn real_duration(&self, d: Duration) -> Duration {
        d.div_f64(self.speed)
    }
}

/// A reading of the monotonic clock (for deadlines measured in real time, such as
/// lease validity; never for records).
pub type Monotonic = tokio::time::Instant;

/// Now, on the monotonic clock.
pub fn monotonic_now() -> Monotonic {
    tokio::time::Instant::now()
}

/// The clock of a flexus-emulator at `endpoint`: its time now and how many emulated
/// seconds pass per real second (`GET /_emulator/clock`). `None` when the endpoint does not
/// answer that path with a clock — a real Huawei Cloud endpoint, or nothing at all.
pub async fn emulator_clock(endpoint: &str) -> Option<(Millis, f64)> {
    #[derive(serde::Deserialize)]
    struct EmulatorClock {
        now_ms: Millis,
        time_scale: f64,
    }
    let url = format!("{}/_emulator/clock", endpoint.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .ok()?;
    let resp = client.get(url).send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let c: EmulatorClock = resp.json().await.ok()?;
    (c.time_scale.is_finite() && c.time_scale > 0.0).then_some((c.now_ms, c.time_scale))
}

/// RFC 3339 text of a clock reading.
pub fn rfc3339(ms: Millis) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

/// Parse RFC 3339 text back into milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<Millis> {
    humantime::parse_rfc3339_weak(s)
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_milliseconds() {
        let ms = 1_780_000_000_123;
        assert_eq!(parse_rfc3339(&rfc3339(ms)), Some(ms));
    }

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let c = ManualClock::new(1000);
        assert_eq!(c.now_ms(), 1000);
        c.advance(Duration::from_secs(2));
        assert_eq!(c.now_ms(), 3000);
    }
}
