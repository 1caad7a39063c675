//! `PlanResourceChange`: destroys plan to null; creates and updates run the framework's plan
//! pipeline, which checks the plan rules before we answer.

use crate::diag::Diagnostics;
use crate::framework::{CheckPlanRequest, Private, Provider, plan};
use crate::pb::tfplugin6 as pb;
use crate::server::{Inner, decode, encode};

pub(crate) async fn handle<P: Provider>(
    inner: &Inner<P>,
    req: pb::plan_resource_change::Request,
) -> pb::plan_resource_change::Response {
    inner.capture.request(&req);
    let mut out = pb::plan_resource_change::Response {
        planned_private: req.prior_private.clone(),
        ..Default::default()
    };
    if let Err(d) = run(inner, &req, &mut out).await {
        out.planned_state = None;
        out.requires_replace.clear();
        out.diagnostics.extend(d.to_pb());
    }
    out
}

async fn run<P: Provider>(
    inner: &Inner<P>,
    req: &pb::plan_resource_change::Request,
    out: &mut pb::plan_resource_change::Response,
) -> Result<(), Diagnostics> {
    let res = inner.resource(&req.type_name)?;
    let ty = res.ty();
    let prior = decode(req.prior_state.as_ref(), ty, "prior state")?;
    let proposed = decode(req.proposed_new_state.as_ref(), ty, "proposed new state")?;
    let config = decode(req.config.as_ref(), ty, "configuration")?;
    if proposed.is_null() {
        out.planned_state = Some(encode(&proposed, ty, "planned state")?);
        return Ok(());
    }
    let planned = plan::plan(res.as_ref(), &prior, &proposed, &config)?;
    let ctx = inner.ctx(None, Private::default());
    let checked = res
        .check_plan(
            &ctx,
            CheckPlanRequest {
                prior: (!prior.is_null()).then(|| prior.clone()),
                planned: planned.planned.clone(),
                config,
            },
        )
        .await;
    let mut diags = planned.warnings;
    diags.extend(checked);
    if diags.has_errors() {
        return Err(diags);
    }
    out.planned_state = Some(encode(&planned.planned, ty, "planned state")?);
    out.requires_replace = planned.requires_replace.iter().map(|p| p.to_pb()).collect();
    out.diagnostics = diags.to_pb();
    Ok(())
}
