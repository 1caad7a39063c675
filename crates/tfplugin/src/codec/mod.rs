//! Encoding of [`Value`](crate::Value)s on the wire: msgpack (what Terraform sends and what we
//! answer) and JSON (stored state handed to `UpgradeResourceState`, and model conversion).

pub mod json;
pub mod msgpack;
