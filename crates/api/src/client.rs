//! A typed client of the `/v1` API.

use std::fmt;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, ETAG, HeaderValue, IF_MATCH, IF_NONE_MATCH};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::paths;
use crate::types::*;

/// Errors of the typed client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid agent url {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("request to the agent failed ({method} {path}): {source}")]
    Transport {
        method: String,
        path: String,
        #[source]
        source: reqwest::Error,
    },
    /// The agent answered with a non-2xx status and an error body.
    #[error("agent refused {} {}: {} {}: {}{}", .0.method, .0.path, .0.status, .0.code, .0.message,
        .0.field.as_ref().map(|f| format!(" (field {f})")).unwrap_or_default())]
    Api(Box<ApiFailure>),
    #[error("agent sent an unreadable answer to {method} {path}: {reason}")]
    Decode {
        method: String,
        path: String,
        reason: String,
    },
}

/// A refusal by the agent: the status and its error body.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiFailure {
    pub method: String,
    pub path: String,
    pub status: u16,
    /// `invalid_request`, `forbidden`, `precondition_failed`, ...
    pub code: String,
    pub message: String,
    /// The first offending field (e.g. `spec.max_size`).
    pub field: Option<String>,
    /// Every offending field.
    pub fields: Vec<FieldError>,
}

impl ClientError {
    /// The HTTP status, if the agent answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api(f) => Some(f.status),
            _ => None,
        }
    }

    /// The agent's error body, if it answered with one.
    pub fn failure(&self) -> Option<&ApiFailure> {
        match self {
            Self::Api(f) => Some(f),
            _ => None,
        }
    }
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
    pub fn is_precondition_failed(&self) -> bool {
        self.status() == Some(412)
    }
}

/// Condition attached to a write.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Precondition {
    /// Unconditional.
    #[default]
    None,
    /// Only if the stored object still has this ETag (`If-Match`).
    IfMatch(String),
    /// Only if the object does not exist yet (`If-None-Match: *`).
    IfAbsent,
}

/// An object together with its ETag.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub etag: String,
    pub value: T,
}

/// Bearer token; never printed.
#[derive(Clone)]
struct Token(String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Typed client of one agent.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    token: Option<Token>,
    http: reqwest::Client,
}

impl Client {
    /// A client of the agent at `base_url` (e.g. `http://127.0.0.1:8470`), sending
    /// `token` as a bearer token when given.
    pub fn new(base_url: &str, token: Option<String>) -> Result<Self, ClientError> {
        let parsed = url::Url::parse(base_url).map_err(|e| ClientError::InvalidUrl {
            url: base_url.to_owned(),
            reason: e.to_string(),
        })?;
        if parsed.scheme() != "http" && parsed.scheme() != "https" {
            return Err(ClientError::InvalidUrl {
                url: base_url.to_owned(),
                reason: "scheme must be http or https".into(),
            });
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| ClientError::InvalidUrl {
                url: base_url.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            base: base_url.trim_end_matches('/').to_owned(),
            token: token.map(Token),
            http,
        })
    }

    async fn send<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&B>,
        pre: &Precondition,
    ) -> Result<(Option<String>, Vec<u8>), ClientError> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{}", self.base, path));
        if !query.is_empty() {
            req = req.query(query);
        }
        if let Some(t) = &self.token {
            let mut v = HeaderValue::from_str(&format!("Bearer {}", t.0)).map_err(|_| {
                ClientError::InvalidUrl {
                    url: self.base.clone(),
                    reason: "token contains characters not allowed in a header".into(),
                }
            })?;
            v.set_sensitive(true);
            req = req.header(AUTHORIZATION, v);
        }
        match pre {
            Precondition::None => {}
            Precondition::IfMatch(e) => req = req.header(IF_MATCH, e.as_str()),
            Precondition::IfAbsent => req = req.header(IF_NONE_MATCH, "*"),
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let transport = |source| ClientError::Transport {
            method: method.to_string(),
            path: path.to_owned(),
            source,
        };
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let etag = resp
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = resp.bytes().await.map_err(transport)?.to_vec();
        if status.is_success() {
            return Ok((etag, bytes));
        }
        let parsed: Option<ErrorBody> = serde_json::from_slice(&bytes).ok();
        let (code, message, field, fields) = match parsed {
            Some(b) => (b.error.code, b.error.message, b.error.field, b.error.fields),
            None => (
                status_code(status),
                String::from_utf8_lossy(&bytes).chars().take(200).collect(),
                None,
                Vec::new(),
            ),
        };
        Err(ClientError::Api(Box::new(ApiFailure {
            method: method.to_string(),
            path: path.to_owned(),
            status: status.as_u16(),
            code,
            message,
            field,
            fields,
        })))
    }

    pub(crate) async fn json<T: DeserializeOwned, B: Serialize>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&B>,
        pre: &Precondition,
    ) -> Result<(Option<String>, T), ClientError> {
        let (etag, bytes) = self.send(method.clone(), path, query, body, pre).await?;
        let v = serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
            method: method.to_string(),
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        Ok((etag, v))
    }

    /// The decoded answer to a request without a precondition (the ETag dropped).
    pub(crate) async fn request<T: DeserializeOwned, B: Serialize>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        Ok(self
            .json(method, path, query, body, &Precondition::None)
            .await?
            .1)
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.request::<T, ()>(Method::GET, path, &[], None).await
    }

    async fn get_versioned<T: DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<Versioned<T>, ClientError> {
        self.versioned::<T, ()>(Method::GET, path, None, &Precondition::None)
            .await
    }

    async fn delete(&self, path: &str, pre: &Precondition) -> Result<(), ClientError> {
        self.send::<()>(Method::DELETE, path, &[], None, pre)
            .await
            .map(|_| ())
    }

    async fn versioned<T: DeserializeOwned, B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        pre: &Precondition,
    ) -> Result<Versioned<T>, ClientError> {
        let (etag, value) = self.json(method.clone(), path, &[], body, pre).await?;
        let etag = etag.ok_or_else(|| ClientError::Decode {
            method: method.to_string(),
            path: path.to_owned(),
            reason: "no ETag header".into(),
        })?;
        Ok(Versioned { etag, value })
    }

    /// `GET /v1/namespaces` — the namespaces the token may see.
    pub async fn list_namespaces(&self) -> Result<Vec<Namespace>, ClientError> {
        self.get(paths::NAMESPACES).await
    }

    /// `GET /v1/namespaces/{ns}/pools`.
    pub async fn list_pools(&self, ns: &str) -> Result<Vec<Pool>, ClientError> {
        self.get(&paths::pools(ns)).await
    }

    /// `GET /v1/namespaces/{ns}/pools/{name}`.
    pub async fn get_pool(&self, ns: &str, name: &str) -> Result<Versioned<Pool>, ClientError> {
        self.get_versioned(&paths::pool(ns, name)).await
    }

    /// `PUT /v1/namespaces/{ns}/pools/{name}` — create or replace the spec.
    pub async fn put_pool(
        &self,
        ns: &str,
        name: &str,
        spec: &PoolSpec,
        pre: Precondition,
    ) -> Result<Versioned<Pool>, ClientError> {
        let body = PutPool { spec: spec.clone() };
        self.versioned(Method::PUT, &paths::pool(ns, name), Some(&body), &pre)
            .await
    }

    /// `PUT /v1/namespaces/{ns}/pools/{name}?dry_run=true` — every check of a write
    /// (the spec's rules, what ECS accepts, the flavor catalogue, the bounds of the pool's
    /// policy), nothing stored.
    pub async fn check_pool(
        &self,
        ns: &str,
        name: &str,
        spec: &PoolSpec,
    ) -> Result<(), ClientError> {
        let body = PutPool { spec: spec.clone() };
        self.send(
            Method::PUT,
            &paths::pool(ns, name),
            &[("dry_run", "true".to_owned())],
            Some(&body),
            &Precondition::None,
        )
        .await
        .map(|_| ())
    }

    /// `GET /v1/cloud/flavors` — the flavors the cloud offers (the agent caches them).
    pub async fn list_flavors(&self) -> Result<Vec<FlavorInfo>, ClientError> {
        self.get(paths::CLOUD_FLAVORS).await
    }

    /// `GET /v1/cloud/images/{id}` — the image, `None` when the cloud has no such image.
    pub async fn get_image(&self, id: &str) -> Result<Option<ImageInfo>, ClientError> {
        match self.get(&paths::cloud_image(id)).await {
            Ok(i) => Ok(Some(i)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /v1/cloud/quota` — the instance quota and what is used of it.
    pub async fn quota(&self) -> Result<QuotaInfo, ClientError> {
        self.get(paths::CLOUD_QUOTA).await
    }

    /// `DELETE /v1/namespaces/{ns}/pools/{name}` — the agent then deletes the pool's instances.
    pub async fn delete_pool(
        &self,
        ns: &str,
        name: &str,
        pre: Precondition,
    ) -> Result<(), ClientError> {
        self.delete(&paths::pool(ns, name), &pre).await
    }

    /// `GET /v1/namespaces/{ns}/pools/{name}/status`.
    pub async fn pool_status(&self, ns: &str, name: &str) -> Result<PoolStatus, ClientError> {
        self.get(&paths::pool_status(ns, name)).await
    }

    /// `GET /v1/namespaces/{ns}/pools/{name}/decisions` — newest first.
    pub async fn decisions(
        &self,
        ns: &str,
        name: &str,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<Page<DecisionRecord>, ClientError> {
        let mut q = Vec::new();
        if let Some(l) = limit {
            q.push(("limit", l.to_string()));
        }
        if let Some(c) = cursor {
            q.push(("cursor", c.to_owned()));
        }
        self.request::<_, ()>(Method::GET, &paths::decisions(ns, name), &q, None)
            .await
    }

    /// `GET /v1/namespaces/{ns}/pools/{name}/operations` — newest first.
    pub async fn operations(&self, ns: &str, name: &str) -> Result<Vec<Operation>, ClientError> {
        self.get(&paths::operations(ns, name)).await
    }

    /// `POST /v1/namespaces/{ns}/pools/{name}/reconcile` — run a pass now.
    pub async fn reconcile(&self, ns: &str, name: &str) -> Result<ReconcileAccepted, ClientError> {
        self.request::<_, ()>(Method::POST, &paths::reconcile(ns, name), &[], None)
            .await
    }

    /// `POST /v1/namespaces/{ns}/pools/{name}/metrics` — push datapoints of the pool's
    /// push-sourced metrics.
    pub async fn push_metrics(
        &self,
        ns: &str,
        name: &str,
        datapoints: &[MetricDatapoint],
    ) -> Result<PushAccepted, ClientError> {
        self.request(
            Method::POST,
            &paths::pool_metrics(ns, name),
            &[],
            Some(&datapoints),
        )
        .await
    }

    /// `POST /v1/namespaces/{ns}/pools/{name}/tune` — start a tune job.
    pub async fn start_tune(
        &self,
        ns: &str,
        name: &str,
        req: &TuneRequest,
    ) -> Result<TuneJob, ClientError> {
        self.request(Method::POST, &paths::tune(ns, name), &[], Some(req))
            .await
    }

    /// `GET /v1/namespaces/{ns}/pools/{name}/tune` — the pool's tune jobs, newest first.
    pub async fn tune_jobs(&self, ns: &str, name: &str) -> Result<Vec<TuneJob>, ClientError> {
        self.get(&paths::tune(ns, name)).await
    }

    /// `GET /v1/namespaces/{ns}/pools/{name}/tune/{id}` — a tune job.
    pub async fn tune_job(&self, ns: &str, name: &str, id: &str) -> Result<TuneJob, ClientError> {
        self.get(&paths::tune_job(ns, name, id)).await
    }

    /// `GET /v1/namespaces/{ns}/policies`.
    pub async fn list_policies(&self, ns: &str) -> Result<Vec<Policy>, ClientError> {
        self.get(&paths::policies(ns)).await
    }

    /// `GET /v1/namespaces/{ns}/policies/{name}`.
    pub async fn get_policy(&self, ns: &str, name: &str) -> Result<Versioned<Policy>, ClientError> {
        self.get_versioned(&paths::policy(ns, name)).await
    }

    /// `PUT /v1/namespaces/{ns}/policies/{name}` — create or replace.
    pub async fn put_policy(
        &self,
        ns: &str,
        name: &str,
        spec: &PolicySpec,
        pre: Precondition,
    ) -> Result<Versioned<Policy>, ClientError> {
        let body = PutPolicy { spec: spec.clone() };
        self.versioned(Method::PUT, &paths::policy(ns, name), Some(&body), &pre)
            .await
    }

    /// `DELETE /v1/namespaces/{ns}/policies/{name}`.
    pub async fn delete_policy(
        &self,
        ns: &str,
        name: &str,
        pre: Precondition,
    ) -> Result<(), ClientError> {
        self.delete(&paths::policy(ns, name), &pre).await
    }

    /// `GET /v1/openapi.json`.
    pub async fn openapi(&self) -> Result<serde_json::Value, ClientError> {
        self.get(paths::OPENAPI).await
    }
}

fn status_code(s: StatusCode) -> String {
    match s.as_u16() {
        400 | 422 => "invalid_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        409 => "conflict",
        412 => "precondition_failed",
        503 => "unavailable",
        _ => "internal",
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_token() {
        let c = Client::new("http://127.0.0.1:1", Some("s3cr3t-token".into())).unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("s3cr3t"), "{dbg}");
        assert!(dbg.contains("redacted"));
    }

    #[test]
    fn a_url_without_http_scheme_is_refused() {
        let err = Client::new("ftp://x", None).unwrap_err();
        assert!(err.to_string().contains("scheme"), "{err}");
    }
}
