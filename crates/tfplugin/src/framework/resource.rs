//! The traits provider authors implement: [`Provider`], [`Resource`], [`DataSource`].

use std::future::Future;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::diag::{Diagnostic, Diagnostics};
use crate::error::Error;
use crate::framework::context::Ctx;
use crate::framework::erased::{ErasedDataSource, ErasedResource, TypedDataSource, TypedResource};
use crate::framework::timeouts::Timeouts;
use crate::model;
use crate::path::AttrPath;
use crate::schema::{Attribute, Block, Schema};
use crate::value::Value;

/// A resource's schema with its framework extras (version, timeouts).
#[derive(Debug, Clone)]
pub struct ResourceSchema {
    pub schema: Schema,
    pub timeouts: Option<Timeouts>,
}

impl ResourceSchema {
    /// The schema derived from model `M` (see [`crate::model`]).
    pub fn from_model<M: JsonSchema>() -> Result<ResourceSchema, Error> {
        Ok(ResourceSchema {
            schema: Schema::new(model::block_of::<M>()?),
            timeouts: None,
        })
    }
    /// A hand-built schema.
    pub fn from_block(block: Block) -> ResourceSchema {
        ResourceSchema {
            schema: Schema::new(block),
            timeouts: None,
        }
    }
    /// Sets the schema version stored in state (bump it when the state shape changes).
    pub fn version(mut self, v: i64) -> Self {
        self.schema.version = v;
        self
    }
    /// Adds a `timeouts` block for these operations.
    pub fn timeouts(mut self, t: Timeouts) -> Self {
        self.timeouts = Some(t);
        self
    }
    /// Customises one top-level attribute (add validators, plan modifiers, ...). Fails if the
    /// model has no such attribute, so names cannot drift apart.
    pub fn attribute(
        mut self,
        name: &str,
        f: impl FnOnce(Attribute) -> Attribute,
    ) -> Result<Self, Error> {
        self = self.attribute_at(&AttrPath::new(name), f)?;
        Ok(self)
    }
    /// Customises an attribute inside nested blocks, e.g. `AttrPath::new("rule").attr("port")`
    /// (steps name blocks then the attribute; indexes are not used).
    pub fn attribute_at(
        mut self,
        path: &AttrPath,
        f: impl FnOnce(Attribute) -> Attribute,
    ) -> Result<Self, Error> {
        let names: Vec<&str> = path
            .steps()
            .iter()
            .filter_map(|s| match s {
                crate::path::Step::Attr(n) => Some(n.as_str()),
                _ => None,
            })
            .collect();
        let missing = || Error::Schema {
            object: "resource".into(),
            message: format!("no attribute {path} in the model"),
        };
        let (last, blocks) = names.split_last().ok_or_else(missing)?;
        let mut block = &mut self.schema.block;
        for b in blocks {
            block = &mut block.get_block_mut(b).ok_or_else(missing)?.block;
        }
        let a = block.get_attribute_mut(last).ok_or_else(missing)?;
        *a = f(a.clone());
        block.check("resource")?;
        Ok(self)
    }
    /// The full schema sent to Terraform (including the timeouts block).
    pub fn wire_schema(&self) -> Schema {
        let mut s = self.schema.clone();
        if let Some(t) = &self.timeouts {
            s.block.blocks.push(t.block());
        }
        s
    }
}

/// Provider-level configuration handed to [`Provider::configure`].
#[derive(Debug)]
pub struct ConfigureRequest<C> {
    pub config: C,
    /// e.g. `1.15.5`.
    pub terraform_version: String,
}

/// A Terraform provider: its configuration model, its resources and data sources.
pub trait Provider: Send + Sync + 'static {
    /// The `provider "x" { ... }` block's model.
    type Config: DeserializeOwned + JsonSchema + Send + 'static;
    /// What configure produces and every resource call receives (an API client, ...).
    type Data: Send + Sync + 'static;

    /// The provider's local name: resource types are `<TYPE_NAME>_...`.
    const TYPE_NAME: &'static str;

    /// Full source address used in `--debug` mode, e.g. `registry.terraform.io/acme/toyfs`.
    fn source_address(&self) -> String;

    /// The provider block schema; derived from [`Provider::Config`] by default.
    fn schema(&self) -> Result<Schema, Error> {
        Ok(Schema::new(model::block_of::<Self::Config>()?))
    }

    /// Cross-attribute checks of the provider configuration (values may be unknown).
    fn validate(&self, _config: &Value) -> Diagnostics {
        Diagnostics::new()
    }

    /// Configures the provider (called once per provider process before resource calls).
    fn configure(
        &self,
        req: ConfigureRequest<Self::Config>,
    ) -> impl Future<Output = Result<Self::Data, Diagnostics>> + Send;

    /// The managed resources this provider serves (schemas are checked while adding them:
    /// `Resources::new().with(A)?.with(B)`; an error stops the provider at start).
    fn resources(&self) -> Result<Resources<Self::Data>, Error>;

    /// The data sources this provider serves.
    fn data_sources(&self) -> Result<DataSources<Self::Data>, Error> {
        Ok(DataSources::new())
    }
}

/// The resources of a provider, in a registry built with [`Resources::with`].
pub struct Resources<D>(pub(crate) Vec<Arc<dyn ErasedResource<D>>>);

impl<D: Send + Sync + 'static> Resources<D> {
    pub fn new() -> Self {
        Resources(Vec::new())
    }
    /// Adds a resource; its schema is built and checked here (an error names the resource).
    pub fn with<R: Resource<Data = D>>(mut self, r: R) -> Result<Self, Error> {
        self.0.push(Arc::new(TypedResource::new(r)?));
        Ok(self)
    }
}

/// The data sources of a provider.
pub struct DataSources<D>(pub(crate) Vec<Arc<dyn ErasedDataSource<D>>>);

impl<D: Send + Sync + 'static> DataSources<D> {
    pub fn new() -> Self {
        DataSources(Vec::new())
    }
    pub fn with<S: DataSource<Data = D>>(mut self, s: S) -> Result<Self, Error> {
        self.0.push(Arc::new(TypedDataSource::new(s)?));
        Ok(self)
    }
}

/// `Default` (empty) and `Debug` (the type names held) of the registries above.
macro_rules! registry_impls {
    ($($registry:ident),*) => {$(
        impl<D: Send + Sync + 'static> Default for $registry<D> {
            fn default() -> Self {
                Self::new()
            }
        }

        impl<D> std::fmt::Debug for $registry<D> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_list()
                    .entries(self.0.iter().map(|r| r.type_name().to_string()))
                    .finish()
            }
        }
    )*};
}

registry_impls!(Resources, DataSources);

/// Create: make the object described by `planned` exist.
#[derive(Debug)]
pub struct CreateRequest<M> {
    /// The plan; computed attributes not yet known read as `None`.
    pub planned: M,
    /// The raw configuration (for write-only or unusual inputs).
    pub config: Value,
}

/// Read: report the object's current remote values (`None` if it is gone).
#[derive(Debug)]
pub struct ReadRequest<M> {
    pub state: M,
}

/// Update in place from `prior` to `planned`.
#[derive(Debug)]
pub struct UpdateRequest<M> {
    pub prior: M,
    pub planned: M,
    pub config: Value,
}

/// What [`Resource::check_plan`] sees: the plan of a create (`prior` is `None`) or update.
#[derive(Debug, Clone)]
pub struct CheckPlanRequest {
    pub prior: Option<Value>,
    /// The planned value (may hold unknowns).
    pub planned: Value,
    /// The configuration (may hold unknowns).
    pub config: Value,
}

/// Delete the object described by `prior`.
#[derive(Debug)]
pub struct DeleteRequest<M> {
    pub prior: M,
}

/// Import an existing object by the id the user gave.
#[derive(Debug)]
pub struct ImportRequest {
    pub id: String,
}

/// What [`Resource::modify_plan`] sees and may change: whole-resource plan logic.
#[derive(Debug)]
pub struct PlanChange {
    /// Prior state (`None` on create).
    pub prior: Option<Value>,
    /// The configuration (may hold unknowns).
    pub config: Value,
    /// The plan so far (defaults, unknown computed values and attribute modifiers applied).
    pub planned: Value,
    /// Paths whose change forces replacement.
    pub requires_replace: Vec<AttrPath>,
    /// Warnings to show with the plan (e.g. what a change will not do). Errors belong in
    /// the `Err` of `modify_plan`.
    pub warnings: Diagnostics,
}

impl PlanChange {
    /// Fills what the configuration leaves unset from `from` (a value of the resource's
    /// type, e.g. the resource's own rendering of what the configuration means): every
    /// attribute whose configuration is null and whose planned value is null or unknown
    /// takes the value at the same path in `from` (objects by name, lists by index, maps
    /// by key). Only attributes of primitive types or collections of them are filled, and
    /// only inside blocks the plan already holds: blocks are never added. For computed
    /// attributes with defaults that depend on other attributes (the plan rules still check
    /// the result).
    pub fn fill_unset(&mut self, from: &Value) {
        crate::value::fill_unset(&mut self.planned, &self.config, from);
    }

    /// Sets a planned attribute value by path; an error diagnostic if the path does not exist.
    pub fn set(&mut self, path: &AttrPath, v: Value) -> Result<(), Diagnostics> {
        let slot = path.get_mut(&mut self.planned).ok_or_else(|| {
            Diagnostic::error(
                "Invalid plan modification",
                format!("no attribute {path} in the plan"),
            )
        })?;
        *slot = v;
        Ok(())
    }
}

/// A managed resource. Implement the four CRUD calls; everything else has a default.
///
/// The model `M` is both the schema (via `schemars`) and the typed value the calls receive.
pub trait Resource: Send + Sync + 'static {
    type Data: Send + Sync + 'static;
    type Model: Serialize + DeserializeOwned + JsonSchema + Send + Sync + 'static;

    /// Full resource type name, e.g. `toyfs_item`.
    const TYPE_NAME: &'static str;

    /// The schema; by default derived from the model (customise with
    /// [`ResourceSchema::attribute`], [`ResourceSchema::version`], [`ResourceSchema::timeouts`]).
    fn schema(&self) -> Result<ResourceSchema, Error> {
        ResourceSchema::from_model::<Self::Model>()
    }

    /// Cross-attribute checks of the configuration (values may be unknown or null).
    fn validate(&self, _config: &Value) -> Diagnostics {
        Diagnostics::new()
    }

    /// Checks of the typed configuration. Values unknown at validate or plan time are
    /// handled by the framework ([`crate::framework::unknowns`]): it calls this once per
    /// round of candidate values standing in for them and reports only the problems every
    /// round finds outside the unknown attributes, so errors that do not depend on the
    /// unknowns are not held back until apply.
    fn validate_model(&self, _config: &Self::Model) -> Diagnostics {
        Diagnostics::new()
    }

    /// Whole-resource plan logic, after defaults and attribute plan modifiers.
    fn modify_plan(&self, _change: &mut PlanChange) -> Result<(), Diagnostics> {
        Ok(())
    }

    /// Checks of a create or update plan that need the configured provider (its API client,
    /// state shared by the calls of this provider process): runs after the plan pipeline
    /// with the planned value (which may hold unknowns). Errors fail the plan, pointing at
    /// their attributes; warnings are shown with it. The default checks nothing.
    fn check_plan(
        &self,
        _ctx: &Ctx<Self::Data>,
        _req: CheckPlanRequest,
    ) -> impl Future<Output = Diagnostics> + Send {
        async { Diagnostics::new() }
    }

    fn create(
        &self,
        ctx: &Ctx<Self::Data>,
        req: CreateRequest<Self::Model>,
    ) -> impl Future<Output = Result<Self::Model, Diagnostics>> + Send;

    fn read(
        &self,
        ctx: &Ctx<Self::Data>,
        req: ReadRequest<Self::Model>,
    ) -> impl Future<Output = Result<Option<Self::Model>, Diagnostics>> + Send;

    fn update(
        &self,
        ctx: &Ctx<Self::Data>,
        req: UpdateRequest<Self::Model>,
    ) -> impl Future<Output = Result<Self::Model, Diagnostics>> + Send;

    fn delete(
        &self,
        ctx: &Ctx<Self::Data>,
        req: DeleteRequest<Self::Model>,
    ) -> impl Future<Output = Result<(), Diagnostics>> + Send;

    /// Import: return the whole current object for `id` (`None` if there is none). The
    /// default refuses import.
    fn import(
        &self,
        _ctx: &Ctx<Self::Data>,
        _req: ImportRequest,
    ) -> impl Future<Output = Result<Option<Self::Model>, Diagnostics>> + Send {
        async {
            Err(Diagnostic::error(
                "Import not supported",
                format!("resource type {} cannot be imported", Self::TYPE_NAME),
            )
            .into())
        }
    }

    /// Upgrades stored state JSON written with schema `version` (older than the current one)
    /// to the current shape. Called once per stored version step is up to the implementation;
    /// the default refuses, naming the versions.
    fn upgrade_state(
        &self,
        version: i64,
        _state: serde_json::Value,
    ) -> Result<serde_json::Value, Diagnostics> {
        Err(Diagnostic::error(
            "Unsupported state version",
            format!(
                "{} has no upgrade from schema version {version}",
                Self::TYPE_NAME
            ),
        )
        .into())
    }
}

/// Read of a data source.
#[derive(Debug)]
pub struct ReadDataRequest<M> {
    pub config: M,
}

/// A data source: reads something and returns the model with computed values filled.
pub trait DataSource: Send + Sync + 'static {
    type Data: Send + Sync + 'static;
    type Model: Serialize + DeserializeOwned + JsonSchema + Send + Sync + 'static;

    /// Full data source type name, e.g. `toyfs_item_lookup`.
    const TYPE_NAME: &'static str;

    fn schema(&self) -> Result<Schema, Error> {
        Ok(Schema::new(model::block_of::<Self::Model>()?))
    }

    fn validate(&self, _config: &Value) -> Diagnostics {
        Diagnostics::new()
    }

    fn read(
        &self,
        ctx: &Ctx<Self::Data>,
        req: ReadDataRequest<Self::Model>,
    ) -> impl Future<Output = Result<Self::Model, Diagnostics>> + Send;

    /// Warnings about what a successful [`read`](Self::read) returned: Terraform shows
    /// them and goes on with the result. None by default.
    fn warnings(&self, _model: &Self::Model) -> Diagnostics {
        Diagnostics::new()
    }
}
