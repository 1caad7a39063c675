//! terraform-provider-flexus — the Terraform provider of Flexus Autoscaler.
//!
//! What it is: the provider configuration (`endpoint`, `token`, `namespace`, request timeout
//! and retries, with `FLEXUS_*` environment fallbacks), the resources `flexus_x_pool` and
//! `flexus_autoscaling_policy`, the data sources `flexus_x_pool`, `flexus_x_flavors`,
//! `flexus_policy_simulation` and `flexus_policy_recommendation`, the conversion between
//! Terraform models and the agent's `/v1` types, and the one place where errors become Terraform diagnostics.
//!
//! What it must not do: speak gRPC or msgpack (the `tfplugin` framework does), create or
//! delete instances itself (the agent owns instances; the provider declares pools), or
//! re-implement policy validation (it calls `flexus-policy`, the code the agent runs).
//!
//! Module layout:
//! - [`provider`] — `FlexusProvider`: configuration model, env fallbacks, the configured
//!   [`provider::Flexus`] client with timeouts and retries.
//! - [`errors`] — agent errors and policy diagnostics → Terraform diagnostics with paths.
//! - [`pool`] — resource `flexus_x_pool` (declaration, capacity wait, drift rules, import).
//! - [`policy`] — resource `flexus_autoscaling_policy`; [`policy_model`] — its Terraform
//!   model and the conversion to and from the `flexus-policy` model.
//! - [`pool_data`] — data source `flexus_x_pool`; [`flavors_data`] — data source
//!   `flexus_x_flavors` (what the cloud offers, through the agent).
//! - [`simulation`] — data source `flexus_policy_simulation` (trace replay via `flexus-sim`).
//! - [`recommendation`] — data source `flexus_policy_recommendation` (the agent's tuner, at plan time).
//! - [`docs`] — registry-layout Markdown generated from the schemas.

pub mod docs;
pub mod errors;
pub mod flavors_data;
pub mod policy;
pub mod policy_model;
pub mod pool;
pub mod pool_data;
pub mod provider;
pub mod recommendation;
pub mod simulation;

pub use provider::FlexusProvider;
