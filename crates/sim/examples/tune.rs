//! `tune` — the policy tuner's command line (the same flags as `flexus-agent tune`).
//!
//! ```text
//! cargo run --release -p flexus-sim --example tune -- --trace nasa-http-1995 --budget 0.01
//! ```

use clap::Parser;
use flexus_sim::cli::TuneCommand;

#[derive(Debug, Parser)]
#[command(
    name = "tune",
    about = "Search a policy's parameters by replaying a history"
)]
struct Args {
    #[command(flatten)]
    cmd: TuneCommand,
}

fn main() -> anyhow::Result<()> {
    print!("{}", Args::parse().cmd.run()?);
    Ok(())
}
