//! `ValidateResourceConfig`: attribute validators (skipping unknowns) and the resource's own
//! cross-attribute checks.

use crate::framework::Provider;
use crate::framework::validate::validate_resource;
use crate::pb::tfplugin6 as pb;
use crate::server::{Inner, decode, reply_diagnostics};

pub(crate) fn handle<P: Provider>(
    inner: &Inner<P>,
    req: pb::validate_resource_config::Request,
) -> pb::validate_resource_config::Response {
    inner.capture.request(&req);
    let diags = inner.resource(&req.type_name).and_then(|res| {
        let config = decode(req.config.as_ref(), res.ty(), "resource configuration")?;
        Ok(validate_resource(res.as_ref(), &config))
    });
    pb::validate_resource_config::Response {
        diagnostics: reply_diagnostics(diags),
    }
}
