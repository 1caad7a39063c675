//! HCL policy parsing.

use crate::diag::{Diagnostic, Diagnostics, FieldPath, Location};
use crate::model::Policy;

/// Parses an HCL policy file, reporting every problem as `file:line:column: message`.
pub fn parse_hcl(src: &str, file: &str) -> Result<Policy, Diagnostics> {
    let policy: Policy = hcl::from_str(src).map_err(|e| {
        Diagnostics(vec![Diagnostic {
            location: Some(Location::Hcl { file: file.to_owned(), line: 1, column: 1 }),
            path: FieldPath::root(),
            message: e.to_string(),
        }])
    })?;
    policy.validate()?;
    Ok(policy)
}
