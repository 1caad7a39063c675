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
    ConfigureRequest, CreateRequest, Ctx, DataSource, DataSources, DeleteRequest, ImportRequest,
    Operation, PlanChange, Private, Provider, ReadDataRequest, ReadRequest, Resource,
    ResourceSchema, Resources, Timeouts, UpdateRequest,
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
