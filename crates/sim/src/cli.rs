//! The `simulate` command line, shared by `flexus-agent simulate` and the
//! `flexus-sim` example so that both take exactly the same flags.
//!
//! [`SimulateCommand`] is a `clap::Args` struct; [`SimulateCommand::run`] replays
//! the trace (with a progress bar on standard error when it is a terminal) and
//! returns the text to print: the markdown scorecard, its JSON form, or the
//! `--list` catalogue.

use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::SimError;
use crate::simulation::{BASELINES, SimulateArgs, SimulateOptions, simulate};

/// Flags of `simulate`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateCommand {
    /// Trace name (see --list) or a `timestamp,count` CSV file.
    #[arg(long)]
    pub trace: Option<String>,
    /// Policy file (HCL or JSON).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Comma-separated baselines (default: all).
    #[arg(long, value_delimiter = ',')]
    pub against: Option<Vec<String>>,
    /// Flavor (default: the trace's).
    #[arg(long)]
    pub flavor: Option<String>,
    /// Instances at the trace's 99.9th-percentile rate.
    #[arg(long, default_value_t = 40)]
    pub peak_instances: u32,
    /// Utilisation target of the HPA/AWS baselines (%); default: the flavor's
    /// utilisation at 85 % of its SLO rate.
    #[arg(long)]
    pub target: Option<f64>,
    /// Monitoring period in seconds (60 = CES 1-minute, 300 = 5-minute).
    #[arg(long, default_value_t = 60.0)]
    pub metric_period: f64,
    /// Monitoring delay in seconds.
    #[arg(long, default_value_t = 60.0)]
    pub metric_delay: f64,
    /// Spot share of baseline launches (0..1).
    #[arg(long, default_value_t = 0.0)]
    pub spot_fraction: f64,
    /// Spot reclamations per instance-hour.
    #[arg(long, default_value_t = 0.0)]
    pub spot_hazard: f64,
    /// RNG seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Replay only the first N hours.
    #[arg(long)]
    pub hours: Option<f64>,
    /// Forecast bucket of the policy adapter (s).
    #[arg(long, default_value_t = crate::policy::FORECAST_BUCKET_S)]
    pub forecast_bucket: f64,
    /// Write an SVG chart.
    #[arg(long)]
    pub chart: Option<PathBuf>,
    /// Print JSON instead of markdown.
    #[arg(long)]
    pub json: bool,
    /// Score only the evaluation window: the last third of the trace (every run still
    /// replays all of it).
    #[arg(long)]
    pub eval_window: bool,
    /// Sweep HPA and AWS target tracking over targets 30-90 % and the policy (default:
    /// the flavor family's default) over its target scale, score each on the trace's
    /// evaluation window (last third), and report the fewest instance-hours within
    /// violation budgets of 0.1 % and 1 %; `--chart` draws the frontier.
    #[arg(long)]
    pub frontier: bool,
    /// List the named traces, flavors and baselines.
    #[arg(long)]
    pub list: bool,
}

impl SimulateCommand {
    /// Runs the command and returns what to print on standard output.
    pub fn run(self) -> Result<String, SimError> {
        if self.list {
            return Ok(catalogue());
        }
        let Some(trace) = self.trace else {
            return Err(SimError::BadOption {
                field: "--trace",
                reason: "a trace name or CSV file is required (see --list)".into(),
            });
        };
        let options = SimulateOptions {
            flavor: self.flavor,
            peak_instances: self.peak_instances,
            baseline_target_pct: self.target,
            metric_period_s: self.metric_period,
            metric_delay_s: self.metric_delay,
            spot_fraction: self.spot_fraction,
            spot_hazard_per_hour: self.spot_hazard,
            seed: self.seed,
            max_hours: self.hours,
            forecast_bucket_s: self.forecast_bucket,
            against: self
                .against
                .unwrap_or_else(|| BASELINES.iter().map(|s| (*s).to_owned()).collect()),
            eval_window: self.eval_window,
            ..SimulateOptions::default()
        };
        if self.frontier {
            return run_frontier(
                &trace,
                self.policy.as_deref(),
                &options,
                self.chart.as_deref(),
                self.json,
            );
        }
        let total = options.against.len() as u64 + u64::from(self.policy.is_some());
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let args = SimulateArgs {
            trace,
            policy: self.policy,
            options,
            chart: self.chart,
        };
        let card = simulate(&args, &mut |name| {
            bar.set_message(name.to_owned());
            bar.inc(1);
        });
        bar.finish_and_clear();
        let card = card?;
        if self.json {
            serde_json::to_string_pretty(&card).map_err(|e| SimError::BadOption {
                field: "--json",
                reason: e.to_string(),
            })
        } else {
            Ok(card.markdown())
        }
    }
}

/// `--frontier`: the sweep of every family on one trace.
fn run_frontier(
    trace: &str,
    policy: Option<&std::path::Path>,
    options: &SimulateOptions,
    chart: Option<&std::path::Path>,
    json: bool,
) -> Result<String, SimError> {
    let (t, flavor) = crate::simulation::prepare_trace(trace, options)?;
    let policy = match policy {
        Some(p) => crate::policy::load_policy_file(p)?,
        None => crate::simulation::default_policy(&flavor)?,
    };
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    let f = crate::frontier::sweep(&t, &flavor, &policy, options, &mut |m| {
        bar.set_message(m.to_owned());
        bar.tick();
    });
    bar.finish_and_clear();
    let f = f?;
    if let Some(path) = chart {
        crate::frontier::write_svg(path, &f)?;
    }
    if json {
        serde_json::to_string_pretty(&f).map_err(|e| SimError::BadOption {
            field: "--json",
            reason: e.to_string(),
        })
    } else {
        Ok(f.markdown())
    }
}

/// The `--list` text: named traces, flavors and baselines.
pub fn catalogue() -> String {
    use std::fmt::Write as _;
    let mut out = String::from("traces:\n");
    for t in crate::trace::NAMED {
        let _ = writeln!(out, "  {:<20} {} [{}]", t.name, t.about, t.flavor);
    }
    out.push_str("flavors:\n");
    for f in crate::capacity::catalogue() {
        let _ = writeln!(
            out,
            "  {:<14} max {:>7.2} req/s, {:>7.2} req/s at p95 <= {} ms, boot {} s + warm-up {} s",
            f.name,
            f.max_rps(),
            f.rps_at_slo(),
            f.slo_p95_ms,
            f.boot_s,
            f.warmup_s
        );
    }
    let _ = writeln!(out, "baselines: {}", BASELINES.join(", "));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        cmd: SimulateCommand,
    }

    #[test]
    fn missing_trace_is_a_named_error() {
        let w = Wrapper::parse_from(["x"]);
        let err = w.cmd.run().expect_err("no trace given");
        assert!(err.to_string().contains("--trace"), "{err}");
    }

    #[test]
    fn list_names_every_baseline() {
        let w = Wrapper::parse_from(["x", "--list"]);
        let text = w.cmd.run().expect("list works");
        for b in BASELINES {
            assert!(text.contains(b), "{b} missing from {text}");
        }
    }

    #[test]
    fn flags_map_onto_options() {
        let w = Wrapper::parse_from([
            "x",
            "--trace",
            "worldcup98",
            "--against",
            "hpa,aws-tt",
            "--metric-period",
            "300",
        ]);
        assert_eq!(w.cmd.trace.as_deref(), Some("worldcup98"));
        assert_eq!(
            w.cmd.against,
            Some(vec!["hpa".to_owned(), "aws-tt".to_owned()])
        );
        assert_eq!(w.cmd.metric_period, 300.0);
    }
}

/// Flags of `tune` (offline: a trace or CSV file as the pool's history).
#[derive(Debug, Clone, clap::Args)]
pub struct TuneCommand {
    /// History: a trace name (see `simulate --list`) or a `timestamp,value` CSV file.
    #[arg(long)]
    pub trace: Option<String>,
    /// Policy file to start from (default: the flavor family's default policy).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Share of the time the SLO may be missed (0.01 = 1 %).
    #[arg(long, default_value_t = 0.01)]
    pub budget: f64,
    /// What to minimise within the budget.
    #[arg(long, value_enum, default_value_t = crate::tune::Objective::Cost)]
    pub objective: crate::tune::Objective,
    /// What to stay within: `budget` (half the violation budget on the tuning window) or
    /// `baselines` (beat HPA's and AWS target tracking's defaults on both measures: the
    /// search minimises the larger of violation share and instance-hours (or cost), each
    /// relative to the better of the two defaults on the tuning window).
    #[arg(long, value_enum, default_value_t = crate::tune::Aim::Budget)]
    pub aim: crate::tune::Aim,
    /// Replays the search may spend.
    #[arg(long, default_value_t = 60)]
    pub evaluations: usize,
    /// Seed of the search.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Flavor (default: the trace's).
    #[arg(long)]
    pub flavor: Option<String>,
    /// Instances at the history's 99.9th-percentile rate.
    #[arg(long, default_value_t = 40)]
    pub peak_instances: u32,
    /// Monitoring period in seconds.
    #[arg(long, default_value_t = 60.0)]
    pub metric_period: f64,
    /// Monitoring delay in seconds.
    #[arg(long, default_value_t = 60.0)]
    pub metric_delay: f64,
    /// Use only the first N hours of the history.
    #[arg(long)]
    pub hours: Option<f64>,
    /// Print JSON (the recommended policy included) instead of text.
    #[arg(long)]
    pub json: bool,
}

impl TuneCommand {
    /// Runs the tuner and returns what to print.
    pub fn run(self) -> Result<String, SimError> {
        let options = SimulateOptions {
            flavor: self.flavor,
            peak_instances: self.peak_instances,
            metric_period_s: self.metric_period,
            metric_delay_s: self.metric_delay,
            max_hours: self.hours,
            against: Vec::new(),
            ..SimulateOptions::default()
        };
        let Some(trace) = &self.trace else {
            return Err(SimError::BadOption {
                field: "--trace",
                reason: "a history is required: a trace name or CSV file (flexus-agent tune --pool <namespace>/<pool> tunes a pool's recorded history)".into(),
            });
        };
        let (history, flavor) = crate::simulation::prepare_trace(trace, &options)?;
        let policy = match &self.policy {
            Some(p) => crate::policy::load_policy_file(p)?,
            None => crate::simulation::default_policy(&flavor)?,
        };
        let req = crate::tune::TuneRequest {
            objective: self.objective,
            aim: self.aim,
            max_evaluations: self.evaluations,
            seed: self.seed,
            options,
            ..crate::tune::TuneRequest::new(history, flavor, policy, self.budget)
        };
        let r = crate::tune::tune(&req)?;
        if self.json {
            serde_json::to_string_pretty(&r).map_err(|e| SimError::BadOption {
                field: "--json",
                reason: e.to_string(),
            })
        } else {
            Ok(r.text())
        }
    }
}
