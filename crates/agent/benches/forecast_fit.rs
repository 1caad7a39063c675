//! What the agent's forecaster costs per pool: one refit (`FitRequest::run`, on a
//! blocking thread in the agent) over 1, 7 and 14 days of 15-minute buckets with the
//! default seasons (1 d, 7 d), next to a reconcile-pass-sized unit of other work — the
//! bucket update of one sample — so the two read as a ratio.
//!
//! ```text
//! cargo bench -p flexus-agent --bench forecast_fit
//! ```

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use flexus_policy::PredictionSettings;
use flexus_policy::forecast::buckets::{BucketStat, Buckets};

/// A daily and weekly load with deterministic noise, one bucket per 15 minutes.
fn history(days: usize) -> Buckets {
    let mut b = Buckets::new(900.0);
    let mut state = 7u64;
    for i in 0..days * 96 {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let noise = ((state >> 33) as f64 / (1u64 << 31) as f64 - 0.5) * 10.0;
        let t = i as f64 * 900.0;
        let daily = (std::f64::consts::TAU * t / 86_400.0).sin();
        let weekly = (std::f64::consts::TAU * t / (7.0 * 86_400.0)).sin();
        b.add(t, 200.0 + 80.0 * daily + 30.0 * weekly + noise, 900.0);
    }
    b
}

fn fit(c: &mut Criterion) {
    let settings = PredictionSettings {
        enabled: true,
        metric: Some("rps".into()),
        target_per_instance: Some(20.0),
        ..PredictionSettings::default()
    };
    let mut g = c.benchmark_group("forecast_fit");
    for days in [1usize, 7, 14] {
        let b = history(days);
        let now = days as f64 * 86_400.0;
        let req = b
            .fit_request(now, &settings, BucketStat::Mean)
            .expect("enough history");
        g.bench_function(format!("refit_{days}d_{}_buckets", req.y.len()), |bench| {
            bench.iter(|| black_box(req.run().expect("a forecast")))
        });
    }
    let mut b = history(14);
    let mut t = 14.0 * 86_400.0;
    g.bench_function("add_one_sample_14d", |bench| {
        bench.iter(|| {
            t += 15.0;
            black_box(b.add(t, 200.0, 15.0))
        })
    });
    g.finish();
}

criterion_group!(benches, fit);
criterion_main!(benches);
