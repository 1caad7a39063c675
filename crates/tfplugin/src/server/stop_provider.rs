//! `StopProvider`: Terraform was interrupted; cancel every in-flight call's context.

use crate::framework::Provider;
use crate::pb::tfplugin6 as pb;
use crate::server::Inner;

pub(crate) fn handle<P: Provider>(
    inner: &Inner<P>,
    _req: pb::stop_provider::Request,
) -> pb::stop_provider::Response {
    tracing::info!(
        tf_rpc = "StopProvider",
        "terraform asked the provider to stop; cancelling in-flight work"
    );
    inner.stop.cancel();
    pb::stop_provider::Response {
        error: String::new(),
    }
}
