//! `flexus-fuzz`: run the fuzz targets (`make fuzz`), or grow their corpora.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use flexus_fuzz::{Options, corpus, run, seeds, targets};

#[derive(Debug, Parser)]
#[command(
    name = "flexus-fuzz",
    about = "Fuzz the policy parser, the Terraform value codec and the agent's request bodies"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run targets; exits non-zero when an input broke a property or panicked
    /// (the inputs are written to --crashes).
    Run {
        /// `policy`, `codec`, `agent`, or `all`.
        target: String,
        /// Inputs per target.
        #[arg(long, default_value_t = 1_000_000)]
        inputs: u64,
        /// Stop a target earlier after this many seconds.
        #[arg(long)]
        seconds: Option<u64>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Where failing inputs are written.
        #[arg(long, default_value = "target/fuzz-crashes")]
        crashes: PathBuf,
        /// Write inputs with new outcomes into the target's checked-in corpus, up to
        /// this many.
        #[arg(long, default_value_t = 0)]
        grow_corpus: usize,
    },
    /// Write a target's first seeds (from the examples and test fixtures) into its
    /// checked-in corpus.
    Seed {
        /// `policy`, `codec`, `agent`, or `all`.
        target: String,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run {
            target,
            inputs,
            seconds,
            seed,
            crashes,
            grow_corpus,
        } => {
            let opts = Options {
                inputs,
                time_limit: seconds.map(Duration::from_secs),
                seed,
                ..Options::default()
            };
            run_targets(&names(&target)?, &opts, &crashes, grow_corpus)
        }
        Command::Seed { target } => {
            let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
            for name in names(&target)? {
                let seeds = seeds::seeds(name, &repo);
                for s in &seeds {
                    corpus::write(&corpus::dir(name), s)?;
                }
                println!(
                    "{name}: {} seeds written to {}",
                    seeds.len(),
                    corpus::dir(name).display()
                );
            }
            Ok(())
        }
    }
}

/// The targets `target` names (`all`: every one).
fn names(target: &str) -> Result<Vec<&str>, flexus_fuzz::FuzzError> {
    match target {
        "all" => Ok(targets::NAMES.to_vec()),
        t if targets::NAMES.contains(&t) => Ok(vec![t]),
        t => Err(flexus_fuzz::FuzzError::UnknownTarget(t.to_owned())),
    }
}

fn run_targets(
    names: &[&str],
    opts: &Options,
    crashes: &std::path::Path,
    grow_corpus: usize,
) -> anyhow::Result<()> {
    let mut failed = 0;
    for &name in names {
        let mut t = targets::by_name(name)?;
        let seeds = corpus::read(&corpus::dir(name))?;
        let report = run(t.as_mut(), seeds, opts);
        println!("{}", report.summary());
        for f in &report.failures {
            let path = corpus::write(&crashes.join(name), &f.input)?;
            println!("  failure ({}): {}", path.display(), f.message);
        }
        failed += report.failures.len();
        for input in report.discovered.iter().take(grow_corpus) {
            corpus::write(&corpus::dir(name), input).context("growing the corpus")?;
        }
    }
    if failed > 0 {
        bail!("{failed} failing inputs");
    }
    Ok(())
}
