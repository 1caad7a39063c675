//! What the agent's benchmarks share besides the tests' harness (`tests/common`): the
//! guard that measures only under `cargo bench`, and the pools they declare.

#![allow(dead_code)]

use std::future::Future;

use flexus_emulator::Quota;
use futures::StreamExt;

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

/// Room in the emulator for four small instances per pool, and some to spare.
pub fn quota_for(pools: usize) -> Quota {
    Quota {
        instances: (pools as u32) * 4 + 100,
        vcpus: (pools as u32) * 4 + 100,
        ram_mb: (pools as u64) * 4 * 4096 + 100_000,
    }
}
