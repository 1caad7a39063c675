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
    /// Agent URL for the client subcommands [env: FLEXUS_ENDPOINT, or its alias
    /// FLEXUS_AGENT_URL; default http://127.0.0.1:8470]. The Terraform provider reads the
    /// same variables.
    #[arg(long = "endpoint", visible_alias = "agent-url", global = true)]
    endpoint: Option<String>,
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
        /// Path of agent.toml (see docs/reference/agent-config.md).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Check an agent config: the file, the secrets it names, and that the cloud endpoint
    /// answers and accepts the credentials. Starts nothing.
    CheckConfig {
        /// Path of agent.toml (see docs/reference/agent-config.md).
        #[arg(long, short)]
        config: PathBuf,
        /// Check the file and the secrets only; do not call the cloud.
        #[arg(long)]
        offline: bool,
    },
    /// Validate policy files (HCL or JSON); reports every file, fails if any is invalid.
    Validate {
        /// Policy files (`.hcl` or `.json`), e.g. `examples/policies/*.hcl`.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Pools of a running agent.
    Pools {
        #[command(subcommand)]
        command: PoolsCommand,
    },
    /// Recent decisions of a pool, newest first.
    Decisions {
        /// `<namespace>/<pool>`.
        pool: String,
        /// How many decisions to show.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Metrics of a pool.
    Metrics {
        #[command(subcommand)]
        command: MetricsCommand,
    },
    /// Policies of a running agent: list, show, apply a policy file, delete.
    Policies {
        #[command(subcommand)]
        command: PoliciesCommand,
    },
    /// Ask the agent to reconcile a pool now.
    Reconcile {
        /// `<namespace>/<pool>`.
        pool: String,
    },
    /// Cost report: every namespace (admin), one namespace, or one pool with replayed
    /// recommendations (e.g. `flexus-agent cost team-a/web --window 6h`).
    Cost {
        /// `<namespace>` or `<namespace>/<pool>`; all namespaces when absent.
        scope: Option<String>,
        /// Report window, e.g. `24h` (default: the agent's `cost.window`).
        #[arg(long)]
        window: Option<String>,
    },
    /// Ask the DeepSeek advisor about a pool and wait for its checked, replayed answer.
    Advise {
        /// `<namespace>/<pool>`.
        pool: String,
        /// How long to wait for the answer.
        #[arg(long, default_value = "180s")]
        #[arg(value_parser = flexus_policy::parse_duration)]
        wait: std::time::Duration,
    },
    /// Replay a real traffic trace through a policy and baseline autoscalers
    /// (HPA, AWS target tracking, ...) and print the scorecard. Offline: no agent needed.
    Simulate(flexus_sim::cli::SimulateCommand),
    /// Search a policy's parameters by replaying a history (two thirds tune, the last
    /// third validates) and print the policy diff with before/after. Offline with
    /// --trace; with --pool, a running agent tunes the pool's recorded history (or
    /// --trace) as a job and this waits for it. Nothing is applied.
    Tune {
        /// `<namespace>/<pool>`: ask the agent to tune this pool.
        #[arg(long)]
        pool: Option<String>,
        #[command(flatten)]
        cmd: flexus_sim::cli::TuneCommand,
    },
    /// Tune jobs of a pool on a running agent, newest first (the last 20): state, when
    /// accepted and started, and what each found or why it failed.
    TuneJobs {
        /// `<namespace>/<pool>`.
        pool: String,
        /// Print the jobs as JSON (with their results).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum PoolsCommand {
    /// List pools (of one namespace, or every namespace the token sees).
    List {
        /// Only this namespace.
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
enum PoliciesCommand {
    /// List the policies of a namespace.
    List {
        /// The namespace.
        namespace: String,
    },
    /// Show one policy (JSON, with its version).
    Show {
        /// `<namespace>/<policy>`.
        policy: String,
    },
    /// Validate a policy file and store it as `<namespace>/<policy>` for `--pool`
    /// (creates it, or replaces the stored version).
    Apply {
        /// `<namespace>/<policy>`.
        policy: String,
        /// Policy file (`.hcl` or `.json`).
        file: PathBuf,
        /// The pool (in the same namespace) the policy scales.
        #[arg(long)]
        pool: String,
        /// Decide and record, never act (as if the file said `dry_run = true`).
        #[arg(long)]
        dry_run: bool,
    },
    /// Delete a policy (its pool goes back to its fixed size: `initial_size`, else `min_size`).
    Delete {
        /// `<namespace>/<policy>`.
        policy: String,
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

/// `check-config`: the cloud endpoint answers and accepts the credentials, and an
/// emulator's clock agrees with `reconcile.clock_speed`.
async fn check_cloud(c: &Config) -> anyhow::Result<()> {
    let endpoint = c.cloud.endpoint.as_deref().map_or_else(
        || "the public endpoints of cloud.region".to_owned(),
        flexus_cloud::redact_url,
    );
    let cloud = agent::cloud_client(c).context("cloud")?;
    flexus_agent::probe::check(cloud.as_ref())
        .await
        .map_err(|reason| anyhow::anyhow!("cloud: {reason}"))?;
    println!("cloud: ok ({endpoint} answers and accepts the credentials)");
    if let Some(e) = &c.cloud.endpoint
        && let Some((_, speed)) = flexus_agent::clock::emulator_clock(e).await
    {
        match c.reconcile.clock_speed {
            Some(s) if (s - speed).abs() > 1e-9 => bail!(
                "reconcile.clock_speed: {s} differs from the emulator's time scale {speed} \
                 (remove the key to follow the emulator's clock)"
            ),
            _ => println!("clock: following the emulator's clock (x{speed})"),
        }
    }
    Ok(())
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

/// The agent URL: `--endpoint`, else `FLEXUS_ENDPOINT`, else `FLEXUS_AGENT_URL`.
fn endpoint(flag: Option<&str>) -> String {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    flag.map(str::to_owned)
        .or_else(|| env("FLEXUS_ENDPOINT"))
        .or_else(|| env("FLEXUS_AGENT_URL"))
        .unwrap_or_else(|| "http://127.0.0.1:8470".into())
}

async fn policies(c: flexus_api::Client, command: PoliciesCommand) -> anyhow::Result<()> {
    match command {
        PoliciesCommand::List { namespace } => {
            print!(
                "{}",
                cli::policies_table(&c.list_policies(&namespace).await?)
            );
        }
        PoliciesCommand::Show { policy } => {
            let (ns, name) = split(&policy)?;
            let p = c.get_policy(ns, name).await?;
            println!("{}", serde_json::to_string_pretty(&p.value)?);
        }
        PoliciesCommand::Apply {
            policy,
            file,
            pool,
            dry_run,
        } => {
            let (ns, name) = split(&policy)?;
            let mut model = cli::validate_policy_file(&file).map_err(anyhow::Error::msg)?;
            model.dry_run |= dry_run;
            let spec = flexus_api::PolicySpec {
                pool,
                policy: model,
            };
            let p = c
                .put_policy(ns, name, &spec, flexus_api::Precondition::None)
                .await?;
            println!(
                "{}: stored version {} (pool {})",
                p.value.id, p.value.version, p.value.spec.pool
            );
        }
        PoliciesCommand::Delete { policy } => {
            let (ns, name) = split(&policy)?;
            c.delete_policy(ns, name, flexus_api::Precondition::None)
                .await?;
            println!("{policy}: deleted");
        }
    }
    Ok(())
}

async fn real_main(cli: Cli) -> anyhow::Result<()> {
    let url = endpoint(cli.endpoint.as_deref());
    let client = || flexus_api::Client::new(&url, cli.token.clone());
    match cli.command {
        Command::Simulate(cmd) => {
            let out = tokio::task::spawn_blocking(move || cmd.run()).await??;
            print!("{out}");
            if !out.ends_with('\n') {
                println!();
            }
        }
        Command::Tune { pool: None, cmd } => {
            let out = tokio::task::spawn_blocking(move || cmd.run()).await??;
            print!("{out}");
        }
        Command::Tune {
            pool: Some(pool),
            cmd,
        } => {
            let (ns, name) = split(&pool)?;
            let job = cli::tune_on_agent(&client()?, ns, name, &cmd).await?;
            print!("{}", cli::tune_job_text(&job, cmd.json)?);
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
        Command::CheckConfig { config, offline } => {
            let c = Config::load(&config)?;
            println!(
                "{}: ok (listen {}, store {})",
                config.display(),
                c.listen,
                c.store
            );
            if !offline {
                check_cloud(&c).await?;
            }
        }
        Command::Validate { files } => {
            let mut failed = 0;
            for file in &files {
                match cli::validate_policy_file(file) {
                    Ok(p) => println!(
                        "{}: ok ({} strategy, bounds {}..{})",
                        file.display(),
                        p.strategy.as_str(),
                        p.bounds.min,
                        p.bounds.max
                    ),
                    Err(e) => {
                        failed += 1;
                        eprintln!("{e}");
                    }
                }
            }
            if failed > 0 {
                bail!("{failed} of {} policy file(s) invalid", files.len());
            }
        }
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
        Command::TuneJobs { pool, json } => {
            let (ns, name) = split(&pool)?;
            let jobs = client()?.tune_jobs(ns, name).await?;
            print!("{}", cli::tune_jobs_text(&jobs, json)?);
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
        Command::Cost { scope, window } => {
            print!(
                "{}",
                flexus_agent::web::text::cost_report(
                    &cost(&client()?, scope.as_deref(), window.as_deref()).await?
                )
            );
        }
        Command::Advise { pool, wait } => {
            let (ns, name) = split(&pool)?;
            print!(
                "{}",
                flexus_agent::web::text::advice(&advise(&client()?, ns, name, wait).await?)
            );
        }
        Command::Policies { command } => policies(client()?, command).await?,
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

async fn cost(
    c: &flexus_api::Client,
    scope: Option<&str>,
    window: Option<&str>,
) -> anyhow::Result<flexus_api::CostReport> {
    Ok(match scope {
        None => {
            let mut all: Option<flexus_api::CostReport> = None;
            for ns in c.list_namespaces().await? {
                let r = c.namespace_cost(&ns.name, window).await?;
                match &mut all {
                    None => all = Some(r),
                    Some(a) => {
                        a.pools.extend(r.pools);
                        a.totals = flexus_agent::web::add_totals(&a.totals, &r.totals);
                    }
                }
            }
            all.context("no namespace is visible to this token")?
        }
        Some(s) => match s.split_once('/') {
            Some(_) => {
                let (ns, name) = split(s)?;
                c.pool_cost(ns, name, window).await?
            }
            None => c.namespace_cost(s, window).await?,
        },
    })
}

/// Queue a request, then poll until it is answered or `wait` passes.
async fn advise(
    c: &flexus_api::Client,
    ns: &str,
    name: &str,
    wait: std::time::Duration,
) -> anyhow::Result<flexus_api::Advice> {
    let asked = c.request_advice(ns, name).await?;
    eprintln!(
        "asked the advisor ({}); waiting up to {} for the answer",
        asked.model,
        flexus_policy::format_duration(wait)
    );
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if let Some(a) = c
            .list_advice(ns, name)
            .await?
            .into_iter()
            .find(|a| a.id == asked.id)
            && a.state != flexus_api::AdviceState::Pending
        {
            return Ok(a);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "no answer within {} (advice {} is still pending; see `GET {}`)",
                flexus_policy::format_duration(wait),
                asked.id,
                flexus_api::pool_advice_path(ns, name)
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
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
    let code = match rt.block_on(real_main(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flexus-agent: {e:#}");
            ExitCode::FAILURE
        }
    };
    // Everything that writes has finished; a search still running on a blocking
    // thread (a tune job, already written as stopped) is not waited for.
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    code
}
