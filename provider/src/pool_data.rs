//! Data source `flexus_x_pool`: a pool's declaration and its live status.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tfplugin::{AttrPath, Ctx, DataSource, Diagnostic, Diagnostics, ReadDataRequest};

use crate::pool::{PoolModel, get_pool};
use crate::provider::Flexus;

/// Reads a pool and its live status from the agent: declaration, sizes, instances.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PoolLookup {
    /// Namespace of the pool; defaults to the provider's `namespace`.
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub namespace: Option<String>,
    /// Name of the pool.
    pub name: String,
    /// The pool's id, `<namespace>/<name>`.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub id: Option<String>,
    /// ECS flavor of the instances.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub flavor: Option<String>,
    /// Image id of the instances.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub image: Option<String>,
    /// Declared minimum size.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub min_size: Option<u32>,
    /// Declared maximum size.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub max_size: Option<u32>,
    /// Size the agent's last decision asked for.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub desired_size: Option<u32>,
    /// Instances that exist and are not being removed.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub current_size: Option<u32>,
    /// Instances ready to serve.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub ready_size: Option<u32>,
    /// Ids of the pool's instances.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub instance_ids: Option<Vec<String>>,
    /// Phase: `pending`, `ready`, `scaling`, `degraded`, `deleting`.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub status: Option<String>,
    /// The agent's last reconcile error, if the pool is degraded.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub last_error: Option<String>,
    /// Explanation of the agent's last decision.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub last_decision: Option<String>,
}

/// `data "flexus_x_pool"`.
#[derive(Debug, Clone, Copy)]
pub struct PoolDataSource;

impl DataSource for PoolDataSource {
    type Data = Flexus;
    type Model = PoolLookup;

    const TYPE_NAME: &str = "flexus_x_pool";

    async fn read(
        &self,
        ctx: &Ctx<Flexus>,
        req: ReadDataRequest<PoolLookup>,
    ) -> Result<PoolLookup, Diagnostics> {
        let api = ctx.data()?;
        let c = req.config;
        let ns = api.namespace_for(c.namespace.as_deref())?;
        let pool = get_pool(api, &ns, &c.name).await?.ok_or_else(|| {
            Diagnostics::from(
                Diagnostic::error(
                    "Pool not found",
                    format!("the agent has no pool {ns}/{}", c.name),
                )
                .at(AttrPath::new("name")),
            )
        })?;
        let m = PoolModel::from_pool(&pool, None);
        Ok(PoolLookup {
            namespace: Some(pool.namespace.clone()),
            name: pool.name.clone(),
            id: Some(pool.id.clone()),
            flavor: Some(pool.spec.flavor.clone()),
            image: Some(pool.spec.image.clone()),
            min_size: Some(pool.spec.min_size),
            max_size: Some(pool.spec.max_size),
            desired_size: pool.status.desired_size,
            current_size: m.current_size,
            ready_size: m.ready_size,
            instance_ids: m.instance_ids,
            status: m.status,
            last_error: pool.status.last_error.clone(),
            last_decision: pool
                .status
                .last_decision
                .as_ref()
                .map(|d| d.explanation.clone()),
        })
    }
}
