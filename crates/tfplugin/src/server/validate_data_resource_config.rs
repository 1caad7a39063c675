//! `ValidateDataResourceConfig`: like resource validation, for data sources.

use crate::framework::Provider;
use crate::framework::validate::validate_config;
use crate::pb::tfplugin6 as pb;
use crate::server::{Inner, decode, reply_diagnostics};

pub(crate) fn handle<P: Provider>(
    inner: &Inner<P>,
    req: pb::validate_data_resource_config::Request,
) -> pb::validate_data_resource_config::Response {
    inner.capture.request(&req);
    let diags = inner.data_source(&req.type_name).and_then(|ds| {
        let config = decode(req.config.as_ref(), ds.ty(), "data source configuration")?;
        Ok(validate_config(&ds.schema().block, &config, |c| {
            ds.validate(c)
        }))
    });
    pb::validate_data_resource_config::Response {
        diagnostics: reply_diagnostics(diags),
    }
}
