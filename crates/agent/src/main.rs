//! `flexus-agent`: run the daemon, or talk to a running one.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use flexus_agent::config::{Config, LogFormat};
use flexus_agent::{agent, cli};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(
    name = "flexus-agent",
    version,
    about = "Flexus autoscaler agent: control plane and reconcile loop"
)]
struct Cli {
    /// Agent URL for the client subcommands.
    #[arg(
        long,
        global = true,
        env = "FLEXUS_AGENT_URL",
        default_value = "http://127.0.0.1:8470"
    )]
    agent_url: String,
    /// Bearer token for the client subcommands (admin or namespace token).
    #[arg(long, global = true, env = "FLEXUS_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the agent (API server + reconcile loop).
    Run {
        /// Path of agent.toml.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Check an agent config without starting anything.
    CheckConfig {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a policy file (HCL or JSON).
    Validate { file: PathBuf },
    /// Pools of a running agent.
    Pools {
        #[command(subcommand)]
        command: PoolsCommand,
    },
    /// Recent decisions of a pool, newest first.
    Decisions {
        /// `<namespace>/<pool>`.
        pool: String,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Metrics of a pool.
    Metrics {
        #[command(subcommand)]
        command: MetricsCommand,
    },
    /// Ask the agent to reconcile a pool now.
    Reconcile {
        /// `<namespace>/<pool>`.
        pool: String,
    },
    /// Replay a real traffic trace through a policy and baseline autoscalers
    /// (HPA, AWS target tracking, ...) and print the scorecard. Offline: no agent needed.
    Simulate(flexus_sim::command::SimulateCommand),
}

#[derive(Debug, Subcommand)]
enum PoolsCommand {
    /// List pools (of one namespace, or every namespace the token sees).
    List {
        #[arg(long, short)]
        namespace: Option<String>,
    },
    /// Status of one pool: instances, lifecycle, last decision.
    Status {
        /// `<namespace>/<pool>`.
        pool: String,
    },
}

#[derive(Debug, Subcommand)]
enum MetricsCommand {
    /// Push datapoints of the pool's push-sourced metrics
    /// (e.g. `flexus-agent metrics push team-a/web rps=120 rps=118@2026-01-01T00:00:00Z`).
    Push {
        /// `<namespace>/<pool>`.
        pool: String,
        /// `<metric>=<value>` or `<metric>=<value>@<RFC 3339 time>`.
        #[arg(required = true)]
        datapoints: Vec<String>,
    },
}

fn split(pool: &str) -> anyhow::Result<(&str, &str)> {
    pool.split_once('/')
        .filter(|(a, b)| !a.is_empty() && !b.is_empty())
        .with_context(|| format!("pool {pool:?} must be written <namespace>/<pool>"))
}

fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("FLEXUS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => b.json().init(),
        LogFormat::Pretty => b.init(),
    }
}

async fn shutdown_signal(token: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
    tracing::info!("shutdown requested: stopping intake, finishing in-flight passes");
    token.cancel();
}

async fn real_main(cli: Cli) -> anyhow::Result<()> {
    let client = || flexus_api::Client::new(&cli.agent_url, cli.token.clone());
    match cli.command {
        Command::Simulate(cmd) => {
            let out = tokio::task::spawn_blocking(move || cmd.run()).await??;
            print!("{out}");
            if !out.ends_with('\n') {
                println!();
            }
        }
        Command::Run { config } => {
            let config = Config::load(&config)?;
            init_tracing(config.log_format);
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("cannot listen on {}", config.listen))?;
            let addr = listener.local_addr()?;
            tracing::info!(%addr, store = %config.store, "flexus-agent listening");
            let token = CancellationToken::new();
            tokio::spawn(shutdown_signal(token.clone()));
            agent::run(config, listener, token).await?;
            tracing::info!("flexus-agent stopped");
        }
        Command::CheckConfig { config } => {
            let c = Config::load(&config)?;
            println!(
                "{}: ok (listen {}, store {})",
                config.display(),
                c.listen,
                c.store
            );
        }
        Command::Validate { file } => match cli::validate_policy_file(&file) {
            Ok(p) => println!(
                "{}: ok ({} strategy, bounds {}..{})",
                file.display(),
                p.strategy.as_str(),
                p.bounds.min,
                p.bounds.max
            ),
            Err(e) => bail!("{}", e),
        },
        Command::Pools {
            command: PoolsCommand::List { namespace },
        } => {
            let c = client()?;
            let namespaces = match namespace {
                Some(ns) => vec![ns],
                None => c
                    .list_namespaces()
                    .await?
                    .into_iter()
                    .map(|n| n.name)
                    .collect(),
            };
            let mut pools = Vec::new();
            for ns in namespaces {
                pools.extend(c.list_pools(&ns).await?);
            }
            print!("{}", cli::pools_table(&pools));
        }
        Command::Pools {
            command: PoolsCommand::Status { pool },
        } => {
            let (ns, name) = split(&pool)?;
            let s = client()?.pool_status(ns, name).await?;
            print!("{}", cli::status_text(&pool, &s));
        }
        Command::Decisions { pool, limit } => {
            let (ns, name) = split(&pool)?;
            let page = client()?.decisions(ns, name, Some(limit), None).await?;
            print!("{}", cli::decisions_table(&page.items));
        }
        Command::Metrics {
            command: MetricsCommand::Push { pool, datapoints },
        } => {
            let (ns, name) = split(&pool)?;
            let points = datapoints
                .iter()
                .map(|d| cli::parse_datapoint(d))
                .collect::<Result<Vec<_>, _>>()
                .map_err(anyhow::Error::msg)?;
            let r = client()?.push_metrics(ns, name, &points).await?;
            println!("{}: {} datapoint(s) accepted", r.pool, r.accepted);
        }
        Command::Reconcile { pool } => {
            let (ns, name) = split(&pool)?;
            let r = client()?.reconcile(ns, name).await?;
            println!(
                "{}: {}",
                r.pool,
                if r.queued { "queued" } else { "already queued" }
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("flexus-agent: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(real_main(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flexus-agent: {e:#}");
            ExitCode::FAILURE
        }
    }
}
