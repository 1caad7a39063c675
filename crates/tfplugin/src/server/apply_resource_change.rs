//! `ApplyResourceChange`: create, update or delete, then check the result against the plan
//! (wholly known, known planned values unchanged, null exactly after delete).

use crate::codec::json;
use crate::diag::{Diagnostic, Diagnostics};
use crate::framework::plan::bug;
use crate::framework::timeouts::Operation;
use crate::framework::{Private, Provider, rules};
use crate::pb::tfplugin6 as pb;
use crate::server::read_resource::align_with;
use crate::server::{Inner, decode, encode};
use crate::value::Value;

pub(crate) async fn handle<P: Provider>(
    inner: &Inner<P>,
    req: pb::apply_resource_change::Request,
) -> pb::apply_resource_change::Response {
    inner.capture.request(&req);
    let mut out = pb::apply_resource_change::Response {
        private: req.planned_private.clone(),
        ..Default::default()
    };
    if let Err(d) = run(inner, &req, &mut out).await {
        out.diagnostics.extend(d.to_pb());
    }
    out
}

async fn run<P: Provider>(
    inner: &Inner<P>,
    req: &pb::apply_resource_change::Request,
    out: &mut pb::apply_resource_change::Response,
) -> Result<(), Diagnostics> {
    let res = inner.resource(&req.type_name)?;
    let ty = res.ty();
    let prior = decode(req.prior_state.as_ref(), ty, "prior state")?;
    let planned = decode(req.planned_state.as_ref(), ty, "planned state")?;
    let config = decode(req.config.as_ref(), ty, "configuration")?;
    let private = Private::from_bytes(&req.planned_private)?;
    let timeouts = res.schema().timeouts.clone();
    let timeout_for = |op, v: &Value| timeouts.as_ref().and_then(|t| t.for_op(op, v));

    if planned.is_null() {
        let ctx = inner.ctx(timeout_for(Operation::Delete, &prior), private);
        // On failure the absent new_state keeps the prior object in state.
        match ctx.timeout() {
            Some(limit) => tokio::time::timeout(limit, res.delete(&ctx, prior))
                .await
                .map_err(|_| {
                    Diagnostic::error(
                        "delete timed out",
                        format!(
                            "{} did not finish its delete within {}s (see the timeouts block)",
                            res.type_name(),
                            limit.as_secs()
                        ),
                    )
                })??,
            None => res.delete(&ctx, prior).await?,
        }
        out.new_state = Some(encode(&Value::Null, ty, "new state")?);
        out.private = Vec::new();
        return Ok(());
    }

    let creating = prior.is_null();
    let op = if creating {
        Operation::Create
    } else {
        Operation::Update
    };
    let ctx = inner.ctx(timeout_for(op, &planned), private);
    // Only the `timeouts` block changed: nothing to do remotely.
    if !creating
        && planned.is_wholly_known()
        && without_timeouts(&prior).equals(&without_timeouts(&planned))
    {
        out.new_state = Some(encode(&planned, ty, "new state")?);
        out.private = ctx.take_private().to_bytes();
        return Ok(());
    }
    let work = async {
        if creating {
            res.create(&ctx, planned.clone(), config).await
        } else {
            res.update(&ctx, prior.clone(), planned.clone(), config)
                .await
        }
    };
    // The operation's timeout (from the `timeouts` block) is enforced here.
    let result = match ctx.timeout() {
        Some(limit) => match tokio::time::timeout(limit, work).await {
            Ok(r) => r,
            Err(_) => Err(Diagnostic::error(
                format!("{} timed out", op.name()),
                format!(
                    "{} did not finish its {} within {}s (see the timeouts block)",
                    res.type_name(),
                    op.name(),
                    limit.as_secs()
                ),
            )
            .into()),
        },
        None => work.await,
    };
    let mut new = match result {
        Ok(v) => v,
        Err(d) => {
            // Save what exists: a recorded partial object (tainted by Terraform), else the
            // prior object unchanged on update, else nothing.
            out.private = ctx.take_private().to_bytes();
            if let Some(partial) = ctx.take_partial() {
                match json::decode(&partial, ty, json::Extra::Ignore) {
                    Ok(mut v) if v.is_wholly_known() => {
                        align_with(&planned, &mut v);
                        out.new_state = Some(encode(&v, ty, "partial state")?);
                        return Err(d);
                    }
                    _ => tracing::warn!(
                        resource = res.type_name(),
                        "partial state cannot be encoded; dropped"
                    ),
                }
            }
            if !creating {
                out.new_state = Some(encode(&prior, ty, "prior state")?);
            }
            return Err(d);
        }
    };
    align_with(&planned, &mut new);
    out.private = ctx.take_private().to_bytes();
    let violations = rules::check_apply(&planned, &new);
    if !violations.is_empty() {
        // Save what exists (if it is encodable) so nothing is lost; Terraform taints it.
        if new.is_wholly_known() && !new.is_null() {
            out.new_state = Some(encode(&new, ty, "new state")?);
        }
        return Err(bug(
            res.type_name(),
            "an inconsistent result after apply",
            &violations,
            &res.wire().block,
        ));
    }
    out.new_state = Some(encode(&new, ty, "new state")?);
    Ok(())
}

fn without_timeouts(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove(crate::framework::timeouts::BLOCK);
    }
    v
}
