//! `flexus-emulator` — a local stand-in for the Huawei Cloud APIs the autoscaler uses.
//!
//! It serves the ECS (create/list/get/delete servers, jobs, tags, flavors) and Cloud Eye
//! (metric data, batch query, custom metrics) paths with the real bodies, status codes,
//! error bodies and `SDK-HMAC-SHA256` signature checks; runs asynchronous jobs against a
//! controllable clock; enforces quotas, sold-out flavors and `X-Client-Token`
//! idempotency; reclaims spot servers with a notice; injects faults; bills per second;
//! and drives per-pool workloads through `flexus_sim::capacity` so that metrics react
//! to scaling. Control endpoints live under `/_emulator/`.
//!
//! It must not be a normal dependency of the agent or the provider (tests and the demo
//! start it in-process as a dev-dependency or as the `flexus-emulator` binary), and it
//! never writes secrets to logs or to its state file.
//!
//! Modules:
//! - [`config`]: [`EmulatorConfig`] and validation.
//! - [`clock`]: the controllable clock.
//! - [`state`]: persisted world state and [`state::State::advance`].
//! - [`auth`]: signature verification.
//! - [`ecs`], [`ces`], [`control`]: HTTP handlers.
//! - [`deepseek`]: the DeepSeek-compatible chat-completions stand-in (bearer keys, no
//!   signature) and its `/_emulator/deepseek` script.
//! - [`workload`]: the workload driver; [`metrics`]: series storage and aggregation.
//! - [`flavors`]: the catalogue (from `flexus-sim`).
//! - [`error`]: [`EmulatorError`] and API error bodies.

pub mod auth;
pub mod ces;
pub mod clock;
pub mod config;
pub mod control;
pub mod deepseek;
pub mod ecs;
pub mod error;
pub mod flavors;
pub mod metrics;
pub mod state;
pub mod workload;

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State as Ext};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use rand::Rng;
use rand::SeedableRng;
use rand::rngs::StdRng;

pub use config::{AcceptedKey, DeepSeekKey, EmulatorConfig, Quota};
pub use error::{ApiError, EmulatorError};

use clock::Clock;
use state::State;

/// Mutable world behind one lock.
#[derive(Debug)]
pub struct Inner {
    /// Persisted state.
    pub state: State,
    /// Clock.
    pub clock: Clock,
    /// Random source (faults, spot hazard).
    pub rng: StdRng,
}

/// The emulator: configuration plus state. Shared as `Arc<Emulator>`.
#[derive(Debug)]
pub struct Emulator {
    config: EmulatorConfig,
    inner: Mutex<Inner>,
    dirty: AtomicBool,
    persist_lock: tokio::sync::Mutex<()>,
    throttle: Mutex<HashMap<&'static str, (f64, std::time::Instant)>>,
    calls: Mutex<std::collections::BTreeMap<&'static str, u64>>,
    deepseek: deepseek::DeepSeek,
}

/// Largest request body accepted (AK/SK requests are limited to 12 MB).
pub const MAX_BODY_BYTES: usize = 12 * 1024 * 1024;

impl Emulator {
    /// Validates the configuration and loads the state file if it exists.
    pub fn new(config: EmulatorConfig) -> Result<Arc<Self>, EmulatorError> {
        config.validate()?;
        let state = match &config.state_path {
            Some(p) if p.exists() => load_state(p)?,
            _ => State::new(Utc::now(), &config),
        };
        let clock = Clock::new(state.now, state.time_scale);
        let rng = StdRng::seed_from_u64(config.seed);
        Ok(Arc::new(Self {
            inner: Mutex::new(Inner { state, clock, rng }),
            dirty: AtomicBool::new(false),
            persist_lock: tokio::sync::Mutex::new(()),
            throttle: Mutex::new(HashMap::new()),
            calls: Mutex::new(std::collections::BTreeMap::new()),
            deepseek: deepseek::DeepSeek::new(
                config.deepseek_keys.iter().map(|k| k.0.clone()).collect(),
                config.deepseek_balance_tokens,
            ),
            config,
        }))
    }

    /// The configuration.
    pub fn config(&self) -> &EmulatorConfig {
        &self.config
    }

    /// The DeepSeek-compatible stand-in.
    pub fn deepseek(&self) -> &deepseek::DeepSeek {
        &self.deepseek
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Advances the world to the clock's now and runs `f` on it.
    pub fn with<R>(&self, f: impl FnOnce(&mut Inner, &EmulatorConfig) -> R) -> R {
        let mut g = self.lock();
        let inner = &mut *g;
        let now = inner.clock.now();
        if inner.state.advance(now, &self.config, &mut inner.rng) {
            self.dirty.store(true, Ordering::Relaxed);
        }
        f(inner, &self.config)
    }

    /// Marks the state as changed (persisted by the next tick or [`Emulator::persist`]).
    pub fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// Current emulated time.
    pub fn now(&self) -> DateTime<Utc> {
        self.lock().clock.now()
    }

    /// Writes the state file atomically (temp file + rename), if one is configured.
    pub async fn persist(&self) -> Result<(), EmulatorError> {
        let Some(path) = self.config.state_path.clone() else {
            return Ok(());
        };
        let _guard = self.persist_lock.lock().await;
        self.dirty.store(false, Ordering::Relaxed);
        let bytes = {
            let g = self.lock();
            serde_json::to_vec_pretty(&g.state).map_err(|e| EmulatorError::StateFormat {
                path: path.clone(),
                reason: e.to_string(),
            })?
        };
        tokio::task::spawn_blocking(move || write_atomic(&path, &bytes))
            .await
            .map_err(|e| EmulatorError::Serve(std::io::Error::other(e.to_string())))?
    }

    /// Persists only if something changed since the last write.
    pub async fn persist_if_dirty(&self) -> Result<(), EmulatorError> {
        if self.dirty.load(Ordering::Relaxed) {
            self.persist().await
        } else {
            Ok(())
        }
    }

    /// API calls received per operation since start (including rejected ones).
    pub fn call_counts(&self) -> std::collections::BTreeMap<&'static str, u64> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn count_call(&self, op: &'static str) {
        *self
            .calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(op)
            .or_default() += 1;
    }

    fn throttle_ok(&self, op: &'static str) -> bool {
        let rate = self.config.throttle_per_second;
        if rate <= 0.0 {
            return true;
        }
        let mut t = self.throttle.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::Instant::now();
        let e = t.entry(op).or_insert((rate, now));
        e.0 = (e.0 + now.duration_since(e.1).as_secs_f64() * rate).min(rate.max(1.0));
        e.1 = now;
        if e.0 >= 1.0 {
            e.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

fn load_state(path: &Path) -> Result<State, EmulatorError> {
    let bytes = std::fs::read(path).map_err(|source| EmulatorError::StateIo {
        path: path.to_owned(),
        source,
    })?;
    let state: State = serde_json::from_slice(&bytes).map_err(|e| EmulatorError::StateFormat {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    if state.version != state::STATE_VERSION {
        return Err(EmulatorError::StateFormat {
            path: path.to_owned(),
            reason: format!(
                "version {} is not supported (expected {})",
                state.version,
                state::STATE_VERSION
            ),
        });
    }
    Ok(state)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), EmulatorError> {
    use std::io::Write;
    let io = |source| EmulatorError::StateIo {
        path: path.to_owned(),
        source,
    };
    let mut tmp = PathBuf::from(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".into());
    tmp.set_file_name(format!(".{name}.tmp"));
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// The operation name of an API route (used by faults, throttling and logs).
pub fn operation(method: &Method, matched: &str) -> &'static str {
    match (method.as_str(), matched) {
        ("POST", "/v1/{project_id}/cloudservers") => "create_servers",
        ("GET", "/v1/{project_id}/cloudservers/detail") => "list_servers",
        ("POST", "/v1/{project_id}/cloudservers/delete") => "delete_servers",
        ("GET", "/v1/{project_id}/cloudservers/flavors") => "list_flavors",
        ("GET", "/v1/{project_id}/cloudservers/limits") => "get_quota",
        ("GET", "/v2/cloudimages") => "get_image",
        ("GET", "/v1/{project_id}/cloudservers/{server_id}") => "get_server",
        ("GET", "/v1/{project_id}/cloudservers/{server_id}/tags") => "list_tags",
        ("POST", "/v1/{project_id}/cloudservers/{server_id}/tags/action") => "tags_action",
        ("GET", "/v1/{project_id}/jobs/{job_id}") => "get_job",
        ("GET", "/V1.0/{project_id}/metric-data") => "query_metric",
        ("POST", "/V1.0/{project_id}/metric-data") => "put_metrics",
        ("POST", "/V1.0/{project_id}/batch-query-metric-data") => "batch_query_metrics",
        _ => "unknown",
    }
}

/// Builds the HTTP surface: the API routes behind the signature gate, and `/_emulator/`.
pub fn router(emu: Arc<Emulator>) -> Router {
    let api = Router::new()
        .route("/v1/{project_id}/cloudservers", post(ecs::create))
        .route("/v1/{project_id}/cloudservers/detail", get(ecs::list))
        .route("/v1/{project_id}/cloudservers/delete", post(ecs::delete))
        .route("/v1/{project_id}/cloudservers/flavors", get(ecs::flavors))
        .route("/v1/{project_id}/cloudservers/limits", get(ecs::limits))
        .route("/v2/cloudimages", get(ecs::images))
        .route("/v1/{project_id}/cloudservers/{server_id}", get(ecs::show))
        .route(
            "/v1/{project_id}/cloudservers/{server_id}/tags",
            get(ecs::list_tags),
        )
        .route(
            "/v1/{project_id}/cloudservers/{server_id}/tags/action",
            post(ecs::tags_action),
        )
        .route("/v1/{project_id}/jobs/{job_id}", get(ecs::job))
        .route(
            "/V1.0/{project_id}/metric-data",
            get(ces::query).post(ces::put),
        )
        .route(
            "/V1.0/{project_id}/batch-query-metric-data",
            post(ces::batch),
        )
        .route_layer(middleware::from_fn_with_state(emu.clone(), gate));
    api.merge(control::routes())
        .merge(deepseek::routes())
        .fallback(not_found)
        .layer(middleware::from_fn(request_id))
        .with_state(emu)
}

async fn not_found(req: Request) -> Response {
    let rid = req
        .extensions()
        .get::<error::RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    ApiError::gateway(
        StatusCode::NOT_FOUND,
        "APIGW.0101",
        "The API does not exist or has not been published in the environment",
    )
    .response_with_id(&rid)
}

async fn request_id(mut req: Request, next: Next) -> Response {
    let rid = uuid::Uuid::new_v4().simple().to_string();
    req.extensions_mut().insert(error::RequestId(rid.clone()));
    let mut resp = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&rid) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

/// Signature check, project check, throttling and fault injection for API routes.
async fn gate(Ext(emu): Ext<Arc<Emulator>>, req: Request, next: Next) -> Response {
    let rid = req
        .extensions()
        .get::<error::RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let matched = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    let op = operation(req.method(), &matched);
    let is_ces = matched.starts_with("/V1.0/");
    emu.count_call(op);
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::gateway(
                StatusCode::PAYLOAD_TOO_LARGE,
                "APIGW.0201",
                "Request entity too large",
            )
            .response_with_id(&rid);
        }
    };
    let cfg = emu.config();
    if let Err(e) = auth::verify(
        &cfg.keys,
        parts.method.as_str(),
        parts.uri.path(),
        parts.uri.query(),
        &parts.headers,
        &bytes,
        Utc::now(),
        cfg.max_clock_skew_s,
    ) {
        tracing::debug!(operation = op, code = %e.code, "request rejected by the signature check");
        return e.response_with_id(&rid);
    }
    // IMS paths carry no project id: the project is the signed X-Project-Id header.
    let (project, where_) = if matched.starts_with("/v2/") {
        let h = parts.headers.get("x-project-id");
        (
            h.and_then(|v| v.to_str().ok()).unwrap_or_default(),
            "X-Project-Id header",
        )
    } else {
        (
            parts.uri.path().split('/').nth(2).unwrap_or_default(),
            "URL",
        )
    };
    if project != cfg.project_id {
        let msg =
            format!("project id {project} in the {where_} does not match the credentials' project");
        let e = if is_ces {
            ApiError::ces(StatusCode::FORBIDDEN, "ces.0003", msg)
        } else {
            ApiError::ecs(StatusCode::BAD_REQUEST, "Ecs.0023", msg)
        };
        return e.response_with_id(&rid);
    }
    if !emu.throttle_ok(op) {
        return ApiError::throttled(cfg.throttle_per_second).response_with_id(&rid);
    }
    // Faults.
    let (latency_ms, injected) = emu.with(|inner, _| {
        let mut latency = 0u64;
        let mut err = None;
        let mut changed = false;
        for rule in inner
            .state
            .faults
            .iter_mut()
            .filter(|r| r.operation == op || r.operation == "*")
        {
            latency += rule.latency_ms;
            if err.is_none() && rule.throttle_burst > 0 {
                rule.throttle_burst -= 1;
                changed = true;
                err = Some(ApiError::throttled(1.0));
            }
            if err.is_none() && rule.error_rate > 0.0 && inner.rng.random::<f64>() < rule.error_rate
            {
                let status =
                    StatusCode::from_u16(rule.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let msg = format!("injected fault for {op}");
                err = Some(if rule.code.starts_with("APIGW") {
                    ApiError::gateway(status, &rule.code, msg)
                } else if is_ces {
                    ApiError::ces(status, &rule.code, msg)
                } else {
                    ApiError::ecs(status, &rule.code, msg)
                });
            }
        }
        if changed {
            emu.mark_dirty();
        }
        (latency, err)
    });
    if latency_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(latency_ms)).await;
    }
    if let Some(e) = injected {
        tracing::debug!(operation = op, code = %e.code, "injected fault");
        return e.response_with_id(&rid);
    }
    let req = Request::from_parts(parts, Body::from(bytes));
    let resp = next.run(req).await;
    tracing::debug!(operation = op, status = resp.status().as_u16(), request_id = %rid, "api call");
    resp
}

/// Serves `router` on `listener` until `shutdown` completes; ticks the clock every
/// 200 ms (real) so boots, reclaims and the workload progress without requests, and
/// persists the state after changes and on shutdown.
pub async fn serve(
    listener: tokio::net::TcpListener,
    emu: Arc<Emulator>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), EmulatorError> {
    let ticker_emu = emu.clone();
    let ticker = tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_millis(200));
        loop {
            every.tick().await;
            ticker_emu.with(|_, _| ());
            if let Err(e) = ticker_emu.persist_if_dirty().await {
                tracing::warn!(error = %e, "state could not be saved");
            }
        }
    });
    let app = router(emu.clone());
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    ticker.abort();
    emu.with(|_, _| ());
    emu.persist().await?;
    result.map_err(EmulatorError::Serve)
}

/// Builds an emulator from `config` and serves it (see [`serve`]).
pub async fn run(
    listener: tokio::net::TcpListener,
    config: EmulatorConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), EmulatorError> {
    let emu = Emulator::new(config)?;
    serve(listener, emu, shutdown).await
}

/// JSON helper for handlers.
pub(crate) fn json(status: StatusCode, v: serde_json::Value) -> Response {
    (status, axum::Json(v)).into_response()
}
