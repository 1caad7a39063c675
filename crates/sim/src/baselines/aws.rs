//! AWS EC2 Auto Scaling baselines: target tracking, step scaling, and
//! predictive scaling combined with target tracking.
//!
//! Target tracking follows the reference doc's documented approximation:
//! every 60 s, m = the latest datapoint of the metric over warmed (ready)
//! instances; if the last 3 datapoints exceed the target (AlarmHigh), desired =
//! max(desired, ceil(n_warmed × m / target)); if the last 15 are below
//! 0.9 × target (AlarmLow), nothing is warming and the scale-in cooldown
//! (300 s) has passed, desired = ceil(n × m / target) (never below min).
//! Deviation from the doc's wording: the scale-out size uses the warmed
//! count n_warmed, not the count including warming instances — m only
//! measures the warmed ones, so multiplying it by the larger count would
//! double-count the load while instances warm (and run away each minute).
//!
//! Step scaling follows `as-scaling-simple-step.md`: steps by absolute value
//! ranges, percent adjustments with AWS rounding, warming instances counted
//! toward capacity so a repeated breach in the same step does nothing, and
//! scale-in blocked while a scale-out warms.

use flexus_policy::engine::ceil_u32;

use crate::SimError;
use crate::replay::{Autoscaler, MetricSample, Observation};

/// Missing data: a datapoint older than this many periods (plus the delay) is stale.
const STALE_PERIODS: f64 = 3.0;

fn fresh<'a>(obs: &'a Observation<'_>) -> Option<&'a MetricSample> {
    obs.latest().filter(|s| {
        obs.now_s - s.end_s <= STALE_PERIODS * s.period_s + 60.0 && s.ready_instances > 0.0
    })
}

/// Whether the last `n` datapoints all satisfy `f` (and are contiguous in time).
fn last_n(obs: &Observation<'_>, n: usize, f: impl Fn(&MetricSample) -> bool) -> bool {
    let h = obs.history;
    if h.len() < n || n == 0 {
        return false;
    }
    let tail = &h[h.len() - n..];
    tail.iter().all(|s| s.ready_instances > 0.0 && f(s))
        && tail
            .windows(2)
            .all(|w| (w[1].end_s - w[0].end_s - w[1].period_s).abs() < 1e-6)
}

/// Target-tracking configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetTrackingConfig {
    /// Target value of the utilisation metric (%).
    pub target_pct: f64,
    /// Datapoints above target before scaling out.
    pub high_datapoints: usize,
    /// Datapoints below `low_factor × target` before scaling in.
    pub low_datapoints: usize,
    /// AlarmLow threshold as a fraction of the target.
    pub low_factor: f64,
    /// Scale-in cooldown (s).
    pub scale_in_cooldown_s: f64,
    /// Evaluation interval (s).
    pub interval_s: f64,
    /// Group minimum.
    pub min: u32,
}

impl TargetTrackingConfig {
    /// The observed AWS defaults (3 of 3 high, 15 of 15 low at 0.9 × target, 300 s scale-in cooldown).
    pub fn with_target(target_pct: f64) -> Self {
        TargetTrackingConfig {
            target_pct,
            high_datapoints: 3,
            low_datapoints: 15,
            low_factor: 0.9,
            scale_in_cooldown_s: 300.0,
            interval_s: 60.0,
            min: 1,
        }
    }
}

/// AWS target tracking.
#[derive(Debug, Clone)]
pub struct TargetTracking {
    cfg: TargetTrackingConfig,
    last_scale_in: f64,
}

impl TargetTracking {
    /// New baseline.
    pub fn new(cfg: TargetTrackingConfig) -> Self {
        TargetTracking {
            cfg,
            last_scale_in: f64::NEG_INFINITY,
        }
    }

    /// The decision (shared with the predictive combination).
    pub fn desired(&mut self, obs: &Observation<'_>) -> Option<u32> {
        let s = fresh(obs)?;
        let current = obs.pool.total();
        let target = self.cfg.target_pct;
        let m = s.utilisation_pct;
        if last_n(obs, self.cfg.high_datapoints, |x| {
            x.utilisation_pct > target
        }) {
            let want = ceil_u32(f64::from(obs.pool.ready) * m / target);
            return Some(current.max(want));
        }
        let warming = obs.pool.booting + obs.pool.warming;
        if warming == 0
            && obs.now_s - self.last_scale_in >= self.cfg.scale_in_cooldown_s
            && last_n(obs, self.cfg.low_datapoints, |x| {
                x.utilisation_pct < self.cfg.low_factor * target
            })
        {
            let want = ceil_u32(f64::from(current) * m / target).max(self.cfg.min);
            if want < current {
                self.last_scale_in = obs.now_s;
                return Some(want);
            }
        }
        None
    }
}

impl Autoscaler for TargetTracking {
    fn name(&self) -> String {
        "aws-target-tracking".into()
    }

    fn interval_s(&self) -> f64 {
        self.cfg.interval_s
    }

    fn decide(&mut self, obs: &Observation<'_>) -> Result<Option<u32>, SimError> {
        Ok(self.desired(obs))
    }
}

/// One step of a step-scaling policy, by absolute metric values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepRange {
    /// Lower bound (`None` = open). Inclusive above the threshold, exclusive below.
    pub lower: Option<f64>,
    /// Upper bound (`None` = open). Exclusive above the threshold, inclusive below.
    pub upper: Option<f64>,
    /// PercentChangeInCapacity adjustment.
    pub percent: f64,
}

/// Step-scaling configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct StepConfig {
    /// Scale-out steps (value ≥ lower, < upper).
    pub out: Vec<StepRange>,
    /// Scale-in steps (value > lower, ≤ upper).
    pub r#in: Vec<StepRange>,
    /// Instance warm-up (s).
    pub warmup_s: f64,
    /// MinAdjustmentMagnitude for percent steps.
    pub min_adjustment_magnitude: Option<u32>,
    /// Evaluation interval (s).
    pub interval_s: f64,
    /// Group minimum.
    pub min: u32,
}

impl StepConfig {
    /// The user guide's worked example, centred on `threshold` (50 in the doc):
    /// +10 % at [t+10, t+20), +30 % at ≥ t+20, −10 % at (t−20, t−10], −30 % at ≤ t−20.
    pub fn around(threshold: f64, warmup_s: f64) -> Self {
        StepConfig {
            out: vec![
                StepRange {
                    lower: Some(threshold + 10.0),
                    upper: Some(threshold + 20.0),
                    percent: 10.0,
                },
                StepRange {
                    lower: Some(threshold + 20.0),
                    upper: None,
                    percent: 30.0,
                },
            ],
            r#in: vec![
                StepRange {
                    lower: Some(threshold - 20.0),
                    upper: Some(threshold - 10.0),
                    percent: -10.0,
                },
                StepRange {
                    lower: None,
                    upper: Some(threshold - 20.0),
                    percent: -30.0,
                },
            ],
            warmup_s,
            min_adjustment_magnitude: None,
            interval_s: 60.0,
            min: 1,
        }
    }
}

/// AWS rounding of a percent change of `capacity`: results > 1 round down,
/// in (0, 1) become 1, in (−1, 0) become −1, < −1 round toward zero.
pub fn percent_adjustment(capacity: u32, percent: f64, min_magnitude: Option<u32>) -> i64 {
    let raw = f64::from(capacity) * percent / 100.0;
    let mut adj = if raw > 1.0 {
        raw.floor() as i64
    } else if raw > 0.0 {
        1
    } else if raw > -1.0 && raw < 0.0 {
        -1
    } else {
        raw.ceil() as i64
    };
    if let Some(m) = min_magnitude
        && adj != 0
        && adj.unsigned_abs() < u64::from(m)
    {
        adj = adj.signum() * i64::from(m);
    }
    adj
}

/// AWS step scaling.
#[derive(Debug, Clone)]
pub struct StepScaling {
    cfg: StepConfig,
    /// (time, capacity before) of the last scale-out; its instances warm until time + warmup.
    last_out: Option<(f64, u32)>,
}

impl StepScaling {
    /// New baseline.
    pub fn new(cfg: StepConfig) -> Self {
        StepScaling {
            cfg,
            last_out: None,
        }
    }

    /// One evaluation on a metric value, with `current` capacity (desired).
    pub fn evaluate(&mut self, now: f64, value: f64, current: u32) -> Option<u32> {
        let warming = self.last_out.filter(|(t, _)| now < t + self.cfg.warmup_s);
        if let Some(step) = self
            .cfg
            .out
            .iter()
            .find(|s| s.lower.is_none_or(|l| value >= l) && s.upper.is_none_or(|u| value < u))
        {
            // Warming capacity counts: apply the step to the capacity before the warming scale-out.
            let base = warming.map_or(current, |(_, before)| before);
            let adj = percent_adjustment(base, step.percent, self.cfg.min_adjustment_magnitude);
            let want = (i64::from(base) + adj).max(0) as u32;
            if want > current {
                if warming.is_none() {
                    self.last_out = Some((now, current));
                }
                return Some(want);
            }
            return None;
        }
        if warming.is_some() {
            return None;
        }
        if let Some(step) = self
            .cfg
            .r#in
            .iter()
            .find(|s| s.lower.is_none_or(|l| value > l) && s.upper.is_none_or(|u| value <= u))
        {
            let adj = percent_adjustment(current, step.percent, self.cfg.min_adjustment_magnitude);
            let want = (i64::from(current) + adj).max(i64::from(self.cfg.min)) as u32;
            if want < current {
                return Some(want);
            }
        }
        None
    }
}

impl Autoscaler for StepScaling {
    fn name(&self) -> String {
        "aws-step".into()
    }

    fn interval_s(&self) -> f64 {
        self.cfg.interval_s
    }

    fn decide(&mut self, obs: &Observation<'_>) -> Result<Option<u32>, SimError> {
        let Some(s) = fresh(obs) else {
            return Ok(None);
        };
        Ok(self.evaluate(obs.now_s, s.utilisation_pct, obs.pool.total()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_scaling_reproduces_the_user_guide_example() {
        // Threshold 50: +10 % at [60,70), +30 % at >= 70, -10 % at (30,40], -30 % at <= 30.
        let mut s = StepScaling::new(StepConfig::around(50.0, 0.0));
        let mut n = 10;
        for (t, v, expect) in [
            (0.0, 65.0, 11),
            (60.0, 75.0, 14),
            (120.0, 35.0, 13),
            (180.0, 25.0, 10),
        ] {
            n = s.evaluate(t, v, n).unwrap_or(n);
            assert_eq!(n, expect, "metric {v}");
        }
        // Inside the dead band nothing happens.
        assert_eq!(s.evaluate(240.0, 50.0, 10), None);
    }

    #[test]
    fn a_repeated_breach_in_the_same_step_while_warming_does_nothing() {
        let mut s = StepScaling::new(StepConfig::around(50.0, 300.0));
        assert_eq!(s.evaluate(0.0, 65.0, 10), Some(11));
        assert_eq!(s.evaluate(60.0, 65.0, 11), None, "same step while warming");
        // A higher step while warming adds only the difference: 10 + 3 = 13.
        assert_eq!(s.evaluate(120.0, 75.0, 11), Some(13));
        // Scale-in is blocked while warming.
        assert_eq!(s.evaluate(180.0, 20.0, 13), None);
        assert_eq!(s.evaluate(400.0, 20.0, 13), Some(10));
    }

    #[test]
    fn percent_adjustments_round_as_aws_documents() {
        assert_eq!(percent_adjustment(127, 10.0, None), 12); // 12.7 -> 12
        assert_eq!(percent_adjustment(5, 10.0, None), 1); // 0.5 -> 1
        assert_eq!(percent_adjustment(5, -10.0, None), -1); // -0.5 -> -1
        assert_eq!(percent_adjustment(667, -1.0, None), -6); // -6.67 -> -6
        assert_eq!(percent_adjustment(20, 10.0, Some(3)), 3);
    }
}

/// AWS predictive scaling (ForecastAndScale) combined with target tracking.
///
/// Every 6 h, once 24 h of data exist, the hourly request rate of the last
/// 14 days is forecast 48 h ahead (flexus-policy's forecaster: MSTL 24/168 +
/// AutoETS trend, seasonal-naive fallback — AWS's own model is not public).
/// Forecast capacity for an hour = ceil(forecast load / load one instance
/// carries at the target), where the load per instance at target is learned
/// from history as AWS learns the load/scaling metric relation. The hour's
/// capacity applies from `buffer_s` (SchedulingBufferTime, default 300 s)
/// before the hour; it only raises capacity, and target tracking's scale-in
/// never goes below it (desired = max of the policies).
#[derive(Debug, Clone)]
pub struct PredictiveTargetTracking {
    tt: TargetTracking,
    buffer_s: f64,
    /// Hourly (hour index since trace start, sum of rps × s, seconds).
    hours: Vec<(i64, f64, f64)>,
    last_end: f64,
    /// Hour index of the first forecast hour and the capacities.
    plan: Option<(i64, Vec<u32>)>,
    last_fit: Option<f64>,
    /// Learned (Σ util/(rps per instance), samples).
    ratio: (f64, f64),
}

impl PredictiveTargetTracking {
    /// New baseline with a target-tracking part.
    pub fn new(tt: TargetTrackingConfig) -> Self {
        PredictiveTargetTracking {
            tt: TargetTracking::new(tt),
            buffer_s: 300.0,
            hours: Vec::new(),
            last_end: f64::NEG_INFINITY,
            plan: None,
            last_fit: None,
            ratio: (0.0, 0.0),
        }
    }

    fn ingest(&mut self, obs: &Observation<'_>) {
        let new: Vec<&MetricSample> = obs
            .history
            .iter()
            .rev()
            .take_while(|s| s.end_s > self.last_end)
            .collect();
        for s in new.into_iter().rev() {
            let h = ((s.end_s - s.period_s) / 3600.0).floor() as i64;
            match self.hours.last_mut() {
                Some(last) if last.0 == h => {
                    last.1 += s.request_rps * s.period_s;
                    last.2 += s.period_s;
                }
                _ => self.hours.push((h, s.request_rps * s.period_s, s.period_s)),
            }
            if s.ready_instances > 0.0 && s.request_rps > 0.0 && s.queue_depth <= 0.0 {
                let per = s.request_rps / s.ready_instances;
                self.ratio.0 += s.utilisation_pct / per;
                self.ratio.1 += 1.0;
            }
            self.last_end = s.end_s;
        }
    }

    fn forecast_capacity(&mut self, now: f64) {
        if self.last_fit.is_some_and(|t| now - t < 6.0 * 3600.0) || self.ratio.1 <= 0.0 {
            return;
        }
        let now_h = (now / 3600.0).floor() as i64;
        let complete: Vec<f64> = self
            .hours
            .iter()
            .filter(|h| h.0 < now_h && h.2 > 0.0)
            .map(|h| h.1 / h.2)
            .collect();
        if complete.len() < 24 {
            return;
        }
        self.last_fit = Some(now);
        let from = complete.len().saturating_sub(14 * 24);
        let Ok(f) = flexus_policy::forecast::forecast(&complete[from..], &[24, 168], 48) else {
            return;
        };
        let util_per_rps = self.ratio.0 / self.ratio.1;
        let per_instance_at_target = self.tt.cfg.target_pct / util_per_rps;
        let caps = f
            .point
            .iter()
            .map(|v| ceil_u32(v.max(0.0) / per_instance_at_target))
            .collect();
        self.plan = Some((now_h, caps));
    }

    fn scheduled(&self, now: f64) -> Option<u32> {
        let (first, caps) = self.plan.as_ref()?;
        let h = ((now + self.buffer_s) / 3600.0).floor() as i64;
        usize::try_from(h - first)
            .ok()
            .and_then(|i| caps.get(i))
            .copied()
    }
}

impl Autoscaler for PredictiveTargetTracking {
    fn name(&self) -> String {
        "aws-predictive+tt".into()
    }

    fn interval_s(&self) -> f64 {
        self.tt.cfg.interval_s
    }

    fn decide(&mut self, obs: &Observation<'_>) -> Result<Option<u32>, SimError> {
        self.ingest(obs);
        self.forecast_capacity(obs.now_s);
        let floor = self.scheduled(obs.now_s).map(|c| c.max(self.tt.cfg.min));
        let current = obs.pool.total();
        let tt = self.tt.desired(obs);
        Ok(match (tt, floor) {
            (Some(t), Some(f)) => Some(t.max(f)),
            (None, Some(f)) if f > current => Some(f),
            (t, _) => t,
        })
    }
}
