//! Per-flavor capacity and queueing model.
//!
//! Each instance is modelled as an M/M/c queue: `workers` parallel slots (vCPU
//! worker threads, or batch slots on a GPU), each serving one request in
//! `service_ms` on average. From that follow:
//!
//! - the saturation throughput `max_rps = workers * 1000 / service_ms`;
//! - the mean and p95 response time at an offered rate (Erlang C), which grow
//!   without bound as utilisation approaches 1;
//! - the rate an instance can take while its p95 latency stays within the SLO
//!   ([`Flavor::rps_at_slo`]) — the unit of *demand* in the scorecard.
//!
//! A pool (see [`pool_metrics`]) spreads load evenly over its ready instances.
//! When the offered load exceeds the pool's saturation throughput, the excess
//! waits in a backlog (a load-balancer queue) that drains when capacity comes
//! back; requests that would wait longer than `queue_timeout_s` are dropped.
//!
//! The catalogue's numbers are illustrative (a reference HTTP request on the
//! Flexus X `x1`/`x1e` sizes, a reference LLM request on the GPU flavors); the
//! prices are relative units, not Huawei list prices. The emulator uses the
//! same functions so that the agent sees the metrics the simulator scores.

use serde::{Deserialize, Serialize};

use crate::SimError;

/// One instance type and how much work it does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flavor {
    /// Flavor id as used by the ECS API, e.g. `x1.2u.4g`.
    pub name: String,
    /// vCPUs.
    pub vcpus: u32,
    /// Memory in GiB.
    pub memory_gib: u32,
    /// GPUs (0 for CPU flavors).
    pub gpus: u32,
    /// Parallel service slots per instance (the `c` of M/M/c).
    pub workers: u32,
    /// Mean service time of one request on an idle slot, in milliseconds.
    pub service_ms: f64,
    /// Latency SLO the flavor is rated against: p95 response time, in milliseconds.
    pub slo_p95_ms: f64,
    /// Seconds from the create call until the instance is running (billed).
    pub boot_s: f64,
    /// Seconds from running until it serves at full speed (model load, JIT, caches).
    pub warmup_s: f64,
    /// On-demand price per instance-hour (relative units), billed per second.
    pub price_per_hour: f64,
    /// Spot price as a fraction of the on-demand price (e.g. 0.35).
    pub spot_price_factor: f64,
    /// Memory use of an idle, warmed instance, % of RAM.
    pub mem_base_pct: f64,
    /// Additional memory at full utilisation, % of RAM.
    pub mem_load_pct: f64,
    /// Longest a request waits in the load-balancer queue before it is dropped.
    pub queue_timeout_s: f64,
}

/// What one instance reports at a steady offered rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct InstanceMetrics {
    /// Host CPU use, % (0..=100).
    pub cpu_pct: f64,
    /// Host memory use, % (0..=100).
    pub mem_pct: f64,
    /// GPU use, % (0 for CPU flavors).
    pub gpu_pct: f64,
    /// Mean response time, ms.
    pub latency_ms: f64,
    /// 95th percentile response time, ms.
    pub p95_latency_ms: f64,
    /// Requests per second actually served (≤ the saturation throughput).
    pub served_rps: f64,
    /// Fraction of the slots busy (0..=1).
    pub utilisation: f64,
}

/// What a pool of identical ready instances reports over one step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PoolMetrics {
    /// Metrics of one (every) ready instance; latency includes the backlog wait.
    pub per_instance: InstanceMetrics,
    /// Ready instances that took load.
    pub ready_instances: u32,
    /// Offered load, requests/s.
    pub offered_rps: f64,
    /// Served load over the step, requests/s.
    pub served_rps: f64,
    /// Requests waiting in the load-balancer queue at the end of the step.
    pub queue_depth: f64,
    /// Requests dropped during the step (queue timeout, or no instance at all).
    pub dropped: f64,
    /// Fraction of this step's served requests whose response time exceeded the SLO.
    pub violating_fraction: f64,
    /// True when the p95 latency was within the SLO and nothing was dropped.
    pub slo_met: bool,
}

/// Quantile used for the SLO (p95).
const SLO_QUANTILE_TAIL: f64 = 0.05;
/// Utilisation at which a saturated instance's latency is evaluated.
const SATURATED_RHO: f64 = 0.98;
/// Host CPU % of an idle instance (agent, OS).
const IDLE_CPU_PCT: f64 = 2.0;

#[allow(clippy::too_many_arguments)]
fn flavor(
    name: &str,
    vcpus: u32,
    memory_gib: u32,
    gpus: u32,
    workers: u32,
    service_ms: f64,
    slo_p95_ms: f64,
    boot_s: f64,
    warmup_s: f64,
    price_per_hour: f64,
) -> Flavor {
    Flavor {
        name: name.to_owned(),
        vcpus,
        memory_gib,
        gpus,
        workers,
        service_ms,
        slo_p95_ms,
        boot_s,
        warmup_s,
        price_per_hour,
        spot_price_factor: 0.35,
        mem_base_pct: if gpus > 0 { 45.0 } else { 25.0 },
        mem_load_pct: if gpus > 0 { 20.0 } else { 40.0 },
        queue_timeout_s: 30.0,
    }
}

/// The built-in catalogue: Flexus X default (`x1.*`) and performance-mode
/// (`x1e.*`, faster per request, 30 % dearer) sizes, and GPU inference flavors.
pub fn catalogue() -> Vec<Flavor> {
    vec![
        flavor("x1.1u.1g", 1, 1, 0, 1, 40.0, 200.0, 40.0, 20.0, 0.03),
        flavor("x1.1u.4g", 1, 4, 0, 1, 40.0, 200.0, 40.0, 20.0, 0.04),
        flavor("x1.2u.4g", 2, 4, 0, 2, 40.0, 200.0, 45.0, 20.0, 0.06),
        flavor("x1.4u.8g", 4, 8, 0, 4, 40.0, 200.0, 50.0, 20.0, 0.12),
        flavor("x1.8u.16g", 8, 16, 0, 8, 40.0, 200.0, 55.0, 20.0, 0.24),
        flavor("x1e.2u.4g", 2, 4, 0, 2, 30.0, 200.0, 45.0, 20.0, 0.078),
        flavor("x1e.4u.8g", 4, 8, 0, 4, 30.0, 200.0, 50.0, 20.0, 0.156),
        flavor("x1e.8u.16g", 8, 16, 0, 8, 30.0, 200.0, 55.0, 20.0, 0.312),
        // GPU inference: slots are concurrent sequences in a continuous batch;
        // warm-up is loading the model weights.
        flavor(
            "pi2.2xlarge.4",
            8,
            32,
            1,
            8,
            1500.0,
            4000.0,
            120.0,
            180.0,
            1.5,
        ),
        flavor(
            "p2s.2xlarge.8",
            8,
            64,
            1,
            16,
            1200.0,
            4000.0,
            150.0,
            240.0,
            2.8,
        ),
        flavor(
            "p3.2xlarge.8",
            8,
            64,
            1,
            32,
            900.0,
            3000.0,
            150.0,
            240.0,
            4.5,
        ),
    ]
}

/// Looks a flavor up in the built-in catalogue.
pub fn lookup(name: &str) -> Result<Flavor, SimError> {
    catalogue()
        .into_iter()
        .find(|f| f.name == name)
        .ok_or_else(|| SimError::UnknownFlavor(name.to_owned()))
}

/// Erlang C: probability that an arrival waits, for `c` servers and offered
/// load `a` erlangs (`a < c`).
fn erlang_c(c: u32, a: f64) -> f64 {
    let mut b = 1.0_f64;
    for k in 1..=c {
        b = a * b / (f64::from(k) + a * b);
    }
    let rho = a / f64::from(c);
    b / (1.0 - rho * (1.0 - b))
}

impl Flavor {
    /// Saturation throughput of one instance, requests/s.
    pub fn max_rps(&self) -> f64 {
        f64::from(self.workers) * 1000.0 / self.service_ms
    }

    /// Mean and p95 response time (ms) at a stable offered rate `rps` (< max_rps).
    fn latency_at(&self, rps: f64) -> (f64, f64) {
        let mu1 = 1000.0 / self.service_ms;
        let c = f64::from(self.workers);
        let a = rps / mu1;
        let slack = c * mu1 - rps; // per second
        if rps <= 0.0 {
            return (self.service_ms, self.service_ms);
        }
        let pw = erlang_c(self.workers, a);
        let mean_wait_s = pw / slack;
        let p95_wait_s = if pw <= SLO_QUANTILE_TAIL {
            0.0
        } else {
            (pw / SLO_QUANTILE_TAIL).ln() / slack
        };
        (
            self.service_ms + mean_wait_s * 1000.0,
            self.service_ms + p95_wait_s * 1000.0,
        )
    }

    /// Fraction of requests whose response time exceeds the SLO at a stable rate.
    fn violating_fraction_at(&self, rps: f64) -> f64 {
        let budget_s = (self.slo_p95_ms - self.service_ms) / 1000.0;
        if budget_s <= 0.0 {
            return 1.0;
        }
        if rps <= 0.0 {
            return 0.0;
        }
        let mu1 = 1000.0 / self.service_ms;
        let slack = f64::from(self.workers) * mu1 - rps;
        let pw = erlang_c(self.workers, rps / mu1);
        (pw * (-slack * budget_s).exp()).clamp(0.0, 1.0)
    }

    /// Highest per-instance rate at which the p95 response time stays within
    /// the SLO (requests/s). Zero if even an idle instance misses the SLO.
    pub fn rps_at_slo(&self) -> f64 {
        if self.service_ms >= self.slo_p95_ms {
            return 0.0;
        }
        let (mut lo, mut hi) = (0.0, self.max_rps() * 0.999_999);
        for _ in 0..60 {
            let mid = 0.5 * (lo + hi);
            if self.latency_at(mid).1 <= self.slo_p95_ms {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Minimal number of instances whose p95 meets the SLO at `total_rps`.
    pub fn demand_instances(&self, total_rps: f64) -> u32 {
        if total_rps <= 0.0 {
            return 0;
        }
        let per = self.rps_at_slo();
        if per <= 0.0 {
            return u32::MAX;
        }
        // Tiny tolerance so that an exact multiple does not round up on float noise.
        let n = (total_rps / per - 1e-9).ceil();
        if n >= f64::from(u32::MAX) {
            u32::MAX
        } else {
            n.max(1.0) as u32
        }
    }

    /// Cost of running one instance for `seconds`, on-demand or spot.
    pub fn cost(&self, seconds: f64, spot: bool) -> f64 {
        let factor = if spot { self.spot_price_factor } else { 1.0 };
        self.price_per_hour * factor * seconds / 3600.0
    }

    fn metrics_from_utilisation(
        &self,
        rho: f64,
        served_rps: f64,
        mean_ms: f64,
        p95_ms: f64,
    ) -> InstanceMetrics {
        let rho = rho.clamp(0.0, 1.0);
        let (cpu, gpu) = if self.gpus > 0 {
            (IDLE_CPU_PCT + 8.0 + 25.0 * rho, 100.0 * rho)
        } else {
            (IDLE_CPU_PCT + (100.0 - IDLE_CPU_PCT) * rho, 0.0)
        };
        InstanceMetrics {
            cpu_pct: cpu.min(100.0),
            mem_pct: (self.mem_base_pct + self.mem_load_pct * rho).min(100.0),
            gpu_pct: gpu,
            latency_ms: mean_ms,
            p95_latency_ms: p95_ms,
            served_rps,
            utilisation: rho,
        }
    }
}

/// What a running instance serving nothing reports — one warming up, say: the
/// model's figures at zero load (host CPU at its idle level, memory at its base).
/// The emulator reports it for warming instances. Since CPU is linear in the load
/// below saturation, a pool's CPU summed over its running instances is then the same
/// whether an instance warms up or serves its share, which is why a mean over
/// instances (Cloud Eye's) and the per-instance figure of the serving ones agree.
pub fn idle_metrics(flavor: &Flavor) -> InstanceMetrics {
    flavor.metrics_from_utilisation(0.0, 0.0, 0.0, 0.0)
}

/// Metrics of one warmed instance offered `offered_rps` requests/s in steady
/// state. Above saturation it serves `max_rps` and reports the latency of a
/// saturated instance (the backlog that would build is a pool-level effect,
/// see [`pool_metrics`]).
pub fn instance_metrics(flavor: &Flavor, offered_rps: f64) -> InstanceMetrics {
    let offered = if offered_rps.is_finite() {
        offered_rps.max(0.0)
    } else {
        0.0
    };
    let max = flavor.max_rps();
    let served = offered.min(max);
    let rho = served / max;
    let (mean, p95) = flavor.latency_at(served.min(max * SATURATED_RHO));
    flavor.metrics_from_utilisation(rho, served, mean, p95)
}

/// One step of a pool of `ready_instances` warmed instances of `flavor`,
/// offered `total_rps` for `dt` seconds, starting with `backlog` queued
/// requests. The returned `queue_depth` is the backlog to pass to the next step.
pub fn pool_metrics(
    total_rps: f64,
    ready_instances: u32,
    flavor: &Flavor,
    backlog: f64,
    dt: f64,
) -> PoolMetrics {
    let total_rps = if total_rps.is_finite() {
        total_rps.max(0.0)
    } else {
        0.0
    };
    let backlog = if backlog.is_finite() {
        backlog.max(0.0)
    } else {
        0.0
    };
    let dt = if dt.is_finite() && dt > 0.0 { dt } else { 1.0 };
    let arrivals = total_rps * dt;
    if ready_instances == 0 {
        return PoolMetrics {
            per_instance: flavor.metrics_from_utilisation(0.0, 0.0, 0.0, 0.0),
            ready_instances: 0,
            offered_rps: total_rps,
            served_rps: 0.0,
            queue_depth: 0.0,
            dropped: arrivals + backlog,
            violating_fraction: if arrivals + backlog > 0.0 { 1.0 } else { 0.0 },
            slo_met: arrivals + backlog <= 0.0,
        };
    }
    let n = f64::from(ready_instances);
    let pool_max = n * flavor.max_rps();
    let work = backlog + arrivals;
    let served = work.min(pool_max * dt);
    let queue_cap = pool_max * flavor.queue_timeout_s;
    let left = work - served;
    let queue_depth = left.min(queue_cap);
    let dropped = left - queue_depth;
    let served_rps = served / dt;
    let per_rps = served_rps / n;

    let (metrics, violating_fraction) = if left > 0.0 || backlog > 0.0 {
        // Saturated: every slot busy, plus the average queueing delay of the backlog.
        let avg_queue = 0.5 * (backlog + queue_depth);
        let queue_wait_ms = avg_queue / pool_max * 1000.0;
        let (mean, p95) = flavor.latency_at(flavor.max_rps() * SATURATED_RHO);
        let mean = mean + queue_wait_ms;
        let p95 = p95 + queue_wait_ms;
        let vf = if p95 > flavor.slo_p95_ms {
            1.0
        } else {
            flavor.violating_fraction_at(flavor.max_rps() * SATURATED_RHO)
        };
        (
            flavor.metrics_from_utilisation(per_rps / flavor.max_rps(), per_rps, mean, p95),
            vf,
        )
    } else {
        let m = instance_metrics(flavor, per_rps);
        (
            m,
            flavor.violating_fraction_at(per_rps.min(flavor.max_rps() * SATURATED_RHO)),
        )
    };
    let slo_met = dropped <= 0.0 && metrics.p95_latency_ms <= flavor.slo_p95_ms;
    PoolMetrics {
        per_instance: metrics,
        ready_instances,
        offered_rps: total_rps,
        served_rps,
        queue_depth,
        dropped,
        violating_fraction: if dropped > 0.0 {
            ((violating_fraction * served + dropped) / (served + dropped)).min(1.0)
        } else {
            violating_fraction
        },
        slo_met,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x2() -> Flavor {
        lookup("x1.2u.4g").expect("catalogue has x1.2u.4g")
    }

    #[test]
    fn idle_instances_keep_a_pools_cpu_sum_as_if_they_shared_the_load() {
        // Below saturation, CPU is linear in the load and an idle instance reports the
        // line's intercept: n serving + k idle sum to what n + k serving would.
        for f in [x2(), lookup("x1.1u.1g").expect("flavor")] {
            let idle = idle_metrics(&f);
            assert_eq!(idle.cpu_pct, IDLE_CPU_PCT);
            assert_eq!(idle.mem_pct, f.mem_base_pct);
            let (n, k) = (4.0, 3.0);
            let rate = 0.5 * n * f.max_rps();
            let serving = n * instance_metrics(&f, rate / n).cpu_pct + k * idle.cpu_pct;
            let shared = (n + k) * instance_metrics(&f, rate / (n + k)).cpu_pct;
            assert!((serving - shared).abs() < 1e-9, "{serving} vs {shared}");
        }
        let g = idle_metrics(&lookup("p2s.2xlarge.8").expect("gpu flavor"));
        assert_eq!(
            (g.gpu_pct, g.cpu_pct),
            (0.0, IDLE_CPU_PCT + 8.0),
            "an idle GPU host"
        );
    }

    #[test]
    fn latency_grows_without_bound_as_utilisation_approaches_one() {
        let f = x2();
        let max = f.max_rps();
        let l50 = instance_metrics(&f, 0.5 * max).latency_ms;
        let l90 = instance_metrics(&f, 0.9 * max).latency_ms;
        let l97 = instance_metrics(&f, 0.97 * max).latency_ms;
        assert!(l50 < l90 && l90 < l97, "{l50} {l90} {l97}");
        assert!(l97 > 5.0 * f.service_ms);
        assert!((instance_metrics(&f, 0.0).latency_ms - f.service_ms).abs() < 1e-9);
    }

    #[test]
    fn single_worker_matches_mm1_mean_response_time() {
        // M/M/1: W = S / (1 - rho).
        let f = lookup("x1.1u.1g").expect("flavor");
        let m = instance_metrics(&f, 0.5 * f.max_rps());
        assert!((m.latency_ms - 80.0).abs() < 1e-6, "{}", m.latency_ms);
    }

    #[test]
    fn rps_at_slo_is_where_p95_meets_the_slo() {
        for f in catalogue() {
            let r = f.rps_at_slo();
            assert!(r > 0.0 && r < f.max_rps(), "{}", f.name);
            let at = instance_metrics(&f, r).p95_latency_ms;
            let above = instance_metrics(&f, r * 1.02).p95_latency_ms;
            assert!(at <= f.slo_p95_ms + 1e-6, "{} {at}", f.name);
            assert!(above > f.slo_p95_ms, "{} {above}", f.name);
        }
    }

    #[test]
    fn overload_builds_a_queue_that_drains_when_capacity_returns() {
        let f = x2();
        let max = f.max_rps();
        let p = pool_metrics(3.0 * max, 2, &f, 0.0, 10.0);
        assert!((p.queue_depth - max * 10.0).abs() < 1e-6);
        assert!(!p.slo_met);
        assert!((p.per_instance.cpu_pct - 100.0).abs() < 1e-9);
        let q = pool_metrics(0.5 * max, 4, &f, p.queue_depth, 10.0);
        assert!(q.queue_depth < 1e-9, "backlog drained: {}", q.queue_depth);
        assert!(q.served_rps > 0.5 * max);
    }

    #[test]
    fn a_pool_without_ready_instances_drops_everything() {
        let p = pool_metrics(10.0, 0, &x2(), 5.0, 1.0);
        assert!((p.dropped - 15.0).abs() < 1e-9);
        assert!(!p.slo_met);
    }

    #[test]
    fn demand_is_the_smallest_count_that_meets_the_slo() {
        let f = x2();
        let per = f.rps_at_slo();
        assert_eq!(f.demand_instances(0.0), 0);
        assert_eq!(f.demand_instances(per * 3.0), 3);
        assert_eq!(f.demand_instances(per * 3.0 + 0.01), 4);
        let ok = pool_metrics(per * 3.0, 3, &f, 0.0, 60.0);
        assert!(ok.slo_met);
        let bad = pool_metrics(per * 3.3, 3, &f, 0.0, 60.0);
        assert!(!bad.slo_met);
    }

    #[test]
    fn unknown_flavor_is_a_named_error() {
        let e = lookup("x9.huge").expect_err("unknown");
        assert!(e.to_string().contains("x9.huge"));
    }
}
