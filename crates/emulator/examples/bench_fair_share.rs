//! Benchmark: how long a modest tenant's call waits for the account's rate budget
//! while a greedy tenant keeps many calls queued — with fair shares (each namespace its
//! own tenant, `Cloud::for_tenant`) and with one shared queue (both through the same
//! tenant), side by side in one run. Real signed `list_servers` calls to the emulator
//! in this process over loopback; the client's account budget is `rate` reads/s.
//!
//! `cargo run --release -p flexus-emulator --example bench_fair_share -- [seconds] [greedy callers] [rate]`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use flexus_cloud::{ClientConfig, Cloud, Credentials, HuaweiClient, RateLimits, ServerFilter};

mod common;
use common::{AK, PROJECT, SK, arg, percentile, start_emulator};

/// One run: `greedy` callers of tenant `greedy_tenant` list in a loop; the modest
/// caller (tenant `modest_tenant`) lists every 100 ms. Returns the modest call's
/// latencies (sorted) and the greedy calls per second.
async fn run(
    base: &str,
    rate: f64,
    greedy: usize,
    seconds: u64,
    tenants: (&str, &str),
) -> anyhow::Result<(Vec<Duration>, f64)> {
    let mut cc = ClientConfig::single_endpoint(base, "cn-north-4", PROJECT)?;
    cc.rate_limits = RateLimits {
        reads_per_second: rate,
        writes_per_second: rate,
        burst: 1,
    };
    let account = HuaweiClient::new(cc, Credentials::new(AK, SK))?;
    let done = Arc::new(AtomicU64::new(0));
    let stop = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..greedy {
        let cloud = account.for_tenant(tenants.0);
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            while Instant::now() < stop {
                if cloud.list_servers(&ServerFilter::default()).await.is_ok() {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    // Let the greedy callers fill the queue first.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let modest = account.for_tenant(tenants.1);
    let mut waits = Vec::new();
    while Instant::now() < stop {
        let t = Instant::now();
        modest.list_servers(&ServerFilter::default()).await?;
        waits.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for t in tasks {
        t.await?;
    }
    waits.sort();
    Ok((waits, done.load(Ordering::Relaxed) as f64 / seconds as f64))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let seconds = arg(1, 20);
    let greedy = arg(2, 40) as usize;
    let rate = arg(3, 50) as f64;
    let (_emu, base) = start_emulator(30.0).await?;
    println!(
        "account budget {rate} reads/s (burst 1), {greedy} greedy callers, a modest call every 100 ms, {seconds} s per run"
    );
    println!(
        "{:<14} {:>9} {:>9} {:>9} {:>9} {:>14}",
        "queueing", "calls", "p50 ms", "p99 ms", "max ms", "greedy calls/s"
    );
    let mut p99 = Vec::new();
    for (label, tenants) in [
        ("fair shares", ("team-b", "team-a")),
        ("one queue", ("shared", "shared")),
    ] {
        let (w, greedy_rate) = run(&base, rate, greedy, seconds, tenants).await?;
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{label:<14} {:>9} {:>9.1} {:>9.1} {:>9.1} {:>14.1}",
            w.len(),
            ms(percentile(&w, 0.5)),
            ms(percentile(&w, 0.99)),
            ms(*w.last().unwrap_or(&Duration::ZERO)),
            greedy_rate
        );
        p99.push(percentile(&w, 0.99));
    }
    println!(
        "modest p99, one queue / fair shares: {:.1}x",
        p99[1].as_secs_f64() / p99[0].as_secs_f64().max(1e-9)
    );
    Ok(())
}
