//! flexus-agent — the daemon that turns declared pools and policies into running
//! instances: the `/v1` control-plane API, its store, the reconcile runtime, metric
//! sources, telemetry, and the `flexus-agent` CLI.
//!
//! Must not: re-implement decision logic (that is `flexus_policy::decide`), read the
//! clock outside [`clock`], touch an instance that does not carry its pool's tags, or
//! depend on the emulator (tests use it as a dev-dependency only).
//!
//! Layout:
//! - [`clock`]: the one place time is read (real, manual and scaled clocks).
//! - [`config`]: `agent.toml` loading and validation (nothing is bound).
//! - [`store`]: the typed [`store::Store`] trait and its one SQL implementation
//!   (SQLite embedded, PostgreSQL for several agents), retention, pool leases.
//! - [`server`]: `router(state) -> Router` — the HTTP API, auth, namespaces, ETags.
//! - [`checks`]: what the API checks before storing a pool or policy (ECS limits, the
//!   cloud's flavor catalogue, pool ⊇ policy bounds) and the cached cloud facts it serves.
//! - [`openapi`]: the OpenAPI document served at `/v1/openapi.json`.
//! - [`runtime`]: scheduler + runner; [`runtime::reconcile`] the pass (observe → decide →
//!   act → record); [`runtime::sources`] Cloud Eye / Prometheus / Redis readers.
//! - [`telemetry`]: the agent's Prometheus metrics.
//! - [`cost`]: usage recorder (its own task), cost report, replayed recommendations.
//! - [`advisor`]: the DeepSeek advisor (its own task; proposals checked and replayed).
//! - [`web`]: the dashboard (embedded assets) and the cost/usage/advice API.
//! - [`probe`]: whether the cloud answers and accepts the credentials (`/readyz`, `check-config`).
//! - [`agent`]: wiring — `run(config, listener, shutdown)`.
//! - [`cli`]: table rendering for the CLI subcommands.
//! - [`tuner`]: tune jobs — flexus-sim's tuner on a pool's recorded history, polled by the client.

pub mod advisor;
pub mod agent;
pub mod checks;
pub mod cli;
pub mod clock;
pub mod config;
pub mod config_doc;
pub mod cost;
pub mod openapi;
pub mod probe;
pub mod runtime;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod tuner;
pub mod web;
