//! Kubernetes HPA (autoscaling/v2) with default behaviour, on the flavor's
//! primary utilisation (CPU, or GPU on GPU flavors).
//!
//! Follows `replica_calculator.go` / `horizontal.go` as summarised in the
//! reference doc: 15 s loop; tolerance 0.1; not-ready instances (booting,
//! warming, or ready for less than one metric window) are set aside and, when
//! scaling up, assumed at 0 %; recommendations stabilised (scale-up window 0 s,
//! scale-down window 300 s: the current count clamped into
//! [min of up-window recommendations, max of down-window recommendations]);
//! then rate policies (up: max(+100 %, +4) per 15 s; down: −100 % per 15 s).

use std::collections::VecDeque;

use flexus_policy::engine::ceil_u32;

use crate::SimError;
use crate::replay::{Autoscaler, InstanceState, Observation};

/// A rate limit of HPA `behavior`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HpaRate {
    /// Instances per period.
    Pods(u32, f64),
    /// Percent of the count at the period start, per period.
    Percent(u32, f64),
}

/// HPA configuration (defaults = Kubernetes defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct HpaConfig {
    /// Target utilisation, % of request.
    pub target_pct: f64,
    /// Sync period (s).
    pub sync_period_s: f64,
    /// Tolerance on the usage ratio.
    pub tolerance: f64,
    /// Scale-up stabilisation window (s).
    pub up_window_s: f64,
    /// Scale-down stabilisation window (s).
    pub down_window_s: f64,
    /// Scale-up rate policies (selectPolicy Max).
    pub up_rates: Vec<HpaRate>,
    /// Scale-down rate policies (selectPolicy Max).
    pub down_rates: Vec<HpaRate>,
    /// minReplicas.
    pub min_replicas: u32,
    /// maxReplicas.
    pub max_replicas: u32,
}

impl HpaConfig {
    /// Kubernetes defaults with a utilisation target.
    pub fn default_with_target(target_pct: f64) -> Self {
        HpaConfig {
            target_pct,
            sync_period_s: 15.0,
            tolerance: 0.1,
            up_window_s: 0.0,
            down_window_s: 300.0,
            up_rates: vec![HpaRate::Percent(100, 15.0), HpaRate::Pods(4, 15.0)],
            down_rates: vec![HpaRate::Percent(100, 15.0)],
            min_replicas: 1,
            max_replicas: 1000,
        }
    }
}

/// The HPA baseline.
#[derive(Debug, Clone)]
pub struct Hpa {
    cfg: HpaConfig,
    recommendations: VecDeque<(f64, u32)>,
    /// (time, from, to) of past scale events.
    events: VecDeque<(f64, u32, u32)>,
}

/// Inputs of one replica calculation (a pure function, for hand-checked tests).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplicaInput {
    /// Mean utilisation of the measured ready pods (%).
    pub utilisation_pct: f64,
    /// Ready pods with a metric sample.
    pub ready_measured: u32,
    /// Pods set aside as not ready (counted at 0 % when scaling up).
    pub unready: u32,
    /// Current replicas (spec).
    pub current: u32,
}

impl Hpa {
    /// A new HPA.
    pub fn new(cfg: HpaConfig) -> Self {
        Hpa {
            cfg,
            recommendations: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The raw replica recommendation (before behaviour), `replica_calculator.go` style.
    pub fn replicas(&self, i: ReplicaInput) -> u32 {
        if i.ready_measured == 0 {
            return i.current;
        }
        let ratio = i.utilisation_pct / self.cfg.target_pct;
        if i.unready > 0 && ratio > 1.0 {
            let counted = i.ready_measured + i.unready;
            let new_ratio = i.utilisation_pct * f64::from(i.ready_measured)
                / (self.cfg.target_pct * f64::from(counted));
            if (1.0 - new_ratio).abs() <= self.cfg.tolerance || new_ratio <= 1.0 {
                return i.current;
            }
            let d = ceil_u32(new_ratio * f64::from(counted));
            return if d < i.current { i.current } else { d };
        }
        if (1.0 - ratio).abs() <= self.cfg.tolerance {
            return i.current;
        }
        ceil_u32(ratio * f64::from(i.ready_measured))
    }

    /// Behaviour: stabilisation then rate policies then bounds; records the recommendation.
    pub fn normalise(&mut self, now: f64, current: u32, recommendation: u32) -> u32 {
        self.recommendations.push_back((now, recommendation));
        let keep = self
            .cfg
            .up_window_s
            .max(self.cfg.down_window_s)
            .max(self.max_period());
        while self
            .recommendations
            .front()
            .is_some_and(|r| r.0 < now - keep - 1e-9)
        {
            self.recommendations.pop_front();
        }
        while self.events.front().is_some_and(|e| e.0 < now - keep - 1e-9) {
            self.events.pop_front();
        }
        // Stabilisation: current clamped into [upLimit, downLimit].
        let mut up_limit = recommendation;
        let mut down_limit = recommendation;
        for &(t, r) in &self.recommendations {
            if t > now - self.cfg.up_window_s - 1e-9 {
                up_limit = up_limit.min(r);
            }
            if t > now - self.cfg.down_window_s - 1e-9 {
                down_limit = down_limit.max(r);
            }
        }
        let mut desired = current.max(up_limit).min(down_limit);
        // Rate policies.
        if desired > current {
            let limit = self
                .cfg
                .up_rates
                .iter()
                .map(|r| {
                    let (start, v) = self.period_start(now, current, *r);
                    match r {
                        HpaRate::Pods(..) => start + v,
                        HpaRate::Percent(..) => {
                            ceil_u32(f64::from(start) * (1.0 + f64::from(v) / 100.0))
                        }
                    }
                })
                .max()
                .unwrap_or(u32::MAX);
            desired = desired.min(limit.max(current));
        } else if desired < current {
            let limit = self
                .cfg
                .down_rates
                .iter()
                .map(|r| {
                    let (start, v) = self.period_start(now, current, *r);
                    match r {
                        HpaRate::Pods(..) => start.saturating_sub(v),
                        HpaRate::Percent(..) => (f64::from(start) * (1.0 - f64::from(v) / 100.0))
                            .floor()
                            .max(0.0) as u32,
                    }
                })
                .min()
                .unwrap_or(0);
            desired = desired.max(limit.min(current));
        }
        desired = desired.clamp(self.cfg.min_replicas, self.cfg.max_replicas);
        if desired != current {
            self.events.push_back((now, current, desired));
        }
        desired
    }

    fn max_period(&self) -> f64 {
        self.cfg
            .up_rates
            .iter()
            .chain(&self.cfg.down_rates)
            .map(|r| match r {
                HpaRate::Pods(_, p) | HpaRate::Percent(_, p) => *p,
            })
            .fold(0.0, f64::max)
    }

    /// Replicas at the start of the rate period, and the policy value.
    fn period_start(&self, now: f64, current: u32, r: HpaRate) -> (u32, u32) {
        let (v, p) = match r {
            HpaRate::Pods(v, p) | HpaRate::Percent(v, p) => (v, p),
        };
        let (mut added, mut removed) = (0i64, 0i64);
        for &(t, from, to) in &self.events {
            if t > now - p + 1e-9 {
                let d = i64::from(to) - i64::from(from);
                if d > 0 {
                    added += d;
                } else {
                    removed -= d;
                }
            }
        }
        let start = (i64::from(current) - added + removed).max(0) as u32;
        (start, v)
    }
}

impl Autoscaler for Hpa {
    fn name(&self) -> String {
        "hpa-default".into()
    }

    fn interval_s(&self) -> f64 {
        self.cfg.sync_period_s
    }

    fn decide(&mut self, obs: &Observation<'_>) -> Result<Option<u32>, SimError> {
        let current = obs.pool.total();
        let Some(s) = obs.latest() else {
            return Ok(None);
        };
        // Stale metrics (more than two periods old): the HPA cannot compute.
        if obs.now_s - s.end_s > 3.0 * s.period_s + 60.0 || s.ready_instances <= 0.0 {
            return Ok(None);
        }
        let window_start = s.end_s - s.period_s;
        let mut ready_measured = 0u32;
        let mut unready = 0u32;
        for i in obs.instances {
            if i.state == InstanceState::Ready && i.ready_s <= window_start + 1e-9 {
                ready_measured += 1;
            } else {
                unready += 1;
            }
        }
        let rec = self.replicas(ReplicaInput {
            utilisation_pct: s.utilisation_pct,
            ready_measured,
            unready,
            current,
        });
        Ok(Some(self.normalise(obs.now_s, current, rec)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hpa() -> Hpa {
        Hpa::new(HpaConfig::default_with_target(50.0))
    }

    #[test]
    fn doubles_at_twice_the_target_and_holds_within_tolerance() {
        let h = hpa();
        let r = |u, n| {
            h.replicas(ReplicaInput {
                utilisation_pct: u,
                ready_measured: n,
                unready: 0,
                current: n,
            })
        };
        // The docs' example: current 200m vs target 100m -> double.
        assert_eq!(r(100.0, 1), 2);
        // 50 % target, 54 % measured: within 10 % tolerance, no change.
        assert_eq!(r(54.0, 10), 10);
        // 56 % > tolerance: ceil(10 * 1.12) = 12.
        assert_eq!(r(56.0, 10), 12);
        // Scale down: 25 % on 10 -> 5.
        assert_eq!(r(25.0, 10), 5);
    }

    #[test]
    fn unready_pods_count_as_zero_when_scaling_up() {
        let h = hpa();
        for (utilisation_pct, ready_measured, unready, current, want) in [
            // 4 ready at 100 %, 4 booting: new ratio = 100*4/(50*8) = 1.0 -> hold.
            (100.0, 4, 4, 8, 8),
            // 4 ready at 150 %, 2 booting: 150*4/(50*6) = 2.0 -> 12.
            (150.0, 4, 2, 6, 12),
        ] {
            let input = ReplicaInput {
                utilisation_pct,
                ready_measured,
                unready,
                current,
            };
            assert_eq!(h.replicas(input), want, "{input:?}");
        }
    }

    #[test]
    fn scale_up_is_limited_to_double_or_four_per_period() {
        let mut h = hpa();
        assert_eq!(h.normalise(0.0, 2, 100), 6, "max(2*2, 2+4)");
        let mut h = hpa();
        assert_eq!(h.normalise(0.0, 10, 100), 20, "max(2*10, 10+4)");
        // Within the same 15 s period the start count is the pre-scale count.
        assert_eq!(h.normalise(5.0, 20, 100), 20);
        assert_eq!(h.normalise(15.0, 20, 100), 40);
    }

    #[test]
    fn scale_in_waits_for_the_stabilisation_window() {
        let mut h = hpa();
        assert_eq!(h.normalise(0.0, 10, 10), 10);
        // Load drops: the recommendation of 4 is held back by the 10 recommended at t=0.
        assert_eq!(h.normalise(15.0, 10, 4), 10);
        assert_eq!(h.normalise(285.0, 10, 4), 10);
        // After 300 s the window holds only 4s.
        assert_eq!(h.normalise(315.0, 10, 4), 4);
    }

    #[test]
    fn scale_in_follows_the_highest_recommendation_in_the_window() {
        let mut h = hpa();
        h.normalise(0.0, 10, 10);
        h.normalise(100.0, 10, 7);
        h.normalise(200.0, 10, 5);
        // At 315 the 10 has left the window; the max of {7, 5, 5} is 7.
        assert_eq!(h.normalise(315.0, 10, 5), 7);
    }
}
