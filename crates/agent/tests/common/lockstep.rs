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

use std::sync::Arc;
use std::time::Duration;

use flexus_agent::clock::{ManualClock, Millis};
use flexus_agent::runtime::Context;
use flexus_agent::runtime::sources::CloudEye;
use flexus_agent::store::Store;
use flexus_cloud::{Cloud, RetryPolicy};
use flexus_emulator::EmulatorConfig;

use super::{Emu, emulator_config, reconcile_context};

/// How far the emulator's clock stays behind the agent's at every step.
pub const EMULATOR_LAG_MS: Millis = 1;

/// A frozen emulator and the agent clock stepped with it.
pub struct Lockstep {
    pub emu: Emu,
    pub clock: Arc<ManualClock>,
}

impl Lockstep {
    /// Starts the emulator (clock frozen, boot and warm-up times from each flavor in
    /// `flexus_sim::capacity`, deletes immediate, a workload sample every
    /// `metric_interval_s`) and moves both clocks to `start_ms`.
    pub async fn start(metric_interval_s: u32, start_ms: Millis) -> Self {
        let emu = Emu::serve(EmulatorConfig {
            boot_seconds: None,
            delete_seconds: 0.0,
            time_scale: 0.0,
            metric_interval_s,
            ..emulator_config()
        })
        .await;
        assert!(
            emu.now_ms() < start_ms - EMULATOR_LAG_MS,
            "the start must lie ahead of the emulator's wall-clock start"
        );
        let me = Self {
            emu,
            clock: ManualClock::new(start_ms),
        };
        me.step_to(start_ms).await;
        me
    }

    /// Moves the agent's clock to `t_ms` and the emulator's (through
    /// `POST /_emulator/clock`) to [`EMULATOR_LAG_MS`] before it.
    pub async fn step_to(&self, t_ms: Millis) {
        self.emu
            .control(
                reqwest::Method::POST,
                "/_emulator/clock",
                serde_json::json!({"advance_to_ms": t_ms - EMULATOR_LAG_MS}),
            )
            .await;
        assert_eq!(
            self.emu.now_ms(),
            t_ms - EMULATOR_LAG_MS,
            "the emulator's clock is frozen at the step"
        );
        self.clock.set(t_ms);
    }

    /// The signed Huawei client against the emulator (no rate limit, shorter retries
    /// than [`Emu::cloud`]).
    pub fn cloud(&self) -> Arc<dyn Cloud> {
        self.emu.cloud_retrying(RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(50),
        })
    }

    /// The agent's reconcile context on `store`, reading Cloud Eye at `ces_period`
    /// (1 = raw samples) through the real client, on the lockstep clock.
    pub fn context(&self, store: Arc<dyn Store>, ces_period: u32) -> Context {
        reconcile_context(
            store,
            self.cloud(),
            self.clock.clone(),
            CloudEye {
                period: ces_period,
                lookback: Duration::from_secs(120),
            },
            true,
        )
    }
}

impl Drop for Lockstep {
    fn drop(&mut self) {
        self.emu.stop.cancel();
    }
}
