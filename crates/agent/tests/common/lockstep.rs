//! An in-process flexus-emulator with a frozen clock that a test steps in lockstep with
//! the agent's [`ManualClock`], and the agent's reconcile [`Context`] wired to it through
//! the real signed ECS/CES client.
//!
//! Lockstep: the test moves both clocks to the same instant `t`, except that the
//! emulator stops [`EMULATOR_LAG_MS`] short of it. The emulator's workload driver writes
//! the sample of instant `t` from the servers as they are at `t`; the simulator serves
//! the tick starting at `t` after the decision taken at `t`. With the emulator a
//! millisecond behind, what the agent does at `t` (a create, a delete) is in place
//! before the sample of `t` is written, as in the replay.
//!
//! Included by `#[path]` from the tests that use it (the shared `common` module is left
//! as it is).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use flexus_agent::clock::{ManualClock, Millis};
use flexus_agent::config::ReconcileConfig;
use flexus_agent::runtime::Context;
use flexus_agent::runtime::sources::{CloudEye, Sources};
use flexus_agent::store::Store;
use flexus_agent::telemetry::Telemetry;
use flexus_cloud::{ClientConfig, Cloud, Credentials, HuaweiClient, RateLimits, RetryPolicy};
use flexus_emulator::{AcceptedKey, Emulator, EmulatorConfig};
use tokio_util::sync::CancellationToken;

use crate::common::{AK, PROJECT, REGION, SK};

/// How far the emulator's clock stays behind the agent's at every step.
pub const EMULATOR_LAG_MS: Millis = 1;

/// A frozen emulator and the agent clock stepped with it.
pub struct Lockstep {
    pub emu: Arc<Emulator>,
    pub url: String,
    pub clock: Arc<ManualClock>,
    http: reqwest::Client,
    stop: CancellationToken,
}

impl Lockstep {
    /// Starts the emulator (clock frozen, boot and warm-up times from each flavor in
    /// `flexus_sim::capacity`, deletes immediate, a workload sample every
    /// `metric_interval_s`) and moves both clocks to `start_ms`.
    pub async fn start(metric_interval_s: u32, start_ms: Millis) -> Self {
        let config = EmulatorConfig {
            keys: vec![AcceptedKey {
                access_key: AK.into(),
                secret_key: SK.into(),
                security_token: None,
            }],
            boot_seconds: None,
            delete_seconds: 0.0,
            time_scale: 0.0,
            metric_interval_s,
            ..EmulatorConfig::default()
        };
        let emu = Emulator::new(config).expect("emulator config is valid");
        assert!(
            emu.now().timestamp_millis() < start_ms - EMULATOR_LAG_MS,
            "the start must lie ahead of the emulator's wall-clock start"
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        let (s, e) = (stop.clone(), emu.clone());
        tokio::spawn(async move {
            let _ = flexus_emulator::serve(listener, e, async move { s.cancelled().await }).await;
        });
        let me = Self {
            emu,
            url,
            clock: ManualClock::new(start_ms),
            http: reqwest::Client::new(),
            stop,
        };
        me.step_to(start_ms).await;
        me
    }

    /// Moves the agent's clock to `t_ms` and the emulator's (through
    /// `POST /_emulator/clock`) to [`EMULATOR_LAG_MS`] before it.
    pub async fn step_to(&self, t_ms: Millis) {
        self.control(
            "/_emulator/clock",
            serde_json::json!({"advance_to_ms": t_ms - EMULATOR_LAG_MS}),
        )
        .await;
        assert_eq!(
            self.emu.now().timestamp_millis(),
            t_ms - EMULATOR_LAG_MS,
            "the emulator's clock is frozen at the step"
        );
        self.clock.set(t_ms);
    }

    /// A `POST` to the emulator's control API; fails the test unless it succeeds.
    pub async fn control(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        let r = self
            .http
            .post(format!("{}{}", self.url, path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: serde_json::Value = r.json().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "emulator control {path} failed: {status} {v}"
        );
        v
    }

    /// The signed Huawei client against the emulator (no rate limit, short retries).
    pub fn cloud(&self) -> Arc<dyn Cloud> {
        let mut cc = ClientConfig::single_endpoint(&self.url, REGION, PROJECT).unwrap();
        cc.rate_limits = RateLimits::unlimited();
        cc.retry = RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(50),
        };
        Arc::new(HuaweiClient::new(cc, Credentials::new(AK, SK)).unwrap())
    }

    /// The agent's reconcile context on `store`, reading Cloud Eye at `ces_period`
    /// (1 = raw samples) through the real client, on the lockstep clock.
    pub fn context(&self, store: Arc<dyn Store>, ces_period: u32) -> Context {
        Context::new(
            store,
            self.cloud(),
            self.clock.clone(),
            Sources {
                cloud_eye: CloudEye {
                    period: ces_period,
                    lookback: Duration::from_secs(120),
                },
                prometheus: None,
                redis: None,
            },
            Arc::new(Telemetry::new()),
            ReconcileConfig::default(),
            Arc::new(AtomicBool::new(true)),
        )
    }
}

impl Drop for Lockstep {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
