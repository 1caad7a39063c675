//! JSON policy parsing.

use crate::diag::{Diagnostic, Diagnostics, FieldPath, Location};
use crate::model::Policy;

/// Parses a JSON policy, reporting every problem with its JSON pointer.
pub fn parse_json(src: &str) -> Result<Policy, Diagnostics> {
    let policy: Policy = serde_json::from_str(src).map_err(|e| {
        Diagnostics(vec![Diagnostic {
            location: Some(Location::Json { pointer: String::new() }),
            path: FieldPath::root(),
            message: e.to_string(),
        }])
    })?;
    policy.validate()?;
    Ok(policy)
}
