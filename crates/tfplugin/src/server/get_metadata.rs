//! `GetMetadata`: resource and data source names (Terraform itself never calls it).

use crate::framework::Provider;
use crate::pb::tfplugin6 as pb;
use crate::server::Inner;

pub(crate) fn handle<P: Provider>(
    inner: &Inner<P>,
    _req: pb::get_metadata::Request,
) -> pb::get_metadata::Response {
    pb::get_metadata::Response {
        server_capabilities: Some(super::get_provider_schema::capabilities()),
        diagnostics: Vec::new(),
        data_sources: inner
            .data_sources
            .keys()
            .map(|n| pb::get_metadata::DataSourceMetadata {
                type_name: n.clone(),
            })
            .collect(),
        resources: inner
            .resources
            .keys()
            .map(|n| pb::get_metadata::ResourceMetadata {
                type_name: n.clone(),
            })
            .collect(),
    }
}
