//! flexus-sim — the simulator of Flexus Autoscaler.
//!
//! It replays real request traces against a per-flavor capacity and queueing
//! model, drives any autoscaler (our policy engine or a re-implemented
//! baseline) through the same observe → decide → act interface the agent
//! uses, and scores the result with SLO and SPEC-RG elasticity metrics.
//!
//! It must not do network I/O (no tokio, reqwest, hyper — the architecture
//! test enforces it) and must not read the wall clock: time is the trace's.
//!
//! Modules:
//! - [`baselines`] — static peak, HPA, AWS target tracking / step / predictive, oracle.
//! - [`bounds`] — lower bounds on instance-hours for a violation budget (what no autoscaler can beat).
//! - [`capacity`] — flavor catalogue, M/M/c instance model, pool step with backlog;
//!   also used by the emulator to turn load into per-instance metrics.
//! - [`chart`] — SVG chart of load, demand and supply per policy (plotters).
//! - [`cli`] — [`cli::simulate`], [`cli::simulate_named_trace`]: the `simulate` command as a library.
//! - [`error`] — [`SimError`].
//! - [`frontier`] — tuning/evaluation windows; every family swept along its knob; the fewest
//!   instance-hours within a violation budget; the frontier chart.
//! - [`policy`] — flexus-policy's `decide()` as an autoscaler (observations, pool state, history, forecasts).
//! - [`replay`] — instance lifecycle, monitoring delay, the [`replay::Autoscaler`] trait, [`replay::run`].
//! - [`scorecard`] — SLO, cost and SPEC-RG elasticity metrics, markdown table.
//! - [`trace`] — named trace loaders, gap handling, fleet scaling.
//! - [`tune`] — the policy tuner: CMA-ES over the policy's knobs by replay on the first two
//!   thirds of a history, measured before/after on the last third.
pub mod baselines;
pub mod bounds;
pub mod capacity;
pub mod chart;
pub mod cli;
pub mod command;
pub mod error;
pub mod frontier;
pub mod policy;
pub mod replay;
pub mod scorecard;
pub mod trace;
pub mod tune;

pub use error::SimError;
