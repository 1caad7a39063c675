//! Metric sources: Cloud Eye (through `flexus-cloud`), Prometheus (HTTP query API) and
//! Redis (list length or numeric key). Each returns the latest value with the time it
//! was measured; a missing value is `None`, never zero.

use std::sync::Arc;
use std::time::Duration;

use flexus_cloud::{BatchMetricQuery, Cloud, Dimension, Filter, MetricId};
use tokio::sync::Mutex;

use crate::clock::Millis;

/// Errors of reading a signal.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("metric source {source_kind} is not configured in agent.toml (metrics.{source_kind})")]
    NotConfigured { source_kind: &'static str },
    #[error("prometheus query {query:?} failed: {message}")]
    Prometheus { query: String, message: String },
    #[error("redis read of key {key:?} failed: {message}")]
    Redis { key: String, message: String },
    #[error("cloud eye query of {metric} failed: {source}")]
    CloudEye {
        metric: String,
        #[source]
        source: Box<flexus_cloud::CloudError>,
    },
}

/// One reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub value: f64,
    pub at: Millis,
}

/// Prometheus client over the HTTP API (`GET /api/v1/query`).
#[derive(Debug, Clone)]
pub struct Prometheus {
    base: String,
    http: reqwest::Client,
}

impl Prometheus {
    pub fn new(base: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self {
            base: base.trim_end_matches('/').to_owned(),
            http,
        }
    }

    /// A failed request, naming the server without credentials written into its URL.
    fn transport_error(&self, e: reqwest::Error) -> String {
        let e = e.without_url();
        let cause = std::error::Error::source(&e)
            .map(|s| format!(": {s}"))
            .unwrap_or_default();
        format!(
            "{e}{cause} (prometheus at {})",
            flexus_cloud::redact_url(&self.base)
        )
    }

    /// The single number a PromQL query returns (the first sample of a vector, or a scalar).
    pub async fn query(&self, query: &str) -> Result<Option<Reading>, SourceError> {
        let err = |message: String| SourceError::Prometheus {
            query: query.to_owned(),
            message,
        };
        let resp = self
            .http
            .get(format!("{}/api/v1/query", self.base))
            .query(&[("query", query)])
            .send()
            .await
            .map_err(|e| err(self.transport_error(e)))?;
        let status = resp.status();
        let body: serde_json::Value = resp
            .json()
            .await
            .map_err(|e| err(self.transport_error(e)))?;
        if !status.is_success() || body["status"] != "success" {
            return Err(err(format!(
                "http {status}: {}",
                body["error"].as_str().unwrap_or("unexpected answer")
            )));
        }
        let data = &body["data"];
        let sample = match data["resultType"].as_str() {
            Some("vector") => data["result"].get(0).map(|r| &r["value"]),
            Some("scalar") => Some(&data["result"]),
            other => {
                return Err(err(format!(
                    "result type {other:?} is not a vector or scalar"
                )));
            }
        };
        let Some(sample) = sample else {
            return Ok(None);
        };
        let at = sample[0]
            .as_f64()
            .ok_or_else(|| err("sample has no timestamp".into()))?;
        let value = sample[1]
            .as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .ok_or_else(|| err("sample value is not a number".into()))?;
        if !value.is_finite() {
            return Ok(None);
        }
        Ok(Some(Reading {
            value,
            at: (at * 1000.0) as i64,
        }))
    }
}

/// Redis reader: `LLEN key`, or `GET key` parsed as a number when the key is a string.
pub struct Redis {
    client: redis::Client,
    conn: Mutex<Option<redis::aio::MultiplexedConnection>>,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis").finish_non_exhaustive()
    }
}

impl Redis {
    pub fn new(url: &str) -> Result<Self, SourceError> {
        let client = redis::Client::open(url).map_err(|e| SourceError::Redis {
            key: String::new(),
            message: format!("invalid url {:?}: {e}", flexus_cloud::redact_url(url)),
        })?;
        Ok(Self {
            client,
            conn: Mutex::new(None),
        })
    }

    async fn connection(
        &self,
        key: &str,
    ) -> Result<redis::aio::MultiplexedConnection, SourceError> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.as_ref() {
            return Ok(c.clone());
        }
        let c = self
            .client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| redis_error(key, e.to_string()))?;
        *guard = Some(c.clone());
        Ok(c)
    }

    /// The length of list `key` (0 when absent), or the number stored in string `key`.
    pub async fn read(&self, key: &str, now: Millis) -> Result<Option<Reading>, SourceError> {
        let mut conn = self.connection(key).await?;
        let kind: String = query(&mut conn, "TYPE", key)
            .await
            .inspect_err(|_| self.reset())?;
        let value = match kind.as_str() {
            "list" | "none" => query::<i64>(&mut conn, "LLEN", key).await? as f64,
            "string" => {
                let s: String = query(&mut conn, "GET", key).await?;
                s.trim()
                    .parse::<f64>()
                    .map_err(|_| redis_error(key, format!("value {s:?} is not a number")))?
            }
            other => {
                return Err(redis_error(
                    key,
                    format!("key holds a {other}, not a list or a number"),
                ));
            }
        };
        Ok(Some(Reading { value, at: now }))
    }

    fn reset(&self) {
        if let Ok(mut g) = self.conn.try_lock() {
            *g = None;
        }
    }
}

/// `{command} key` on `conn`, its answer as `T`; a failure names the key.
async fn query<T: redis::FromRedisValue>(
    conn: &mut redis::aio::MultiplexedConnection,
    command: &str,
    key: &str,
) -> Result<T, SourceError> {
    redis::cmd(command)
        .arg(key)
        .query_async(conn)
        .await
        .map_err(|e| redis_error(key, e.to_string()))
}

fn redis_error(key: &str, message: String) -> SourceError {
    SourceError::Redis {
        key: key.to_owned(),
        message,
    }
}

/// Cloud Eye reader: the mean over the given instances of each one's latest point.
#[derive(Debug, Clone)]
pub struct CloudEye {
    pub period: u32,
    pub lookback: Duration,
}

impl CloudEye {
    /// Through `cloud` (the calling namespace's share of the account).
    pub async fn mean_latest(
        &self,
        cloud: &dyn Cloud,
        namespace: &str,
        metric_name: &str,
        instance_ids: &[String],
        now: Millis,
    ) -> Result<Option<Reading>, SourceError> {
        if instance_ids.is_empty() {
            return Ok(None);
        }
        let mut sum = 0.0;
        let mut n = 0usize;
        let mut newest = i64::MIN;
        for chunk in instance_ids.chunks(500) {
            let q = BatchMetricQuery {
                metrics: chunk
                    .iter()
                    .map(|id| MetricId {
                        namespace: namespace.to_owned(),
                        metric_name: metric_name.to_owned(),
                        dimensions: vec![Dimension::new("instance_id", id.clone())],
                    })
                    .collect(),
                from_ms: now - self.lookback.as_millis() as i64,
                to_ms: now,
                period: self.period,
                filter: Filter::Average,
            };
            let series =
                cloud
                    .batch_query_metrics(&q)
                    .await
                    .map_err(|source| SourceError::CloudEye {
                        metric: format!("{namespace}/{metric_name}"),
                        source: Box::new(source),
                    })?;
            for s in series {
                if let Some(p) = s.datapoints.iter().max_by_key(|p| p.timestamp_ms) {
                    sum += p.value;
                    n += 1;
                    newest = newest.max(p.timestamp_ms);
                }
            }
        }
        if n == 0 {
            return Ok(None);
        }
        Ok(Some(Reading {
            value: sum / n as f64,
            at: newest,
        }))
    }
}

/// The configured sources.
#[derive(Debug, Clone)]
pub struct Sources {
    pub cloud_eye: CloudEye,
    pub prometheus: Option<Prometheus>,
    pub redis: Option<Arc<Redis>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_prometheus_that_does_not_answer_is_named_without_its_password() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let p = Prometheus::new(&format!("http://flexus:hunter2@127.0.0.1:{port}"));
        let e = p
            .query("up")
            .await
            .expect_err("nothing listens")
            .to_string();
        assert!(
            e.contains(&format!("(prometheus at http://***@127.0.0.1:{port})")),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn a_redis_url_that_does_not_parse_is_named_without_its_password() {
        for url in ["redis://:hunter2@cache:port", "redis//:hunter2@cache:6379"] {
            let e = Redis::new(url).expect_err("not a url").to_string();
            assert!(e.contains("***@cache"), "{e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }
}
