//! tfplugin's value codecs. The first input byte picks the mode and the schema type:
//! msgpack bytes or JSON text decoded as one of [`types`], or (modes 2, 3) a typed
//! value built from the bytes with `arbitrary`. Property: whatever decodes, encodes, and
//! decodes again to the same value (msgpack; JSON through its text too).

use std::collections::BTreeMap;

use arbitrary::{Result as ArbResult, Unstructured};
use tfplugin::codec::{json, msgpack};
use tfplugin::{Number, Type, Value};

use super::shape;
use crate::Target;

#[derive(Debug)]
pub struct CodecTarget;

const DICTIONARY: &[&[u8]] = &[
    b"\xc0",
    b"\xc2",
    b"\xc3",
    b"\xd4\0\0",
    b"\xc7",
    b"\xcb",
    b"\xcf",
    b"\xd3",
    b"\xdc",
    b"\xde",
    b"\x92",
    b"\x81",
    b"\xa1a",
    b"\"string\"",
    b"\"number\"",
    b"\"bool\"",
    b"\"dynamic\"",
    b"[\"list\",",
    b"[\"set\",",
    b"[\"map\",",
    b"[\"object\",{",
    b"[\"tuple\",[",
    b"{\"",
    b"\":",
    b"null",
    b"true",
    b"false",
    b"1e400",
    b"-0",
    b"0.1",
    b"18446744073709551616",
    b"\\u0000",
    b"\\ud800",
    b"\"value\":",
    b"\"type\":",
];

/// The schema types the raw modes decode with (index = `(first byte >> 2) % len`).
pub fn types() -> Vec<Type> {
    vec![
        Type::Dynamic,
        Type::String,
        Type::Number,
        Type::Bool,
        Type::list(Type::String),
        Type::set(Type::Number),
        Type::map(Type::Dynamic),
        Type::Tuple(vec![Type::String, Type::Number, Type::Bool]),
        Type::object([
            ("name", Type::String),
            ("min_size", Type::Number),
            ("tags", Type::map(Type::String)),
            ("subnets", Type::list(Type::String)),
            (
                "spot",
                Type::object([("enabled", Type::Bool), ("max_price", Type::Number)]),
            ),
            ("policy", Type::Dynamic),
        ]),
        Type::list(Type::object([
            ("a", Type::set(Type::String)),
            ("b", Type::Number),
        ])),
    ]
}

impl Target for CodecTarget {
    fn name(&self) -> &'static str {
        "codec"
    }

    fn dictionary(&self) -> &'static [&'static [u8]] {
        DICTIONARY
    }

    fn run(&mut self, input: &[u8]) -> Result<String, String> {
        let Some((&head, rest)) = input.split_first() else {
            return Ok("empty".into());
        };
        let types = types();
        let ty = &types[(head as usize >> 2) % types.len()];
        match head % 4 {
            0 => msgpack_round_trip(rest, ty),
            1 => json_round_trip(rest, ty),
            _ => {
                let mut u = Unstructured::new(rest);
                let (ty, value) = match typed_value(&mut u) {
                    Ok(tv) => tv,
                    Err(_) => return Ok("short".into()),
                };
                let bytes = msgpack::encode(&value, &ty)
                    .map_err(|e| format!("a built value of {ty:?} does not encode: {e}"))?;
                msgpack_round_trip(&bytes, &ty).map(|s| format!("built {s}"))
            }
        }
    }
}

/// msgpack: decode → encode → decode.
fn msgpack_round_trip(bytes: &[u8], ty: &Type) -> Result<String, String> {
    let value = match msgpack::decode(bytes, ty) {
        Ok(v) => v,
        Err(e) => return Ok(format!("msgpack err {}", shape(&e.to_string()))),
    };
    let again = msgpack::encode(&value, ty)
        .map_err(|e| format!("decoded {value:?} of {ty:?} does not encode: {e}"))?;
    let back = msgpack::decode(&again, ty)
        .map_err(|e| format!("re-encoded {value:?} of {ty:?} does not decode: {e}"))?;
    if back != value {
        return Err(format!(
            "msgpack round trip of {ty:?} lost data: {value:?} -> {back:?}"
        ));
    }
    Ok(format!("msgpack ok {}", kind(&value)))
}

/// JSON: parse → decode → encode → decode, and through the text once more.
fn json_round_trip(text: &[u8], ty: &Type) -> Result<String, String> {
    let parsed = match json::parse_exact(text) {
        Ok(j) => j,
        Err(e) => return Ok(format!("json syntax {}", shape(&e.to_string()))),
    };
    let value = match json::decode(&parsed, ty, json::Extra::Reject) {
        Ok(v) => v,
        Err(e) => return Ok(format!("json err {}", shape(&e.to_string()))),
    };
    let encoded = json::encode(&value, false)
        .map_err(|e| format!("decoded {value:?} of {ty:?} does not encode as JSON: {e}"))?;
    let back = json::decode(&encoded, ty, json::Extra::Reject)
        .map_err(|e| format!("re-encoded {value:?} of {ty:?} does not decode: {e}"))?;
    if back != value {
        return Err(format!(
            "JSON round trip of {ty:?} lost data: {value:?} -> {back:?}"
        ));
    }
    let text = serde_json::to_vec(&encoded).map_err(|e| e.to_string())?;
    let reparsed = json::parse_exact(&text)
        .and_then(|j| json::decode(&j, ty, json::Extra::Reject))
        .map_err(|e| format!("the JSON text of {value:?} does not decode: {e}"))?;
    if reparsed != value {
        return Err(format!(
            "JSON text round trip of {ty:?} lost data: {value:?} -> {reparsed:?}"
        ));
    }
    Ok(format!("json ok {}", kind(&value)))
}

/// What a decoded value is, for its outcome signature.
fn kind(v: &Value) -> &'static str {
    if v.is_null() {
        "null"
    } else if v.is_unknown() {
        "unknown"
    } else if matches!(v, Value::Number(Number::Decimal(_))) {
        "decimal"
    } else {
        "known"
    }
}

/// A type and a value of it, built from `u`.
pub fn typed_value(u: &mut Unstructured<'_>) -> ArbResult<(Type, Value)> {
    let ty = arb_type(u, 3)?;
    let value = arb_value(u, &ty, 3)?;
    Ok((ty, value))
}

fn arb_type(u: &mut Unstructured<'_>, depth: u32) -> ArbResult<Type> {
    let choices = if depth == 0 { 4 } else { 9 };
    Ok(match u.choose_index(choices)? {
        0 => Type::String,
        1 => Type::Number,
        2 => Type::Bool,
        3 => Type::Dynamic,
        4 => Type::list(arb_type(u, depth - 1)?),
        5 => Type::set(arb_type(u, depth - 1)?),
        6 => Type::map(arb_type(u, depth - 1)?),
        7 => {
            let mut attrs = BTreeMap::new();
            for _ in 0..u.int_in_range(0..=3)? {
                attrs.insert(short_name(u)?, arb_type(u, depth - 1)?);
            }
            Type::Object(attrs)
        }
        _ => Type::Tuple(
            (0..u.int_in_range(0..=3)?)
                .map(|_| arb_type(u, depth - 1))
                .collect::<ArbResult<_>>()?,
        ),
    })
}

fn short_name(u: &mut Unstructured<'_>) -> ArbResult<String> {
    let s: String = u.arbitrary()?;
    Ok(s.chars().take(8).collect())
}

fn arb_number(u: &mut Unstructured<'_>) -> ArbResult<Number> {
    Ok(match u.choose_index(4)? {
        0 => Number::Int(u.arbitrary()?),
        1 => Number::UInt(u.arbitrary()?),
        2 => {
            let x: f64 = u.arbitrary()?;
            Number::Float(if x.is_finite() { x } else { 0.5 })
        }
        _ => {
            let digits: u128 = u.arbitrary()?;
            let scale = u.int_in_range(0..=30)?;
            let text = digits.to_string();
            if scale == 0 || scale >= text.len() || text.ends_with('0') {
                Number::Decimal(format!("{text}1"))
            } else {
                let (i, f) = text.split_at(text.len() - scale);
                Number::Decimal(format!("{i}.{f}"))
            }
        }
    })
}

pub fn arb_value(u: &mut Unstructured<'_>, ty: &Type, depth: u32) -> ArbResult<Value> {
    if u.ratio(1, 8)? {
        return Ok(if u.arbitrary()? {
            Value::Null
        } else {
            Value::Unknown
        });
    }
    let elements = |u: &mut Unstructured<'_>, t: &Type| -> ArbResult<Vec<Value>> {
        (0..u.int_in_range(0..=3)?)
            .map(|_| arb_value(u, t, depth.saturating_sub(1)))
            .collect()
    };
    Ok(match ty {
        Type::String => Value::String(u.arbitrary()?),
        Type::Number => Value::Number(arb_number(u)?),
        Type::Bool => Value::Bool(u.arbitrary()?),
        Type::Dynamic => {
            let inner = arb_type(u, depth.min(1))?;
            Value::Dynamic(inner.clone(), Box::new(arb_value(u, &inner, 0)?))
        }
        Type::List(t) => Value::List(elements(u, t)?),
        Type::Set(t) => {
            let mut v = elements(u, t)?;
            v.dedup();
            Value::Set(v)
        }
        Type::Map(t) => {
            let mut m = BTreeMap::new();
            for _ in 0..u.int_in_range(0..=3)? {
                m.insert(short_name(u)?, arb_value(u, t, depth.saturating_sub(1))?);
            }
            Value::Map(m)
        }
        Type::Object(attrs) => Value::Object(
            attrs
                .iter()
                .map(|(k, t)| Ok((k.clone(), arb_value(u, t, depth.saturating_sub(1))?)))
                .collect::<ArbResult<_>>()?,
        ),
        Type::Tuple(ts) => Value::Tuple(
            ts.iter()
                .map(|t| arb_value(u, t, depth.saturating_sub(1)))
                .collect::<ArbResult<_>>()?,
        ),
    })
}
