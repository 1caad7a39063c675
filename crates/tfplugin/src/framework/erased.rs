//! Type erasure: typed [`Resource`]s and [`DataSource`]s behind object-safe traits working on
//! [`Value`]s, so the server can hold resources with different models in one registry.

use futures_util::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::diag::{Diagnostic, Diagnostics};
use crate::error::Error;
use crate::framework::context::Ctx;
use crate::framework::resource::{
    CheckPlanRequest, CreateRequest, DataSource, DeleteRequest, ImportRequest, PlanChange,
    ReadDataRequest, ReadRequest, Resource, ResourceSchema, UpdateRequest,
};
use crate::model;
use crate::schema::Schema;
use crate::value::{Type, Value};

pub(crate) trait ErasedResource<D>: Send + Sync {
    fn type_name(&self) -> &str;
    fn schema(&self) -> &ResourceSchema;
    /// The schema as sent to Terraform (timeouts block included).
    fn wire(&self) -> &Schema;
    fn ty(&self) -> &Type;
    fn validate(&self, config: &Value) -> Diagnostics;
    fn modify_plan(&self, change: &mut PlanChange) -> Result<(), Diagnostics>;
    fn check_plan<'a>(
        &'a self,
        ctx: &'a Ctx<D>,
        req: CheckPlanRequest,
    ) -> BoxFuture<'a, Diagnostics>;
    fn upgrade(
        &self,
        version: i64,
        state: serde_json::Value,
    ) -> Result<serde_json::Value, Diagnostics>;
    fn create<'a>(
        &'a self,
        ctx: &'a Ctx<D>,
        planned: Value,
        config: Value,
    ) -> BoxFuture<'a, Result<Value, Diagnostics>>;
    fn read<'a>(
        &'a self,
        ctx: &'a Ctx<D>,
        state: Value,
    ) -> BoxFuture<'a, Result<Option<Value>, Diagnostics>>;
    fn update<'a>(
        &'a self,
        ctx: &'a Ctx<D>,
        prior: Value,
        planned: Value,
        config: Value,
    ) -> BoxFuture<'a, Result<Value, Diagnostics>>;
    fn delete<'a>(
        &'a self,
        ctx: &'a Ctx<D>,
        prior: Value,
    ) -> BoxFuture<'a, Result<(), Diagnostics>>;
    fn import<'a>(
        &'a self,
        ctx: &'a Ctx<D>,
        id: String,
    ) -> BoxFuture<'a, Result<Option<Value>, Diagnostics>>;
}

pub(crate) struct TypedResource<R> {
    r: R,
    schema: ResourceSchema,
    wire: Schema,
    ty: Type,
}

impl<R: Resource> TypedResource<R> {
    pub(crate) fn new(r: R) -> Result<Self, Error> {
        let schema = r.schema()?;
        let wire = schema.wire_schema();
        wire.block.check(R::TYPE_NAME)?;
        let ty = wire.ty();
        Ok(TypedResource {
            r,
            schema,
            wire,
            ty,
        })
    }

    fn model(&self, v: &Value, what: &str) -> Result<R::Model, Diagnostics> {
        read_model(v, R::TYPE_NAME, what)
    }

    fn value(&self, m: &R::Model) -> Result<Value, Diagnostics> {
        model_value(m, &self.ty, R::TYPE_NAME)
    }
}

/// Reads the model of `type_name` from a value (`what` it is, for the error: "plan", ...).
fn read_model<M: DeserializeOwned>(
    v: &Value,
    type_name: &str,
    what: &str,
) -> Result<M, Diagnostics> {
    model::from_value(v, type_name).map_err(|e| {
        Diagnostic::error(
            format!("Cannot read the {what} of {type_name}"),
            e.to_string(),
        )
        .into()
    })
}

/// Encodes a model of `type_name` as a value of `ty`.
fn model_value<M: Serialize>(m: &M, ty: &Type, type_name: &str) -> Result<Value, Diagnostics> {
    model::to_value(m, ty, type_name)
        .map_err(|e| Diagnostic::error(format!("Cannot encode {type_name}"), e.to_string()).into())
}

impl<R: Resource> ErasedResource<R::Data> for TypedResource<R> {
    fn type_name(&self) -> &str {
        R::TYPE_NAME
    }
    fn schema(&self) -> &ResourceSchema {
        &self.schema
    }
    fn wire(&self) -> &Schema {
        &self.wire
    }
    fn ty(&self) -> &Type {
        &self.ty
    }
    fn validate(&self, config: &Value) -> Diagnostics {
        let mut d = self.r.validate(config);
        d.extend(crate::framework::unknowns::independent_problems(
            config,
            &self.ty,
            |v| {
                let m: R::Model = model::from_value(v, R::TYPE_NAME).ok()?;
                Some(self.r.validate_model(&m))
            },
        ));
        d
    }
    fn modify_plan(&self, change: &mut PlanChange) -> Result<(), Diagnostics> {
        self.r.modify_plan(change)
    }
    fn check_plan<'a>(
        &'a self,
        ctx: &'a Ctx<R::Data>,
        req: CheckPlanRequest,
    ) -> BoxFuture<'a, Diagnostics> {
        Box::pin(self.r.check_plan(ctx, req))
    }
    fn upgrade(
        &self,
        version: i64,
        state: serde_json::Value,
    ) -> Result<serde_json::Value, Diagnostics> {
        self.r.upgrade_state(version, state)
    }
    fn create<'a>(
        &'a self,
        ctx: &'a Ctx<R::Data>,
        planned: Value,
        config: Value,
    ) -> BoxFuture<'a, Result<Value, Diagnostics>> {
        Box::pin(async move {
            let planned = self.model(&planned, "plan")?;
            let m = self
                .r
                .create(ctx, CreateRequest { planned, config })
                .await?;
            self.value(&m)
        })
    }
    fn read<'a>(
        &'a self,
        ctx: &'a Ctx<R::Data>,
        state: Value,
    ) -> BoxFuture<'a, Result<Option<Value>, Diagnostics>> {
        Box::pin(async move {
            let state = self.model(&state, "state")?;
            let m = self.r.read(ctx, ReadRequest { state }).await?;
            m.map(|m| self.value(&m)).transpose()
        })
    }
    fn update<'a>(
        &'a self,
        ctx: &'a Ctx<R::Data>,
        prior: Value,
        planned: Value,
        config: Value,
    ) -> BoxFuture<'a, Result<Value, Diagnostics>> {
        Box::pin(async move {
            let prior = self.model(&prior, "state")?;
            let planned = self.model(&planned, "plan")?;
            let m = self
                .r
                .update(
                    ctx,
                    UpdateRequest {
                        prior,
                        planned,
                        config,
                    },
                )
                .await?;
            self.value(&m)
        })
    }
    fn delete<'a>(
        &'a self,
        ctx: &'a Ctx<R::Data>,
        prior: Value,
    ) -> BoxFuture<'a, Result<(), Diagnostics>> {
        Box::pin(async move {
            let prior = self.model(&prior, "state")?;
            self.r.delete(ctx, DeleteRequest { prior }).await
        })
    }
    fn import<'a>(
        &'a self,
        ctx: &'a Ctx<R::Data>,
        id: String,
    ) -> BoxFuture<'a, Result<Option<Value>, Diagnostics>> {
        Box::pin(async move {
            let m = self.r.import(ctx, ImportRequest { id }).await?;
            m.map(|m| self.value(&m)).transpose()
        })
    }
}

pub(crate) trait ErasedDataSource<D>: Send + Sync {
    fn type_name(&self) -> &str;
    fn schema(&self) -> &Schema;
    fn ty(&self) -> &Type;
    fn validate(&self, config: &Value) -> Diagnostics;
    /// The data source's value and its warnings.
    fn read<'a>(
        &'a self,
        ctx: &'a Ctx<D>,
        config: Value,
    ) -> BoxFuture<'a, Result<(Value, Diagnostics), Diagnostics>>;
}

pub(crate) struct TypedDataSource<S> {
    s: S,
    schema: Schema,
    ty: Type,
}

impl<S: DataSource> TypedDataSource<S> {
    pub(crate) fn new(s: S) -> Result<Self, Error> {
        let schema = s.schema()?;
        schema.block.check(S::TYPE_NAME)?;
        let ty = schema.ty();
        Ok(TypedDataSource { s, schema, ty })
    }
}

impl<S: DataSource> ErasedDataSource<S::Data> for TypedDataSource<S> {
    fn type_name(&self) -> &str {
        S::TYPE_NAME
    }
    fn schema(&self) -> &Schema {
        &self.schema
    }
    fn ty(&self) -> &Type {
        &self.ty
    }
    fn validate(&self, config: &Value) -> Diagnostics {
        self.s.validate(config)
    }
    fn read<'a>(
        &'a self,
        ctx: &'a Ctx<S::Data>,
        config: Value,
    ) -> BoxFuture<'a, Result<(Value, Diagnostics), Diagnostics>> {
        Box::pin(async move {
            let name = S::TYPE_NAME;
            let config = read_model(&config, name, "configuration")?;
            let m = self.s.read(ctx, ReadDataRequest { config }).await?;
            Ok((model_value(&m, &self.ty, name)?, self.s.warnings(&m)))
        })
    }
}
