//! Resource `flexus_x_pool`: the declared template and bounds of a pool of Flexus X
//! instances. Terraform owns the declaration; the agent owns the instances. Apply waits
//! until the agent reports at least `min_size` ready instances.
//!
//! Drift rules: `read` compares the declaration in the agent with the one in state. When
//! they mean the same thing, state keeps its own spelling (no diff); when someone changed
//! the declaration outside Terraform, the agent's version is returned and the plan shows
//! it. The live instance count (`current_size`, `ready_size`, `instance_ids`, `status`) is
//! computed and refreshed, never planned, so the agent scaling a pool is never drift.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use flexus_api::{
    DEFAULT_BOOT_SECONDS, DEFAULT_WARMUP_SECONDS, InstanceRefresh, Pool, PoolPhase, PoolSpec,
    PoolStatus, Precondition, RefreshStrategy, RemovalRule, RootVolume, SpotSpec, Versioned,
};
use flexus_policy::names::wire_names;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tfplugin::{
    AttrPath, CheckPlanRequest, CreateRequest, Ctx, DeleteRequest, Diagnostic, Diagnostics,
    ImportRequest, Operation, PlanChange, ReadRequest, Resource, ResourceSchema, Timeouts,
    UpdateRequest, Value, modifiers,
};

use crate::errors::{Object, ProviderError, pool_field_errors, to_diagnostics};
use crate::provider::Flexus;

/// Default of `wait_for_capacity_timeout`.
pub const DEFAULT_WAIT: &str = "10m";

/// The names the agent accepts for pools and policies (`flexus_api::validate_name`): 1-40
/// characters of `a-z`, `0-9` and `-`, starting with a letter and not ending with `-`.
pub const NAME_PATTERN: &str = r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$";

/// A pool of Flexus X instances managed by the Flexus agent. Terraform declares the
/// instance template and the size bounds; the agent creates and deletes the instances
/// (following the pool's `flexus_autoscaling_policy`, if any). Instance count changes made
/// by the agent never show as drift; changes to the declaration made outside Terraform do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PoolModel {
    /// The pool's id, `<namespace>/<name>`.
    #[schemars(extend("x-tf" = {"computed": true, "use_state_for_unknown": true}))]
    pub id: Option<String>,
    /// Namespace of the pool; defaults to the provider's `namespace`. Changing it replaces the pool.
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub namespace: Option<String>,
    /// Name of the pool: 1-40 characters of `a-z`, `0-9` and `-`, starting with a letter.
    /// Changing it replaces the pool.
    #[schemars(regex(pattern = NAME_PATTERN))]
    #[schemars(extend("x-tf" = {"requires_replace": true}))]
    pub name: String,
    /// ECS flavor of every instance, e.g. `x1.8u.16g` or a GPU flavor.
    pub flavor: String,
    /// Image id of every instance.
    pub image: String,
    /// VPC the instances are created in.
    pub vpc_id: String,
    /// Subnets of the instances (at least one; the first is the primary NIC).
    #[schemars(length(min = 1))]
    pub subnet_ids: Vec<String>,
    /// Security groups of the instances.
    pub security_group_ids: Option<Vec<String>>,
    /// Availability zones to spread instances over (round robin); unset lets the cloud choose.
    pub availability_zones: Option<Vec<String>>,
    /// Name of the SSH key pair.
    pub key_pair: Option<String>,
    /// Cloud-init user data, as plain text (the agent encodes it).
    pub user_data: Option<String>,
    /// Root disk of every instance (default: `GPSSD`, 40 GiB).
    pub root_volume: Option<RootVolumeModel>,
    /// Fewest instances the agent keeps. Apply waits until this many are ready.
    pub min_size: u32,
    /// Most instances the agent creates.
    pub max_size: u32,
    /// Instances created before any policy decides; defaults to `min_size`.
    pub initial_size: Option<u32>,
    /// Spot purchase settings.
    pub spot: Option<SpotModel>,
    /// Seconds from create until an instance runs (used for predictive lead time).
    #[schemars(extend("x-tf" = {"default": DEFAULT_BOOT_SECONDS}))]
    pub boot_seconds: Option<u32>,
    /// Seconds from running until an instance serves (model load); metrics of warming instances are ignored.
    #[schemars(extend("x-tf" = {"default": DEFAULT_WARMUP_SECONDS}))]
    pub warmup_seconds: Option<u32>,
    /// Which instances go first on scale-in: `spot_newest_first` (default), `newest_first`,
    /// `oldest_first`, `oldest_template_first` (instances of an older template first).
    #[schemars(extend("x-tf" = {"default": "spot_newest_first"}))]
    pub removal_rule: Option<String>,
    /// Extra tags put on every instance (at most 6; keys starting with `flexus-` are reserved).
    pub tags: Option<BTreeMap<String, String>>,
    /// How running instances are replaced when a template field (`flavor`, `image`,
    /// `user_data`, `root_volume`, `security_group_ids`, `key_pair`) changes; apply waits
    /// until the refresh has finished (`timeouts.update`). Default: rolling, 90 % healthy,
    /// surge 1.
    pub instance_refresh: Option<InstanceRefreshModel>,
    /// How long apply waits for `min_size` ready instances, as a duration (`"10m"`, `"90s"`,
    /// `"1d"`); `"0s"` does not wait. The `timeouts` block bounds the whole create or update.
    #[schemars(extend("x-tf" = {"default": "10m"}))]
    pub wait_for_capacity_timeout: Option<String>,
    /// Instances that exist and are not being removed (the agent decides this number).
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub current_size: Option<u32>,
    /// Instances that are ready to serve.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub ready_size: Option<u32>,
    /// Ids of the pool's instances.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub instance_ids: Option<Vec<String>>,
    /// The pool's phase as the agent reports it: `pending`, `ready`, `scaling`, `degraded`, `deleting`.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub status: Option<String>,
}

/// Root disk settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RootVolumeModel {
    /// Disk type, e.g. `SSD`, `GPSSD`, `SAS`.
    #[serde(rename = "type")]
    #[schemars(extend("x-tf" = {"default": "GPSSD"}))]
    pub volume_type: Option<String>,
    /// Size in GiB (1-1024).
    #[schemars(extend("x-tf" = {"default": 40}))]
    pub size: Option<u32>,
}

/// Instance refresh settings of a pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InstanceRefreshModel {
    /// `rolling` (replace in batches) or `on_scale_in` (outdated instances stay until a
    /// scale-in removes them).
    #[schemars(extend("x-tf" = {"default": "rolling"}))]
    pub strategy: Option<String>,
    /// Percentage (0-100) of the desired count kept ready throughout, rounded up.
    #[schemars(extend("x-tf" = {"default": 90}))]
    pub min_healthy_percentage: Option<u32>,
    /// Replacements launched at once above the desired count (0-100).
    #[schemars(extend("x-tf" = {"default": 1}))]
    pub max_surge: Option<u32>,
}

/// Spot purchase settings of a pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SpotModel {
    /// Whether spot instances are used at all.
    #[schemars(extend("x-tf" = {"default": false}))]
    pub enabled: Option<bool>,
    /// Highest hourly price for a spot instance, as a decimal string; unset means the on-demand price.
    pub max_price: Option<String>,
    /// Instances that are always on-demand before any spot is used.
    #[schemars(extend("x-tf" = {"default": 0}))]
    pub on_demand_base: Option<u32>,
    /// Percentage (0-100) of the capacity above the base that is spot.
    #[schemars(extend("x-tf" = {"default": 0}))]
    pub spot_percentage: Option<u32>,
    /// When spot capacity is sold out, create on-demand instances instead.
    #[schemars(extend("x-tf" = {"default": true}))]
    pub fallback_to_on_demand: Option<bool>,
}

impl PoolModel {
    /// The agent's spec for this declaration (defaults filled as the agent would).
    pub fn to_spec(&self) -> PoolSpec {
        let rv_default = RootVolume::default();
        let spot_default = SpotSpec::default();
        PoolSpec {
            flavor: self.flavor.clone(),
            image: self.image.clone(),
            vpc_id: self.vpc_id.clone(),
            subnet_ids: self.subnet_ids.clone(),
            security_group_ids: self.security_group_ids.clone().unwrap_or_default(),
            availability_zones: self.availability_zones.clone().unwrap_or_default(),
            key_pair: self.key_pair.clone(),
            user_data: self.user_data.clone(),
            root_volume: match &self.root_volume {
                None => rv_default,
                Some(r) => RootVolume {
                    volume_type: r.volume_type.clone().unwrap_or(rv_default.volume_type),
                    size: r.size.unwrap_or(rv_default.size),
                },
            },
            min_size: self.min_size,
            max_size: self.max_size,
            initial_size: self.initial_size,
            spot: match &self.spot {
                None => spot_default,
                Some(s) => SpotSpec {
                    enabled: s.enabled.unwrap_or(spot_default.enabled),
                    max_price: s.max_price.clone(),
                    on_demand_base: s.on_demand_base.unwrap_or(spot_default.on_demand_base),
                    spot_percentage: s.spot_percentage.unwrap_or(spot_default.spot_percentage),
                    fallback_to_on_demand: s
                        .fallback_to_on_demand
                        .unwrap_or(spot_default.fallback_to_on_demand),
                },
            },
            boot_seconds: self.boot_seconds.unwrap_or(DEFAULT_BOOT_SECONDS),
            warmup_seconds: self.warmup_seconds.unwrap_or(DEFAULT_WARMUP_SECONDS),
            removal_rule: self
                .removal_rule
                .as_deref()
                .and_then(|r| r.parse().ok())
                .unwrap_or_default(),
            tags: self.tags.clone().unwrap_or_default(),
            instance_refresh: match &self.instance_refresh {
                None => InstanceRefresh::default(),
                Some(r) => {
                    let d = InstanceRefresh::default();
                    InstanceRefresh {
                        strategy: r
                            .strategy
                            .as_deref()
                            .and_then(|r| r.parse().ok())
                            .unwrap_or(d.strategy),
                        min_healthy_percentage: r
                            .min_healthy_percentage
                            .unwrap_or(d.min_healthy_percentage),
                        max_surge: r.max_surge.unwrap_or(d.max_surge),
                    }
                }
            },
        }
    }

    /// The model for a pool read from the agent. With `prior` (state), a declaration that
    /// means the same keeps the prior spelling; otherwise fields equal to their defaults are
    /// left unset where `prior` left them unset (or always, on import).
    pub fn from_pool(pool: &Pool, prior: Option<&PoolModel>) -> PoolModel {
        let mut m = match prior {
            Some(p) if p.to_spec() == pool.spec => p.clone(),
            _ => Self::render(pool, prior),
        };
        m.id = Some(pool.id.clone());
        m.namespace = Some(pool.namespace.clone());
        m.name = pool.name.clone();
        m.set_status(&pool.status);
        m
    }

    fn render(pool: &Pool, prior: Option<&PoolModel>) -> PoolModel {
        let s = &pool.spec;
        let keep = |prior_set: bool, is_default: bool| prior_set || !is_default;
        let p = prior;
        PoolModel {
            id: None,
            namespace: None,
            name: pool.name.clone(),
            flavor: s.flavor.clone(),
            image: s.image.clone(),
            vpc_id: s.vpc_id.clone(),
            subnet_ids: s.subnet_ids.clone(),
            security_group_ids: keep(
                p.is_some_and(|p| p.security_group_ids.is_some()),
                s.security_group_ids.is_empty(),
            )
            .then(|| s.security_group_ids.clone()),
            availability_zones: keep(
                p.is_some_and(|p| p.availability_zones.is_some()),
                s.availability_zones.is_empty(),
            )
            .then(|| s.availability_zones.clone()),
            key_pair: s.key_pair.clone(),
            user_data: s.user_data.clone(),
            root_volume: keep(
                p.is_some_and(|p| p.root_volume.is_some()),
                s.root_volume == RootVolume::default(),
            )
            .then(|| RootVolumeModel {
                volume_type: Some(s.root_volume.volume_type.clone()),
                size: Some(s.root_volume.size),
            }),
            min_size: s.min_size,
            max_size: s.max_size,
            initial_size: s.initial_size,
            spot: keep(
                p.is_some_and(|p| p.spot.is_some()),
                s.spot == SpotSpec::default(),
            )
            .then(|| SpotModel {
                enabled: Some(s.spot.enabled),
                max_price: s.spot.max_price.clone(),
                on_demand_base: Some(s.spot.on_demand_base),
                spot_percentage: Some(s.spot.spot_percentage),
                fallback_to_on_demand: Some(s.spot.fallback_to_on_demand),
            }),
            boot_seconds: Some(s.boot_seconds),
            warmup_seconds: Some(s.warmup_seconds),
            removal_rule: Some(s.removal_rule.as_str().to_string()),
            tags: keep(p.is_some_and(|p| p.tags.is_some()), s.tags.is_empty())
                .then(|| s.tags.clone()),
            instance_refresh: keep(
                p.is_some_and(|p| p.instance_refresh.is_some()),
                s.instance_refresh == InstanceRefresh::default(),
            )
            .then(|| InstanceRefreshModel {
                strategy: Some(s.instance_refresh.strategy.as_str().to_string()),
                min_healthy_percentage: Some(s.instance_refresh.min_healthy_percentage),
                max_surge: Some(s.instance_refresh.max_surge),
            }),
            wait_for_capacity_timeout: Some(
                p.and_then(|p| p.wait_for_capacity_timeout.clone())
                    .unwrap_or_else(|| DEFAULT_WAIT.to_string()),
            ),
            current_size: None,
            ready_size: None,
            instance_ids: None,
            status: None,
        }
    }

    fn set_status(&mut self, st: &PoolStatus) {
        self.current_size = Some(st.current_size);
        self.ready_size = Some(st.ready_size);
        self.instance_ids = Some(st.instance_ids.clone());
        self.status = Some(st.phase.as_str().to_string());
    }

    fn wait_timeout(&self) -> Result<Duration, Diagnostics> {
        let text = self
            .wait_for_capacity_timeout
            .as_deref()
            .unwrap_or(DEFAULT_WAIT);
        flexus_policy::parse_duration(text).map_err(|e| {
            Diagnostic::error(
                "Invalid wait_for_capacity_timeout",
                format!("wait_for_capacity_timeout: {e}"),
            )
            .at(AttrPath::new("wait_for_capacity_timeout"))
            .into()
        })
    }
}

/// `flexus_x_pool`.
#[derive(Debug, Clone, Copy)]
pub struct PoolResource;

/// What the agent reports and only refresh changes.
const LIVE: [&str; 4] = ["current_size", "ready_size", "instance_ids", "status"];
/// Attributes whose change makes the agent add or remove instances.
const SIZES: [&str; 3] = ["min_size", "max_size", "initial_size"];
/// The template fields: a change makes an instance refresh replace the running instances
/// (`PoolSpec::template_hash` covers the same fields).
const TEMPLATE: [&str; 6] = [
    "flavor",
    "image",
    "user_data",
    "root_volume",
    "security_group_ids",
    "key_pair",
];
/// Fields of new instances that running ones keep (no refresh replaces them).
const KEPT_BY_RUNNING: [&str; 3] = ["vpc_id", "subnet_ids", "tags"];

/// Default of `timeouts { create, update }`: the whole call, the capacity wait included
/// (so it is longer than the default `wait_for_capacity_timeout`).
const CREATE_TIMEOUT: Duration = Duration::from_secs(20 * 60);
/// Default of `timeouts { delete }`: how long destroy waits for the agent to remove every
/// instance.
const DELETE_TIMEOUT: Duration = Duration::from_secs(600);
/// Default of `timeouts { update }`: the whole call, an instance refresh included.
const UPDATE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const POLL: Duration = Duration::from_millis(500);

impl Resource for PoolResource {
    type Data = Flexus;
    type Model = PoolModel;

    const TYPE_NAME: &str = "flexus_x_pool";

    fn schema(&self) -> Result<ResourceSchema, tfplugin::Error> {
        ResourceSchema::from_model::<PoolModel>()?
            .timeouts(
                Timeouts::new()
                    .op(Operation::Create, CREATE_TIMEOUT)
                    .op(Operation::Update, UPDATE_TIMEOUT)
                    .op(Operation::Delete, DELETE_TIMEOUT)
                    .parser(flexus_policy::parse_duration),
            )
            .attribute("namespace", |a| {
                // Keep the prior namespace when the configuration does not set one, then
                // replace only if the (possibly kept) value changed.
                a.plan_modifier(modifiers::use_state_for_unknown())
                    .plan_modifier(modifiers::requires_replace())
            })?
            .attribute("removal_rule", |a| {
                a.validator(tfplugin::validators::one_of(wire_names::<RemovalRule>()))
            })?
            .attribute_at(&AttrPath::new("instance_refresh").attr("strategy"), |a| {
                a.validator(tfplugin::validators::one_of(wire_names::<RefreshStrategy>()))
            })?
            .attribute("wait_for_capacity_timeout", |a| {
                a.validator(crate::provider::duration_validator())
            })
    }

    /// An update keeps what it cannot change: the live count (`current_size`, `ready_size`,
    /// `instance_ids`, `status`) stays as last read unless the size bounds change, so a
    /// one-line change shows as one line. A change of the instance template warns that
    /// running instances keep the old one.
    /// An update keeps the live attributes as last read unless it changes the size bounds
    /// or replaces instances (a template change under a rolling refresh), and says what a
    /// template change does to the running instances.
    fn modify_plan(&self, change: &mut PlanChange) -> Result<(), Diagnostics> {
        let Some(prior) = change.prior.clone() else {
            return Ok(());
        };
        let changed = |a: &str| {
            let p = change.planned.attr(a).unwrap_or(&Value::Null);
            p.is_unknown() || !p.equals(prior.attr(a).unwrap_or(&Value::Null))
        };
        let replaces = TEMPLATE.iter().any(|a| changed(a))
            && planned_strategy(&change.config) != RefreshStrategy::OnScaleIn;
        let resized = SIZES.iter().any(|a| changed(a));
        let kept: Vec<&str> = KEPT_BY_RUNNING
            .iter()
            .copied()
            .filter(|a| changed(a))
            .collect();
        if !replaces && !resized {
            for a in LIVE {
                change.set(
                    &AttrPath::new(a),
                    prior.attr(a).cloned().unwrap_or(Value::Null),
                )?;
            }
        }
        if let Some(w) = refresh_warning(Some(&prior), &change.config) {
            change.warnings.push(w);
        }
        let running = prior.attr("instance_ids").and_then(Value::len).unwrap_or(0);
        if !kept.is_empty() && running > 0 {
            change.warnings.push(
                Diagnostic::warning(
                    "Running instances keep their network and tags",
                    format!(
                        "Changing {} applies to the instances the agent creates from now on. The {running} \
                         running instance(s) keep theirs until the pool scales in: instance refresh replaces \
                         instances only when {} changes.",
                        kept.join(", "),
                        TEMPLATE.join(", ")
                    ),
                )
                .at(AttrPath::new(kept[0])),
            );
        }
        Ok(())
    }

    /// Checks against the agent and the cloud, at plan: the whole declaration with the
    /// agent's own checks when it is known (a dry-run PUT: what ECS can never create, an
    /// unknown flavor or image), otherwise a known image against the project's images, a known flavor against the flavors the cloud offers (a sold-out one
    /// warns) and `min_size` instances of it against the project's quota (beyond the quota
    /// is an error; beyond what is free, a warning). Records the pool's bounds for the plan
    /// of its policy. Skipped when the agent cannot be reached.
    async fn check_plan(&self, ctx: &Ctx<Flexus>, req: CheckPlanRequest) -> Diagnostics {
        let Ok(api) = ctx.data() else {
            return Diagnostics::new();
        };
        let c = &req.config;
        let text = |a: &str| c.attr(a).and_then(Value::as_str);
        let size = |a: &str| {
            c.attr(a)
                .and_then(Value::as_number)
                .and_then(|n| n.as_u64())
        };
        let (Some(name), Ok(ns)) = (text("name"), api.namespace_for(text("namespace"))) else {
            return Diagnostics::new();
        };
        if let (Some(min), Some(max)) = (size("min_size"), size("max_size")) {
            let b = (
                u32::try_from(min).unwrap_or(u32::MAX),
                u32::try_from(max).unwrap_or(u32::MAX),
            );
            api.plan_pool_bounds(&ns, name, b);
        }
        let mut d = Diagnostics::new();
        if c.is_wholly_known()
            && let Ok(m) = tfplugin::model::from_value::<PoolModel>(c, Self::TYPE_NAME)
        {
            let spec = m.to_spec();
            let (what, n) = (format!("check pool {ns}/{name}"), name.to_string());
            if let Some(Err(e)) = api
                .lookup(|cl| async move { cl.check_pool(&ns, &n, &spec).await })
                .await
                && matches!(e.status(), Some(400 | 422))
            {
                let e = ProviderError::Api { what, source: e };
                return to_diagnostics(Object::Pool, "Invalid pool", &e);
            }
        } else if let Some(image) = text("image").filter(|i| !i.trim().is_empty()) {
            // The dry run above checks the image of a wholly known pool; a pool with
            // unknown values still learns at plan that its image does not exist.
            d.extend(image_exists(api, image, planned_root_size(c)).await);
        }
        let Some(flavor) = text("flavor") else {
            return d;
        };
        d.extend(flavor_offered(api, flavor).await);
        if let Some(min) = size("min_size") {
            d.extend(fits_quota(api, flavor, min, req.prior.is_none()).await);
        }
        d
    }

    fn validate_model(&self, m: &PoolModel) -> Diagnostics {
        // The spec's own rules, as the agent runs them on PUT (the framework runs this over
        // rounds standing in for unknown values).
        let mut m = m.clone();
        m.removal_rule = m.removal_rule.filter(|r| r.parse::<RemovalRule>().is_ok());
        pool_field_errors(&m.to_spec().validate(""))
    }

    async fn create(
        &self,
        ctx: &Ctx<Flexus>,
        req: CreateRequest<PoolModel>,
    ) -> Result<PoolModel, Diagnostics> {
        let api = ctx.data()?;
        let m = req.planned;
        let (ns, spec, put) = put_pool(api, &m, "create", Precondition::IfAbsent).await?;
        let stored = match put {
            Ok(v) => v.value,
            Err(e) if e.is_precondition_failed() => {
                // A pool with this name exists. If it is exactly this declaration (an apply
                // whose state was lost after the pool was written), adopt it; otherwise refuse.
                match get_pool(api, &ns, &m.name).await? {
                    Some(p) if p.spec == spec && p.status.phase != PoolPhase::Deleting => p,
                    _ => {
                        return Err(Diagnostic::error(
                            "Pool already exists",
                            format!(
                                "pool {ns}/{} already exists in the agent with a different declaration; import it with \
                                 `terraform import <address> {ns}/{}` or choose another name",
                                m.name, m.name
                            ),
                        )
                        .at(AttrPath::new("name"))
                        .into());
                    }
                }
            }
            Err(e) => return Err(to_diagnostics(Object::Pool, "Cannot create the pool", &e)),
        };
        // From here on the pool exists in the agent: if waiting fails, Terraform keeps it
        // in state as tainted, so the next apply replaces it and destroy removes it.
        let mut written = m.clone();
        written.id = Some(stored.id.clone());
        written.namespace = Some(ns.clone());
        written.set_status(&stored.status);
        ctx.keep_partial(&written)?;
        settle(ctx, api, ns, m).await
    }

    async fn read(
        &self,
        ctx: &Ctx<Flexus>,
        req: ReadRequest<PoolModel>,
    ) -> Result<Option<PoolModel>, Diagnostics> {
        let api = ctx.data()?;
        let ns = api.namespace_for(req.state.namespace.as_deref())?;
        match get_pool(api, &ns, &req.state.name).await? {
            None => Ok(None),
            Some(p) if p.status.phase == PoolPhase::Deleting => Ok(None),
            Some(p) => Ok(Some(PoolModel::from_pool(&p, Some(&req.state)))),
        }
    }

    async fn update(
        &self,
        ctx: &Ctx<Flexus>,
        req: UpdateRequest<PoolModel>,
    ) -> Result<PoolModel, Diagnostics> {
        let api = ctx.data()?;
        let m = req.planned;
        let (ns, spec, put) = put_pool(api, &m, "update", Precondition::None).await?;
        put.map_err(|e| to_diagnostics(Object::Pool, "Cannot update the pool", &e))?;
        let replaced = req.prior.to_spec().template_hash() != spec.template_hash();
        if replaced && spec.instance_refresh.strategy == RefreshStrategy::Rolling {
            let timeout = ctx.timeout().unwrap_or(UPDATE_TIMEOUT);
            wait_for_refresh(ctx, api, &ns, &m.name, &spec.template_hash(), timeout).await?;
        }
        let kept = m.current_size.is_some().then(|| m.clone());
        let mut out = settle(ctx, api, ns, m).await?;
        // The plan kept the live count as last read: the next refresh reports the new one.
        if let Some(k) = kept {
            out.current_size = k.current_size;
            out.ready_size = k.ready_size;
            out.instance_ids = k.instance_ids;
            out.status = k.status;
        }
        Ok(out)
    }

    async fn delete(
        &self,
        ctx: &Ctx<Flexus>,
        req: DeleteRequest<PoolModel>,
    ) -> Result<(), Diagnostics> {
        let api = ctx.data()?;
        let ns = api.namespace_for(req.prior.namespace.as_deref())?;
        let name = req.prior.name.clone();
        let what = format!("delete pool {ns}/{name}");
        let deleted = api
            .call_if_exists(&what, |c| {
                let (ns, name) = (ns.clone(), name.clone());
                async move { c.delete_pool(&ns, &name, Precondition::None).await }
            })
            .await
            .map_err(|e| to_diagnostics(Object::Pool, "Cannot delete the pool", &e))?;
        if deleted.is_none() {
            // Already gone.
            return Ok(());
        }
        // The agent drains and deletes the instances, then forgets the pool.
        let timeout = ctx.timeout().unwrap_or(DELETE_TIMEOUT);
        let start = Instant::now();
        loop {
            let Some(p) = get_pool(api, &ns, &name).await? else {
                return Ok(());
            };
            if start.elapsed() >= timeout {
                return Err(Diagnostic::error(
                    "Timed out deleting the pool",
                    format!(
                        "pool {ns}/{name} still has {} instance(s) after {}s (phase {}); the agent keeps deleting them",
                        p.status.instances.len(),
                        timeout.as_secs(),
                        p.status.phase.as_str()
                    ),
                )
                .into());
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = ctx.cancelled() => return Err(Diagnostic::error("Interrupted", format!("stopped while deleting pool {ns}/{name}")).into()),
            }
        }
    }

    async fn import(
        &self,
        ctx: &Ctx<Flexus>,
        req: ImportRequest,
    ) -> Result<Option<PoolModel>, Diagnostics> {
        let api = ctx.data()?;
        let (ns, name) = api.split_id(&req.id)?;
        match get_pool(api, &ns, &name).await? {
            Some(p) if p.status.phase != PoolPhase::Deleting => {
                Ok(Some(PoolModel::from_pool(&p, None)))
            }
            _ => Err(Diagnostic::error(
                "Cannot import the pool",
                format!("pool {ns}/{name} does not exist in the agent"),
            )
            .into()),
        }
    }
}

/// The cloud refused the pool's declaration itself (the agent's last pass failed with a
/// permanent error): waiting longer cannot help, so apply stops with the cloud's message.
fn refused_by_cloud(ns: &str, name: &str, st: &PoolStatus) -> Option<Diagnostic> {
    let permanent = st.last_error_detail.as_ref().is_some_and(|d| d.permanent);
    if st.phase != PoolPhase::Degraded || !permanent {
        return None;
    }
    let why = st.last_error.as_deref().unwrap_or("no message");
    Some(Diagnostic::error(
        "The cloud refused to create the pool's instances",
        format!(
            "pool {ns}/{name}: {why}\n\nThe cloud refused the request itself: sending it again cannot \
             succeed until something changes (the declaration, the quota, the cloud's stock). The pool \
             is kept in state as tainted: apply again once fixed (it is replaced), or destroy it."
        ),
    ))
}

/// Checks the planned declaration with the agent's rules and sends it (`verb` names the
/// request in errors): the namespace, the spec sent, and the agent's answer.
async fn put_pool(
    api: &Flexus,
    m: &PoolModel,
    verb: &str,
    pre: Precondition,
) -> Result<(String, PoolSpec, Result<Versioned<Pool>, ProviderError>), Diagnostics> {
    let ns = api.namespace_for(m.namespace.as_deref())?;
    let spec = m.to_spec();
    pool_field_errors(&spec.validate("")).into_result()?;
    let what = format!("{verb} pool {ns}/{}", m.name);
    let put = api
        .call(&what, |c| {
            let (ns, name, spec, pre) = (ns.clone(), m.name.clone(), spec.clone(), pre.clone());
            async move { c.put_pool(&ns, &name, &spec, pre).await }
        })
        .await;
    Ok((ns, spec, put))
}

/// Reads a pool; `None` when the agent does not know it.
pub async fn get_pool(api: &Flexus, ns: &str, name: &str) -> Result<Option<Pool>, Diagnostics> {
    let what = format!("read pool {ns}/{name}");
    api.call_if_exists(&what, |c| {
        let (ns, name) = (ns.to_string(), name.to_string());
        async move { c.get_pool(&ns, &name).await }
    })
    .await
    .map(|v| v.map(|v| v.value))
    .map_err(|e| to_diagnostics(Object::Pool, "Cannot read the pool", &e))
}

/// Polls the pool until at least `min` instances are ready, `timeout` passes (an error that
/// says what the agent reported last), or Terraform asks the provider to stop.
/// Waits until the written pool `m` has its `min_size` ready instances, then returns `m`
/// with the attributes the agent computes filled in.
async fn settle(
    ctx: &Ctx<Flexus>,
    api: &Flexus,
    ns: String,
    mut m: PoolModel,
) -> Result<PoolModel, Diagnostics> {
    let pool = wait_for_capacity(ctx, api, &ns, &m.name, m.min_size, m.wait_timeout()?).await?;
    m.id = Some(pool.id.clone());
    m.namespace = Some(ns);
    m.set_status(&pool.status);
    Ok(m)
}

async fn wait_for_capacity(
    ctx: &Ctx<Flexus>,
    api: &Flexus,
    ns: &str,
    name: &str,
    min: u32,
    timeout: Duration,
) -> Result<Pool, Diagnostics> {
    let start = Instant::now();
    loop {
        let pool = get_pool(api, ns, name).await?.ok_or_else(|| {
            Diagnostics::from(Diagnostic::error(
                "Pool vanished",
                format!("pool {ns}/{name} was deleted while apply waited for capacity"),
            ))
        })?;
        if pool.status.ready_size >= min {
            return Ok(pool);
        }
        if let Some(d) = refused_by_cloud(ns, name, &pool.status) {
            return Err(d.into());
        }
        if start.elapsed() >= timeout {
            let st = &pool.status;
            return Err(Diagnostic::error(
                "Timed out waiting for capacity",
                format!(
                    "pool {ns}/{name} has {} of min_size {min} instances ready after {}s (current {}, phase {}{}). \
                     The pool exists in the agent and keeps converging; run apply again to keep waiting, or raise \
                     wait_for_capacity_timeout.",
                    st.ready_size,
                    timeout.as_secs(),
                    st.current_size,
                    st.phase.as_str(),
                    st.last_error.as_ref().map(|e| format!(", last error: {e}")).unwrap_or_default()
                ),
            )
            .at(AttrPath::new("wait_for_capacity_timeout"))
            .into());
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = ctx.cancelled() => {
                return Err(Diagnostic::error("Interrupted", format!("stopped while waiting for capacity of pool {ns}/{name}")).into());
            }
        }
    }
}

/// An image against the cloud project's images (asked once per image and provider run):
/// unknown is an error on `image`, one needing a larger disk an error on `root_volume`.
async fn image_exists(api: &Flexus, image: &str, root_gb: Option<u32>) -> Diagnostics {
    match api.image(image).await {
        Some(found) => pool_field_errors(&flexus_api::image_errors(image, root_gb, found.as_ref())),
        None => Diagnostics::new(),
    }
}

/// The root volume size a configuration asks for (the agent's default when the block is
/// absent; `None` while it is unknown).
fn planned_root_size(config: &Value) -> Option<u32> {
    let rv = config.attr("root_volume")?;
    let rv = match rv.as_elements() {
        Some([]) => return Some(RootVolume::default().size),
        Some([one, ..]) => one,
        _ => rv,
    };
    match rv {
        Value::Null => Some(RootVolume::default().size),
        _ => match rv.attr("size")? {
            Value::Null => Some(RootVolume::default().size),
            size => size
                .as_number()?
                .as_u64()
                .and_then(|n| u32::try_from(n).ok()),
        },
    }
}

/// A flavor against the flavors the cloud offers: unknown is an error naming the closest
/// offered names, sold out a warning.
async fn flavor_offered(api: &Flexus, flavor: &str) -> Diagnostics {
    let mut d = Diagnostics::new();
    let Some(offered) = api.offered_flavors().await else {
        return d;
    };
    match offered.iter().find(|f| f.name == flavor) {
        None => d.error_at(
            AttrPath::new("flavor"),
            "Unknown flavor",
            flexus_api::unknown_flavor_message(flavor, &offered),
        ),
        Some(f) if !f.on_sale => d.push(
            Diagnostic::warning(
                "Flavor sold out",
                format!(
                    "the cloud has no capacity for flavor {:?} right now; apply waits up to \
                     wait_for_capacity_timeout for min_size ready instances",
                    f.name
                ),
            )
            .at(AttrPath::new("flavor")),
        ),
        Some(_) => {}
    }
    d
}

/// `min` instances of `flavor` against the project's quota: more than the quota allows can
/// never be created (an error on `min_size`); more than is free now waits for others to go
/// (a warning, for a new pool).
async fn fits_quota(api: &Flexus, flavor: &str, min: u64, creating: bool) -> Diagnostics {
    let mut d = Diagnostics::new();
    let (Some(offered), Some(q)) = (api.offered_flavors().await, api.quota().await) else {
        return d;
    };
    let Some(f) = offered.iter().find(|f| f.name == flavor) else {
        return d;
    };
    let need = [
        ("instances", min, q.max_instances, q.used_instances),
        ("vCPUs", min * u64::from(f.vcpus), q.max_vcpus, q.used_vcpus),
        (
            "MB of memory",
            min * f.memory_mb,
            q.max_memory_mb,
            q.used_memory_mb,
        ),
    ];
    for (what, need, max, used) in need {
        let Some(max) = max else { continue };
        if need > max {
            d.error_at(
                AttrPath::new("min_size"),
                "Beyond the project's quota",
                format!(
                    "min_size {min} of flavor {flavor:?} needs {need} {what}; the project's quota is {max}, \
                     so the pool can never reach min_size (raise the quota or lower min_size)"
                ),
            );
            return d;
        }
        if creating && need > max.saturating_sub(used) {
            d.push(
                Diagnostic::warning(
                    "Quota nearly used up",
                    format!(
                        "min_size {min} of flavor {flavor:?} needs {need} {what}; {} of the quota's {max} are free \
                         now, so apply waits until others are released",
                        max.saturating_sub(used)
                    ),
                )
                .at(AttrPath::new("min_size")),
            );
        }
    }
    d
}

/// The plan's warning when an update changes the template of a pool with a rolling
/// refresh: its running instances will be replaced.
fn refresh_warning(prior: Option<&Value>, config: &Value) -> Option<Diagnostic> {
    let prior: PoolModel = tfplugin::model::from_value(prior?, "flexus_x_pool").ok()?;
    if !config.is_wholly_known() {
        return None;
    }
    let planned: PoolModel = tfplugin::model::from_value(config, "flexus_x_pool").ok()?;
    let (old, new) = (prior.to_spec(), planned.to_spec());
    if old.template_hash() == new.template_hash() {
        return None;
    }
    let r = new.instance_refresh;
    let running = prior.current_size.unwrap_or(0);
    let detail = match r.strategy {
        RefreshStrategy::Rolling => format!(
            "pool {}: the instance template changes ({}), so its {running} running instance(s) will be \
             replaced in batches: up to {} replacement(s) above the desired count, at least {} % of it ready \
             throughout. Apply waits until no instance of the old template is left (timeouts.update).",
            planned.name,
            template_changes(&old, &new).join(", "),
            r.max_surge,
            r.min_healthy_percentage
        ),
        RefreshStrategy::OnScaleIn => format!(
            "pool {}: the instance template changes ({}); with strategy on_scale_in its {running} running \
             instance(s) stay until a scale-in removes them, and only new instances get the new template.",
            planned.name,
            template_changes(&old, &new).join(", ")
        ),
    };
    Some(Diagnostic::warning(
        "Running instances will be replaced",
        detail,
    ))
}

/// The refresh strategy a configuration asks for (the default unless it says otherwise).
fn planned_strategy(config: &Value) -> RefreshStrategy {
    let Some(r) = config.attr("instance_refresh") else {
        return RefreshStrategy::default();
    };
    let r = match r.as_elements() {
        Some([one, ..]) => one,
        Some([]) => return RefreshStrategy::default(),
        None => r,
    };
    r.attr("strategy")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or_default()
}

/// Names of the template fields that differ.
fn template_changes(old: &PoolSpec, new: &PoolSpec) -> Vec<&'static str> {
    let sg = |s: &PoolSpec| {
        let mut v = s.security_group_ids.clone();
        v.sort();
        v.dedup();
        v
    };
    let fields = [
        ("flavor", old.flavor != new.flavor),
        ("image", old.image != new.image),
        ("user_data", old.user_data != new.user_data),
        ("root_volume", old.root_volume != new.root_volume),
        ("security_group_ids", sg(old) != sg(new)),
        ("key_pair", old.key_pair != new.key_pair),
    ];
    fields.into_iter().filter(|f| f.1).map(|f| f.0).collect()
}

/// Polls the pool until the agent reports no refresh running and every instance made
/// from `template`, `timeout` passes (an error with the progress), or Terraform asks
/// the provider to stop.
async fn wait_for_refresh(
    ctx: &Ctx<Flexus>,
    api: &Flexus,
    ns: &str,
    name: &str,
    template: &str,
    timeout: Duration,
) -> Result<(), Diagnostics> {
    let start = Instant::now();
    loop {
        let pool = get_pool(api, ns, name).await?.ok_or_else(|| {
            Diagnostics::from(Diagnostic::error(
                "Pool vanished",
                format!("pool {ns}/{name} was deleted while apply waited for its instance refresh"),
            ))
        })?;
        let st = &pool.status;
        let done = st.template.as_deref() == Some(template)
            && st.refresh.is_none()
            && st.instances.iter().all(|i| !i.outdated);
        if done {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            let progress = st
                .refresh
                .as_ref()
                .map_or_else(|| "not started yet".to_string(), |r| r.summary());
            return Err(Diagnostic::error(
                "Timed out waiting for the instance refresh",
                format!(
                    "pool {ns}/{name}: {progress} after {}s (phase {}{}). The agent keeps replacing \
                     instances; run apply again to keep waiting, or raise timeouts.update.",
                    timeout.as_secs(),
                    st.phase.as_str(),
                    st.last_error.as_ref().map(|e| format!(", last error: {e}")).unwrap_or_default()
                ),
            )
            .into());
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = ctx.cancelled() => {
                return Err(Diagnostic::error("Interrupted", format!("stopped while waiting for the instance refresh of pool {ns}/{name}")).into());
            }
        }
    }
}
