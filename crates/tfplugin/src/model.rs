//! Schema and model from one declaration: a serde + schemars model struct is the schema.
//!
//! `block_of::<M>()` reads `M`'s JSON Schema (from `schemars`) and builds the Terraform
//! [`Block`]:
//!
//! | Rust field | Terraform |
//! |---|---|
//! | `String`, `bool`, integers, floats | required `string` / `bool` / `number` attribute |
//! | `Option<T>` or `#[serde(default)]` | optional |
//! | `Vec<T>` / `BTreeSet<T>` / `BTreeMap<String, T>` of plain values | `list` / `set` / `map` attribute |
//! | a struct, `Option<struct>` | `SINGLE` nested block (a required one has min=max=1) |
//! | `Vec<struct>` / `BTreeSet<struct>` / `BTreeMap<String, struct>` | `LIST` / `SET` / `MAP` nested block |
//! | unit-variant enum | `string` with a one-of validator |
//! | doc comment | description |
//! | `#[schemars(length(..))]`, `range(..)`, `regex(..)` | validators |
//!
//! Terraform-only properties go in an `x-tf` extension:
//! `#[schemars(extend("x-tf" = {"computed": true, "use_state_for_unknown": true}))]`. Keys:
//! `computed`, `optional` (with computed: optional+computed), `sensitive`, `write_only`,
//! `requires_replace`, `requires_replace_if_configured`, `use_state_for_unknown`,
//! `default` (a JSON value; implies optional+computed), `deprecated` (message),
//! `markdown` (description is Markdown), `nesting` (`"list"`, `"set"`, `"single"`,
//! `"group"`, `"map"`) and `min_items`/`max_items` for blocks, `block: false` to make a struct
//! field an `object` attribute instead of a block.

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value as J};

use crate::codec::json::{self, Extra};
use crate::error::Error;
use crate::modifiers;
use crate::schema::{Attribute, Block, NestedBlock, Nesting};
use crate::validators;
use crate::value::{Type, Value};

/// Builds the Terraform block for model `M`.
pub fn block_of<M: JsonSchema>() -> Result<Block, Error> {
    let schema = schemars::schema_for!(M);
    let root = schema.as_value();
    let name = std::any::type_name::<M>()
        .rsplit("::")
        .next()
        .unwrap_or("model")
        .to_string();
    let cx = Cx { root, object: name };
    let mut block = cx.block(root)?;
    block.check(&cx.object)?;
    if let Some(d) = root.get("description").and_then(J::as_str) {
        block.description = d.to_string();
    }
    Ok(block)
}

struct Cx<'a> {
    root: &'a J,
    object: String,
}

/// A field schema with `$ref`s resolved and nullability split off.
struct Field<'a> {
    schema: &'a J,
    nullable: bool,
}

impl<'a> Cx<'a> {
    fn err(&self, message: String) -> Error {
        Error::Schema {
            object: self.object.clone(),
            message,
        }
    }

    fn resolve(&self, s: &'a J) -> Result<&'a J, Error> {
        match s.get("$ref").and_then(J::as_str) {
            Some(r) => {
                let name = r
                    .strip_prefix("#/$defs/")
                    .ok_or_else(|| self.err(format!("unsupported $ref {r}")))?;
                let target = self
                    .root
                    .get("$defs")
                    .and_then(|d| d.get(name))
                    .ok_or_else(|| self.err(format!("missing definition {name}")))?;
                self.resolve(target)
            }
            None => Ok(s),
        }
    }

    fn field(&self, s: &'a J) -> Result<Field<'a>, Error> {
        if let Some(any) = s.get("anyOf").and_then(J::as_array) {
            let non_null: Vec<&J> = any
                .iter()
                .filter(|x| x.get("type").and_then(J::as_str) != Some("null"))
                .collect();
            if non_null.len() == 1 && any.len() == 2 {
                return Ok(Field {
                    schema: self.resolve(non_null[0])?,
                    nullable: true,
                });
            }
            return Err(self.err("untagged unions (anyOf) are not supported in models".into()));
        }
        let s = self.resolve(s)?;
        let nullable = match s.get("type") {
            Some(J::Array(ts)) => ts.iter().any(|t| t == "null"),
            _ => false,
        };
        Ok(Field {
            schema: s,
            nullable,
        })
    }

    fn kind(s: &J) -> Option<&str> {
        match s.get("type") {
            Some(J::String(t)) => Some(t),
            Some(J::Array(ts)) => ts.iter().filter_map(J::as_str).find(|t| *t != "null"),
            _ if s.get("enum").is_some() => Some("string"),
            _ => None,
        }
    }

    fn is_struct(s: &J) -> bool {
        Self::kind(s) == Some("object") && s.get("properties").is_some()
    }

    /// The Terraform type of a plain (non-block) field.
    fn ty(&self, s: &'a J) -> Result<Type, Error> {
        let s = self.field(s)?.schema;
        match Self::kind(s) {
            Some("string") => Ok(Type::String),
            Some("integer") | Some("number") => Ok(Type::Number),
            Some("boolean") => Ok(Type::Bool),
            Some("array") => {
                let items = s
                    .get("items")
                    .ok_or_else(|| self.err("array without items".into()))?;
                let et = self.ty(items)?;
                Ok(if s.get("uniqueItems") == Some(&J::Bool(true)) {
                    Type::set(et)
                } else {
                    Type::list(et)
                })
            }
            Some("object") if s.get("properties").is_some() => {
                let mut m = std::collections::BTreeMap::new();
                if let Some(props) = s.get("properties").and_then(J::as_object) {
                    for (k, v) in props {
                        m.insert(k.clone(), self.ty(v)?);
                    }
                }
                Ok(Type::Object(m))
            }
            Some("object") => match s.get("additionalProperties") {
                Some(v) if v.is_object() => Ok(Type::map(self.ty(v)?)),
                _ => Ok(Type::map(Type::Dynamic)),
            },
            _ if s
                .as_object()
                .is_some_and(|o| o.is_empty() || o.keys().all(|k| k == "description")) =>
            {
                Ok(Type::Dynamic)
            }
            other => Err(self.err(format!("unsupported JSON schema type {other:?}"))),
        }
    }

    fn block(&self, s: &'a J) -> Result<Block, Error> {
        let empty = serde_json::Map::new();
        let props = match s.get("properties").and_then(J::as_object) {
            Some(p) => p,
            None if Self::kind(s) == Some("object") => &empty,
            None => return Err(self.err("model must be a struct".into())),
        };
        let required: Vec<&str> = s
            .get("required")
            .and_then(J::as_array)
            .map(|a| a.iter().filter_map(J::as_str).collect())
            .unwrap_or_default();
        let mut block = Block::new();
        for (name, fs) in props {
            let xtf = fs
                .get("x-tf")
                .and_then(J::as_object)
                .cloned()
                .unwrap_or_default();
            let flag = |k: &str| xtf.get(k).and_then(J::as_bool).unwrap_or(false);
            let field = self.field(fs)?;
            let inner = field.schema;
            let description = fs
                .get("description")
                .or_else(|| inner.get("description"))
                .and_then(J::as_str)
                .unwrap_or_default()
                .to_string();
            let present =
                required.contains(&name.as_str()) && !field.nullable && fs.get("default").is_none();

            // Nested blocks.
            let wants_block = xtf.get("block").and_then(J::as_bool).unwrap_or(true);
            let elem_struct = match Self::kind(inner) {
                Some("array") => inner
                    .get("items")
                    .map(|i| self.field(i))
                    .transpose()?
                    .filter(|f| Self::is_struct(f.schema)),
                Some("object") if !Self::is_struct(inner) => inner
                    .get("additionalProperties")
                    .filter(|v| v.is_object())
                    .map(|i| self.field(i))
                    .transpose()?
                    .filter(|f| Self::is_struct(f.schema)),
                _ => None,
            };
            if wants_block && (Self::is_struct(inner) || elem_struct.is_some()) {
                let (default_nesting, body) = if Self::is_struct(inner) {
                    (Nesting::Single, inner)
                } else {
                    let f = elem_struct
                        .ok_or_else(|| self.err(format!("field {name}: no element schema")))?;
                    let n = match Self::kind(inner) {
                        Some("object") => Nesting::Map,
                        _ if inner.get("uniqueItems") == Some(&J::Bool(true)) => Nesting::Set,
                        _ => Nesting::List,
                    };
                    (n, f.schema)
                };
                let nesting = match xtf.get("nesting").and_then(J::as_str) {
                    None => default_nesting,
                    Some("list") => Nesting::List,
                    Some("set") => Nesting::Set,
                    Some("single") => Nesting::Single,
                    Some("group") => Nesting::Group,
                    Some("map") => Nesting::Map,
                    Some(other) => {
                        return Err(self.err(format!("field {name}: unknown nesting {other:?}")));
                    }
                };
                let mut nb =
                    NestedBlock::new(name, nesting, self.block(body)?.description(description));
                if nesting == Nesting::Single && present {
                    nb = nb.items(1, 1);
                }
                if let Some(n) = xtf
                    .get("min_items")
                    .and_then(J::as_i64)
                    .or_else(|| inner.get("minItems").and_then(J::as_i64))
                {
                    nb.min_items = n;
                }
                if let Some(n) = xtf
                    .get("max_items")
                    .and_then(J::as_i64)
                    .or_else(|| inner.get("maxItems").and_then(J::as_i64))
                {
                    nb.max_items = n;
                }
                block.blocks.push(nb);
                continue;
            }

            let ty = self.ty(fs)?;
            let computed = flag("computed");
            let mut a = if computed && flag("optional") {
                Attribute::optional_computed(name, ty)
            } else if computed {
                Attribute::computed(name, ty)
            } else if present {
                Attribute::required(name, ty)
            } else {
                Attribute::optional(name, ty)
            };
            a.description = description;
            a.markdown = flag("markdown");
            a.sensitive = flag("sensitive");
            a.write_only = flag("write_only");
            a.deprecated = xtf
                .get("deprecated")
                .and_then(J::as_str)
                .map(str::to_string);
            if let Some(d) = xtf.get("default") {
                let v = json::decode(d, &a.ty, Extra::Reject)
                    .map_err(|e| self.err(format!("field {name}: default: {e}")))?;
                a = a.default(v);
            }
            self.add_validators(name, inner, &mut a)?;
            if flag("requires_replace") {
                a = a.plan_modifier(modifiers::requires_replace());
            }
            if flag("requires_replace_if_configured") {
                a = a.plan_modifier(modifiers::requires_replace_if_configured());
            }
            if flag("use_state_for_unknown") {
                a = a.plan_modifier(modifiers::use_state_for_unknown());
            }
            block.attributes.push(a);
        }
        Ok(block)
    }

    fn add_validators(&self, name: &str, s: &J, a: &mut Attribute) -> Result<(), Error> {
        let num = |k: &str| s.get(k).and_then(J::as_f64);
        let uint = |k: &str| s.get(k).and_then(J::as_u64).map(|n| n as usize);
        if uint("minLength").is_some() || uint("maxLength").is_some() {
            a.validators
                .push(std::sync::Arc::new(validators::length_between(
                    uint("minLength").unwrap_or(0),
                    uint("maxLength").unwrap_or(usize::MAX),
                )));
        }
        if let Some(p) = s.get("pattern").and_then(J::as_str) {
            let v = validators::matches_regex(p)
                .map_err(|e| self.err(format!("field {name}: bad pattern: {e}")))?;
            a.validators.push(std::sync::Arc::new(v));
        }
        if num("minimum").is_some() || num("maximum").is_some() {
            a.validators.push(std::sync::Arc::new(validators::between(
                num("minimum"),
                num("maximum"),
            )));
        }
        if Self::kind(s) == Some("integer") {
            a.validators
                .push(std::sync::Arc::new(validators::whole_number()));
        }
        if let Some(values) = s.get("enum").and_then(J::as_array) {
            let names: Vec<String> = values
                .iter()
                .filter_map(J::as_str)
                .map(str::to_string)
                .collect();
            a.validators
                .push(std::sync::Arc::new(validators::one_of(names)));
        }
        if uint("minItems").is_some() || uint("maxItems").is_some() {
            a.validators
                .push(std::sync::Arc::new(validators::size_between(
                    uint("minItems").unwrap_or(0),
                    uint("maxItems").unwrap_or(usize::MAX),
                )));
        }
        Ok(())
    }
}

/// Converts a value to model `M`. Unknown values read as absent (`None`), so a planned value
/// with "known after apply" attributes still converts.
pub fn from_value<M: DeserializeOwned>(v: &Value, object: &str) -> Result<M, Error> {
    let j = json::encode_for_model(v).map_err(|e| Error::Model {
        object: object.into(),
        message: e.to_string(),
    })?;
    serde_json::from_value(strip_nulls(j)).map_err(|e| Error::Model {
        object: object.into(),
        message: e.to_string(),
    })
}

/// Converts model `M` to a value of type `ty` (every attribute present, unset ones null).
pub fn to_value<M: Serialize>(m: &M, ty: &Type, object: &str) -> Result<Value, Error> {
    let j = serde_json::to_value(m).map_err(|e| Error::Model {
        object: object.into(),
        message: e.to_string(),
    })?;
    json::decode(&j, ty, Extra::Ignore).map_err(|e| Error::Model {
        object: object.into(),
        message: e.to_string(),
    })
}

fn strip_nulls(j: J) -> J {
    match j {
        J::Object(m) => J::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect::<Map<_, _>>(),
        ),
        J::Array(a) => J::Array(a.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    #[derive(Serialize, serde::Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct Port {
        #[schemars(range(min = 1, max = 65535))]
        number: u16,
    }

    /// A model exercising every mapping.
    #[derive(Serialize, serde::Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct Everything {
        /// The id.
        #[schemars(extend("x-tf" = {"computed": true}))]
        id: Option<String>,
        #[schemars(length(min = 1))]
        name: String,
        size: Option<i64>,
        #[schemars(extend("x-tf" = {"default": 3}))]
        replicas: Option<i64>,
        #[schemars(extend("x-tf" = {"sensitive": true, "optional": true, "computed": true}))]
        token: Option<String>,
        #[serde(default)]
        labels: BTreeMap<String, String>,
        zones: BTreeSet<String>,
        ports: Vec<Port>,
        main_port: Port,
        extra: Option<Port>,
        #[schemars(extend("x-tf" = {"nesting": "set"}))]
        more: Vec<Port>,
    }

    #[test]
    fn one_model_declares_types_flags_and_blocks() {
        let b = block_of::<Everything>().unwrap_or_else(|e| panic!("{e}"));
        let a = |n: &str| {
            b.get_attribute(n)
                .unwrap_or_else(|| panic!("attribute {n}"))
        };
        assert!(a("id").computed && !a("id").optional && a("id").description == "The id.");
        assert!(
            a("name").required && a("name").ty == Type::String && a("name").validators.len() == 1
        );
        assert!(a("size").optional && a("size").ty == Type::Number);
        assert!(
            a("replicas").optional
                && a("replicas").computed
                && a("replicas").default == Some(Value::from(3i64))
        );
        assert!(a("token").sensitive && a("token").optional && a("token").computed);
        assert!(a("labels").optional && a("labels").ty == Type::map(Type::String));
        assert!(a("zones").required && a("zones").ty == Type::set(Type::String));
        let blk = |n: &str| b.get_block(n).unwrap_or_else(|| panic!("block {n}"));
        assert_eq!(blk("ports").nesting, Nesting::List);
        assert_eq!(
            (
                blk("main_port").nesting,
                blk("main_port").min_items,
                blk("main_port").max_items
            ),
            (Nesting::Single, 1, 1)
        );
        assert_eq!(
            (blk("extra").nesting, blk("extra").min_items),
            (Nesting::Single, 0)
        );
        assert_eq!(blk("more").nesting, Nesting::Set);
        assert!(
            blk("ports")
                .block
                .get_attribute("number")
                .is_some_and(|n| n.required && n.validators.len() == 2)
        );
    }

    #[test]
    fn unknown_values_read_as_absent_in_the_model() {
        #[derive(Debug, serde::Deserialize)]
        struct M {
            id: Option<String>,
            name: String,
        }
        let v = Value::Object(
            [
                ("id".to_string(), Value::Unknown),
                ("name".to_string(), Value::from("a")),
            ]
            .into_iter()
            .collect(),
        );
        let m: M = from_value(&v, "m").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((m.id, m.name.as_str()), (None, "a"));
    }
}
