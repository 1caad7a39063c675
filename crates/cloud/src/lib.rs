//! `flexus-cloud` — the Huawei Cloud client used by the Flexus autoscaler.
//!
//! It signs requests with `SDK-HMAC-SHA256` (AK/SK, optional STS token), creates,
//! lists, tags and deletes ECS (Flexus X) servers, polls ECS jobs, and reads and writes
//! Cloud Eye (CES) metrics. Errors come back typed ([`ErrorKind`]) with the service
//! code and request id; throttling, 5xx and timeouts are retried with exponential
//! backoff and jitter behind a client-side token bucket.
//!
//! It must not know about policies, pools or Terraform, and never logs credentials.
//! The agent uses it through the object-safe [`Cloud`] trait; tests and the demo point
//! the same client at `flexus-emulator`.
//!
//! Modules:
//! - [`signer`]: canonical request, string to sign, signature, header parsing (public
//!   so the emulator verifies with the same definition).
//! - [`credentials`]: [`Credentials`] (redacted `Debug`, env loading).
//! - [`config`]: [`ClientConfig`], [`RetryPolicy`], [`RateLimits`].
//! - [`error`]: [`CloudError`], [`ErrorKind`], error-body parsing.
//! - [`model`]: request/response types.
//! - [`client`]: [`HuaweiClient`] (transport + ECS + CES).
//! - [`cloud`]: the [`Cloud`] trait, [`wait_for_job`], [`job_failure`].
//! - [`ratelimit`]: the token bucket and the account budget shared fairly by tenants.
//! - [`limits`]: what ECS accepts in a create request (volume types, NICs, user data).

pub mod client;
pub mod cloud;
pub mod config;
pub mod credentials;
pub mod error;
pub mod limits;
pub mod model;
pub mod ratelimit;
pub mod signer;

pub use client::{HuaweiClient, RawRequest, RawResponse, Service};
pub use cloud::{Cloud, job_failure, wait_for_job};
pub use config::{ClientConfig, RateLimits, RetryPolicy};
pub use credentials::Credentials;
pub use error::{CloudError, ErrorKind};
pub use model::*;
