//! `ReadResource` (refresh): the resource reports the remote object; `None` becomes a null
//! state ("deleted outside Terraform"). Results must be wholly known.

use crate::diag::Diagnostics;
use crate::framework::plan::no_bugs;
use crate::framework::timeouts::{BLOCK, Operation};
use crate::framework::{Private, Provider, rules};
use crate::pb::tfplugin6 as pb;
use crate::server::{Inner, decode, encode};
use crate::value::Value;

pub(crate) async fn handle<P: Provider>(
    inner: &Inner<P>,
    req: pb::read_resource::Request,
) -> pb::read_resource::Response {
    inner.capture.request(&req);
    // Unless the read succeeds, Terraform keeps the state and private data it sent.
    let mut out = pb::read_resource::Response {
        new_state: req.current_state.clone(),
        private: req.private.clone(),
        ..Default::default()
    };
    if let Err(d) = run(inner, &req, &mut out).await {
        out.diagnostics.extend(d.to_pb());
    }
    out
}

async fn run<P: Provider>(
    inner: &Inner<P>,
    req: &pb::read_resource::Request,
    out: &mut pb::read_resource::Response,
) -> Result<(), Diagnostics> {
    let res = inner.resource(&req.type_name)?;
    let state = decode(req.current_state.as_ref(), res.ty(), "current state")?;
    if state.is_null() {
        return Ok(());
    }
    let timeout = res
        .schema()
        .timeouts
        .as_ref()
        .and_then(|t| t.for_op(Operation::Read, &state));
    let ctx = inner.ctx(timeout, Private::from_bytes(&req.private)?);
    let new = match res.read(&ctx, state.clone()).await? {
        None => Value::Null,
        Some(mut v) => {
            align_with(&state, &mut v);
            v
        }
    };
    no_bugs(
        res.type_name(),
        "an invalid object during refresh",
        &rules::check_read(&new),
        &res.wire().block,
    )?;
    out.new_state = Some(encode(&new, res.ty(), "refreshed state")?);
    out.private = if new.is_null() {
        Vec::new()
    } else {
        ctx.take_private().to_bytes()
    };
    Ok(())
}

/// Keeps in a resource's answer `to` what Terraform, not the remote object, decides: the
/// `timeouts` block and the spelling of unchanged numbers, both taken from `from`.
pub(crate) fn align_with(from: &Value, to: &mut Value) {
    carry_timeouts(from, to);
    crate::value::align_numbers(from, to);
}

/// The `timeouts` block is configuration, not remote state: keep it from `from`.
fn carry_timeouts(from: &Value, to: &mut Value) {
    if let (Some(t), Some(obj)) = (from.attr(BLOCK), to.as_object_mut())
        && obj.contains_key(BLOCK)
    {
        obj.insert(BLOCK.to_string(), t.clone());
    }
}
