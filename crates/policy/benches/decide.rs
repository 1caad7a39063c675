//! `decide()` throughput: a five-metric target-tracking policy with 100 history points
//! (all inside the stabilisation windows and rate periods, so every point is scanned).
//!
//! `cargo bench -p flexus-policy --bench decide`
//!
//! Each case runs twice in one run: measured by wall time (criterion's default) and by
//! the benchmark thread's CPU time, which other processes on a busy machine do not inflate.

use std::hint::black_box;
use std::time::Duration;

use cpu_time::ThreadTime;
use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flexus_policy::*;

const NOW: Timestamp = Timestamp::from_secs(1_767_600_000);

fn five_metric_policy() -> CompiledPolicy {
    let src = r#"{
      "strategy": "target_tracking",
      "bounds": {"min": 2, "max": 200},
      "metrics": [
        {"name": "cpu", "kind": "cpu", "source": {"type": "push"}, "target": 60},
        {"name": "memory", "kind": "memory", "source": {"type": "push"}, "target": 70},
        {"name": "gpu", "kind": "gpu", "source": {"type": "push"}, "target": 62},
        {"name": "queue", "kind": "queue_length", "source": {"type": "push"}, "target": 4, "per_instance": true},
        {"name": "errors", "kind": "error_rate", "source": {"type": "push"}, "target": 2}
      ],
      "scale_out": {"stabilisation_window": "1m", "policies": [
        {"type": "percent", "value": 100, "period": "5m"}, {"type": "pods", "value": 4, "period": "5m"}]},
      "scale_in": {"stabilisation_window": "5m", "cooldown": "1m", "policies": [
        {"type": "percent", "value": 25, "period": "5m"}]},
      "spot": {"on_demand_base": 2, "spot_percentage": 50}
    }"#;
    CompiledPolicy::new(parse_json(src).expect("valid")).expect("compiles")
}

fn history() -> History {
    let mut h = History::new();
    for i in 0..100u64 {
        let at = NOW.sub(Duration::from_secs(297 - 3 * i));
        h.recommendations.push_back(Recommendation {
            at,
            desired: 18 + (i % 5) as u32,
        });
        if i % 10 == 0 {
            h.record_event(ScaleEvent {
                at,
                from: 18,
                to: 20,
            });
        }
        h.cpu_samples.push_back(Sample {
            at,
            value: 50.0 + (i % 7) as f64,
        });
    }
    h
}

/// Criterion measurement of the benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`):
/// on a shared machine, other processes stealing the core inflate wall time but not this.
struct ThreadCpu;

struct NanosFormatter;

impl ValueFormatter for NanosFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (div, unit) = if typical < 1e3 {
            (1.0, "ns")
        } else if typical < 1e6 {
            (1e3, "µs")
        } else if typical < 1e9 {
            (1e6, "ms")
        } else {
            (1e9, "s")
        };
        for v in values.iter_mut() {
            *v /= div;
        }
        unit
    }

    fn scale_throughputs(
        &self,
        _typical: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let per = match throughput {
            Throughput::Elements(n) => *n as f64,
            _ => 1.0,
        };
        for v in values.iter_mut() {
            *v = per * 1e9 / *v;
        }
        "elem/s"
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

impl Measurement for ThreadCpu {
    type Intermediate = ThreadTime;
    type Value = Duration;

    fn start(&self) -> ThreadTime {
        ThreadTime::now()
    }
    fn end(&self, i: ThreadTime) -> Duration {
        i.elapsed()
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, v: &Duration) -> f64 {
        v.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &NanosFormatter
    }
}

fn bench<M: Measurement + 'static>(c: &mut Criterion<M>, clock: &str) {
    let cp = five_metric_policy();
    let h = history();
    assert_eq!(h.recommendations.len(), 100);
    let pool = PoolState::ready(20, Timestamp::from_secs(0));
    let obs: Vec<Observation> = [
        ("cpu", 71.0),
        ("memory", 55.0),
        ("gpu", 80.0),
        ("queue", 90.0),
        ("errors", 1.0),
    ]
    .iter()
    .map(|(m, v)| Observation {
        metric: (*m).into(),
        value: *v,
        at: NOW.sub(Duration::from_secs(5)),
    })
    .collect();
    let input = DecisionInput {
        now: NOW,
        observations: &obs,
        pool: &pool,
        history: &h,
        prediction: None,
    };
    let d = decide(&cp, &input);
    assert_eq!(d.proposals.len(), 5);
    c.bench_function(
        &format!("decide/{clock}/target_tracking_5_metrics_100_history"),
        |b| b.iter(|| decide(black_box(&cp), black_box(&input))),
    );
    // Same policy and inputs with an empty history, for the cost of the history scans.
    let empty = History::new();
    let bare = DecisionInput {
        history: &empty,
        ..input
    };
    c.bench_function(
        &format!("decide/{clock}/target_tracking_5_metrics_0_history"),
        |b| b.iter(|| decide(black_box(&cp), black_box(&bare))),
    );
}

fn wall(c: &mut Criterion) {
    bench(c, "wall");
}

fn thread_cpu(c: &mut Criterion<ThreadCpu>) {
    bench(c, "thread_cpu");
}

criterion_group!(wall_clock, wall);
criterion_group! {
    name = cpu_clock;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = thread_cpu
}
criterion_main!(wall_clock, cpu_clock);
