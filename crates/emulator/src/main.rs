//! `flexus-emulator` binary: serves the emulated Huawei Cloud API on a local address.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use flexus_emulator::{AcceptedKey, DeepSeekKey, EmulatorConfig, Quota};

/// Local Huawei Cloud (ECS + CES) emulator for Flexus Autoscaler.
#[derive(Debug, Parser)]
#[command(name = "flexus-emulator", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8443", env = "FLEXUS_EMULATOR_LISTEN")]
    listen: SocketAddr,
    /// State file (JSON, written atomically). Omit to keep state in memory.
    #[arg(long, env = "FLEXUS_EMULATOR_STATE")]
    state: Option<PathBuf>,
    /// Accepted access key.
    #[arg(long, env = "HUAWEICLOUD_SDK_AK")]
    ak: String,
    /// Accepted secret key.
    #[arg(long, env = "HUAWEICLOUD_SDK_SK", hide_env_values = true)]
    sk: String,
    /// Required security token (temporary credentials), if any.
    #[arg(long, env = "HUAWEICLOUD_SDK_SECURITY_TOKEN", hide_env_values = true)]
    security_token: Option<String>,
    /// Project id served in paths.
    #[arg(
        long,
        default_value = "0123456789abcdef0123456789abcdef",
        env = "HUAWEICLOUD_SDK_PROJECT_ID"
    )]
    project_id: String,
    /// Region name.
    #[arg(long, default_value = "cn-north-4")]
    region: String,
    /// Boot time of every flavor in emulated seconds (default: per flavor, 40-150 s).
    #[arg(long)]
    boot_seconds: Option<f64>,
    /// Emulated seconds per real second.
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Instance quota.
    #[arg(long, default_value_t = 200)]
    quota: u32,
    /// vCPU quota.
    #[arg(long, default_value_t = 1600)]
    quota_vcpus: u32,
    /// Default spot reclaim hazard per instance-hour.
    #[arg(long, default_value_t = 0.0)]
    spot_hazard: f64,
    /// Spot reclaim notice, seconds.
    #[arg(long, default_value_t = 300.0)]
    spot_notice_seconds: f64,
    /// Gateway throttle per operation, calls per second (0 = off).
    #[arg(long, default_value_t = 0.0)]
    throttle: f64,
    /// Workload sample interval, emulated seconds.
    #[arg(long, default_value_t = 60)]
    metric_interval: u32,
    /// Tag key naming a server's pool.
    #[arg(long, default_value = "flexus-pool")]
    pool_tag_key: String,
    /// Random seed.
    #[arg(long, default_value_t = 0x5eed)]
    seed: u64,
    /// API key the DeepSeek-compatible stand-in accepts (repeatable; default: the
    /// public local test key `sk-flexus-emulator-0000000000000000`).
    #[arg(
        long = "deepseek-key",
        env = "FLEXUS_EMULATOR_DEEPSEEK_KEY",
        hide_env_values = true
    )]
    deepseek_keys: Vec<String>,
    /// Starting balance of the DeepSeek stand-in, in tokens (402 once spent).
    #[arg(long, default_value_t = 10_000_000)]
    deepseek_balance_tokens: i64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,flexus_emulator=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let a = Args::parse();
    let config = EmulatorConfig {
        project_id: a.project_id,
        region: a.region,
        keys: vec![AcceptedKey {
            access_key: a.ak,
            secret_key: a.sk,
            security_token: a.security_token,
        }],
        boot_seconds: a.boot_seconds,
        time_scale: a.time_scale,
        quota: Quota {
            instances: a.quota,
            vcpus: a.quota_vcpus,
            ..Quota::default()
        },
        spot_hazard_per_hour: a.spot_hazard,
        spot_notice_seconds: a.spot_notice_seconds,
        throttle_per_second: a.throttle,
        metric_interval_s: a.metric_interval,
        pool_tag_key: a.pool_tag_key,
        state_path: a.state,
        seed: a.seed,
        deepseek_balance_tokens: a.deepseek_balance_tokens,
        ..EmulatorConfig::default()
    };
    let config = if a.deepseek_keys.is_empty() {
        config
    } else {
        EmulatorConfig {
            deepseek_keys: a.deepseek_keys.into_iter().map(DeepSeekKey).collect(),
            ..config
        }
    };
    let emu = flexus_emulator::Emulator::new(config).context("starting the emulator")?;
    let listener = tokio::net::TcpListener::bind(a.listen)
        .await
        .with_context(|| format!("binding {}", a.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(listen = %addr, "flexus-emulator serving");
    // One machine-readable line on stdout for scripts and tests (`--listen 127.0.0.1:0`).
    println!("flexus-emulator listening on http://{addr}");
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    let shutdown = async {
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => {
                        let _ = tokio::signal::ctrl_c().await;
                        return;
                    }
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    };
    flexus_emulator::serve(listener, emu, shutdown)
        .await
        .context("serving")?;
    Ok(())
}
