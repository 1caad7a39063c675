//! Policy files: JSON and HCL lower to the same [`crate::Policy`]. Both collect every
//! problem with its location (a JSON pointer, or file:line:column).
//!
//! Both formats become a `serde_json::Value` first (HCL through `hcl-edit`, which keeps
//! byte spans, so each field's pointer maps back to a line and column). The value is then
//! checked against the generated JSON Schema (every structural problem at once),
//! deserialized, and validated ([`crate::Policy::validate`], every semantic problem at once).

mod check;
pub(crate) mod hcl;
pub(crate) mod json;
mod repair;

pub use hcl::parse_hcl;
pub use json::{parse_json, parse_json_value};

use serde_json::Value;

use crate::diag::{Diagnostic, Diagnostics, FieldPath, Location};
use crate::model::Policy;

/// Checks, deserializes and validates a lowered policy, locating each problem with `locate`.
///
/// When the structural check fails, the semantic rules still run over rounds in which the
/// refused fields take each value their schema allows ([`repair`]); the problems every
/// round finds, away from the refused fields, are reported with the structural ones, so
/// one pass reports every independent problem.
pub(crate) fn finish(
    value: Value,
    locate: &dyn Fn(&FieldPath) -> Option<Location>,
) -> Result<Policy, Diagnostics> {
    let mut diags = Diagnostics::new();
    check::check_policy(&value, &mut diags);
    let value_names = value.clone();
    if diags.is_empty() {
        match serde_json::from_value::<Policy>(value) {
            Ok(p) => match p.validate() {
                Ok(()) => return Ok(p),
                Err(d) => diags = d,
            },
            Err(e) => diags.push(FieldPath::root(), format!("invalid policy: {e}")),
        }
    } else {
        let refused: Vec<FieldPath> = diags.iter().map(|d| d.path.clone()).collect();
        diags
            .0
            .extend(repair::independent_semantic(&value, &refused));
    }
    let labels = block_names(&value_names);
    Err(Diagnostics(
        diags
            .into_iter()
            .map(|d| Diagnostic {
                location: locate(&d.path),
                message: crate::diag::name_blocks(d.message, &labels),
                ..d
            })
            .collect(),
    ))
}

/// The names the author gave metrics and schedules, for messages
/// ([`crate::diag::name_blocks`]).
fn block_names(value: &Value) -> Vec<(String, String)> {
    let mut labels = Vec::new();
    for key in ["metrics", "schedules"] {
        if let Some(items) = value.get(key).and_then(Value::as_array) {
            for (i, item) in items.iter().enumerate() {
                if let Some(name) = item.get("name").and_then(Value::as_str) {
                    labels.extend(crate::diag::block_label(key, i, name));
                }
            }
        }
    }
    labels
}
