//! Client configuration: endpoints, region, project, timeouts, retries and rate limits.

use std::time::Duration;

use backon::ExponentialBuilder;
use url::Url;

use crate::error::{CloudError, ErrorKind};

/// How failed calls are retried (throttling, 5xx and timeouts only).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Total attempts including the first (1 = no retries).
    pub max_attempts: u32,
    /// Delay before the first retry; doubles each time.
    pub base_delay: Duration,
    /// Upper bound of one delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The delays between attempts (`max_attempts - 1` of them): exponential from
    /// `base_delay`, capped at `max_delay`, with "equal jitter" (each delay half fixed,
    /// half random, in `[d/2, d)`) so concurrent clients spread out. backon's jitter adds
    /// up to the delay again, so the schedule starts from half of each bound.
    pub fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::new()
            .with_min_delay(self.base_delay.min(self.max_delay) / 2)
            .with_max_delay(self.max_delay / 2)
            .with_factor(2.0)
            .with_max_times(self.max_attempts.saturating_sub(1) as usize)
            .with_jitter()
    }
}

/// Client-side token buckets, separate for reads and writes (Huawei throttles per API
/// and per user; `APIGW.0308`).
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimits {
    /// Sustained read calls per second (GET). `0` disables the limit.
    pub reads_per_second: f64,
    /// Sustained write calls per second (POST/PUT/DELETE). `0` disables the limit.
    pub writes_per_second: f64,
    /// Bucket size: calls allowed in a burst.
    pub burst: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            reads_per_second: 20.0,
            writes_per_second: 5.0,
            burst: 10,
        }
    }
}

impl RateLimits {
    /// No client-side limit (benchmarks, tests).
    pub fn unlimited() -> Self {
        Self {
            reads_per_second: 0.0,
            writes_per_second: 0.0,
            burst: 1,
        }
    }
}

/// Everything the client needs besides credentials.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientConfig {
    /// ECS base URL, e.g. `https://ecs.cn-north-4.myhuaweicloud.com` or the emulator's.
    pub ecs_endpoint: Url,
    /// CES base URL, e.g. `https://ces.cn-north-4.myhuaweicloud.com` (the emulator
    /// serves both on one base URL).
    pub ces_endpoint: Url,
    /// IMS (image service) base URL, e.g. `https://ims.cn-north-4.myhuaweicloud.com`.
    pub ims_endpoint: Url,
    /// Region id, e.g. `cn-north-4`.
    pub region: String,
    /// The 32-hex project id of that region.
    pub project_id: String,
    /// Timeout of one HTTP attempt.
    pub request_timeout: Duration,
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Client-side rate limits.
    pub rate_limits: RateLimits,
    /// `User-Agent` header.
    pub user_agent: String,
}

impl ClientConfig {
    /// Public Huawei Cloud endpoints of a region.
    pub fn for_region(region: &str, project_id: &str) -> Result<Self, CloudError> {
        let ecs = parse_url(
            "ecs_endpoint",
            &format!("https://ecs.{region}.myhuaweicloud.com"),
        )?;
        let ces = parse_url(
            "ces_endpoint",
            &format!("https://ces.{region}.myhuaweicloud.com"),
        )?;
        let mut c = Self::with_endpoints(ecs, ces, region, project_id);
        c.ims_endpoint = parse_url(
            "ims_endpoint",
            &format!("https://ims.{region}.myhuaweicloud.com"),
        )?;
        Ok(c)
    }

    /// One base URL for every service (the emulator).
    pub fn single_endpoint(base: &str, region: &str, project_id: &str) -> Result<Self, CloudError> {
        let url = parse_url("endpoint", base)?;
        Ok(Self::with_endpoints(url.clone(), url, region, project_id))
    }

    /// Explicit endpoints with default timeouts, retries and limits (IMS on the ECS base
    /// URL; set `ims_endpoint` for another).
    pub fn with_endpoints(ecs: Url, ces: Url, region: &str, project_id: &str) -> Self {
        Self {
            ims_endpoint: ecs.clone(),
            ecs_endpoint: ecs,
            ces_endpoint: ces,
            region: region.to_string(),
            project_id: project_id.to_string(),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            rate_limits: RateLimits::default(),
            user_agent: format!("flexus-cloud/{}", env!("CARGO_PKG_VERSION")),
        }
    }

    /// Checks every field and reports all problems at once.
    pub fn validate(&self) -> Result<(), CloudError> {
        let mut problems = Vec::new();
        for (name, url) in [
            ("ecs_endpoint", &self.ecs_endpoint),
            ("ces_endpoint", &self.ces_endpoint),
            ("ims_endpoint", &self.ims_endpoint),
        ] {
            if !matches!(url.scheme(), "http" | "https") {
                problems.push(format!(
                    "{name} must be http:// or https://, got {}",
                    url.scheme()
                ));
            }
            if url.host_str().is_none() {
                problems.push(format!("{name} has no host"));
            }
        }
        if self.project_id.is_empty()
            || !self
                .project_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            problems.push(format!(
                "project_id must be a non-empty id of letters and digits, got {:?}",
                self.project_id
            ));
        }
        if self.region.is_empty() {
            problems.push("region must not be empty".to_string());
        }
        if self.request_timeout.is_zero() {
            problems.push("request_timeout must be positive".to_string());
        }
        if self.retry.max_attempts == 0 {
            problems.push("retry.max_attempts must be at least 1".to_string());
        }
        for (name, v) in [
            (
                "rate_limits.reads_per_second",
                self.rate_limits.reads_per_second,
            ),
            (
                "rate_limits.writes_per_second",
                self.rate_limits.writes_per_second,
            ),
        ] {
            if !v.is_finite() || v < 0.0 {
                problems.push(format!("{name} must be a finite number >= 0, got {v}"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(CloudError::local(
                ErrorKind::Config,
                "client_config",
                problems.join("; "),
            ))
        }
    }
}

fn parse_url(field: &str, s: &str) -> Result<Url, CloudError> {
    Url::parse(s).map_err(|e| {
        CloudError::local(
            ErrorKind::Config,
            "client_config",
            format!("{field} {:?} is not a url: {e}", crate::redact_url(s)),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_endpoints_follow_the_service_region_pattern() {
        let c = ClientConfig::for_region("cn-north-4", "0123456789abcdef0123456789abcdef")
            .expect("cfg");
        assert_eq!(
            c.ecs_endpoint.as_str(),
            "https://ecs.cn-north-4.myhuaweicloud.com/"
        );
        assert_eq!(
            c.ces_endpoint.as_str(),
            "https://ces.cn-north-4.myhuaweicloud.com/"
        );
        c.validate().expect("valid");
    }

    #[test]
    fn validate_reports_every_problem_at_once() {
        let mut c = ClientConfig::single_endpoint("ftp://x", "", "bad/id").expect("cfg");
        c.retry.max_attempts = 0;
        let err = c.validate().expect_err("invalid");
        for needle in ["ecs_endpoint", "project_id", "region", "max_attempts"] {
            assert!(err.message.contains(needle), "{needle} in {}", err.message);
        }
    }

    #[test]
    fn backoff_grows_exponentially_is_capped_and_jittered() {
        use backon::BackoffBuilder as _;
        let p = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
        };
        let ms = Duration::from_millis;
        // Each retry's delay d is in [d/2, d) for d = 100, 200, 400, 800 ms; then no more.
        let mut seen_jitter = false;
        for _ in 0..50 {
            let delays: Vec<Duration> = p.backoff().build().collect();
            assert_eq!(delays.len(), 4, "max_attempts - 1 retries: {delays:?}");
            for (d, full) in delays.iter().zip([100, 200, 400, 800]) {
                assert!(*d >= ms(full / 2) && *d < ms(full), "{d:?} for {full} ms");
            }
            seen_jitter |= delays[0] != ms(50);
        }
        assert!(seen_jitter, "delays are jittered");
        // The cap holds from the first delay on, whatever the base.
        let capped = RetryPolicy {
            max_attempts: 12,
            base_delay: Duration::from_secs(10),
            max_delay: Duration::from_millis(1000),
        };
        assert!(capped.backoff().build().all(|d| d < ms(1000)));
        let once = RetryPolicy {
            max_attempts: 1,
            ..capped
        };
        assert_eq!(once.backoff().build().count(), 0, "one attempt, no retry");
    }

    #[test]
    fn an_endpoint_that_is_not_a_url_is_named_without_its_password() {
        let e = ClientConfig::single_endpoint("http//ak:hunter2@emulator:8480", "r", "p")
            .expect_err("not a url");
        assert!(e.message.contains("\"***@emulator:8480\""), "{}", e.message);
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
}
