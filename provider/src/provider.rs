//! The provider itself: its configuration (with `FLEXUS_*` environment fallbacks) and the
//! configured client every resource uses, with a per-request timeout and retries of
//! transient failures.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flexus_api::{Client, ClientError, FlavorInfo, ImageInfo, QuotaInfo};
use schemars::JsonSchema;
use serde::Deserialize;
use tfplugin::{
    AttrPath, ConfigureRequest, DataSources, Diagnostic, Diagnostics, Provider, Resources, Value,
};

use crate::errors::ProviderError;

/// Environment fallback of `endpoint` (the name the `flexus-agent` CLI reads too).
pub const ENV_ENDPOINT: &str = "FLEXUS_ENDPOINT";
/// Alias of [`ENV_ENDPOINT`], read when it is unset.
pub const ENV_ENDPOINT_ALIAS: &str = "FLEXUS_AGENT_URL";
/// Environment fallback of `token`.
pub const ENV_TOKEN: &str = "FLEXUS_TOKEN";
/// Environment fallback of `namespace`.
pub const ENV_NAMESPACE: &str = "FLEXUS_NAMESPACE";
/// Used when neither `endpoint` nor `FLEXUS_ENDPOINT` is set.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:8470";

/// The Flexus provider.
#[derive(Debug, Clone, Copy, Default)]
pub struct FlexusProvider;

/// Configuration of the Flexus provider: where the agent is and how to talk to it.
#[derive(Deserialize, JsonSchema)]
pub struct ProviderConfig {
    /// URL of the flexus-agent control plane, e.g. `http://127.0.0.1:8470`. Falls back to
    /// the `FLEXUS_ENDPOINT` environment variable (or its alias `FLEXUS_AGENT_URL`), then to
    /// `http://127.0.0.1:8470`.
    pub endpoint: Option<String>,
    /// Bearer token of the agent (an admin token or a namespace token). Falls back to
    /// `FLEXUS_TOKEN`. Never written to logs or shown in plans.
    #[schemars(extend("x-tf" = {"sensitive": true}))]
    pub token: Option<String>,
    /// Namespace used by resources that do not set their own. Falls back to
    /// `FLEXUS_NAMESPACE`.
    pub namespace: Option<String>,
    /// Timeout of one request to the agent, as a duration such as `30s` or `2m` (default `30s`).
    pub request_timeout: Option<String>,
    /// How many times a request that failed transiently (connection refused, timeout, 429,
    /// 5xx other than 501) is retried, with exponential backoff (default 4).
    #[schemars(range(min = 0, max = 20))]
    pub max_retries: Option<i64>,
}

impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("endpoint", &self.endpoint)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("namespace", &self.namespace)
            .field("request_timeout", &self.request_timeout)
            .field("max_retries", &self.max_retries)
            .finish()
    }
}

/// What configure produces: the agent client and the provider defaults.
#[derive(Debug)]
pub struct Flexus {
    client: Client,
    namespace: Option<String>,
    request_timeout: Duration,
    max_retries: u32,
    plan: PlanFacts,
}

/// What plan-time checks learned in this provider process (Terraform plans every resource
/// of a configuration in one process, a pool before the policy that refers to it).
#[derive(Debug, Default)]
struct PlanFacts {
    /// `(min_size, max_size)` of each pool planned so far, by `(namespace, name)`.
    pools: Mutex<HashMap<(String, String), (u32, u32)>>,
    /// The flavors the cloud offers, once asked.
    flavors: tokio::sync::OnceCell<Option<Arc<Vec<FlavorInfo>>>>,
    /// The project's quota, once asked.
    quota: tokio::sync::OnceCell<Option<QuotaInfo>>,
    /// Images asked for, by id (`None`: the project has no such image).
    images: Mutex<HashMap<String, Option<ImageInfo>>>,
    /// The agent did not answer a plan-time lookup: do not ask again.
    unreachable: AtomicBool,
}

/// Validates a duration attribute with the one grammar the provider accepts everywhere
/// (flexus-policy's: `90s`, `5m`, `1h30m`, `1d`).
pub fn duration_validator() -> impl tfplugin::validators::Validator {
    tfplugin::validators::from_fn("a duration", |v, path, d| {
        if let Some(s) = v.as_str()
            && let Err(e) = flexus_policy::parse_duration(s)
        {
            d.error_at(path.clone(), "Invalid duration", format!("{path}: {e}"));
        }
    })
}

fn env_nonempty(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.trim().is_empty())
}

/// Checks one optional string attribute of the provider block when it is known.
fn known_str<'a>(config: &'a Value, name: &str) -> Option<&'a str> {
    config.attr(name).and_then(Value::as_str)
}

impl Provider for FlexusProvider {
    type Config = ProviderConfig;
    type Data = Flexus;

    const TYPE_NAME: &str = "flexus";

    fn source_address(&self) -> String {
        "registry.terraform.io/flexus/flexus".into()
    }

    fn validate(&self, config: &Value) -> Diagnostics {
        let mut d = Diagnostics::new();
        if let Some(t) = known_str(config, "request_timeout")
            && let Err(e) = flexus_policy::parse_duration(t)
        {
            d.error_at(
                AttrPath::new("request_timeout"),
                "Invalid request timeout",
                format!("request_timeout: {e}"),
            );
        }
        if let Some(ns) = known_str(config, "namespace")
            && let Err(e) = flexus_api::validate_name("namespace", ns)
        {
            d.error_at(AttrPath::new("namespace"), "Invalid namespace", e.message);
        }
        if let Some(ep) = known_str(config, "endpoint")
            && let Err(e) = Client::new(ep, None)
        {
            d.error_at(AttrPath::new("endpoint"), "Invalid endpoint", e.to_string());
        }
        d
    }

    async fn configure(
        &self,
        req: ConfigureRequest<ProviderConfig>,
    ) -> Result<Flexus, Diagnostics> {
        let c = req.config;
        let endpoint_from_env = c.endpoint.is_none();
        let endpoint = c
            .endpoint
            .clone()
            .or_else(|| env_nonempty(ENV_ENDPOINT))
            .or_else(|| env_nonempty(ENV_ENDPOINT_ALIAS))
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        let token = c.token.clone().or_else(|| env_nonempty(ENV_TOKEN));
        let namespace = c.namespace.clone().or_else(|| env_nonempty(ENV_NAMESPACE));
        let mut d = Diagnostics::new();
        if let Some(ns) = &namespace
            && let Err(e) = flexus_api::validate_name("namespace", ns)
        {
            let diag = Diagnostic::error(
                "Invalid namespace",
                format!(
                    "{}{}",
                    e.message,
                    if c.namespace.is_none() {
                        " (from FLEXUS_NAMESPACE)"
                    } else {
                        ""
                    }
                ),
            );
            d.push(if c.namespace.is_some() {
                diag.at(AttrPath::new("namespace"))
            } else {
                diag
            });
        }
        let request_timeout = match &c.request_timeout {
            None => Duration::from_secs(30),
            Some(t) => {
                match flexus_policy::parse_duration(t) {
                    Ok(v) if !v.is_zero() => v,
                    _ => {
                        d.error_at(
                        AttrPath::new("request_timeout"),
                        "Invalid request timeout",
                        format!("request_timeout must be a positive duration such as \"30s\", got {t:?}"),
                    );
                        Duration::from_secs(30)
                    }
                }
            }
        };
        let max_retries = u32::try_from(c.max_retries.unwrap_or(4)).unwrap_or(4);
        let client = match Client::new(&endpoint, token) {
            Ok(cl) => Some(cl),
            Err(e) => {
                let diag = Diagnostic::error(
                    "Invalid endpoint",
                    format!(
                        "{e}{}",
                        if endpoint_from_env {
                            " (from FLEXUS_ENDPOINT)"
                        } else {
                            ""
                        }
                    ),
                );
                d.push(if endpoint_from_env {
                    diag
                } else {
                    diag.at(AttrPath::new("endpoint"))
                });
                None
            }
        };
        d.clone().into_result()?;
        let client = client.ok_or(d)?;
        tracing::debug!(endpoint = %endpoint, namespace = ?namespace, "flexus provider configured");
        Ok(Flexus {
            client,
            namespace,
            request_timeout,
            max_retries,
            plan: PlanFacts::default(),
        })
    }

    fn resources(&self) -> Result<Resources<Flexus>, tfplugin::Error> {
        Resources::new()
            .with(crate::pool::PoolResource)?
            .with(crate::policy::PolicyResource)
    }

    fn data_sources(&self) -> Result<DataSources<Flexus>, tfplugin::Error> {
        DataSources::new()
            .with(crate::pool_data::PoolDataSource)?
            .with(crate::flavors_data::FlavorsDataSource)?
            .with(crate::simulation::SimulationDataSource)?
            .with(crate::recommendation::RecommendationDataSource)
    }
}

impl Flexus {
    /// A configured client for tests and tools.
    pub fn new(client: Client, namespace: Option<String>) -> Flexus {
        Flexus {
            client,
            namespace,
            request_timeout: Duration::from_secs(30),
            max_retries: 4,
            plan: PlanFacts::default(),
        }
    }

    /// The namespace of an object: its own, else the provider's.
    pub fn namespace_for(&self, own: Option<&str>) -> Result<String, Diagnostics> {
        match own.map(str::to_string).or_else(|| self.namespace.clone()) {
            Some(ns) => Ok(ns),
            None => Err(Diagnostic::error(
                "No namespace",
                "set `namespace` on the resource, on the provider block, or in FLEXUS_NAMESPACE",
            )
            .at(AttrPath::new("namespace"))
            .into()),
        }
    }

    /// Splits an import id `namespace/name` (or `name` with the provider's namespace).
    pub fn split_id(&self, id: &str) -> Result<(String, String), Diagnostics> {
        let bad = || -> Diagnostics {
            Diagnostic::error(
                "Invalid import id",
                format!("import id {id:?} must be written <namespace>/<name> (or <name> when the provider sets a namespace)"),
            )
            .into()
        };
        match id.split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
                Ok((ns.to_string(), name.to_string()))
            }
            Some(_) => Err(bad()),
            None if !id.is_empty() => {
                Ok((self.namespace_for(None).map_err(|_| bad())?, id.to_string()))
            }
            None => Err(bad()),
        }
    }

    /// A lookup made while planning: one attempt, no retries. `None` when the agent cannot
    /// be reached (then later lookups of this process are skipped too): plan-time checks
    /// are a courtesy, apply checks again.
    pub async fn lookup<T, F, Fut>(&self, f: F) -> Option<Result<T, ClientError>>
    where
        F: FnOnce(Client) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        if self.plan.unreachable.load(Ordering::Relaxed) {
            return None;
        }
        match tokio::time::timeout(self.request_timeout, f(self.client.clone())).await {
            Ok(Err(ClientError::Transport { .. })) | Err(_) => {
                tracing::debug!(
                    "the agent did not answer a plan-time lookup; skipping plan-time checks"
                );
                self.plan.unreachable.store(true, Ordering::Relaxed);
                None
            }
            Ok(r) => Some(r),
        }
    }

    /// The flavors the cloud offers (asked once per process; `None` if unknown).
    pub async fn offered_flavors(&self) -> Option<Arc<Vec<FlavorInfo>>> {
        self.plan
            .flavors
            .get_or_init(|| async {
                match self.lookup(|c| async move { c.list_flavors().await }).await {
                    Some(Ok(f)) => Some(Arc::new(f)),
                    _ => None,
                }
            })
            .await
            .clone()
    }

    /// The project's instance quota (asked once per process; `None` if unknown).
    pub async fn quota(&self) -> Option<QuotaInfo> {
        *self
            .plan
            .quota
            .get_or_init(|| async {
                match self.lookup(|c| async move { c.quota().await }).await {
                    Some(Ok(q)) => Some(q),
                    _ => None,
                }
            })
            .await
    }

    /// The image with this id (asked once per id and process): `Some(None)` when the
    /// project has no such image, `None` when that is unknown.
    pub async fn image(&self, id: &str) -> Option<Option<ImageInfo>> {
        if let Some(known) = self.plan.images.lock().ok()?.get(id) {
            return Some(known.clone());
        }
        let asked = id.to_string();
        let found = match self
            .lookup(|c| async move { c.get_image(&asked).await })
            .await
        {
            Some(Ok(found)) => found,
            _ => return None,
        };
        if let Ok(mut m) = self.plan.images.lock() {
            m.insert(id.to_string(), found.clone());
        }
        Some(found)
    }

    /// Records the bounds a pool is planned with (for the plan of its policy).
    pub fn plan_pool_bounds(&self, ns: &str, name: &str, bounds: (u32, u32)) {
        if let Ok(mut m) = self.plan.pools.lock() {
            m.insert((ns.to_string(), name.to_string()), bounds);
        }
    }

    /// The bounds a pool was planned with in this process, if it was.
    pub fn planned_pool_bounds(&self, ns: &str, name: &str) -> Option<(u32, u32)> {
        self.plan
            .pools
            .lock()
            .ok()?
            .get(&(ns.to_string(), name.to_string()))
            .copied()
    }

    /// Runs one idempotent agent call with the request timeout, retrying transient failures
    /// with exponential backoff (200 ms, 400 ms, ... capped at 5 s).
    pub async fn call<T, F, Fut>(&self, what: &str, f: F) -> Result<T, ProviderError>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        self.call_retrying(what, Retry::Transient, f).await
    }

    /// Runs a call that is not idempotent (a `POST` that starts a job): retried only when
    /// the agent refused it and says so (429, 503: nothing was stored), never after a
    /// transport failure or a timeout, which may come after the agent accepted it.
    pub async fn call_once<T, F, Fut>(&self, what: &str, f: F) -> Result<T, ProviderError>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        self.call_retrying(what, Retry::Refused, f).await
    }

    async fn call_retrying<T, F, Fut>(
        &self,
        what: &str,
        retry: Retry,
        f: F,
    ) -> Result<T, ProviderError>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let mut attempt = 0u32;
        loop {
            let outcome = tokio::time::timeout(self.request_timeout, f(self.client.clone())).await;
            let err = match outcome {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) => {
                    let again = match retry {
                        Retry::Transient => is_transient(&e),
                        Retry::Refused => is_refusal(&e),
                    };
                    let err = ProviderError::Api {
                        what: what.to_string(),
                        source: e,
                    };
                    if !again {
                        return Err(err);
                    }
                    err
                }
                Err(_) => {
                    let err = ProviderError::Timeout {
                        what: what.to_string(),
                        after: self.request_timeout,
                    };
                    if retry == Retry::Refused {
                        return Err(err);
                    }
                    err
                }
            };
            if attempt >= self.max_retries {
                return Err(err);
            }
            let backoff = Duration::from_millis(200u64.saturating_mul(1 << attempt.min(5)))
                .min(Duration::from_secs(5));
            tracing::debug!(
                what,
                attempt,
                ?backoff,
                "transient agent failure, retrying: {err}"
            );
            tokio::time::sleep(backoff).await;
            attempt += 1;
        }
    }

    /// [`call`](Self::call) on an object that may be gone (a read, a delete): the agent's
    /// "not found" is `Ok(None)`.
    pub async fn call_if_exists<T, F, Fut>(
        &self,
        what: &str,
        f: F,
    ) -> Result<Option<T>, ProviderError>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        match self.call(what, f).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Which failures [`Flexus::call_retrying`] tries again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Transport failures, timeouts, 429 and 5xx (idempotent calls).
    Transient,
    /// Only the agent's explicit refusals (429, 503), where nothing was stored.
    Refused,
}

fn is_refusal(e: &ClientError) -> bool {
    matches!(e, ClientError::Api(f) if f.status == 429 || f.status == 503)
}

fn is_transient(e: &ClientError) -> bool {
    match e {
        ClientError::Transport { .. } => true,
        // As hashicorp/go-retryablehttp (what the Go SDKs use): 429 and every 5xx but 501.
        // Safe for the idempotent calls (GET, PUT, DELETE); a POST goes through `call_once`.
        ClientError::Api(f) => f.status == 429 || (f.status >= 500 && f.status != 501),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A loopback HTTP server answering its requests, in turn, with `statuses` (the last
    /// one from then on): a tune job for a 2xx, a plain-text error otherwise. Counts them.
    async fn scripted(statuses: Vec<u16>) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(AtomicUsize::new(0));
        let count = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let n = count.fetch_add(1, Ordering::SeqCst);
                let status = statuses[n.min(statuses.len() - 1)];
                let mut buf = vec![0u8; 8192];
                let _ = sock.read(&mut buf).await;
                let body = if status < 300 {
                    r#"{"id":"tune-1","pool":"ns/p","state":"running","created_at":"t","request":{}}"#
                } else {
                    "refused"
                };
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(reply.as_bytes()).await;
            }
        });
        (url, seen)
    }

    fn flexus(url: &str) -> Flexus {
        Flexus {
            client: Client::new(url, Some("token".into())).unwrap(),
            namespace: None,
            request_timeout: Duration::from_secs(10),
            max_retries: 3,
            plan: PlanFacts::default(),
        }
    }

    async fn tune_job(f: &Flexus, once: bool) -> Result<flexus_api::TuneJob, ProviderError> {
        let call = |c: Client| async move { c.tune_job("ns", "p", "tune-1").await };
        if once {
            f.call_once("tune", call).await
        } else {
            f.call("tune", call).await
        }
    }

    #[tokio::test]
    async fn a_call_that_is_not_idempotent_is_retried_only_when_the_agent_refused_it() {
        // A 500 may come after the agent stored the job: no second request.
        let (url, seen) = scripted(vec![500, 202]).await;
        assert!(tune_job(&flexus(&url), true).await.is_err());
        assert_eq!(seen.load(Ordering::SeqCst), 1);
        // An idempotent call tries again after the same 500.
        let (url, seen) = scripted(vec![500, 202]).await;
        assert_eq!(tune_job(&flexus(&url), false).await.unwrap().id, "tune-1");
        assert_eq!(seen.load(Ordering::SeqCst), 2);
        // 503 and 429 say nothing was stored: tried again, then answered.
        let (url, seen) = scripted(vec![503, 429, 202]).await;
        assert_eq!(tune_job(&flexus(&url), true).await.unwrap().id, "tune-1");
        assert_eq!(seen.load(Ordering::SeqCst), 3);
        // At most max_retries more, then the refusal is the error.
        let (url, seen) = scripted(vec![503]).await;
        assert!(tune_job(&flexus(&url), true).await.is_err());
        assert_eq!(seen.load(Ordering::SeqCst), 4);
    }
}
