//! The protocol-6 gRPC server: one file per RPC. Each handler decodes the request with the
//! schema's type, calls the framework, enforces the protocol rules and encodes the reply.
//! Problems become diagnostics; the gRPC status stays OK (a non-OK status reaches the user as
//! an opaque "plugin did not respond").

mod apply_resource_change;
mod capture;
mod configure_provider;
pub(crate) mod controller;
mod get_metadata;
mod get_provider_schema;
mod import_resource_state;
mod plan_resource_change;
mod read_data_source;
mod read_resource;
mod stop_provider;
mod upgrade_resource_state;
mod validate_data_resource_config;
mod validate_provider_config;
mod validate_resource_config;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::codec::{json, msgpack};
use crate::diag::{Diagnostic, Diagnostics};
use crate::error::Error;
use crate::framework::erased::{ErasedDataSource, ErasedResource};
use crate::framework::{Ctx, Private, Provider};
use crate::pb::tfplugin6 as pb;
use crate::schema::Schema;
use crate::value::{Type, Value};

pub(crate) use capture::Capture;

/// Shared state of one provider process.
pub(crate) struct Inner<P: Provider> {
    pub provider: P,
    pub provider_schema: Schema,
    pub resources: BTreeMap<String, Arc<dyn ErasedResource<P::Data>>>,
    pub data_sources: BTreeMap<String, Arc<dyn ErasedDataSource<P::Data>>>,
    pub data: RwLock<Option<Arc<P::Data>>>,
    /// Cancelled by `StopProvider`; every in-flight context watches it.
    pub stop: CancellationToken,
    pub capture: Capture,
}

impl<P: Provider> Inner<P> {
    pub(crate) fn new(provider: P) -> Result<Self, Error> {
        let provider_schema = provider.schema()?;
        provider_schema.block.check("provider")?;
        let mut resources = BTreeMap::new();
        for r in provider.resources()?.0 {
            let name = r.type_name().to_string();
            check_type_name(provider.type_name(), &name)?;
            if resources.insert(name.clone(), r).is_some() {
                return Err(Error::Schema {
                    object: name,
                    message: "resource type declared twice".into(),
                });
            }
        }
        let mut data_sources = BTreeMap::new();
        for d in provider.data_sources()?.0 {
            let name = d.type_name().to_string();
            check_type_name(provider.type_name(), &name)?;
            if data_sources.insert(name.clone(), d).is_some() {
                return Err(Error::Schema {
                    object: name,
                    message: "data source declared twice".into(),
                });
            }
        }
        Ok(Inner {
            provider,
            provider_schema,
            resources,
            data_sources,
            data: RwLock::new(None),
            stop: CancellationToken::new(),
            capture: Capture::from_env(),
        })
    }

    pub(crate) fn ctx(&self, timeout: Option<Duration>, private: Private) -> Ctx<P::Data> {
        let data = self.data.read().ok().and_then(|d| d.clone());
        Ctx::new(data, self.stop.child_token(), timeout, private)
    }

    pub(crate) fn resource(
        &self,
        type_name: &str,
    ) -> Result<Arc<dyn ErasedResource<P::Data>>, Diagnostics> {
        self.resources.get(type_name).cloned().ok_or_else(|| {
            Diagnostic::error(
                "Unknown resource type",
                format!("this provider has no resource type {type_name:?}"),
            )
            .into()
        })
    }

    pub(crate) fn data_source(
        &self,
        type_name: &str,
    ) -> Result<Arc<dyn ErasedDataSource<P::Data>>, Diagnostics> {
        self.data_sources.get(type_name).cloned().ok_or_else(|| {
            Diagnostic::error(
                "Unknown data source",
                format!("this provider has no data source {type_name:?}"),
            )
            .into()
        })
    }
}

fn check_type_name(provider: &str, name: &str) -> Result<(), Error> {
    if name
        .strip_prefix(provider)
        .is_some_and(|rest| rest.starts_with('_'))
    {
        Ok(())
    } else {
        Err(Error::Schema {
            object: name.into(),
            message: format!("type names must start with \"{provider}_\""),
        })
    }
}

/// Decodes a request's DynamicValue (msgpack, else JSON; absent = null).
pub(crate) fn decode(
    dv: Option<&pb::DynamicValue>,
    ty: &Type,
    what: &str,
) -> Result<Value, Diagnostics> {
    let res = match dv {
        Some(d) if !d.msgpack.is_empty() => msgpack::decode(&d.msgpack, ty),
        Some(d) if !d.json.is_empty() => {
            json::parse_exact(&d.json).and_then(|j| json::decode(&j, ty, json::Extra::Reject))
        }
        _ => Ok(Value::Null),
    };
    res.map_err(|e| {
        Diagnostic::error(format!("Invalid {what} from Terraform"), e.to_string()).into()
    })
}

/// Encodes a reply value as msgpack.
pub(crate) fn encode(v: &Value, ty: &Type, what: &str) -> Result<pb::DynamicValue, Diagnostics> {
    msgpack::encode(v, ty)
        .map(|msgpack| pb::DynamicValue {
            msgpack,
            json: Vec::new(),
        })
        .map_err(|e| Diagnostic::error(format!("Cannot encode the {what}"), e.to_string()).into())
}

/// The gRPC service; cheap to clone.
pub(crate) struct ProviderService<P: Provider> {
    pub inner: Arc<Inner<P>>,
}

impl<P: Provider> Clone for ProviderService<P> {
    fn clone(&self) -> Self {
        ProviderService {
            inner: self.inner.clone(),
        }
    }
}

type R<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl<P: Provider> pb::provider_server::Provider for ProviderService<P> {
    async fn get_metadata(
        &self,
        r: Request<pb::get_metadata::Request>,
    ) -> R<pb::get_metadata::Response> {
        Ok(Response::new(get_metadata::handle(
            &self.inner,
            r.into_inner(),
        )))
    }
    async fn get_provider_schema(
        &self,
        r: Request<pb::get_provider_schema::Request>,
    ) -> R<pb::get_provider_schema::Response> {
        Ok(Response::new(get_provider_schema::handle(
            &self.inner,
            r.into_inner(),
        )))
    }
    async fn validate_provider_config(
        &self,
        r: Request<pb::validate_provider_config::Request>,
    ) -> R<pb::validate_provider_config::Response> {
        Ok(Response::new(validate_provider_config::handle(
            &self.inner,
            r.into_inner(),
        )))
    }
    async fn validate_resource_config(
        &self,
        r: Request<pb::validate_resource_config::Request>,
    ) -> R<pb::validate_resource_config::Response> {
        Ok(Response::new(validate_resource_config::handle(
            &self.inner,
            r.into_inner(),
        )))
    }
    async fn validate_data_resource_config(
        &self,
        r: Request<pb::validate_data_resource_config::Request>,
    ) -> R<pb::validate_data_resource_config::Response> {
        Ok(Response::new(validate_data_resource_config::handle(
            &self.inner,
            r.into_inner(),
        )))
    }
    async fn upgrade_resource_state(
        &self,
        r: Request<pb::upgrade_resource_state::Request>,
    ) -> R<pb::upgrade_resource_state::Response> {
        Ok(Response::new(upgrade_resource_state::handle(
            &self.inner,
            r.into_inner(),
        )))
    }
    async fn configure_provider(
        &self,
        r: Request<pb::configure_provider::Request>,
    ) -> R<pb::configure_provider::Response> {
        Ok(Response::new(
            configure_provider::handle(&self.inner, r.into_inner()).await,
        ))
    }
    async fn read_resource(
        &self,
        r: Request<pb::read_resource::Request>,
    ) -> R<pb::read_resource::Response> {
        Ok(Response::new(
            read_resource::handle(&self.inner, r.into_inner()).await,
        ))
    }
    async fn plan_resource_change(
        &self,
        r: Request<pb::plan_resource_change::Request>,
    ) -> R<pb::plan_resource_change::Response> {
        Ok(Response::new(
            plan_resource_change::handle(&self.inner, r.into_inner()).await,
        ))
    }
    async fn apply_resource_change(
        &self,
        r: Request<pb::apply_resource_change::Request>,
    ) -> R<pb::apply_resource_change::Response> {
        Ok(Response::new(
            apply_resource_change::handle(&self.inner, r.into_inner()).await,
        ))
    }
    async fn import_resource_state(
        &self,
        r: Request<pb::import_resource_state::Request>,
    ) -> R<pb::import_resource_state::Response> {
        Ok(Response::new(
            import_resource_state::handle(&self.inner, r.into_inner()).await,
        ))
    }
    async fn read_data_source(
        &self,
        r: Request<pb::read_data_source::Request>,
    ) -> R<pb::read_data_source::Response> {
        Ok(Response::new(
            read_data_source::handle(&self.inner, r.into_inner()).await,
        ))
    }
    async fn stop_provider(
        &self,
        r: Request<pb::stop_provider::Request>,
    ) -> R<pb::stop_provider::Response> {
        Ok(Response::new(stop_provider::handle(
            &self.inner,
            r.into_inner(),
        )))
    }
}

#[cfg(test)]
mod tests;
