//! `ImportResourceState`: the resource looks the object up by id and returns it whole.

use crate::diag::{Diagnostic, Diagnostics};
use crate::framework::{Private, Provider};
use crate::pb::tfplugin6 as pb;
use crate::server::{Inner, encode};

pub(crate) async fn handle<P: Provider>(
    inner: &Inner<P>,
    req: pb::import_resource_state::Request,
) -> pb::import_resource_state::Response {
    match run(inner, &req).await {
        Ok(r) => pb::import_resource_state::Response {
            imported_resources: vec![r],
            diagnostics: Vec::new(),
            deferred: None,
        },
        Err(d) => pb::import_resource_state::Response {
            imported_resources: Vec::new(),
            diagnostics: d.to_pb(),
            deferred: None,
        },
    }
}

async fn run<P: Provider>(
    inner: &Inner<P>,
    req: &pb::import_resource_state::Request,
) -> Result<pb::import_resource_state::ImportedResource, Diagnostics> {
    let res = inner.resource(&req.type_name)?;
    let ctx = inner.ctx(None, Private::default());
    let value = res.import(&ctx, req.id.clone()).await?.ok_or_else(|| {
        Diagnostic::error(
            "Cannot import non-existent remote object",
            format!("{}: no object with id {:?}", req.type_name, req.id),
        )
    })?;
    if !value.is_wholly_known() {
        return Err(Diagnostic::error(
            "Provider produced an invalid import",
            "imported state holds unknown values",
        )
        .into());
    }
    Ok(pb::import_resource_state::ImportedResource {
        type_name: req.type_name.clone(),
        state: Some(encode(&value, res.ty(), "imported state")?),
        private: ctx.take_private().to_bytes(),
        identity: None,
    })
}
