//! The HTTP API through `router(state)` with tower's `oneshot`: auth, namespaces,
//! ETags, field-naming errors, pagination, OpenAPI.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use flexus_agent::clock::ManualClock;
use flexus_agent::runtime::Inbox;
use flexus_agent::server::{AppState, router};
use flexus_agent::store::{SqliteStore, Store};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

mod common;

use common::{ADMIN, Emu, TEAM_A, TEAM_B};

struct Api {
    state: AppState,
    _inbox: Inbox,
    /// The cloud the agent's flavor and quota lookups reach.
    emu: Emu,
}

async fn api() -> Api {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().await.unwrap());
    let emu = Emu::start(0.0, 10.0).await;
    let clock = ManualClock::new(1_780_000_000_000);
    let (state, inbox) = AppState::detached(store, clock, common::auth(), emu.cloud());
    Api {
        state,
        _inbox: inbox,
        emu,
    }
}

struct Resp {
    status: StatusCode,
    etag: Option<String>,
    body: Value,
}

impl Resp {
    /// The message of the error body.
    fn message(&self) -> &str {
        self.body["error"]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("an error message: {}", self.body))
    }
}

impl Api {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = match body {
            Some(v) => b
                .header("content-type", "application/json")
                .body(Body::from(v.to_string()))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        };
        let (status, headers, body) = self.raw(req).await;
        let etag = headers.get("etag").map(|v| v.to_str().unwrap().to_owned());
        Resp { status, etag, body }
    }

    /// Send `req` as it is; the answer's status, headers and JSON body (`Null` if not JSON).
    async fn raw(&self, req: Request<Body>) -> (StatusCode, HeaderMap, Value) {
        let resp = router(self.state.clone()).oneshot(req).await.unwrap();
        let (status, headers) = (resp.status(), resp.headers().clone());
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, headers, body)
    }
}

impl Api {
    /// `PUT path` with team-a's token.
    async fn put(&self, path: &str, body: Value) -> Resp {
        self.put_with(path, &[], body).await
    }
    /// `PUT path` with team-a's token and `headers` (its preconditions).
    async fn put_with(&self, path: &str, headers: &[(&str, &str)], body: Value) -> Resp {
        self.call("PUT", path, Some(TEAM_A), headers, Some(body))
            .await
    }
    /// `method path` with team-a's token and no body (a `POST` that acts, a `DELETE`).
    async fn act(&self, method: &str, path: &str) -> Resp {
        self.call(method, path, Some(TEAM_A), &[], None).await
    }
    /// `GET path` with `token`.
    async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.call("GET", path, token, &[], None).await
    }
}

fn pool_spec() -> Value {
    json!({"spec": {
        "flavor": "x1.2u.4g", "image": "img-1", "vpc_id": "vpc-1", "subnet_ids": ["sub-1"],
        "min_size": 1, "max_size": 5
    }})
}

fn policy_spec(pool: &str) -> Value {
    json!({"spec": {"pool": pool, "policy": {
        "strategy": "target_tracking",
        "bounds": {"min": 1, "max": 5},
        "metrics": [{"name": "cpu", "kind": "cpu", "source": {"type": "push"}, "target": 60}]
    }}})
}

#[tokio::test]
async fn a_namespace_token_cannot_read_or_change_another_namespace() {
    let api = api().await;
    let r = api
        .put("/v1/namespaces/team-a/pools/web", pool_spec())
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    for (method, path, body) in [
        ("GET", "/v1/namespaces/team-a/pools/web", None),
        ("GET", "/v1/namespaces/team-a/pools", None),
        ("PUT", "/v1/namespaces/team-a/pools/web", Some(pool_spec())),
        ("DELETE", "/v1/namespaces/team-a/pools/web", None),
        ("GET", "/v1/namespaces/team-a/pools/web/decisions", None),
        ("POST", "/v1/namespaces/team-a/pools/web/reconcile", None),
        (
            "PUT",
            "/v1/namespaces/team-a/policies/p",
            Some(policy_spec("web")),
        ),
    ] {
        let r = api.call(method, path, Some(TEAM_B), &[], body).await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "{method} {path}: {}",
            r.body
        );
        assert_eq!(r.body["error"]["code"], "forbidden");
    }
    // Still there, unchanged.
    let r = api
        .get("/v1/namespaces/team-a/pools/web", Some(ADMIN))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["version"], 1);
    // team-b sees only its own namespace in the list.
    let r = api.get("/v1/namespaces", Some(TEAM_B)).await;
    let names: Vec<&str> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["team-b"]);
    let r = api.get("/v1/namespaces", Some(ADMIN)).await;
    assert_eq!(r.body.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn requests_without_a_known_token_are_unauthorized() {
    let api = api().await;
    let r = api.get("/v1/namespaces/team-a/pools", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = api
        .get("/v1/namespaces/team-a/pools", Some("not-a-token-at-all"))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["error"]["code"], "unauthorized");
    // health is open
    let r = api.get("/healthz", None).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn a_stale_if_match_gets_412_and_changes_nothing() {
    let api = api().await;
    let path = "/v1/namespaces/team-a/pools/web";
    let r = api
        .put_with(path, &[("if-none-match", "*")], pool_spec())
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let etag1 = r.etag.unwrap();
    assert_eq!(etag1, "\"1\"");
    // create-only again: 412
    let r = api
        .put_with(path, &[("if-none-match", "*")], pool_spec())
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    let mut changed = pool_spec();
    changed["spec"]["max_size"] = json!(9);
    let r = api
        .put_with(path, &[("if-match", &etag1)], changed.clone())
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.etag.as_deref(), Some("\"2\""));
    // A writer still holding version 1 loses.
    let mut stale = pool_spec();
    stale["spec"]["max_size"] = json!(3);
    let r = api.put_with(path, &[("if-match", &etag1)], stale).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(r.body["error"]["code"], "precondition_failed");
    let r = api
        .call("DELETE", path, Some(TEAM_A), &[("if-match", &etag1)], None)
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    let r = api.get(path, Some(TEAM_A)).await;
    assert_eq!(r.body["spec"]["max_size"], 9);
    assert_eq!(r.etag.as_deref(), Some("\"2\""));
}

#[tokio::test]
async fn every_invalid_request_names_the_offending_field() {
    let api = api().await;
    let path = "/v1/namespaces/team-a/pools/web";
    let mut bad = pool_spec();
    bad["spec"]["min_size"] = json!(7);
    let r = api.put(path, bad).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"]["field"], "spec.min_size", "{}", r.body);

    let mut bad = pool_spec();
    bad["spec"]["flavour"] = json!("typo");
    let r = api.put(path, bad).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.message().contains("flavour"), "{}", r.body);
    assert_eq!(r.body["error"]["field"], "spec.flavour", "{}", r.body);

    let mut bad = pool_spec();
    bad["spec"]["max_size"] = json!("many");
    let r = api.put(path, bad).await;
    assert_eq!(r.body["error"]["field"], "spec.max_size", "{}", r.body);

    let mut bad = pool_spec();
    bad["spec"]["spot"] = json!({"enabled": true, "spot_percentage": 150});
    let r = api.put(path, bad).await;
    assert_eq!(
        r.body["error"]["field"], "spec.spot.spot_percentage",
        "{}",
        r.body
    );

    let r = api
        .put("/v1/namespaces/team-a/pools/Bad_Name", pool_spec())
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"]["field"], "name");

    let mut badpol = policy_spec("web");
    badpol["spec"]["policy"]["bounds"]["min"] = json!(20);
    let r = api.put("/v1/namespaces/team-a/policies/p", badpol).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let field = r.body["error"]["field"].as_str().unwrap();
    assert!(field.starts_with("spec.policy.bounds"), "{}", r.body);

    let r = api
        .get(
            "/v1/namespaces/team-a/pools/web/decisions?limit=0",
            Some(TEAM_A),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"]["field"], "limit");

    // Nothing was stored by any of these.
    let r = api.get("/v1/namespaces/team-a/pools", Some(TEAM_A)).await;
    assert_eq!(r.body, json!([]));
}

#[tokio::test]
async fn a_pool_ecs_can_never_create_is_refused_naming_every_field_and_nothing_is_stored() {
    let api = api().await;
    let path = "/v1/namespaces/team-a/pools/web";
    let mut bad = pool_spec();
    bad["spec"]["root_volume"] = json!({"type": "FOO", "size": 40});
    bad["spec"]["subnet_ids"] = json!((0..13).map(|i| format!("sub-{i}")).collect::<Vec<_>>());
    bad["spec"]["user_data"] = json!("#!/bin/sh\n".repeat(6 * 1024));
    bad["spec"]["spot"] = json!({"enabled": true, "max_price": "inf"});
    let r = api.put(path, bad).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let fields: Vec<&str> = r.body["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    for f in [
        "spec.root_volume.type",
        "spec.subnet_ids",
        "spec.user_data",
        "spec.spot.max_price",
    ] {
        assert!(fields.contains(&f), "{f} is named: {}", r.body);
    }
    let msg = r.message();
    assert!(msg.contains("GPSSD") && msg.contains("32 KB"), "{msg}");
    let r = api.get(path, Some(TEAM_A)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "nothing stored");
}

#[tokio::test]
async fn an_unknown_flavor_is_refused_with_the_closest_offered_names() {
    let api = api().await;
    let path = "/v1/namespaces/team-a/pools/web";
    let mut bad = pool_spec();
    bad["spec"]["flavor"] = json!("x1.1u.2g");
    let r = api.put(path, bad).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.body["error"]["field"], "spec.flavor");
    let msg = r.message();
    assert!(
        msg.contains("\"x1.1u.2g\" is not offered") && msg.contains("x1.1u.1g"),
        "{msg}"
    );
    // A sold-out flavor is offered (capacity can come back): accepted.
    api.emu
        .control(
            reqwest::Method::POST,
            "/_emulator/flavors/x1.2u.4g",
            json!({"sold_out": true}),
        )
        .await;
    let r = api.put(path, pool_spec()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

#[tokio::test]
async fn an_image_the_project_lacks_or_whose_disk_is_larger_is_refused_and_served_as_404() {
    let api = api().await;
    api.emu
        .control(
            reqwest::Method::POST,
            "/_emulator/images",
            json!({"images": [{"id": "img-1", "name": "Ubuntu 22.04", "min_disk": 50}]}),
        )
        .await;
    let r = api.get("/v1/cloud/images/img-1", Some(TEAM_B)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"], "Ubuntu 22.04");
    assert_eq!(r.body["min_disk_gb"], 50);
    let r = api.get("/v1/cloud/images/img-gone", Some(TEAM_B)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let path = "/v1/namespaces/team-a/pools/web";
    let mut gone = pool_spec();
    gone["spec"]["image"] = json!("img-gone");
    let r = api.put(path, gone).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.body["error"]["field"], "spec.image");
    let msg = r.message();
    assert!(msg.contains("\"img-gone\" does not exist"), "{msg}");
    // The default root volume (40 GB) is smaller than the image's minimum.
    let r = api.put(path, pool_spec()).await;
    assert_eq!(
        r.body["error"]["field"], "spec.root_volume.size",
        "{}",
        r.body
    );
    let mut big = pool_spec();
    big["spec"]["root_volume"] = json!({"type": "GPSSD", "size": 50});
    let r = api.put(path, big).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = api.get("/v1/cloud/images/img-1", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_dry_run_put_checks_everything_and_stores_nothing() {
    let api = api().await;
    let path = "/v1/namespaces/team-a/pools/web";
    let r = api.put(&format!("{path}?dry_run=true"), pool_spec()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mut bad = pool_spec();
    bad["spec"]["flavor"] = json!("x9.nope");
    let r = api.put(&format!("{path}?dry_run=true"), bad).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"]["field"], "spec.flavor");
    let r = api.put(&format!("{path}?dry_run=maybe"), pool_spec()).await;
    assert_eq!(r.body["error"]["field"], "dry_run", "{}", r.body);
    let r = api.get(path, Some(TEAM_A)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "a dry run stores nothing");
}

#[tokio::test]
async fn a_policy_may_narrow_its_pools_bounds_but_never_widen_them() {
    let api = api().await;
    let mut pool = pool_spec();
    pool["spec"]["max_size"] = json!(2);
    let r = api.put("/v1/namespaces/team-a/pools/web", pool).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let policy = "/v1/namespaces/team-a/policies/p";
    let mut wide = policy_spec("web");
    wide["spec"]["policy"]["bounds"] = json!({"min": 5, "max": 10});
    let r = api.put(policy, wide).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.body["error"]["field"], "spec.policy.bounds.max");
    let msg = r.message();
    assert!(
        msg.contains("bounds.max (10)")
            && msg.contains("max_size (2)")
            && msg.contains("team-a/web"),
        "{msg}"
    );
    let mut below = policy_spec("web");
    below["spec"]["policy"]["bounds"] = json!({"min": 0, "max": 2});
    let r = api.put(policy, below).await;
    assert_eq!(
        r.body["error"]["field"], "spec.policy.bounds.min",
        "{}",
        r.body
    );
    let mut narrow = policy_spec("web");
    narrow["spec"]["policy"]["bounds"] = json!({"min": 1, "max": 2});
    let r = api.put(policy, narrow).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // A policy for a pool that does not exist yet is checked when the pool comes.
    let r = api
        .put("/v1/namespaces/team-a/policies/q", policy_spec("later"))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

#[tokio::test]
async fn the_cloud_flavors_and_quota_are_served_to_any_valid_token() {
    let api = api().await;
    let r = api.get("/v1/cloud/flavors", Some(TEAM_B)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let f = r.body.as_array().unwrap();
    let x = f
        .iter()
        .find(|f| f["name"] == "x1.2u.4g")
        .expect("x1.2u.4g");
    assert_eq!(x["vcpus"], 2);
    assert_eq!(x["memory_mb"], 4096);
    assert_eq!(x["on_sale"], true);
    api.emu.set_quota(7, 30, 61440).await;
    let r = api.get("/v1/cloud/quota", Some(TEAM_A)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["max_instances"], 7);
    assert_eq!(r.body["max_vcpus"], 30);
    assert_eq!(r.body["used_instances"], 0);
    let r = api.get("/v1/cloud/flavors", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn one_pool_has_at_most_one_policy_and_policies_are_versioned() {
    let api = api().await;
    let r = api
        .put("/v1/namespaces/team-a/policies/p1", policy_spec("web"))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = api
        .put("/v1/namespaces/team-a/policies/p1", policy_spec("web"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["version"], 2);
    let r = api
        .put("/v1/namespaces/team-a/policies/p2", policy_spec("web"))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let versions = api
        .state
        .store
        .policy_versions("team-a", "p1")
        .await
        .unwrap();
    assert_eq!(versions.len(), 2);
    let r = api.act("DELETE", "/v1/namespaces/team-a/policies/p1").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = api
        .get("/v1/namespaces/team-a/policies/p1", Some(TEAM_A))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_decision_log_pages_newest_first_with_a_cursor() {
    let api = api().await;
    api.put("/v1/namespaces/team-a/pools/web", pool_spec())
        .await;
    for i in 0..7u32 {
        let rec = flexus_api::DecisionRecord {
            id: 0,
            at: format!("2026-01-01T00:00:0{i}Z"),
            current: i,
            desired: i + 1,
            on_demand: i + 1,
            spot: 0,
            action: "scale_out".into(),
            outcome: flexus_api::DecisionOutcome::Acted,
            bound_by: None,
            explanation: format!("decision {i}"),
            detail: Value::Null,
            operation_id: None,
            prediction: None,
        };
        api.state
            .store
            .insert_decision("team-a", "web", &rec, 100)
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/namespaces/team-a/pools/web/decisions?limit=3&cursor={c}"),
            None => "/v1/namespaces/team-a/pools/web/decisions?limit=3".to_owned(),
        };
        let r = api.get(&path, Some(TEAM_A)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        for d in r.body["items"].as_array().unwrap() {
            seen.push(d["current"].as_u64().unwrap());
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, vec![6, 5, 4, 3, 2, 1, 0]);
}

#[tokio::test]
async fn the_openapi_document_describes_every_route_and_body() {
    let api = api().await;
    let r = api.get("/v1/openapi.json", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let doc = r.body;
    for p in [
        "/v1/namespaces/{ns}/pools/{name}",
        "/v1/namespaces/{ns}/pools/{name}/decisions",
        "/v1/namespaces/{ns}/policies/{name}",
        "/v1/namespaces/{ns}/pools/{name}/reconcile",
    ] {
        assert!(doc["paths"][p].is_object(), "missing path {p}");
    }
    for s in [
        "PoolSpec",
        "PoolStatus",
        "PolicySpec",
        "DecisionRecord",
        "ErrorBody",
    ] {
        assert!(
            doc["components"]["schemas"][s].is_object(),
            "missing schema {s}"
        );
    }
    // Every $ref resolves.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in all {
        let name = r.trim_start_matches("#/components/schemas/");
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "dangling {r}"
        );
    }
}

#[tokio::test]
async fn reconcile_now_is_accepted_for_an_existing_pool_only() {
    let api = api().await;
    let r = api
        .act("POST", "/v1/namespaces/team-a/pools/web/reconcile")
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    api.put("/v1/namespaces/team-a/pools/web", pool_spec())
        .await;
    let r = api
        .act("POST", "/v1/namespaces/team-a/pools/web/reconcile")
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.body["pool"], "team-a/web");
}

/// docs/reference/agent-api.md embeds the OpenAPI document between markers; it must
/// equal what the server publishes (`FLEXUS_UPDATE_GOLDEN=1` rewrites it).
#[test]
fn the_published_openapi_in_the_docs_matches_the_server() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/reference/agent-api.md");
    let md = std::fs::read_to_string(&path).expect("docs/reference/agent-api.md exists");
    let (start, end) = (
        "<!-- openapi:begin -->\n```json\n",
        "```\n<!-- openapi:end -->",
    );
    let a = md.find(start).expect("openapi:begin marker") + start.len();
    let b = md.find(end).expect("openapi:end marker");
    let want = serde_json::to_string_pretty(&flexus_agent::openapi::document()).unwrap() + "\n";
    if std::env::var_os("FLEXUS_UPDATE_GOLDEN").is_some() {
        let new = format!("{}{}{}", &md[..a], want, &md[b..]);
        std::fs::write(&path, new).unwrap();
        return;
    }
    assert!(
        md[a..b] == want,
        "docs/reference/agent-api.md is stale: run FLEXUS_UPDATE_GOLDEN=1 cargo test -p flexus-agent --test api"
    );
}

#[tokio::test]
async fn a_policy_evaluated_more_often_than_the_agents_minimum_is_refused_naming_the_field() {
    let mut api = api().await;
    api.state.runtime = api
        .state
        .runtime
        .clone()
        .with_min_evaluation_interval(std::time::Duration::from_secs(10));
    let mut greedy = policy_spec("web");
    greedy["spec"]["policy"]["evaluation_interval"] = json!("1ms");
    let r = api
        .put("/v1/namespaces/team-a/policies/greedy", greedy)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(
        r.body["error"]["field"], "spec.policy.evaluation_interval",
        "{}",
        r.body
    );
    let message = r.message();
    assert!(
        message.contains("at least 10s") && message.contains("1ms"),
        "{message}"
    );
    let r = api
        .get("/v1/namespaces/team-a/policies/greedy", Some(TEAM_A))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "nothing was stored");

    let mut fine = policy_spec("web");
    fine["spec"]["policy"]["evaluation_interval"] = json!("10s");
    let r = api.put("/v1/namespaces/team-a/policies/fine", fine).await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "the minimum itself is accepted: {}",
        r.body
    );
}

impl Api {
    /// Sends a request as a client could send it (team-a's token, raw body bytes and
    /// headers); the answer as [`Api::raw`] gives it.
    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {TEAM_A}"));
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        self.raw(b.body(Body::from(body)).unwrap()).await
    }
}

/// The answer is the documented error body (`docs/reference/agent-api.md` § Errors),
/// served as JSON, with `status` and `code`; its message is returned.
fn documented_error(
    answer: &(StatusCode, HeaderMap, Value),
    status: StatusCode,
    code: &str,
) -> String {
    let (got, headers, body) = answer;
    assert_eq!(*got, status, "{body}");
    assert_eq!(
        headers.get("content-type").unwrap(),
        "application/json",
        "{body}"
    );
    assert_eq!(body["error"]["code"], code, "{body}");
    let message = body["error"]["message"].as_str().expect("a message");
    assert!(!message.is_empty(), "{body}");
    message.to_owned()
}

impl Api {
    /// Sends the request as [`Api::send`] does and checks that the answer is the
    /// documented 400 `invalid_request`; the answer and its message.
    async fn invalid_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> ((StatusCode, HeaderMap, Value), String) {
        let answer = self.send(method, path, headers, body).await;
        let message = documented_error(&answer, StatusCode::BAD_REQUEST, "invalid_request");
        (answer, message)
    }
}

const JSON: (&str, &str) = ("content-type", "application/json");

#[tokio::test]
async fn a_body_over_the_size_limit_is_413_as_the_json_error_and_stores_nothing() {
    let api = api().await;
    let mut big = pool_spec();
    big["spec"]["image"] = json!("i".repeat(flexus_agent::server::MAX_BODY_BYTES));
    let path = "/v1/namespaces/team-a/pools/web";
    let answer = api
        .send("PUT", path, &[JSON], big.to_string().into_bytes())
        .await;
    let message = documented_error(&answer, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert!(message.contains(path), "{message}");
    assert!(message.contains("1048576 bytes"), "{message}");
    let r = api.get(path, Some(TEAM_A)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_method_the_route_does_not_serve_is_405_as_the_json_error_keeping_allow() {
    let api = api().await;
    let answer = api
        .send("DELETE", "/v1/namespaces/team-a/pools", &[], vec![])
        .await;
    let message = documented_error(
        &answer,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
    assert!(
        message.contains("DELETE is not allowed on /v1/namespaces/team-a/pools"),
        "{message}"
    );
    let allow = answer
        .1
        .get("allow")
        .expect("an Allow header")
        .to_str()
        .unwrap();
    assert!(allow.contains("GET"), "{allow}");
}

#[tokio::test]
async fn an_unknown_route_is_404_as_the_json_error_naming_method_and_path() {
    let api = api().await;
    let answer = api
        .send("GET", "/v1/namespaces/team-a/nothing-here", &[], vec![])
        .await;
    let message = documented_error(&answer, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(
        message,
        "no such endpoint: GET /v1/namespaces/team-a/nothing-here"
    );
}

#[tokio::test]
async fn a_body_that_is_not_json_is_400_as_the_json_error_naming_line_and_column() {
    let api = api().await;
    let (_, message) = api
        .invalid_request(
            "PUT",
            "/v1/namespaces/team-a/pools/web",
            &[JSON],
            b"{\"spec\": {\n  \"min_size\": 1,,\n}}".to_vec(),
        )
        .await;
    assert!(message.contains("line 2 column 17"), "{message}");
}

#[tokio::test]
async fn a_body_that_is_not_utf8_is_400_naming_its_byte_line_and_column() {
    let api = api().await;
    let mut body = b"{\"spec\": {\n  \"image\": \"".to_vec();
    body.extend([0xff, b'"', b'}', b'}']);
    let (answer, message) = api
        .invalid_request("PUT", "/v1/namespaces/team-a/pools/web", &[JSON], body)
        .await;
    assert_eq!(answer.2["error"]["field"], "(body)");
    assert!(
        message.contains("invalid UTF-8 at byte 23 (line 2, column 13)"),
        "{message}"
    );
}

#[tokio::test]
async fn a_path_segment_that_does_not_decode_is_400_as_the_json_error_naming_the_parameter() {
    let api = api().await;
    let (answer, message) = api
        .invalid_request("GET", "/v1/namespaces/team-a/pools/%FF", &[], vec![])
        .await;
    assert_eq!(answer.2["error"]["field"], "name", "{}", answer.2);
    assert!(message.contains("UTF-8"), "{message}");
}

#[tokio::test]
async fn a_query_string_that_does_not_decode_is_400_as_the_json_error_naming_the_query() {
    let api = api().await;
    let (answer, message) = api
        .invalid_request(
            "GET",
            "/v1/namespaces/team-a/pools/web/decisions?limit=1&limit=2",
            &[],
            vec![],
        )
        .await;
    assert_eq!(answer.2["error"]["field"], "query", "{}", answer.2);
    assert!(message.contains("limit"), "{message}");
}

#[tokio::test]
async fn a_body_without_a_json_content_type_is_415_as_the_json_error_and_stores_nothing() {
    let api = api().await;
    let path = "/v1/namespaces/team-a/pools/web";
    let body = pool_spec().to_string().into_bytes();
    for (headers, says) in [
        (&[][..], "missing"),
        (&[("content-type", "text/plain")][..], "\"text/plain\""),
    ] {
        let answer = api.send("PUT", path, headers, body.clone()).await;
        let message = documented_error(
            &answer,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        );
        assert_eq!(answer.2["error"]["field"], "Content-Type", "{}", answer.2);
        assert!(message.contains(says), "{message}");
    }
    let r = api.get(path, Some(TEAM_A)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn tag_values_are_limited_in_characters_not_bytes() {
    let api = api().await;
    let path = "/v1/namespaces/team-a/pools/web";
    // 43 characters of two bytes each: within the ECS limit of 43 characters.
    let mut spec = pool_spec();
    spec["spec"]["tags"] = json!({"团队": "é".repeat(43)});
    let r = api.put(path, spec).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    let mut spec = pool_spec();
    spec["spec"]["tags"] = json!({"team": "é".repeat(44)});
    let r = api.put(path, spec).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.body["error"]["field"], "spec.tags.team", "{}", r.body);
    assert!(
        r.message()
            .contains("at most 43 characters, this one has 44"),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn metrics_without_a_token_name_no_pool_and_only_the_admin_scrape_has_per_pool_series() {
    let api = api().await;
    api.state.telemetry.set_pool("team-a/secret-pool", 3, 2);
    api.state
        .telemetry
        .set_pool_cost("team-a/secret-pool", 0.25, 0.5);
    api.state.telemetry.pools.set(1);
    let scrape = |token: Option<&str>| {
        let mut b = Request::builder().uri("/metrics");
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        let req = b.body(Body::empty()).unwrap();
        let state = api.state.clone();
        async move {
            let resp = router(state).oneshot(req).await.unwrap();
            let status = resp.status();
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8(bytes.to_vec()).unwrap())
        }
    };
    let (status, public) = scrape(None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(public.contains("flexus_agent_pools 1"), "{public}");
    assert!(!public.contains("secret-pool"), "{public}");
    assert!(!public.contains("pool="), "{public}");
    assert!(public.ends_with("# EOF\n"), "{public}");

    let (status, admin) = scrape(Some(ADMIN)).await;
    assert_eq!(status, StatusCode::OK);
    for line in [
        "flexus_agent_pools 1",
        "flexus_agent_pool_desired_instances{pool=\"team-a/secret-pool\"} 3",
        "flexus_agent_pool_current_instances{pool=\"team-a/secret-pool\"} 2",
        "flexus_agent_pool_cost_per_hour{pool=\"team-a/secret-pool\"} 0.25",
    ] {
        assert!(admin.lines().any(|l| l == line), "{line} missing:\n{admin}");
    }
    assert_eq!(admin.matches("# EOF").count(), 1, "{admin}");
    assert!(admin.ends_with("# EOF\n"), "{admin}");

    let (status, body) = scrape(Some(TEAM_A)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(!body.contains("secret-pool"), "{body}");
    let (status, _) = scrape(Some("not-a-token")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
