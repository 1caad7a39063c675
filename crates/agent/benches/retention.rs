//! Does the store stay bounded? 1,000 pools for 24 emulated hours against the emulator
//! with 10 % of creates rejected (HTTP 400 `Ecs.0005`, so each rejection is a failed
//! operation and the next pass journals a new one), every pool's policy rewritten every
//! emulated hour (its size toggles between 1 and 2, so creates and deletes keep coming
//! and policy versions keep piling up). Prints, per emulated hour, the size of the
//! SQLite store (file + WAL) and its operation and policy-version rows — once with the
//! retention given on the command line and once with retention off (everything kept),
//! side by side.
//!
//! ```text
//! cargo bench -p flexus-agent --bench retention -- [POOLS] [HOURS] [SPEED] [MAX_AGE]
//! ```
//! (defaults: 1000 pools, 24 h, 480x, max age 6h for operations and policy versions;
//! the run with retention also keeps 20 decisions per pool, the one without the
//! default 500).

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flexus_api::{PoolSpec, Precondition};
use flexus_emulator::{AcceptedKey, Emulator, EmulatorConfig, Quota};
use futures::StreamExt;
use serde_json::json;

const AK: &str = "BENCHACCESSKEY000001";
const SK: &str = "bench-secret-key-not-real-000000000001";
const ADMIN: &str = "bench-admin-token-0123456789";
const PROJECT: &str = "0123456789abcdef0123456789abcdef";

fn spec() -> PoolSpec {
    serde_json::from_value(json!({
        "flavor": "x1.1u.1g", "image": "img-ubuntu-22", "vpc_id": "vpc-1", "subnet_ids": ["subnet-1"],
        "min_size": 0, "max_size": 3, "boot_seconds": 60
    }))
    .unwrap()
}

/// A policy that holds the pool at `n` (a signal that never reports falls back to `n`).
fn policy(pool: &str, n: u32) -> flexus_api::PolicySpec {
    flexus_api::PolicySpec {
        pool: pool.into(),
        enabled: true,
        dry_run: false,
        policy: serde_json::from_value(json!({
            "strategy": "target_tracking",
            "evaluation_interval": "15m",
            "bounds": {"min": n, "max": n},
            "metrics": [{"name": "held", "kind": "custom", "source": {"type": "push"},
                "target": 1, "missing_data": "fallback", "fallback_capacity": n}],
            "scale_out": {"stabilisation_window": "0s", "cooldown": "0s"},
            "scale_in": {"stabilisation_window": "0s", "cooldown": "0s"}
        }))
        .unwrap(),
    }
}

struct Sample {
    hour: u32,
    bytes: u64,
    operations: i64,
    failed: i64,
    versions: i64,
    decisions: i64,
}

async fn sample(db: &std::path::Path, hour: u32) -> Sample {
    use sqlx::Connection as _;
    let size = |p: std::path::PathBuf| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let bytes = size(db.to_path_buf()) + size(db.with_extension("db-wal"));
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}?mode=ro", db.display());
    let mut c = sqlx::AnyConnection::connect(&url).await.unwrap();
    let count = async |c: &mut sqlx::AnyConnection, sql: &'static str| -> i64 {
        sqlx::query_scalar(sql).fetch_one(c).await.unwrap_or(-1)
    };
    Sample {
        hour,
        bytes,
        operations: count(&mut c, "SELECT COUNT(*) FROM operations").await,
        failed: count(
            &mut c,
            "SELECT COUNT(*) FROM operations WHERE state = 'failed'",
        )
        .await,
        versions: count(&mut c, "SELECT COUNT(*) FROM policy_versions").await,
        decisions: count(&mut c, "SELECT COUNT(*) FROM decisions").await,
    }
}

/// One run: returns a sample per emulated hour.
async fn run(
    pools: usize,
    hours: u32,
    speed: f64,
    retention: &str,
    decisions_keep: u32,
) -> Vec<Sample> {
    let emu = Emulator::new(EmulatorConfig {
        keys: vec![AcceptedKey {
            access_key: AK.into(),
            secret_key: SK.into(),
            security_token: None,
        }],
        boot_seconds: Some(60.0),
        delete_seconds: 30.0,
        time_scale: speed,
        quota: Quota {
            instances: (pools as u32) * 4 + 100,
            vcpus: (pools as u32) * 4 + 100,
            ram_mb: (pools as u64) * 4 * 4096 + 100_000,
        },
        ..EmulatorConfig::default()
    })
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let emu_url = format!("http://{}", listener.local_addr().unwrap());
    let e = emu.clone();
    let stop = tokio_util::sync::CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move {
        let _ = flexus_emulator::serve(listener, e, async move { s.cancelled().await }).await;
    });
    let http = reqwest::Client::new();
    http.post(format!("{emu_url}/_emulator/faults"))
        .json(&json!({"operation": "create_servers", "error_rate": 0.1, "status": 400, "code": "Ecs.0005"}))
        .send()
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = dir.path().join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "listen = \"127.0.0.1:{port}\"\nstore = \"agent.db\"\nlog_format = \"json\"\n\
             [cloud]\nendpoint = \"{emu_url}\"\nregion = \"cn-north-4\"\nproject_id = \"{PROJECT}\"\n\
             reads_per_second = 0\nwrites_per_second = 0\n\
             [auth]\nadmin_token_env = \"BENCH_ADMIN_TOKEN\"\n\
             [reconcile]\nconcurrency = 256\ndefault_interval = \"15m\"\njob_poll = \"30s\"\n\
             max_backoff = \"2s\"\ndecision_log_keep = {decisions_keep}\n\
             [retention]\n{retention}\n"
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_flexus-agent"))
        .args(["run", "--config"])
        .arg(&cfg)
        .env("BENCH_ADMIN_TOKEN", ADMIN)
        .env("HUAWEICLOUD_SDK_AK", AK)
        .env("HUAWEICLOUD_SDK_SK", SK)
        .env("FLEXUS_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("agent starts");
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if http
            .get(format!("{url}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let client = Arc::new(flexus_api::Client::new(&url, Some(ADMIN.into())).unwrap());
    let put_all = |n: u32| {
        let client = client.clone();
        async move {
            futures::stream::iter(0..pools)
                .map(|i| {
                    let c = client.clone();
                    async move {
                        let name = format!("p{i:05}");
                        let pol = policy(&name, n);
                        let _ = c
                            .put_policy(
                                "bench",
                                &format!("{name}-policy"),
                                &pol,
                                Precondition::None,
                            )
                            .await;
                    }
                })
                .buffer_unordered(32)
                .collect::<Vec<_>>()
                .await;
        }
    };
    futures::stream::iter(0..pools)
        .map(|i| {
            let c = client.clone();
            async move {
                c.put_pool("bench", &format!("p{i:05}"), &spec(), Precondition::None)
                    .await
                    .unwrap();
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    put_all(1).await;

    // One emulated hour at a time: sample, then toggle every pool's size.
    let hour = Duration::from_secs_f64(3600.0 / speed);
    let start = Instant::now();
    let mut out = Vec::new();
    for h in 1..=hours {
        let due = start + hour * h;
        tokio::time::sleep_until(due.into()).await;
        let s = sample(&dir.path().join("agent.db"), h).await;
        eprintln!(
            "  hour {:>2}: {:>7.2} MiB, {} operations ({} failed), {} policy versions, {} decisions",
            s.hour,
            s.bytes as f64 / 1048576.0,
            s.operations,
            s.failed,
            s.versions,
            s.decisions
        );
        out.push(s);
        put_all(if h % 2 == 1 { 2 } else { 1 }).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    stop.cancel();
    out
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "retention benchmark: skipped (run it with `cargo bench -p flexus-agent --bench retention`)"
        );
        return;
    }
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let pools: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let hours: u32 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(24);
    let speed: f64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(480.0);
    let max_age = args.get(3).cloned().unwrap_or_else(|| "6h".into());
    let with = format!(
        "operations_max_age = \"{max_age}\"\npolicy_versions_max_age = \"{max_age}\"\nprune_every = \"10m\""
    );
    let without = "operations_max_age = \"100000d\"\noperations_keep = 4000000000\n\
                   policy_versions_max_age = \"100000d\"\npolicy_versions_keep = 4000000000";
    eprintln!("with retention (max age {max_age}, default counts, 20 decisions per pool):");
    let a = run(pools, hours, speed, &with, 20).await;
    eprintln!("without retention (500 decisions per pool, the default):");
    let b = run(pools, hours, speed, without, 500).await;
    println!("pools: {pools}, emulated hours: {hours}, speed: {speed}x, 10% of creates rejected");
    println!(
        "| hour | with: MiB | ops | policy versions | decisions | without: MiB | ops | policy versions | decisions | size ratio |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (x, y) in a.iter().zip(&b) {
        println!(
            "| {} | {:.2} | {} ({} failed) | {} | {} | {:.2} | {} ({} failed) | {} | {} | {:.2} |",
            x.hour,
            x.bytes as f64 / 1048576.0,
            x.operations,
            x.failed,
            x.versions,
            x.decisions,
            y.bytes as f64 / 1048576.0,
            y.operations,
            y.failed,
            y.versions,
            y.decisions,
            x.bytes as f64 / y.bytes.max(1) as f64
        );
    }
}
