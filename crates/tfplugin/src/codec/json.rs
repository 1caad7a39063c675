//! Schema-type-driven JSON codec: the form Terraform stores state in (`RawState.json`) and the
//! bridge between [`Value`]s and serde model structs.
//!
//! JSON cannot carry unknowns; [`encode`] maps them to `null` only when asked to (model
//! conversion), never for state.

use std::collections::BTreeMap;

use serde_json::Value as J;

use crate::error::Error;
use crate::path::AttrPath;
use crate::value::{Number, Type, Value};

/// How [`decode`] treats object attributes the type does not declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extra {
    /// An unknown attribute is an error naming it.
    Reject,
    /// Unknown attributes are dropped (used after a state upgrade removed attributes).
    Ignore,
}

/// Decodes a JSON value as a value of `ty`. Missing object attributes decode as null.
pub fn decode(j: &J, ty: &Type, extra: Extra) -> Result<Value, Error> {
    from_json(j, ty, &AttrPath::root(), extra)
}

fn derr(path: &AttrPath, message: impl Into<String>) -> Error {
    Error::Decode { path: path.clone(), message: message.into() }
}

fn from_json(j: &J, ty: &Type, path: &AttrPath, extra: Extra) -> Result<Value, Error> {
    if j.is_null() {
        return Ok(Value::Null);
    }
    match ty {
        Type::String => match j {
            J::String(s) => Ok(Value::String(s.clone())),
            // Terraform converts primitives to string where the schema says string.
            J::Number(n) => Ok(Value::String(n.to_string())),
            J::Bool(b) => Ok(Value::String(b.to_string())),
            _ => Err(derr(path, "expected a string")),
        },
        Type::Number => match j {
            J::Number(n) => Ok(Value::Number(json_number(n))),
            J::String(s) => Number::parse(s)
                .map(Value::Number)
                .ok_or_else(|| derr(path, format!("invalid number {s:?}"))),
            _ => Err(derr(path, "expected a number")),
        },
        Type::Bool => match j {
            J::Bool(b) => Ok(Value::Bool(*b)),
            J::String(s) if s == "true" || s == "false" => Ok(Value::Bool(s == "true")),
            _ => Err(derr(path, "expected a bool")),
        },
        Type::List(et) | Type::Set(et) => match j {
            J::Array(items) => {
                let out = items
                    .iter()
                    .enumerate()
                    .map(|(i, x)| from_json(x, et, &path.index(i as i64), extra))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(if matches!(ty, Type::List(_)) { Value::List(out) } else { Value::Set(out) })
            }
            _ => Err(derr(path, "expected an array")),
        },
        Type::Tuple(ets) => match j {
            J::Array(items) if items.len() == ets.len() => Ok(Value::Tuple(
                items
                    .iter()
                    .zip(ets)
                    .enumerate()
                    .map(|(i, (x, t))| from_json(x, t, &path.index(i as i64), extra))
                    .collect::<Result<_, _>>()?,
            )),
            _ => Err(derr(path, format!("expected a tuple of {} elements", ets.len()))),
        },
        Type::Map(et) => match j {
            J::Object(m) => Ok(Value::Map(
                m.iter()
                    .map(|(k, x)| Ok((k.clone(), from_json(x, et, &path.key(k), extra)?)))
                    .collect::<Result<BTreeMap<_, _>, Error>>()?,
            )),
            _ => Err(derr(path, "expected an object")),
        },
        Type::Object(attrs) => match j {
            J::Object(m) => {
                let mut out = BTreeMap::new();
                for (k, x) in m {
                    match attrs.get(k) {
                        Some(t) => {
                            out.insert(k.clone(), from_json(x, t, &path.attr(k), extra)?);
                        }
                        None if extra == Extra::Ignore => {}
                        None => return Err(derr(path, format!("unsupported attribute {k:?}"))),
                    }
                }
                for name in attrs.keys() {
                    out.entry(name.clone()).or_insert(Value::Null);
                }
                Ok(Value::Object(out))
            }
            _ => Err(derr(path, "expected an object")),
        },
        Type::Dynamic => match j {
            J::Object(m) if m.contains_key("type") && m.contains_key("value") => {
                let t = Type::from_json(&m["type"]).map_err(|e| derr(path, e.to_string()))?;
                let v = from_json(&m["value"], &t, path, extra)?;
                Ok(Value::Dynamic(t, Box::new(v)))
            }
            _ => Err(derr(path, "expected {\"type\": ..., \"value\": ...} for a dynamic value")),
        },
    }
}

fn json_number(n: &serde_json::Number) -> Number {
    if let Some(i) = n.as_i64() {
        Number::Int(i)
    } else if let Some(u) = n.as_u64() {
        Number::UInt(u)
    } else {
        Number::Float(n.as_f64().unwrap_or(f64::NAN))
    }
}

/// Encodes a value as JSON. With `unknown_as_null`, unknowns become `null`; otherwise an
/// unknown is an error naming its path.
pub fn encode(v: &Value, unknown_as_null: bool) -> Result<J, Error> {
    to_json(v, &AttrPath::root(), unknown_as_null)
}

fn to_json(v: &Value, path: &AttrPath, unknown_as_null: bool) -> Result<J, Error> {
    Ok(match v {
        Value::Null => J::Null,
        Value::Unknown if unknown_as_null => J::Null,
        Value::Unknown => {
            return Err(Error::Encode { path: path.clone(), message: "unknown value cannot be written as JSON".into() });
        }
        Value::String(s) => J::String(s.clone()),
        Value::Number(n) => match n {
            Number::Int(i) => J::from(*i),
            Number::UInt(u) => J::from(*u),
            other => match other.as_i64() {
                Some(i) => J::from(i),
                None => serde_json::Number::from_f64(other.as_f64()).map(J::Number).ok_or_else(|| Error::Encode {
                    path: path.clone(),
                    message: format!("number {other} cannot be written as JSON"),
                })?,
            },
        },
        Value::Bool(b) => J::Bool(*b),
        Value::List(items) | Value::Set(items) | Value::Tuple(items) => J::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, x)| to_json(x, &path.index(i as i64), unknown_as_null))
                .collect::<Result<_, _>>()?,
        ),
        Value::Map(m) | Value::Object(m) => J::Object(
            m.iter()
                .map(|(k, x)| Ok((k.clone(), to_json(x, &path.attr(k), unknown_as_null)?)))
                .collect::<Result<_, Error>>()?,
        ),
        Value::Dynamic(t, inner) => {
            serde_json::json!({"type": t.to_json(), "value": to_json(inner, path, unknown_as_null)?})
        }
    })
}
