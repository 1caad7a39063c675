//! The plan pipeline (`PlanResourceChange` for a create or update):
//! proposed → defaults → unset computed attributes unknown (only when something changes) →
//! attribute plan modifiers → resource `modify_plan` → consistency rules.

use crate::diag::{Diagnostic, Diagnostics};
use crate::framework::erased::ErasedResource;
use crate::framework::resource::PlanChange;
use crate::framework::rules;
use crate::modifiers::{ModifyPlanRequest, ModifyPlanResponse};
use crate::path::AttrPath;
use crate::schema::{Block, Nesting};
use crate::value::Value;

/// The planned state and the paths that force replacement.
#[derive(Debug)]
pub(crate) struct Planned {
    pub planned: Value,
    pub requires_replace: Vec<AttrPath>,
    /// Warnings `modify_plan` added.
    pub warnings: Diagnostics,
}

pub(crate) fn plan<D>(
    res: &dyn ErasedResource<D>,
    prior: &Value,
    proposed: &Value,
    config: &Value,
) -> Result<Planned, Diagnostics> {
    let block = &res.wire().block;
    let mut planned = proposed.clone();
    apply_defaults(block, &mut planned, config);
    // A number equal to the prior one keeps the prior representation (allowed: "planned equals
    // prior"), so an f64 in state and the same number as decimal text in config is no change
    // even for Terraform 1.0.x's exact comparison.
    if !prior.is_null() {
        crate::value::align_numbers(prior, &mut planned);
    }
    if prior.is_null() || !planned.equals(prior) {
        mark_unknown(block, &mut planned, config);
    }
    let mut requires_replace = Vec::new();
    let prior_opt = if prior.is_null() { None } else { Some(prior) };
    run_modifiers(
        block,
        &AttrPath::root(),
        &mut planned,
        config,
        prior_opt,
        &mut requires_replace,
    );

    let mut change = PlanChange {
        prior: prior_opt.cloned(),
        config: config.clone(),
        planned,
        requires_replace,
        warnings: Diagnostics::new(),
    };
    res.modify_plan(&mut change)?;
    let PlanChange {
        planned,
        mut requires_replace,
        warnings,
        ..
    } = change;

    no_bugs(
        res.type_name(),
        "an invalid plan",
        &rules::check_plan(block, prior, config, &planned),
        block,
    )?;
    if prior.is_null() {
        requires_replace.clear();
    }
    requires_replace.sort();
    requires_replace.dedup();
    for p in &requires_replace {
        if p.get(&planned).is_none() && p.get(prior).is_none() {
            return Err(Diagnostic::error(
                "Provider produced an invalid plan",
                format!("{}: requires_replace names {p}, which does not exist; this is a bug in the provider", res.type_name()),
            )
            .into());
        }
    }
    Ok(Planned {
        planned,
        requires_replace,
        warnings,
    })
}

/// The diagnostic for a framework-detected provider bug.
pub(crate) fn bug(
    type_name: &str,
    what: &str,
    violations: &[rules::Violation],
    block: &Block,
) -> Diagnostics {
    let mut d = Diagnostics::new();
    for v in violations {
        // Never echo values of sensitive attributes into a diagnostic.
        let message = if is_sensitive(block, &v.path) {
            "the value broke a consistency rule (sensitive attribute: values hidden)".to_string()
        } else {
            v.message.clone()
        };
        d.push(
            Diagnostic::error(
                format!("Provider produced {what}"),
                format!(
                    "{type_name}.{}: {message}. This is a bug in the provider (caught by the tfplugin framework).",
                    v.path
                ),
            )
            .at(v.path.clone()),
        );
    }
    d
}

/// `Ok` when a result broke no rule, else the provider-bug diagnostic of [`bug`].
pub(crate) fn no_bugs(
    type_name: &str,
    what: &str,
    violations: &[rules::Violation],
    block: &Block,
) -> Result<(), Diagnostics> {
    if violations.is_empty() {
        Ok(())
    } else {
        Err(bug(type_name, what, violations, block))
    }
}

/// True when `path` reaches into a sensitive attribute (or is the root: a whole object may
/// hold sensitive values).
pub(crate) fn is_sensitive(block: &Block, path: &AttrPath) -> bool {
    let mut cur = block;
    let mut steps = path.steps().iter().filter_map(|s| match s {
        crate::path::Step::Attr(n) => Some(n.as_str()),
        _ => None,
    });
    let Some(mut name) = steps.next() else {
        return block.attributes.iter().any(|a| a.sensitive)
            || block
                .blocks
                .iter()
                .any(|b| is_sensitive(&b.block, &AttrPath::root()));
    };
    loop {
        if let Some(a) = cur.get_attribute(name) {
            return a.sensitive;
        }
        match cur.get_block(name) {
            Some(b) => cur = &b.block,
            None => return false,
        }
        match steps.next() {
            Some(n) => name = n,
            None => return is_sensitive(cur, &AttrPath::root()),
        }
    }
}

fn apply_defaults(block: &Block, planned: &mut Value, config: &Value) {
    for_each_object(block, planned, config, &mut |block, planned, config| {
        let Some(obj) = planned.as_object_mut() else {
            return;
        };
        for a in &block.attributes {
            if let Some(d) = &a.default
                && config.attr(&a.name).is_none_or(Value::is_null)
            {
                obj.insert(a.name.clone(), d.clone());
            }
        }
    });
}

fn mark_unknown(block: &Block, planned: &mut Value, config: &Value) {
    for_each_object(block, planned, config, &mut |block, planned, config| {
        let Some(obj) = planned.as_object_mut() else {
            return;
        };
        for a in &block.attributes {
            if a.computed && a.default.is_none() && config.attr(&a.name).is_none_or(Value::is_null)
            {
                obj.insert(a.name.clone(), Value::Unknown);
            }
        }
    });
}

/// Calls `f` on the root object and on every nested block object that can be correlated with
/// its configuration (single, group, list by index, map by key; not set elements).
fn for_each_object(
    block: &Block,
    planned: &mut Value,
    config: &Value,
    f: &mut dyn FnMut(&Block, &mut Value, &Value),
) {
    if !matches!(planned, Value::Object(_)) {
        return;
    }
    f(block, planned, config);
    for b in &block.blocks {
        let cv = config.attr(&b.name).cloned().unwrap_or(Value::Null);
        let Some(pv) = planned.as_object_mut().and_then(|o| o.get_mut(&b.name)) else {
            continue;
        };
        match (b.nesting, pv) {
            (Nesting::Single | Nesting::Group, pv @ Value::Object(_)) => {
                for_each_object(&b.block, pv, &cv, f)
            }
            (Nesting::List, Value::List(items)) => {
                let ce = cv.as_elements().unwrap_or(&[]).to_vec();
                for (i, item) in items.iter_mut().enumerate() {
                    for_each_object(&b.block, item, ce.get(i).unwrap_or(&Value::Null), f);
                }
            }
            (Nesting::Map, Value::Map(m)) => {
                for (k, item) in m.iter_mut() {
                    let ci = match &cv {
                        Value::Map(cm) => cm.get(k).cloned().unwrap_or(Value::Null),
                        _ => Value::Null,
                    };
                    for_each_object(&b.block, item, &ci, f);
                }
            }
            _ => {}
        }
    }
}

fn run_modifiers(
    block: &Block,
    path: &AttrPath,
    planned: &mut Value,
    config: &Value,
    prior: Option<&Value>,
    requires_replace: &mut Vec<AttrPath>,
) {
    let Some(obj) = planned.as_object_mut() else {
        return;
    };
    for a in &block.attributes {
        if a.plan_modifiers.is_empty() {
            continue;
        }
        let p = path.attr(&a.name);
        let cv = config.attr(&a.name).unwrap_or(&Value::Null);
        let rv = prior.map(|r| r.attr(&a.name).unwrap_or(&Value::Null));
        let current = obj.get(&a.name).cloned().unwrap_or(Value::Null);
        let mut resp = ModifyPlanResponse {
            planned: current,
            requires_replace: false,
        };
        for m in &a.plan_modifiers {
            m.modify(
                &ModifyPlanRequest {
                    path: &p,
                    config: cv,
                    prior: rv,
                },
                &mut resp,
            );
        }
        obj.insert(a.name.clone(), resp.planned);
        if resp.requires_replace {
            requires_replace.push(p);
        }
    }
    for b in &block.blocks {
        let p = path.attr(&b.name);
        let cv = config.attr(&b.name).cloned().unwrap_or(Value::Null);
        let rv = prior.and_then(|r| r.attr(&b.name)).cloned();
        let Some(pv) = obj.get_mut(&b.name) else {
            continue;
        };
        match (b.nesting, pv) {
            (Nesting::Single | Nesting::Group, pv @ Value::Object(_)) => {
                let rv = rv.filter(|r| !r.is_null());
                run_modifiers(&b.block, &p, pv, &cv, rv.as_ref(), requires_replace);
            }
            (Nesting::List, Value::List(items)) => {
                let ce = cv.as_elements().unwrap_or(&[]).to_vec();
                let re = rv
                    .as_ref()
                    .and_then(Value::as_elements)
                    .unwrap_or(&[])
                    .to_vec();
                for (i, item) in items.iter_mut().enumerate() {
                    run_modifiers(
                        &b.block,
                        &p.index(i as i64),
                        item,
                        ce.get(i).unwrap_or(&Value::Null),
                        re.get(i),
                        requires_replace,
                    );
                }
            }
            (Nesting::Map, Value::Map(m)) => {
                for (k, item) in m.iter_mut() {
                    let ci = match &cv {
                        Value::Map(cm) => cm.get(k).cloned().unwrap_or(Value::Null),
                        _ => Value::Null,
                    };
                    let ri = match &rv {
                        Some(Value::Map(rm)) => rm.get(k).cloned(),
                        _ => None,
                    };
                    run_modifiers(
                        &b.block,
                        &p.key(k),
                        item,
                        &ci,
                        ri.as_ref(),
                        requires_replace,
                    );
                }
            }
            _ => {}
        }
    }
}
