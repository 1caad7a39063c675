//! Operation timeouts: a `timeouts { create = "10m" }` block the framework adds to a resource's
//! schema when the resource declares timeouts, parsed into [`Ctx::timeout`](crate::Ctx::timeout).

use std::time::Duration;

use crate::path::AttrPath;
use crate::schema::{Attribute, Block, NestedBlock, Nesting};
use crate::validators;
use crate::value::{Type, Value};

/// The block name Terraform users write.
pub const BLOCK: &str = "timeouts";

/// A CRUD operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    Create,
    Read,
    Update,
    Delete,
}

impl Operation {
    pub fn name(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Read => "read",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }
}

/// Reads a duration's text (the provider's own grammar), or says what is wrong with it.
pub type DurationParser = fn(&str) -> Result<Duration, String>;

/// Which operations take a timeout, with their defaults, and the duration grammar.
#[derive(Debug, Clone)]
pub struct Timeouts {
    pub defaults: Vec<(Operation, Duration)>,
    parser: DurationParser,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            defaults: Vec::new(),
            parser: go_duration,
        }
    }
}

fn go_duration(s: &str) -> Result<Duration, String> {
    parse_duration(s)
        .ok_or_else(|| format!("{s:?} is not a duration such as \"30s\", \"10m\" or \"1h30m\""))
}

impl Timeouts {
    pub fn new() -> Timeouts {
        Timeouts::default()
    }
    pub fn op(mut self, op: Operation, default: Duration) -> Self {
        self.defaults.push((op, default));
        self
    }
    /// Reads the block's durations with the provider's grammar (default: Go-style, as
    /// [`parse_duration`]), so one grammar serves every duration a provider accepts.
    pub fn parser(mut self, p: DurationParser) -> Self {
        self.parser = p;
        self
    }

    pub(crate) fn block(&self) -> NestedBlock {
        let mut b = Block::new().description(
            "Timeouts for operations, as durations such as \"30s\", \"10m\" or \"1h\".",
        );
        let parser = self.parser;
        for (op, d) in &self.defaults {
            b = b.attribute(
                Attribute::optional(op.name(), Type::String)
                    .description(format!(
                        "Timeout for {} (default {}s).",
                        op.name(),
                        d.as_secs()
                    ))
                    .validator(validators::from_fn("a duration", move |v, path, diags| {
                        if let Some(s) = v.as_str()
                            && let Err(e) = parser(s)
                        {
                            diags.error_at(
                                path.clone(),
                                "Invalid duration",
                                format!("{path}: {e}"),
                            );
                        }
                    })),
            );
        }
        NestedBlock::new(BLOCK, Nesting::Single, b)
    }

    /// The timeout for `op` given the resource value holding the `timeouts` block.
    pub(crate) fn for_op(&self, op: Operation, value: &Value) -> Option<Duration> {
        let default = self
            .defaults
            .iter()
            .find(|(o, _)| *o == op)
            .map(|(_, d)| *d)?;
        let configured = AttrPath::new(BLOCK)
            .attr(op.name())
            .get(value)
            .and_then(Value::as_str)
            .and_then(|s| (self.parser)(s).ok());
        Some(configured.unwrap_or(default))
    }
}

/// Parses Go-style durations: `90s`, `10m`, `1h30m`, `1.5h`, `500ms`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return None;
        }
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_end] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += n * mult;
        rest = &rest[unit_end..];
    }
    Some(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_style_durations_parse() {
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("45s"), Some(Duration::from_secs(45)));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("5 minutes"), None);
    }
}
