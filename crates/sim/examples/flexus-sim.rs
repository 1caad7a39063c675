//! `flexus-sim` — the simulator's command line (the same flags `flexus-agent simulate` takes).
//!
//! ```text
//! cargo run --release -p flexus-sim --example flexus-sim -- \
//!     --trace worldcup98 --policy crates/sim/policies/sim-default-x1.json --against hpa,aws-tt,oracle
//! ```

use clap::Parser;
use flexus_sim::cli::SimulateCommand;

#[derive(Debug, Parser)]
#[command(
    name = "flexus-sim",
    about = "Replay a trace against a policy and baseline autoscalers"
)]
struct Args {
    #[command(flatten)]
    cmd: SimulateCommand,
}

fn main() -> anyhow::Result<()> {
    print!("{}", Args::parse().cmd.run()?);
    Ok(())
}
