//! flexus-api — the control-plane contract of `flexus-agent`: the JSON bodies of the
//! `/v1` HTTP API and a typed client for it (used by the Terraform provider and the
//! agent's CLI).
//!
//! Must not: contain server, store or decision logic, or depend on axum/sqlx/the cloud
//! client. The only logic here is field validation that both sides share.
//!
//! Layout:
//! - [`types`]: request/response bodies (`PoolSpec` declared vs `PoolStatus` observed,
//!   `PolicySpec`, decisions, operations, errors, pages).
//! - [`client`]: [`Client`], a typed `reqwest` client with bearer auth and ETag
//!   preconditions.
//! - [`paths`]: the URL paths, shared by the server router and the client.
//! - [`operator`]: cost report, advisor and usage bodies, their paths and client calls.

pub mod client;
pub mod operator;
pub mod paths;
pub mod types;

pub use client::{ApiFailure, Client, ClientError, Precondition, Versioned};
pub use operator::*;
pub use types::*;
