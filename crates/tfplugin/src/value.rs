//! The cty-like value model Terraform values are decoded into: [`Type`], [`Value`], [`Number`].

use std::collections::BTreeMap;
use std::fmt;

use crate::error::Error;

/// A Terraform (cty) type, as named in schemas and carried by `dynamic` values.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Type {
    String,
    Number,
    Bool,
    /// `dynamic` ("DynamicPseudoType"): any type, decided per value.
    Dynamic,
    List(Box<Type>),
    Set(Box<Type>),
    Map(Box<Type>),
    Object(BTreeMap<String, Type>),
    Tuple(Vec<Type>),
}

impl Type {
    pub fn list(t: Type) -> Type {
        Type::List(Box::new(t))
    }
    pub fn set(t: Type) -> Type {
        Type::Set(Box::new(t))
    }
    pub fn map(t: Type) -> Type {
        Type::Map(Box::new(t))
    }
    pub fn object<I: IntoIterator<Item = (K, Type)>, K: Into<String>>(attrs: I) -> Type {
        Type::Object(attrs.into_iter().map(|(k, t)| (k.into(), t)).collect())
    }

    /// The compact JSON type expression (`"string"`, `["list","string"]`, ...).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::{Value as J, json};
        match self {
            Type::String => J::from("string"),
            Type::Number => J::from("number"),
            Type::Bool => J::from("bool"),
            Type::Dynamic => J::from("dynamic"),
            Type::List(t) => json!(["list", t.to_json()]),
            Type::Set(t) => json!(["set", t.to_json()]),
            Type::Map(t) => json!(["map", t.to_json()]),
            Type::Object(a) => {
                let m: serde_json::Map<String, J> =
                    a.iter().map(|(k, t)| (k.clone(), t.to_json())).collect();
                json!(["object", m])
            }
            Type::Tuple(ts) => json!(["tuple", ts.iter().map(Type::to_json).collect::<Vec<_>>()]),
        }
    }

    /// The JSON type expression as bytes, as `Schema.Attribute.type` wants it.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        self.to_json().to_string().into_bytes()
    }

    /// Parses a JSON type expression.
    pub fn from_json(j: &serde_json::Value) -> Result<Type, Error> {
        use serde_json::Value as J;
        let bad = || Error::Type(format!("invalid type expression {j}"));
        match j {
            J::String(s) => match s.as_str() {
                "string" => Ok(Type::String),
                "number" => Ok(Type::Number),
                "bool" => Ok(Type::Bool),
                "dynamic" => Ok(Type::Dynamic),
                _ => Err(bad()),
            },
            J::Array(a) if a.len() >= 2 => {
                let kind = a[0].as_str().ok_or_else(bad)?;
                match kind {
                    "list" => Ok(Type::list(Type::from_json(&a[1])?)),
                    "set" => Ok(Type::set(Type::from_json(&a[1])?)),
                    "map" => Ok(Type::map(Type::from_json(&a[1])?)),
                    "object" => {
                        let m = a[1].as_object().ok_or_else(bad)?;
                        let mut attrs = BTreeMap::new();
                        for (k, v) in m {
                            attrs.insert(k.clone(), Type::from_json(v)?);
                        }
                        Ok(Type::Object(attrs))
                    }
                    "tuple" => {
                        let items = a[1].as_array().ok_or_else(bad)?;
                        Ok(Type::Tuple(
                            items
                                .iter()
                                .map(Type::from_json)
                                .collect::<Result<_, _>>()?,
                        ))
                    }
                    _ => Err(bad()),
                }
            }
            _ => Err(bad()),
        }
    }

    /// A human-readable name for error messages.
    pub fn friendly(&self) -> String {
        match self {
            Type::String => "string".into(),
            Type::Number => "number".into(),
            Type::Bool => "bool".into(),
            Type::Dynamic => "any".into(),
            Type::List(t) => format!("list of {}", t.friendly()),
            Type::Set(t) => format!("set of {}", t.friendly()),
            Type::Map(t) => format!("map of {}", t.friendly()),
            Type::Object(_) => "object".into(),
            Type::Tuple(_) => "tuple".into(),
        }
    }
}

/// A number that round-trips losslessly: integers and binary floats take a fast path,
/// anything else keeps its decimal text.
#[derive(Clone)]
pub enum Number {
    Int(i64),
    UInt(u64),
    Float(f64),
    /// Decimal text, e.g. `0.1` at more precision than f64 or a 30-digit integer.
    Decimal(String),
}

impl fmt::Debug for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Number::Int(i) => write!(f, "{i}"),
            Number::UInt(u) => write!(f, "{u}"),
            Number::Float(x) => write!(f, "{x}"),
            Number::Decimal(s) => f.write_str(s),
        }
    }
}

/// A normalised decimal: sign, significant digits (no leading/trailing zeros), exponent
/// such that value = digits × 10^exp. Zero is `(false, "", 0)`.
type Canon = (bool, String, i64);

fn canon_text(s: &str) -> Option<Canon> {
    let s = s.trim();
    let (neg, s) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (mant, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], s[i + 1..].parse::<i64>().ok()?),
        None => (s, 0),
    };
    let (int, frac) = match mant.find('.') {
        Some(i) => (&mant[..i], &mant[i + 1..]),
        None => (mant, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut digits: String = format!("{int}{frac}");
    let mut exp = exp.checked_sub(i64::try_from(frac.len()).ok()?)?;
    let lead = digits.len() - digits.trim_start_matches('0').len();
    digits.drain(..lead);
    while digits.ends_with('0') {
        digits.pop();
        exp += 1;
    }
    if digits.is_empty() {
        return Some((false, String::new(), 0));
    }
    Some((neg, digits, exp))
}

impl Number {
    /// Parses decimal text (`12`, `-0.5`, `1e400`). Returns `None` for anything else.
    pub fn parse(s: &str) -> Option<Number> {
        canon_text(s)?;
        if let Ok(i) = s.parse::<i64>() {
            return Some(Number::Int(i));
        }
        if let Ok(u) = s.parse::<u64>() {
            return Some(Number::UInt(u));
        }
        Some(Number::Decimal(s.trim().to_string()))
    }

    fn canon(&self) -> Canon {
        match self {
            Number::Int(i) => canon_text(&i.to_string()),
            Number::UInt(u) => canon_text(&u.to_string()),
            // `{:e}` prints the shortest representation that round-trips.
            Number::Float(x) if x.is_finite() => canon_text(&format!("{x:e}")),
            Number::Float(x) => Some((*x < 0.0, "inf".into(), 0)),
            Number::Decimal(s) => canon_text(s),
        }
        .unwrap_or((false, String::new(), 0))
    }

    /// The value as i64 when it is an integer in range.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Number::Int(i) => Some(*i),
            Number::UInt(u) => i64::try_from(*u).ok(),
            Number::Float(x) if x.fract() == 0.0 && x.abs() < 9.2e18 => Some(*x as i64),
            Number::Float(_) => None,
            Number::Decimal(_) => {
                let (neg, digits, exp) = self.canon();
                if exp < 0 || digits.len() as i64 + exp > 19 {
                    return None;
                }
                let text = format!(
                    "{}{}{}",
                    if neg { "-" } else { "" },
                    digits,
                    "0".repeat(exp as usize)
                );
                if digits.is_empty() {
                    Some(0)
                } else {
                    text.parse().ok()
                }
            }
        }
    }

    /// The value as u64 when it is a non-negative integer in range.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Number::UInt(u) => Some(*u),
            other => other.as_i64().and_then(|i| u64::try_from(i).ok()),
        }
    }

    /// The nearest f64.
    pub fn as_f64(&self) -> f64 {
        match self {
            Number::Int(i) => *i as f64,
            Number::UInt(u) => *u as f64,
            Number::Float(x) => *x,
            Number::Decimal(s) => s.trim().parse().unwrap_or(f64::NAN),
        }
    }

    /// Decimal text that parses back to the same number.
    pub fn to_decimal_string(&self) -> String {
        self.to_string()
    }
}

impl PartialEq for Number {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Number::Int(a), Number::Int(b)) => a == b,
            (Number::Float(a), Number::Float(b)) => a == b,
            _ => self.canon() == other.canon(),
        }
    }
}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        match (self.as_i64(), other.as_i64()) {
            (Some(a), Some(b)) => a.partial_cmp(&b),
            _ => self.as_f64().partial_cmp(&other.as_f64()),
        }
    }
}

impl From<i64> for Number {
    fn from(v: i64) -> Self {
        Number::Int(v)
    }
}
impl From<f64> for Number {
    fn from(v: f64) -> Self {
        Number::Float(v)
    }
}

/// A Terraform value. Which variant is valid depends on the [`Type`] it is read with.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    /// Not known until apply (refinements Terraform may attach are accepted and dropped).
    Unknown,
    String(String),
    Number(Number),
    Bool(bool),
    List(Vec<Value>),
    /// Elements of a set (order as received; equality ignores order).
    Set(Vec<Value>),
    Map(BTreeMap<String, Value>),
    Object(BTreeMap<String, Value>),
    Tuple(Vec<Value>),
    /// A known value of a `dynamic`-typed attribute, with its concrete type.
    Dynamic(Type, Box<Value>),
}

impl Value {
    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
    pub fn is_unknown(&self) -> bool {
        matches!(self, Value::Unknown)
    }
    pub fn is_known(&self) -> bool {
        !self.is_unknown()
    }

    /// True when neither this value nor anything inside it is unknown.
    pub fn is_wholly_known(&self) -> bool {
        match self {
            Value::Unknown => false,
            Value::List(v) | Value::Set(v) | Value::Tuple(v) => {
                v.iter().all(Value::is_wholly_known)
            }
            Value::Map(m) | Value::Object(m) => m.values().all(Value::is_wholly_known),
            Value::Dynamic(_, v) => v.is_wholly_known(),
            _ => true,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_number(&self) -> Option<&Number> {
        match self {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
    pub fn as_object(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }
    pub fn as_object_mut(&mut self) -> Option<&mut BTreeMap<String, Value>> {
        match self {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }
    /// Elements of a list, set or tuple.
    pub fn as_elements(&self) -> Option<&[Value]> {
        match self {
            Value::List(v) | Value::Set(v) | Value::Tuple(v) => Some(v),
            _ => None,
        }
    }

    /// An attribute of an object value (`None` if this is not an object or has no such key).
    pub fn attr(&self, name: &str) -> Option<&Value> {
        self.as_object().and_then(|m| m.get(name))
    }

    /// Number of elements for collections (`None` for other kinds).
    pub fn len(&self) -> Option<usize> {
        match self {
            Value::List(v) | Value::Set(v) | Value::Tuple(v) => Some(v.len()),
            Value::Map(m) | Value::Object(m) => Some(m.len()),
            _ => None,
        }
    }

    /// True for an empty collection (`None` semantics of [`Value::len`] become `false`).
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    /// Semantic equality as Terraform sees it: numbers by value, sets ignoring order.
    pub fn equals(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Set(a), Value::Set(b)) => {
                a.len() == b.len()
                    && a.iter().all(|x| b.iter().any(|y| x.equals(y)))
                    && b.iter().all(|y| a.iter().any(|x| x.equals(y)))
            }
            (Value::List(a), Value::List(b)) | (Value::Tuple(a), Value::Tuple(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.equals(y))
            }
            (Value::Map(a), Value::Map(b)) | (Value::Object(a), Value::Object(b)) => {
                a.len() == b.len() && a.iter().all(|(k, x)| b.get(k).is_some_and(|y| x.equals(y)))
            }
            (Value::Dynamic(ta, a), Value::Dynamic(tb, b)) => ta == tb && a.equals(b),
            (a, b) => a == b,
        }
    }
}

fn is_primitive(v: &Value) -> bool {
    match v {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => true,
        Value::List(x) | Value::Set(x) | Value::Tuple(x) => x.iter().all(is_primitive),
        Value::Map(m) => m.values().all(is_primitive),
        _ => false,
    }
}

/// Fills `planned` where `config` is null and `planned` is null or unknown with the value
/// at the same path in `from` (objects by name, lists by index, maps by key), for
/// attributes of primitive types or collections of them; objects and lists of objects
/// (blocks) are never added. See [`crate::PlanChange::fill_unset`].
pub fn fill_unset(planned: &mut Value, config: &Value, from: &Value) {
    match (planned, from) {
        (Value::Object(p), Value::Object(f)) => {
            for (k, pv) in p.iter_mut() {
                let Some(fv) = f.get(k) else { continue };
                let cv = config.attr(k).unwrap_or(&Value::Null);
                if (pv.is_null() || pv.is_unknown()) && cv.is_null() {
                    if is_primitive(fv) {
                        *pv = fv.clone();
                    }
                } else {
                    fill_unset(pv, cv, fv);
                }
            }
        }
        (Value::List(p), Value::List(f)) => {
            let c = config.as_elements().unwrap_or(&[]);
            for (i, (pv, fv)) in p.iter_mut().zip(f).enumerate() {
                fill_unset(pv, c.get(i).unwrap_or(&Value::Null), fv);
            }
        }
        (Value::Map(p), Value::Map(f)) => {
            for (k, pv) in p.iter_mut() {
                if let Some(fv) = f.get(k) {
                    let cv = match config {
                        Value::Map(cm) => cm.get(k).unwrap_or(&Value::Null),
                        _ => &Value::Null,
                    };
                    fill_unset(pv, cv, fv);
                }
            }
        }
        _ => {}
    }
}

/// Where `new` holds a number equal to the one at the same place in `reference`, use the
/// reference's representation. Provider models round-trip numbers through i64/f64; this keeps
/// Terraform's own text (e.g. `0.1` at full precision) so strict comparisons (Terraform 1.0.x)
/// see the value unchanged.
pub fn align_numbers(reference: &Value, new: &mut Value) {
    match (reference, new) {
        (Value::Number(r), Value::Number(n)) if r == n => *n = r.clone(),
        (Value::Object(rm), Value::Object(nm)) | (Value::Map(rm), Value::Map(nm)) => {
            for (k, nv) in nm.iter_mut() {
                if let Some(rv) = rm.get(k) {
                    align_numbers(rv, nv);
                }
            }
        }
        (Value::List(re), Value::List(ne)) | (Value::Tuple(re), Value::Tuple(ne)) => {
            for (rv, nv) in re.iter().zip(ne.iter_mut()) {
                align_numbers(rv, nv);
            }
        }
        (Value::Set(re), Value::Set(ne)) => {
            for nv in ne.iter_mut() {
                if let Some(rv) = re.iter().find(|rv| rv.equals(nv)) {
                    *nv = rv.clone();
                }
            }
        }
        (Value::Dynamic(rt, rv), Value::Dynamic(nt, nv)) if rt == nt => align_numbers(rv, nv),
        _ => {}
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Number(Number::Int(v))
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Number(Number::Float(v))
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_compare_by_value_across_representations() {
        assert_eq!(Number::Int(3), Number::Float(3.0));
        assert_eq!(Number::Decimal("0.10".into()), Number::Float(0.1));
        assert_eq!(Number::Decimal("1e3".into()), Number::Int(1000));
        assert_ne!(
            Number::Decimal("0.1000000000000000000001".into()),
            Number::Float(0.1)
        );
        assert_eq!(Number::Decimal("-0".into()), Number::Int(0));
    }

    #[test]
    fn type_json_round_trips() {
        let t = Type::object([
            ("a", Type::list(Type::String)),
            ("b", Type::map(Type::Number)),
        ]);
        assert_eq!(
            t.to_json().to_string(),
            r#"["object",{"a":["list","string"],"b":["map","number"]}]"#
        );
        assert_eq!(Type::from_json(&t.to_json()).ok(), Some(t));
    }
}
