//! In-process tests of the RPC handlers with a small provider (no gRPC, no Terraform).

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::codec::msgpack;
use crate::diag::{Diagnostic, Diagnostics};
use crate::framework::{
    ConfigureRequest, CreateRequest, Ctx, DataSource, DataSources, DeleteRequest, Provider,
    ReadDataRequest, ReadRequest, Resource, ResourceSchema, Resources, UpdateRequest,
};
use crate::pb::tfplugin6 as pb;
use crate::server::Inner;
use crate::value::Value;

#[derive(Debug, Deserialize, JsonSchema)]
struct NoConfig {}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
struct Thing {
    #[schemars(extend("x-tf" = {"computed": true, "use_state_for_unknown": true}))]
    id: Option<String>,
    /// `slow` waits for cancellation; `liar` changes its name on create; `gone` reads as absent.
    name: String,
}

#[derive(Debug)]
struct Things;

impl Resource for Things {
    type Data = ();
    type Model = Thing;
    const TYPE_NAME: &str = "test_thing";
    fn schema(&self) -> Result<ResourceSchema, crate::Error> {
        Ok(ResourceSchema::from_model::<Thing>()?.version(2).timeouts(
            crate::Timeouts::new().op(crate::Operation::Create, Duration::from_millis(1500)),
        ))
    }
    async fn create(&self, ctx: &Ctx<()>, req: CreateRequest<Thing>) -> Result<Thing, Diagnostics> {
        let mut t = req.planned;
        match t.name.as_str() {
            "slow" => {
                tokio::select! {
                    () = ctx.cancelled() => return Err(Diagnostic::error("Cancelled", "terraform stopped the provider").into()),
                    () = tokio::time::sleep(Duration::from_secs(30)) => {}
                }
            }
            "liar" => t.name = "changed".into(),
            "half" => {
                t.id = Some("t-half".into());
                ctx.keep_partial(&t)?;
                return Err(
                    Diagnostic::error("Pool not ready", "only 1 of 3 instances came up").into(),
                );
            }
            "stuck" => {
                t.id = Some("t-stuck".into());
                ctx.keep_partial(&t)?;
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
            _ => {}
        }
        t.id = Some("t-1".into());
        Ok(t)
    }
    async fn read(
        &self,
        _ctx: &Ctx<()>,
        req: ReadRequest<Thing>,
    ) -> Result<Option<Thing>, Diagnostics> {
        Ok(if req.state.name == "gone" {
            None
        } else {
            Some(req.state)
        })
    }
    async fn update(
        &self,
        _ctx: &Ctx<()>,
        req: UpdateRequest<Thing>,
    ) -> Result<Thing, Diagnostics> {
        Ok(req.planned)
    }
    async fn delete(&self, _ctx: &Ctx<()>, _req: DeleteRequest<Thing>) -> Result<(), Diagnostics> {
        Ok(())
    }
}

/// Looks a thing up by name; a name starting with `old-` reads with a warning.
#[derive(Debug)]
struct Lookup;

impl DataSource for Lookup {
    type Data = ();
    type Model = Thing;
    const TYPE_NAME: &str = "test_lookup";
    async fn read(
        &self,
        _ctx: &Ctx<()>,
        req: ReadDataRequest<Thing>,
    ) -> Result<Thing, Diagnostics> {
        let mut t = req.config;
        if t.name == "missing" {
            return Err(Diagnostic::error("Not found", "no thing named missing").into());
        }
        t.id = Some(format!("t-{}", t.name));
        Ok(t)
    }
    fn warnings(&self, t: &Thing) -> Diagnostics {
        let mut d = Diagnostics::new();
        if t.name.starts_with("old-") {
            d.warning("Old thing", format!("{} is old", t.name));
        }
        d
    }
}

#[derive(Debug)]
struct TestProvider;

impl Provider for TestProvider {
    type Config = NoConfig;
    type Data = ();
    const TYPE_NAME: &str = "test";
    fn source_address(&self) -> String {
        "registry.terraform.io/test/test".into()
    }
    async fn configure(&self, _req: ConfigureRequest<NoConfig>) -> Result<(), Diagnostics> {
        Ok(())
    }
    fn resources(&self) -> Result<Resources<()>, crate::Error> {
        Resources::new().with(Things)
    }
    fn data_sources(&self) -> Result<DataSources<()>, crate::Error> {
        DataSources::new().with(Lookup)
    }
}

fn inner() -> Inner<TestProvider> {
    Inner::new(TestProvider).unwrap_or_else(|e| panic!("{e}"))
}

fn dv(inner: &Inner<TestProvider>, v: &Value) -> Option<pb::DynamicValue> {
    let ty = inner.resources["test_thing"].ty().clone();
    Some(pb::DynamicValue {
        msgpack: msgpack::encode(v, &ty).unwrap_or_default(),
        json: Vec::new(),
    })
}

fn thing(id: Value, name: &str) -> Value {
    Value::Object(
        [
            ("id".to_string(), id),
            ("name".to_string(), Value::from(name)),
        ]
        .into_iter()
        .collect(),
    )
}

fn apply_req(
    inner: &Inner<TestProvider>,
    prior: &Value,
    planned: &Value,
) -> pb::apply_resource_change::Request {
    pb::apply_resource_change::Request {
        type_name: "test_thing".into(),
        prior_state: dv(inner, prior),
        planned_state: dv(inner, planned),
        config: dv(inner, &thing(Value::Null, "x")),
        ..Default::default()
    }
}

/// Applies the create of a thing named `name` (whose name scripts what `create` does).
async fn create(inner: &Inner<TestProvider>, name: &str) -> pb::apply_resource_change::Response {
    super::apply_resource_change::handle(
        inner,
        apply_req(inner, &Value::Null, &thing(Value::Unknown, name)),
    )
    .await
}

#[tokio::test]
async fn stop_provider_cancels_an_apply_in_flight() {
    let inner = std::sync::Arc::new(inner());
    let task = {
        let inner = inner.clone();
        tokio::spawn(async move { create(&inner, "slow").await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let stop = super::stop_provider::handle(&inner, pb::stop_provider::Request {});
    assert_eq!(stop.error, "");
    let resp = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("apply ends promptly")
        .expect("join");
    assert_eq!(resp.diagnostics.len(), 1);
    assert_eq!(resp.diagnostics[0].summary, "Cancelled");
}

#[tokio::test]
async fn apply_that_changes_a_planned_value_is_reported_as_a_provider_bug() {
    let inner = inner();
    let resp = create(&inner, "liar").await;
    assert_eq!(resp.diagnostics.len(), 1, "{:?}", resp.diagnostics);
    let d = &resp.diagnostics[0];
    assert_eq!(
        d.summary,
        "Provider produced an inconsistent result after apply"
    );
    assert!(d.detail.contains("test_thing.name"), "{}", d.detail);
    assert!(
        resp.new_state.is_some(),
        "the created object is still saved"
    );
}

#[tokio::test]
async fn read_of_a_vanished_object_answers_null() {
    let inner = inner();
    let req = pb::read_resource::Request {
        type_name: "test_thing".into(),
        current_state: dv(&inner, &thing(Value::from("t-1"), "gone")),
        private: b"{\"k\":1}".to_vec(),
        ..Default::default()
    };
    let resp = super::read_resource::handle(&inner, req).await;
    assert!(resp.diagnostics.is_empty(), "{:?}", resp.diagnostics);
    assert_eq!(resp.new_state.map(|d| d.msgpack), Some(vec![0xc0]));
}

#[tokio::test]
async fn destroy_plan_is_null_and_keeps_the_private_state() {
    let inner = inner();
    let req = pb::plan_resource_change::Request {
        type_name: "test_thing".into(),
        prior_state: dv(&inner, &thing(Value::from("t-1"), "a")),
        proposed_new_state: dv(&inner, &Value::Null),
        config: dv(&inner, &Value::Null),
        prior_private: b"{\"k\":1}".to_vec(),
        ..Default::default()
    };
    let resp = super::plan_resource_change::handle(&inner, req).await;
    assert!(resp.diagnostics.is_empty());
    assert_eq!(resp.planned_state.map(|d| d.msgpack), Some(vec![0xc0]));
    assert_eq!(resp.planned_private, b"{\"k\":1}".to_vec());
}

/// Upgrades a stored `test_thing` state of schema `version`.
fn upgrade(version: i64, json: &[u8]) -> pb::upgrade_resource_state::Response {
    let req = pb::upgrade_resource_state::Request {
        type_name: "test_thing".into(),
        version,
        raw_state: Some(pb::RawState {
            json: json.to_vec(),
            flatmap: Default::default(),
        }),
    };
    super::upgrade_resource_state::handle(&inner(), req)
}

#[test]
fn state_from_a_newer_schema_version_is_refused_by_name() {
    let resp = upgrade(3, br#"{"id":"t-1","name":"a"}"#);
    assert_eq!(resp.diagnostics.len(), 1);
    assert!(
        resp.diagnostics[0].detail.contains("schema version 3"),
        "{}",
        resp.diagnostics[0].detail
    );
}

#[test]
fn state_of_the_current_version_with_a_removed_attribute_names_it() {
    let resp = upgrade(2, br#"{"id":"t-1","name":"a","old":1}"#);
    assert_eq!(resp.diagnostics.len(), 1);
    assert!(
        resp.diagnostics[0]
            .detail
            .contains("unsupported attribute \"old\""),
        "{}",
        resp.diagnostics[0].detail
    );
}

#[test]
fn schema_reports_version_and_capabilities() {
    let inner = inner();
    let resp = super::get_provider_schema::handle(&inner, pb::get_provider_schema::Request {});
    assert_eq!(resp.resource_schemas["test_thing"].version, 2);
    let caps = resp.server_capabilities.unwrap_or_default();
    assert!(caps.plan_destroy && caps.get_provider_schema_optional);
    assert!(resp.provider.is_some(), "a provider schema is always sent");
}

#[test]
fn unknown_resource_types_are_diagnostics_not_grpc_errors() {
    let inner = inner();
    let resp = super::validate_resource_config::handle(
        &inner,
        pb::validate_resource_config::Request {
            type_name: "test_nope".into(),
            ..Default::default()
        },
    );
    assert_eq!(resp.diagnostics.len(), 1);
    assert!(resp.diagnostics[0].detail.contains("test_nope"));
}

fn new_state(inner: &Inner<TestProvider>, resp: &pb::apply_resource_change::Response) -> Value {
    let ty = inner.resources["test_thing"].ty().clone();
    msgpack::decode(&resp.new_state.clone().unwrap_or_default().msgpack, &ty)
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn a_failed_create_saves_the_partial_object_it_recorded() {
    let inner = inner();
    let resp = create(&inner, "half").await;
    assert_eq!(resp.diagnostics.len(), 1);
    assert_eq!(resp.diagnostics[0].summary, "Pool not ready");
    assert_eq!(
        new_state(&inner, &resp).attr("id"),
        Some(&Value::from("t-half"))
    );
}

#[tokio::test]
async fn the_create_timeout_is_enforced_and_keeps_the_partial_object() {
    let inner = inner();
    let started = std::time::Instant::now();
    let resp = create(&inner, "stuck").await;
    assert!(started.elapsed() < Duration::from_secs(10), "timeout fired");
    assert_eq!(resp.diagnostics.len(), 1, "{:?}", resp.diagnostics);
    assert_eq!(resp.diagnostics[0].summary, "create timed out");
    assert_eq!(
        new_state(&inner, &resp).attr("id"),
        Some(&Value::from("t-stuck"))
    );
}

#[test]
fn sensitive_values_never_reach_a_diagnostic() {
    use crate::schema::{Attribute, Block};
    use crate::value::Type;
    let block = Block::new()
        .attribute(Attribute::required("name", Type::String))
        .attribute(Attribute::optional("token", Type::String).sensitive());
    let v = crate::framework::rules::Violation {
        path: crate::AttrPath::new("token"),
        message: "was \"hunter2\", but now \"other\"".into(),
    };
    let d = crate::framework::plan::bug(
        "x_thing",
        "an inconsistent result after apply",
        &[v],
        &block,
    );
    let text = d.to_string();
    assert!(
        !text.contains("hunter2") && text.contains("values hidden"),
        "{text}"
    );
}

#[tokio::test]
async fn a_data_source_answers_its_value_with_its_warnings_or_only_its_errors() {
    let inner = inner();
    let ty = inner.data_sources["test_lookup"].ty().clone();
    let read = |name: &str| pb::read_data_source::Request {
        type_name: "test_lookup".into(),
        config: Some(pb::DynamicValue {
            msgpack: msgpack::encode(&thing(Value::Null, name), &ty).unwrap_or_default(),
            json: Vec::new(),
        }),
        ..Default::default()
    };
    let state = |r: &pb::read_data_source::Response| {
        r.state
            .as_ref()
            .map(|d| msgpack::decode(&d.msgpack, &ty).unwrap_or_else(|e| panic!("{e}")))
    };
    let plain = super::read_data_source::handle(&inner, read("new")).await;
    assert!(plain.diagnostics.is_empty(), "{:?}", plain.diagnostics);
    assert_eq!(state(&plain), Some(thing(Value::from("t-new"), "new")));

    let warned = super::read_data_source::handle(&inner, read("old-1")).await;
    assert_eq!(state(&warned), Some(thing(Value::from("t-old-1"), "old-1")));
    let d: Vec<_> = warned
        .diagnostics
        .iter()
        .map(|d| (d.severity, d.summary.as_str(), d.detail.as_str()))
        .collect();
    assert_eq!(
        d,
        [(
            pb::diagnostic::Severity::Warning as i32,
            "Old thing",
            "old-1 is old"
        )]
    );

    let failed = super::read_data_source::handle(&inner, read("missing")).await;
    assert!(failed.state.is_none());
    assert_eq!(failed.diagnostics.len(), 1);
    assert_eq!(
        failed.diagnostics[0].severity,
        pb::diagnostic::Severity::Error as i32
    );
}
