//! The workload driver: per pool, a request-rate shape (synthetic or a replayed trace)
//! is spread over the pool's ready instances through `flexus_sim::capacity`, and the
//! result is written as CES samples every `metric_interval_s` emulated seconds.
//!
//! Metrics written (see docs/reference/emulator.md):
//! - `SYS.ECS` `cpu_util`, `mem_util` and `AGT.ECS` `cpu_usage`, `mem_usedPercent`,
//!   dimension `instance_id` — for every running instance of a pool with a workload;
//! - `FLEXUS.POOL` dimension `pool`: `request_rate`, `served_rate`, `capacity_rps`,
//!   `response_time`, `response_time_p95`, `queue_depth`, `ready_instances`, `dropped_requests`.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use flexus_sim::capacity::{self, Flavor};
use flexus_sim::trace::Trace;
use serde::{Deserialize, Serialize};

use crate::config::EmulatorConfig;
use crate::metrics::{DRIVER_RETENTION_MS, Sample};
use crate::state::State;

/// Custom namespace of pool-level metrics.
pub const POOL_NAMESPACE: &str = "FLEXUS.POOL";
/// Most samples generated in one advance per pool (older steps are skipped).
const MAX_STEPS: i64 = 5_000;

/// A request-rate shape. Times are emulated seconds since the workload was set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Shape {
    /// Constant rate.
    Constant {
        /// Requests/s.
        rps: f64,
    },
    /// `rps_before` until `at_seconds`, then `rps_after`.
    Step {
        /// Rate before.
        rps_before: f64,
        /// Rate after.
        rps_after: f64,
        /// Switch time.
        at_seconds: f64,
    },
    /// `base_rps` with a burst of `burst_rps` during `[start, start + duration)`,
    /// repeating every `every_seconds` if given.
    Burst {
        /// Base rate.
        base_rps: f64,
        /// Rate during the burst.
        burst_rps: f64,
        /// Burst start.
        start_seconds: f64,
        /// Burst length.
        duration_seconds: f64,
        /// Repeat period.
        #[serde(default)]
        every_seconds: Option<f64>,
    },
    /// `mean + amplitude × sin(2π t / period)`.
    Sine {
        /// Mean rate.
        mean_rps: f64,
        /// Amplitude.
        amplitude_rps: f64,
        /// Period.
        period_seconds: f64,
    },
    /// Replay of a trace (a name known to `flexus_sim::trace`, e.g. `nasa-http-1995`,
    /// or a `timestamp,value` CSV path).
    Trace {
        /// Trace name or file.
        trace: String,
        /// Multiply the rate by this factor (after `peak_instances` scaling).
        #[serde(default)]
        scale: Option<f64>,
        /// Scale so that the trace's p99.9 needs this many instances of `flavor`.
        #[serde(default)]
        peak_instances: Option<u32>,
        /// Flavor for `peak_instances` (default: the trace's default flavor or `x1.2u.4g`).
        #[serde(default)]
        flavor: Option<String>,
        /// Trace seconds replayed per emulated second (default 1).
        #[serde(default)]
        speedup: Option<f64>,
        /// Start this many trace seconds into the trace.
        #[serde(default)]
        offset_seconds: Option<f64>,
        /// For a CSV file: 0-based column holding the value (default 1; column 0 is the time).
        #[serde(default)]
        column: Option<usize>,
        /// For a CSV file: requests per step (`count`, default) or per second (`rate`).
        #[serde(default)]
        values: Option<TraceValues>,
    },
}

/// Meaning of the values of a CSV trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceValues {
    /// Requests in each step.
    Count,
    /// Requests per second.
    Rate,
}

/// Loads `timestamp,…` CSV with the value in `column` (delimiter, header and the
/// timestamp's forms as [`flexus_sim::trace::csv_reader`] and
/// [`flexus_sim::trace::parse_timestamp`] read them); the step is the median spacing
/// snapped to a usual period ([`flexus_sim::trace::step_of`]);
/// the longest contiguous segment (gaps up to 3 steps interpolated) is kept.
fn load_csv_column(path: &str, column: usize, values: TraceValues) -> Result<Trace, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("trace {path:?}: {e}"))?;
    let mut pts = Vec::new();
    for rec in flexus_sim::trace::csv_reader(&bytes).into_records() {
        let rec = rec.map_err(|e| format!("trace {path:?}: {e}"))?;
        let line = rec.position().map_or(0, |p| p.line());
        let ts = rec.get(0).unwrap_or_default();
        let t = flexus_sim::trace::parse_timestamp(ts)
            .ok_or_else(|| format!("trace {path:?} line {line}: bad timestamp {ts:?}"))?;
        let raw = rec
            .get(column)
            .ok_or_else(|| format!("trace {path:?} line {line}: no column {column}"))?;
        let v: f64 = raw.trim().parse().map_err(|_| {
            format!("trace {path:?} line {line}: column {column} value {raw:?} is not a number")
        })?;
        if !v.is_finite() || v < 0.0 {
            return Err(format!(
                "trace {path:?} line {line}: value {v} must be >= 0"
            ));
        }
        pts.push((t, v));
    }
    let times: Vec<i64> = pts.iter().map(|p| p.0).collect();
    let step = flexus_sim::trace::step_of(&times)
        .ok_or_else(|| format!("trace {path:?}: needs at least two distinct timestamps"))?;
    let per_second = |v: f64| match values {
        TraceValues::Count => v / f64::from(step),
        TraceValues::Rate => v,
    };
    let pts: Vec<(i64, f64)> = pts.into_iter().map(|(t, v)| (t, per_second(v))).collect();
    let seg = flexus_sim::trace::regularise(pts, step, 3 * i64::from(step))
        .into_iter()
        .max_by_key(|s| s.values.len())
        .ok_or_else(|| format!("trace {path:?}: no samples"))?;
    Trace::from_rps(path, seg.start_unix, step, seg.values).map_err(|e| e.to_string())
}

/// A workload bound to a pool.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkloadSpec {
    /// The shape.
    pub shape: Shape,
    /// Emulated time it was set (t = 0 of the shape).
    pub started_at: DateTime<Utc>,
    /// Loaded trace (not persisted; reloaded on demand).
    #[serde(skip)]
    pub trace: Option<Arc<Trace>>,
}

/// Load of one instance at the last sample.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InstanceLoad {
    /// Flavor.
    pub flavor: String,
    /// Requests/s served.
    pub served_rps: f64,
    /// Slot utilisation 0..1.
    pub utilisation: f64,
    /// CPU %.
    pub cpu_pct: f64,
    /// Memory %.
    pub mem_pct: f64,
    /// Mean response time, ms.
    pub latency_ms: f64,
}

/// The pool's last computed sample.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LoadSnapshot {
    /// Sample time.
    pub at: Option<DateTime<Utc>>,
    /// Offered requests/s.
    pub offered_rps: f64,
    /// Served requests/s.
    pub served_rps: f64,
    /// Saturation throughput of the ready instances.
    pub capacity_rps: f64,
    /// Requests waiting.
    pub queue_depth: f64,
    /// Mean response time, ms (0 with no ready instance).
    pub response_time_ms: f64,
    /// p95 response time, ms.
    pub response_time_p95_ms: f64,
    /// Requests dropped in the step.
    pub dropped: f64,
    /// Ready instances.
    pub ready_instances: u32,
    /// Per serving instance.
    pub instances: BTreeMap<String, InstanceLoad>,
}

/// Runtime state of a pool's driver.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PoolRuntime {
    /// Backlog carried to the next step.
    pub backlog: f64,
    /// Last sample time.
    pub last_sample: Option<DateTime<Utc>>,
    /// Last sample.
    pub last: LoadSnapshot,
}

/// Loads the trace of a trace shape (scaled), or `None` for synthetic shapes.
pub fn load_trace(shape: &Shape) -> Result<Option<Arc<Trace>>, String> {
    let Shape::Trace {
        trace,
        scale,
        peak_instances,
        flavor,
        column,
        values,
        ..
    } = shape
    else {
        return Ok(None);
    };
    let mut t = if column.is_some() || values.is_some() {
        if flexus_sim::trace::info(trace).is_ok() || !std::path::Path::new(trace).is_file() {
            return Err(format!(
                "trace {trace:?}: column and values apply to CSV files only"
            ));
        }
        load_csv_column(
            trace,
            column.unwrap_or(1),
            values.unwrap_or(TraceValues::Count),
        )?
    } else {
        flexus_sim::trace::load(trace).map_err(|e| format!("trace {trace:?}: {e}"))?
    };
    if let Some(peak) = peak_instances {
        let fname = flavor
            .clone()
            .or_else(|| {
                flexus_sim::trace::info(trace)
                    .ok()
                    .map(|i| i.flavor.to_string())
            })
            .unwrap_or_else(|| "x1.2u.4g".into());
        let f = capacity::lookup(&fname).map_err(|e| format!("flavor {fname:?}: {e}"))?;
        t = t.scaled_to_fleet(&f, *peak);
    }
    if let Some(s) = scale {
        t.rps.iter_mut().for_each(|v| *v *= s);
        t.scale *= s;
    }
    Ok(Some(Arc::new(t)))
}

/// Checks a shape's numbers; names the bad field.
pub fn validate(shape: &Shape) -> Result<(), String> {
    let check = |name: &str, v: f64| {
        if v.is_finite() && v >= 0.0 {
            Ok(())
        } else {
            Err(format!("{name} must be a finite number >= 0, got {v}"))
        }
    };
    let positive = |name: &str, v: f64| {
        if v.is_finite() && v > 0.0 {
            Ok(())
        } else {
            Err(format!("{name} must be positive, got {v}"))
        }
    };
    match shape {
        Shape::Constant { rps } => check("rps", *rps),
        Shape::Step {
            rps_before,
            rps_after,
            at_seconds,
        } => {
            check("rps_before", *rps_before)?;
            check("rps_after", *rps_after)?;
            check("at_seconds", *at_seconds)
        }
        Shape::Burst {
            base_rps,
            burst_rps,
            start_seconds,
            duration_seconds,
            every_seconds,
        } => {
            check("base_rps", *base_rps)?;
            check("burst_rps", *burst_rps)?;
            check("start_seconds", *start_seconds)?;
            check("duration_seconds", *duration_seconds)?;
            match every_seconds {
                Some(e) => positive("every_seconds", *e),
                None => Ok(()),
            }
        }
        Shape::Sine {
            mean_rps,
            amplitude_rps,
            period_seconds,
        } => {
            check("mean_rps", *mean_rps)?;
            check("amplitude_rps", *amplitude_rps)?;
            positive("period_seconds", *period_seconds)
        }
        Shape::Trace {
            scale,
            speedup,
            offset_seconds,
            ..
        } => {
            check("scale", scale.unwrap_or(1.0))?;
            check("offset_seconds", offset_seconds.unwrap_or(0.0))?;
            positive("speedup", speedup.unwrap_or(1.0))
        }
    }
}

impl WorkloadSpec {
    /// Offered requests/s at emulated time `t`.
    pub fn rate_at(&self, t: DateTime<Utc>) -> f64 {
        let x = (t - self.started_at).num_milliseconds() as f64 / 1000.0;
        let r = match &self.shape {
            Shape::Constant { rps } => *rps,
            Shape::Step {
                rps_before,
                rps_after,
                at_seconds,
            } => {
                if x < *at_seconds {
                    *rps_before
                } else {
                    *rps_after
                }
            }
            Shape::Burst {
                base_rps,
                burst_rps,
                start_seconds,
                duration_seconds,
                every_seconds,
            } => {
                let mut y = x - start_seconds;
                if let Some(e) = every_seconds
                    && y >= 0.0
                {
                    y = y.rem_euclid(*e);
                }
                if y >= 0.0 && y < *duration_seconds {
                    *burst_rps
                } else {
                    *base_rps
                }
            }
            Shape::Sine {
                mean_rps,
                amplitude_rps,
                period_seconds,
            } => mean_rps + amplitude_rps * (std::f64::consts::TAU * x / period_seconds).sin(),
            Shape::Trace {
                speedup,
                offset_seconds,
                ..
            } => match &self.trace {
                Some(tr) => tr.rate_at(offset_seconds.unwrap_or(0.0) + x * speedup.unwrap_or(1.0)),
                None => 0.0,
            },
        };
        if r.is_finite() { r.max(0.0) } else { 0.0 }
    }
}

fn dims(name: &str, value: &str) -> Vec<(String, String)> {
    vec![(name.to_string(), value.to_string())]
}

/// Generates samples for every pool with a workload over `(prev, now]`.
pub fn drive(state: &mut State, prev: DateTime<Utc>, now: DateTime<Utc>, config: &EmulatorConfig) {
    let interval_ms = i64::from(config.metric_interval_s) * 1000;
    let pools: Vec<String> = state.workloads.keys().cloned().collect();
    for pool in pools {
        // Reload a trace lost in a restart.
        if let Some(spec) = state.workloads.get_mut(&pool)
            && matches!(spec.shape, Shape::Trace { .. })
            && spec.trace.is_none()
        {
            match load_trace(&spec.shape) {
                Ok(t) => spec.trace = t,
                Err(e) => {
                    tracing::warn!(pool = %pool, error = %e, "workload trace could not be loaded")
                }
            }
        }
        let Some(spec) = state.workloads.get(&pool).cloned() else {
            continue;
        };
        let rt = state.pools.entry(pool.clone()).or_default().clone();
        let from = rt
            .last_sample
            .unwrap_or(spec.started_at.max(prev))
            .timestamp_millis();
        let mut t = (from.div_euclid(interval_ms) + 1) * interval_ms;
        let end = now.timestamp_millis();
        if t > end {
            continue;
        }
        let steps = (end - t) / interval_ms + 1;
        let mut backlog = rt.backlog;
        if steps > MAX_STEPS {
            t += (steps - MAX_STEPS) * interval_ms;
            backlog = 0.0;
        }
        let mut last = rt.last.clone();
        let mut last_t = rt.last_sample;
        while t <= end {
            let at = DateTime::from_timestamp_millis(t).unwrap_or(now);
            let (snap, q) = step(
                state,
                &pool,
                &spec,
                at,
                backlog,
                f64::from(config.metric_interval_s),
                config,
            );
            backlog = q;
            record(state, &pool, &snap, at, config);
            last = snap;
            last_t = Some(at);
            t += interval_ms;
        }
        let rt = state.pools.entry(pool).or_default();
        rt.backlog = backlog;
        rt.last_sample = last_t;
        rt.last = last;
    }
}

fn step(
    state: &State,
    pool: &str,
    spec: &WorkloadSpec,
    at: DateTime<Utc>,
    backlog: f64,
    dt: f64,
    config: &EmulatorConfig,
) -> (LoadSnapshot, f64) {
    let rate = spec.rate_at(at);
    // Ready instances by flavor (booting and warming ones serve nothing).
    let mut groups: BTreeMap<String, (Flavor, Vec<String>)> = BTreeMap::new();
    for s in state.servers.values() {
        if s.tag(&config.pool_tag_key) != Some(pool) || !s.serving_at(at) {
            continue;
        }
        if s.reclaim_at.is_some_and(|r| r <= at) || s.delete_at.is_some_and(|d| d <= at) {
            continue;
        }
        let Some(f) = crate::flavors::find(&s.flavor) else {
            continue;
        };
        groups
            .entry(s.flavor.clone())
            .or_insert_with(|| (f, Vec::new()))
            .1
            .push(s.id.clone());
    }
    // fold from +0.0 (an empty f64 `sum()` is -0.0).
    let total_cap: f64 = groups
        .values()
        .fold(0.0, |acc, (f, ids)| acc + f.max_rps() * ids.len() as f64);
    let mut snap = LoadSnapshot {
        at: Some(at),
        offered_rps: rate,
        capacity_rps: total_cap,
        ..Default::default()
    };
    if groups.is_empty() {
        snap.dropped = rate * dt + backlog;
        return (snap, 0.0);
    }
    let mut queue = 0.0;
    let mut lat_weighted = 0.0;
    let mut p95_max: f64 = 0.0;
    let mut lat_any = 0.0;
    for (f, ids) in groups.values() {
        let share = f.max_rps() * ids.len() as f64 / total_cap;
        let pm = capacity::pool_metrics(rate * share, ids.len() as u32, f, backlog * share, dt);
        queue += pm.queue_depth;
        snap.served_rps += pm.served_rps;
        snap.dropped += pm.dropped;
        snap.ready_instances += pm.ready_instances;
        lat_weighted += pm.per_instance.latency_ms * pm.served_rps;
        lat_any = pm.per_instance.latency_ms;
        p95_max = p95_max.max(pm.per_instance.p95_latency_ms);
        for id in ids {
            snap.instances.insert(
                id.clone(),
                InstanceLoad {
                    flavor: f.name.clone(),
                    served_rps: pm.per_instance.served_rps,
                    utilisation: pm.per_instance.utilisation,
                    cpu_pct: pm.per_instance.cpu_pct,
                    mem_pct: pm.per_instance.mem_pct,
                    latency_ms: pm.per_instance.latency_ms,
                },
            );
        }
    }
    snap.response_time_ms = if snap.served_rps > 0.0 {
        lat_weighted / snap.served_rps
    } else {
        lat_any
    };
    snap.response_time_p95_ms = p95_max;
    snap.queue_depth = queue;
    (snap, queue)
}

fn record(
    state: &mut State,
    pool: &str,
    snap: &LoadSnapshot,
    at: DateTime<Utc>,
    config: &EmulatorConfig,
) {
    let ts = at.timestamp_millis();
    let sample = |value| Sample {
        ts_ms: ts,
        value,
        expires_ms: ts + DRIVER_RETENTION_MS,
    };
    let m = &mut state.driver_metrics;
    // Running instances of the pool: serving ones report their load, warming ones what
    // the capacity model gives an instance at zero load.
    for s in state.servers.values() {
        if !s.running_at(at) || s.tag(&config.pool_tag_key) != Some(pool) {
            continue;
        }
        let (cpu, mem) = match snap.instances.get(&s.id) {
            Some(l) => (l.cpu_pct, l.mem_pct),
            None => match crate::flavors::find(&s.flavor) {
                Some(f) => {
                    let idle = capacity::idle_metrics(&f);
                    (idle.cpu_pct, idle.mem_pct)
                }
                None => (2.0, 25.0),
            },
        };
        let d = dims("instance_id", &s.id);
        let values = [
            ("SYS.ECS", "cpu_util", cpu),
            ("SYS.ECS", "mem_util", mem),
            ("AGT.ECS", "cpu_usage", cpu),
            ("AGT.ECS", "mem_usedPercent", mem),
        ];
        for (namespace, name, v) in values {
            m.push(namespace, name, &d, "%", sample(v));
        }
    }
    let d = dims("pool", pool);
    let values = [
        ("request_rate", "count/s", snap.offered_rps),
        ("served_rate", "count/s", snap.served_rps),
        ("capacity_rps", "count/s", snap.capacity_rps),
        ("response_time", "ms", snap.response_time_ms),
        ("response_time_p95", "ms", snap.response_time_p95_ms),
        ("queue_depth", "count", snap.queue_depth),
        ("ready_instances", "count", f64::from(snap.ready_instances)),
        ("dropped_requests", "count", snap.dropped),
    ];
    for (name, unit, v) in values {
        m.push(POOL_NAMESPACE, name, &d, unit, sample(v));
    }
}

/// Convenience for tests: the number of emulated seconds in a duration.
pub fn secs(d: Duration) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(shape: Shape) -> WorkloadSpec {
        WorkloadSpec {
            shape,
            started_at: DateTime::from_timestamp(0, 0).expect("t0"),
            trace: None,
        }
    }

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(s, 0).expect("t")
    }

    #[test]
    fn synthetic_shapes_follow_their_definition() {
        let step = spec(Shape::Step {
            rps_before: 10.0,
            rps_after: 50.0,
            at_seconds: 60.0,
        });
        assert_eq!(step.rate_at(at(59)), 10.0);
        assert_eq!(step.rate_at(at(60)), 50.0);
        let burst = spec(Shape::Burst {
            base_rps: 5.0,
            burst_rps: 100.0,
            start_seconds: 10.0,
            duration_seconds: 5.0,
            every_seconds: Some(60.0),
        });
        assert_eq!(burst.rate_at(at(9)), 5.0);
        assert_eq!(burst.rate_at(at(12)), 100.0);
        assert_eq!(burst.rate_at(at(16)), 5.0);
        assert_eq!(burst.rate_at(at(72)), 100.0);
        let sine = spec(Shape::Sine {
            mean_rps: 10.0,
            amplitude_rps: 20.0,
            period_seconds: 40.0,
        });
        assert_eq!(sine.rate_at(at(30)), 0.0, "negative rates clamp to zero");
    }

    #[test]
    fn invalid_shapes_name_the_field() {
        let e = validate(&Shape::Constant { rps: -1.0 }).expect_err("negative");
        assert!(e.contains("rps"));
        let e = validate(&Shape::Sine {
            mean_rps: 1.0,
            amplitude_rps: 1.0,
            period_seconds: 0.0,
        })
        .expect_err("zero period");
        assert!(e.contains("period_seconds"));
    }
}
