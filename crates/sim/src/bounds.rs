//! Lower bounds on what any autoscaler can achieve on a trace.
//!
//! The replay bills every instance from its launch, an instance serves only
//! `lead` seconds (boot + warm-up) after its launch, removal is instant and
//! free, and a tick meets the SLO only if the ready instances cover the tick's
//! demand (`slo_met ⇒ ready ≥ demand`, see [`crate::capacity::pool_metrics`];
//! a backlog can make a covered tick miss the SLO too, never the reverse).
//! Any run is therefore a path of ready counts `s_k` whose billed
//! instance-ticks are at least
//!
//! ```text
//!   Σ_k s_k  +  L · Σ_k max(0, s_k − s_{k−1})        (L = lead / tick)
//! ```
//!
//! with `s_{−1}` the initial (already ready, free) instances, and whose
//! violating ticks include every tick with `s_k < d_k`. [`min_instance_hours`]
//! minimises that cost over all paths that leave at most `V` ticks uncovered —
//! a bound no autoscaler, however clairvoyant, can beat with `V` or fewer
//! violating ticks. It relaxes the problem (decisions at any tick, any size,
//! no minimum pool size, boot billed as `lead / tick` ticks rather than
//! rounded up), so it is a bound, not an achievable schedule.
//!
//! With `V = 0` the dynamic programme is exact for the relaxed problem. With
//! `V > 0` the violation budget is priced by a Lagrange multiplier λ: for every
//! λ ≥ 0, `min_path(cost + λ·uncovered) − λ·V` is a valid lower bound (weak
//! duality); the bound maximises it over λ (it is concave in λ). Each
//! evaluation is one pass over the ticks with `O(max demand)` work per tick.

/// Input of the bound: the replay's demand per tick and its timing.
#[derive(Debug, Clone, Copy)]
pub struct BoundInput<'a> {
    /// Instances needed at each tick (the replay's `demand_series`).
    pub demand: &'a [u32],
    /// Tick length (s).
    pub tick_s: f64,
    /// Boot + warm-up (s): billed before an instance serves.
    pub lead_s: f64,
    /// Ready instances at the start (billed only from tick 0).
    pub initial: u32,
}

/// Whether an autoscaler could have fewer violating ticks **and** fewer
/// instance-hours than every rival on a trace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Attainable {
    /// The violation budget: one tick fewer than the best rival
    /// (`None` when a rival has no violating tick, so none can be fewer).
    pub max_violating_ticks: Option<usize>,
    /// The fewest instance-hours among the rivals.
    pub hours_to_beat: f64,
    /// [`min_instance_hours`] at that budget (infinite without a budget).
    pub bound_hours: f64,
}

impl Attainable {
    /// Compares the rivals' (violating ticks, instance-hours) with the bound.
    pub fn against(input: &BoundInput<'_>, rivals: &[(usize, f64)]) -> Option<Attainable> {
        let fewest_ticks = rivals.iter().map(|r| r.0).min()?;
        let hours_to_beat = rivals.iter().map(|r| r.1).fold(f64::INFINITY, f64::min);
        let max_violating_ticks = fewest_ticks.checked_sub(1);
        let bound_hours =
            max_violating_ticks.map_or(f64::INFINITY, |v| min_instance_hours(input, v));
        Some(Attainable {
            max_violating_ticks,
            hours_to_beat,
            bound_hours,
        })
    }

    /// False when no autoscaler can beat every rival on both counts.
    pub fn possible(&self) -> bool {
        self.bound_hours < self.hours_to_beat
    }
}

/// The lowest billed instance-hours of any run with at most
/// `max_violating_ticks` ticks whose ready instances fall short of demand.
///
/// Returns 0 for an empty trace.
pub fn min_instance_hours(input: &BoundInput<'_>, max_violating_ticks: usize) -> f64 {
    let ticks = min_instance_ticks(input, max_violating_ticks);
    ticks * input.tick_s / 3600.0
}

fn min_instance_ticks(input: &BoundInput<'_>, max_violating_ticks: usize) -> f64 {
    let d = input.demand;
    if d.is_empty() {
        return 0.0;
    }
    if max_violating_ticks >= d.len() {
        return 0.0;
    }
    let boot = if input.tick_s > 0.0 {
        (input.lead_s / input.tick_s).max(0.0)
    } else {
        0.0
    };
    if max_violating_ticks == 0 {
        return min_penalised(input, boot, f64::INFINITY);
    }
    let v = max_violating_ticks as f64;
    let top = f64::from(d.iter().copied().max().unwrap_or(0));
    // A violating tick saves at most its instances and one launch of them.
    let hi = (top * (1.0 + boot) + 1.0) * 2.0;
    let g = |lambda: f64| min_penalised(input, boot, lambda) - lambda * v;
    // Golden-section search for the maximum of the concave g on [0, hi].
    let phi = 0.5 * (5f64.sqrt() - 1.0);
    let (mut a, mut b) = (0.0, hi);
    let mut x1 = b - phi * (b - a);
    let mut x2 = a + phi * (b - a);
    let (mut g1, mut g2) = (g(x1), g(x2));
    let mut best = g(0.0).max(g1).max(g2);
    for _ in 0..48 {
        if g1 < g2 {
            a = x1;
            x1 = x2;
            g1 = g2;
            x2 = a + phi * (b - a);
            g2 = g(x2);
        } else {
            b = x2;
            x2 = x1;
            g2 = g1;
            x1 = b - phi * (b - a);
            g1 = g(x1);
        }
        best = best.max(g1).max(g2);
        if b - a < 1e-6 * hi.max(1.0) {
            break;
        }
    }
    best.max(0.0)
}

/// `min over paths of Σ s_k + boot·Σ (s_k − s_{k−1})⁺ + λ·#{k : s_k < d_k}`
/// (λ = ∞ forbids uncovered ticks).
fn min_penalised(input: &BoundInput<'_>, boot: f64, lambda: f64) -> f64 {
    let d = input.demand;
    let top = d.iter().copied().max().unwrap_or(0) as usize;
    let states = top + 1;
    let init = (input.initial as usize).min(top);
    // prev[s]: cheapest cost so far ending with s ready. Before tick 0 only the
    // initial state exists, at zero cost; launches are charged by the transition.
    let mut prev: Vec<f64> = vec![f64::INFINITY; states];
    prev[init] = 0.0;
    let mut next = vec![0.0; states];
    let mut suffix = vec![0.0; states + 1];
    for &dk in d {
        // m(s') = min(min_{s ≥ s'} prev[s], min_{s < s'} (prev[s] − boot·s) + boot·s').
        suffix[states] = f64::INFINITY;
        for s in (0..states).rev() {
            suffix[s] = suffix[s + 1].min(prev[s]);
        }
        let mut prefix = f64::INFINITY; // min_{s < s'} prev[s] − boot·s
        let dk = dk as usize;
        for s in 0..states {
            let carry = suffix[s].min(prefix + boot * s as f64);
            let penalty = if s < dk { lambda } else { 0.0 };
            next[s] = carry + s as f64 + penalty;
            prefix = prefix.min(prev[s] - boot * s as f64);
        }
        std::mem::swap(&mut prev, &mut next);
    }
    prev.iter().copied().fold(f64::INFINITY, f64::min)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exhaustive minimum over every path (tiny inputs only).
    fn brute(input: &BoundInput<'_>, v: usize) -> f64 {
        let d = input.demand;
        let top = d.iter().copied().max().unwrap_or(0);
        let boot = input.lead_s / input.tick_s;
        let n = d.len();
        let mut best = f64::INFINITY;
        let base = top as usize + 1;
        let total = base.pow(n as u32);
        for code in 0..total {
            let mut c = code;
            let mut prev = input.initial.min(top);
            let (mut cost, mut viol) = (0.0, 0);
            for &dk in d {
                let s = (c % base) as u32;
                c /= base;
                cost += f64::from(s) + boot * f64::from(s.saturating_sub(prev));
                viol += usize::from(s < dk);
                prev = s;
            }
            if viol <= v {
                best = best.min(cost);
            }
        }
        best
    }

    #[test]
    fn zero_violations_bound_equals_the_exhaustive_optimum() {
        let cases: [(&[u32], u32); 4] = [
            (&[1, 3, 0, 2, 2], 1),
            (&[2, 2, 2, 2], 0),
            (&[0, 3, 0, 3, 0, 3], 0),
            (&[3, 1, 1, 1, 3], 3),
        ];
        for (demand, initial) in cases {
            let input = BoundInput {
                demand,
                tick_s: 15.0,
                lead_s: 30.0,
                initial,
            };
            let exact = brute(&input, 0);
            let got = min_instance_ticks(&input, 0);
            assert!((got - exact).abs() < 1e-9, "{demand:?}: {got} vs {exact}");
        }
    }

    #[test]
    fn violation_budget_bound_never_exceeds_the_exhaustive_optimum() {
        // A small deterministic family of demand curves.
        let mut seed = 7u64;
        for _ in 0..60 {
            let n = 3 + (seed % 4) as usize;
            let demand: Vec<u32> = (0..n)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((seed >> 33) % 4) as u32
                })
                .collect();
            let input = BoundInput {
                demand: &demand,
                tick_s: 15.0,
                lead_s: 45.0,
                initial: (seed % 3) as u32,
            };
            for v in 0..3 {
                let exact = brute(&input, v);
                let got = min_instance_ticks(&input, v);
                assert!(
                    got <= exact + 1e-6,
                    "{demand:?} v={v}: bound {got} > optimum {exact}"
                );
            }
        }
    }

    #[test]
    fn allowing_violations_lowers_the_bound_on_a_spike() {
        // One tall one-tick spike: skipping it saves its instances and their boot.
        let mut demand = vec![2u32; 40];
        demand[20] = 30;
        let input = BoundInput {
            demand: &demand,
            tick_s: 15.0,
            lead_s: 180.0,
            initial: 2,
        };
        let strict = min_instance_ticks(&input, 0);
        let loose = min_instance_ticks(&input, 1);
        assert!(
            (strict - (2.0 * 40.0 + 28.0 + 12.0 * 28.0)).abs() < 1e-6,
            "{strict}"
        );
        assert!((loose - 80.0).abs() < 1e-3, "{loose}");
    }

    #[test]
    fn empty_trace_and_unlimited_budget_cost_nothing() {
        let input = BoundInput {
            demand: &[],
            tick_s: 15.0,
            lead_s: 60.0,
            initial: 0,
        };
        assert_eq!(min_instance_hours(&input, 0), 0.0);
        let input = BoundInput {
            demand: &[3, 4],
            ..input
        };
        assert_eq!(min_instance_hours(&input, 2), 0.0);
    }
}
