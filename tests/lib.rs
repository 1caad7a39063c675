//! Cross-process test support for Flexus Autoscaler.
//!
//! This crate holds no production code: only the end-to-end tests under this
//! folder (`architecture.rs`, and the Terraform/agent/emulator suites) and the
//! small helpers they share.
