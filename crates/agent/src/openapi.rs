//! The OpenAPI 3.0 description of the `/v1` API, served at `/v1/openapi.json`.
//! Component schemas come from the `flexus-api` types (schemars), so the description
//! cannot drift from the bodies the server parses.

use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

/// The OpenAPI document.
pub fn document() -> Value {
    let mut g = SchemaSettings::openapi3().into_generator();
    let page_ref = register_bodies(&mut g);
    let operator_paths = crate::web::openapi_paths(&mut g);
    let schemas = Value::Object(g.take_definitions(true));
    let mut paths = pool_paths(page_ref);
    for more in [policy_paths(), cloud_and_health_paths(), operator_paths] {
        if let (Some(p), Some(o)) = (paths.as_object_mut(), more.as_object()) {
            p.extend(o.clone());
        }
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "flexus-agent control-plane API", "version": "v1",
                 "description": "Pools, policies, status and decisions of the Flexus autoscaler agent."},
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                "description": "The admin token, or a namespace token (limited to its namespace)."}},
            "schemas": schemas,
        }
    })
}

/// Registers every body type's schema; returns the reference of a page of decisions.
fn register_bodies(g: &mut schemars::SchemaGenerator) -> Value {
    let _ = g.subschema_for::<flexus_api::PutPool>();
    let _ = g.subschema_for::<flexus_api::Pool>();
    let _ = g.subschema_for::<flexus_api::PoolStatus>();
    let _ = g.subschema_for::<flexus_api::PutPolicy>();
    let _ = g.subschema_for::<flexus_api::Policy>();
    let page_ref =
        serde_json::to_value(g.subschema_for::<flexus_api::Page<flexus_api::DecisionRecord>>())
            .unwrap_or_default();
    let _ = g.subschema_for::<flexus_api::Operation>();
    let _ = g.subschema_for::<flexus_api::Namespace>();
    let _ = g.subschema_for::<flexus_api::ErrorBody>();
    let _ = g.subschema_for::<flexus_api::ReconcileAccepted>();
    let _ = g.subschema_for::<flexus_api::Health>();
    let _ = g.subschema_for::<flexus_api::MetricDatapoint>();
    let _ = g.subschema_for::<flexus_api::PushAccepted>();
    let _ = g.subschema_for::<flexus_api::FlavorInfo>();
    let _ = g.subschema_for::<flexus_api::QuotaInfo>();
    let _ = g.subschema_for::<flexus_api::ImageInfo>();
    let _ = g.subschema_for::<flexus_api::TuneRequest>();
    let _ = g.subschema_for::<flexus_api::TuneJob>();
    page_ref
}

/// A reference to the component schema `name`.
fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// An error response (the documented JSON error body).
fn err(desc: &str) -> Value {
    json!({"description": desc, "content": {"application/json": {"schema": r("ErrorBody")}}})
}

fn ok(desc: &str, schema: Value) -> Value {
    json!({"description": desc, "content": {"application/json": {"schema": schema}}})
}

/// A response carrying the object's version as its ETag.
fn ok_etag(desc: &str, schema: Value) -> Value {
    json!({"description": desc,
           "headers": {"ETag": {"schema": {"type": "string"}, "description": "\"<version>\""}},
           "content": {"application/json": {"schema": schema}}})
}

/// The errors every `/v1` call may answer.
fn common() -> Value {
    json!({
        "400": err("Invalid request; `error.field` names the offending field"),
        "401": err("Missing or unknown bearer token"),
        "403": err("The token may not access this namespace"),
        "404": err("No such object"),
    })
}

/// `a` with `b`'s entries added.
fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Some(b)) = (a.as_object_mut(), b.as_object()) {
        for (k, v) in b {
            a.insert(k.clone(), v.clone());
        }
    }
    a
}

fn array(s: Value) -> Value {
    json!({"type": "array", "items": s})
}

/// Path and header parameters shared by the paths.
struct Params {
    ns: Value,
    name: Value,
    if_match: Value,
    if_none: Value,
}

fn params() -> Params {
    Params {
        ns: json!({"name": "ns", "in": "path", "required": true, "schema": {"type": "string"}}),
        name: json!({"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}),
        if_match: json!({"name": "If-Match", "in": "header", "required": false,
            "schema": {"type": "string"}, "description": "Only if the stored object has this ETag (else 412)."}),
        if_none: json!({"name": "If-None-Match", "in": "header", "required": false,
            "schema": {"type": "string", "enum": ["*"]}, "description": "Create only (412 if it exists)."}),
    }
}

/// Namespaces, pools and what hangs off a pool (status, decisions, operations, push, tune).
fn pool_paths(page_ref: Value) -> Value {
    let Params {
        ns,
        name,
        if_match,
        if_none,
    } = params();
    json!({
        "/v1/namespaces": {"get": {"summary": "List the namespaces the token may see",
            "responses": merge(common(), json!({"200": ok("Namespaces", array(r("Namespace")))}))}},
        "/v1/namespaces/{ns}/pools": {"get": {"summary": "List pools", "parameters": [ns],
            "responses": merge(common(), json!({"200": ok("Pools", array(r("Pool")))}))}},
        "/v1/namespaces/{ns}/pools/{name}": {
            "get": {"summary": "Read a pool (spec + status)", "parameters": [ns, name],
                "responses": merge(common(), json!({"200": ok_etag("The pool", r("Pool"))}))},
            "put": {"summary": "Create or replace a pool's spec",
                "description": "Refused with 400 naming the field: the spec's own rules, what ECS can never create (root disk type, more than 12 subnets, more than 32 KB of user data), a flavor the cloud does not offer (with the closest names) and an image the project does not have. With `dry_run=true` every check runs and nothing is stored (200 echoes the body).",
                "parameters": [ns, name, if_match, if_none,
                    {"name": "dry_run", "in": "query", "required": false, "schema": {"type": "boolean"},
                     "description": "Check only; store nothing."}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": r("PutPool")}}},
                "responses": merge(common(), json!({
                    "200": ok_etag("Replaced (or, with dry_run, accepted)", r("Pool")), "201": ok_etag("Created", r("Pool")),
                    "409": err("The pool is being deleted"),
                    "412": err("ETag mismatch")}))},
            "delete": {"summary": "Delete a pool (its instances are deleted by the agent)", "parameters": [ns, name, if_match],
                "responses": merge(common(), json!({"202": ok_etag("Deletion started", r("Pool")),
                    "412": err("ETag mismatch")}))}},
        "/v1/namespaces/{ns}/pools/{name}/status": {"get": {"summary": "Pool status", "parameters": [ns, name],
            "responses": merge(common(), json!({"200": ok("Status", r("PoolStatus"))}))}},
        "/v1/namespaces/{ns}/pools/{name}/decisions": {"get": {"summary": "Decision log, newest first",
            "parameters": [ns, name,
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
                {"name": "cursor", "in": "query", "schema": {"type": "string"}}],
            "responses": merge(common(), json!({"200": ok("A page of decisions", page_ref)}))}},
        "/v1/namespaces/{ns}/pools/{name}/operations": {"get": {"summary": "Recent cloud operations, newest first",
            "parameters": [ns, name],
            "responses": merge(common(), json!({"200": ok("Operations", array(r("Operation")))}))}},
        "/v1/namespaces/{ns}/pools/{name}/reconcile": {"post": {"summary": "Run a reconcile pass now",
            "parameters": [ns, name],
            "responses": merge(common(), json!({"202": ok("Queued", r("ReconcileAccepted"))}))}},
        "/v1/namespaces/{ns}/pools/{name}/metrics": {"post": {"summary": "Push datapoints of the pool's push-sourced metrics",
            "description": "The body is a JSON array of datapoints (1 to 1000). Each `metric` must be a metric of the pool's policy with source `{\"type\": \"push\"}`; `at` defaults to now and may be at most 24 h old and 5 min ahead. Datapoints are kept 24 h (at most 10 000 per metric); a datapoint with the same metric and time replaces the earlier one.",
            "parameters": [ns, name],
            "requestBody": {"required": true, "content": {"application/json": {"schema": array(r("MetricDatapoint"))}}},
            "responses": merge(common(), json!({"202": ok("Stored", r("PushAccepted"))}))}},
        "/v1/namespaces/{ns}/pools/{name}/tune": {"post": {"summary": "Start a tune job: search the pool's policy parameters by replaying its recorded history (or a named trace)",
            "description": "The first two thirds of the history tune (CMA-ES over the policy's targets, scale-in window and rate, trend read-ahead and forecast settings), the last third validates. Answers at once with the running job; poll `GET .../tune/{id}`. 422 `cannot_tune` when the pool has no policy or too little history (the message says how much is needed). An agent runs `[tune] searches` searches at once; a job accepted beyond them waits its turn (`running` without `started_at`); while `[tune] max_waiting` jobs wait, the request is refused with 503 and nothing is stored. Nothing is applied.",
            "parameters": [ns, name],
            "requestBody": {"required": false, "content": {"application/json": {"schema": r("TuneRequest")}}},
            "responses": merge(common(), json!({"202": ok("Running", r("TuneJob")), "422": err("Cannot tune"), "503": err("Too many tune jobs wait, or the store cannot take the job")}))},
            "get": {"summary": "The pool's tune jobs, newest first (the newest 20 are kept)",
            "description": "As `GET .../tune/{id}` answers each: a job whose agent stopped while it ran or waited reads `running` until another agent (or the same one, restarted) resumes it.",
            "parameters": [ns, name],
            "responses": merge(common(), json!({"200": ok("Jobs", array(r("TuneJob")))}))}},
        "/v1/namespaces/{ns}/pools/{name}/tune/{id}": {"get": {"summary": "A tune job: running, done (with the recommendation) or failed",
            "description": "Jobs are stored (the newest 20 per pool): any agent sharing the store answers, and a restart keeps them. A job that was running when the agent running it stopped or was killed is `failed`, its `error` saying so; start it again.",
            "parameters": [ns, name, {"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
            "responses": merge(common(), json!({"200": ok("The job", r("TuneJob"))}))}}
    })
}

/// Policies.
fn policy_paths() -> Value {
    let Params {
        ns,
        name,
        if_match,
        if_none,
    } = params();
    json!({
        "/v1/namespaces/{ns}/policies": {"get": {"summary": "List policies", "parameters": [ns],
            "responses": merge(common(), json!({"200": ok("Policies", array(r("Policy")))}))}},
        "/v1/namespaces/{ns}/policies/{name}": {
            "get": {"summary": "Read a policy", "parameters": [ns, name],
                "responses": merge(common(), json!({"200": ok_etag("The policy", r("Policy"))}))},
            "put": {"summary": "Create or replace a policy",
                "description": "Refused with 400 naming the field when the policy is invalid, or when its bounds widen its pool's (`bounds.min` below the pool's `min_size`, `bounds.max` above its `max_size`): a policy may only narrow them.",
                "parameters": [ns, name, if_match, if_none],
                "requestBody": {"required": true, "content": {"application/json": {"schema": r("PutPolicy")}}},
                "responses": merge(common(), json!({
                    "200": ok_etag("Replaced", r("Policy")), "201": ok_etag("Created", r("Policy")),
                    "409": err("The pool already has another policy"),
                    "412": err("ETag mismatch")}))},
            "delete": {"summary": "Delete a policy", "parameters": [ns, name, if_match],
                "responses": merge(common(), json!({"204": {"description": "Deleted"},
                    "412": err("ETag mismatch")}))}}
    })
}

/// The cloud's catalogue as the agent sees it, and the unauthenticated health endpoints.
fn cloud_and_health_paths() -> Value {
    json!({
        "/v1/cloud/flavors": {"get": {"summary": "The flavors the cloud offers (cached 10 minutes)",
            "responses": merge(common(), json!({"200": ok("Flavors, by name", array(r("FlavorInfo"))),
                "503": err("The cloud could not be asked")}))}},
        "/v1/cloud/images/{id}": {"get": {"summary": "An image of the cloud project (cached 10 minutes; a missing one 30 seconds)",
            "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
            "responses": merge(common(), json!({"200": ok("The image", r("ImageInfo")),
                "503": err("The cloud could not be asked")}))}},
        "/v1/cloud/quota": {"get": {"summary": "The project's instance quota and its use (cached 15 seconds)",
            "responses": merge(common(), json!({"200": ok("Quota", r("QuotaInfo")),
                "503": err("The cloud could not be asked")}))}},
        "/healthz": {"get": {"summary": "Liveness", "security": [],
            "responses": {"200": ok("Alive", r("Health"))}}},
        "/readyz": {"get": {"summary": "Readiness (start-up recovery done)", "security": [],
            "responses": {"200": ok("Ready", r("Health")), "503": ok("Starting", r("Health"))}}},
        "/metrics": {"get": {"summary": "Prometheus metrics (OpenMetrics text); the per-pool series only with the admin token",
            "security": [{}, {"bearer": []}],
            "responses": {"200": {"description": "Metrics"}, "401": err("Unknown token"),
                "403": err("A namespace token (per-pool series need the admin token)")}}}
    })
}
