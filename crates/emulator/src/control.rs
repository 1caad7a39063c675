//! The control API under `/_emulator/` (unauthenticated; bind to loopback).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State as Ext};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::state::{FaultRule, Phase, ms};
use crate::workload::{self, Shape, WorkloadSpec};
use crate::{Emulator, Quota, flavors, json as respond};

type CtlResult = Result<Response, ApiError>;

/// Control routes.
pub fn routes() -> Router<Arc<Emulator>> {
    Router::new()
        .route("/_emulator/health", get(health))
        .route("/_emulator/stats", get(stats))
        .route("/_emulator/clock", get(clock_get).post(clock_set))
        .route(
            "/_emulator/faults",
            get(faults_get).post(faults_add).delete(faults_clear),
        )
        .route("/_emulator/workload", get(workload_get).post(workload_set))
        .route(
            "/_emulator/workload/{pool}",
            axum::routing::delete(workload_delete),
        )
        .route("/_emulator/pools/{pool}/load", get(pool_load))
        .route("/_emulator/billing", get(billing))
        .route("/_emulator/spot/reclaim", post(reclaim))
        .route("/_emulator/flavors", get(flavors_get))
        .route("/_emulator/flavors/{name}", post(flavor_set))
        .route("/_emulator/quota", get(quota_get).post(quota_set))
        .route(
            "/_emulator/images",
            get(images_get).post(images_set).delete(images_open),
        )
}

fn bad(m: impl Into<String>) -> ApiError {
    ApiError::control(StatusCode::BAD_REQUEST, m)
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| bad(format!("invalid request body: {e}")))
}

async fn saved(emu: &Emulator) {
    emu.mark_dirty();
    if let Err(e) = emu.persist().await {
        tracing::warn!(error = %e, "state could not be saved");
    }
}

async fn stats(Ext(emu): Ext<Arc<Emulator>>) -> Response {
    respond(StatusCode::OK, json!({"calls": emu.call_counts()}))
}

async fn health() -> Response {
    respond(StatusCode::OK, json!({"status": "ok"}))
}

fn clock_json(emu: &Emulator) -> Value {
    emu.with(|inner, _| {
        let now = inner.clock.now();
        json!({"now": now.to_rfc3339(), "now_ms": now.timestamp_millis(), "time_scale": inner.clock.scale()})
    })
}

async fn clock_get(Ext(emu): Ext<Arc<Emulator>>) -> Response {
    respond(StatusCode::OK, clock_json(&emu))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockReq {
    #[serde(default)]
    advance_seconds: Option<f64>,
    /// Advance to exactly this emulated time (Unix ms); an earlier time is refused.
    #[serde(default)]
    advance_to_ms: Option<i64>,
    #[serde(default)]
    time_scale: Option<f64>,
}

async fn clock_set(Ext(emu): Ext<Arc<Emulator>>, body: Bytes) -> CtlResult {
    let req: ClockReq = parse(&body)?;
    if let Some(a) = req.advance_seconds
        && (!a.is_finite() || a < 0.0)
    {
        return Err(bad(format!("advance_seconds must be >= 0, got {a}")));
    }
    if let Some(s) = req.time_scale
        && (!s.is_finite() || s < 0.0)
    {
        return Err(bad(format!("time_scale must be >= 0, got {s}")));
    }
    if req.advance_seconds.is_some() && req.advance_to_ms.is_some() {
        return Err(bad("advance_seconds and advance_to_ms exclude each other"));
    }
    let to = match req.advance_to_ms {
        Some(ms) => Some(
            chrono::DateTime::from_timestamp_millis(ms)
                .ok_or_else(|| bad(format!("advance_to_ms {ms} is not a valid time")))?,
        ),
        None => None,
    };
    emu.with(|inner, _| {
        let now = inner.clock.now();
        if let Some(to) = to
            && to < now
        {
            return Err(bad(format!(
                "advance_to_ms {} is before the emulated now ({}): time never goes back",
                to.timestamp_millis(),
                now.timestamp_millis()
            )));
        }
        if let Some(s) = req.time_scale {
            inner.clock.set_scale(s);
            inner.state.time_scale = s;
        }
        if let Some(a) = req.advance_seconds {
            inner.clock.advance(a);
        }
        if let Some(to) = to {
            inner.clock.advance_to(to);
        }
        Ok(())
    })?;
    // Apply the jump now (boots, deletes, reclaims, workload samples).
    let body = clock_json(&emu);
    saved(&emu).await;
    Ok(respond(StatusCode::OK, body))
}

async fn faults_get(Ext(emu): Ext<Arc<Emulator>>) -> Response {
    let f = emu.with(|inner, _| inner.state.faults.clone());
    respond(StatusCode::OK, json!({"faults": f}))
}

const OPERATIONS: &[&str] = &[
    "*",
    "create_servers",
    "list_servers",
    "get_server",
    "delete_servers",
    "get_job",
    "list_tags",
    "tags_action",
    "list_flavors",
    "get_quota",
    "get_image",
    "query_metric",
    "batch_query_metrics",
    "put_metrics",
];

async fn faults_add(Ext(emu): Ext<Arc<Emulator>>, body: Bytes) -> CtlResult {
    let rule: FaultRule = parse(&body)?;
    if !OPERATIONS.contains(&rule.operation.as_str()) {
        return Err(bad(format!(
            "operation {:?} is unknown; one of {}",
            rule.operation,
            OPERATIONS.join(", ")
        )));
    }
    if !(0.0..=1.0).contains(&rule.error_rate) {
        return Err(bad(format!(
            "error_rate must be within 0..=1, got {}",
            rule.error_rate
        )));
    }
    if !(400..=599).contains(&rule.status) {
        return Err(bad(format!(
            "status must be an HTTP error status (400-599), got {}",
            rule.status
        )));
    }
    let all = emu.with(|inner, _| {
        inner.state.faults.push(rule);
        inner.state.faults.clone()
    });
    saved(&emu).await;
    Ok(respond(StatusCode::OK, json!({"faults": all})))
}

async fn faults_clear(Ext(emu): Ext<Arc<Emulator>>) -> Response {
    emu.with(|inner, _| inner.state.faults.clear());
    saved(&emu).await;
    respond(StatusCode::OK, json!({"faults": []}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkloadReq {
    pool: String,
    shape: Shape,
}

fn workload_json(spec: &WorkloadSpec, now: chrono::DateTime<chrono::Utc>) -> Value {
    json!({
        "shape": spec.shape,
        "started_at": spec.started_at.to_rfc3339(),
        "current_rps": spec.rate_at(now),
        "trace_steps": spec.trace.as_ref().map(|t| t.rps.len()),
    })
}

async fn workload_get(Ext(emu): Ext<Arc<Emulator>>) -> Response {
    let v = emu.with(|inner, _| {
        let now = inner.clock.now();
        inner
            .state
            .workloads
            .iter()
            .map(|(k, s)| (k.clone(), workload_json(s, now)))
            .collect::<BTreeMap<_, _>>()
    });
    respond(StatusCode::OK, json!({"workloads": v}))
}

async fn workload_set(Ext(emu): Ext<Arc<Emulator>>, body: Bytes) -> CtlResult {
    let req: WorkloadReq = parse(&body)?;
    if req.pool.is_empty() {
        return Err(bad("pool must not be empty"));
    }
    workload::validate(&req.shape).map_err(bad)?;
    let trace = tokio::task::spawn_blocking({
        let shape = req.shape.clone();
        move || workload::load_trace(&shape)
    })
    .await
    .map_err(|e| ApiError::control(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(bad)?;
    let v = emu.with(|inner, _| {
        let now = inner.clock.now();
        let spec = WorkloadSpec {
            shape: req.shape,
            started_at: now,
            trace,
        };
        let v = workload_json(&spec, now);
        inner.state.workloads.insert(req.pool.clone(), spec);
        let rt = inner.state.pools.entry(req.pool.clone()).or_default();
        *rt = workload::PoolRuntime {
            last_sample: Some(now),
            ..Default::default()
        };
        v
    });
    saved(&emu).await;
    Ok(respond(
        StatusCode::OK,
        json!({"pool": req.pool, "workload": v}),
    ))
}

async fn workload_delete(Ext(emu): Ext<Arc<Emulator>>, Path(pool): Path<String>) -> CtlResult {
    let removed = emu.with(|inner, _| {
        inner.state.pools.remove(&pool);
        inner.state.workloads.remove(&pool).is_some()
    });
    if !removed {
        return Err(ApiError::control(
            StatusCode::NOT_FOUND,
            format!("pool {pool:?} has no workload"),
        ));
    }
    saved(&emu).await;
    Ok(respond(
        StatusCode::OK,
        json!({"pool": pool, "removed": true}),
    ))
}

async fn pool_load(Ext(emu): Ext<Arc<Emulator>>, Path(pool): Path<String>) -> CtlResult {
    let v = emu.with(|inner, cfg| {
        let now = inner.clock.now();
        let st = &inner.state;
        let rt = st.pools.get(&pool).cloned().unwrap_or_default();
        let instances: Vec<Value> = st
            .servers
            .values()
            .filter(|s| {
                s.tag(&cfg.pool_tag_key) == Some(pool.as_str()) && s.phase != Phase::Deleted
            })
            .map(|s| {
                let lifecycle = if s.reclaim_at.is_some() {
                    "reclaiming"
                } else if s.delete_at.is_some() {
                    "deleting"
                } else if s.phase == Phase::Build {
                    "booting"
                } else if !s.serving_at(now) {
                    "warming"
                } else {
                    "ready"
                };
                let load = rt.last.instances.get(&s.id);
                json!({
                    "id": s.id, "name": s.name, "flavor": s.flavor, "status": s.status(),
                    "lifecycle": lifecycle, "spot": s.spot,
                    "utilisation": load.map(|l| l.utilisation).unwrap_or(0.0),
                    "cpu_pct": load.map(|l| l.cpu_pct),
                    "mem_pct": load.map(|l| l.mem_pct),
                    "served_rps": load.map(|l| l.served_rps).unwrap_or(0.0),
                    "reclaim_at": s.reclaim_at.map(|t| t.to_rfc3339()),
                })
            })
            .collect();
        json!({
            "pool": pool,
            "now": now.to_rfc3339(),
            "has_workload": st.workloads.contains_key(&pool),
            "current_rps": st.workloads.get(&pool).map(|w| w.rate_at(now)).unwrap_or(0.0),
            "sample": rt.last,
            "instances": instances,
        })
    });
    Ok(respond(StatusCode::OK, v))
}

async fn billing(Ext(emu): Ext<Arc<Emulator>>) -> Response {
    let v = emu.with(|inner, _| {
        let now = inner.clock.now();
        let mut total = 0.0;
        let mut by_pool: BTreeMap<String, f64> = BTreeMap::new();
        let items: Vec<Value> = inner
            .state
            .billing
            .values()
            .map(|b| {
                let c = b.cost(now);
                total += c;
                *by_pool.entry(b.pool.clone().unwrap_or_default()).or_default() += c;
                json!({
                    "server_id": b.server_id, "name": b.name, "flavor": b.flavor, "pool": b.pool,
                    "spot": b.spot, "price_per_hour": b.price_per_hour, "start": b.start.to_rfc3339(),
                    "end": b.end.map(|e| e.to_rfc3339()), "seconds": b.seconds(now), "cost": c,
                    "reclaimed": b.reclaimed,
                })
            })
            .collect();
        json!({"now": now.to_rfc3339(), "total_cost": total, "by_pool": by_pool, "instances": items})
    });
    respond(StatusCode::OK, v)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReclaimReq {
    server_id: String,
    #[serde(default)]
    notice_seconds: Option<f64>,
}

async fn reclaim(Ext(emu): Ext<Arc<Emulator>>, body: Bytes) -> CtlResult {
    let req: ReclaimReq = parse(&body)?;
    let notice = req
        .notice_seconds
        .unwrap_or(emu.config().spot_notice_seconds);
    if !notice.is_finite() || notice < 0.0 {
        return Err(bad(format!("notice_seconds must be >= 0, got {notice}")));
    }
    let at = emu.with(|inner, _| {
        let now = inner.clock.now();
        let st = &mut inner.state;
        match st.servers.get(&req.server_id) {
            None => Err(ApiError::control(
                StatusCode::NOT_FOUND,
                format!("server {} does not exist", req.server_id),
            )),
            Some(s) if !s.spot => Err(bad(format!(
                "server {} is not a spot instance",
                req.server_id
            ))),
            Some(s) if s.phase == Phase::Deleted || s.reclaim_at.is_some() => {
                Err(ApiError::control(
                    StatusCode::CONFLICT,
                    format!("server {} is already reclaimed or deleted", req.server_id),
                ))
            }
            Some(_) => {
                let at = now + ms(notice);
                st.schedule_reclaim(&req.server_id, now, at);
                Ok(at)
            }
        }
    })?;
    saved(&emu).await;
    Ok(respond(
        StatusCode::OK,
        json!({"server_id": req.server_id, "reclaim_at": at.to_rfc3339()}),
    ))
}

async fn flavors_get(Ext(emu): Ext<Arc<Emulator>>) -> Response {
    let v = emu.with(|inner, cfg| {
        flavors::all()
            .iter()
            .map(|f| {
                let o = inner.state.flavors.get(&f.name).cloned().unwrap_or_default();
                json!({
                    "name": f.name, "vcpus": f.vcpus, "memory_gib": f.memory_gib, "gpus": f.gpus,
                    "price_per_hour": f.price_per_hour, "spot_price_per_hour": flavors::spot_price(f),
                    "max_rps": f.max_rps(), "rps_at_slo": f.rps_at_slo(), "boot_seconds": cfg.boot_seconds.unwrap_or(f.boot_s),
                    "warmup_seconds": f.warmup_s, "sold_out": o.sold_out, "spot_available": !o.spot_unavailable,
                    "spot_hazard_per_hour": inner.state.hazard(&f.name, cfg),
                })
            })
            .collect::<Vec<_>>()
    });
    respond(StatusCode::OK, json!({"flavors": v}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FlavorReq {
    #[serde(default)]
    sold_out: Option<bool>,
    #[serde(default)]
    spot_available: Option<bool>,
    #[serde(default)]
    spot_hazard_per_hour: Option<f64>,
}

async fn flavor_set(
    Ext(emu): Ext<Arc<Emulator>>,
    Path(name): Path<String>,
    body: Bytes,
) -> CtlResult {
    let req: FlavorReq = parse(&body)?;
    if flavors::find(&name).is_none() {
        return Err(ApiError::control(
            StatusCode::NOT_FOUND,
            format!("flavor {name:?} is not in the catalogue"),
        ));
    }
    if let Some(h) = req.spot_hazard_per_hour
        && (!h.is_finite() || h < 0.0)
    {
        return Err(bad(format!("spot_hazard_per_hour must be >= 0, got {h}")));
    }
    let o = emu.with(|inner, _| {
        let o = inner.state.flavors.entry(name.clone()).or_default();
        if let Some(s) = req.sold_out {
            o.sold_out = s;
        }
        if let Some(a) = req.spot_available {
            o.spot_unavailable = !a;
        }
        if req.spot_hazard_per_hour.is_some() {
            o.spot_hazard_per_hour = req.spot_hazard_per_hour;
        }
        o.clone()
    });
    saved(&emu).await;
    Ok(respond(
        StatusCode::OK,
        json!({"flavor": name, "override": o}),
    ))
}

async fn quota_get(Ext(emu): Ext<Arc<Emulator>>) -> Response {
    let v = emu.with(|inner, _| {
        let (n, cpu, ram) = inner.state.usage();
        json!({"quota": inner.state.quota, "used": {"instances": n, "vcpus": cpu, "ram_mb": ram}})
    });
    respond(StatusCode::OK, v)
}

async fn quota_set(Ext(emu): Ext<Arc<Emulator>>, body: Bytes) -> CtlResult {
    let q: Quota = parse(&body)?;
    emu.with(|inner, _| inner.state.quota = q);
    saved(&emu).await;
    Ok(respond(StatusCode::OK, json!({"quota": q})))
}

async fn images_get(Ext(emu): Ext<Arc<Emulator>>) -> Response {
    let images = emu.with(|inner, _| inner.state.images.clone());
    respond(StatusCode::OK, json!({"images": images}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImagesReq {
    images: Vec<crate::state::ImageRec>,
}

/// Sets the project's image catalogue: from now on only these images exist.
async fn images_set(Ext(emu): Ext<Arc<Emulator>>, body: Bytes) -> CtlResult {
    let req: ImagesReq = parse(&body)?;
    if let Some(i) = req.images.iter().find(|i| i.id.is_empty()) {
        return Err(bad(format!("image ids must not be empty ({i:?})")));
    }
    emu.with(|inner, _| inner.state.images = Some(req.images.clone()));
    saved(&emu).await;
    Ok(respond(StatusCode::OK, json!({"images": req.images})))
}

/// Back to the default: every image id exists.
async fn images_open(Ext(emu): Ext<Arc<Emulator>>) -> Response {
    emu.with(|inner, _| inner.state.images = None);
    saved(&emu).await;
    respond(StatusCode::OK, json!({"images": null}))
}
