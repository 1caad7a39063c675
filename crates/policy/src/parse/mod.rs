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

pub use hcl::parse_hcl;
pub use json::parse_json;

use serde_json::Value;

use crate::diag::{Diagnostic, Diagnostics, FieldPath, Location, PathSegment};
use crate::model::Policy;

/// The text of a policy file (or any other input read as a policy): `bytes` as UTF-8, or
/// a diagnostic naming the byte offset, line and column of the first byte that is not.
pub fn source_text<'a>(bytes: &'a [u8], file: &str) -> Result<&'a str, Diagnostics> {
    std::str::from_utf8(bytes).map_err(|e| {
        let offset = e.valid_up_to();
        let valid = std::str::from_utf8(&bytes[..offset]).unwrap_or_default();
        let line = valid.matches('\n').count() + 1;
        let column = valid.rsplit('\n').next().unwrap_or_default().chars().count() + 1;
        let bad = bytes[offset..]
            .iter()
            .take(e.error_len().unwrap_or(bytes.len() - offset).min(4))
            .map(|b| format!("{b:#04x}"))
            .collect::<Vec<_>>()
            .join(" ");
        Diagnostics(vec![Diagnostic {
            location: Some(Location::Text {
                file: file.to_owned(),
                line,
                column,
            }),
            path: FieldPath::root(),
            message: format!(
                "invalid UTF-8 at byte {offset} (line {line}, column {column}): {bad} {}; the text must be UTF-8",
                if e.error_len().is_some() { "is not valid UTF-8" } else { "ends the file in the middle of a character" }
            ),
        }])
    })
}

/// Checks, deserializes and validates a lowered policy, locating each problem with `locate`.
///
/// When the structural check fails, the offending fields are dropped and, if what remains
/// still deserializes (the bad fields were optional), the semantic rules run too, so one
/// pass reports both kinds of problem.
pub(crate) fn finish(
    value: Value,
    locate: &dyn Fn(&FieldPath) -> Option<Location>,
) -> Result<Policy, Diagnostics> {
    let mut diags = Diagnostics::new();
    check::check_policy(&value, &mut diags);
    if diags.is_empty() {
        match serde_json::from_value::<Policy>(value) {
            Ok(p) => match p.validate() {
                Ok(()) => return Ok(p),
                Err(d) => diags = d,
            },
            Err(e) => diags.push(FieldPath::root(), format!("invalid policy: {e}")),
        }
    } else {
        let mut repaired = value;
        for d in diags.iter() {
            remove_path(&mut repaired, &d.path.0);
        }
        if let Ok(p) = serde_json::from_value::<Policy>(repaired)
            && let Err(semantic) = p.validate()
        {
            let structural: Vec<FieldPath> = diags.iter().map(|d| d.path.clone()).collect();
            for d in semantic {
                let related = structural
                    .iter()
                    .any(|s| d.path.0.starts_with(&s.0) || s.0.starts_with(&d.path.0));
                if !related {
                    diags.0.push(d);
                }
            }
        }
    }
    Err(Diagnostics(
        diags
            .into_iter()
            .map(|d| Diagnostic {
                location: locate(&d.path),
                ..d
            })
            .collect(),
    ))
}

/// Removes the object member at `path` (array elements are left in place so indices keep
/// their meaning).
fn remove_path(v: &mut Value, path: &[PathSegment]) {
    match path {
        [] => {}
        [PathSegment::Field(f)] => {
            if let Value::Object(m) = v {
                m.remove(f);
            }
        }
        [PathSegment::Field(f), rest @ ..] => {
            if let Some(next) = v.as_object_mut().and_then(|m| m.get_mut(f)) {
                remove_path(next, rest);
            }
        }
        [PathSegment::Index(i), rest @ ..] => {
            if let Some(next) = v.as_array_mut().and_then(|a| a.get_mut(*i)) {
                remove_path(next, rest);
            }
        }
    }
}
