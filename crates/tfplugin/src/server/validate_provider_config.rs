//! `ValidateProviderConfig`: attribute validators and the provider's own checks.

use crate::framework::Provider;
use crate::framework::validate::validate_config;
use crate::pb::tfplugin6 as pb;
use crate::server::{Inner, reply_diagnostics};

pub(crate) fn handle<P: Provider>(
    inner: &Inner<P>,
    req: pb::validate_provider_config::Request,
) -> pb::validate_provider_config::Response {
    inner.capture.request(&req);
    let diags = inner.provider_config(req.config.as_ref()).map(|config| {
        validate_config(&inner.provider_schema.block, &config, |c| {
            inner.provider.validate(c)
        })
    });
    pb::validate_provider_config::Response {
        diagnostics: reply_diagnostics(diags),
    }
}
