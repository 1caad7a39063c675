//! The provider author framework: typed resources, data sources and the provider itself, on
//! top of the protocol layer. Provider code implements [`Provider`], [`Resource`] and
//! [`DataSource`] with serde model structs and never sees gRPC or msgpack.

pub mod context;
pub(crate) mod erased;
pub(crate) mod plan;
pub mod private;
pub mod resource;
pub mod rules;
pub mod timeouts;
pub mod unknowns;
pub(crate) mod validate;

pub use context::Ctx;
pub use private::Private;
pub use resource::{
    CheckPlanRequest, ConfigureRequest, CreateRequest, DataSource, DataSources, DeleteRequest,
    ImportRequest, PlanChange, Provider, ReadDataRequest, ReadRequest, Resource, ResourceSchema,
    Resources, UpdateRequest,
};
pub use timeouts::{Operation, Timeouts};
