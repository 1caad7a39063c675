//! Is the cloud there, and does it take our credentials?
//!
//! One cheap signed read (a server list filtered by a tag no server carries) tells both:
//! a wrong endpoint or port fails to connect, a wrong key pair or project gets 401/403.
//! `flexus-agent check-config` runs it once; the running agent runs it every
//! [`PROBE_INTERVAL`] and `/readyz` reports the last outcome, so a misconfigured cloud
//! shows where an operator looks instead of only on the agent's stderr.

use std::sync::Mutex;
use std::time::Duration;

use flexus_cloud::{Cloud, CloudError, ErrorKind, ServerFilter};
use tokio_util::sync::CancellationToken;

/// How often the running agent checks the cloud.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(30);
/// How long one check may take (the client retries transient failures within it).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// The tag the probe filters on; no instance carries it, so the answer is an empty list.
const PROBE_TAG: (&str, &str) = ("flexus-probe", "none");

/// One check: `Ok` when the cloud answered a signed read; otherwise what an operator must
/// fix, in words (never the credentials themselves).
pub async fn check(cloud: &dyn Cloud) -> Result<(), String> {
    let filter = ServerFilter {
        tags: vec![(PROBE_TAG.0.into(), PROBE_TAG.1.into())],
        page_size: Some(1),
        ..ServerFilter::default()
    };
    match tokio::time::timeout(PROBE_TIMEOUT, cloud.list_servers(&filter)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(explain(&e)),
        Err(_) => Err(format!(
            "the cloud endpoint did not answer a server list within {}s (wrong cloud.endpoint, or the endpoint is down)",
            PROBE_TIMEOUT.as_secs()
        )),
    }
}

fn explain(e: &CloudError) -> String {
    let hint = match e.kind {
        ErrorKind::Unauthorized => {
            "the cloud refused the credentials (check HUAWEICLOUD_SDK_AK / HUAWEICLOUD_SDK_SK and cloud.project_id)"
        }
        ErrorKind::Transient => {
            "the cloud endpoint cannot be reached (check cloud.endpoint: host and port)"
        }
        ErrorKind::Config => "the cloud client is misconfigured",
        ErrorKind::NotFound | ErrorKind::Invalid | ErrorKind::Protocol => {
            "the endpoint does not answer like the ECS API (check cloud.endpoint and cloud.project_id)"
        }
        _ => "the cloud answered a server list with an error",
    };
    format!("{hint}: {e}")
}

/// The outcome of the last check, shared with `/readyz`.
#[derive(Debug, Default)]
pub struct CloudProbe {
    last: Mutex<Option<Result<(), String>>>,
}

impl CloudProbe {
    /// The reason the cloud is unusable, if the last check failed.
    pub fn problem(&self) -> Option<String> {
        match &*self.last.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(Err(reason)) => Some(format!("cloud: {reason}")),
            _ => None,
        }
    }

    fn record(&self, outcome: Result<(), String>) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
    }

    /// Checks now and then every `interval` until `shutdown`; logs each change.
    pub async fn run(&self, cloud: &dyn Cloud, interval: Duration, shutdown: CancellationToken) {
        let mut was_ok = None;
        loop {
            let outcome = check(cloud).await;
            let ok = outcome.is_ok();
            if was_ok != Some(ok) {
                match &outcome {
                    Ok(()) => tracing::info!("cloud endpoint answers and accepts the credentials"),
                    Err(reason) => tracing::error!(%reason, "cloud check failed"),
                }
                was_ok = Some(ok);
            }
            self.record(outcome);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unauthorized_answer_names_the_credentials_without_showing_them() {
        let e = CloudError::local(ErrorKind::Unauthorized, "list_servers", "APIGW.0301");
        let msg = explain(&e);
        assert!(msg.contains("HUAWEICLOUD_SDK_AK"), "{msg}");
        let probe = CloudProbe::default();
        assert_eq!(probe.problem(), None);
        probe.record(Err(msg));
        assert!(probe.problem().is_some_and(|p| p.starts_with("cloud: ")));
        probe.record(Ok(()));
        assert_eq!(probe.problem(), None);
    }
}
