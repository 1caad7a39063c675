//! Validation that does not wait for unknown values.
//!
//! `terraform validate` sees every variable and every reference to another resource as
//! unknown, and `terraform plan` still sees values other resources compute. Skipping every
//! check while anything is unknown would hide errors that have nothing to do with the
//! unknowns. Instead [`independent_problems`] runs the check over *rounds*: in each round
//! every unknown value is replaced by a candidate of its type (null, the strings the
//! configuration already holds, small and large numbers, both booleans, empty and
//! one-element collections). A diagnostic is kept only when every round that could be
//! checked reports it and it does not point at or into an unknown value: the problem holds
//! whatever the unknowns turn out to be.

use std::collections::BTreeMap;

use crate::diag::{Diagnostic, Diagnostics};
use crate::path::AttrPath;
use crate::value::{Number, Type, Value};

/// Most rounds one check runs (strings are the widest candidate set).
const MAX_ROUNDS: usize = 16;

/// The diagnostics `check` reports for `config` (of type `ty`) whatever its unknown values
/// turn out to be. `check` returns `None` for a round it cannot judge (e.g. a candidate
/// the model cannot hold); such rounds do not count. With no unknowns this is `check(config)`.
pub fn independent_problems(
    config: &Value,
    ty: &Type,
    check: impl Fn(&Value) -> Option<Diagnostics>,
) -> Diagnostics {
    if config.is_wholly_known() {
        return check(config).unwrap_or_default();
    }
    let mut unknown = Vec::new();
    collect_unknown(config, ty, &AttrPath::root(), &mut unknown);
    let mut strings = Vec::new();
    collect_strings(config, &mut strings);
    let pool = Candidates { strings };
    let rounds = unknown
        .iter()
        .map(|(_, t)| pool.count(t))
        .max()
        .unwrap_or(1)
        .clamp(1, MAX_ROUNDS);
    let mut common: Option<Vec<Diagnostic>> = None;
    for k in 0..rounds {
        let mut v = config.clone();
        for (path, t) in &unknown {
            if let Some(slot) = path.get_mut(&mut v) {
                *slot = pool.pick(t, k);
            }
        }
        let Some(found) = check(&v) else { continue };
        let found = found.0;
        common = Some(match common {
            None => found,
            Some(prev) => prev.into_iter().filter(|d| found.contains(d)).collect(),
        });
    }
    let paths: Vec<&AttrPath> = unknown.iter().map(|(p, _)| p).collect();
    Diagnostics(
        common
            .unwrap_or_default()
            .into_iter()
            .filter(|d| {
                d.path
                    .as_ref()
                    .is_none_or(|p| !paths.iter().any(|u| related(p, u)))
            })
            .collect(),
    )
}

/// One path lies at, inside or above the other.
fn related(a: &AttrPath, b: &AttrPath) -> bool {
    let (a, b) = (a.steps(), b.steps());
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

/// Every unknown value with its path and type (set elements stand for their whole set).
fn collect_unknown(v: &Value, ty: &Type, path: &AttrPath, out: &mut Vec<(AttrPath, Type)>) {
    match (v, ty) {
        (Value::Unknown, _) => out.push((path.clone(), ty.clone())),
        (Value::Object(m), Type::Object(attrs)) => {
            for (name, t) in attrs {
                if let Some(x) = m.get(name) {
                    collect_unknown(x, t, &path.attr(name), out);
                }
            }
        }
        (Value::List(items), Type::List(t)) => {
            for (i, x) in items.iter().enumerate() {
                collect_unknown(x, t, &path.index(i as i64), out);
            }
        }
        // Set elements have no stable path: the whole set stands in.
        (Value::Set(_), Type::Set(_)) if !v.is_wholly_known() => {
            out.push((path.clone(), ty.clone()))
        }
        (Value::Map(m), Type::Map(t)) => {
            for (k, x) in m {
                collect_unknown(x, t, &path.key(k), out);
            }
        }
        (Value::Tuple(items), Type::Tuple(ts)) => {
            for (i, (x, t)) in items.iter().zip(ts).enumerate() {
                collect_unknown(x, t, &path.index(i as i64), out);
            }
        }
        _ => {}
    }
}

/// The known strings of the configuration (distinct, in order of appearance).
fn collect_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) if !out.contains(s) && out.len() < MAX_ROUNDS => out.push(s.clone()),
        Value::List(x) | Value::Set(x) | Value::Tuple(x) => {
            x.iter().for_each(|e| collect_strings(e, out))
        }
        Value::Map(m) | Value::Object(m) => m.values().for_each(|e| collect_strings(e, out)),
        Value::Dynamic(_, x) => collect_strings(x, out),
        _ => {}
    }
}

/// Candidate values standing in for unknowns.
struct Candidates {
    strings: Vec<String>,
}

impl Candidates {
    /// How many distinct candidates a type has (null included).
    fn count(&self, ty: &Type) -> usize {
        match ty {
            Type::String => 2 + self.strings.len(),
            Type::Number => 4,
            Type::Bool => 3,
            Type::List(_) | Type::Set(_) | Type::Map(_) => 3,
            Type::Object(attrs) => attrs.values().map(|t| self.count(t)).max().unwrap_or(1),
            Type::Tuple(ts) => ts.iter().map(|t| self.count(t)).max().unwrap_or(1),
            Type::Dynamic => 1,
        }
    }

    /// Candidate `k` of `ty` (cycling).
    fn pick(&self, ty: &Type, k: usize) -> Value {
        let n = self.count(ty);
        let k = k % n;
        match ty {
            Type::String => match k {
                0 => Value::Null,
                1 => Value::string("x"),
                _ => Value::string(self.strings[k - 2].clone()),
            },
            Type::Number => match k {
                0 => Value::Null,
                1 => Value::Number(Number::Int(0)),
                2 => Value::Number(Number::Int(1)),
                _ => Value::Number(Number::Int(1_000_000)),
            },
            Type::Bool => match k {
                0 => Value::Null,
                1 => Value::Bool(false),
                _ => Value::Bool(true),
            },
            Type::List(t) | Type::Set(t) => {
                let items = match k {
                    0 => return Value::Null,
                    1 => Vec::new(),
                    _ => vec![self.pick(t, k)],
                };
                if matches!(ty, Type::List(_)) {
                    Value::List(items)
                } else {
                    Value::Set(items)
                }
            }
            Type::Map(t) => match k {
                0 => Value::Null,
                1 => Value::Map(BTreeMap::new()),
                _ => Value::Map(BTreeMap::from([("x".to_string(), self.pick(t, k))])),
            },
            Type::Object(attrs) => Value::Object(
                attrs
                    .iter()
                    .map(|(name, t)| (name.clone(), self.pick(t, k)))
                    .collect(),
            ),
            Type::Tuple(ts) => Value::Tuple(ts.iter().map(|t| self.pick(t, k)).collect()),
            Type::Dynamic => Value::Null,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty() -> Type {
        Type::object([
            ("min", Type::Number),
            ("max", Type::Number),
            ("name", Type::String),
            ("target", Type::String),
        ])
    }

    /// min <= max; `target` must equal `name`; `name` must not be empty.
    fn check(v: &Value) -> Option<Diagnostics> {
        let num = |k: &str| v.attr(k).and_then(Value::as_number).map(|n| n.as_f64());
        let s = |k: &str| v.attr(k).and_then(Value::as_str);
        let mut d = Diagnostics::new();
        if let (Some(a), Some(b)) = (num("min"), num("max"))
            && a > b
        {
            d.push(
                Diagnostic::error("bounds", format!("min {a} > max {b}")).at(AttrPath::new("min")),
            );
        }
        if s("target") != s("name") {
            d.push(Diagnostic::error("target", "names nothing").at(AttrPath::new("target")));
        }
        if s("name") == Some("") {
            d.push(Diagnostic::error("name", "empty").at(AttrPath::new("name")));
        }
        Some(d)
    }

    fn obj(pairs: &[(&str, Value)]) -> Value {
        Value::Object(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn an_error_that_holds_whatever_the_unknowns_are_is_reported() {
        let v = obj(&[
            ("min", Value::Number(Number::Int(5))),
            ("max", Value::Number(Number::Int(2))),
            ("name", Value::Unknown),
            ("target", Value::string("")),
        ]);
        let d = independent_problems(&v, &ty(), check);
        let paths: Vec<String> = d
            .iter()
            .filter_map(|d| d.path.as_ref())
            .map(ToString::to_string)
            .collect();
        assert_eq!(paths, ["min"], "{d:?}");
    }

    #[test]
    fn an_error_that_depends_on_an_unknown_is_not_reported() {
        // max unknown: min > max holds for small candidates only.
        let v = obj(&[
            ("min", Value::Number(Number::Int(5))),
            ("max", Value::Unknown),
            ("name", Value::string("web")),
            ("target", Value::Unknown),
        ]);
        assert!(independent_problems(&v, &ty(), check).is_empty());
        // target unknown while name is known: a round picks name's own text.
        let v = obj(&[
            ("min", Value::Number(Number::Int(1))),
            ("max", Value::Number(Number::Int(2))),
            ("name", Value::string("web")),
            ("target", Value::Unknown),
        ]);
        assert!(independent_problems(&v, &ty(), check).is_empty());
    }

    #[test]
    fn a_wholly_known_configuration_is_checked_once_as_it_is() {
        let v = obj(&[
            ("min", Value::Number(Number::Int(1))),
            ("max", Value::Number(Number::Int(2))),
            ("name", Value::string("")),
            ("target", Value::string("")),
        ]);
        assert_eq!(independent_problems(&v, &ty(), check).0.len(), 1);
    }
}
