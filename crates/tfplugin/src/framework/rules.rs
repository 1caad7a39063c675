//! Terraform's plan and apply consistency rules, checked by the framework before it replies,
//! so a provider bug fails in our tests with a precise message instead of Terraform's
//! "Provider produced invalid plan / inconsistent result after apply" in a user's run.
//! See `docs/design/plan-rules.md`.

use crate::path::AttrPath;
use crate::schema::{Block, Nesting};
use crate::value::Value;

/// One broken rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub path: AttrPath,
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

fn v(path: &AttrPath, message: String) -> Violation {
    Violation {
        path: path.clone(),
        message,
    }
}

fn get<'a>(o: &'a Value, name: &str) -> &'a Value {
    o.attr(name).unwrap_or(&Value::Null)
}

/// Checks a planned object against config and prior (`AssertPlanValid`): non-computed
/// attributes must equal config (or prior when both are set and the provider kept the prior
/// value), nothing configured may become unknown or null, write-only attributes are null,
/// list block counts match config. `prior` is null on create.
pub fn check_plan(block: &Block, prior: &Value, config: &Value, planned: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    if config.is_null() {
        if !planned.is_null() {
            out.push(v(
                &AttrPath::root(),
                "a destroy must be planned as null".into(),
            ));
        }
        return out;
    }
    if planned.is_null() {
        out.push(v(
            &AttrPath::root(),
            "planned for absence but the configuration wants the object".into(),
        ));
        return out;
    }
    plan_block(block, prior, config, planned, &AttrPath::root(), &mut out);
    out
}

fn plan_block(
    block: &Block,
    prior: &Value,
    config: &Value,
    planned: &Value,
    path: &AttrPath,
    out: &mut Vec<Violation>,
) {
    if planned.is_unknown() {
        out.push(v(
            path,
            "a whole block must not be planned as unknown; set its attributes to unknown instead"
                .into(),
        ));
        return;
    }
    if !matches!(planned, Value::Object(_)) {
        out.push(v(path, "planned value is not an object".into()));
        return;
    }
    // The path of an attribute or nested block, and its planned, configured and prior values.
    let member = |name: &str| {
        (
            path.attr(name),
            get(planned, name),
            get(config, name),
            get(prior, name),
        )
    };
    for a in &block.attributes {
        let (p, pv, cv, rv) = member(&a.name);
        if a.write_only {
            if !pv.is_null() {
                out.push(v(
                    &p,
                    "write-only attributes must be planned as null".into(),
                ));
            }
            continue;
        }
        if a.computed && cv.is_null() {
            continue;
        }
        if pv.equals(cv) {
            continue;
        }
        if !rv.is_null() && !cv.is_null() && pv.equals(rv) {
            continue;
        }
        if cv.is_null() && !pv.is_null() {
            out.push(v(
                &p,
                format!("planned value {pv:?} for a non-computed attribute"),
            ));
        } else if pv.is_unknown() {
            out.push(v(&p, "planned unknown for a configured value".into()));
        } else {
            out.push(v(
                &p,
                format!(
                    "planned value {pv:?} does not match config value {cv:?} nor prior value {rv:?}"
                ),
            ));
        }
    }
    for b in &block.blocks {
        let (p, pv, cv, rv) = member(&b.name);
        // Planned exactly as configured (e.g. a dynamic block whose for_each is unknown).
        if pv.equals(cv) {
            continue;
        }
        if pv.is_unknown() {
            out.push(v(
                &p,
                "a nested block must not be planned as unknown".into(),
            ));
            continue;
        }
        match b.nesting {
            Nesting::Single | Nesting::Group => {
                if cv.is_null() && !pv.is_null() && b.nesting == Nesting::Single {
                    out.push(v(
                        &p,
                        "planned a block the configuration does not have".into(),
                    ));
                } else if !cv.is_null() && !cv.is_unknown() {
                    plan_block(&b.block, rv, cv, pv, &p, out);
                }
            }
            Nesting::List => {
                let (Some(pe), Some(ce)) = (pv.as_elements(), cv.as_elements()) else {
                    if !cv.is_unknown() && pv.is_null() {
                        out.push(v(
                            &p,
                            "list blocks must be planned as a list, not null".into(),
                        ));
                    }
                    continue;
                };
                if pe.len() != ce.len() {
                    out.push(v(
                        &p,
                        format!(
                            "planned {} blocks but the configuration has {}",
                            pe.len(),
                            ce.len()
                        ),
                    ));
                    continue;
                }
                let re = rv.as_elements().unwrap_or(&[]);
                for (i, (pi, ci)) in pe.iter().zip(ce).enumerate() {
                    plan_block(
                        &b.block,
                        re.get(i).unwrap_or(&Value::Null),
                        ci,
                        pi,
                        &p.index(i as i64),
                        out,
                    );
                }
            }
            Nesting::Set | Nesting::Map => {
                if pv.is_null() && !cv.is_unknown() {
                    out.push(v(
                        &p,
                        "set and map blocks must be planned as a collection, not null".into(),
                    ));
                }
            }
        }
    }
}

/// Checks an apply result against the plan: no unknowns, every known planned value unchanged,
/// null exactly when the plan was null.
pub fn check_apply(planned: &Value, new: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    let root = AttrPath::root();
    match (planned.is_null(), new.is_null()) {
        (true, false) => {
            out.push(v(&root, "the object must be null after a delete".into()));
            return out;
        }
        (false, true) => {
            out.push(v(
                &root,
                "the object must not be null after a create or update".into(),
            ));
            return out;
        }
        _ => {}
    }
    unknowns(new, &root, &mut out);
    compatible(planned, new, &root, &mut out);
    out
}

/// Checks a refresh result: wholly known.
pub fn check_read(new: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    unknowns(new, &AttrPath::root(), &mut out);
    out
}

fn unknowns(val: &Value, path: &AttrPath, out: &mut Vec<Violation>) {
    match val {
        Value::Unknown => out.push(v(path, "value is still unknown after the operation".into())),
        Value::List(items) | Value::Tuple(items) | Value::Set(items) => {
            for (i, x) in items.iter().enumerate() {
                unknowns(x, &path.index(i as i64), out);
            }
        }
        Value::Object(m) => {
            for (k, x) in m {
                unknowns(x, &path.attr(k), out);
            }
        }
        Value::Map(m) => {
            for (k, x) in m {
                unknowns(x, &path.key(k), out);
            }
        }
        Value::Dynamic(_, x) => unknowns(x, path, out),
        _ => {}
    }
}

fn compatible(planned: &Value, new: &Value, path: &AttrPath, out: &mut Vec<Violation>) {
    match (planned, new) {
        (Value::Unknown, _) => {}
        (Value::Object(pm), Value::Object(nm)) => {
            for (k, pv) in pm {
                compatible(pv, nm.get(k).unwrap_or(&Value::Null), &path.attr(k), out);
            }
        }
        (Value::Map(pm), Value::Map(nm)) => {
            if pm.len() != nm.len() || pm.keys().any(|k| !nm.contains_key(k)) {
                out.push(v(path, format!("was {planned:?}, but now {new:?}")));
                return;
            }
            for (k, pv) in pm {
                compatible(pv, &nm[k], &path.key(k), out);
            }
        }
        (Value::List(pe), Value::List(ne)) | (Value::Tuple(pe), Value::Tuple(ne)) => {
            if pe.len() != ne.len() {
                out.push(v(
                    path,
                    format!("planned {} elements, but now {}", pe.len(), ne.len()),
                ));
                return;
            }
            for (i, (pv, nv)) in pe.iter().zip(ne).enumerate() {
                compatible(pv, nv, &path.index(i as i64), out);
            }
        }
        (Value::Set(pe), Value::Set(ne)) => {
            if planned.is_wholly_known() {
                if !planned.equals(new) {
                    out.push(v(path, format!("was {planned:?}, but now {new:?}")));
                }
            } else if ne.len() > pe.len() {
                out.push(v(
                    path,
                    format!(
                        "set grew from {} planned elements to {}",
                        pe.len(),
                        ne.len()
                    ),
                ));
            }
        }
        (Value::Dynamic(pt, pv), Value::Dynamic(nt, nv)) if pt == nt => {
            compatible(pv, nv, path, out)
        }
        (p, n) => {
            if !p.equals(n) {
                out.push(v(path, format!("was {p:?}, but now {n:?}")));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Attribute;
    use crate::value::Type;
    use std::collections::BTreeMap;

    fn obj(pairs: &[(&str, Value)]) -> Value {
        Value::Object(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect::<BTreeMap<_, _>>(),
        )
    }

    fn block() -> Block {
        Block::new()
            .attribute(Attribute::required("name", Type::String))
            .attribute(Attribute::computed("id", Type::String))
    }

    #[test]
    fn plan_that_changes_a_configured_value_is_rejected() {
        let config = obj(&[("name", "a".into()), ("id", Value::Null)]);
        let planned = obj(&[("name", "A".into()), ("id", Value::Unknown)]);
        let errs = check_plan(&block(), &Value::Null, &config, &planned);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].path, AttrPath::new("name"));
    }

    #[test]
    fn plan_may_keep_the_prior_value_of_a_configured_attribute() {
        let prior = obj(&[("name", "A".into()), ("id", "1".into())]);
        let config = obj(&[("name", "a".into()), ("id", Value::Null)]);
        let planned = obj(&[("name", "A".into()), ("id", "1".into())]);
        assert!(check_plan(&block(), &prior, &config, &planned).is_empty());
    }

    #[test]
    fn apply_result_must_keep_known_planned_values() {
        let planned = obj(&[("name", "a".into()), ("id", Value::Unknown)]);
        let new = obj(&[("name", "b".into()), ("id", "1".into())]);
        let errs = check_apply(&planned, &new);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].path, AttrPath::new("name"));
    }

    #[test]
    fn apply_result_must_be_wholly_known() {
        let planned = obj(&[("name", "a".into()), ("id", Value::Unknown)]);
        let new = obj(&[("name", "a".into()), ("id", Value::Unknown)]);
        assert_eq!(check_apply(&planned, &new).len(), 1);
    }

    #[test]
    fn unknown_block_planned_as_configured_is_valid() {
        let b = Block::new().block(crate::schema::NestedBlock::new(
            "rule",
            Nesting::List,
            Block::new().attribute(Attribute::required("port", Type::Number)),
        ));
        let config = obj(&[("rule", Value::Unknown)]);
        assert!(check_plan(&b, &Value::Null, &config, &config).is_empty());
        let known = obj(&[("rule", Value::List(vec![]))]);
        assert_eq!(
            check_plan(&b, &Value::Null, &known, &config).len(),
            1,
            "unknown for a known block"
        );
    }

    #[test]
    fn delete_must_end_in_null() {
        assert_eq!(
            check_apply(&Value::Null, &obj(&[("name", "a".into())])).len(),
            1
        );
    }
}
