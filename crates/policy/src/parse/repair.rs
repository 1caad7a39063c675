//! Semantic problems that do not depend on the fields the structural check refused.
//!
//! serde cannot build a [`Policy`] while a required field is wrong (an unknown `kind`, a
//! `strategy` that is not one of the four), so the semantic rules could not run and their
//! problems only showed once the structural ones were fixed: errors in rounds. Instead the
//! policy is checked over *rounds*: in each round every refused field takes a candidate
//! value from its schema (each allowed value of an enum, a small and a large number, both
//! booleans, the strings the policy already holds, or — for an optional field — no value
//! at all). A semantic problem is reported when every round that deserializes finds it and
//! it is not about a refused field (or something containing one): it holds whatever the
//! user meant to write there.

use serde_json::{Map, Value};

use crate::diag::{Diagnostic, FieldPath, PathSegment};
use crate::model::Policy;

use super::check::{Slot, resolve, slot_at};

/// Most rounds (enums have at most 7 values; strings are capped below this).
const MAX_ROUNDS: usize = 16;
/// Strings of the policy tried as candidates.
const MAX_STRINGS: usize = 12;

/// The semantic problems of `value` that hold whatever valid values the `refused` fields take.
pub(crate) fn independent_semantic(value: &Value, refused: &[FieldPath]) -> Vec<Diagnostic> {
    let mut strings = Vec::new();
    collect_strings(value, &mut strings);
    let mut paths: Vec<&FieldPath> = refused.iter().collect();
    paths.sort_by_key(|p| p.0.len());
    paths.dedup();
    let candidates: Vec<Vec<Option<Value>>> = paths
        .iter()
        .map(|p| match slot_at(p) {
            Some(slot) => candidates(&slot, &strings),
            None => vec![None],
        })
        .collect();
    let rounds = candidates
        .iter()
        .map(Vec::len)
        .max()
        .unwrap_or(1)
        .clamp(1, MAX_ROUNDS);
    let mut common: Option<Vec<Diagnostic>> = None;
    for k in 0..rounds {
        let mut v = value.clone();
        for (p, c) in paths.iter().zip(&candidates) {
            set_path(&mut v, &p.0, c[k % c.len()].clone());
        }
        let Ok(policy) = serde_json::from_value::<Policy>(v) else {
            continue;
        };
        let found: Vec<Diagnostic> = policy.validate().err().map(|d| d.0).unwrap_or_default();
        common = Some(match common {
            None => found,
            Some(prev) => prev
                .into_iter()
                .filter(|d| {
                    found
                        .iter()
                        .any(|f| f.path == d.path && f.message == d.message)
                })
                .collect(),
        });
    }
    common
        .unwrap_or_default()
        .into_iter()
        .filter(|d| !paths.iter().any(|p| related(&d.path, p)))
        .collect()
}

/// One path lies at, inside or above the other.
fn related(a: &FieldPath, b: &FieldPath) -> bool {
    let n = a.0.len().min(b.0.len());
    a.0[..n] == b.0[..n]
}

/// Candidate values of a field (`None` leaves an optional field out).
fn candidates(slot: &Slot, strings: &[String]) -> Vec<Option<Value>> {
    let mut out: Vec<Option<Value>> = if slot.required {
        Vec::new()
    } else {
        vec![None]
    };
    out.extend(values_of(slot.schema, strings, 0).into_iter().map(Some));
    if out.is_empty() {
        out.push(None);
    }
    out
}

/// Values a schema accepts: every enum value, bounds of numbers, known strings, ...
fn values_of(s: &'static Value, strings: &[String], depth: usize) -> Vec<Value> {
    let s = resolve(s);
    if depth > 6 {
        return vec![Value::Null];
    }
    if let Some(branches) = s
        .get("oneOf")
        .or_else(|| s.get("anyOf"))
        .and_then(Value::as_array)
    {
        let mut out = Vec::new();
        for b in branches {
            let b = resolve(b);
            if b.get("type") == Some(&Value::String("null".into())) {
                continue;
            }
            match b.get("const") {
                Some(c) => out.push(c.clone()),
                None => out.extend(values_of(b, strings, depth + 1)),
            }
        }
        return out;
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array) {
        return e.clone();
    }
    if let Some(c) = s.get("const") {
        return vec![c.clone()];
    }
    let ty = match s.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ => "null",
    };
    let num = |k: &str, d: f64| s.get(k).and_then(Value::as_f64).unwrap_or(d);
    match ty {
        "string" if s.get("format").and_then(Value::as_str) == Some("duration") => {
            vec![Value::from("1s"), Value::from("3650d")]
        }
        "string" => std::iter::once(Value::from("x"))
            .chain(strings.iter().map(|x| Value::from(x.as_str())))
            .collect(),
        "integer" => [num("minimum", 0.0), 1.0, num("maximum", 1_000_000.0)]
            .into_iter()
            .map(|n| Value::from(n as u64))
            .collect(),
        "number" => [num("minimum", 0.0), 1.0, num("maximum", 1_000_000.0)]
            .into_iter()
            .map(Value::from)
            .collect(),
        "boolean" => vec![Value::Bool(false), Value::Bool(true)],
        "array" => vec![Value::Array(Vec::new())],
        "object" => vec![minimal_object(s, strings, depth)],
        _ => vec![Value::Null],
    }
}

/// An object holding only its required properties, each at its first candidate.
fn minimal_object(s: &'static Value, strings: &[String], depth: usize) -> Value {
    let mut m = Map::new();
    let props = s.get("properties").and_then(Value::as_object);
    for r in s
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if let Some(ps) = props.and_then(|p| p.get(r))
            && let Some(v) = values_of(ps, strings, depth + 1).into_iter().next()
        {
            m.insert(r.to_owned(), v);
        }
    }
    Value::Object(m)
}

/// The strings of the policy (distinct), as candidates for refused string fields.
fn collect_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) if out.len() < MAX_STRINGS && !out.contains(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        Value::Object(m) => m.values().for_each(|x| collect_strings(x, out)),
        _ => {}
    }
}

/// Sets (or, with `None`, removes) the value at `path`; array elements are never removed
/// so indices keep their meaning.
fn set_path(v: &mut Value, path: &[PathSegment], new: Option<Value>) {
    match path {
        [] => {
            if let Some(n) = new {
                *v = n;
            }
        }
        [PathSegment::Field(f)] => {
            if let Value::Object(m) = v {
                match new {
                    Some(n) => {
                        m.insert(f.clone(), n);
                    }
                    None => {
                        m.remove(f);
                    }
                }
            }
        }
        [PathSegment::Field(f), rest @ ..] => {
            if let Some(next) = v.as_object_mut().and_then(|m| m.get_mut(f)) {
                set_path(next, rest, new);
            }
        }
        [PathSegment::Index(i), rest @ ..] => {
            if let Some(next) = v.as_array_mut().and_then(|a| a.get_mut(*i)) {
                match (rest.is_empty(), new) {
                    (true, Some(n)) => *next = n,
                    (true, None) => {}
                    (false, n) => set_path(next, rest, n),
                }
            }
        }
    }
}
