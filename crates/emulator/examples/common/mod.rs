//! What the benchmark examples share: arguments, percentiles, and an emulator in this
//! process on loopback with a frozen clock.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use flexus_emulator::{AcceptedKey, Emulator, EmulatorConfig};

pub const AK: &str = "BENCHAK0000000000001";
pub const SK: &str = "bench-secret-key";
pub const PROJECT: &str = "0123456789abcdef0123456789abcdef";

/// Command-line argument `i`, or `default`.
pub fn arg(i: usize, default: u64) -> u64 {
    std::env::args()
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// The `q` quantile of sorted durations.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// An emulator on 127.0.0.1:0 accepting [`AK`]/[`SK`], its clock frozen; returns it
/// and its base URL.
pub async fn start_emulator(boot_seconds: f64) -> anyhow::Result<(Arc<Emulator>, String)> {
    let emu = Emulator::new(EmulatorConfig::frozen(
        PROJECT,
        AcceptedKey::new(AK, SK),
        boot_seconds,
    ))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(flexus_emulator::serve(
        listener,
        emu.clone(),
        std::future::pending::<()>(),
    ));
    Ok((emu, base))
}
