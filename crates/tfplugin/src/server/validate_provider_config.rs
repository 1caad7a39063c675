//! `ValidateProviderConfig`: attribute validators and the provider's own checks.

use crate::diag::Diagnostics;
use crate::framework::Provider;
use crate::framework::validate::validate_block;
use crate::path::AttrPath;
use crate::pb::tfplugin6 as pb;
use crate::server::{Inner, decode};

pub(crate) fn handle<P: Provider>(
    inner: &Inner<P>,
    req: pb::validate_provider_config::Request,
) -> pb::validate_provider_config::Response {
    inner.capture.value(
        "ValidateProviderConfig",
        "provider",
        "config",
        req.config.as_ref(),
    );
    let mut diags = Diagnostics::new();
    match decode(
        req.config.as_ref(),
        &inner.provider_schema.ty(),
        "provider configuration",
    ) {
        Ok(config) => {
            validate_block(
                &inner.provider_schema.block,
                &config,
                &AttrPath::root(),
                &mut diags,
            );
            diags.extend(inner.provider.validate(&config));
        }
        Err(d) => diags.extend(d),
    }
    pb::validate_provider_config::Response {
        diagnostics: diags.to_pb(),
    }
}
