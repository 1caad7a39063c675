//! The toy provider: `provider "toyfs" { path = "store.json" }`, resource `toyfs_item`, data
//! source `toyfs_item_lookup`. Shared by the example binary and the tests.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tfplugin::{
    ConfigureRequest, CreateRequest, Ctx, DataSource, DataSources, DeleteRequest, Diagnostic,
    Diagnostics, ImportRequest, Operation, Provider, ReadDataRequest, ReadRequest, Resource,
    ResourceSchema, Resources, ResultExt, Timeouts, UpdateRequest,
};

/// The provider.
#[derive(Debug)]
pub struct ToyFs;

/// Provider configuration.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ToyFsConfig {
    /// Path of the JSON file holding the objects.
    pub path: String,
}

/// The configured store.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    lock: tokio::sync::Mutex<()>,
}

type Items = BTreeMap<String, serde_json::Value>;

impl Store {
    async fn load(&self) -> Result<Items, Diagnostics> {
        match tokio::fs::read(&self.path).await {
            Ok(b) if b.is_empty() => Ok(Items::new()),
            Ok(b) => serde_json::from_slice(&b).summary("store file is not valid JSON"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Items::new()),
            Err(e) => Err(Diagnostic::from_error(
                format!("cannot read {}", self.path.display()),
                &e,
            )
            .into()),
        }
    }
    async fn save(&self, items: &Items) -> Result<(), Diagnostics> {
        let text = serde_json::to_vec_pretty(items).summary("cannot encode the store")?;
        tokio::fs::write(&self.path, text)
            .await
            .summary("cannot write the store file")
    }
    /// Loads, changes and saves the items under the lock.
    async fn edit(&self, change: impl FnOnce(&mut Items)) -> Result<(), Diagnostics> {
        let _g = self.lock.lock().await;
        let mut items = self.load().await?;
        change(&mut items);
        self.save(&items).await
    }
    async fn get(&self, id: &str) -> Result<Option<Item>, Diagnostics> {
        let _g = self.lock.lock().await;
        self.load().await?.get(id).map(stored_item).transpose()
    }
    async fn put(&self, item: &Item) -> Result<(), Diagnostics> {
        let id = item.id.clone().unwrap_or_default();
        let value = serde_json::to_value(item).summary("cannot encode item")?;
        self.edit(|items| {
            items.insert(id, value);
        })
        .await
    }
    async fn remove(&self, id: &str) -> Result<(), Diagnostics> {
        self.edit(|items| {
            items.remove(id);
        })
        .await
    }
    async fn find_by_name(&self, name: &str) -> Result<Option<Item>, Diagnostics> {
        let _g = self.lock.lock().await;
        for v in self.load().await?.values() {
            let item = stored_item(v)?;
            if item.name == name {
                return Ok(Some(item));
            }
        }
        Ok(None)
    }
}

fn stored_item(v: &serde_json::Value) -> Result<Item, Diagnostics> {
    serde_json::from_value(v.clone()).summary("stored item is malformed")
}

impl Provider for ToyFs {
    type Config = ToyFsConfig;
    type Data = Store;

    const TYPE_NAME: &str = "toyfs";
    fn source_address(&self) -> String {
        "registry.terraform.io/tfplugin/toyfs".into()
    }
    async fn configure(&self, req: ConfigureRequest<ToyFsConfig>) -> Result<Store, Diagnostics> {
        Ok(Store {
            path: PathBuf::from(req.config.path),
            lock: tokio::sync::Mutex::new(()),
        })
    }
    fn resources(&self) -> Result<Resources<Store>, tfplugin::Error> {
        Resources::new().with(ItemResource)
    }
    fn data_sources(&self) -> Result<DataSources<Store>, tfplugin::Error> {
        DataSources::new().with(ItemLookup)
    }
}

/// A firewall-like rule of an item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Rule {
    /// Port number.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i64,
    /// Protocol.
    pub protocol: Option<Protocol>,
}

/// A rule's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

/// An object stored in the toy file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Item {
    /// Identifier assigned at create.
    #[schemars(extend("x-tf" = {"computed": true, "use_state_for_unknown": true}))]
    pub id: Option<String>,
    /// Name; changing it replaces the item.
    #[schemars(length(min = 1, max = 32), regex(pattern = r"^[a-z0-9-]+$"))]
    #[schemars(extend("x-tf" = {"requires_replace": true}))]
    pub name: String,
    /// Size in units.
    #[schemars(range(min = 0, max = 1000))]
    pub size: Option<i64>,
    /// A fraction, kept exactly as written.
    pub ratio: Option<f64>,
    /// Colour, "blue" unless set.
    #[schemars(extend("x-tf" = {"default": "blue"}))]
    pub color: Option<String>,
    /// A secret that never shows in plans.
    #[schemars(extend("x-tf" = {"sensitive": true}))]
    pub secret: Option<String>,
    /// Free-form labels.
    pub tags: Option<BTreeMap<String, String>>,
    /// Incremented on every update (known only after apply).
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub revision: Option<i64>,
    /// Rules, in order.
    #[serde(default)]
    pub rule: Vec<Rule>,
}

/// `toyfs_item`.
#[derive(Debug)]
pub struct ItemResource;

impl Resource for ItemResource {
    type Data = Store;
    type Model = Item;

    const TYPE_NAME: &str = "toyfs_item";

    fn schema(&self) -> Result<ResourceSchema, tfplugin::Error> {
        Ok(ResourceSchema::from_model::<Item>()?.version(1).timeouts(
            Timeouts::new()
                .op(Operation::Create, Duration::from_secs(60))
                .op(Operation::Delete, Duration::from_secs(30)),
        ))
    }

    fn validate(&self, config: &tfplugin::Value) -> Diagnostics {
        let mut d = Diagnostics::new();
        // Cross-attribute rule: a secret needs a size (skipped while either is unknown).
        let secret = config.attr("secret");
        let size = config.attr("size");
        if secret.is_some_and(|s| !s.is_null() && s.is_known())
            && size.is_some_and(tfplugin::Value::is_null)
        {
            d.error_at(
                tfplugin::AttrPath::new("secret"),
                "Missing size",
                "an item with a secret must also set size",
            );
        }
        d
    }

    async fn create(
        &self,
        ctx: &Ctx<Store>,
        req: CreateRequest<Item>,
    ) -> Result<Item, Diagnostics> {
        let store = ctx.data()?;
        let mut item = req.planned;
        let id = format!("item-{}", uuid_like(&item.name));
        item.id = Some(id);
        item.revision = Some(1);
        store.put(&item).await?;
        ctx.private_set("created_by", &"toyfs")?;
        Ok(item)
    }

    async fn read(
        &self,
        ctx: &Ctx<Store>,
        req: ReadRequest<Item>,
    ) -> Result<Option<Item>, Diagnostics> {
        let id = req.state.id.clone().unwrap_or_default();
        ctx.data()?.get(&id).await
    }

    async fn update(
        &self,
        ctx: &Ctx<Store>,
        req: UpdateRequest<Item>,
    ) -> Result<Item, Diagnostics> {
        let mut item = req.planned;
        item.id = req.prior.id.clone();
        item.revision = Some(req.prior.revision.unwrap_or(0) + 1);
        ctx.data()?.put(&item).await?;
        Ok(item)
    }

    async fn delete(&self, ctx: &Ctx<Store>, req: DeleteRequest<Item>) -> Result<(), Diagnostics> {
        ctx.data()?.remove(&req.prior.id.unwrap_or_default()).await
    }

    async fn import(
        &self,
        ctx: &Ctx<Store>,
        req: ImportRequest,
    ) -> Result<Option<Item>, Diagnostics> {
        ctx.data()?.get(&req.id).await
    }

    fn upgrade_state(
        &self,
        version: i64,
        mut state: serde_json::Value,
    ) -> Result<serde_json::Value, Diagnostics> {
        // Version 0 stored `size` as a string.
        if version == 0 {
            if let Some(size) = state
                .get("size")
                .and_then(|s| s.as_str())
                .map(str::to_string)
            {
                let n: i64 = size
                    .parse()
                    .at_attr("size", "stored size is not a number")?;
                state["size"] = n.into();
            }
            return Ok(state);
        }
        Err(Diagnostic::error(
            "Unsupported state version",
            format!("toyfs_item has no upgrade from {version}"),
        )
        .into())
    }
}

/// A deterministic id from the name (so tests can import by a known id).
fn uuid_like(name: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// `toyfs_item_lookup`: find an item by name.
#[derive(Debug)]
pub struct ItemLookup;

/// Lookup by name.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Lookup {
    /// Name to look for.
    pub name: String,
    /// The item's id.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub id: Option<String>,
    /// The item's size.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub size: Option<i64>,
}

impl DataSource for ItemLookup {
    type Data = Store;
    type Model = Lookup;

    const TYPE_NAME: &str = "toyfs_item_lookup";

    async fn read(
        &self,
        ctx: &Ctx<Store>,
        req: ReadDataRequest<Lookup>,
    ) -> Result<Lookup, Diagnostics> {
        let item = ctx
            .data()?
            .find_by_name(&req.config.name)
            .await?
            .ok_or_else(|| {
                Diagnostic::error(
                    "Item not found",
                    format!("no item named {:?}", req.config.name),
                )
                .at(tfplugin::AttrPath::new("name"))
            })?;
        Ok(Lookup {
            name: item.name,
            id: item.id,
            size: item.size,
        })
    }
}
