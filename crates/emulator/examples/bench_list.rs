//! Benchmark: signed `list_servers` calls per second the emulator sustains, and the p50/p99
//! latency of one signed client round trip (`get_server`), client and emulator in one
//! process over loopback.
//!
//! `cargo run --release -p flexus-emulator --example bench_list -- [seconds] [concurrency] [servers]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use flexus_cloud::{
    ClientConfig, Cloud, CreateServersRequest, Credentials, HuaweiClient, RateLimits, RootVolume,
    ServerFilter,
};

mod common;
use common::{AK, PROJECT, SK, arg, percentile, start_emulator};

/// CPU seconds (user + system) this process has used, from /proc (Linux); `None` elsewhere.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let seconds = arg(1, 5);
    let concurrency = arg(2, 8) as usize;
    let servers = arg(3, 50) as u32;
    let (_emu, base) = start_emulator(1.0).await?;
    let mut cfg = ClientConfig::single_endpoint(&base, "cn-north-4", PROJECT)?;
    cfg.rate_limits = RateLimits::unlimited();
    let client = HuaweiClient::new(cfg, Credentials::new(AK, SK))?;
    let created = client
        .create_servers(&CreateServersRequest {
            client_token: uuid::Uuid::new_v4(),
            name: "bench".into(),
            flavor: "x1.2u.4g".into(),
            image: "img".into(),
            vpc_id: "vpc".into(),
            subnet_ids: vec!["subnet".into()],
            security_groups: vec![],
            availability_zone: None,
            key_name: None,
            user_data: None,
            root_volume: RootVolume {
                volume_type: "SSD".into(),
                size_gb: None,
            },
            tags: vec![("flexus-pool".into(), "bench".into())],
            count: servers,
            spot: None,
        })
        .await?;
    let filter = ServerFilter {
        tags: vec![("flexus-pool".into(), "bench".into())],
        page_size: Some(servers.max(1)),
        ..ServerFilter::default()
    };
    assert_eq!(client.list_servers(&filter).await?.len(), servers as usize);

    // Throughput: `concurrency` tasks issuing signed list calls (one page each).
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let client = Arc::new(client);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let c = client.clone();
        let f = filter.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                c.list_servers(&f).await.expect("list");
                n += 1;
            }
            n
        }));
    }
    let start = Instant::now();
    let cpu_start = process_cpu_seconds();
    let mut total = 0;
    for t in tasks {
        total += t.await?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = cpu_start.zip(process_cpu_seconds()).map(|(a, b)| b - a);

    // Latency: sequential signed round trips of one small call.
    let id = created.server_ids[0].clone();
    for _ in 0..200 {
        client.get_server(&id).await?;
    }
    let mut lat = Vec::with_capacity(5000);
    for _ in 0..5000 {
        let t = Instant::now();
        client.get_server(&id).await?;
        lat.push(t.elapsed());
    }
    lat.sort();
    println!(
        "signed list_servers ({servers} servers per page, {concurrency} concurrent): {total} calls in {elapsed:.2}s = {:.0} calls/s",
        total as f64 / elapsed
    );
    if let Some(cpu) = cpu {
        println!(
            "  process CPU (client + emulator) {cpu:.2}s: {:.0} calls per CPU-second, {:.0} us CPU per call",
            total as f64 / cpu,
            cpu * 1e6 / total as f64
        );
    }
    println!(
        "signed get_server round trip (sequential, n=5000): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        percentile(&lat, 0.50).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat[lat.len() - 1].as_secs_f64() * 1e3
    );
    Ok(())
}
