//! Encoding of [`Value`](crate::Value)s on the wire: msgpack (what Terraform sends and what we
//! answer) and JSON (stored state handed to `UpgradeResourceState`, and model conversion).

pub mod json;
pub mod msgpack;

use crate::value::{Type, Value};

/// The decoded elements of a list or a set, as a value of that type (`ty`).
fn list_or_set(ty: &Type, items: Vec<Value>) -> Value {
    if matches!(ty, Type::List(_)) {
        Value::List(items)
    } else {
        Value::Set(items)
    }
}
