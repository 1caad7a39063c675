//! The fuzz targets and the outcome signatures they report.

pub mod agent;
pub mod codec;
pub mod policy;

use crate::{FuzzError, Target};

/// Every target, in the order `make fuzz` runs them.
pub const NAMES: [&str; 3] = ["policy", "codec", "agent"];

/// The target called `name`.
pub fn by_name(name: &str) -> Result<Box<dyn Target>, FuzzError> {
    Ok(match name {
        "policy" => Box::new(policy::PolicyTarget),
        "codec" => Box::new(codec::CodecTarget),
        "agent" => Box::new(agent::AgentTarget::new()),
        other => return Err(FuzzError::UnknownTarget(other.to_owned())),
    })
}

/// An error message as an outcome signature: digits and quoted text blanked, so that
/// "line 3" and "line 4" are the same outcome, and "unknown field `x`" is one outcome
/// whatever `x` is.
pub(crate) fn shape(message: &str) -> String {
    let mut out = String::with_capacity(48);
    let mut quoted = None;
    for c in message.chars() {
        match (quoted, c) {
            (Some(q), c) if c == q => {
                quoted = None;
                out.push(c);
            }
            (Some(_), _) => {}
            (None, '"' | '`') => {
                quoted = Some(c);
                out.push(c);
            }
            (None, c) if c.is_ascii_digit() => {
                if !out.ends_with('#') {
                    out.push('#');
                }
            }
            (None, c) => out.push(c),
        }
        if out.len() >= 72 {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_outcome_shape_ignores_numbers_and_quoted_text() {
        assert_eq!(
            super::shape("p.hcl:3:14: unknown field `tagret`, did you mean \"target\"?"),
            super::shape("p.hcl:12:1: unknown field `x`, did you mean \"y\"?")
        );
        assert_ne!(
            super::shape("bounds.min: too big"),
            super::shape("bounds.max: too big")
        );
    }
}
