//! The agent's `/v1` request bodies through `router(state)` (tower `oneshot`, no
//! socket). The first input byte picks the route, the second the `Content-Type`, the
//! rest is the body. Properties: never a panic, never a 5xx, and every error answer is
//! the documented JSON error body (`{"error": {"code", "message", ...}}`).
//!
//! The cloud behind the API's flavor and image checks is a closed port: those checks are
//! skipped, as while the real cloud cannot answer. `POST .../tune` is left out: a valid body starts a tuning job (minutes of CPU).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use flexus_agent::clock::ManualClock;
use flexus_agent::config::{AuthConfig, Secret};
use flexus_agent::runtime::Inbox;
use flexus_agent::server::{AppState, router};
use flexus_agent::store::{SqliteStore, Store};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::shape;
use crate::Target;

const ADMIN: &str = "fuzz-admin-token-0123456789";
const TEAM_A: &str = "fuzz-team-a-token-0123456789";

/// Method, path and token of each route a body goes to.
pub const ROUTES: &[(&str, &str, &str)] = &[
    ("PUT", "/v1/namespaces/team-a/pools/web", TEAM_A),
    ("PUT", "/v1/namespaces/team-a/policies/web-policy", TEAM_A),
    ("POST", "/v1/namespaces/team-a/pools/web/metrics", TEAM_A),
    ("PUT", "/v1/namespaces/team-a/pools/api", ADMIN),
    ("POST", "/v1/namespaces/team-a/pools/web/reconcile", TEAM_A),
    ("PUT", "/v1/namespaces/team-b/pools/web", TEAM_A),
    ("PUT", "/v1/namespaces/team-a/pools/Bad_Name", TEAM_A),
];

/// `Content-Type` of each choice; `None` sends none.
pub const CONTENT_TYPES: &[Option<&str>] = &[
    Some("application/json"),
    Some("application/json; charset=utf-8"),
    Some("text/plain"),
    None,
];

/// Inputs after which the state starts afresh (bounds the store and the runtime's
/// unread notifications).
const RESET_EVERY: u64 = 50_000;

const DICTIONARY: &[&[u8]] = &[
    b"{\"spec\":",
    b"\"flavor\":",
    b"\"image\":",
    b"\"vpc_id\":",
    b"\"subnet_ids\":",
    b"\"min_size\":",
    b"\"max_size\":",
    b"\"tags\":",
    b"\"spot\":",
    b"\"spot_percentage\":",
    b"\"policy\":",
    b"\"pool\":",
    b"\"strategy\":",
    b"\"bounds\":",
    b"\"metrics\":",
    b"\"target\":",
    b"\"metric\":",
    b"\"value\":",
    b"\"at\":",
    b"\"2026-05-28T10:00:00Z\"",
    b"\"evaluation_interval\":",
    b"\"5s\"",
    b"null",
    b"true",
    b"[]",
    b"{}",
    b"1e309",
    b"-1",
    b"18446744073709551616",
    b"\\u0000",
    b"\\ud800",
    b"\xff",
    b"\xc3",
];

#[derive(Debug)]
pub struct AgentTarget {
    rt: tokio::runtime::Runtime,
    state: AppState,
    _inbox: Inbox,
    runs: u64,
}

impl Default for AgentTarget {
    fn default() -> Self {
        Self::new()
    }
}

impl AgentTarget {
    pub fn new() -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let (state, inbox) = rt.block_on(fresh_state());
        Self {
            rt,
            state,
            _inbox: inbox,
            runs: 0,
        }
    }

    /// Sends one request; its status, `Content-Type` and body.
    pub fn send(
        &self,
        route: usize,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, Option<String>, Vec<u8>) {
        let (method, path, token) = ROUTES[route % ROUTES.len()];
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"));
        if let Some(ct) = content_type {
            b = b.header("content-type", ct);
        }
        let req = b.body(Body::from(body)).expect("a request");
        let state = self.state.clone();
        self.rt.block_on(async move {
            let resp = router(state).oneshot(req).await.expect("infallible");
            let status = resp.status();
            let ct = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let bytes = resp.into_body().collect().await.map(|b| b.to_bytes());
            (status, ct, bytes.map(|b| b.to_vec()).unwrap_or_default())
        })
    }
}

async fn fresh_state() -> (AppState, Inbox) {
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::in_memory()
            .await
            .expect("an in-memory SQLite store"),
    );
    let mut namespaces = BTreeMap::new();
    namespaces.insert("team-a".to_owned(), Secret::new(TEAM_A));
    let auth = AuthConfig {
        admin: Some(Secret::new(ADMIN)),
        namespaces,
    };
    AppState::detached(
        store,
        ManualClock::new(1_780_000_000_000),
        auth,
        closed_cloud(),
    )
}

/// A cloud at a closed loopback port, tried once: the API's flavor and image checks are
/// skipped (as while the real cloud cannot answer) and cost no wait.
fn closed_cloud() -> Arc<dyn flexus_cloud::Cloud> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_or(9, |a| a.port());
    let mut cc = flexus_cloud::ClientConfig::single_endpoint(
        &format!("http://127.0.0.1:{port}"),
        "cn-north-4",
        "0123456789abcdef0123456789abcdef",
    )
    .expect("a valid endpoint");
    cc.retry.max_attempts = 1;
    cc.rate_limits = flexus_cloud::RateLimits::unlimited();
    Arc::new(
        flexus_cloud::HuaweiClient::new(cc, flexus_cloud::Credentials::new("FUZZ", "fuzz"))
            .expect("a client"),
    )
}

impl Target for AgentTarget {
    fn name(&self) -> &'static str {
        "agent"
    }

    fn dictionary(&self) -> &'static [&'static [u8]] {
        DICTIONARY
    }

    fn run(&mut self, input: &[u8]) -> Result<String, String> {
        self.runs += 1;
        if self.runs.is_multiple_of(RESET_EVERY) {
            let (state, inbox) = self.rt.block_on(fresh_state());
            (self.state, self._inbox) = (state, inbox);
        }
        let (route, ct, body) = match input {
            [r, c, body @ ..] => (*r as usize, CONTENT_TYPES[*c as usize % 4], body),
            [r] => (*r as usize, CONTENT_TYPES[0], &[][..]),
            [] => (0, CONTENT_TYPES[0], &[][..]),
        };
        let (status, content_type, answer) = self.send(route, ct, body.to_vec());
        let what = || {
            let (m, p, _) = ROUTES[route % ROUTES.len()];
            format!("{m} {p} ({ct:?}) answered {status}")
        };
        if status.is_server_error() {
            return Err(format!("{}: {}", what(), String::from_utf8_lossy(&answer)));
        }
        if status.is_success() {
            return Ok(format!("{route} {status}"));
        }
        if content_type.as_deref() != Some("application/json") {
            return Err(format!("{} with Content-Type {content_type:?}", what()));
        }
        let body: serde_json::Value = serde_json::from_slice(&answer)
            .map_err(|e| format!("{}: the error body is not JSON: {e}", what()))?;
        let error = &body["error"];
        let (Some(code), Some(message)) = (error["code"].as_str(), error["message"].as_str())
        else {
            return Err(format!("{}: not the documented error body: {body}", what()));
        };
        if code.is_empty() || message.trim().is_empty() {
            return Err(format!("{}: an empty code or message: {body}", what()));
        }
        let field = error["field"].as_str().unwrap_or("-");
        Ok(format!(
            "{} {status} {code} {} {}",
            route % ROUTES.len(),
            shape(field),
            shape(message)
        ))
    }
}
