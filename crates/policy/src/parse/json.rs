//! JSON policy parsing: problems are located by JSON pointer (`/scale_in/cooldown`).

use crate::diag::{Diagnostic, Diagnostics, FieldPath, Location};
use crate::model::Policy;

/// Parses a JSON policy, reporting every problem with its JSON pointer.
pub fn parse_json(src: &str) -> Result<Policy, Diagnostics> {
    let value: serde_json::Value = serde_json::from_str(src).map_err(|e| {
        Diagnostics(vec![Diagnostic {
            location: Some(Location::Json {
                pointer: String::new(),
            }),
            path: FieldPath::root(),
            message: format!("invalid JSON: {e}"),
        }])
    })?;
    parse_json_value(value)
}

/// Checks, deserializes and validates a policy already in JSON form (what [`parse_json`]
/// does after reading the text), reporting every problem with its JSON pointer.
pub fn parse_json_value(value: serde_json::Value) -> Result<Policy, Diagnostics> {
    super::finish(value, &|p: &FieldPath| {
        Some(Location::Json {
            pointer: p.json_pointer(),
        })
    })
}
