//! Schemas: what Terraform sees (`GetProviderSchema`) plus what the framework enforces
//! (validators, defaults, plan modifiers). Build one by hand with the builders here or derive
//! it from a model struct with [`crate::model`].

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::Error;
use crate::modifiers::PlanModifier;
use crate::pb::tfplugin6 as pb;
use crate::validators::Validator;
use crate::value::{Type, Value};

/// How nested blocks of one type repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nesting {
    Single,
    Group,
    List,
    Set,
    Map,
}

/// One attribute of a block.
#[derive(Clone)]
pub struct Attribute {
    pub name: String,
    pub ty: Type,
    pub description: String,
    pub markdown: bool,
    pub required: bool,
    pub optional: bool,
    pub computed: bool,
    pub sensitive: bool,
    pub write_only: bool,
    pub deprecated: Option<String>,
    /// Used in the plan when the configuration leaves the attribute null (needs `computed`).
    pub default: Option<Value>,
    pub validators: Vec<Arc<dyn Validator>>,
    pub plan_modifiers: Vec<Arc<dyn PlanModifier>>,
    /// A nested attribute (protocol 6 `nested_type`): `ty` is its object (or collection of
    /// objects) type and these are the object's attributes. Written `name = { ... }` (or a
    /// list of such objects) in configurations, where a block would be `name { ... }`.
    pub nested: Option<(Nesting, Vec<Attribute>)>,
}

impl std::fmt::Debug for Attribute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attribute")
            .field("name", &self.name)
            .field("ty", &self.ty)
            .field("required", &self.required)
            .field("optional", &self.optional)
            .field("computed", &self.computed)
            .field("sensitive", &self.sensitive)
            .field("default", &self.default)
            .field(
                "validators",
                &self
                    .validators
                    .iter()
                    .map(|v| v.description())
                    .collect::<Vec<_>>(),
            )
            .field("plan_modifiers", &self.plan_modifiers.len())
            .finish()
    }
}

impl Attribute {
    fn new(name: &str, ty: Type) -> Attribute {
        Attribute {
            name: name.to_string(),
            ty,
            description: String::new(),
            markdown: false,
            required: false,
            optional: false,
            computed: false,
            sensitive: false,
            write_only: false,
            deprecated: None,
            default: None,
            validators: Vec::new(),
            plan_modifiers: Vec::new(),
            nested: None,
        }
    }
    /// An argument the configuration must set.
    pub fn required(name: &str, ty: Type) -> Attribute {
        Attribute {
            required: true,
            ..Attribute::new(name, ty)
        }
    }
    /// An argument the configuration may set.
    pub fn optional(name: &str, ty: Type) -> Attribute {
        Attribute {
            optional: true,
            ..Attribute::new(name, ty)
        }
    }
    /// A value only the provider sets.
    pub fn computed(name: &str, ty: Type) -> Attribute {
        Attribute {
            computed: true,
            ..Attribute::new(name, ty)
        }
    }
    /// An argument the configuration may set, else the provider decides.
    pub fn optional_computed(name: &str, ty: Type) -> Attribute {
        Attribute {
            optional: true,
            computed: true,
            ..Attribute::new(name, ty)
        }
    }
    pub fn description(mut self, d: impl Into<String>) -> Self {
        self.description = d.into();
        self
    }
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }
    pub fn write_only(mut self) -> Self {
        self.write_only = true;
        self
    }
    pub fn deprecated(mut self, message: impl Into<String>) -> Self {
        self.deprecated = Some(message.into());
        self
    }
    /// A default for an unset argument; makes the attribute optional+computed.
    pub fn default(mut self, v: impl Into<Value>) -> Self {
        self.default = Some(v.into());
        self.required = false;
        self.optional = true;
        self.computed = true;
        self
    }
    pub fn validator(mut self, v: impl Validator + 'static) -> Self {
        self.validators.push(Arc::new(v));
        self
    }
    pub fn plan_modifier(mut self, m: impl PlanModifier + 'static) -> Self {
        self.plan_modifiers.push(Arc::new(m));
        self
    }

    fn to_pb(&self) -> pb::schema::Attribute {
        use pb::schema::object::NestingMode;
        let nested_type = self
            .nested
            .as_ref()
            .map(|(nesting, attrs)| pb::schema::Object {
                attributes: attrs.iter().map(Attribute::to_pb).collect(),
                nesting: match nesting {
                    Nesting::Single | Nesting::Group => NestingMode::Single,
                    Nesting::List => NestingMode::List,
                    Nesting::Set => NestingMode::Set,
                    Nesting::Map => NestingMode::Map,
                } as i32,
                ..Default::default()
            });
        pb::schema::Attribute {
            name: self.name.clone(),
            r#type: if nested_type.is_some() {
                Vec::new()
            } else {
                self.ty.to_json_bytes()
            },
            nested_type,
            description: self.description.clone(),
            required: self.required,
            optional: self.optional,
            computed: self.computed,
            sensitive: self.sensitive,
            description_kind: if self.markdown {
                pb::StringKind::Markdown as i32
            } else {
                pb::StringKind::Plain as i32
            },
            deprecated: self.deprecated.is_some(),
            write_only: self.write_only,
            deprecation_message: self.deprecated.clone().unwrap_or_default(),
        }
    }
}

/// A nested block type within a block.
#[derive(Debug, Clone)]
pub struct NestedBlock {
    pub name: String,
    pub nesting: Nesting,
    pub block: Block,
    pub min_items: i64,
    pub max_items: i64,
}

impl NestedBlock {
    pub fn new(name: &str, nesting: Nesting, block: Block) -> NestedBlock {
        NestedBlock {
            name: name.to_string(),
            nesting,
            block,
            min_items: 0,
            max_items: 0,
        }
    }
    pub fn items(mut self, min: i64, max: i64) -> Self {
        self.min_items = min;
        self.max_items = max;
        self
    }
    /// The type of this block's value within its parent object.
    pub fn ty(&self) -> Type {
        let obj = self.block.ty();
        match self.nesting {
            Nesting::Single | Nesting::Group => obj,
            Nesting::List => Type::list(obj),
            Nesting::Set => Type::set(obj),
            Nesting::Map => Type::map(obj),
        }
    }
}

/// A block: attributes plus nested block types. A resource's whole value is its root block.
#[derive(Debug, Clone, Default)]
pub struct Block {
    pub attributes: Vec<Attribute>,
    pub blocks: Vec<NestedBlock>,
    pub description: String,
    pub markdown: bool,
    pub deprecated: Option<String>,
}

impl Block {
    pub fn new() -> Block {
        Block::default()
    }
    pub fn attribute(mut self, a: Attribute) -> Self {
        self.attributes.push(a);
        self
    }
    pub fn block(mut self, b: NestedBlock) -> Self {
        self.blocks.push(b);
        self
    }
    pub fn description(mut self, d: impl Into<String>) -> Self {
        self.description = d.into();
        self
    }
    /// The implied object type of this block.
    pub fn ty(&self) -> Type {
        let mut m = BTreeMap::new();
        for a in &self.attributes {
            m.insert(a.name.clone(), a.ty.clone());
        }
        for b in &self.blocks {
            m.insert(b.name.clone(), b.ty());
        }
        Type::Object(m)
    }
    pub fn get_attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }
    pub fn get_attribute_mut(&mut self, name: &str) -> Option<&mut Attribute> {
        self.attributes.iter_mut().find(|a| a.name == name)
    }
    pub fn get_block(&self, name: &str) -> Option<&NestedBlock> {
        self.blocks.iter().find(|b| b.name == name)
    }
    pub fn get_block_mut(&mut self, name: &str) -> Option<&mut NestedBlock> {
        self.blocks.iter_mut().find(|b| b.name == name)
    }

    /// This block with every nested block turned into a nested attribute (protocol 6
    /// `nested_type`), recursively: the same value type, written with `=` in configurations.
    /// Validators and plan modifiers inside the converted blocks are not run by the plan
    /// pipeline (it walks blocks); used to measure what the two forms cost Terraform.
    pub fn with_nested_attributes(mut self) -> Block {
        for b in std::mem::take(&mut self.blocks) {
            let ty = b.ty();
            let inner = b.block.with_nested_attributes();
            let mut a = if b.min_items > 0 {
                Attribute::required(&b.name, ty)
            } else {
                Attribute::optional(&b.name, ty)
            };
            a.description = inner.description.clone();
            a.nested = Some((b.nesting, inner.attributes));
            self.attributes.push(a);
        }
        self
    }

    /// Checks the rules Terraform applies when it loads a schema, so a bad schema fails at
    /// provider start (and in unit tests) rather than in front of a user.
    pub fn check(&self, object: &str) -> Result<(), Error> {
        let err = |message: String| Error::Schema {
            object: object.to_string(),
            message,
        };
        let valid_name = |n: &str| {
            !n.is_empty()
                && n.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        let mut seen = std::collections::BTreeSet::new();
        // Attribute and block names share one namespace.
        let mut check_name = |kind: &str, name: &str| {
            if !valid_name(name) {
                return Err(err(format!("{kind} name {name:?} must match ^[a-z0-9_]+$")));
            }
            if !seen.insert(name.to_string()) {
                return Err(err(format!("name {name:?} is declared twice")));
            }
            Ok(())
        };
        for a in &self.attributes {
            check_name("attribute", &a.name)?;
            if !(a.required || a.optional || a.computed) {
                return Err(err(format!(
                    "attribute {:?} must be required, optional or computed",
                    a.name
                )));
            }
            if a.required && (a.optional || a.computed) {
                return Err(err(format!(
                    "attribute {:?} cannot be required and optional/computed",
                    a.name
                )));
            }
            if a.default.is_some() && !(a.optional && a.computed) {
                return Err(err(format!(
                    "attribute {:?} has a default, so it must be optional and computed",
                    a.name
                )));
            }
        }
        for b in &self.blocks {
            check_name("block", &b.name)?;
            match b.nesting {
                Nesting::Single if !(b.min_items == b.max_items && b.min_items <= 1) => {
                    return Err(err(format!(
                        "single block {:?} needs min_items = max_items = 0 or 1",
                        b.name
                    )));
                }
                Nesting::Group | Nesting::Map if b.min_items != 0 || b.max_items != 0 => {
                    return Err(err(format!(
                        "block {:?} cannot have min_items/max_items",
                        b.name
                    )));
                }
                _ => {}
            }
            b.block.check(&format!("{object}.{}", b.name))?;
        }
        Ok(())
    }

    pub(crate) fn to_pb(&self) -> pb::schema::Block {
        pb::schema::Block {
            version: 0,
            attributes: self.attributes.iter().map(Attribute::to_pb).collect(),
            block_types: self
                .blocks
                .iter()
                .map(|b| pb::schema::NestedBlock {
                    type_name: b.name.clone(),
                    block: Some(b.block.to_pb()),
                    nesting: match b.nesting {
                        Nesting::Single => pb::schema::nested_block::NestingMode::Single,
                        Nesting::Group => pb::schema::nested_block::NestingMode::Group,
                        Nesting::List => pb::schema::nested_block::NestingMode::List,
                        Nesting::Set => pb::schema::nested_block::NestingMode::Set,
                        Nesting::Map => pb::schema::nested_block::NestingMode::Map,
                    } as i32,
                    min_items: b.min_items,
                    max_items: b.max_items,
                })
                .collect(),
            description: self.description.clone(),
            description_kind: if self.markdown {
                pb::StringKind::Markdown as i32
            } else {
                pb::StringKind::Plain as i32
            },
            deprecated: self.deprecated.is_some(),
            deprecation_message: self.deprecated.clone().unwrap_or_default(),
        }
    }
}

/// A versioned schema: a resource's, a data source's or the provider's own.
#[derive(Debug, Clone)]
pub struct Schema {
    /// Stored by Terraform as `schema_version`; bump it and handle the old version in
    /// `Resource::upgrade_state` when the shape of the state changes.
    pub version: i64,
    pub block: Block,
}

impl Schema {
    pub fn new(block: Block) -> Schema {
        Schema { version: 0, block }
    }
    pub fn version(mut self, v: i64) -> Self {
        self.version = v;
        self
    }
    pub fn ty(&self) -> Type {
        self.block.ty()
    }
    pub(crate) fn to_pb(&self) -> pb::Schema {
        pb::Schema {
            version: self.version,
            block: Some(self.block.to_pb()),
        }
    }
}
