//! Data source `flexus_x_flavors`: the flavors the cloud offers, read through the agent
//! (which lists them with the ECS flavors API and caches them). The provider never calls
//! Huawei directly.

use flexus_api::FlavorInfo;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tfplugin::{Ctx, DataSource, Diagnostics, ReadDataRequest};

use crate::errors::{Object, to_diagnostics};
use crate::provider::Flexus;

/// The flavors the cloud offers (read through the agent, which caches the ECS flavor list),
/// filtered by name prefix and size: to pick a flavor by size, or to see which names exist
/// before a pool uses one.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FlavorsLookup {
    /// Only flavors whose name starts with this, e.g. `x1.` for Flexus X.
    pub name_prefix: Option<String>,
    /// Only flavors with at least this many vCPUs.
    pub min_vcpus: Option<u32>,
    /// Only flavors with at least this much memory, in GiB.
    pub min_memory_gib: Option<u32>,
    /// Only flavors with at least this many GPUs.
    pub min_gpus: Option<u32>,
    /// Only flavors that can be bought now (not sold out). Default `false`.
    #[schemars(extend("x-tf" = {"default": false}))]
    pub on_sale_only: Option<bool>,
    /// Names of the matching flavors, smallest first (vCPUs, then memory, then name).
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub names: Option<Vec<String>>,
    /// The matching flavors, in the order of `names`.
    #[schemars(extend("x-tf" = {"computed": true, "block": false}))]
    pub flavors: Option<Vec<FlavorInfo>>,
}

impl FlavorsLookup {
    fn accepts(&self, f: &FlavorInfo) -> bool {
        self.name_prefix
            .as_deref()
            .is_none_or(|p| f.name.starts_with(p))
            && self.min_vcpus.is_none_or(|n| f.vcpus >= n)
            && self
                .min_memory_gib
                .is_none_or(|g| f.memory_mb >= u64::from(g) * 1024)
            && self.min_gpus.is_none_or(|n| f.gpus >= n)
            && (!self.on_sale_only.unwrap_or(false) || f.on_sale)
    }
}

/// `data "flexus_x_flavors"`.
#[derive(Debug, Clone, Copy)]
pub struct FlavorsDataSource;

impl DataSource for FlavorsDataSource {
    type Data = Flexus;
    type Model = FlavorsLookup;

    const TYPE_NAME: &str = "flexus_x_flavors";

    async fn read(
        &self,
        ctx: &Ctx<Flexus>,
        req: ReadDataRequest<FlavorsLookup>,
    ) -> Result<FlavorsLookup, Diagnostics> {
        let api = ctx.data()?;
        let mut all = api
            .call("list the cloud's flavors", |c| async move {
                c.list_flavors().await
            })
            .await
            .map_err(|e| to_diagnostics(Object::Pool, "Cannot list the flavors", &e))?;
        let mut out = req.config;
        all.retain(|f| out.accepts(f));
        all.sort_by(|a, b| (a.vcpus, a.memory_mb, &a.name).cmp(&(b.vcpus, b.memory_mb, &b.name)));
        out.on_sale_only = Some(out.on_sale_only.unwrap_or(false));
        out.names = Some(all.iter().map(|f| f.name.clone()).collect());
        out.flavors = Some(all);
        Ok(out)
    }
}
