//! `ReadDataSource`: decode the configuration into the model, read, answer a wholly known
//! value with the data source's warnings about it.

use crate::diag::Diagnostics;
use crate::framework::plan::no_bugs;
use crate::framework::{Private, Provider, rules};
use crate::pb::tfplugin6 as pb;
use crate::server::{Inner, decode, encode};

pub(crate) async fn handle<P: Provider>(
    inner: &Inner<P>,
    req: pb::read_data_source::Request,
) -> pb::read_data_source::Response {
    inner.capture.request(&req);
    match run(inner, &req).await {
        Ok((v, warnings)) => pb::read_data_source::Response {
            state: Some(v),
            diagnostics: warnings.to_pb(),
            deferred: None,
        },
        Err(d) => pb::read_data_source::Response {
            state: None,
            diagnostics: d.to_pb(),
            deferred: None,
        },
    }
}

async fn run<P: Provider>(
    inner: &Inner<P>,
    req: &pb::read_data_source::Request,
) -> Result<(pb::DynamicValue, Diagnostics), Diagnostics> {
    let ds = inner.data_source(&req.type_name)?;
    let config = decode(req.config.as_ref(), ds.ty(), "configuration")?;
    let ctx = inner.ctx(None, Private::default());
    let (new, warnings) = ds.read(&ctx, config).await?;
    no_bugs(
        ds.type_name(),
        "an invalid data source result",
        &rules::check_read(&new),
        &ds.schema().block,
    )?;
    Ok((encode(&new, ds.ty(), "data source state")?, warnings))
}
