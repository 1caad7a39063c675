//! `ValidateDataResourceConfig`: like resource validation, for data sources.

use crate::diag::Diagnostics;
use crate::framework::Provider;
use crate::framework::validate::validate_block;
use crate::path::AttrPath;
use crate::pb::tfplugin6 as pb;
use crate::server::{Inner, decode};

pub(crate) fn handle<P: Provider>(
    inner: &Inner<P>,
    req: pb::validate_data_resource_config::Request,
) -> pb::validate_data_resource_config::Response {
    inner.capture.value(
        "ValidateDataResourceConfig",
        &req.type_name,
        "config",
        req.config.as_ref(),
    );
    let mut diags = Diagnostics::new();
    let run = |diags: &mut Diagnostics| -> Result<(), Diagnostics> {
        let ds = inner.data_source(&req.type_name)?;
        let config = decode(req.config.as_ref(), ds.ty(), "data source configuration")?;
        validate_block(&ds.schema().block, &config, &AttrPath::root(), diags);
        diags.extend(ds.validate(&config));
        Ok(())
    };
    if let Err(d) = run(&mut diags) {
        diags.extend(d);
    }
    pb::validate_data_resource_config::Response {
        diagnostics: diags.to_pb(),
    }
}
