//! `flexus-fuzz` — fuzz targets for the inputs the project takes from strangers, and
//! the driver that runs them on the stable toolchain (see `docs/design/fuzzing.md`).
//!
//! Targets ([`targets`]): the policy parsers (`parse_hcl`, `parse_json`, then
//! `validate` and compilation), tfplugin's msgpack and JSON value codecs (decode →
//! encode → decode is lossless), and the agent's `/v1` request bodies through
//! `router(state)` (never a panic, never a 5xx, every error the documented JSON body).
//!
//! It must not be a dependency of anything: it only drives the crates it tests.
//!
//! Modules: [`driver`] (the loop, outcome feedback, failures), [`mutate`] (the seeded
//! mutator), [`corpus`] (reading and writing corpus directories), [`seeds`] (first
//! seeds from the examples and fixtures), [`targets`].

pub mod corpus;
pub mod driver;
pub mod mutate;
pub mod seeds;
pub mod targets;

pub use driver::{Failure, Options, Report, Target, run};

/// Errors of the fuzz tool.
#[derive(Debug, thiserror::Error)]
pub enum FuzzError {
    #[error("unknown fuzz target {0:?} (known: policy, codec, agent)")]
    UnknownTarget(String),
    #[error("cannot read corpus directory {path}: {source}")]
    ReadCorpus {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write corpus file {path}: {source}")]
    WriteCorpus {
        path: String,
        source: std::io::Error,
    },
}
