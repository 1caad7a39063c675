//! `decide()` throughput: a five-metric target-tracking policy with 100 history points
//! (all inside the stabilisation windows and rate periods, so every point is scanned).
//!
//! `cargo bench -p flexus-policy --bench decide`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
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

fn bench(c: &mut Criterion) {
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
    c.bench_function("decide/target_tracking_5_metrics_100_history", |b| {
        b.iter(|| decide(black_box(&cp), black_box(&input)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
