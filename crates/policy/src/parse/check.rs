//! Structural check of a JSON value against the policy's generated JSON Schema.
//!
//! serde stops at the first error; this walk reports *every* structural problem (unknown
//! fields with the allowed ones, missing fields, wrong types, values outside an enum,
//! unparseable durations, integers out of range) before serde deserializes the value.

use std::sync::OnceLock;

use serde_json::{Map, Value};

use crate::diag::{Diagnostics, FieldPath, PathSegment};
use crate::time::parse_duration;

fn schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(crate::policy_schema)
}

/// Checks `v` against the policy schema, appending every problem to `out`.
pub(crate) fn check_policy(v: &Value, out: &mut Diagnostics) {
    let s = schema();
    let defs = s.get("$defs").and_then(Value::as_object);
    Checker { defs }.check(v, s, &FieldPath::root(), out);
}

/// A `$ref` of the policy schema resolved to its definition.
pub(crate) fn resolve(mut s: &'static Value) -> &'static Value {
    let defs = schema().get("$defs").and_then(Value::as_object);
    for _ in 0..16 {
        let Some(r) = s.get("$ref").and_then(Value::as_str) else {
            break;
        };
        let name = r.rsplit('/').next().unwrap_or(r);
        match defs.and_then(|d| d.get(name)) {
            Some(t) => s = t,
            None => break,
        }
    }
    s
}

/// The schema of one field of the policy and whether its object requires it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot {
    pub schema: &'static Value,
    pub required: bool,
}

/// The schema (or union branch) among `s` and its branches matching `has`.
fn branch(s: &'static Value, has: &dyn Fn(&Value) -> bool) -> Option<&'static Value> {
    let s = resolve(s);
    if has(s) {
        return Some(s);
    }
    s.get("oneOf")
        .or_else(|| s.get("anyOf"))
        .and_then(Value::as_array)?
        .iter()
        .map(resolve)
        .find(|b| has(b))
}

/// Where `path` leads in the policy schema (`None` for a field the schema does not have).
pub(crate) fn slot_at(path: &FieldPath) -> Option<Slot> {
    let mut slot = Slot {
        schema: schema(),
        required: true,
    };
    for seg in &path.0 {
        match seg {
            PathSegment::Field(f) => {
                let obj = branch(slot.schema, &|b| {
                    b.get("properties").and_then(|p| p.get(f)).is_some()
                })?;
                slot.required = obj
                    .get("required")
                    .and_then(Value::as_array)
                    .is_some_and(|r| r.iter().any(|x| x.as_str() == Some(f)));
                slot.schema = obj.get("properties")?.get(f)?;
            }
            PathSegment::Index(_) => {
                let arr = branch(slot.schema, &|b| b.get("items").is_some())?;
                slot.schema = arr.get("items")?;
                slot.required = true;
            }
        }
    }
    Some(slot)
}

struct Checker<'a> {
    defs: Option<&'a Map<String, Value>>,
}

/// The allowed name closest to a misspelt one, if it is close enough to be the intended
/// one (`stabilization_window` → `stabilisation_window`).
pub(crate) fn closest<'n>(name: &str, allowed: &[&'n str]) -> Option<&'n str> {
    allowed
        .iter()
        .map(|a| (strsim::damerau_levenshtein(name, a), *a))
        .filter(|(d, a)| *d <= (a.len().max(name.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "string" => v.is_string(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        "number" => v.is_number(),
        // serde reads integers only from integer literals (`3`, not `3.0`).
        "integer" => matches!(v, Value::Number(n) if n.is_i64() || n.is_u64()),
        _ => true,
    }
}

fn type_name(t: &str) -> &str {
    match t {
        "boolean" => "a boolean",
        "string" => "a string",
        "array" => "a list",
        "object" => "an object",
        "number" => "a number",
        "integer" => "a whole number",
        "null" => "null",
        other => other,
    }
}

fn where_(path: &FieldPath) -> String {
    if path.0.is_empty() {
        "the policy".to_owned()
    } else {
        path.to_string()
    }
}

impl<'a> Checker<'a> {
    fn resolve(&self, mut s: &'a Value) -> &'a Value {
        for _ in 0..16 {
            let Some(r) = s.get("$ref").and_then(Value::as_str) else {
                break;
            };
            let name = r.rsplit('/').next().unwrap_or(r);
            match self.defs.and_then(|d| d.get(name)) {
                Some(t) => s = t,
                None => break,
            }
        }
        s
    }

    fn check(&self, v: &Value, s: &'a Value, path: &FieldPath, out: &mut Diagnostics) {
        let s = self.resolve(s);
        if let Some(branches) = s
            .get("oneOf")
            .or_else(|| s.get("anyOf"))
            .and_then(Value::as_array)
        {
            self.check_union(v, branches, path, out);
            return;
        }
        if let Some(allowed) = s.get("enum").and_then(Value::as_array) {
            if !allowed.contains(v) {
                out.push(
                    path.clone(),
                    format!("{} must be one of {}, got {v}", where_(path), list(allowed)),
                );
            }
            return;
        }
        if let Some(c) = s.get("const") {
            if c != v {
                out.push(
                    path.clone(),
                    format!("{} must be {c}, got {v}", where_(path)),
                );
            }
            return;
        }
        let types: Vec<&str> = match s.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !types.is_empty() && !types.iter().any(|t| type_matches(t, v)) {
            let want: Vec<&str> = types
                .iter()
                .filter(|t| **t != "null")
                .map(|t| type_name(t))
                .collect();
            out.push(
                path.clone(),
                format!(
                    "{} must be {}, got {}",
                    where_(path),
                    want.join(" or "),
                    kind_of(v)
                ),
            );
            return;
        }
        match v {
            Value::Object(map) => self.check_object(map, s, path, out),
            Value::Array(items) => {
                if let Some(item_schema) = s.get("items") {
                    for (i, it) in items.iter().enumerate() {
                        self.check(it, item_schema, &path.index(i), out);
                    }
                }
            }
            Value::String(text) => {
                if s.get("format").and_then(Value::as_str) == Some("duration")
                    && let Err(e) = parse_duration(text)
                {
                    out.push(path.clone(), format!("{}: {e}", where_(path)));
                }
            }
            Value::Number(n) => {
                let f = n.as_f64().unwrap_or(f64::NAN);
                let fmt = s.get("format").and_then(Value::as_str);
                if fmt == Some("uint32") && !(0.0..=f64::from(u32::MAX)).contains(&f) {
                    let bound = if f < 0.0 {
                        "at least 0".to_owned()
                    } else {
                        format!("at most {}", u32::MAX)
                    };
                    out.push(
                        path.clone(),
                        format!("{} must be {bound}, got {n}", where_(path)),
                    );
                    return;
                }
                if let Some(min) = s.get("minimum").and_then(Value::as_f64)
                    && f < min
                {
                    out.push(
                        path.clone(),
                        format!("{} must be at least {min}, got {n}", where_(path)),
                    );
                }
                if let Some(max) = s.get("maximum").and_then(Value::as_f64)
                    && f > max
                {
                    out.push(
                        path.clone(),
                        format!("{} must be at most {max}, got {n}", where_(path)),
                    );
                }
            }
            _ => {}
        }
    }

    fn check_object(
        &self,
        map: &Map<String, Value>,
        s: &'a Value,
        path: &FieldPath,
        out: &mut Diagnostics,
    ) {
        let props = s.get("properties").and_then(Value::as_object);
        if let Some(req) = s.get("required").and_then(Value::as_array) {
            for r in req.iter().filter_map(Value::as_str) {
                if !map.contains_key(r) {
                    out.push(
                        path.field(r),
                        format!("{} is required but missing", where_(&path.field(r))),
                    );
                }
            }
        }
        let closed = s.get("additionalProperties") == Some(&Value::Bool(false));
        for (k, val) in map {
            match props.and_then(|p| p.get(k)) {
                Some(ps) => self.check(val, ps, &path.field(k), out),
                None if closed => {
                    let allowed: Vec<&str> = props
                        .map(|p| p.keys().map(String::as_str).collect())
                        .unwrap_or_default();
                    let hint = closest(k, &allowed)
                        .map(|c| format!(" Did you mean `{c}`?"))
                        .unwrap_or_default();
                    out.push(
                        path.field(k),
                        format!(
                            "unknown field `{k}` in {}.{hint} Allowed: {}",
                            where_(path),
                            allowed.join(", ")
                        ),
                    );
                }
                None => {}
            }
        }
    }

    fn check_union(
        &self,
        v: &Value,
        branches: &'a [Value],
        path: &FieldPath,
        out: &mut Diagnostics,
    ) {
        let resolved: Vec<&'a Value> = branches.iter().map(|b| self.resolve(b)).collect();
        // Unit-variant enums: every branch is a const (or an enum).
        let consts: Option<Vec<&Value>> = resolved
            .iter()
            .map(|b| {
                b.get("const").map(|c| vec![c]).or_else(|| {
                    b.get("enum")
                        .and_then(Value::as_array)
                        .map(|a| a.iter().collect())
                })
            })
            .collect::<Option<Vec<Vec<&Value>>>>()
            .map(|vv| vv.into_iter().flatten().collect());
        if let Some(consts) = consts {
            if !consts.contains(&v) {
                let shown: Vec<String> = consts.iter().map(|c| c.to_string()).collect();
                out.push(
                    path.clone(),
                    format!(
                        "{} must be one of {}, got {v}",
                        where_(path),
                        shown.join(", ")
                    ),
                );
            }
            return;
        }
        if v.is_null()
            && resolved
                .iter()
                .any(|b| b.get("type") == Some(&Value::String("null".into())))
        {
            return;
        }
        // Internally tagged enums: find the discriminating property.
        if let Value::Object(map) = v
            && let Some((key, tags)) = discriminator(&resolved)
        {
            let one_of = || {
                tags.iter()
                    .map(|(t, _)| format!("{t:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let field = path.field(key);
            match map.get(key) {
                None => out.push(
                    field.clone(),
                    format!(
                        "{} is required but missing; one of {}",
                        where_(&field),
                        one_of()
                    ),
                ),
                Some(tag) => match tags.iter().find(|(t, _)| Some(*t) == tag.as_str()) {
                    Some((_, b)) => self.check(v, b, path, out),
                    None => out.push(
                        field.clone(),
                        format!("{} must be one of {}, got {tag}", where_(&field), one_of()),
                    ),
                },
            }
            return;
        }
        // General: accept if any branch accepts; otherwise report the first non-null branch's problems.
        let mut first: Option<Diagnostics> = None;
        for b in &resolved {
            if b.get("type") == Some(&Value::String("null".into())) {
                continue;
            }
            let mut d = Diagnostics::new();
            self.check(v, b, path, &mut d);
            if d.is_empty() {
                return;
            }
            if first.is_none() {
                first = Some(d);
            }
        }
        if let Some(d) = first {
            out.0.extend(d.0);
        }
    }
}

/// The property every branch fixes with a `const`, with each branch's tag.
fn discriminator<'a>(branches: &[&'a Value]) -> Option<(&'a str, Vec<(&'a str, &'a Value)>)> {
    let first = branches.first()?.get("properties")?.as_object()?;
    for (key, _) in first {
        let mut tags = Vec::new();
        for b in branches {
            let c = b
                .get("properties")
                .and_then(|p| p.get(key))
                .and_then(|p| p.get("const"))
                .and_then(Value::as_str);
            match c {
                Some(t) => tags.push((t, *b)),
                None => break,
            }
        }
        if tags.len() == branches.len() {
            return Some((key.as_str(), tags));
        }
    }
    None
}

fn list(vs: &[Value]) -> String {
    vs.iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
