//! Forecast accuracy on M4-Hourly (horizon 48, season 24): flexus-policy's
//! forecaster (`forecast::forecast` with periods 24 and 168) next to seasonal
//! naive, MASE and sMAPE as in M4. Prints a JSON summary line.
//!
//! `cargo run --release -p flexus-sim --example forecast-m4 [-- <max series>] [--candidates] [--holdout]`
//!
//! With `--holdout` the last 48 training points are the test instead of the official
//! test split (on which the forecaster's lag layout was chosen): an out-of-sample check.
//!
//! With `--candidates` it prints, instead, the MASE of every candidate model
//! (`forecast::candidates`) and of a few ways of choosing or combining them,
//! including per-series selection by a holdout on the last 48 training points
//! (fit on the rest, score, refit on everything) — the evidence behind the
//! fixed median the forecaster uses.

use std::collections::BTreeMap;
use std::time::Instant;

use flexus_policy::forecast::{Method, Model, candidates, forecast, mase, seasonal_naive, smape};

const H: usize = 48;

fn mean_of(fs: &[&Vec<f64>]) -> Vec<f64> {
    (0..H)
        .map(|h| fs.iter().map(|f| f[h]).sum::<f64>() / fs.len() as f64)
        .collect()
}

fn median_of(fs: &[&Vec<f64>]) -> Vec<f64> {
    (0..H)
        .map(|h| {
            let mut v: Vec<f64> = fs.iter().map(|f| f[h]).collect();
            v.sort_by(f64::total_cmp);
            let l = v.len();
            if l % 2 == 1 {
                v[l / 2]
            } else {
                0.5 * (v[l / 2 - 1] + v[l / 2])
            }
        })
        .collect()
}

/// MASE of every candidate and of selection / combination rules.
fn explore(pairs: &[(&[f64], &[f64])]) -> anyhow::Result<()> {
    let mut rules: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    let mut add = |name: String, v: Option<f64>| {
        if let Some(v) = v {
            let e = rules.entry(name).or_insert((0.0, 0));
            e.0 += v;
            e.1 += 1;
        }
    };
    for (y, t) in pairs {
        let n = y.len();
        let hold = candidates(&y[..n - H], &[24, 168], H)?;
        let full = candidates(y, &[24, 168], H)?;
        let sc = |f: &[f64]| mase(t, f, y, 24);
        // (holdout MASE, model, full-data forecast) of the models that ran on both.
        let mut val: Vec<(f64, Model, Vec<f64>)> = Vec::new();
        for (hc, fc) in hold.iter().zip(&full) {
            let (m, h, f) = (&fc.model, &hc.point, &fc.point);
            if let Some(f) = f {
                add(format!("model {m:?}"), sc(f));
            }
            if let (Some(h), Some(f)) = (h, f) {
                let v = mase(&y[n - H..], h, &y[..n - H], 24).unwrap_or(f64::INFINITY);
                val.push((v, *m, f.clone()));
            }
        }
        val.sort_by(|a, b| a.0.total_cmp(&b.0));
        for top in 1..=3usize {
            let sel: Vec<&Vec<f64>> = val.iter().take(top).map(|v| &v.2).collect();
            add(format!("holdout: mean of best {top}"), sc(&mean_of(&sel)));
        }
        let w: Vec<f64> = val.iter().map(|v| v.0.max(1e-6).powi(-2)).collect();
        let ws: f64 = w.iter().sum();
        let inv: Vec<f64> = (0..H)
            .map(|h| val.iter().zip(&w).map(|(v, w)| v.2[h] * w).sum::<f64>() / ws)
            .collect();
        add("holdout: weights 1/MASE^2".into(), sc(&inv));
        let get = |want: Model| {
            full.iter()
                .find(|c| c.model == want)
                .and_then(|c| c.point.as_ref())
        };
        if let (Some(a), Some(b)) = (get(Model::SeasonalAr), get(Model::SeasonalArLog)) {
            add(
                "fixed: mean of SeasonalAr, SeasonalArLog".into(),
                sc(&mean_of(&[a, b])),
            );
            if let Some(c) = get(Model::MstlEts) {
                add(
                    "fixed: median of SeasonalAr, SeasonalArLog, MstlEts".into(),
                    sc(&median_of(&[a, b, c])),
                );
            }
        }
        let all: Vec<&Vec<f64>> = full.iter().filter_map(|c| c.point.as_ref()).collect();
        add("fixed: median of all".into(), sc(&median_of(&all)));
    }
    for (name, (s, c)) in rules {
        println!("{name}: MASE {:.3} over {c} series", s / c as f64);
    }
    Ok(())
}

/// Milliseconds per `forecast` call on a 2,000-point series of 15-minute
/// buckets (periods 96 and 672), the simulator's and agent's use.
fn sim_call_ms() -> anyhow::Result<f64> {
    let mut state = 7u64;
    let y: Vec<f64> = (0..2000)
        .map(|i| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let e = ((state >> 33) as f64 / (1u64 << 31) as f64 - 0.5) * 20.0;
            let t = i as f64;
            300.0
                + 120.0 * (2.0 * std::f64::consts::PI * t / 96.0).sin()
                + 40.0 * (2.0 * std::f64::consts::PI * t / 672.0).sin()
                + e
        })
        .collect();
    let runs = 20;
    let start = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(forecast(&y, &[96, 672], 20)?);
    }
    Ok(start.elapsed().as_secs_f64() * 1000.0 / runs as f64)
}

fn main() -> anyhow::Result<()> {
    let mut limit = usize::MAX;
    let mut explore_mode = false;
    let mut holdout = false;
    for a in std::env::args().skip(1) {
        if a == "--candidates" {
            explore_mode = true;
        } else if a == "--holdout" {
            holdout = true;
        } else {
            limit = a.parse()?;
        }
    }
    let dir = flexus_sim::trace::traces_dir()
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/traces")
        })
        .join("m4-hourly");
    let train = flexus_sim::trace::read_m4_wide(&dir.join("Hourly-train.csv"))?;
    let test = flexus_sim::trace::read_m4_wide(&dir.join("Hourly-test.csv"))?;
    anyhow::ensure!(
        train.len() == test.len(),
        "train and test differ in series count"
    );
    let mut pairs: Vec<(&[f64], &[f64])> = Vec::new();
    for ((id, y), (id2, t)) in train.iter().zip(&test).take(limit) {
        anyhow::ensure!(id == id2 && t.len() == H, "series {id} does not line up");
        if holdout {
            // The last 48 training points as the test: a split the forecaster's
            // design was not compared on (the official test split was).
            anyhow::ensure!(y.len() > 2 * H, "series {id} is too short for --holdout");
            let (head, tail) = y.split_at(y.len() - H);
            pairs.push((head, tail));
        } else {
            pairs.push((y, t));
        }
    }
    if explore_mode {
        return explore(&pairs);
    }
    let (mut m_f, mut m_n, mut s_f, mut s_n) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut methods: BTreeMap<String, usize> = BTreeMap::new();
    let mut fit_time = 0.0;
    for (y, t) in &pairs {
        let start = Instant::now();
        let f = forecast(y, &[24, 168], H)?;
        fit_time += start.elapsed().as_secs_f64();
        *methods.entry(format!("{:?}", f.method)).or_default() += 1;
        let n = seasonal_naive(y, 24, H)?;
        if let (Some(a), Some(b)) = (mase(t, &f.point, y, 24), mase(t, &n, y, 24)) {
            m_f.push(a);
            m_n.push(b);
        }
        s_f.push(smape(t, &f.point));
        s_n.push(smape(t, &n));
    }
    let mean = |v: &[f64]| v.iter().fold(0.0, |a, b| a + b) / v.len().max(1) as f64;
    let fallbacks = pairs.len()
        - methods
            .get(&format!("{:?}", Method::Ensemble))
            .copied()
            .unwrap_or(0);
    println!(
        "{{\"series\": {}, \"forecast_mase\": {:.3}, \"forecast_smape\": {:.2}, \"seasonal_naive_mase\": {:.3}, \"seasonal_naive_smape\": {:.2}, \"fallbacks\": {}, \"methods\": {}, \"fit_seconds\": {:.2}, \"ms_per_call_2000_points\": {:.2}}}",
        m_f.len(),
        mean(&m_f),
        mean(&s_f),
        mean(&m_n),
        mean(&s_n),
        fallbacks,
        serde_json::to_string(&methods)?,
        fit_time,
        sim_call_ms()?
    );
    Ok(())
}
