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
        let resources = by_type_name(
            P::TYPE_NAME,
            provider.resources()?.0,
            |r| r.type_name(),
            "resource type",
        )?;
        let data_sources = by_type_name(
            P::TYPE_NAME,
            provider.data_sources()?.0,
            |d| d.type_name(),
            "data source",
        )?;
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
        lookup(
            &self.resources,
            type_name,
            "Unknown resource type",
            "resource type",
        )
    }

    pub(crate) fn data_source(
        &self,
        type_name: &str,
    ) -> Result<Arc<dyn ErasedDataSource<P::Data>>, Diagnostics> {
        lookup(
            &self.data_sources,
            type_name,
            "Unknown data source",
            "data source",
        )
    }

    /// Decodes the provider block Terraform sent (to validate it, or to configure with it).
    pub(crate) fn provider_config(
        &self,
        dv: Option<&pb::DynamicValue>,
    ) -> Result<Value, Diagnostics> {
        decode(dv, &self.provider_schema.ty(), "provider configuration")
    }
}

/// The provider's resources (or data sources) by type name; every name must start with the
/// provider's and be declared once.
fn by_type_name<T: ?Sized>(
    provider: &str,
    declared: Vec<Arc<T>>,
    name: impl Fn(&T) -> &str,
    what: &str,
) -> Result<BTreeMap<String, Arc<T>>, Error> {
    let mut by_name = BTreeMap::new();
    for item in declared {
        let type_name = name(&item).to_string();
        check_type_name(provider, &type_name)?;
        if by_name.insert(type_name.clone(), item).is_some() {
            return Err(Error::Schema {
                object: type_name,
                message: format!("{what} declared twice"),
            });
        }
    }
    Ok(by_name)
}

/// The resource (or data source) a request names; an unknown one is an error diagnostic.
fn lookup<T: ?Sized>(
    by_name: &BTreeMap<String, Arc<T>>,
    type_name: &str,
    summary: &str,
    what: &str,
) -> Result<Arc<T>, Diagnostics> {
    by_name.get(type_name).cloned().ok_or_else(|| {
        Diagnostic::error(
            summary,
            format!("this provider has no {what} {type_name:?}"),
        )
        .into()
    })
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

/// A reply's diagnostics: what the handler reported, or the error that stopped it.
pub(crate) fn reply_diagnostics(result: Result<Diagnostics, Diagnostics>) -> Vec<pb::Diagnostic> {
    result.unwrap_or_else(|stopped| stopped).to_pb()
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

/// Implements the gRPC service: every RPC hands its request to the `handle` function of the
/// module of the same name (awaiting it for the RPCs listed as `async`).
macro_rules! provider_service {
    (sync: [$($s:ident),* $(,)?], async: [$($a:ident),* $(,)?] $(,)?) => {
        #[tonic::async_trait]
        impl<P: Provider> pb::provider_server::Provider for ProviderService<P> {
            $(
                async fn $s(&self, r: Request<pb::$s::Request>) -> R<pb::$s::Response> {
                    Ok(Response::new($s::handle(&self.inner, r.into_inner())))
                }
            )*
            $(
                async fn $a(&self, r: Request<pb::$a::Request>) -> R<pb::$a::Response> {
                    Ok(Response::new($a::handle(&self.inner, r.into_inner()).await))
                }
            )*
        }
    };
}

provider_service! {
    sync: [
        get_metadata,
        get_provider_schema,
        validate_provider_config,
        validate_resource_config,
        validate_data_resource_config,
        upgrade_resource_state,
        stop_provider,
    ],
    async: [
        configure_provider,
        read_resource,
        plan_resource_change,
        apply_resource_change,
        import_resource_state,
        read_data_source,
    ],
}

#[cfg(test)]
mod tests;
