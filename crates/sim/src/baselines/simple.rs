//! Static peak provisioning and the oracle.

use crate::SimError;
use crate::replay::{Autoscaler, Foresight, Observation, demand_series};

/// Provisions the trace's peak demand for the whole run (an operator who sized
/// for the worst hour). Uses the future only for that one number.
#[derive(Debug, Clone, Default)]
pub struct StaticPeak {
    peak: u32,
}

impl Autoscaler for StaticPeak {
    fn name(&self) -> String {
        "static-peak".into()
    }

    fn interval_s(&self) -> f64 {
        3600.0
    }

    fn prepare(&mut self, f: &Foresight<'_>) -> Result<(), SimError> {
        self.peak = demand_series(f.trace, f.options)
            .into_iter()
            .max()
            .unwrap_or(1);
        Ok(())
    }

    fn decide(&mut self, _obs: &Observation<'_>) -> Result<Option<u32>, SimError> {
        Ok(Some(self.peak))
    }
}

/// Perfect foresight with the same boot + warm-up delay as everyone else: at
/// each tick it holds max(demand over [now, now + lead]). Any policy with zero
/// shortfall must hold at least that many instances at every moment (each one
/// needed within the lead time must already have been launched), so its
/// instance-hours are a lower bound at zero violations.
#[derive(Debug, Clone, Default)]
pub struct Oracle {
    plan: Vec<u32>,
    tick_s: f64,
}

impl Autoscaler for Oracle {
    fn name(&self) -> String {
        "oracle".into()
    }

    fn interval_s(&self) -> f64 {
        self.tick_s
    }

    fn prepare(&mut self, f: &Foresight<'_>) -> Result<(), SimError> {
        self.tick_s = f.options.tick_s;
        let d = demand_series(f.trace, f.options);
        let lead = (f.options.lead_s() / f.options.tick_s).ceil() as usize;
        // Sliding-window max over [k, k + lead] (monotone deque).
        let n = d.len();
        let mut plan = vec![0; n];
        let mut dq: std::collections::VecDeque<usize> = std::collections::VecDeque::new();
        let mut next = 0usize;
        for (k, p) in plan.iter_mut().enumerate() {
            let hi = (k + lead).min(n.saturating_sub(1));
            while next <= hi {
                while dq.back().is_some_and(|&j| d[j] <= d[next]) {
                    dq.pop_back();
                }
                dq.push_back(next);
                next += 1;
            }
            while dq.front().is_some_and(|&j| j < k) {
                dq.pop_front();
            }
            *p = dq.front().map_or(0, |&j| d[j]);
        }
        self.plan = plan;
        Ok(())
    }

    fn decide(&mut self, obs: &Observation<'_>) -> Result<Option<u32>, SimError> {
        let k = (obs.now_s / self.tick_s).round() as usize;
        Ok(self.plan.get(k).copied())
    }
}
