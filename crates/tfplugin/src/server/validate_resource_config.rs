//! `ValidateResourceConfig`: attribute validators (skipping unknowns) and the resource's own
//! cross-attribute checks.

use crate::diag::Diagnostics;
use crate::framework::Provider;
use crate::framework::validate::validate_resource;
use crate::pb::tfplugin6 as pb;
use crate::server::{Inner, decode};

pub(crate) fn handle<P: Provider>(
    inner: &Inner<P>,
    req: pb::validate_resource_config::Request,
) -> pb::validate_resource_config::Response {
    inner.capture.value(
        "ValidateResourceConfig",
        &req.type_name,
        "config",
        req.config.as_ref(),
    );
    let mut diags = Diagnostics::new();
    let run = |diags: &mut Diagnostics| -> Result<(), Diagnostics> {
        let res = inner.resource(&req.type_name)?;
        let config = decode(req.config.as_ref(), res.ty(), "resource configuration")?;
        diags.extend(validate_resource(res.as_ref(), &config));
        Ok(())
    };
    if let Err(d) = run(&mut diags) {
        diags.extend(d);
    }
    pb::validate_resource_config::Response {
        diagnostics: diags.to_pb(),
    }
}
