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
    Error::Decode {
        path: path.clone(),
        message: message.into(),
    }
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
                Ok(super::list_or_set(ty, out))
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
            _ => Err(derr(
                path,
                format!("expected a tuple of {} elements", ets.len()),
            )),
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
            _ => Err(derr(
                path,
                "expected {\"type\": ..., \"value\": ...} for a dynamic value",
            )),
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

/// Encodes a value as JSON, losslessly: [`decode`] gives the same value back. A number
/// that neither i64/u64 nor f64 holds exactly (`0.1` at 30 digits, `1e400`) is written as
/// the JSON string of its decimal text — the convention [`parse_exact`] reads. With
/// `unknown_as_null`, unknowns become `null`; otherwise an unknown is an error naming its
/// path.
pub fn encode(v: &Value, unknown_as_null: bool) -> Result<J, Error> {
    to_json(v, &AttrPath::root(), unknown_as_null, Numbers::Exact)
}

/// Encodes a value for a serde model (unknowns as `null`): every number is a JSON number,
/// the nearest f64 when it has more precision than that (a model's fields are f64/i64).
pub(crate) fn encode_for_model(v: &Value) -> Result<J, Error> {
    to_json(v, &AttrPath::root(), true, Numbers::Nearest)
}

/// How [`to_json`] writes a number an f64 does not hold exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Numbers {
    /// As the string of its decimal text (lossless).
    Exact,
    /// As the nearest f64 (an error beyond f64's range).
    Nearest,
}

fn number_json(n: &Number, path: &AttrPath, numbers: Numbers) -> Result<J, Error> {
    if let Some(i) = n.as_i64() {
        return Ok(J::from(i));
    }
    if let Number::UInt(u) = n {
        return Ok(J::from(*u));
    }
    let nearest = n.as_f64();
    let exact = Number::Float(nearest) == *n;
    match serde_json::Number::from_f64(nearest) {
        Some(x) if exact || numbers == Numbers::Nearest => Ok(J::Number(x)),
        _ if numbers == Numbers::Exact && !matches!(n, Number::Float(_)) => {
            Ok(J::String(n.to_string()))
        }
        _ => Err(Error::Encode {
            path: path.clone(),
            message: format!("number {n} cannot be written as JSON"),
        }),
    }
}

fn to_json(
    v: &Value,
    path: &AttrPath,
    unknown_as_null: bool,
    numbers: Numbers,
) -> Result<J, Error> {
    Ok(match v {
        Value::Null => J::Null,
        Value::Unknown if unknown_as_null => J::Null,
        Value::Unknown => {
            return Err(Error::Encode {
                path: path.clone(),
                message: "unknown value cannot be written as JSON".into(),
            });
        }
        Value::String(s) => J::String(s.clone()),
        Value::Number(n) => number_json(n, path, numbers)?,
        Value::Bool(b) => J::Bool(*b),
        Value::List(items) | Value::Set(items) | Value::Tuple(items) => J::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, x)| to_json(x, &path.index(i as i64), unknown_as_null, numbers))
                .collect::<Result<_, _>>()?,
        ),
        Value::Map(m) | Value::Object(m) => J::Object(
            m.iter()
                .map(|(k, x)| {
                    Ok((
                        k.clone(),
                        to_json(x, &path.attr(k), unknown_as_null, numbers)?,
                    ))
                })
                .collect::<Result<_, Error>>()?,
        ),
        Value::Dynamic(t, inner) => {
            serde_json::json!({"type": t.to_json(), "value": to_json(inner, path, unknown_as_null, numbers)?})
        }
    })
}

/// Parses JSON text (e.g. `RawState.json`) keeping every number exact: numbers that an
/// i64/u64/f64 cannot hold exactly come back as JSON strings of their decimal text, which
/// [`decode`] reads as [`Number::Decimal`] wherever the type says `number`.
pub fn parse_exact(text: &[u8]) -> Result<J, Error> {
    let mut p = Parser { s: text, i: 0 };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.err("trailing characters after the JSON value"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn err(&self, m: &str) -> Error {
        Error::Decode {
            path: AttrPath::root(),
            message: format!("invalid JSON at byte {}: {m}", self.i),
        }
    }
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }
    fn eat(&mut self, lit: &[u8]) -> bool {
        if self.s[self.i..].starts_with(lit) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }
    /// At an opening bracket: the comma-separated items up to `close`, each parsed by `item`.
    fn items(
        &mut self,
        close: u8,
        mut item: impl FnMut(&mut Self) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.i += 1;
        self.ws();
        if self.eat(&[close]) {
            return Ok(());
        }
        loop {
            self.ws();
            item(self)?;
            self.ws();
            if self.eat(b",") {
                continue;
            }
            if self.eat(&[close]) {
                return Ok(());
            }
            return Err(self.err(&format!("expected , or {}", char::from(close))));
        }
    }
    fn value(&mut self, depth: usize) -> Result<J, Error> {
        if depth > 512 {
            return Err(self.err("nesting too deep"));
        }
        match self.s.get(self.i) {
            None => Err(self.err("unexpected end")),
            Some(b'n') if self.eat(b"null") => Ok(J::Null),
            Some(b't') if self.eat(b"true") => Ok(J::Bool(true)),
            Some(b'f') if self.eat(b"false") => Ok(J::Bool(false)),
            Some(b'"') => Ok(J::String(self.string()?)),
            Some(b'[') => {
                let mut out = Vec::new();
                self.items(b']', |p| {
                    out.push(p.value(depth + 1)?);
                    Ok(())
                })?;
                Ok(J::Array(out))
            }
            Some(b'{') => {
                let mut out = serde_json::Map::new();
                self.items(b'}', |p| {
                    if p.s.get(p.i) != Some(&b'"') {
                        return Err(p.err("expected an object key"));
                    }
                    let k = p.string()?;
                    p.ws();
                    if !p.eat(b":") {
                        return Err(p.err("expected :"));
                    }
                    p.ws();
                    let v = p.value(depth + 1)?;
                    out.insert(k, v);
                    Ok(())
                })?;
                Ok(J::Object(out))
            }
            Some(c) if *c == b'-' || c.is_ascii_digit() => Ok(self.number()),
            Some(_) => Err(self.err("unexpected character")),
        }
    }
    fn number(&mut self) -> J {
        let start = self.i;
        while self.i < self.s.len()
            && matches!(
                self.s[self.i],
                b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
            )
        {
            self.i += 1;
        }
        let text = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
        if let Ok(i) = text.parse::<i64>() {
            return J::from(i);
        }
        if let Ok(u) = text.parse::<u64>() {
            return J::from(u);
        }
        if let Ok(f) = text.parse::<f64>()
            && f.is_finite()
            && Number::Float(f) == Number::Decimal(text.clone())
            && let Some(n) = serde_json::Number::from_f64(f)
        {
            return J::Number(n);
        }
        J::String(text)
    }
    fn string(&mut self) -> Result<String, Error> {
        self.i += 1; // opening quote
        let mut out = String::new();
        loop {
            let start = self.i;
            while self.i < self.s.len() && self.s[self.i] != b'"' && self.s[self.i] != b'\\' {
                self.i += 1;
            }
            out.push_str(
                std::str::from_utf8(&self.s[start..self.i])
                    .map_err(|_| self.err("invalid UTF-8"))?,
            );
            match self.s.get(self.i) {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(_) => {
                    self.i += 1;
                    let c = *self
                        .s
                        .get(self.i)
                        .ok_or_else(|| self.err("unterminated escape"))?;
                    self.i += 1;
                    match c {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let ch = if (0xd800..0xdc00).contains(&hi) {
                                if !self.eat(b"\\u") {
                                    return Err(self.err("lone surrogate"));
                                }
                                let lo = self.hex4()?;
                                char::from_u32(
                                    0x10000
                                        + ((hi - 0xd800) << 10)
                                        + (lo.wrapping_sub(0xdc00) & 0x3ff),
                                )
                            } else {
                                char::from_u32(hi)
                            };
                            out.push(ch.ok_or_else(|| self.err("invalid \\u escape"))?);
                        }
                        _ => return Err(self.err("invalid escape")),
                    }
                }
            }
        }
    }
    fn hex4(&mut self) -> Result<u32, Error> {
        let h = self
            .s
            .get(self.i..self.i + 4)
            .ok_or_else(|| self.err("short \\u escape"))?;
        let v = u32::from_str_radix(
            std::str::from_utf8(h).map_err(|_| self.err("bad \\u escape"))?,
            16,
        )
        .map_err(|_| self.err("bad \\u escape"))?;
        self.i += 4;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_state_numbers_are_read_exactly() {
        let j = parse_exact(
            br#"{"a": 12345678901234567890.5, "b": 0.1, "c": 7, "d": "x\u00e9\ud83d\ude00"}"#,
        )
        .expect("parse");
        let ty = Type::object([
            ("a", Type::Number),
            ("b", Type::Number),
            ("c", Type::Number),
            ("d", Type::String),
        ]);
        let v = decode(&j, &ty, Extra::Reject).expect("decode");
        assert_eq!(
            v.attr("a")
                .and_then(Value::as_number)
                .map(ToString::to_string)
                .as_deref(),
            Some("12345678901234567890.5")
        );
        assert_eq!(
            v.attr("b").and_then(Value::as_number),
            Some(&Number::Float(0.1))
        );
        assert_eq!(v.attr("c"), Some(&Value::from(7i64)));
        assert_eq!(v.attr("d"), Some(&Value::from("xé😀")));
    }

    #[test]
    fn malformed_json_is_an_error_not_a_panic() {
        for bad in [
            &b"{"[..],
            b"[1,",
            b"\"abc",
            b"{\"a\" 1}",
            b"tru",
            b"1 2",
            b"\"\\ud800\"",
        ] {
            assert!(
                parse_exact(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
