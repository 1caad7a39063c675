//! flexus-policy — the pure decision engine of Flexus Autoscaler.
//!
//! What it is: the policy model (serde + schemars, with a checked-in JSON Schema),
//! parsing of HCL and JSON policy files with located errors, semantic validation, and
//! [`decide`], a pure function from (policy, observations, pool state, history, now,
//! optional forecast) to an explained [`Decision`]. The agent calls it at run time, the
//! Terraform provider at plan time (validation), the simulator in replays.
//!
//! What it must not do: I/O of any kind, read a clock (time is an argument), log (it
//! returns reasons), depend on tokio/reqwest/tonic/hyper or any other workspace crate
//! (`tests/architecture.rs` enforces this).
//!
//! Module layout:
//! - [`time`]: [`Timestamp`] and the text form of durations (`"90s"`, `"5m"`, `"1h"`).
//! - [`model`]: [`Policy`] and its parts.
//! - [`names`]: the wire names of fieldless enums (serde and strum, checked to agree).
//! - [`diag`]: [`Diagnostics`], [`Location`], [`FieldPath`].
//! - `validate`: [`Policy::validate`] (every rule, every violation).
//! - [`parse`]: [`parse_hcl`], [`parse_json`], [`source_text`] (the UTF-8 check of a file).
//! - [`engine`]: [`CompiledPolicy`], [`decide`], the strategies (seed, target tracking,
//!   step, schedule), stabilisation, rate policies, cooldowns; [`engine::types`] holds
//!   the inputs and the [`Decision`]; [`engine::explain`] the reasons.
//! - [`forecast`]: load forecasting (augurs) that produces the [`Prediction`] a caller
//!   passes to [`decide`]; `decide` itself never fits a model.
//!
//! ```
//! use flexus_policy::*;
//! let policy = parse_json(r#"{
//!   "strategy": "target_tracking",
//!   "bounds": {"min": 1, "max": 10},
//!   "metrics": [{"name": "cpu", "kind": "cpu", "source": {"type": "push"}, "target": 60}]
//! }"#).expect("valid policy");
//! let compiled = CompiledPolicy::new(policy).expect("compiles");
//! let now = Timestamp::from_secs(1_000);
//! let pool = PoolState::ready(4, Timestamp::from_secs(0));
//! let obs = [Observation { metric: "cpu".into(), value: 90.0, at: now }];
//! let history = History::new();
//! let d = decide(&compiled, &DecisionInput {
//!     now, observations: &obs, pool: &pool, history: &history, prediction: None,
//! });
//! assert_eq!(d.desired, 6); // ceil(4 · 90 / 60)
//! assert_eq!(d.action, Action::ScaleOut { by: 2 });
//! ```

pub mod diag;
pub mod engine;
pub mod forecast;
pub mod model;
pub mod names;
pub mod parse;
pub mod time;
mod validate;

pub use diag::{Diagnostic, Diagnostics, FieldPath, Location, PathSegment};
pub use engine::explain::{Reason, Step};
pub use engine::types::{
    Action, BoundBy, Decision, DecisionInput, Direction, History, Instance, Lifecycle, Observation,
    PoolCounts, PoolState, Prediction, Purchase, Recommendation, Sample, ScaleEvent,
    SignalProposal,
};
pub use engine::{CompiledPolicy, decide};
pub use model::*;
pub use parse::{parse_hcl, parse_json, parse_json_value, source_text};
pub use time::{Timestamp, format_duration, parse_duration};
pub use validate::{parse_cron, parse_time, parse_timezone};

/// JSON Schema of [`Policy`] (what `docs/reference/policy.schema.json` holds).
pub fn policy_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(Policy);
    serde_json::to_value(schema).unwrap_or(serde_json::Value::Null)
}
