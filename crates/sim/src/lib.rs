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
//! - [`chart`] — SVG chart of load, demand and supply per policy (plotters; feature `charts`).
//! - [`cli`] — the `simulate` and `tune` command lines (clap, progress bars; feature `cli`).
//! - [`error`] — [`SimError`].
//! - [`fit_cache`] — forecast fits shared between the replays of one history (`tune`).
//! - [`frontier`] — tuning/evaluation windows; every family swept along its knob; the fewest
//!   instance-hours within a violation budget; the frontier chart.
//! - [`policy`] — flexus-policy's `decide()` as an autoscaler (observations, pool state, history, forecasts).
//! - [`replay`] — instance lifecycle, monitoring delay, the [`replay::Autoscaler`] trait, [`replay::run`].
//! - [`scorecard`] — SLO, cost and SPEC-RG elasticity metrics, markdown table.
//! - [`simulation`] — [`simulation::simulate`], [`simulation::simulate_named_trace`]: a trace
//!   against a policy and the baselines, as a library (what the provider's data source, the
//!   agent's tuner and the command line call).
//! - [`trace`] — named trace loaders, gap handling, fleet scaling.
//! - [`tune`] — the policy tuner: CMA-ES over the policy's knobs by replay on the first two
//!   thirds of a history, measured before/after on the last third.
//!
//! Features: `cli` (default; clap and indicatif for the command lines, implies `charts`) and
//! `charts` (plotters, for SVG charts). Library users that only replay (the Terraform provider,
//! the emulator) turn default features off and link neither.
pub mod baselines;
pub mod bounds;
pub mod capacity;
#[cfg(feature = "charts")]
pub mod chart;
#[cfg(feature = "cli")]
pub mod cli;
pub mod error;
pub mod fit_cache;
pub mod frontier;
pub mod policy;
pub mod replay;
pub mod scorecard;
pub mod simulation;
pub mod trace;
pub mod tune;

pub use error::SimError;
