//! `ConfigureProvider`: decode the provider block into its model and keep what
//! `Provider::configure` returns for every later call.

use std::sync::Arc;

use crate::diag::{Diagnostic, Diagnostics};
use crate::framework::{ConfigureRequest, Provider};
use crate::model;
use crate::pb::tfplugin6 as pb;
use crate::server::Inner;

pub(crate) async fn handle<P: Provider>(
    inner: &Inner<P>,
    req: pb::configure_provider::Request,
) -> pb::configure_provider::Response {
    inner.capture.request(&req);
    let run = async {
        let config = inner.provider_config(req.config.as_ref())?;
        let config: P::Config = model::from_value(&config, "provider").map_err(|e| {
            Diagnostics::from(Diagnostic::error(
                "Invalid provider configuration",
                e.to_string(),
            ))
        })?;
        let data = inner
            .provider
            .configure(ConfigureRequest {
                config,
                terraform_version: req.terraform_version.clone(),
            })
            .await?;
        if let Ok(mut slot) = inner.data.write() {
            *slot = Some(Arc::new(data));
        }
        Ok::<(), Diagnostics>(())
    };
    let diags = run.await.err().unwrap_or_default();
    pb::configure_provider::Response {
        diagnostics: diags.to_pb(),
    }
}
