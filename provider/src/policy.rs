//! Resource `flexus_autoscaling_policy`: the autoscaling policy of one pool. Validated at
//! plan time by `flexus-policy` (the agent's own code), each problem pointing at its
//! attribute; stored in the agent, which enforces it.

use flexus_api::{Policy, PolicySpec, Precondition, Versioned};
use tfplugin::{
    AttrPath, CheckPlanRequest, CreateRequest, Ctx, DeleteRequest, Diagnostic, Diagnostics,
    ImportRequest, PlanChange, ReadRequest, Resource, ResourceSchema, UpdateRequest, Value,
    modifiers,
};

use crate::errors::{Object, ProviderError, field_to_attr, policy_diagnostics, to_diagnostics};
use crate::policy_model::PolicyModel;
use crate::provider::Flexus;

/// `flexus_autoscaling_policy`.
#[derive(Debug, Clone, Copy)]
pub struct PolicyResource;

/// Checks a policy configuration with `flexus-policy` (the agent's own parser and rules);
/// the framework runs it over rounds standing in for unknown values.
pub fn check_model(m: &PolicyModel) -> Diagnostics {
    let mut d = Diagnostics::new();
    for (name, b) in [("scale_out", &m.scale_out), ("scale_in", &m.scale_in)] {
        if let Some(b) = b
            && b.unlimited == Some(true)
            && !b.policy.is_empty()
        {
            d.error_at(
                AttrPath::new(name).attr("unlimited"),
                "Conflicting rate limits",
                format!("{name}.unlimited = true means no rate limit; remove it or the {name}.policy blocks"),
            );
        }
    }
    if let Err(e) = m.to_policy() {
        d.extend(policy_diagnostics(&e));
    }
    d
}

/// The value type of `flexus_autoscaling_policy` (its schema's implied type).
pub fn policy_type() -> &'static tfplugin::Type {
    static TY: std::sync::OnceLock<tfplugin::Type> = std::sync::OnceLock::new();
    TY.get_or_init(|| {
        PolicyResource
            .schema()
            .map(|s| s.wire_schema().ty())
            .unwrap_or(tfplugin::Type::Dynamic)
    })
}

impl PolicyModel {
    fn to_spec(&self) -> Result<PolicySpec, Diagnostics> {
        let policy = self.to_policy().map_err(|e| policy_diagnostics(&e))?;
        Ok(PolicySpec {
            pool: self.pool.clone(),
            policy,
        })
    }

    /// This planned model as written by the agent: with its id and namespace.
    fn stored_as(&self, id: String, ns: String) -> PolicyModel {
        PolicyModel {
            id: Some(id),
            namespace: Some(ns),
            ..self.clone()
        }
    }
}

impl Resource for PolicyResource {
    type Data = Flexus;
    type Model = PolicyModel;

    const TYPE_NAME: &str = "flexus_autoscaling_policy";

    fn schema(&self) -> Result<ResourceSchema, tfplugin::Error> {
        ResourceSchema::from_model::<PolicyModel>()?.attribute("namespace", |a| {
            a.plan_modifier(modifiers::use_state_for_unknown())
                .plan_modifier(modifiers::requires_replace())
        })
    }

    fn validate_model(&self, m: &PolicyModel) -> Diagnostics {
        check_model(m)
    }

    /// The policy's bounds against its pool's, at plan: the bounds the pool is planned with
    /// in this run (Terraform plans the pool first when `pool` refers to it), else the
    /// pool's bounds in the agent. A policy may narrow them, never widen them; the error
    /// names both attributes. Skipped while either is unknown or the agent cannot answer.
    async fn check_plan(&self, ctx: &Ctx<Flexus>, req: CheckPlanRequest) -> Diagnostics {
        let Ok(api) = ctx.data() else {
            return Diagnostics::new();
        };
        let c = &req.config;
        let bound = |a: &str| {
            AttrPath::new("bounds")
                .attr(a)
                .get(c)
                .and_then(Value::as_number)
                .and_then(|n| n.as_u64())
                .and_then(|n| u32::try_from(n).ok())
        };
        let pool = c.attr("pool").and_then(Value::as_str);
        let ns = api.namespace_for(c.attr("namespace").and_then(Value::as_str));
        let (Some(min), Some(max), Some(pool), Ok(ns)) = (bound("min"), bound("max"), pool, ns)
        else {
            return Diagnostics::new();
        };
        let pool_bounds = match api.planned_pool_bounds(&ns, pool) {
            Some(b) => b,
            None => {
                let (n, p) = (ns.clone(), pool.to_string());
                match api
                    .lookup(|cl| async move { cl.get_pool(&n, &p).await })
                    .await
                {
                    Some(Ok(v)) if v.value.status.phase != flexus_api::PoolPhase::Deleting => {
                        (v.value.spec.min_size, v.value.spec.max_size)
                    }
                    _ => return Diagnostics::new(),
                }
            }
        };
        let bounds = flexus_policy::Bounds {
            min,
            max,
            initial: None,
        };
        let mut d = Diagnostics::new();
        for e in flexus_api::policy_bounds_errors(&bounds, pool_bounds, &format!("{ns}/{pool}")) {
            d.push(
                Diagnostic::error("Policy bounds outside the pool's", e.message)
                    .at(field_to_attr(Object::Policy, &e.field)),
            );
        }
        d
    }

    /// Attributes the configuration leaves unset get the values flexus-policy gives them
    /// (so import, which cannot know how the configuration spells defaults, renders them
    /// explicitly and a configuration that spells a default plans no change).
    fn modify_plan(&self, change: &mut PlanChange) -> Result<(), Diagnostics> {
        if !change.config.is_wholly_known() {
            return Ok(());
        }
        let Ok(m) = tfplugin::model::from_value::<PolicyModel>(&change.config, Self::TYPE_NAME)
        else {
            return Ok(());
        };
        let Ok(spec) = m.to_spec() else {
            return Ok(());
        };
        let mut explicit = PolicyModel::explicit("", "", &m.name, &spec);
        // Only what flexus-policy decides; id and namespace are the framework's to plan.
        explicit.id = None;
        explicit.namespace = None;
        if let Ok(v) = tfplugin::model::to_value(&explicit, policy_type(), Self::TYPE_NAME) {
            change.fill_unset(&v);
        }
        Ok(())
    }

    async fn create(
        &self,
        ctx: &Ctx<Flexus>,
        req: CreateRequest<PolicyModel>,
    ) -> Result<PolicyModel, Diagnostics> {
        let api = ctx.data()?;
        let m = req.planned;
        let (ns, put) = put_policy(api, &m, "create", Precondition::IfAbsent).await?;
        let stored = match put {
            Ok(v) => v.value,
            Err(e) if e.is_precondition_failed() => {
                return Err(Diagnostic::error(
                    "Policy already exists",
                    format!(
                        "policy {ns}/{} already exists in the agent; import it with `terraform import <address> {ns}/{}`",
                        m.name, m.name
                    ),
                )
                .at(AttrPath::new("name"))
                .into());
            }
            Err(e) => {
                return Err(to_diagnostics(
                    Object::Policy,
                    "Cannot create the autoscaling policy",
                    &e,
                ));
            }
        };
        Ok(m.stored_as(stored.id, ns))
    }

    async fn read(
        &self,
        ctx: &Ctx<Flexus>,
        req: ReadRequest<PolicyModel>,
    ) -> Result<Option<PolicyModel>, Diagnostics> {
        let api = ctx.data()?;
        let ns = api.namespace_for(req.state.namespace.as_deref())?;
        let name = req.state.name.clone();
        let got = get_policy(api, &ns, &name).await?;
        Ok(got.map(|p| {
            PolicyModel::from_policy(&p.id, &p.namespace, &p.name, &p.spec, Some(&req.state))
        }))
    }

    async fn update(
        &self,
        ctx: &Ctx<Flexus>,
        req: UpdateRequest<PolicyModel>,
    ) -> Result<PolicyModel, Diagnostics> {
        let api = ctx.data()?;
        let m = req.planned;
        let (ns, put) = put_policy(api, &m, "update", Precondition::None).await?;
        let stored = put.map_err(|e| {
            to_diagnostics(Object::Policy, "Cannot update the autoscaling policy", &e)
        })?;
        Ok(m.stored_as(stored.value.id, ns))
    }

    async fn delete(
        &self,
        ctx: &Ctx<Flexus>,
        req: DeleteRequest<PolicyModel>,
    ) -> Result<(), Diagnostics> {
        let api = ctx.data()?;
        let ns = api.namespace_for(req.prior.namespace.as_deref())?;
        let name = req.prior.name.clone();
        let what = format!("delete policy {ns}/{name}");
        // Deleting a policy that is already gone succeeds.
        api.call_if_exists(&what, |c| {
            let (ns, name) = (ns.clone(), name.clone());
            async move { c.delete_policy(&ns, &name, Precondition::None).await }
        })
        .await
        .map(|_| ())
        .map_err(|e| to_diagnostics(Object::Policy, "Cannot delete the autoscaling policy", &e))
    }

    async fn import(
        &self,
        ctx: &Ctx<Flexus>,
        req: ImportRequest,
    ) -> Result<Option<PolicyModel>, Diagnostics> {
        let api = ctx.data()?;
        let (ns, name) = api.split_id(&req.id)?;
        match get_policy(api, &ns, &name).await? {
            Some(p) => Ok(Some(PolicyModel::from_policy(
                &p.id,
                &p.namespace,
                &p.name,
                &p.spec,
                None,
            ))),
            None => Err(Diagnostic::error(
                "Cannot import the autoscaling policy",
                format!("policy {ns}/{name} does not exist in the agent"),
            )
            .into()),
        }
    }
}

/// Checks the planned policy with `flexus-policy` and sends it (`verb` names the request in
/// errors): the namespace and the agent's answer.
async fn put_policy(
    api: &Flexus,
    m: &PolicyModel,
    verb: &str,
    pre: Precondition,
) -> Result<(String, Result<Versioned<Policy>, ProviderError>), Diagnostics> {
    let ns = api.namespace_for(m.namespace.as_deref())?;
    let spec = m.to_spec()?;
    let what = format!("{verb} policy {ns}/{}", m.name);
    let put = api
        .call(&what, |c| {
            let (ns, name, spec, pre) = (ns.clone(), m.name.clone(), spec.clone(), pre.clone());
            async move { c.put_policy(&ns, &name, &spec, pre).await }
        })
        .await;
    Ok((ns, put))
}

async fn get_policy(api: &Flexus, ns: &str, name: &str) -> Result<Option<Policy>, Diagnostics> {
    let what = format!("read policy {ns}/{name}");
    api.call_if_exists(&what, |c| {
        let (ns, name) = (ns.to_string(), name.to_string());
        async move { c.get_policy(&ns, &name).await }
    })
    .await
    .map(|v| v.map(|v| v.value))
    .map_err(|e| to_diagnostics(Object::Policy, "Cannot read the autoscaling policy", &e))
}
