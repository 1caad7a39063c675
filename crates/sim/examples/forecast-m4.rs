//! Forecast accuracy on M4-Hourly (horizon 48, season 24): flexus-policy's
//! forecaster (MSTL 24/168 + AutoETS trend, seasonal-naive fallback) next to
//! seasonal naive, MASE and sMAPE as in M4. Prints a JSON summary line.
//!
//! `cargo run --release -p flexus-sim --example forecast-m4 [-- <max series>]`

use std::time::Instant;

use flexus_policy::forecast::{Method, forecast, mase, seasonal_naive, smape};

fn read(path: &std::path::Path) -> anyhow::Result<Vec<(String, Vec<f64>)>> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_path(path)?;
    let mut out = Vec::new();
    for rec in r.records() {
        let rec = rec?;
        let id = rec.get(0).unwrap_or_default().to_owned();
        let vals = rec
            .iter()
            .skip(1)
            .filter(|v| !v.trim().is_empty())
            .map(|v| v.trim().parse::<f64>())
            .collect::<Result<Vec<_>, _>>()?;
        out.push((id, vals));
    }
    Ok(out)
}

fn main() -> anyhow::Result<()> {
    let limit: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(usize::MAX);
    let dir = flexus_sim::trace::traces_dir().join("m4-hourly");
    let train = read(&dir.join("Hourly-train.csv"))?;
    let test = read(&dir.join("Hourly-test.csv"))?;
    anyhow::ensure!(
        train.len() == test.len(),
        "train and test differ in series count"
    );
    let (mut m_f, mut m_n, mut s_f, mut s_n) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut fallbacks = 0;
    let mut fit_time = 0.0;
    for ((id, y), (id2, t)) in train.iter().zip(&test).take(limit) {
        anyhow::ensure!(id == id2 && t.len() == 48, "series {id} does not line up");
        let start = Instant::now();
        let f = forecast(y, &[24, 168], 48)?;
        fit_time += start.elapsed().as_secs_f64();
        if f.method != Method::Mstl {
            fallbacks += 1;
        }
        let n = seasonal_naive(y, 24, 48)?;
        if let (Some(a), Some(b)) = (mase(t, &f.point, y, 24), mase(t, &n, y, 24)) {
            m_f.push(a);
            m_n.push(b);
        }
        s_f.push(smape(t, &f.point));
        s_n.push(smape(t, &n));
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    println!(
        "{{\"series\": {}, \"mstl_ets_mase\": {:.3}, \"mstl_ets_smape\": {:.2}, \"seasonal_naive_mase\": {:.3}, \"seasonal_naive_smape\": {:.2}, \"fallbacks\": {}, \"fit_seconds\": {:.2}}}",
        m_f.len(),
        mean(&m_f),
        mean(&s_f),
        mean(&m_n),
        mean(&s_n),
        fallbacks,
        fit_time
    );
    Ok(())
}
