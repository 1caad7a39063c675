//! `HuaweiClient`: signs, rate-limits, sends and retries requests, and implements
//! [`Cloud`](crate::Cloud) for ECS and CES.

use std::sync::Arc;
use std::time::Duration;

use backon::Retryable as _;
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use crate::config::ClientConfig;
use crate::credentials::Credentials;
use crate::error::{CloudError, ErrorKind};
use crate::limits;
use crate::model::*;
use crate::ratelimit::AccountLimits;
use crate::signer::{self, SignableRequest};

/// Which service base URL a call goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Elastic Cloud Server.
    Ecs,
    /// Cloud Eye.
    Ces,
    /// Image Management Service.
    Ims,
}

type SigningClock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The Huawei Cloud client of one account (AK and project). Clients made from it
/// with [`crate::Cloud::for_tenant`] share its rate limits, each tenant with a fair
/// share.
#[derive(Clone)]
pub struct HuaweiClient {
    config: Arc<ClientConfig>,
    credentials: Arc<Credentials>,
    http: reqwest::Client,
    limits: Arc<AccountLimits>,
    /// Whose share of the account's budget this client's calls draw on.
    tenant: Arc<str>,
    clock: SigningClock,
}

impl std::fmt::Debug for HuaweiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HuaweiClient")
            .field("config", &self.config)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// A successful raw response.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// HTTP status.
    pub status: u16,
    /// `X-Request-Id`.
    pub request_id: Option<String>,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// One request before signing.
#[derive(Debug, Clone)]
pub struct RawRequest {
    /// Operation name used in errors and logs.
    pub operation: &'static str,
    /// Target service.
    pub service: Service,
    /// Method.
    pub method: Method,
    /// Decoded path under the service base URL, starting with `/`.
    pub path: String,
    /// Decoded query pairs.
    pub query: Vec<(String, String)>,
    /// JSON body bytes.
    pub body: Option<Vec<u8>>,
    /// Extra headers to send and sign (e.g. `X-Client-Token`).
    pub headers: Vec<(String, String)>,
}

impl RawRequest {
    /// A `GET` of `path` with no query, body or extra headers.
    pub fn get(operation: &'static str, service: Service, path: String) -> Self {
        Self {
            operation,
            service,
            method: Method::GET,
            path,
            query: vec![],
            body: None,
            headers: vec![],
        }
    }

    /// A `POST` of the JSON `body` to `path`, with no query or extra headers.
    pub fn post(operation: &'static str, service: Service, path: String, body: Vec<u8>) -> Self {
        Self {
            method: Method::POST,
            body: Some(body),
            ..Self::get(operation, service, path)
        }
    }

    /// The same request with the query pairs `query`.
    pub fn with_query(self, query: Vec<(String, String)>) -> Self {
        Self { query, ..self }
    }
}

impl HuaweiClient {
    /// Builds a client; validates the configuration.
    pub fn new(config: ClientConfig, credentials: Credentials) -> Result<Self, CloudError> {
        config.validate()?;
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .user_agent(config.user_agent.clone())
            .build()
            .map_err(|e| {
                CloudError::local(ErrorKind::Config, "client", format!("http client: {e}"))
            })?;
        let limits = AccountLimits::new(&config.rate_limits);
        Ok(Self {
            config: Arc::new(config),
            credentials: Arc::new(credentials),
            http,
            limits: Arc::new(limits),
            tenant: Arc::from(""),
            clock: Arc::new(Utc::now),
        })
    }

    /// Replaces the clock used for `X-Sdk-Date` (tests of clock-skew rejection).
    pub fn with_signing_clock(
        mut self,
        clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static,
    ) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    fn project_path(&self, version: &str, rest: &str) -> String {
        format!("/{version}/{}/{rest}", self.config.project_id)
    }

    /// `POST /v1/{project}/cloudservers` (a create, or its dry run).
    fn post_servers(
        &self,
        operation: &'static str,
        body: Vec<u8>,
        headers: Vec<(String, String)>,
    ) -> RawRequest {
        RawRequest {
            headers,
            ..RawRequest::post(
                operation,
                Service::Ecs,
                self.project_path("v1", "cloudservers"),
                body,
            )
        }
    }

    /// Sends a request with signing, rate limiting, timeouts and retries; returns the
    /// 2xx response or a typed error.
    pub async fn send(&self, req: RawRequest) -> Result<RawResponse, CloudError> {
        let mut retry = 0u32;
        (|| self.send_once(&req))
            .retry(self.config.retry.backoff())
            .when(|e: &CloudError| e.kind.is_retryable())
            .notify(|e: &CloudError, delay: Duration| {
                retry += 1;
                tracing::debug!(
                    operation = req.operation,
                    attempt = retry,
                    kind = ?e.kind,
                    code = e.code.as_deref().unwrap_or(""),
                    delay_ms = delay.as_millis() as u64,
                    "retrying"
                );
            })
            .await
    }

    async fn send_once(&self, req: &RawRequest) -> Result<RawResponse, CloudError> {
        let op = req.operation;
        if req.method == Method::GET {
            self.limits.reads.acquire(&self.tenant).await;
        } else {
            self.limits.writes.acquire(&self.tenant).await;
        }
        let base = match req.service {
            Service::Ecs => &self.config.ecs_endpoint,
            Service::Ces => &self.config.ces_endpoint,
            Service::Ims => &self.config.ims_endpoint,
        };
        let full_path = format!("{}{}", base.path().trim_end_matches('/'), req.path);
        let encoded_path = full_path
            .split('/')
            .map(signer::encode)
            .collect::<Vec<_>>()
            .join("/");
        let query = signer::canonical_query(&req.query);
        let host = match base.port() {
            Some(p) => format!("{}:{p}", base.host_str().unwrap_or_default()),
            None => base.host_str().unwrap_or_default().to_string(),
        };
        let mut url = format!("{}://{host}{encoded_path}", base.scheme());
        if !query.is_empty() {
            url.push('?');
            url.push_str(&query);
        }
        let date = (self.clock)().format(signer::SDK_DATE_FORMAT).to_string();
        let mut headers: Vec<(String, String)> = vec![
            ("Host".into(), host.clone()),
            ("X-Sdk-Date".into(), date),
            ("X-Project-Id".into(), self.config.project_id.clone()),
        ];
        if req.body.is_some() {
            headers.push((
                "Content-Type".into(),
                "application/json;charset=UTF-8".into(),
            ));
        }
        if let Some(t) = self.credentials.security_token() {
            headers.push((signer::HEADER_SECURITY_TOKEN.into(), t.to_string()));
        }
        headers.extend(req.headers.iter().cloned());
        let body = req.body.clone().unwrap_or_default();
        let payload_hash = signer::sha256_hex(&body);
        let authorization = signer::authorization(
            self.credentials.access_key(),
            self.credentials.secret_key(),
            &SignableRequest {
                method: req.method.as_str(),
                path: &full_path,
                query: &req.query,
                headers: &headers,
                payload_hash: &payload_hash,
            },
        );
        let mut builder = self
            .http
            .request(req.method.clone(), &url)
            .timeout(self.config.request_timeout)
            .header("Authorization", authorization);
        for (name, value) in headers
            .iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case("host"))
        {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if req.body.is_some() {
            builder = builder.body(body);
        }
        let response = builder.send().await.map_err(|e| {
            let what = if e.is_timeout() {
                "timed out"
            } else {
                "could not be sent"
            };
            CloudError::local(
                ErrorKind::Transient,
                op,
                format!("request {what}: {}", strip_url(&e)),
            )
        })?;
        let status = response.status().as_u16();
        let request_id = response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = response.bytes().await.map_err(|e| {
            CloudError::local(
                ErrorKind::Transient,
                op,
                format!("reading the response failed: {}", strip_url(&e)),
            )
        })?;
        tracing::debug!(
            operation = op,
            status,
            request_id = request_id.as_deref().unwrap_or(""),
            "huawei call"
        );
        if (200..300).contains(&status) {
            Ok(RawResponse {
                status,
                request_id,
                body: bytes.to_vec(),
            })
        } else {
            Err(CloudError::from_response(op, status, request_id, &bytes))
        }
    }

    fn decode<T: for<'de> Deserialize<'de>>(op: &str, r: &RawResponse) -> Result<T, CloudError> {
        serde_json::from_slice(&r.body).map_err(|e| CloudError {
            kind: ErrorKind::Protocol,
            code: None,
            message: format!("unexpected response body: {e}"),
            request_id: r.request_id.clone(),
            status: Some(r.status),
            operation: op.to_string(),
        })
    }

    /// Sends `req` and decodes the answer's JSON body as `T`.
    async fn call<T: for<'de> Deserialize<'de>>(&self, req: RawRequest) -> Result<T, CloudError> {
        let op = req.operation;
        let r = self.send(req).await?;
        Self::decode(op, &r)
    }

    fn json_body(op: &str, v: &serde_json::Value) -> Result<Vec<u8>, CloudError> {
        serde_json::to_vec(v)
            .map_err(|e| CloudError::local(ErrorKind::Invalid, op, format!("body: {e}")))
    }
}

fn strip_url(e: &reqwest::Error) -> String {
    // reqwest errors print the URL: never with credentials written into the endpoint.
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(u.as_str(), &crate::redact_url(u.as_str()));
    }
    if let Some(src) = std::error::Error::source(e) {
        s = format!("{s}: {src}");
    }
    s
}

fn invalid(op: &str, msg: impl Into<String>) -> CloudError {
    CloudError::local(ErrorKind::Invalid, op, msg)
}

/// What is wrong with one ECS tag, if anything: keys are 1-36 characters and values
/// at most 43 — characters, not bytes (a CJK or accented value is counted as ECS counts it).
pub fn tag_problem(key: &str, value: &str) -> Option<String> {
    let (key_chars, value_chars) = (key.chars().count(), value.chars().count());
    if key_chars == 0 || key_chars > limits::MAX_TAG_KEY_CHARS {
        Some(format!(
            "tag key {key:?} must be 1-{} characters, it has {key_chars}",
            limits::MAX_TAG_KEY_CHARS
        ))
    } else if value_chars > limits::MAX_TAG_VALUE_CHARS {
        Some(format!(
            "tag {key:?} value must be at most {} characters, it has {value_chars}",
            limits::MAX_TAG_VALUE_CHARS
        ))
    } else {
        None
    }
}

/// Checks a create request before sending it; every problem names its field.
pub fn validate_create(req: &CreateServersRequest) -> Result<(), CloudError> {
    let op = "create_servers";
    let mut p = Vec::new();
    if req.name.is_empty() || req.name.len() > 64 {
        p.push(format!("name must be 1-64 characters, got {:?}", req.name));
    }
    if !req
        .name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        p.push(format!(
            "name may contain only letters, digits, '_', '-' and '.', got {:?}",
            req.name
        ));
    }
    for (field, v) in [
        ("flavor", &req.flavor),
        ("image", &req.image),
        ("vpc_id", &req.vpc_id),
    ] {
        if v.is_empty() {
            p.push(format!("{field} must not be empty"));
        }
    }
    if req.subnet_ids.is_empty() || req.subnet_ids.len() > limits::MAX_NICS {
        p.push(format!(
            "subnet_ids must hold 1-{} subnets, got {}",
            limits::MAX_NICS,
            req.subnet_ids.len()
        ));
    }
    if !limits::is_root_volume_type(&req.root_volume.volume_type) {
        p.push(format!(
            "root_volume.volume_type {:?} is not an ECS disk type (one of {})",
            req.root_volume.volume_type,
            limits::ROOT_VOLUME_TYPES.join(", ")
        ));
    }
    if let Some(size) = req.root_volume.size_gb
        && !limits::ROOT_VOLUME_SIZE_GB.contains(&size)
    {
        p.push(format!("root_volume.size_gb must be 1-1024, got {size}"));
    }
    if let Some(u) = &req.user_data {
        let decoded = u.trim_end_matches('=').len() * 3 / 4;
        if decoded > limits::MAX_USER_DATA_BYTES {
            p.push(format!(
                "user_data is {decoded} bytes before base64; ECS allows at most {}",
                limits::MAX_USER_DATA_BYTES
            ));
        }
    }
    if req.count == 0 || req.count > 500 {
        p.push(format!("count must be 1-500, got {}", req.count));
    }
    if req.tags.len() > limits::MAX_TAGS {
        p.push(format!(
            "tags: at most {} per server, got {}",
            limits::MAX_TAGS,
            req.tags.len()
        ));
    }
    p.extend(req.tags.iter().filter_map(|(k, v)| tag_problem(k, v)));
    if let Some(SpotOptions { max_price: Some(m) }) = &req.spot
        && (!m.is_finite() || *m <= 0.0)
    {
        p.push(format!("spot.max_price must be a positive number, got {m}"));
    }
    if p.is_empty() {
        Ok(())
    } else {
        Err(invalid(op, p.join("; ")))
    }
}

/// The v1 `POST /cloudservers` body for a request.
pub fn create_body(req: &CreateServersRequest) -> serde_json::Value {
    let server = json!({
        "name": req.name,
        "imageRef": req.image,
        "flavorRef": req.flavor,
        "vpcid": req.vpc_id,
        "nics": req.subnet_ids.iter().map(|s| json!({"subnet_id": s})).collect::<Vec<_>>(),
        "root_volume": match req.root_volume.size_gb {
            Some(size) => json!({"volumetype": req.root_volume.volume_type, "size": size}),
            None => json!({"volumetype": req.root_volume.volume_type}),
        },
        "count": req.count,
        "server_tags": req.tags.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
    });
    let serde_json::Value::Object(mut obj) = server else {
        return serde_json::Value::Null; // unreachable: the literal above is an object
    };
    if req.count > 1 {
        obj.insert("isAutoRename".into(), json!(false));
    }
    if !req.security_groups.is_empty() {
        obj.insert(
            "security_groups".into(),
            json!(
                req.security_groups
                    .iter()
                    .map(|s| json!({"id": s}))
                    .collect::<Vec<_>>()
            ),
        );
    }
    if let Some(az) = &req.availability_zone {
        obj.insert("availability_zone".into(), json!(az));
    }
    if let Some(k) = &req.key_name {
        obj.insert("key_name".into(), json!(k));
    }
    if let Some(u) = &req.user_data {
        obj.insert("user_data".into(), json!(u));
    }
    let mut ext = json!({"chargingMode": 0});
    if let Some(spot) = &req.spot {
        ext["marketType"] = json!("spot");
        if let Some(p) = spot.max_price {
            ext["spotPrice"] = json!(format!("{p}"));
        }
    }
    obj.insert("extendparam".into(), ext);
    json!({ "server": obj })
}

#[derive(Deserialize)]
struct CreateResponse {
    job_id: String,
    #[serde(rename = "serverIds", default)]
    server_ids: Vec<String>,
}

#[derive(Deserialize)]
struct JobIdResponse {
    job_id: String,
}

#[derive(Deserialize)]
struct ListResponse {
    #[serde(default)]
    count: usize,
    #[serde(default)]
    servers: Vec<WireServer>,
}

#[derive(Deserialize)]
struct FlavorsResponse {
    #[serde(default)]
    flavors: Vec<WireFlavorDetail>,
}

#[derive(Deserialize)]
struct ImagesResponse {
    #[serde(default)]
    images: Vec<Image>,
}

#[derive(Deserialize)]
struct LimitsResponse {
    absolute: WireLimits,
}

#[derive(Deserialize)]
struct ShowResponse {
    server: WireServer,
}

#[derive(Deserialize)]
struct TagsResponse {
    #[serde(default)]
    tags: Vec<WireTag>,
}

#[derive(Deserialize)]
struct WireTag {
    key: String,
    #[serde(default)]
    value: String,
}

#[derive(Deserialize)]
struct MetricDataResponse {
    #[serde(default)]
    datapoints: Vec<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct BatchResponse {
    #[serde(default)]
    metrics: Vec<BatchSeries>,
}

#[derive(Deserialize)]
struct BatchSeries {
    namespace: String,
    metric_name: String,
    #[serde(default)]
    dimensions: Vec<Dimension>,
    #[serde(default)]
    datapoints: Vec<serde_json::Map<String, serde_json::Value>>,
    unit: Option<String>,
}

fn datapoints(
    raw: Vec<serde_json::Map<String, serde_json::Value>>,
    filter: Filter,
) -> Vec<Datapoint> {
    let mut out: Vec<Datapoint> = raw
        .into_iter()
        .filter_map(|p| {
            Some(Datapoint {
                timestamp_ms: p.get("timestamp")?.as_i64()?,
                value: p.get(filter.as_str())?.as_f64()?,
                unit: p.get("unit").and_then(|u| u.as_str()).map(str::to_string),
            })
        })
        .collect();
    out.sort_by_key(|d| d.timestamp_ms);
    out
}

fn validate_metric(op: &str, m: &MetricId) -> Result<(), CloudError> {
    if m.namespace.is_empty() || m.metric_name.is_empty() {
        return Err(invalid(op, "namespace and metric_name must not be empty"));
    }
    if m.dimensions.is_empty() || m.dimensions.len() > 4 {
        return Err(invalid(
            op,
            format!(
                "metric {}/{} needs 1-4 dimensions, got {}",
                m.namespace,
                m.metric_name,
                m.dimensions.len()
            ),
        ));
    }
    Ok(())
}

fn validate_range(op: &str, from: i64, to: i64, period: u32) -> Result<(), CloudError> {
    if from >= to {
        return Err(invalid(
            op,
            format!("from ({from}) must be before to ({to})"),
        ));
    }
    if ![1, 60, 300, 1200, 3600, 14400, 86400].contains(&period) {
        return Err(invalid(
            op,
            format!("period {period} is not one of 1, 60, 300, 1200, 3600, 14400, 86400"),
        ));
    }
    Ok(())
}

#[async_trait::async_trait]
impl crate::Cloud for HuaweiClient {
    fn for_tenant(&self, tenant: &str) -> Arc<dyn crate::Cloud> {
        let mut c = self.clone();
        c.tenant = Arc::from(tenant);
        Arc::new(c)
    }

    async fn create_servers(&self, req: &CreateServersRequest) -> Result<CreateResult, CloudError> {
        const OP: &str = "create_servers";
        validate_create(req)?;
        let body = Self::json_body(OP, &create_body(req))?;
        let token = (
            "X-Client-Token".into(),
            req.client_token.hyphenated().to_string(),
        );
        let r = self.send(self.post_servers(OP, body, vec![token])).await?;
        let c: CreateResponse = Self::decode(OP, &r)?;
        Ok(CreateResult {
            job_id: c.job_id,
            server_ids: c.server_ids,
        })
    }

    async fn check_create_servers(&self, req: &CreateServersRequest) -> Result<(), CloudError> {
        const OP: &str = "check_create_servers";
        validate_create(req)?;
        let mut body = create_body(req);
        body["dry_run"] = json!(true);
        let body = Self::json_body(OP, &body)?;
        self.send(self.post_servers(OP, body, vec![])).await?;
        Ok(())
    }

    async fn get_job(&self, job_id: &str) -> Result<Job, CloudError> {
        const OP: &str = "get_job";
        if job_id.is_empty() {
            return Err(invalid(OP, "job_id must not be empty"));
        }
        let w: WireJob = self
            .call(RawRequest::get(
                OP,
                Service::Ecs,
                self.project_path("v1", &format!("jobs/{job_id}")),
            ))
            .await?;
        Ok(w.into())
    }

    async fn list_servers(&self, filter: &ServerFilter) -> Result<Vec<Server>, CloudError> {
        const OP: &str = "list_servers";
        let limit = filter.page_size.unwrap_or(100).clamp(1, 1000);
        let mut all = Vec::new();
        // `offset` is a page number starting at 1.
        for page in 1u32.. {
            let mut query = vec![
                ("offset".to_string(), page.to_string()),
                ("limit".to_string(), limit.to_string()),
            ];
            if let Some((k, v)) = filter.tags.first() {
                query.push(("tags".into(), format!("{k}={v}")));
            }
            if let Some(s) = &filter.status {
                query.push(("status".into(), s.clone()));
            }
            if let Some(n) = &filter.name {
                query.push(("name".into(), n.clone()));
            }
            let l: ListResponse = self
                .call(
                    RawRequest::get(
                        OP,
                        Service::Ecs,
                        self.project_path("v1", "cloudservers/detail"),
                    )
                    .with_query(query),
                )
                .await?;
            let got = l.servers.len();
            all.extend(l.servers.into_iter().map(Server::from));
            if got == 0 || got < limit as usize || all.len() >= l.count {
                break;
            }
        }
        all.retain(|s: &Server| {
            filter
                .tags
                .iter()
                .all(|(k, v)| s.tag(k) == Some(v.as_str()))
        });
        let mut seen = std::collections::HashSet::new();
        all.retain(|s| seen.insert(s.id.clone()));
        Ok(all)
    }

    async fn get_server(&self, server_id: &str) -> Result<Server, CloudError> {
        const OP: &str = "get_server";
        if server_id.is_empty() {
            return Err(invalid(OP, "server_id must not be empty"));
        }
        let s: ShowResponse = self
            .call(RawRequest::get(
                OP,
                Service::Ecs,
                self.project_path("v1", &format!("cloudservers/{server_id}")),
            ))
            .await?;
        Ok(s.server.into())
    }

    async fn delete_servers(&self, req: &DeleteServersRequest) -> Result<String, CloudError> {
        const OP: &str = "delete_servers";
        if req.server_ids.is_empty() || req.server_ids.len() > 1000 {
            return Err(invalid(
                OP,
                format!(
                    "server_ids must hold 1-1000 ids, got {}",
                    req.server_ids.len()
                ),
            ));
        }
        let body = json!({
            "servers": req.server_ids.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
            "delete_publicip": req.delete_publicip,
            "delete_volume": req.delete_volume,
        });
        let j: JobIdResponse = self
            .call(RawRequest::post(
                OP,
                Service::Ecs,
                self.project_path("v1", "cloudservers/delete"),
                Self::json_body(OP, &body)?,
            ))
            .await?;
        Ok(j.job_id)
    }

    async fn set_tags(&self, server_id: &str, tags: &[(String, String)]) -> Result<(), CloudError> {
        self.tags_action("set_tags", server_id, "create", tags)
            .await
    }

    async fn delete_tags(
        &self,
        server_id: &str,
        tags: &[(String, String)],
    ) -> Result<(), CloudError> {
        self.tags_action("delete_tags", server_id, "delete", tags)
            .await
    }

    async fn list_tags(&self, server_id: &str) -> Result<Vec<(String, String)>, CloudError> {
        const OP: &str = "list_tags";
        let t: TagsResponse = self
            .call(RawRequest::get(
                OP,
                Service::Ecs,
                self.project_path("v1", &format!("cloudservers/{server_id}/tags")),
            ))
            .await?;
        Ok(t.tags.into_iter().map(|t| (t.key, t.value)).collect())
    }

    async fn query_metric(&self, q: &MetricQuery) -> Result<Vec<Datapoint>, CloudError> {
        const OP: &str = "query_metric";
        validate_metric(OP, &q.metric)?;
        validate_range(OP, q.from_ms, q.to_ms, q.period)?;
        let mut query = vec![
            ("namespace".to_string(), q.metric.namespace.clone()),
            ("metric_name".to_string(), q.metric.metric_name.clone()),
            ("from".to_string(), q.from_ms.to_string()),
            ("to".to_string(), q.to_ms.to_string()),
            ("period".to_string(), q.period.to_string()),
            ("filter".to_string(), q.filter.as_str().to_string()),
        ];
        for (i, d) in q.metric.dimensions.iter().enumerate() {
            query.push((format!("dim.{i}"), format!("{},{}", d.name, d.value)));
        }
        let m: MetricDataResponse = self
            .call(
                RawRequest::get(OP, Service::Ces, self.project_path("V1.0", "metric-data"))
                    .with_query(query),
            )
            .await?;
        Ok(datapoints(m.datapoints, q.filter))
    }

    async fn batch_query_metrics(
        &self,
        q: &BatchMetricQuery,
    ) -> Result<Vec<MetricSeries>, CloudError> {
        const OP: &str = "batch_query_metrics";
        if q.metrics.is_empty() || q.metrics.len() > 500 {
            return Err(invalid(
                OP,
                format!("metrics must hold 1-500 entries, got {}", q.metrics.len()),
            ));
        }
        for m in &q.metrics {
            validate_metric(OP, m)?;
        }
        validate_range(OP, q.from_ms, q.to_ms, q.period)?;
        let body = json!({
            "metrics": q.metrics.iter().map(|m| json!({
                "namespace": m.namespace,
                "metric_name": m.metric_name,
                "dimensions": m.dimensions,
            })).collect::<Vec<_>>(),
            "from": q.from_ms,
            "to": q.to_ms,
            "period": q.period.to_string(),
            "filter": q.filter.as_str(),
        });
        let b: BatchResponse = self
            .call(RawRequest::post(
                OP,
                Service::Ces,
                self.project_path("V1.0", "batch-query-metric-data"),
                Self::json_body(OP, &body)?,
            ))
            .await?;
        Ok(b.metrics
            .into_iter()
            .map(|s| MetricSeries {
                metric: MetricId {
                    namespace: s.namespace,
                    metric_name: s.metric_name,
                    dimensions: s.dimensions,
                },
                unit: s.unit,
                datapoints: datapoints(s.datapoints, q.filter),
            })
            .collect())
    }

    async fn put_custom_metrics(&self, metrics: &[CustomMetric]) -> Result<(), CloudError> {
        const OP: &str = "put_custom_metrics";
        if metrics.is_empty() || metrics.len() > 10000 {
            return Err(invalid(
                OP,
                format!("1-10000 values per call, got {}", metrics.len()),
            ));
        }
        for m in metrics {
            validate_metric(OP, &m.metric)?;
            let ns = m.metric.namespace.to_ascii_uppercase();
            if ns.starts_with("SYS") || ns.starts_with("AGT") || ns.starts_with("SRE") {
                return Err(invalid(
                    OP,
                    format!(
                        "namespace {} is reserved for system metrics",
                        m.metric.namespace
                    ),
                ));
            }
        }
        let body = serde_json::Value::Array(
            metrics
                .iter()
                .map(|m| {
                    let mut v = json!({
                        "metric": {
                            "namespace": m.metric.namespace,
                            "metric_name": m.metric.metric_name,
                            "dimensions": m.metric.dimensions,
                        },
                        "ttl": m.ttl_seconds,
                        "collect_time": m.collect_time_ms,
                        "value": m.value,
                        "type": "float",
                    });
                    if let Some(u) = &m.unit {
                        v["unit"] = json!(u);
                    }
                    v
                })
                .collect(),
        );
        self.send(RawRequest::post(
            OP,
            Service::Ces,
            self.project_path("V1.0", "metric-data"),
            Self::json_body(OP, &body)?,
        ))
        .await?;
        Ok(())
    }

    async fn list_flavors(
        &self,
        availability_zone: Option<&str>,
    ) -> Result<Vec<Flavor>, CloudError> {
        const OP: &str = "list_flavors";
        let query = availability_zone
            .map(|az| vec![("availability_zone".to_string(), az.to_string())])
            .unwrap_or_default();
        let l: FlavorsResponse = self
            .call(
                RawRequest::get(
                    OP,
                    Service::Ecs,
                    self.project_path("v1", "cloudservers/flavors"),
                )
                .with_query(query),
            )
            .await?;
        Ok(l.flavors.into_iter().map(Flavor::from).collect())
    }

    async fn get_image(&self, image_id: &str) -> Result<Option<Image>, CloudError> {
        const OP: &str = "get_image";
        if image_id.is_empty() {
            return Err(invalid(OP, "image_id must not be empty"));
        }
        let l: ImagesResponse = self
            .call(
                RawRequest::get(OP, Service::Ims, "/v2/cloudimages".into())
                    .with_query(vec![("id".into(), image_id.to_string())]),
            )
            .await?;
        Ok(l.images.into_iter().find(|i| i.id == image_id))
    }

    async fn get_quota(&self) -> Result<Quota, CloudError> {
        const OP: &str = "get_quota";
        let l: LimitsResponse = self
            .call(RawRequest::get(
                OP,
                Service::Ecs,
                self.project_path("v1", "cloudservers/limits"),
            ))
            .await?;
        Ok(l.absolute.into())
    }
}

impl HuaweiClient {
    async fn tags_action(
        &self,
        op: &'static str,
        server_id: &str,
        action: &str,
        tags: &[(String, String)],
    ) -> Result<(), CloudError> {
        if tags.is_empty() {
            return Err(invalid(op, "tags must not be empty"));
        }
        let problems: Vec<String> = tags.iter().filter_map(|(k, v)| tag_problem(k, v)).collect();
        if !problems.is_empty() {
            return Err(invalid(op, problems.join("; ")));
        }
        let body = json!({
            "action": action,
            "tags": tags.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
        });
        self.send(RawRequest::post(
            op,
            Service::Ecs,
            self.project_path("v1", &format!("cloudservers/{server_id}/tags/action")),
            Self::json_body(op, &body)?,
        ))
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> CreateServersRequest {
        CreateServersRequest {
            client_token: uuid::Uuid::nil(),
            name: "web".into(),
            flavor: "x1.2u.4g".into(),
            image: "img".into(),
            vpc_id: "vpc".into(),
            subnet_ids: vec!["sub".into()],
            security_groups: vec![],
            availability_zone: None,
            key_name: None,
            user_data: None,
            root_volume: RootVolume {
                volume_type: "SSD".into(),
                size_gb: Some(40),
            },
            tags: vec![("flexus-pool".into(), "web".into())],
            count: 2,
            spot: Some(SpotOptions {
                max_price: Some(0.5),
            }),
        }
    }

    #[test]
    fn create_body_uses_v1_field_names_and_spot_extendparam() {
        let b = create_body(&req());
        let s = &b["server"];
        assert_eq!(s["flavorRef"], "x1.2u.4g");
        assert_eq!(s["vpcid"], "vpc");
        assert_eq!(s["nics"][0]["subnet_id"], "sub");
        assert_eq!(s["server_tags"][0]["key"], "flexus-pool");
        assert_eq!(s["extendparam"]["chargingMode"], 0);
        assert_eq!(s["extendparam"]["marketType"], "spot");
        assert_eq!(s["extendparam"]["spotPrice"], "0.5");
        assert_eq!(s["isAutoRename"], false);
    }

    #[test]
    fn invalid_create_names_each_bad_field() {
        let mut r = req();
        r.name = String::new();
        r.count = 0;
        r.subnet_ids.clear();
        let e = validate_create(&r).expect_err("invalid");
        assert_eq!(e.kind, ErrorKind::Invalid);
        for f in ["name", "count", "subnet_ids"] {
            assert!(e.message.contains(f), "{f}: {}", e.message);
        }
    }

    #[test]
    fn tag_limits_count_characters_not_bytes() {
        let mut r = req();
        // 43 two-byte characters (86 bytes) and a 36-character CJK key are within the limits.
        r.tags = vec![("团队".repeat(18), "é".repeat(43))];
        validate_create(&r).expect("43 characters is the limit, whatever their bytes");
        assert_eq!(tag_problem(&"键".repeat(36), &"é".repeat(43)), None);

        r.tags = vec![("team".into(), "é".repeat(44))];
        let e = validate_create(&r).expect_err("44 characters");
        assert!(
            e.message
                .contains("tag \"team\" value must be at most 43 characters, it has 44"),
            "{}",
            e.message
        );
        let e = tag_problem(&"键".repeat(37), "").expect("37 characters");
        assert!(e.contains("must be 1-36 characters, it has 37"), "{e}");
    }
}
