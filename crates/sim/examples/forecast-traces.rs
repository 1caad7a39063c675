//! Forecast accuracy on the workload traces themselves, with the protocol of
//! the anchor run in the team's autoscaling-anchors reference (§4.3):
//! hourly series, 7 rolling origins one day apart, 24 hours ahead, MASE scaled
//! by the in-sample seasonal-naive (m = 24) error of each window's history
//! (averaged over the windows), sMAPE in % over every forecast point.
//!
//! Series (the same as the anchor run):
//! - `nasa-jul`: NASA KSC requests per hour, Jul 1-27 1995 (648 h, before the July log ends);
//! - `worldcup98`: the 5-minute file summed per hour, May 31 - Jun 29 1998 (720 h);
//! - `nyc-taxi`: NAB's 30-minute file summed per hour, Jul 2014 - Jan 2015 (5,160 h).
//!
//! `cargo run --release -p flexus-sim --example forecast-traces [-- --csv <out.csv>]`
//! prints one markdown row per series × model; `--csv` also writes the series as
//! `unique_id,ds,y` for `crates/sim/bench/statsforecast_traces.py`, which runs
//! statsforecast on exactly the same numbers.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Instant;

use flexus_policy::forecast::{forecast, mase, seasonal_naive, smape};
use flexus_sim::trace::{parse_timestamp, traces_dir};

const H: usize = 24;
const WINDOWS: usize = 7;

/// Sums `column` of a timestamped CSV into hourly buckets over `[from, to)` (unix s).
fn hourly(
    file: &std::path::Path,
    column: usize,
    from: i64,
    to: i64,
) -> anyhow::Result<Vec<(i64, f64)>> {
    let mut r =
        csv::Reader::from_path(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let mut sums: BTreeMap<i64, f64> = BTreeMap::new();
    for rec in r.records() {
        let rec = rec?;
        let ts = rec.get(0).unwrap_or_default();
        let t = parse_timestamp(ts)
            .ok_or_else(|| anyhow::anyhow!("{}: bad timestamp {ts:?}", file.display()))?;
        if t < from || t >= to {
            continue;
        }
        let v: f64 = rec
            .get(column)
            .unwrap_or_default()
            .trim()
            .parse()
            .map_err(|e| anyhow::anyhow!("{}: bad value at {ts}: {e}", file.display()))?;
        *sums.entry(t.div_euclid(3600) * 3600).or_default() += v;
    }
    let want = ((to - from) / 3600) as usize;
    if sums.len() != want {
        anyhow::bail!(
            "{}: {} hourly buckets between the bounds, expected {want}",
            file.display(),
            sums.len()
        );
    }
    Ok(sums.into_iter().collect())
}

fn unix(s: &str) -> anyhow::Result<i64> {
    parse_timestamp(s).ok_or_else(|| anyhow::anyhow!("bad timestamp {s}"))
}

struct Score {
    mase: f64,
    smape: f64,
    seconds: f64,
}

/// Rolling-origin evaluation of `model` on `y`.
fn evaluate(
    y: &[f64],
    model: &dyn Fn(&[f64]) -> anyhow::Result<Vec<f64>>,
) -> anyhow::Result<Score> {
    let n = y.len();
    let (mut m, mut s_num, mut s_cnt) = (0.0, 0.0, 0usize);
    let start = Instant::now();
    for w in 0..WINDOWS {
        let origin = n - (WINDOWS - w) * H;
        let (train, test) = (&y[..origin], &y[origin..origin + H]);
        let f = model(train)?;
        m += mase(test, &f, train, 24).ok_or_else(|| anyhow::anyhow!("MASE undefined"))?;
        s_num += smape(test, &f) * H as f64;
        s_cnt += H;
    }
    Ok(Score {
        mase: m / WINDOWS as f64,
        smape: s_num / s_cnt as f64,
        seconds: start.elapsed().as_secs_f64(),
    })
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let csv_out = args
        .iter()
        .position(|a| a == "--csv")
        .and_then(|i| args.get(i + 1))
        .map(std::path::PathBuf::from);
    let dir = traces_dir().unwrap_or_else(|| {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/traces")
    });
    // Timestamps in the files: NASA has an explicit -04:00 offset, the others none (read as UTC).
    let series: Vec<(&str, Vec<(i64, f64)>)> = vec![
        (
            "nasa-jul",
            hourly(
                &dir.join("nasa-http-1995/nasa_http_per_hour.csv"),
                1,
                unix("1995-07-01T00:00:00-04:00")?,
                unix("1995-07-28T00:00:00-04:00")?,
            )?,
        ),
        (
            "worldcup98",
            hourly(
                &dir.join("worldcup98/worldcup98_5m.csv"),
                1,
                unix("1998-05-31 00:00:00")?,
                unix("1998-06-30 00:00:00")?,
            )?,
        ),
        (
            "nyc-taxi",
            hourly(
                &dir.join("nab-cloud-and-bursts/nyc_taxi.csv"),
                1,
                unix("2014-07-01 00:00:00")?,
                unix("2015-02-01 00:00:00")?,
            )?,
        ),
    ];
    if let Some(path) = &csv_out {
        let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
        writeln!(f, "unique_id,ds,y")?;
        for (name, s) in &series {
            for (t, v) in s {
                writeln!(f, "{name},{t},{v}")?;
            }
        }
    }
    println!("| series | hours | model | MASE | sMAPE % | seconds (7 fits) |");
    println!("|---|---:|---|---:|---:|---:|");
    for (name, s) in &series {
        let y: Vec<f64> = s.iter().map(|p| p.1).collect();
        let ours = evaluate(&y, &|train| Ok(forecast(train, &[24, 168], H)?.point))?;
        let naive = evaluate(&y, &|train| Ok(seasonal_naive(train, 24, H)?))?;
        for (model, sc) in [
            ("flexus-policy forecast (24/168)", ours),
            ("seasonal naive (24)", naive),
        ] {
            println!(
                "| {name} | {} | {model} | {:.3} | {:.1} | {:.2} |",
                y.len(),
                sc.mase,
                sc.smape,
                sc.seconds
            );
        }
    }
    Ok(())
}
