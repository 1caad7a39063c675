//! A provider that only measures what the `flexus_autoscaling_policy` schema costs Terraform
//! itself, declared two ways: with nested blocks (how the real resource is declared) and with
//! nested attributes (protocol 6 `nested_type`, `bounds = { ... }`). Both resource types have
//! the policy's schema and no logic, so a `plan -refresh=false` of new resources differs only
//! in how Terraform decodes, checks and diffs them. `scripts/bench-provider.sh` runs it; it is
//! not a provider anyone should use.

use schemars::JsonSchema;
use serde::Deserialize;
use tfplugin::{
    ConfigureRequest, CreateRequest, Ctx, DeleteRequest, Diagnostics, Provider, ReadRequest,
    Resource, ResourceSchema, Resources, UpdateRequest,
};

/// No configuration.
#[derive(Deserialize, JsonSchema)]
struct NoConfig {}

struct Bench;

impl Provider for Bench {
    type Config = NoConfig;
    type Data = ();

    const TYPE_NAME: &str = "flexusbench";

    fn source_address(&self) -> String {
        "registry.terraform.io/flexus/flexusbench".into()
    }

    async fn configure(&self, _req: ConfigureRequest<NoConfig>) -> Result<(), Diagnostics> {
        Ok(())
    }

    fn resources(&self) -> Result<Resources<()>, tfplugin::Error> {
        Resources::new()
            .with(PolicyShape::<false>)?
            .with(PolicyShape::<true>)
    }
}

/// The policy's schema, as nested attributes (`NESTED`) or as blocks.
struct PolicyShape<const NESTED: bool>;

impl<const NESTED: bool> Resource for PolicyShape<NESTED> {
    type Data = ();
    type Model = serde_json::Value;

    const TYPE_NAME: &str = if NESTED {
        "flexusbench_policy_nested"
    } else {
        "flexusbench_policy_blocks"
    };

    fn schema(&self) -> Result<ResourceSchema, tfplugin::Error> {
        let block = terraform_provider_flexus::policy::PolicyResource
            .schema()?
            .schema
            .block;
        Ok(ResourceSchema::from_block(if NESTED {
            block.with_nested_attributes()
        } else {
            block
        }))
    }

    async fn create(
        &self,
        _ctx: &Ctx<()>,
        req: CreateRequest<serde_json::Value>,
    ) -> Result<serde_json::Value, Diagnostics> {
        Ok(req.planned)
    }

    async fn read(
        &self,
        _ctx: &Ctx<()>,
        req: ReadRequest<serde_json::Value>,
    ) -> Result<Option<serde_json::Value>, Diagnostics> {
        Ok(Some(req.state))
    }

    async fn update(
        &self,
        _ctx: &Ctx<()>,
        req: UpdateRequest<serde_json::Value>,
    ) -> Result<serde_json::Value, Diagnostics> {
        Ok(req.planned)
    }

    async fn delete(
        &self,
        _ctx: &Ctx<()>,
        _req: DeleteRequest<serde_json::Value>,
    ) -> Result<(), Diagnostics> {
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    tfplugin::run(Bench)
}
