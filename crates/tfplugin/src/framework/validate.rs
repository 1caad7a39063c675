//! Runs attribute validators over a configuration value, skipping unknown and null values.

use crate::diag::Diagnostics;
use crate::framework::erased::ErasedResource;
use crate::path::AttrPath;
use crate::schema::{Block, Nesting};
use crate::value::Value;

/// `ValidateResourceConfig`: attribute validators, then the resource's own checks (raw and
/// typed, the typed ones over the rounds that stand in for unknown values).
pub(crate) fn validate_resource<D>(res: &dyn ErasedResource<D>, config: &Value) -> Diagnostics {
    validate_config(&res.wire().block, config, |c| res.validate(c))
}

/// The attribute validators of `block` over `config`, then the object's own checks (`own`:
/// a resource's, a data source's or the provider's `validate`).
pub(crate) fn validate_config(
    block: &Block,
    config: &Value,
    own: impl FnOnce(&Value) -> Diagnostics,
) -> Diagnostics {
    let mut diags = Diagnostics::new();
    validate_block(block, config, &AttrPath::root(), &mut diags);
    diags.extend(own(config));
    diags
}

/// Validates `config` (an object of `block`'s type) at `path`.
pub(crate) fn validate_block(
    block: &Block,
    config: &Value,
    path: &AttrPath,
    diags: &mut Diagnostics,
) {
    let Some(obj) = config.as_object() else {
        return;
    };
    for a in &block.attributes {
        let v = obj.get(&a.name).unwrap_or(&Value::Null);
        if v.is_null() || v.is_unknown() {
            continue;
        }
        let p = path.attr(&a.name);
        for val in &a.validators {
            val.validate(v, &p, diags);
        }
        if let Some(msg) = &a.deprecated {
            diags.push(
                crate::diag::Diagnostic::warning("Deprecated attribute", msg.clone()).at(p.clone()),
            );
        }
    }
    for b in &block.blocks {
        let v = obj.get(&b.name).unwrap_or(&Value::Null);
        let p = path.attr(&b.name);
        match (b.nesting, v) {
            (Nesting::Single | Nesting::Group, Value::Object(_)) => {
                validate_block(&b.block, v, &p, diags)
            }
            (Nesting::List, Value::List(items)) => {
                for (i, item) in items.iter().enumerate() {
                    validate_block(&b.block, item, &p.index(i as i64), diags);
                }
            }
            // Set elements have no path of their own: point at the block.
            (Nesting::Set, Value::Set(items)) => {
                for item in items {
                    validate_block(&b.block, item, &p, diags);
                }
            }
            (Nesting::Map, Value::Map(m)) => {
                for (k, item) in m {
                    validate_block(&b.block, item, &p.key(k), diags);
                }
            }
            _ => {}
        }
    }
}
