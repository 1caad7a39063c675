//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong in flexus-sim.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A flavor name that is not in the catalogue.
    #[error("unknown flavor {0:?}")]
    UnknownFlavor(String),
    /// A trace name that no loader knows.
    #[error("unknown trace {0:?} (known: {1})")]
    UnknownTrace(String, String),
    /// A trace file could not be read.
    #[error("failed to read trace file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A trace file has a malformed row or field.
    #[error("bad trace data in {origin} line {line}: {reason}")]
    Parse {
        /// The file's path, or `built-in trace NAME`.
        origin: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A trace that is empty or otherwise unusable.
    #[error("trace {0} is unusable: {1}")]
    BadTrace(String, String),
    /// The caller gave the run up (its cancel flag was set).
    #[error("cancelled")]
    Cancelled,
    /// A bad simulation option.
    #[error("invalid simulation option {field}: {reason}")]
    BadOption {
        /// The option's name.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A policy file that does not parse or validate.
    #[error("invalid policy {file}: {reason}")]
    BadPolicy {
        /// File (or policy name).
        file: String,
        /// Every problem found.
        reason: String,
    },
    /// The policy under test failed.
    #[error("policy {name} failed at t={t}: {reason}")]
    Policy {
        /// Policy name.
        name: String,
        /// Simulation time (s since trace start).
        t: f64,
        /// What went wrong.
        reason: String,
    },
    /// `tune` was given too short a history.
    #[error(
        "not enough history to tune: {got_min:.0} minutes given, at least {needed_min:.0} needed (two thirds tune, the last third validates)"
    )]
    NotEnoughHistory {
        /// Minutes needed.
        needed_min: f64,
        /// Minutes given.
        got_min: f64,
    },
    /// A chart could not be drawn or written.
    #[error("failed to draw chart {path}: {reason}")]
    Chart {
        /// Output file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}
