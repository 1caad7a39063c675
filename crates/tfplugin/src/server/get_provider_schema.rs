//! `GetProviderSchema`: every schema plus the server capabilities.

use crate::framework::Provider;
use crate::pb::tfplugin6 as pb;
use crate::server::Inner;

pub(crate) fn capabilities() -> pb::ServerCapabilities {
    pb::ServerCapabilities {
        // Terraform ≥1.3 lets us see destroys (we answer null, with prior private kept).
        plan_destroy: true,
        // Terraform ≥1.6 fetches the schema once per command instead of once per process.
        get_provider_schema_optional: true,
        move_resource_state: false,
        generate_resource_config: false,
    }
}

pub(crate) fn handle<P: Provider>(
    inner: &Inner<P>,
    _req: pb::get_provider_schema::Request,
) -> pb::get_provider_schema::Response {
    pb::get_provider_schema::Response {
        provider: Some(inner.provider_schema.to_pb()),
        resource_schemas: inner
            .resources
            .iter()
            .map(|(n, r)| (n.clone(), r.wire().to_pb()))
            .collect(),
        data_source_schemas: inner
            .data_sources
            .iter()
            .map(|(n, d)| (n.clone(), d.schema().to_pb()))
            .collect(),
        diagnostics: Vec::new(),
        provider_meta: None,
        server_capabilities: Some(capabilities()),
    }
}
