//! What the operator sees and asks, over HTTP: the dashboard (assets embedded in the
//! binary, no CDN) and the API behind it — cost reports, usage series, advisor requests
//! and answers. Same bearer tokens as the rest of `/v1`: a namespace token sees only its
//! namespace. Merged into [`crate::server::router`].

pub mod text;

use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use flexus_api::{Advice, CostReport, PoolSpec, UsagePoint, UsageSeries, Window};

use crate::advisor::{self, AdvisorHandle, SubmitError};
use crate::clock::rfc3339;
use crate::cost::replay::{Setup, pool_history, recommendations};
use crate::cost::usage::hour_of;
use crate::cost::{CostConfig, report};
use crate::server::{ApiError, ApiResult, AppState, Principal, authorize, pool_doc, principal};
use crate::store::UsageScope;

/// The operator's parts the handlers share.
#[derive(Debug)]
pub struct Operator {
    pub cost: CostConfig,
    pub advisor: AdvisorHandle,
}

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// The dashboard's routes and the operator API.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/ui/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/ui/app.css",
            get(|| async { asset("text/css; charset=utf-8", APP_CSS) }),
        )
        .route("/v1/cost", get(all_cost))
        .route("/v1/namespaces/{ns}/cost", get(namespace_cost))
        .route("/v1/namespaces/{ns}/pools/{name}/cost", get(pool_cost))
        .route("/v1/namespaces/{ns}/pools/{name}/usage", get(pool_usage))
        .route(
            "/v1/namespaces/{ns}/pools/{name}/advice",
            get(list_advice).post(request_advice),
        )
        .route("/v1/advisor", get(advisor_status))
}

#[derive(Debug, serde::Deserialize)]
struct CostQuery {
    window: Option<String>,
    recommend: Option<String>,
}

/// The window asked for (default `cost.window`, at most `cost.retention`).
fn window(state: &AppState, q: Option<&str>, default: Duration) -> ApiResult<(i64, i64, Window)> {
    let cost = &state.operator.cost;
    let d = match q {
        None => default,
        Some(s) => match flexus_policy::parse_duration(s) {
            Ok(d) if d >= Duration::from_secs(60) && d <= cost.retention => d,
            _ => {
                return Err(ApiError::field(
                    "window",
                    format!(
                        "{s:?} is not a duration between 1m and the retention of {} (e.g. \"24h\")",
                        flexus_policy::format_duration(cost.retention)
                    ),
                ));
            }
        },
    };
    let now = state.clock.now_ms();
    let from = now - d.as_millis() as i64;
    let w = Window {
        from: rfc3339(hour_of(from) * 1000),
        to: rfc3339(now),
        hours: (now - hour_of(from) * 1000) as f64 / 3_600_000.0,
    };
    Ok((hour_of(from), hour_of(now), w))
}

async fn cost_report(
    state: &AppState,
    scope: UsageScope<'_>,
    q: &CostQuery,
) -> ApiResult<CostReport> {
    let cost = &state.operator.cost;
    let (from, to, w) = window(state, q.window.as_deref(), cost.window)?;
    let rows = state.store.usage_totals(scope, from, to).await?;
    Ok(report::report(&rows, &cost.prices, w, &cost.currency))
}

async fn all_cost(
    State(state): State<AppState>,
    Query(q): Query<CostQuery>,
    headers: HeaderMap,
) -> ApiResult<axum::Json<CostReport>> {
    if principal(&state, &headers)? != Principal::Admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the report over every namespace needs the admin token; use /v1/namespaces/{ns}/cost",
        ));
    }
    Ok(axum::Json(cost_report(&state, UsageScope::All, &q).await?))
}

async fn namespace_cost(
    State(state): State<AppState>,
    Path(ns): Path<String>,
    Query(q): Query<CostQuery>,
    headers: HeaderMap,
) -> ApiResult<axum::Json<CostReport>> {
    authorize(&state, &headers, &ns)?;
    Ok(axum::Json(
        cost_report(&state, UsageScope::Namespace(&ns), &q).await?,
    ))
}

async fn pool_cost(
    State(state): State<AppState>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<CostQuery>,
    headers: HeaderMap,
) -> ApiResult<axum::Json<CostReport>> {
    authorize(&state, &headers, &ns)?;
    let doc = pool_doc(&state, &ns, &name).await?;
    let mut r = cost_report(&state, UsageScope::Pool(&ns, &name), &q).await?;
    let recommend = match q.recommend.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(o) => {
            return Err(ApiError::field(
                "recommend",
                format!("{o:?} is not true or false"),
            ));
        }
    };
    if recommend {
        let (recs, note) =
            pool_recommendations(&state, &ns, &name, doc.spec, q.window.as_deref()).await?;
        let pool = format!("{ns}/{name}");
        if r.pools.is_empty() {
            r.pools.push(flexus_api::PoolCost {
                pool,
                flavor: String::new(),
                figures: Default::default(),
                recommendations: Vec::new(),
                recommendation_note: None,
            });
        }
        r.pools[0].recommendations = recs;
        r.pools[0].recommendation_note = note;
    }
    Ok(axum::Json(r))
}

/// Recommendations for one pool (replays on a blocking thread), or why there are none.
async fn pool_recommendations(
    state: &AppState,
    ns: &str,
    name: &str,
    spec: PoolSpec,
    w: Option<&str>,
) -> ApiResult<(Vec<flexus_api::CostRecommendation>, Option<String>)> {
    let cost = state.operator.cost.clone();
    let (from, to, _) = window(state, w, cost.window)?;
    let (_, h) = pool_history(
        state.store.as_ref(),
        (ns, name),
        (from, to),
        cost.sample_interval,
    )
    .await?;
    // The policy as declared: each replay holds it to the pool it replays (a lower
    // min_size lets a policy whose own minimum is lower go lower).
    let policy = state
        .store
        .policy_for_pool(ns, name)
        .await?
        .map(|d| d.spec.policy);
    let h = match h {
        Ok(h) => h,
        Err(note) => return Ok((Vec::new(), Some(note))),
    };
    let Some(setup) = Setup::of_pool(&spec, policy, &cost.prices, cost.spot_hazard_per_hour) else {
        return Ok((
            Vec::new(),
            Some(format!(
                "flavor {} is not in the capacity catalogue: nothing to replay",
                spec.flavor
            )),
        ));
    };
    let r = tokio::task::spawn_blocking(move || recommendations(&h, &setup, &cost.prices))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    match r {
        Ok(recs) if recs.is_empty() => Ok((
            recs,
            Some("no change beats the pool as it is in the replay".into()),
        )),
        Ok(recs) => Ok((recs, None)),
        Err(e) => Ok((Vec::new(), Some(format!("the replay failed: {e}")))),
    }
}

async fn pool_usage(
    State(state): State<AppState>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<CostQuery>,
    headers: HeaderMap,
) -> ApiResult<axum::Json<UsageSeries>> {
    authorize(&state, &headers, &ns)?;
    let doc = pool_doc(&state, &ns, &name).await?;
    let flavor = doc.spec.flavor;
    let (from, to, w) = window(&state, q.window.as_deref(), Duration::from_secs(6 * 3600))?;
    let since = crate::clock::parse_rfc3339(&w.from).unwrap_or(0);
    let rows = state
        .store
        .usage_hours(UsageScope::Pool(&ns, &name), from, to, true)
        .await?;
    let f = flexus_sim::capacity::lookup(&flavor).ok();
    let points = rows
        .iter()
        .flat_map(|r| r.samples.iter())
        .filter(|s| s.at_ms >= since)
        .map(|s| UsagePoint {
            at: rfc3339(s.at_ms),
            load_rps: s.load_rps,
            demand: s
                .load_rps
                .zip(f.as_ref())
                .map(|(l, f)| f.demand_instances(l)),
            ready: s.ready,
            billed: s.billed,
            desired: s.desired,
            forecast_capacity: s.forecast_capacity,
        })
        .collect();
    Ok(axum::Json(UsageSeries {
        pool: format!("{ns}/{name}"),
        flavor,
        points,
    }))
}

async fn request_advice(
    State(state): State<AppState>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<(StatusCode, axum::Json<Advice>)> {
    authorize(&state, &headers, &ns)?;
    pool_doc(&state, &ns, &name).await?;
    let adv = &state.operator.advisor;
    if !adv.enabled() {
        return Err(submit_error(SubmitError::Disabled));
    }
    let now = state.clock.now_ms();
    let advice = advisor::pending(&ns, &name, adv.model(), now);
    // Stored before it is queued: an accepted request is never lost without a trace.
    state.store.put_advice(&ns, &name, &advice, now).await?;
    if let Err(e) = adv.submit(&ns, &name, advice.clone()) {
        let mut failed = advice.clone();
        failed.state = flexus_api::AdviceState::Failed;
        failed.error = Some(e.to_string());
        state.store.put_advice(&ns, &name, &failed, now).await?;
        return Err(submit_error(e));
    }
    tracing::info!(pool = %advice.pool, advice_id = %advice.id, "advice requested");
    Ok((StatusCode::ACCEPTED, axum::Json(advice)))
}

fn submit_error(e: SubmitError) -> ApiError {
    let (status, code) = match e {
        SubmitError::Disabled => (StatusCode::CONFLICT, "conflict"),
        SubmitError::Busy(_) | SubmitError::Stopped => {
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        }
    };
    ApiError::new(status, code, e.to_string())
}

async fn list_advice(
    State(state): State<AppState>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<axum::Json<Vec<Advice>>> {
    authorize(&state, &headers, &ns)?;
    pool_doc(&state, &ns, &name).await?;
    let answers = state.store.list_advice(&ns, &name, 20).await?;
    Ok(axum::Json(
        answers.into_iter().map(advisor::as_seen).collect(),
    ))
}

async fn advisor_status(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<axum::Json<flexus_api::AdvisorStatus>> {
    principal(&state, &headers)?;
    Ok(axum::Json(
        state.operator.advisor.status(state.clock.now_ms()),
    ))
}

/// The operator's tasks, assembled but not started.
#[derive(Debug)]
pub struct OperatorTasks {
    recorder: crate::cost::usage::UsageRecorder,
    advisor: Option<advisor::Advisor>,
}

impl OperatorTasks {
    /// Start the usage recorder and the advisor; the returned future ends when both
    /// have stopped after `shutdown`.
    pub fn spawn(
        self,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> impl std::future::Future<Output = ()> {
        let recorder = tokio::spawn(self.recorder.run(shutdown.clone()));
        let advisor = self.advisor.map(|a| tokio::spawn(a.run(shutdown)));
        async move {
            let _ = recorder.await;
            if let Some(a) = advisor {
                let _ = a.await;
            }
        }
    }
}

impl Operator {
    /// The shared parts and the tasks behind them.
    pub fn assemble(
        config: &crate::config::Config,
        store: std::sync::Arc<dyn crate::store::Store>,
        clock: crate::clock::SharedClock,
        telemetry: std::sync::Arc<crate::telemetry::Telemetry>,
    ) -> (std::sync::Arc<Self>, OperatorTasks) {
        let (handle, task) = advisor::build(
            &config.advisor,
            &config.cost,
            store.clone(),
            clock.clone(),
            telemetry.clone(),
        );
        let recorder =
            crate::cost::usage::UsageRecorder::new(store, clock, telemetry, config.cost.clone());
        let op = std::sync::Arc::new(Self {
            cost: config.cost.clone(),
            advisor: handle,
        });
        (
            op,
            OperatorTasks {
                recorder,
                advisor: task,
            },
        )
    }
}

impl Operator {
    /// The cost report with the default price table and no advisor (API tests).
    pub fn without_advisor(cost: CostConfig) -> std::sync::Arc<Self> {
        let config = advisor::AdvisorConfig::default();
        let store_less = advisor::disabled_handle(&config);
        std::sync::Arc::new(Self {
            cost,
            advisor: store_less,
        })
    }
}

/// The totals of two reports added (the CLI's report over every namespace); idle %
/// is weighed by billed instance-hours.
pub fn add_totals(
    a: &flexus_api::CostFigures,
    b: &flexus_api::CostFigures,
) -> flexus_api::CostFigures {
    let mut t = a.clone();
    report::add(&mut t, b);
    let w =
        |f: &flexus_api::CostFigures| f.idle_pct.map(|i| (i * f.instance_hours, f.instance_hours));
    let parts: Vec<(f64, f64)> = [w(a), w(b)].into_iter().flatten().collect();
    let hours: f64 = parts.iter().map(|p| p.1).sum();
    t.idle_pct = (hours > 0.0).then(|| parts.iter().map(|p| p.0).sum::<f64>() / hours);
    t.cost_per_1k_requests = (t.requests > 0.0).then(|| t.cost / (t.requests / 1000.0));
    t
}

/// The operator's paths for the OpenAPI document; registers their body schemas in `g`.
pub fn openapi_paths(g: &mut schemars::SchemaGenerator) -> serde_json::Value {
    use serde_json::json;
    let _ = g.subschema_for::<flexus_api::CostReport>();
    let _ = g.subschema_for::<flexus_api::UsageSeries>();
    let _ = g.subschema_for::<flexus_api::Advice>();
    let _ = g.subschema_for::<flexus_api::AdvisorStatus>();
    let r = |name: &str| json!({"$ref": format!("#/components/schemas/{name}")});
    let ok = |desc: &str, schema: serde_json::Value| json!({"description": desc, "content": {"application/json": {"schema": schema}}});
    let err = |desc: &str| json!({"description": desc, "content": {"application/json": {"schema": r("ErrorBody")}}});
    let ns = json!({"name": "ns", "in": "path", "required": true, "schema": {"type": "string"}});
    let name =
        json!({"name": "name", "in": "path", "required": true, "schema": {"type": "string"}});
    let window = json!({"name": "window", "in": "query", "required": false, "schema": {"type": "string"},
        "description": "Report window, e.g. `24h` (default `cost.window`; hour granularity; at most `cost.retention`)."});
    let recommend = json!({"name": "recommend", "in": "query", "required": false, "schema": {"type": "boolean"},
        "description": "Replay size (min_size; initial_size without a policy), spot share and flavor changes on the pool's recent load (slower)."});
    let common = json!({"400": err("Invalid query; `error.field` names it"), "401": err("Missing or unknown bearer token"),
        "403": err("The token may not access this namespace"), "404": err("No such pool")});
    let with = |extra: serde_json::Value| {
        let mut m = common.clone();
        if let (Some(a), Some(b)) = (m.as_object_mut(), extra.as_object()) {
            a.extend(b.clone());
        }
        m
    };
    json!({
        "/v1/cost": {"get": {"summary": "Cost report over every namespace (admin token)", "parameters": [window.clone()],
            "responses": with(json!({"200": ok("The report", r("CostReport"))}))}},
        "/v1/namespaces/{ns}/cost": {"get": {"summary": "Cost report of every pool of a namespace",
            "parameters": [ns.clone(), window.clone()],
            "responses": with(json!({"200": ok("The report", r("CostReport"))}))}},
        "/v1/namespaces/{ns}/pools/{name}/cost": {"get": {"summary": "Cost report of one pool, with replayed recommendations on request",
            "parameters": [ns.clone(), name.clone(), window.clone(), recommend],
            "responses": with(json!({"200": ok("The report", r("CostReport"))}))}},
        "/v1/namespaces/{ns}/pools/{name}/usage": {"get": {"summary": "The pool's usage samples (load, demand, ready, desired, forecast) — the dashboard's chart",
            "parameters": [ns.clone(), name.clone(), window],
            "responses": with(json!({"200": ok("The series", r("UsageSeries"))}))}},
        "/v1/namespaces/{ns}/pools/{name}/advice": {
            "get": {"summary": "The advisor's answers for the pool, newest first", "parameters": [ns.clone(), name.clone()],
                "responses": with(json!({"200": ok("Answers", json!({"type": "array", "items": r("Advice")}))}))},
            "post": {"summary": "Ask the advisor about the pool (answered later by its own task; nothing is applied)",
                "parameters": [ns, name],
                "responses": with(json!({"202": ok("Queued", r("Advice")),
                    "409": err("The advisor is disabled"), "503": err("The advisor's queue is full")}))}},
        "/v1/advisor": {"get": {"summary": "The advisor's state and token use today",
            "responses": {"200": ok("Status", r("AdvisorStatus")), "401": err("Missing or unknown bearer token")}}},
    })
}
