//! What the agent's benchmarks share besides the tests' harness (`tests/common`): the
//! guard that measures only under `cargo bench`, and the pools they declare.

#![allow(dead_code)]

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use flexus_emulator::Quota;
use futures::StreamExt;

use crate::common::ADMIN;
use crate::common::process::{
    AgentProc, free_port, start_agent_logging, wait_ready, write_config_with,
};

/// The benchmark's positional arguments; `None` (after saying how to run it) when the
/// binary was not started by `cargo bench`: `cargo test --all-targets` runs bench
/// binaries without `--bench`, and a measurement is never part of the test suite.
pub fn bench_args(name: &str, run_with: &str) -> Option<Vec<String>> {
    if !std::env::args().any(|a| a == "--bench") {
        println!("{name} benchmark: skipped (run it with `{run_with}`)");
        return None;
    }
    Some(
        std::env::args()
            .skip(1)
            .filter(|a| !a.starts_with("--"))
            .collect(),
    )
}

/// The bench pools' names: `p00000`, `p00001`, ...
pub fn pool_name(i: usize) -> String {
    format!("p{i:05}")
}

/// Runs `declare` for each of the pools `p00000..`, 32 at a time.
pub async fn for_each_pool<F, Fut>(pools: usize, declare: F)
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = ()>,
{
    futures::stream::iter(0..pools)
        .map(|i| declare(pool_name(i)))
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
}

/// A pool of `x1.1u.1g` instances (the smallest flavor) between `min` and `max`, each
/// booting in `boot_seconds`.
pub fn small_pool(min: u32, max: u32, boot_seconds: u32) -> flexus_api::PoolSpec {
    serde_json::from_value(serde_json::json!({
        "flavor": "x1.1u.1g", "image": "img-ubuntu-22", "vpc_id": "vpc-1", "subnet_ids": ["subnet-1"],
        "min_size": min, "max_size": max, "boot_seconds": boot_seconds
    }))
    .unwrap()
}

/// Room in the emulator for four small instances per pool, and some to spare.
pub fn quota_for(pools: usize) -> Quota {
    Quota {
        instances: (pools as u32) * 4 + 100,
        vcpus: (pools as u32) * 4 + 100,
        ram_mb: (pools as u64) * 4 * 4096 + 100_000,
    }
}

/// The agent as its own process (the binary cargo built for the bench) against the
/// emulator at `emu_url`: its config, store and log (at `level`) in `dir`, `reconcile`
/// as its `[reconcile]` settings and `extra` TOML appended; once ready, with the
/// admin's client.
pub async fn start_agent(
    dir: &Path,
    emu_url: &str,
    reconcile: &str,
    extra: &str,
    level: &str,
) -> (AgentProc, Arc<flexus_api::Client>) {
    let config = write_config_with(dir, emu_url, free_port(), "agent.db", reconcile, extra);
    let log = dir.join("agent.log");
    let mut agent = start_agent_logging(&config, &log, level);
    wait_ready(&mut agent, &log).await;
    let client = Arc::new(flexus_api::Client::new(&agent.url, Some(ADMIN.into())).unwrap());
    (agent, client)
}
