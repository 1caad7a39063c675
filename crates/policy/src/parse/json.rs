//! JSON policy parsing: problems are located by JSON pointer (`/scale_in/cooldown`).
//!
//! The document is read into a `serde_json::Value` by a reader that tracks the path of
//! the value being read, so the problems `serde_json` itself would report without a
//! field — a key given twice (serde_json keeps the last), a number beyond the range
//! of `f64` — name the field that holds them.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::diag::{Diagnostic, Diagnostics, FieldPath, Location};
use crate::model::Policy;

/// Parses a JSON policy, reporting every problem with its JSON pointer.
pub fn parse_json(src: &str) -> Result<Policy, Diagnostics> {
    let value = read_value(src).map_err(|d| Diagnostics(vec![d]))?;
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

/// What the reader knows when it stops: the path of the value it was reading and,
/// when it stopped on a key given twice, that key.
#[derive(Default)]
struct Trail {
    path: FieldPath,
    duplicate: Option<String>,
}

/// Reads a JSON document into a value, refusing duplicate keys; an error is located at
/// the JSON pointer of the value being read.
fn read_value(src: &str) -> Result<Value, Diagnostic> {
    let trail = RefCell::new(Trail::default());
    let mut de = serde_json::Deserializer::from_str(src);
    let read = ValueSeed { trail: &trail }
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v));
    read.map_err(|e| {
        let Trail { path, duplicate } = trail.into_inner();
        let at = format!("line {} column {}", e.line(), e.column());
        let message = match duplicate {
            Some(key) => format!(
                "duplicate key {key:?} in {} ({at}): each key may appear once",
                where_(&path.0[..path.0.len().saturating_sub(1)])
            ),
            None if e.to_string().starts_with("number out of range") => format!(
                "{}: number out of range ({at}): {} is beyond the largest finite number (about ±1.8e308)",
                FieldPath(path.0.clone()),
                number_before(src, e.line(), e.column())
            ),
            None => format!("invalid JSON: {e}"),
        };
        Diagnostic {
            location: Some(Location::Json {
                pointer: path.json_pointer(),
            }),
            path,
            message,
        }
    })
}

fn where_(segments: &[crate::diag::PathSegment]) -> String {
    if segments.is_empty() {
        "the policy".into()
    } else {
        FieldPath(segments.to_vec()).to_string()
    }
}

/// The number literal that ends at (1-based) `line`, `column` of `src` — where
/// serde_json reports an out-of-range number.
fn number_before(src: &str, line: usize, column: usize) -> String {
    let Some(text) = src.lines().nth(line.saturating_sub(1)) else {
        return "the number".into();
    };
    let end = text
        .char_indices()
        .nth(column)
        .map_or(text.len(), |(i, _)| i);
    let head = &text[..end];
    let start = head
        .rfind(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-')))
        .map_or(0, |i| i + 1);
    let literal: String = head[start..].chars().take(40).collect();
    if literal.is_empty() {
        "the number".into()
    } else {
        literal
    }
}

/// Reads one value, keeping `trail.path` at the value being read (it is left where an
/// error stopped the reader).
#[derive(Clone, Copy)]
struct ValueSeed<'t> {
    trail: &'t RefCell<Trail>,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        // serde_json hands over finite numbers only (it refuses the others itself).
        Ok(serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        loop {
            let at = self.trail.borrow().path.index(out.len());
            let parent = std::mem::replace(&mut self.trail.borrow_mut().path, at);
            match seq.next_element_seed(self)? {
                Some(v) => out.push(v),
                None => {
                    self.trail.borrow_mut().path = parent;
                    return Ok(Value::Array(out));
                }
            }
            self.trail.borrow_mut().path = parent;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let at = self.trail.borrow().path.field(&key);
            let parent = std::mem::replace(&mut self.trail.borrow_mut().path, at);
            if out.contains_key(&key) {
                self.trail.borrow_mut().duplicate = Some(key);
                return Err(de::Error::custom("duplicate key"));
            }
            let v = map.next_value_seed(self)?;
            self.trail.borrow_mut().path = parent;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duplicate_key_is_refused_at_its_json_pointer() {
        let err = read_value(
            r#"{"bounds": {"min": 1, "max": 2,
            "min": 3}}"#,
        )
        .expect_err("duplicate");
        assert_eq!(
            err.location,
            Some(Location::Json {
                pointer: "/bounds/min".into()
            })
        );
        assert!(
            err.message
                .starts_with("duplicate key \"min\" in bounds (line 2 column"),
            "{}",
            err.message
        );
    }

    #[test]
    fn a_number_beyond_f64_names_its_field_and_literal() {
        let err = read_value(r#"{"metrics": [{"target": 1e309}]}"#).expect_err("range");
        assert_eq!(
            err.location,
            Some(Location::Json {
                pointer: "/metrics/0/target".into()
            })
        );
        assert!(
            err.message.starts_with(
                "metrics[0].target: number out of range (line 1 column 29): 1e309 is beyond"
            ),
            "{}",
            err.message
        );
    }

    #[test]
    fn a_syntax_error_points_at_the_value_being_read() {
        let err = read_value(r#"{"bounds": {"min": tru}}"#).expect_err("syntax");
        assert_eq!(err.path.to_string(), "bounds.min");
        assert!(err.message.starts_with("invalid JSON: "), "{}", err.message);
    }

    #[test]
    fn values_read_the_same_as_serde_json_reads_them() {
        let src = r#"{"a": [1, -2, 3.5, "x", null, true, {"b": {}}], "c": 18446744073709551615}"#;
        let ours = read_value(src).expect("valid");
        let theirs: Value = serde_json::from_str(src).expect("valid");
        assert_eq!(ours, theirs);
    }
}
