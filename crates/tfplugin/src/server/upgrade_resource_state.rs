//! `UpgradeResourceState`: called before every use of stored state. Parses the stored JSON,
//! lets the resource upgrade older schema versions, and answers msgpack of the current schema.

use crate::codec::json::{self, Extra};
use crate::diag::{Diagnostic, Diagnostics};
use crate::framework::Provider;
use crate::pb::tfplugin6 as pb;
use crate::server::{Inner, encode};

pub(crate) fn handle<P: Provider>(
    inner: &Inner<P>,
    req: pb::upgrade_resource_state::Request,
) -> pb::upgrade_resource_state::Response {
    match run(inner, &req) {
        Ok(v) => pb::upgrade_resource_state::Response {
            upgraded_state: Some(v),
            diagnostics: Vec::new(),
        },
        Err(d) => pb::upgrade_resource_state::Response {
            upgraded_state: None,
            diagnostics: d.to_pb(),
        },
    }
}

fn run<P: Provider>(
    inner: &Inner<P>,
    req: &pb::upgrade_resource_state::Request,
) -> Result<pb::DynamicValue, Diagnostics> {
    let res = inner.resource(&req.type_name)?;
    let raw = req
        .raw_state
        .as_ref()
        .map(|r| r.json.as_slice())
        .unwrap_or_default();
    if raw.is_empty() {
        if req
            .raw_state
            .as_ref()
            .is_some_and(|r| !r.flatmap.is_empty())
        {
            return Err(Diagnostic::error(
                "Unsupported state format",
                format!(
                    "{}: pre-0.12 flatmap state cannot be upgraded by this provider",
                    req.type_name
                ),
            )
            .into());
        }
        return encode(&crate::Value::Null, res.ty(), "upgraded state");
    }
    let mut state = json::parse_exact(raw).map_err(|e| {
        Diagnostic::error(
            format!("Stored state of {} is not valid JSON", req.type_name),
            e.to_string(),
        )
    })?;
    let current = res.wire().version;
    if req.version > current {
        return Err(Diagnostic::error(
            "State written by a newer provider",
            format!(
                "{} state has schema version {}, but this provider knows only up to {current}; use a newer provider",
                req.type_name, req.version
            ),
        )
        .into());
    }
    if req.version < current {
        state = res.upgrade(req.version, state)?;
    }
    let value = json::decode(&state, res.ty(), Extra::Reject).map_err(|e| {
        Diagnostic::error(
            format!("Cannot upgrade the stored state of {}", req.type_name),
            format!(
                "{e} (stored schema version {}, current {current})",
                req.version
            ),
        )
    })?;
    encode(&value, res.ty(), "upgraded state")
}
