//! Cloud Eye handlers: metric data query, batch query, custom metric reporting.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State as Ext};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::metrics::{MetricStore, Sample, aggregate};
use crate::{Emulator, json as respond};

type ApiResult = Result<Response, ApiError>;

const PERIODS: &[u32] = &[1, 60, 300, 1200, 3600, 14400, 86400];
const FILTERS: &[&str] = &["average", "max", "min", "sum", "variance"];

fn bad(m: impl Into<String>) -> ApiError {
    ApiError::ces_invalid(m)
}

/// The time window and aggregation of a query.
struct Window<'a> {
    from: i64,
    to: i64,
    period: u32,
    filter: &'a str,
}

fn points(
    stores: [&MetricStore; 2],
    ns: &str,
    metric: &str,
    dims: &[(String, String)],
    w: &Window<'_>,
) -> (Vec<Value>, String) {
    let Window {
        from,
        to,
        period,
        filter,
    } = *w;
    for store in stores {
        if let Some(s) = store.get(ns, metric, dims) {
            let pts = aggregate(&s.points, from, to, period, filter)
                .into_iter()
                .map(|(t, v)| json!({ filter: v, "timestamp": t, "unit": s.unit }))
                .collect();
            return (pts, s.unit.clone());
        }
    }
    (Vec::new(), String::new())
}

fn check_common(period: u32, filter: &str, from: i64, to: i64) -> Result<(), ApiError> {
    if !PERIODS.contains(&period) {
        return Err(bad(format!(
            "period {period} is invalid: one of 1, 60, 300, 1200, 3600, 14400, 86400"
        )));
    }
    if !FILTERS.contains(&filter) {
        return Err(bad(format!(
            "filter {filter:?} is invalid: average, max, min, sum or variance"
        )));
    }
    if from >= to {
        return Err(bad(format!("from ({from}) must be smaller than to ({to})")));
    }
    Ok(())
}

/// `GET /V1.0/{project_id}/metric-data`.
pub async fn query(Ext(emu): Ext<Arc<Emulator>>, RawQuery(q): RawQuery) -> ApiResult {
    let pairs = q
        .as_deref()
        .map(flexus_cloud::signer::parse_raw_query)
        .unwrap_or_default();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let need = |k: &str| {
        get(k)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| bad(format!("query parameter {k} is required")))
    };
    let namespace = need("namespace")?;
    let metric = need("metric_name")?;
    let num = |k: &str| -> Result<i64, ApiError> {
        let v = need(k)?;
        v.parse()
            .map_err(|_| bad(format!("query parameter {k}={v:?} is not an integer")))
    };
    let from = num("from")?;
    let to = num("to")?;
    let period = u32::try_from(num("period")?).map_err(|_| bad("period is out of range"))?;
    let filter = need("filter")?;
    check_common(period, &filter, from, to)?;
    let mut dims = Vec::new();
    for i in 0..4 {
        if let Some(d) = get(&format!("dim.{i}")) {
            let (k, v) = d
                .split_once(',')
                .filter(|(k, v)| !k.is_empty() && !v.is_empty())
                .ok_or_else(|| bad(format!("dim.{i}={d:?} must be name,value")))?;
            dims.push((k.to_string(), v.to_string()));
        } else if i == 0 {
            return Err(bad("query parameter dim.0 is required"));
        }
    }
    let (datapoints, _) = emu.with(|inner, _| {
        points(
            [&inner.state.driver_metrics, &inner.state.custom_metrics],
            &namespace,
            &metric,
            &dims,
            &Window {
                from,
                to,
                period,
                filter: &filter,
            },
        )
    });
    Ok(respond(
        StatusCode::OK,
        json!({"datapoints": datapoints, "metric_name": metric}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Dim {
    name: String,
    value: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchMetric {
    namespace: String,
    metric_name: String,
    dimensions: Vec<Dim>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    metrics: Vec<BatchMetric>,
    from: i64,
    to: i64,
    period: String,
    filter: String,
}

/// `POST /V1.0/{project_id}/batch-query-metric-data`.
pub async fn batch(Ext(emu): Ext<Arc<Emulator>>, body: Bytes) -> ApiResult {
    if body.len() > 512 * 1024 {
        return Err(bad("request body must be at most 512 KB"));
    }
    let req: BatchBody =
        serde_json::from_slice(&body).map_err(|e| bad(format!("invalid request body: {e}")))?;
    if req.metrics.is_empty() || req.metrics.len() > 500 {
        return Err(bad(format!(
            "metrics must hold 1-500 entries, got {}",
            req.metrics.len()
        )));
    }
    let period: u32 = req
        .period
        .parse()
        .map_err(|_| bad(format!("period {:?} is not a number", req.period)))?;
    check_common(period, &req.filter, req.from, req.to)?;
    for m in &req.metrics {
        if m.dimensions.is_empty() || m.dimensions.len() > 4 {
            return Err(bad(format!(
                "metric {} needs 1-4 dimensions",
                m.metric_name
            )));
        }
    }
    let out = emu.with(|inner, _| {
        req.metrics
            .iter()
            .map(|m| {
                let dims: Vec<(String, String)> = m.dimensions.iter().map(|d| (d.name.clone(), d.value.clone())).collect();
                let (pts, unit) = points(
                    [&inner.state.driver_metrics, &inner.state.custom_metrics],
                    &m.namespace,
                    &m.metric_name,
                    &dims,
                    &Window { from: req.from, to: req.to, period, filter: &req.filter },
                );
                let pts: Vec<Value> = pts
                    .into_iter()
                    .map(|mut p| {
                        if let Some(o) = p.as_object_mut() {
                            o.remove("unit");
                        }
                        p
                    })
                    .collect();
                json!({
                    "namespace": m.namespace,
                    "metric_name": m.metric_name,
                    "dimensions": m.dimensions.iter().map(|d| json!({"name": d.name, "value": d.value})).collect::<Vec<_>>(),
                    "datapoints": pts,
                    "unit": unit,
                })
            })
            .collect::<Vec<_>>()
    });
    Ok(respond(StatusCode::OK, json!({"metrics": out})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomItem {
    metric: BatchMetric,
    ttl: i64,
    collect_time: i64,
    value: f64,
    unit: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

fn namespace_ok(ns: &str) -> bool {
    let Some((a, b)) = ns.split_once('.') else {
        return false;
    };
    let part = |p: &str| {
        p.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    (3..=32).contains(&ns.len()) && part(a) && part(b)
}

/// `POST /V1.0/{project_id}/metric-data` (201, empty body).
pub async fn put(Ext(emu): Ext<Arc<Emulator>>, body: Bytes) -> ApiResult {
    if body.len() > 512 * 1024 {
        return Err(bad("request body must be at most 512 KB"));
    }
    let items: Vec<CustomItem> =
        serde_json::from_slice(&body).map_err(|e| bad(format!("invalid request body: {e}")))?;
    if items.is_empty() || items.len() > 10_000 {
        return Err(bad(format!(
            "1-10000 metric values per request, got {}",
            items.len()
        )));
    }
    let now_ms = emu.now().timestamp_millis();
    for (i, it) in items.iter().enumerate() {
        let ns = &it.metric.namespace;
        let upper = ns.to_ascii_uppercase();
        if !namespace_ok(ns)
            || upper.starts_with("SYS")
            || upper.starts_with("AGT")
            || upper.starts_with("SRE")
        {
            return Err(bad(format!(
                "[{i}].metric.namespace {ns:?} is invalid (service.item, not SYS/AGT/SRE)"
            )));
        }
        let name = &it.metric.metric_name;
        if name.is_empty()
            || name.len() > 96
            || !name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        {
            return Err(bad(format!("[{i}].metric.metric_name {name:?} is invalid")));
        }
        if it.metric.dimensions.is_empty() || it.metric.dimensions.len() > 4 {
            return Err(bad(format!(
                "[{i}].metric.dimensions must hold 1-4 entries"
            )));
        }
        if it
            .metric
            .dimensions
            .iter()
            .any(|d| d.value.is_empty() || d.value.len() > 256 || d.name.is_empty())
        {
            return Err(bad(format!(
                "[{i}].metric.dimensions: names and values must be 1-256 characters"
            )));
        }
        if !(1..=604_800).contains(&it.ttl) {
            return Err(bad(format!("[{i}].ttl must be 1-604800, got {}", it.ttl)));
        }
        let lo = now_ms - 3 * 86_400_000 + 10_000;
        let hi = now_ms + 600_000 - 10_000;
        if it.collect_time < lo || it.collect_time > hi {
            return Err(bad(format!(
                "[{i}].collect_time {} is outside [now - 3 days, now + 10 minutes]",
                it.collect_time
            )));
        }
        if let Some(k) = &it.kind
            && k != "int"
            && k != "float"
        {
            return Err(bad(format!(
                "[{i}].type must be \"int\" or \"float\", got {k:?}"
            )));
        }
        if !it.value.is_finite() {
            return Err(bad(format!("[{i}].value must be a finite number")));
        }
    }
    emu.with(|inner, _| {
        for it in &items {
            let dims: Vec<(String, String)> = it
                .metric
                .dimensions
                .iter()
                .map(|d| (d.name.clone(), d.value.clone()))
                .collect();
            inner.state.custom_metrics.push(
                &it.metric.namespace,
                &it.metric.metric_name,
                &dims,
                it.unit.as_deref().unwrap_or(""),
                Sample {
                    ts_ms: it.collect_time,
                    value: it.value,
                    expires_ms: it.collect_time + it.ttl * 1000,
                },
            );
        }
    });
    emu.mark_dirty();
    Ok(StatusCode::CREATED.into_response())
}
