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

#[path = "../tests/common/mod.rs"]
mod common;
mod harness;

use std::time::{Duration, Instant};

use common::process::kill9;
use common::{Emu, emulator_config};
use flexus_api::{PoolSpec, Precondition};
use flexus_emulator::EmulatorConfig;
use harness::{bench_args, for_each_pool, quota_for, small_pool, start_agent};
use serde_json::json;

fn spec() -> PoolSpec {
    small_pool(0, 3, 60)
}

/// A policy that holds the pool at `n` (a signal that never reports falls back to `n`).
fn policy(pool: &str, n: u32) -> flexus_api::PolicySpec {
    common::policy(
        pool,
        json!({
            "strategy": "target_tracking",
            "evaluation_interval": "15m",
            "bounds": {"min": n, "max": n},
            "metrics": [{"name": "held", "kind": "custom", "source": {"type": "push"},
                "target": 1, "missing_data": "fallback", "fallback_capacity": n}],
            "scale_out": {"stabilisation_window": "0s", "cooldown": "0s"},
            "scale_in": {"stabilisation_window": "0s", "cooldown": "0s"}
        }),
    )
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
    let emu = Emu::serve(EmulatorConfig {
        boot_seconds: Some(60.0),
        delete_seconds: 30.0,
        time_scale: speed,
        quota: quota_for(pools),
        ..emulator_config()
    })
    .await;
    emu.inject_fault(json!({"operation": "create_servers", "error_rate": 0.1, "status": 400, "code": "Ecs.0005"})).await;

    let dir = tempfile::tempdir().unwrap();
    let (mut agent, client) = start_agent(
        dir.path(),
        &emu.url,
        &format!(
            "concurrency = 256\ndefault_interval = \"15m\"\njob_poll = \"30s\"\n\
             max_backoff = \"2s\"\ndecision_log_keep = {decisions_keep}"
        ),
        &format!("[retention]\n{retention}"),
        "error",
    )
    .await;
    let put_all = |n: u32| {
        let client = client.clone();
        for_each_pool(pools, move |name| {
            let c = client.clone();
            async move {
                let pol = policy(&name, n);
                let _ = c
                    .put_policy("bench", &format!("{name}-policy"), &pol, Precondition::None)
                    .await;
            }
        })
    };
    for_each_pool(pools, |name| {
        let c = client.clone();
        async move {
            c.put_pool("bench", &name, &spec(), Precondition::None)
                .await
                .unwrap();
        }
    })
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
    kill9(&mut agent);
    emu.stop.cancel();
    out
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let Some(args) = bench_args("retention", "cargo bench -p flexus-agent --bench retention")
    else {
        return;
    };
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
