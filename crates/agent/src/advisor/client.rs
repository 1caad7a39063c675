//! An OpenAI-compatible chat-completions client for DeepSeek: bearer key (never logged),
//! JSON output mode, a total deadline per call (keep-alive blank lines do not extend it),
//! retries with backoff (backon) on 429/500/502/503/504 and transport errors, and nothing else retried.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable as _};
use serde_json::{Value, json};

use crate::config::Secret;

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LlmError {
    #[error("the advisor's api key was refused (401): {0}")]
    Unauthorized(String),
    #[error("the advisor's account has no balance left (402): {0}")]
    InsufficientBalance(String),
    #[error("the model refused the request ({status}): {message}")]
    Refused { status: u16, message: String },
    #[error("no answer after {attempts} attempt(s): {last}")]
    Unavailable { attempts: u32, last: String },
    #[error("no answer within the deadline of {0:?}")]
    Timeout(Duration),
    #[error("the answer is not a chat completion: {0}")]
    Malformed(String),
    #[error("the answer was empty")]
    EmptyContent,
    #[error("the answer was cut off at max_tokens (finish_reason length)")]
    Truncated,
}

/// One answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub content: String,
    pub total_tokens: u64,
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct LlmConfig {
    /// e.g. `https://api.deepseek.com` (a trailing `/v1` is accepted).
    pub base_url: String,
    pub model: String,
    pub api_key: Secret,
    /// Total deadline of one call, retries included.
    pub timeout: Duration,
    /// Attempts per call (1 = no retry).
    pub attempts: u32,
    /// First backoff; doubled per retry.
    pub backoff: Duration,
    pub max_tokens: u32,
}

/// The client.
#[derive(Debug, Clone)]
pub struct LlmClient {
    config: LlmConfig,
    http: reqwest::Client,
}

/// How one attempt ended without an answer.
enum Attempt {
    /// Worth another attempt; the text says why.
    Again(String),
    /// Nothing to retry.
    Final(LlmError),
}

fn retryable(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

fn error_message(body: &str) -> String {
    serde_json::from_str::<Value>(body.trim())
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| body.trim().chars().take(200).collect())
}

impl LlmClient {
    pub fn new(config: LlmConfig) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("cannot build the advisor's http client: {e}"))?;
        Ok(Self { config, http })
    }

    pub fn model(&self) -> &str {
        &self.config.model
    }

    fn url(&self) -> String {
        format!(
            "{}/chat/completions",
            self.config.base_url.trim_end_matches('/')
        )
    }

    /// Ask once per attempt until an answer, a final error, or the deadline.
    pub async fn complete(
        &self,
        system: &str,
        user: &str,
        json_mode: bool,
    ) -> Result<Completion, LlmError> {
        let deadline = self.config.timeout;
        match tokio::time::timeout(deadline, self.attempts(system, user, json_mode)).await {
            Ok(r) => r,
            Err(_) => Err(LlmError::Timeout(deadline)),
        }
    }

    async fn attempts(
        &self,
        system: &str,
        user: &str,
        json_mode: bool,
    ) -> Result<Completion, LlmError> {
        let mut body = json!({
            "model": self.config.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "max_tokens": self.config.max_tokens,
            "temperature": 0.0,
            "stream": false,
        });
        if json_mode {
            body["response_format"] = json!({"type": "json_object"});
        }
        let attempts = self.config.attempts.max(1);
        // `backoff`, doubled per retry up to 256 times it.
        let schedule = ExponentialBuilder::new()
            .with_min_delay(self.config.backoff)
            .with_max_delay(self.config.backoff.saturating_mul(1 << 8))
            .with_factor(2.0)
            .with_max_times(attempts as usize - 1);
        let mut failed = 0u32;
        let outcome = (|| self.attempt(&body, json_mode))
            .retry(schedule)
            .when(|a: &Attempt| matches!(a, Attempt::Again(_)))
            .notify(|a: &Attempt, _| {
                failed += 1;
                if let Attempt::Again(why) = a {
                    tracing::warn!(attempt = failed, error = %why, "advisor call failed; retrying");
                }
            })
            .await;
        match outcome {
            Ok(c) => Ok(c),
            Err(Attempt::Final(e)) => Err(e),
            Err(Attempt::Again(last)) => Err(LlmError::Unavailable { attempts, last }),
        }
    }

    /// One request: an answer, a final error, or a reason worth another attempt
    /// (429/5xx, transport).
    async fn attempt(&self, body: &Value, json_mode: bool) -> Result<Completion, Attempt> {
        let (status, text) = self.once(body).await.map_err(Attempt::Again)?;
        match status {
            200..=299 => parse(&text, json_mode).map_err(Attempt::Final),
            401 => Err(Attempt::Final(LlmError::Unauthorized(error_message(&text)))),
            402 => Err(Attempt::Final(LlmError::InsufficientBalance(
                error_message(&text),
            ))),
            s if retryable(s) => Err(Attempt::Again(format!("{s}: {}", error_message(&text)))),
            s => Err(Attempt::Final(LlmError::Refused {
                status: s,
                message: error_message(&text),
            })),
        }
    }

    async fn once(&self, body: &Value) -> Result<(u16, String), String> {
        let mut auth = reqwest::header::HeaderValue::from_str(&format!(
            "Bearer {}",
            self.config.api_key.expose()
        ))
        .map_err(|_| "the api key contains characters not allowed in a header".to_owned())?;
        auth.set_sensitive(true);
        let r = self
            .http
            .post(self.url())
            .header(reqwest::header::AUTHORIZATION, auth)
            .json(body)
            .send()
            .await
            .map_err(|e| format!("transport: {}", e.without_url()))?;
        let status = r.status().as_u16();
        let text = r
            .text()
            .await
            .map_err(|e| format!("reading the answer: {}", e.without_url()))?;
        Ok((status, text))
    }
}

/// The content of a completion body (leading keep-alive blank lines skipped).
pub fn parse(text: &str, json_mode: bool) -> Result<Completion, LlmError> {
    let v: Value =
        serde_json::from_str(text.trim_start()).map_err(|e| LlmError::Malformed(e.to_string()))?;
    let choice = &v["choices"][0];
    if choice.is_null() {
        return Err(LlmError::Malformed("no choices".into()));
    }
    let total_tokens = v["usage"]["total_tokens"].as_u64().unwrap_or(0);
    if choice["finish_reason"].as_str() == Some("length") {
        return Err(LlmError::Truncated);
    }
    let content = choice["message"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if content.trim().is_empty() || (json_mode && content.trim() == "{}") {
        return Err(LlmError::EmptyContent);
    }
    Ok(Completion {
        content,
        total_tokens,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_alive_lines_are_skipped_and_bad_answers_are_named() {
        let ok = "\n\n{\"choices\":[{\"message\":{\"content\":\"hi\"},\"finish_reason\":\"stop\"}],\"usage\":{\"total_tokens\":7}}";
        assert_eq!(
            parse(ok, false).unwrap(),
            Completion {
                content: "hi".into(),
                total_tokens: 7
            }
        );
        let empty = "{\"choices\":[{\"message\":{\"content\":\"\"},\"finish_reason\":\"stop\"}]}";
        assert_eq!(parse(empty, true), Err(LlmError::EmptyContent));
        let cut =
            "{\"choices\":[{\"message\":{\"content\":\"{\\\"a\"},\"finish_reason\":\"length\"}]}";
        assert_eq!(parse(cut, true), Err(LlmError::Truncated));
        assert!(matches!(parse("<html>", true), Err(LlmError::Malformed(_))));
    }
}
