//! `flexus-sim` — the simulator's command line (the same flags `flexus-agent simulate` takes).
//!
//! ```text
//! cargo run --release -p flexus-sim --example flexus-sim -- \
//!     --trace worldcup98 --policy crates/sim/policies/sim-default-x1.hcl --against hpa,aws-tt,oracle
//! ```

use std::path::PathBuf;

use clap::Parser;
use flexus_sim::cli::{BASELINES, SimulateArgs, SimulateOptions, simulate};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, Parser)]
#[command(
    name = "flexus-sim",
    about = "Replay a trace against a policy and baseline autoscalers"
)]
struct Args {
    /// Trace name (see --list) or a `timestamp,count` CSV file.
    #[arg(long)]
    trace: Option<String>,
    /// Policy file (HCL or JSON).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Comma-separated baselines (default: all).
    #[arg(long, value_delimiter = ',')]
    against: Option<Vec<String>>,
    /// Flavor (default: the trace's).
    #[arg(long)]
    flavor: Option<String>,
    /// Instances at the trace's 99.9th-percentile rate.
    #[arg(long, default_value_t = 40)]
    peak_instances: u32,
    /// Utilisation target of the HPA/AWS baselines (%); default: the flavor's
    /// utilisation at 85 % of its SLO rate.
    #[arg(long)]
    target: Option<f64>,
    /// Monitoring period in seconds (60 = CES 1-minute, 300 = 5-minute).
    #[arg(long, default_value_t = 60.0)]
    metric_period: f64,
    /// Monitoring delay in seconds.
    #[arg(long, default_value_t = 60.0)]
    metric_delay: f64,
    /// Spot share of baseline launches (0..1).
    #[arg(long, default_value_t = 0.0)]
    spot_fraction: f64,
    /// Spot reclamations per instance-hour.
    #[arg(long, default_value_t = 0.0)]
    spot_hazard: f64,
    /// RNG seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Replay only the first N hours.
    #[arg(long)]
    hours: Option<f64>,
    /// Forecast bucket of the policy adapter (s).
    #[arg(long, default_value_t = flexus_sim::policy::FORECAST_BUCKET_S)]
    forecast_bucket: f64,
    /// Write an SVG chart.
    #[arg(long)]
    chart: Option<PathBuf>,
    /// Print JSON instead of markdown.
    #[arg(long)]
    json: bool,
    /// List the named traces and flavors.
    #[arg(long)]
    list: bool,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    if a.list {
        println!("traces:");
        for t in flexus_sim::trace::NAMED {
            println!("  {:<20} {} [{}]", t.name, t.about, t.flavor);
        }
        println!("flavors:");
        for f in flexus_sim::capacity::catalogue() {
            println!(
                "  {:<14} max {:>7.2} req/s, {:>7.2} req/s at p95 <= {} ms, boot {} s + warm-up {} s",
                f.name,
                f.max_rps(),
                f.rps_at_slo(),
                f.slo_p95_ms,
                f.boot_s,
                f.warmup_s
            );
        }
        println!("baselines: {}", BASELINES.join(", "));
        return Ok(());
    }
    let Some(trace) = a.trace else {
        anyhow::bail!("--trace is required (see --list)");
    };
    let options = SimulateOptions {
        flavor: a.flavor,
        peak_instances: a.peak_instances,
        baseline_target_pct: a.target,
        metric_period_s: a.metric_period,
        metric_delay_s: a.metric_delay,
        spot_fraction: a.spot_fraction,
        spot_hazard_per_hour: a.spot_hazard,
        seed: a.seed,
        max_hours: a.hours,
        forecast_bucket_s: a.forecast_bucket,
        against: a
            .against
            .unwrap_or_else(|| BASELINES.iter().map(|s| (*s).to_owned()).collect()),
        ..SimulateOptions::default()
    };
    let total = options.against.len() as u64 + u64::from(a.policy.is_some());
    let bar = ProgressBar::new(total);
    bar.set_style(ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")?);
    let args = SimulateArgs {
        trace,
        policy: a.policy,
        options,
        chart: a.chart,
    };
    let card = simulate(&args, &mut |name| {
        bar.set_message(name.to_owned());
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&card)?);
    } else {
        println!("{}", card.markdown());
    }
    Ok(())
}
