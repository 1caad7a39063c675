//! The HTTP surface: `router(state) -> Router`.
//!
//! - `/v1/...` control-plane API (JSON), bearer-token auth: the admin token may do
//!   anything; a namespace token only touches its own namespace (else 403).
//! - Optimistic concurrency: every pool and policy carries a version; its ETag is
//!   `"<version>"`; `If-Match` on PUT/DELETE is checked (412 on mismatch) and
//!   `If-None-Match: *` makes a PUT create-only.
//! - Every error answer has an [`ErrorBody`] naming the offending field — axum's own
//!   rejections too (413, 405, undecodable path or query), through
//!   [`crate::rejections::json_errors`].
//! - `/healthz`, `/readyz`, `/metrics` (Prometheus text) are unauthenticated; `/metrics`
//!   adds the per-pool series only for the admin token.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use flexus_api::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::checks::{CloudFacts, ecs_errors, flavor_errors};
use crate::clock::{SharedClock, parse_rfc3339, rfc3339};
use crate::config::AuthConfig;
use crate::runtime::{Handle, PoolKey};
use crate::store::{
    Expect, PUSH_KEEP, PUSH_RETENTION, PolicyDoc, PoolDoc, PushedPoint, Store, StoreError,
    StoreHealth,
};
use crate::telemetry::Telemetry;

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub clock: SharedClock,
    pub auth: Arc<AuthConfig>,
    pub runtime: Handle,
    pub telemetry: Arc<Telemetry>,
    /// What the cloud offers (flavors, quota), cached.
    pub facts: Arc<CloudFacts>,
    /// Set once the store is open and the runtime finished its start-up recovery.
    pub ready: Arc<AtomicBool>,
    /// Cost report, advisor and dashboard (`crate::web`).
    pub operator: Arc<crate::web::Operator>,
    /// Whether the cloud answers and accepts the credentials (reported by `/readyz`).
    pub cloud_probe: Arc<crate::probe::CloudProbe>,
    /// Tune jobs (`POST .../pools/{name}/tune`).
    pub tune_jobs: Arc<crate::tuner::TuneJobs>,
}

impl AppState {
    /// A state with nothing running behind it — no reconcile runtime (its inbox is
    /// returned, unread), no cloud prober, no advisor; `cloud` answers the API's flavor
    /// and image checks — for driving `router(state)` in tests, benches and the fuzzer.
    pub fn detached(
        store: Arc<dyn Store>,
        clock: SharedClock,
        auth: AuthConfig,
        cloud: Arc<dyn flexus_cloud::Cloud>,
    ) -> (Self, crate::runtime::Inbox) {
        let (runtime, inbox) = Handle::channel();
        let state = Self {
            facts: Arc::new(crate::checks::CloudFacts::new(cloud, clock.clone())),
            store,
            clock,
            auth: Arc::new(auth),
            runtime,
            telemetry: Arc::new(Telemetry::new()),
            ready: Arc::new(AtomicBool::new(true)),
            operator: crate::web::Operator::without_advisor(Default::default()),
            cloud_probe: Arc::default(),
            tune_jobs: Arc::default(),
        };
        (state, inbox)
    }
}

/// The API error: status + body.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    fields: Vec<FieldError>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            fields: Vec::new(),
        }
    }
    fn invalid(fields: Vec<FieldError>) -> Self {
        let message = fields
            .iter()
            .map(|f| format!("{}: {}", f.field, f.message))
            .collect::<Vec<_>>()
            .join("; ");
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_request",
            message,
            fields,
        }
    }
    /// The same error answered with another status (a field error of 422, say).
    pub(crate) fn set_status(&mut self, status: StatusCode) {
        self.status = status;
    }
    pub(crate) fn field(field: &str, message: impl Into<String>) -> Self {
        Self::invalid(vec![FieldError::new(field, message)])
    }
    pub(crate) fn not_found(what: &str, key: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} {key} not found"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                field: self.fields.first().map(|f| f.field.clone()),
                fields: self.fields,
            },
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::PreconditionFailed { .. } => Self::new(
                StatusCode::PRECONDITION_FAILED,
                "precondition_failed",
                e.to_string(),
            ),
            StoreError::Conflict { .. } => {
                Self::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            StoreError::NotFound { .. } => {
                Self::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            StoreError::Query { .. } | StoreError::Open { .. } => {
                // Nothing of the request was kept; the client may retry.
                tracing::error!(error = %e, "store failure");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    e.to_string(),
                )
            }
            _ => {
                tracing::error!(error = %e, "store failure");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            }
        }
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Admin,
    Namespace(String),
}

/// Constant-time comparison of two tokens.
fn same_token(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut diff = (a.len() ^ b.len()) as u8;
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

pub(crate) fn principal(state: &AppState, headers: &HeaderMap) -> ApiResult<Principal> {
    let unauth = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m.to_owned());
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| unauth("missing Authorization: Bearer <token> header"))?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| unauth("the Authorization header must be 'Bearer <token>'"))?;
    if let Some(admin) = &state.auth.admin
        && same_token(admin.expose(), token)
    {
        return Ok(Principal::Admin);
    }
    let mut found = None;
    for (ns, secret) in &state.auth.namespaces {
        if same_token(secret.expose(), token) {
            found = Some(ns.clone());
        }
    }
    found
        .map(Principal::Namespace)
        .ok_or_else(|| unauth("unknown token"))
}

/// Authenticate and check the caller may act in `ns`.
pub(crate) fn authorize(state: &AppState, headers: &HeaderMap, ns: &str) -> ApiResult<Principal> {
    let p = principal(state, headers)?;
    if let Principal::Namespace(own) = &p
        && own != ns
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this token belongs to namespace {own} and may not access namespace {ns}"),
        ));
    }
    validate_name("namespace", ns).map_err(|e| ApiError::invalid(vec![e]))?;
    Ok(p)
}

fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

fn parse_etag(v: &str) -> Option<u64> {
    v.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .ok()
}

/// The precondition of a write from `If-Match` / `If-None-Match`.
fn expect_from(headers: &HeaderMap) -> ApiResult<Expect> {
    if let Some(v) = headers.get(header::IF_NONE_MATCH) {
        return match v.to_str() {
            Ok("*") => Ok(Expect::Absent),
            _ => Err(ApiError::field(
                "If-None-Match",
                "only '*' (create only) is supported",
            )),
        };
    }
    match headers.get(header::IF_MATCH) {
        None => Ok(Expect::Any),
        Some(v) => {
            let s = v.to_str().unwrap_or_default();
            if s.trim() == "*" {
                return Ok(Expect::Any);
            }
            parse_etag(s).map(Expect::Version).ok_or_else(|| {
                ApiError::field(
                    "If-Match",
                    format!("{s:?} is not an ETag of this API (\"<version>\")"),
                )
            })
        }
    }
}

/// The status of a PUT: 200 when it replaced a document, 201 when it created one.
fn write_status(existed: bool) -> StatusCode {
    if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    }
}

fn with_etag<T: Serialize>(status: StatusCode, version: u64, body: &T) -> Response {
    let mut resp = (status, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&etag(version)) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp
}

/// The largest request body accepted (larger ones get `413 payload_too_large`).
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Parse a JSON body, naming the offending field on failure. A body must be declared
/// `application/json` (`415 unsupported_media_type` otherwise) and be UTF-8 (the error
/// names the byte, line and column of the first byte that is not).
fn parse_body<T: DeserializeOwned>(headers: &HeaderMap, body: &Bytes) -> ApiResult<T> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|ct| ct.to_str().unwrap_or("(not text)"));
    if !content_type.is_some_and(|ct| ct.starts_with("application/json")) {
        let mut e = ApiError::field(
            "Content-Type",
            match content_type {
                None => "missing: a request body must be sent as application/json".to_owned(),
                Some(ct) => format!("{ct:?}: a request body must be sent as application/json"),
            },
        );
        e.code = "unsupported_media_type";
        e.set_status(StatusCode::UNSUPPORTED_MEDIA_TYPE);
        return Err(e);
    }
    if let Err(d) = flexus_policy::source_text(body, "(body)") {
        let message = d.iter().map(|d| d.message.clone()).collect::<String>();
        return Err(ApiError::field("(body)", message));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "(body)".to_owned()
        } else {
            path
        };
        ApiError::field(&field, e.inner().to_string())
    })
}

fn name_ok(field: &str, v: &str) -> ApiResult<()> {
    validate_name(field, v).map_err(|e| ApiError::invalid(vec![e]))
}

fn now(state: &AppState) -> String {
    rfc3339(state.clock.now_ms())
}

/// A 400 naming every field in `errs` (the spec's validation result), if any.
fn checked(errs: Vec<FieldError>) -> ApiResult<()> {
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(errs))
    }
}

/// Every check of a pool spec before it is stored: its own rules, what ECS accepts, the
/// cloud's flavor catalogue and its images (each skipped, with a warning, while the cloud
/// cannot answer).
async fn checked_pool_spec(state: &AppState, spec: &PoolSpec) -> ApiResult<()> {
    let mut errs = spec.validate("spec");
    errs.extend(ecs_errors(spec));
    if !spec.flavor.trim().is_empty()
        && let Ok(offered) = state.facts.flavors().await
    {
        errs.extend(flavor_errors(spec, &offered));
    }
    if !spec.image.trim().is_empty()
        && let Ok(found) = state.facts.image(&spec.image).await
    {
        errs.extend(flexus_api::image_errors(
            &spec.image,
            Some(spec.root_volume.size),
            found.as_ref(),
        ));
    }
    checked(errs)
}

/// `?dry_run=true`: check everything, store nothing.
fn dry_run(query: Option<&str>) -> ApiResult<bool> {
    for (k, v) in query
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
    {
        if k == "dry_run" {
            return match v {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(ApiError::field(
                    "dry_run",
                    format!("must be true or false, got {v:?}"),
                )),
            };
        }
    }
    Ok(false)
}

/// Pool `ns/name` as stored, or a 404 naming it.
pub(crate) async fn pool_doc(state: &AppState, ns: &str, name: &str) -> ApiResult<PoolDoc> {
    state
        .store
        .get_pool(ns, name)
        .await?
        .ok_or_else(|| ApiError::not_found("pool", &format!("{ns}/{name}")))
}

/// Pool `d` as the API shows it, its version as the ETag.
async fn pool_response(state: &AppState, status: StatusCode, d: PoolDoc) -> ApiResult<Response> {
    let v = d.version;
    let pool = pool_view(state, d).await?;
    Ok(with_etag(status, v, &pool))
}

async fn pool_view(state: &AppState, d: PoolDoc) -> ApiResult<Pool> {
    let mut status: PoolStatus = match state.store.get_runtime(&d.namespace, &d.name).await {
        Ok(rt) => rt.map(|r| r.status).unwrap_or_default(),
        // Damaged runtime state stops the pool's passes; the pool itself stays readable
        // (and a write to it is not reported as failed) with the damage as its error.
        Err(e @ StoreError::Corrupt { .. }) => PoolStatus {
            phase: PoolPhase::Degraded,
            last_error: Some(e.to_string()),
            ..PoolStatus::default()
        },
        Err(e) => return Err(e.into()),
    };
    if d.deleting {
        status.phase = PoolPhase::Deleting;
    }
    Ok(Pool {
        id: format!("{}/{}", d.namespace, d.name),
        namespace: d.namespace,
        name: d.name,
        version: d.version,
        spec: d.spec,
        status,
        created_at: d.created_at,
        updated_at: d.updated_at,
    })
}

fn policy_view(d: PolicyDoc) -> Policy {
    Policy {
        id: format!("{}/{}", d.namespace, d.name),
        namespace: d.namespace,
        name: d.name,
        version: d.version,
        spec: d.spec,
        created_at: d.created_at,
        updated_at: d.updated_at,
    }
}

async fn list_namespaces(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<axum::Json<Vec<Namespace>>> {
    let p = principal(&state, &headers)?;
    let all = state.store.list_namespaces().await?;
    let mut out: Vec<Namespace> = match &p {
        Principal::Admin => all,
        Principal::Namespace(ns) => all.into_iter().filter(|n| &n.name == ns).collect(),
    };
    // Namespaces declared in the config exist even before they hold anything.
    for ns in state.auth.namespaces.keys() {
        let visible = matches!(&p, Principal::Admin) || p == Principal::Namespace(ns.clone());
        if visible && !out.iter().any(|n| &n.name == ns) {
            out.push(Namespace {
                name: ns.clone(),
                pools: 0,
                policies: 0,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(axum::Json(out))
}

async fn list_pools(
    State(state): State<AppState>,
    Path(ns): Path<String>,
    headers: HeaderMap,
) -> ApiResult<axum::Json<Vec<Pool>>> {
    authorize(&state, &headers, &ns)?;
    let docs = state.store.list_pools(Some(&ns)).await?;
    let mut out = Vec::with_capacity(docs.len());
    for d in docs {
        out.push(pool_view(&state, d).await?);
    }
    Ok(axum::Json(out))
}

async fn get_pool(
    State(state): State<AppState>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    authorize(&state, &headers, &ns)?;
    let d = pool_doc(&state, &ns, &name).await?;
    pool_response(&state, StatusCode::OK, d).await
}

async fn put_pool(
    State(state): State<AppState>,
    Path((ns, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    authorize(&state, &headers, &ns)?;
    name_ok("name", &name)?;
    let expect = expect_from(&headers)?;
    let req: PutPool = parse_body(&headers, &body)?;
    checked_pool_spec(&state, &req.spec).await?;
    if dry_run(query.as_deref())? {
        return Ok((StatusCode::OK, axum::Json(req)).into_response());
    }
    let existed = state.store.get_pool(&ns, &name).await?.is_some();
    let d = state
        .store
        .put_pool(&ns, &name, &req.spec, expect, &now(&state))
        .await?;
    tracing::info!(pool = %format!("{ns}/{name}"), version = d.version, "pool spec written");
    if !existed {
        // A new pool is free: claim it now rather than at the next lease round (the
        // pool is written either way; a failed claim is the next round's business).
        if let Err(e) = state.store.claim_pool(&ns, &name).await {
            tracing::warn!(pool = %format!("{ns}/{name}"), error = %e, "cannot claim the new pool now");
        }
    }
    state.runtime.notify(PoolKey::new(&ns, &name));
    pool_response(&state, write_status(existed), d).await
}

async fn delete_pool(
    State(state): State<AppState>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    authorize(&state, &headers, &ns)?;
    let expect = expect_from(&headers)?;
    let d = state
        .store
        .mark_pool_deleting(&ns, &name, expect, &now(&state))
        .await?;
    tracing::info!(pool = %format!("{ns}/{name}"), "pool marked for deletion");
    state.runtime.notify(PoolKey::new(&ns, &name));
    pool_response(&state, StatusCode::ACCEPTED, d).await
}

async fn pool_status(
    State(state): State<AppState>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<axum::Json<PoolStatus>> {
    authorize(&state, &headers, &ns)?;
    let d = pool_doc(&state, &ns, &name).await?;
    Ok(axum::Json(pool_view(&state, d).await?.status))
}

#[derive(Debug, serde::Deserialize)]
struct PageQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

async fn decisions(
    State(state): State<AppState>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<PageQuery>,
    headers: HeaderMap,
) -> ApiResult<axum::Json<Page<DecisionRecord>>> {
    authorize(&state, &headers, &ns)?;
    let limit = match q.limit.as_deref() {
        None => 50,
        Some(s) => match s.parse::<u32>() {
            Ok(n) if (1..=500).contains(&n) => n,
            _ => {
                return Err(ApiError::field(
                    "limit",
                    format!("{s:?} is not a number between 1 and 500"),
                ));
            }
        },
    };
    let before = match q.cursor.as_deref() {
        None => None,
        Some(s) => Some(s.parse::<i64>().map_err(|_| {
            ApiError::field(
                "cursor",
                format!("{s:?} is not a cursor from a previous page"),
            )
        })?),
    };
    pool_doc(&state, &ns, &name).await?;
    let items = state
        .store
        .list_decisions(&ns, &name, before, limit + 1)
        .await?;
    let mut items = items;
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|d| d.id.to_string())
    } else {
        None
    };
    Ok(axum::Json(Page { items, next_cursor }))
}

async fn operations(
    State(state): State<AppState>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<axum::Json<Vec<Operation>>> {
    authorize(&state, &headers, &ns)?;
    pool_doc(&state, &ns, &name).await?;
    let ops = state.store.list_operations(&ns, &name, 100).await?;
    Ok(axum::Json(ops.into_iter().map(|o| o.op).collect()))
}

async fn reconcile_now(
    State(state): State<AppState>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<(StatusCode, axum::Json<ReconcileAccepted>)> {
    authorize(&state, &headers, &ns)?;
    pool_doc(&state, &ns, &name).await?;
    let queued = state
        .runtime
        .reconcile_now(PoolKey::new(&ns, &name))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the reconcile runtime is not running",
            )
        })?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(ReconcileAccepted {
            pool: format!("{ns}/{name}"),
            queued,
        }),
    ))
}

async fn start_tune(
    State(state): State<AppState>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, axum::Json<flexus_api::TuneJob>)> {
    authorize(&state, &headers, &ns)?;
    let req: flexus_api::TuneRequest = if body.is_empty() {
        flexus_api::TuneRequest::default()
    } else {
        parse_body(&headers, &body)?
    };
    let job = state
        .tune_jobs
        .start(state.store.clone(), state.clock.clone(), (&ns, &name), req)
        .await
        .map_err(|e| match e {
            crate::tuner::TuneError::NoPool(p) => ApiError::not_found("pool", &p),
            crate::tuner::TuneError::Invalid(m) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "cannot_tune", m)
            }
            e @ crate::tuner::TuneError::Busy { .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            ),
            crate::tuner::TuneError::Store(e) => e.into(),
        })?;
    Ok((StatusCode::ACCEPTED, axum::Json(job)))
}

async fn list_tune_jobs(
    State(state): State<AppState>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<axum::Json<Vec<flexus_api::TuneJob>>> {
    authorize(&state, &headers, &ns)?;
    pool_doc(&state, &ns, &name).await?;
    Ok(axum::Json(
        state
            .tune_jobs
            .list(state.store.as_ref(), &ns, &name)
            .await?,
    ))
}

async fn get_tune_job(
    State(state): State<AppState>,
    Path((ns, name, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<axum::Json<flexus_api::TuneJob>> {
    authorize(&state, &headers, &ns)?;
    state
        .tune_jobs
        .get(state.store.as_ref(), &ns, &name, &id)
        .await?
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found("tune job", &format!("{ns}/{name}/{id}")))
}

/// At most this many datapoints per push.
pub const MAX_PUSH_DATAPOINTS: usize = 1000;
/// A pushed datapoint may be at most this far ahead of the agent's clock.
pub const MAX_PUSH_AHEAD: std::time::Duration = std::time::Duration::from_secs(300);

/// Check every datapoint of a push against the pool's policy (`metrics`: the names
/// of its push-sourced metrics); field errors name the datapoint by index.
fn check_datapoints(
    points: &[MetricDatapoint],
    policy: Option<(&str, &[String])>,
    now_ms: i64,
) -> Result<Vec<PushedPoint>, Vec<FieldError>> {
    let mut errs = Vec::new();
    if points.is_empty() {
        errs.push(FieldError::new(
            "(body)",
            "no datapoints: send at least one",
        ));
    }
    if points.len() > MAX_PUSH_DATAPOINTS {
        errs.push(FieldError::new(
            "(body)",
            format!(
                "{} datapoints; at most {MAX_PUSH_DATAPOINTS} per request",
                points.len()
            ),
        ));
    }
    let oldest = now_ms - PUSH_RETENTION.as_millis() as i64;
    let newest = now_ms + MAX_PUSH_AHEAD.as_millis() as i64;
    let mut out = Vec::with_capacity(points.len());
    for (i, p) in points.iter().enumerate() {
        let known = match policy {
            Some((_, names)) => names.iter().any(|n| n == &p.metric),
            None => false,
        };
        if !known {
            let why = match policy {
                None => "the pool has no policy, so no metric can be pushed to it".to_owned(),
                Some((pol, [])) => format!("policy {pol} has no push-sourced metric"),
                Some((pol, names)) => format!(
                    "policy {pol} has no push-sourced metric of that name (push metrics: {})",
                    names.join(", ")
                ),
            };
            errs.push(FieldError::new(
                format!("[{i}].metric"),
                format!("unknown metric {:?}: {why}", p.metric),
            ));
        }
        if !p.value.is_finite() {
            errs.push(FieldError::new(
                format!("[{i}].value"),
                "must be a finite number",
            ));
        }
        let at = match p.at.as_deref() {
            None => Some(now_ms),
            Some(t) => match parse_rfc3339(t) {
                None => {
                    errs.push(FieldError::new(
                        format!("[{i}].at"),
                        format!("{t:?} is not an RFC 3339 time (e.g. 2026-01-01T00:00:00Z)"),
                    ));
                    None
                }
                Some(ms) if ms < oldest || ms > newest => {
                    errs.push(FieldError::new(
                        format!("[{i}].at"),
                        format!(
                            "{t} is outside the accepted range {} .. {} (at most {} h old, {} min ahead)",
                            rfc3339(oldest),
                            rfc3339(newest),
                            PUSH_RETENTION.as_secs() / 3600,
                            MAX_PUSH_AHEAD.as_secs() / 60
                        ),
                    ));
                    None
                }
                Some(ms) => Some(ms),
            },
        };
        if let Some(at) = at {
            out.push(PushedPoint {
                metric: p.metric.clone(),
                at,
                value: p.value,
            });
        }
    }
    if errs.is_empty() { Ok(out) } else { Err(errs) }
}

async fn push_metrics(
    State(state): State<AppState>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, axum::Json<PushAccepted>)> {
    authorize(&state, &headers, &ns)?;
    let points: Vec<MetricDatapoint> = parse_body(&headers, &body)?;
    pool_doc(&state, &ns, &name).await?;
    let policy = match state.store.policy_for_pool(&ns, &name).await? {
        Some(d) => {
            let names: Vec<String> = d
                .spec
                .policy
                .metrics
                .iter()
                .filter(|m| matches!(m.source, flexus_policy::MetricSource::Push))
                .map(|m| m.name.clone())
                .collect();
            Some((d.name, names))
        }
        None => None,
    };
    let now_ms = state.clock.now_ms();
    let checked = check_datapoints(
        &points,
        policy.as_ref().map(|(n, m)| (n.as_str(), m.as_slice())),
        now_ms,
    )
    .map_err(ApiError::invalid)?;
    state
        .store
        .insert_pushed(
            &ns,
            &name,
            &checked,
            now_ms - PUSH_RETENTION.as_millis() as i64,
            PUSH_KEEP,
        )
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(PushAccepted {
            pool: format!("{ns}/{name}"),
            accepted: checked.len() as u32,
        }),
    ))
}

async fn list_policies(
    State(state): State<AppState>,
    Path(ns): Path<String>,
    headers: HeaderMap,
) -> ApiResult<axum::Json<Vec<Policy>>> {
    authorize(&state, &headers, &ns)?;
    let docs = state.store.list_policies(&ns).await?;
    Ok(axum::Json(docs.into_iter().map(policy_view).collect()))
}

async fn get_policy(
    State(state): State<AppState>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    authorize(&state, &headers, &ns)?;
    let d = state
        .store
        .get_policy(&ns, &name)
        .await?
        .ok_or_else(|| ApiError::not_found("policy", &format!("{ns}/{name}")))?;
    Ok(with_etag(StatusCode::OK, d.version, &policy_view(d)))
}

/// Field errors of a policy spec (the pool reference and the flexus-policy model).
pub fn validate_policy_spec(spec: &PolicySpec) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Err(e) = validate_name("spec.pool", &spec.pool) {
        errs.push(e);
    }
    if let Err(diags) = spec.policy.validate() {
        for d in diags.iter() {
            let path = d.path.to_string();
            let field = if path == "(policy)" {
                "spec.policy".to_owned()
            } else {
                format!("spec.policy.{path}")
            };
            errs.push(FieldError::new(field, d.message.clone()));
        }
    }
    errs
}

/// A policy may not be evaluated more often than the runtime's minimum (one tenant's
/// policy must not flood the cloud account every tenant shares).
fn interval_error(spec: &PolicySpec, min: std::time::Duration) -> Option<FieldError> {
    let asked = spec.policy.evaluation_interval;
    (asked < min).then(|| {
        FieldError::new(
            "spec.policy.evaluation_interval",
            format!(
                "must be at least {} (the agent's reconcile.min_evaluation_interval), got {}",
                flexus_policy::format_duration(min),
                flexus_policy::format_duration(asked)
            ),
        )
    })
}

async fn put_policy(
    State(state): State<AppState>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    authorize(&state, &headers, &ns)?;
    name_ok("name", &name)?;
    let expect = expect_from(&headers)?;
    let req: PutPolicy = parse_body(&headers, &body)?;
    let mut errs = validate_policy_spec(&req.spec);
    if let Some(pool) = state.store.get_pool(&ns, &req.spec.pool).await?
        && !pool.deleting
    {
        errs.extend(policy_bounds_errors(
            &req.spec.policy.bounds,
            (pool.spec.min_size, pool.spec.max_size),
            &format!("{ns}/{}", req.spec.pool),
        ));
    }
    errs.extend(interval_error(
        &req.spec,
        state.runtime.min_evaluation_interval(),
    ));
    checked(errs)?;
    let old = state.store.get_policy(&ns, &name).await?;
    let d = state
        .store
        .put_policy(&ns, &name, &req.spec, expect, &now(&state))
        .await?;
    tracing::info!(policy = %format!("{ns}/{name}"), pool = %req.spec.pool, version = d.version, "policy written");
    state.runtime.notify(PoolKey::new(&ns, &req.spec.pool));
    if let Some(old_pool) = old.as_ref().map(|o| o.spec.pool.clone())
        && old_pool != req.spec.pool
    {
        state.runtime.notify(PoolKey::new(&ns, &old_pool));
    }
    Ok(with_etag(
        write_status(old.is_some()),
        d.version,
        &policy_view(d),
    ))
}

async fn delete_policy(
    State(state): State<AppState>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    authorize(&state, &headers, &ns)?;
    let expect = expect_from(&headers)?;
    let old = state.store.get_policy(&ns, &name).await?;
    state.store.delete_policy(&ns, &name, expect).await?;
    if let Some(pool) = old.map(|o| o.spec.pool) {
        state.runtime.notify(PoolKey::new(&ns, &pool));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The cloud could not be asked: 503 naming the call.
fn cloud_unavailable(what: &str, e: &flexus_cloud::CloudError) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        format!("cannot {what} from the cloud: {e}"),
    )
}

async fn cloud_flavors(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<axum::Json<Vec<FlavorInfo>>> {
    principal(&state, &headers)?;
    let f = state
        .facts
        .flavors()
        .await
        .map_err(|e| cloud_unavailable("list the flavors", &e))?;
    Ok(axum::Json(f.as_ref().clone()))
}

async fn cloud_image(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<axum::Json<ImageInfo>> {
    principal(&state, &headers)?;
    state
        .facts
        .image(&id)
        .await
        .map_err(|e| cloud_unavailable("look the image up", &e))?
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found("image", &id))
}

async fn cloud_quota(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<axum::Json<QuotaInfo>> {
    principal(&state, &headers)?;
    let q = state
        .facts
        .quota()
        .await
        .map_err(|e| cloud_unavailable("read the quota", &e))?;
    Ok(axum::Json(q))
}

async fn healthz() -> axum::Json<Health> {
    axum::Json(Health {
        status: "ok".into(),
        problems: Vec::new(),
    })
}

/// How long `/readyz` waits for the probe write of a failing store.
const READY_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

async fn readyz(State(state): State<AppState>) -> (StatusCode, axum::Json<Health>) {
    let started = state.ready.load(Ordering::SeqCst);
    let mut problems = Vec::new();
    if !started {
        problems.push("start-up recovery (adopt, finish operations) has not finished".into());
    }
    problems.extend(state.cloud_probe.problem());
    // A store that failed to commit is probed again here, so readiness comes back by
    // itself once the store can commit (e.g. disk space was freed).
    // The probe is bounded: a store that does not answer (PostgreSQL down, its
    // connections waiting to be re-established) is down for readiness, now.
    let mut store_down = false;
    if let StoreHealth::Failing { .. } = state.store.health() {
        let failed = match tokio::time::timeout(
            READY_PROBE_TIMEOUT,
            state.store.probe(&now(&state)),
        )
        .await
        {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(format!(
                "store probe: no answer within {} s",
                READY_PROBE_TIMEOUT.as_secs()
            )),
        };
        if let Some(e) = failed {
            store_down = true;
            problems.push(format!(
                "the store cannot commit writes, so the agent does not act on the cloud: {e}"
            ));
        }
    }
    let (code, status) = match (started, store_down, problems.is_empty()) {
        (false, _, _) => (StatusCode::SERVICE_UNAVAILABLE, "starting"),
        (true, true, _) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
        (true, false, true) => (StatusCode::OK, "ready"),
        (true, false, false) => (StatusCode::SERVICE_UNAVAILABLE, "not ready"),
    };
    (
        code,
        axum::Json(Health {
            status: status.into(),
            problems,
        }),
    )
}

/// `/metrics`: the agent-wide series to anyone; the per-pool series (which name pools)
/// only to a scrape with the admin token. Any other token is refused rather than
/// silently served less.
async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let text = if headers.contains_key(header::AUTHORIZATION) {
        match principal(&state, &headers)? {
            Principal::Admin => state.telemetry.encode_with_pools(),
            Principal::Namespace(ns) => {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    format!(
                        "the per-pool series of /metrics need the admin token; this token belongs to namespace {ns} (scrape without a token for the agent-wide series)"
                    ),
                ));
            }
        }
    } else {
        state.telemetry.encode()
    };
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

async fn openapi() -> axum::Json<serde_json::Value> {
    axum::Json(crate::openapi::document())
}

async fn fallback(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    crate::rejections::no_such_endpoint(&method, uri.path())
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/namespaces", get(list_namespaces))
        .route(paths::CLOUD_FLAVORS, get(cloud_flavors))
        .route(paths::CLOUD_QUOTA, get(cloud_quota))
        .route("/v1/cloud/images/{id}", get(cloud_image))
        .route("/v1/namespaces/{ns}/pools", get(list_pools))
        .route(
            "/v1/namespaces/{ns}/pools/{name}",
            get(get_pool).put(put_pool).delete(delete_pool),
        )
        .route("/v1/namespaces/{ns}/pools/{name}/status", get(pool_status))
        .route("/v1/namespaces/{ns}/pools/{name}/decisions", get(decisions))
        .route(
            "/v1/namespaces/{ns}/pools/{name}/operations",
            get(operations),
        )
        .route(
            "/v1/namespaces/{ns}/pools/{name}/reconcile",
            post(reconcile_now),
        )
        .route(
            "/v1/namespaces/{ns}/pools/{name}/metrics",
            post(push_metrics),
        )
        .route(
            "/v1/namespaces/{ns}/pools/{name}/tune",
            post(start_tune).get(list_tune_jobs),
        )
        .route(
            "/v1/namespaces/{ns}/pools/{name}/tune/{id}",
            get(get_tune_job),
        )
        .route("/v1/namespaces/{ns}/policies", get(list_policies))
        .route(
            "/v1/namespaces/{ns}/policies/{name}",
            get(get_policy).put(put_policy).delete(delete_policy),
        )
        .merge(crate::web::routes())
        .fallback(fallback)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(crate::rejections::json_errors))
        .with_state(state)
}
