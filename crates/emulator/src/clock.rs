//! The emulator's controllable clock: real time × a scale factor, plus explicit advances.

use chrono::{DateTime, Duration, Utc};

/// Emulated time. `now = anchor_emulated + (real_now - anchor_real) × scale`.
#[derive(Debug, Clone)]
pub struct Clock {
    anchor_real: std::time::Instant,
    anchor_emulated: DateTime<Utc>,
    scale: f64,
}

impl Clock {
    /// A clock starting at `start` running at `scale`.
    pub fn new(start: DateTime<Utc>, scale: f64) -> Self {
        Self {
            anchor_real: std::time::Instant::now(),
            anchor_emulated: start,
            scale,
        }
    }

    /// Current emulated time.
    pub fn now(&self) -> DateTime<Utc> {
        let real = self.anchor_real.elapsed().as_secs_f64() * self.scale;
        self.anchor_emulated + Duration::microseconds((real * 1e6) as i64)
    }

    /// Emulated seconds per real second.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Changes the speed from now on (0 freezes the clock).
    pub fn set_scale(&mut self, scale: f64) {
        self.anchor_emulated = self.now();
        self.anchor_real = std::time::Instant::now();
        self.scale = scale;
    }

    /// Jumps forward by `seconds` (negative values are ignored: time never goes back).
    pub fn advance(&mut self, seconds: f64) {
        if seconds > 0.0 && seconds.is_finite() {
            self.anchor_emulated += Duration::microseconds((seconds * 1e6) as i64);
        }
    }

    /// Jumps forward to exactly `at` (an earlier `at` is ignored: time never goes back).
    /// Lets a test step the clock in lockstep with another one without the rounding
    /// of a fractional advance.
    pub fn advance_to(&mut self, at: DateTime<Utc>) {
        let now = self.now();
        if at > now {
            self.anchor_emulated += at - now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frozen_clock_moves_only_when_advanced() {
        let start = Utc::now();
        let mut c = Clock::new(start, 0.0);
        assert_eq!(c.now(), start);
        c.advance(90.5);
        assert_eq!(c.now(), start + Duration::milliseconds(90_500));
        c.advance(-10.0);
        assert_eq!(c.now(), start + Duration::milliseconds(90_500));
    }

    #[test]
    fn a_frozen_clock_advanced_to_an_instant_reads_exactly_that_instant() {
        let start = DateTime::from_timestamp_millis(1_780_000_000_123).expect("start");
        let mut c = Clock::new(start, 0.0);
        let at = DateTime::from_timestamp_millis(1_780_000_059_999).expect("at");
        c.advance_to(at);
        assert_eq!(c.now(), at);
        c.advance_to(start);
        assert_eq!(c.now(), at, "never back");
    }

    #[test]
    fn scaled_clock_runs_faster_than_real_time() {
        let start = Utc::now();
        let c = Clock::new(start, 1000.0);
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(c.now() - start >= Duration::seconds(19));
    }
}
