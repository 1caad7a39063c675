//! Every error answer of the HTTP surface is the documented JSON error body
//! (`docs/reference/agent-api.md` § Errors) — including the ones axum writes itself
//! before a handler runs: a body over the limit (413), a method the route does not
//! serve (405), a path or query string that does not decode (400).
//!
//! The handlers answer with [`ApiError`] already; [`json_errors`] is the layer that
//! rewrites any other error answer (any 4xx/5xx that is not `application/json`) into
//! the same body, keeping its status and headers (`Allow` on a 405).

use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::server::{ApiError, MAX_BODY_BYTES};

/// The longest text of an axum rejection kept in a message.
const MAX_REJECTION_TEXT: usize = 512;

/// Middleware: an error answer that is not JSON becomes the documented JSON error.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let allow = parts
        .headers
        .get(header::ALLOW)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut out = rejection(status, &method, &path, &text, &allow).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name, value.clone());
        }
    }
    out
}

/// The error for a non-JSON error answer of `status`, from axum's `text`.
fn rejection(status: StatusCode, method: &Method, path: &str, text: &str, allow: &str) -> ApiError {
    let detail = lower_first(&text.chars().take(MAX_REJECTION_TEXT).collect::<String>());
    match status {
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            status,
            "method_not_allowed",
            format!("method {method} is not allowed on {path} (allowed: {allow})"),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            status,
            "payload_too_large",
            format!(
                "the request body of {method} {path} is larger than the limit of {MAX_BODY_BYTES} bytes"
            ),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
            status,
            "unsupported_media_type",
            format!("{method} {path}: {detail}"),
        ),
        StatusCode::NOT_FOUND => no_such_endpoint(method, path),
        s if s == StatusCode::BAD_REQUEST || s == StatusCode::UNPROCESSABLE_ENTITY => {
            let mut e = ApiError::field(&rejected_part(&detail), detail);
            e.set_status(status);
            e
        }
        s if s.is_server_error() => {
            tracing::error!(status = s.as_u16(), %method, path, detail, "error answer");
            let code = if s == StatusCode::SERVICE_UNAVAILABLE {
                "unavailable"
            } else {
                "internal"
            };
            ApiError::new(s, code, format!("{method} {path} failed ({s})"))
        }
        s => ApiError::new(s, code_of(s), format!("{method} {path}: {detail}")),
    }
}

/// The part of the request an axum path or query rejection is about: the path
/// parameter it names (`name`), else `path` or `query`.
fn rejected_part(detail: &str) -> String {
    let lower = detail.to_lowercase();
    if lower.contains("query string") {
        return "query".to_owned();
    }
    if lower.starts_with("invalid url") || lower.contains("path") {
        // "Invalid URL: Invalid UTF-8 in `name`": the parameter is between backticks.
        return detail
            .split_once('`')
            .and_then(|(_, rest)| rest.split_once('`'))
            .map_or("path", |(param, _)| param)
            .to_owned();
    }
    "(request)".to_owned()
}

/// The 404 of a route the API does not have.
pub(crate) fn no_such_endpoint(method: &Method, path: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no such endpoint: {method} {path}"),
    )
}

/// A stable code for a status no handler answers with: its reason phrase in snake case.
fn code_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::LENGTH_REQUIRED => "length_required",
        StatusCode::URI_TOO_LONG => "uri_too_long",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "headers_too_large",
        StatusCode::TOO_MANY_REQUESTS => "too_many_requests",
        _ => "invalid_request",
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => "the request was refused".to_owned(),
    }
}
