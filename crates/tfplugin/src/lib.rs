//! tfplugin — a Terraform plugin-protocol-6 server and a provider author framework.
//!
//! What it is: everything between Terraform and a provider's resource logic. The protocol
//! layer speaks go-plugin's handshake, AutoMTLS (pinning the client certificate Terraform
//! announces), gRPC (`tfplugin6.Provider`, `plugin.GRPCController`, health) and cty's msgpack
//! and JSON value encodings. The framework on top lets a provider declare each resource once
//! — a serde + schemars model struct is both its schema and its typed value — implement CRUD,
//! import and state upgrades, and get validators, defaults, plan modifiers, timeouts and
//! private state; the server enforces Terraform's plan and apply consistency rules before it
//! replies.
//!
//! What it must not do: know about Flexus or any cloud, print anything to stdout besides the
//! handshake (logs go to stderr through `tracing`), or let provider code see gRPC or msgpack.
//!
//! Module layout:
//! - [`value`] — `Type`, `Value`, lossless `Number`; [`codec`] — msgpack and JSON codecs
//! - [`path`] — attribute paths; [`diag`] — diagnostics (errors → diagnostics in one place)
//! - [`schema`] — blocks and attributes; [`model`] — schema from a model struct
//! - [`validators`], [`modifiers`] — attribute validators and plan modifiers
//! - [`framework`] — `Provider`, `Resource`, `DataSource`, plan pipeline, consistency rules
//! - `server` — one file per RPC; [`serve`] — handshake, TLS, shutdown; [`tls`] — AutoMTLS
//! - [`testing`] (feature `testing`) — filesystem mirror + real Terraform helpers for tests
//! - [`pb`] — generated protobuf types (from `proto/`, compiled with protox)
//!
//! # Writing a provider
//!
//! A provider crate depends on `tfplugin`, `serde` (derive), `schemars = "1"` and `tokio`.
//! One model struct per resource is both its Terraform schema and its typed value (see
//! [`model`] for the mapping and the `x-tf` keys):
//!
//! ```no_run
//! use schemars::JsonSchema;
//! use serde::{Deserialize, Serialize};
//! use tfplugin::{
//!     ConfigureRequest, CreateRequest, Ctx, DeleteRequest, Diagnostics, ImportRequest, Provider,
//!     ReadRequest, Resource, ResourceSchema, Resources, UpdateRequest, validators,
//! };
//!
//! /// `provider "demo" { endpoint = "..." }`
//! #[derive(Deserialize, JsonSchema)]
//! struct Config {
//!     /// API endpoint.
//!     endpoint: String,
//! }
//!
//! /// What `configure` builds and every call gets through `ctx.data()`.
//! struct Client {
//!     endpoint: String,
//! }
//!
//! /// A pool of machines.
//! #[derive(Clone, Serialize, Deserialize, JsonSchema)]
//! struct Pool {
//!     /// Assigned by the API.
//!     #[schemars(extend("x-tf" = {"computed": true, "use_state_for_unknown": true}))]
//!     id: Option<String>,
//!     /// Pool name; changing it replaces the pool.
//!     #[schemars(length(min = 1, max = 64), extend("x-tf" = {"requires_replace": true}))]
//!     name: String,
//!     /// Lower bound of the size.
//!     #[schemars(range(min = 0, max = 1000))]
//!     min_size: i64,
//!     /// Flavor, "x1.large" unless set.
//!     #[schemars(extend("x-tf" = {"default": "x1.large"}))]
//!     flavor: Option<String>,
//!     /// API token for the pool's agents.
//!     #[schemars(extend("x-tf" = {"sensitive": true}))]
//!     token: Option<String>,
//! }
//!
//! struct PoolResource;
//!
//! impl Resource for PoolResource {
//!     type Data = Client;
//!     type Model = Pool;
//!     const TYPE_NAME: &str = "demo_pool";
//!     // Optional: version, timeouts, validators/modifiers in code.
//!     fn schema(&self) -> Result<ResourceSchema, tfplugin::Error> {
//!         ResourceSchema::from_model::<Pool>()?
//!             .version(1)
//!             .attribute("flavor", |a| a.validator(validators::one_of(["x1.large", "x1.xlarge"])))
//!     }
//!     async fn create(&self, ctx: &Ctx<Client>, req: CreateRequest<Pool>) -> Result<Pool, Diagnostics> {
//!         let _api = &ctx.data()?.endpoint;
//!         let mut pool = req.planned; // unknown computed values read as None
//!         pool.id = Some("pool-1".into());
//!         Ok(pool) // must keep every known planned value; the framework checks it
//!     }
//!     async fn read(&self, _ctx: &Ctx<Client>, req: ReadRequest<Pool>) -> Result<Option<Pool>, Diagnostics> {
//!         Ok(Some(req.state)) // None = gone outside Terraform
//!     }
//!     async fn update(&self, _ctx: &Ctx<Client>, req: UpdateRequest<Pool>) -> Result<Pool, Diagnostics> {
//!         Ok(req.planned)
//!     }
//!     async fn delete(&self, _ctx: &Ctx<Client>, _req: DeleteRequest<Pool>) -> Result<(), Diagnostics> {
//!         Ok(())
//!     }
//!     async fn import(&self, _ctx: &Ctx<Client>, req: ImportRequest) -> Result<Option<Pool>, Diagnostics> {
//!         let _ = req.id; // look the object up; None = no such object
//!         Ok(None)
//!     }
//!     fn upgrade_state(&self, _from: i64, state: serde_json::Value) -> Result<serde_json::Value, Diagnostics> {
//!         Ok(state) // rewrite older stored JSON to the current shape
//!     }
//! }
//!
//! struct Demo;
//!
//! impl Provider for Demo {
//!     type Config = Config;
//!     type Data = Client;
//!     const TYPE_NAME: &str = "demo";
//!     fn source_address(&self) -> String {
//!         "registry.terraform.io/acme/demo".into()
//!     }
//!     async fn configure(&self, req: ConfigureRequest<Config>) -> Result<Client, Diagnostics> {
//!         Ok(Client { endpoint: req.config.endpoint })
//!     }
//!     fn resources(&self) -> Result<Resources<Client>, tfplugin::Error> {
//!         Resources::new().with(PoolResource)
//!     }
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     tfplugin::run(Demo) // cookie, --debug, AutoMTLS, handshake, shutdown
//! }
//! ```
//!
//! Errors: return `Err(Diagnostics)`; any `std::error::Error` converts with `?`, and
//! [`ResultExt::at_attr`] points the diagnostic at an argument. Tests: the `testing` feature
//! installs the provider binary into a filesystem mirror and runs real Terraform
//! ([`testing::Workspace`]), and [`testing::plan`] runs the plan pipeline offline.

pub mod codec;
pub mod diag;
pub mod error;
pub mod framework;
pub mod model;
pub mod modifiers;
pub mod path;
pub mod schema;
pub mod serve;
mod server;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;
pub mod validators;
pub mod value;

/// Generated protocol types (our transcription in `proto/`).
#[allow(missing_debug_implementations, clippy::all, clippy::pedantic)]
pub mod pb {
    pub mod tfplugin6 {
        tonic::include_proto!("tfplugin6");
    }
    pub mod plugin {
        tonic::include_proto!("plugin");
    }
}

pub use diag::{Diagnostic, Diagnostics, ResultExt, Severity};
pub use error::Error;
pub use framework::{
    CheckPlanRequest, ConfigureRequest, CreateRequest, Ctx, DataSource, DataSources, DeleteRequest,
    ImportRequest, Operation, PlanChange, Private, Provider, ReadDataRequest, ReadRequest,
    Resource, ResourceSchema, Resources, Timeouts, UpdateRequest,
};
pub use path::AttrPath;
pub use schema::{Attribute, Block, NestedBlock, Nesting, Schema};
pub use serve::{run, serve};
pub use server_capture::CAPTURE_ENV;
pub use value::{Number, Type, Value};

mod server_capture {
    /// Set to a directory to dump every DynamicValue Terraform sends (debugging, fixtures).
    pub const CAPTURE_ENV: &str = "TFPLUGIN_CAPTURE_DIR";
}

// Re-exported so provider crates derive models without naming the versions we use.
pub use schemars;
pub use serde_json;
