//! Schema-type-driven msgpack codec (cty's wire format).
//!
//! Unknown values are msgpack extensions: we accept every extension format and type code
//! (plain unknown `0`, refined unknown `12`) and always write the plain form `d4 00 00`.

use std::collections::BTreeMap;

use rmpv::Value as Mp;

use crate::error::Error;
use crate::path::AttrPath;
use crate::value::{Number, Type, Value};

/// Decodes msgpack bytes as a value of `ty`. Empty input decodes as null.
pub fn decode(bytes: &[u8], ty: &Type) -> Result<Value, Error> {
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    let mut rd = bytes;
    let mp = rmpv::decode::read_value(&mut rd).map_err(|e| Error::Decode {
        path: AttrPath::root(),
        message: format!("invalid msgpack: {e}"),
    })?;
    if !rd.is_empty() {
        return Err(Error::Decode {
            path: AttrPath::root(),
            message: "trailing bytes after msgpack value".into(),
        });
    }
    from_mp(&mp, ty, &AttrPath::root())
}

/// Encodes a value of `ty` as msgpack.
pub fn encode(value: &Value, ty: &Type) -> Result<Vec<u8>, Error> {
    let mp = to_mp(value, ty, &AttrPath::root())?;
    let mut out = Vec::with_capacity(64);
    rmpv::encode::write_value(&mut out, &mp).map_err(|e| Error::Encode {
        path: AttrPath::root(),
        message: e.to_string(),
    })?;
    Ok(out)
}

fn derr(path: &AttrPath, message: impl Into<String>) -> Error {
    Error::Decode {
        path: path.clone(),
        message: message.into(),
    }
}

fn eerr(path: &AttrPath, message: impl Into<String>) -> Error {
    Error::Encode {
        path: path.clone(),
        message: message.into(),
    }
}

fn mp_str<'a>(mp: &'a Mp, path: &AttrPath) -> Result<&'a str, Error> {
    match mp {
        Mp::String(s) => s
            .as_str()
            .ok_or_else(|| derr(path, "string is not valid UTF-8")),
        _ => Err(derr(path, "expected a string key")),
    }
}

fn from_mp(mp: &Mp, ty: &Type, path: &AttrPath) -> Result<Value, Error> {
    if let Mp::Ext(_, _) = mp {
        return Ok(Value::Unknown);
    }
    if let Mp::Nil = mp {
        return Ok(Value::Null);
    }
    match ty {
        Type::String => match mp {
            Mp::String(s) => Ok(Value::String(
                s.as_str()
                    .ok_or_else(|| derr(path, "string is not valid UTF-8"))?
                    .to_string(),
            )),
            _ => Err(derr(path, "expected a string")),
        },
        Type::Number => match mp {
            Mp::Integer(i) => Ok(Value::Number(match i.as_i64() {
                Some(v) => Number::Int(v),
                None => Number::UInt(
                    i.as_u64()
                        .ok_or_else(|| derr(path, "integer out of range"))?,
                ),
            })),
            Mp::F32(f) => Ok(Value::Number(Number::Float(f64::from(*f)))),
            Mp::F64(f) => Ok(Value::Number(Number::Float(*f))),
            Mp::String(s) => {
                let text = s
                    .as_str()
                    .ok_or_else(|| derr(path, "number is not valid UTF-8"))?;
                Number::parse(text)
                    .map(Value::Number)
                    .ok_or_else(|| derr(path, format!("invalid number {text:?}")))
            }
            _ => Err(derr(path, "expected a number")),
        },
        Type::Bool => match mp {
            Mp::Boolean(b) => Ok(Value::Bool(*b)),
            _ => Err(derr(path, "expected a bool")),
        },
        Type::List(et) | Type::Set(et) => match mp {
            Mp::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    out.push(from_mp(item, et, &path.index(i as i64))?);
                }
                Ok(super::list_or_set(ty, out))
            }
            _ => Err(derr(path, "expected an array")),
        },
        Type::Tuple(ets) => match mp {
            Mp::Array(items) if items.len() == ets.len() => {
                let mut out = Vec::with_capacity(items.len());
                for (i, (item, et)) in items.iter().zip(ets).enumerate() {
                    out.push(from_mp(item, et, &path.index(i as i64))?);
                }
                Ok(Value::Tuple(out))
            }
            _ => Err(derr(
                path,
                format!("expected a tuple of {} elements", ets.len()),
            )),
        },
        Type::Map(et) => match mp {
            Mp::Map(entries) => {
                let mut out = BTreeMap::new();
                for (k, v) in entries {
                    let k = mp_str(k, path)?;
                    out.insert(k.to_string(), from_mp(v, et, &path.key(k))?);
                }
                Ok(Value::Map(out))
            }
            _ => Err(derr(path, "expected a map")),
        },
        Type::Object(attrs) => match mp {
            Mp::Map(entries) => {
                let mut out = BTreeMap::new();
                for (k, v) in entries {
                    let k = mp_str(k, path)?;
                    let at = attrs
                        .get(k)
                        .ok_or_else(|| derr(path, format!("unsupported attribute {k:?}")))?;
                    out.insert(k.to_string(), from_mp(v, at, &path.attr(k))?);
                }
                for name in attrs.keys() {
                    out.entry(name.clone()).or_insert(Value::Null);
                }
                Ok(Value::Object(out))
            }
            _ => Err(derr(path, "expected an object")),
        },
        Type::Dynamic => match mp {
            Mp::Array(pair) if pair.len() == 2 => {
                let type_json = match &pair[0] {
                    Mp::Binary(b) => b.as_slice(),
                    Mp::String(s) => s.as_bytes(),
                    _ => return Err(derr(path, "dynamic value must start with its type")),
                };
                let tj: serde_json::Value = serde_json::from_slice(type_json)
                    .map_err(|e| derr(path, format!("invalid dynamic type: {e}")))?;
                let inner_ty = Type::from_json(&tj).map_err(|e| derr(path, e.to_string()))?;
                let inner = from_mp(&pair[1], &inner_ty, path)?;
                Ok(Value::Dynamic(inner_ty, Box::new(inner)))
            }
            _ => Err(derr(
                path,
                "expected a [type, value] pair for a dynamic value",
            )),
        },
    }
}

fn number_to_mp(n: &Number) -> Mp {
    match n {
        Number::Int(i) => Mp::from(*i),
        Number::UInt(u) => Mp::from(*u),
        // Integral floats below 2^53 go as ints (what go-cty writes); larger ones stay floats
        // because their shortest decimal text is not their exact integer value.
        Number::Float(x) if x.fract() == 0.0 && x.abs() < 9_007_199_254_740_992.0 => {
            Mp::from(*x as i64)
        }
        Number::Float(x) => Mp::F64(*x),
        // Decimal text stays text: Terraform 1.0.x compares numbers at full precision, so
        // `0.1` parsed from config is not the float64 nearest to 0.1.
        Number::Decimal(s) => match n.as_i64() {
            Some(i) => Mp::from(i),
            None => Mp::String(s.trim().into()),
        },
    }
}

fn to_mp(v: &Value, ty: &Type, path: &AttrPath) -> Result<Mp, Error> {
    match v {
        Value::Null => return Ok(Mp::Nil),
        Value::Unknown => return Ok(Mp::Ext(0, vec![0])),
        _ => {}
    }
    match (ty, v) {
        (Type::String, Value::String(s)) => Ok(Mp::String(s.as_str().into())),
        (Type::Number, Value::Number(n)) => Ok(number_to_mp(n)),
        (Type::Bool, Value::Bool(b)) => Ok(Mp::Boolean(*b)),
        // Lists and sets are interchangeable for callers building values by hand.
        (Type::List(et) | Type::Set(et), Value::List(items) | Value::Set(items)) => Ok(Mp::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, x)| to_mp(x, et, &path.index(i as i64)))
                .collect::<Result<_, _>>()?,
        )),
        (Type::Tuple(ets), Value::Tuple(items)) if ets.len() == items.len() => Ok(Mp::Array(
            items
                .iter()
                .zip(ets)
                .enumerate()
                .map(|(i, (x, t))| to_mp(x, t, &path.index(i as i64)))
                .collect::<Result<_, _>>()?,
        )),
        (Type::Map(et), Value::Map(m)) | (Type::Map(et), Value::Object(m)) => Ok(Mp::Map(
            m.iter()
                .map(|(k, x)| Ok((Mp::String(k.as_str().into()), to_mp(x, et, &path.key(k))?)))
                .collect::<Result<_, Error>>()?,
        )),
        (Type::Object(attrs), Value::Object(m)) => {
            if let Some(extra) = m.keys().find(|k| !attrs.contains_key(*k)) {
                return Err(eerr(path, format!("unsupported attribute {extra:?}")));
            }
            Ok(Mp::Map(
                attrs
                    .iter()
                    .map(|(k, t)| {
                        let x = m.get(k).unwrap_or(&Value::Null);
                        Ok((Mp::String(k.as_str().into()), to_mp(x, t, &path.attr(k))?))
                    })
                    .collect::<Result<_, Error>>()?,
            ))
        }
        (Type::Dynamic, Value::Dynamic(inner_ty, inner)) => Ok(Mp::Array(vec![
            Mp::Binary(inner_ty.to_json_bytes()),
            to_mp(inner, inner_ty, path)?,
        ])),
        (Type::Dynamic, other) => {
            let inner_ty = infer_type(other)
                .ok_or_else(|| eerr(path, "cannot infer the type of a dynamic value"))?;
            Ok(Mp::Array(vec![
                Mp::Binary(inner_ty.to_json_bytes()),
                to_mp(other, &inner_ty, path)?,
            ]))
        }
        (ty, v) => Err(eerr(
            path,
            format!("value {} does not fit type {}", kind(v), ty.friendly()),
        )),
    }
}

/// Best-effort type of a value with no declared type (used for `dynamic` attributes).
pub fn infer_type(v: &Value) -> Option<Type> {
    Some(match v {
        Value::Null | Value::Unknown => Type::Dynamic,
        Value::String(_) => Type::String,
        Value::Number(_) => Type::Number,
        Value::Bool(_) => Type::Bool,
        Value::List(items) => Type::list(
            items
                .first()
                .map(infer_type)
                .unwrap_or(Some(Type::Dynamic))?,
        ),
        Value::Set(items) => Type::set(
            items
                .first()
                .map(infer_type)
                .unwrap_or(Some(Type::Dynamic))?,
        ),
        Value::Map(m) => Type::map(
            m.values()
                .next()
                .map(infer_type)
                .unwrap_or(Some(Type::Dynamic))?,
        ),
        Value::Object(m) => Type::Object(
            m.iter()
                .map(|(k, x)| Some((k.clone(), infer_type(x)?)))
                .collect::<Option<_>>()?,
        ),
        Value::Tuple(items) => Type::Tuple(items.iter().map(infer_type).collect::<Option<_>>()?),
        Value::Dynamic(t, _) => t.clone(),
    })
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Unknown => "unknown",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        Value::List(_) => "list",
        Value::Set(_) => "set",
        Value::Map(_) => "map",
        Value::Object(_) => "object",
        Value::Tuple(_) => "tuple",
        Value::Dynamic(_, _) => "dynamic",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refined_unknown_from_terraform_decodes_as_unknown() {
        // `name = "prefix-${other.id}"` as sent by Terraform 1.15.5.
        let bytes = [
            0xc7, 0x0c, 0x0c, 0x82, 0x01, 0xc2, 0x02, 0xa7, b'p', b'r', b'e', b'f', b'i', b'x',
            b'-',
        ];
        assert_eq!(decode(&bytes, &Type::String).ok(), Some(Value::Unknown));
        assert_eq!(
            decode(&[0xc7, 0x03, 0x0c, 0x81, 0x01, 0xc2], &Type::Number).ok(),
            Some(Value::Unknown)
        );
    }

    #[test]
    fn unknown_is_written_as_plain_fixext1() {
        assert_eq!(
            encode(&Value::Unknown, &Type::String).ok(),
            Some(vec![0xd4, 0x00, 0x00])
        );
    }

    #[test]
    fn object_with_unsupported_attribute_is_rejected_with_its_name() {
        let ty = Type::object([("a", Type::String)]);
        let mut bytes = Vec::new();
        let mp = Mp::Map(vec![(Mp::from("b"), Mp::from("x"))]);
        rmpv::encode::write_value(&mut bytes, &mp).unwrap_or_default();
        let err = decode(&bytes, &ty)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("unsupported attribute \"b\""), "{err}");
    }

    #[test]
    fn big_decimal_numbers_travel_as_strings() {
        let n = Value::Number(Number::Decimal("0.1000000000000000000001".into()));
        let bytes = encode(&n, &Type::Number).unwrap_or_default();
        assert_eq!(bytes[0] & 0xe0, 0xa0, "fixstr expected");
        assert_eq!(decode(&bytes, &Type::Number).ok(), Some(n));
    }

    #[test]
    fn dynamic_values_carry_their_type() {
        let v = Value::Dynamic(
            Type::list(Type::String),
            Box::new(Value::List(vec!["a".into()])),
        );
        let bytes = encode(&v, &Type::Dynamic).unwrap_or_default();
        assert_eq!(decode(&bytes, &Type::Dynamic).ok(), Some(v));
    }
}
