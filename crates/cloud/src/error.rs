//! Typed errors: every failure carries a kind the caller can act on, the service's
//! error code and request id when there was a response, and the operation that failed.

use serde::Deserialize;

/// What went wrong, coarsely enough to decide what to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The resource does not exist (404, `Ecs.0114`, `Ecs.0614`).
    NotFound,
    /// Throttled by the gateway (429, `APIGW.0308`). Retried automatically.
    Throttled,
    /// A quota (instances, vCPUs, RAM, EIPs, disks, balance) would be exceeded (`Ecs.0001`).
    Quota,
    /// The flavor is sold out or the AZ has no capacity (`Ecs.0018`, `Ecs.0319`).
    SoldOut,
    /// Authentication or authorisation failed (401/403, `APIGW.0301`, `APIGW.0303`).
    Unauthorized,
    /// The request itself is wrong (other 4xx). Never retried.
    Invalid,
    /// An idempotency token was reused with a different body (`Ecs.0122`).
    Conflict,
    /// 5xx, timeouts and connection failures. Retried automatically.
    Transient,
    /// The response could not be understood (bad JSON, missing field).
    Protocol,
    /// The client was configured wrongly (bad endpoint, missing credentials).
    Config,
}

impl ErrorKind {
    /// Whether the client retries this kind on its own.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorKind::Throttled | ErrorKind::Transient)
    }
}

/// An error from a Huawei Cloud call (or from preparing one).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{operation} failed ({kind:?}{}{}): {message}{}",
    .status.map(|s| format!(", http {s}")).unwrap_or_default(),
    .code.as_ref().map(|c| format!(", {c}")).unwrap_or_default(),
    .request_id.as_ref().map(|r| format!(" [request id {r}]")).unwrap_or_default())]
pub struct CloudError {
    /// The coarse kind.
    pub kind: ErrorKind,
    /// The service error code (`Ecs.0114`, `APIGW.0308`, ...), when the service sent one.
    pub code: Option<String>,
    /// Human-readable message (the service's, or ours).
    pub message: String,
    /// The `X-Request-Id` (or body `request_id`) of the failing response.
    pub request_id: Option<String>,
    /// HTTP status, when there was a response.
    pub status: Option<u16>,
    /// The operation that failed, e.g. `create_servers`.
    pub operation: String,
}

impl CloudError {
    /// An error raised on our side (no response involved).
    pub fn local(kind: ErrorKind, operation: &str, message: impl Into<String>) -> Self {
        Self {
            kind,
            code: None,
            message: message.into(),
            request_id: None,
            status: None,
            operation: operation.to_string(),
        }
    }

    /// Builds an error from an HTTP error response: parses any of the three body shapes.
    pub fn from_response(
        operation: &str,
        status: u16,
        header_request_id: Option<String>,
        body: &[u8],
    ) -> Self {
        let parsed = parse_error_body(body);
        let (code, message, body_rid) = match parsed {
            Some(p) => (p.code, p.message, p.request_id),
            None => (
                None,
                String::from_utf8_lossy(&body[..body.len().min(512)])
                    .trim()
                    .to_string(),
                None,
            ),
        };
        let message = if message.is_empty() {
            format!("http status {status}")
        } else {
            message
        };
        Self {
            kind: classify(status, code.as_deref()),
            code,
            message,
            request_id: header_request_id.or(body_rid),
            status: Some(status),
            operation: operation.to_string(),
        }
    }
}

/// The service error fields, whichever body shape carried them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorBody {
    /// Error code.
    pub code: Option<String>,
    /// Error message.
    pub message: String,
    /// Request id in the body, if any.
    pub request_id: Option<String>,
}

#[derive(Deserialize)]
struct Shape {
    error_code: Option<String>,
    error_msg: Option<String>,
    code: Option<serde_json::Value>,
    message: Option<String>,
    request_id: Option<String>,
    error: Option<Nested>,
}

#[derive(Deserialize)]
struct Nested {
    code: Option<String>,
    message: Option<String>,
}

fn looks_like_code(s: &str) -> bool {
    // `Ecs.0114`, `APIGW.0308`, `AS.2007`, `CES.0014`...
    match s.split_once('.') {
        Some((a, b)) => {
            !a.is_empty()
                && a.chars().all(|c| c.is_ascii_alphabetic())
                && !b.is_empty()
                && b.chars().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

/// Parses the gateway shape (`error_code`/`error_msg`), the flat shape (`code`/`message`)
/// and the nested shape (`{"error": {"code","message"}}`), tolerating swapped code/message.
pub fn parse_error_body(body: &[u8]) -> Option<ErrorBody> {
    let s: Shape = serde_json::from_slice(body).ok()?;
    let (code, message) = if s.error_code.is_some() || s.error_msg.is_some() {
        (s.error_code, s.error_msg.unwrap_or_default())
    } else if let Some(n) = s.error {
        (n.code, n.message.unwrap_or_default())
    } else if s.code.is_some() || s.message.is_some() {
        let code = s.code.map(|c| match c {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        });
        (code, s.message.unwrap_or_default())
    } else {
        return None;
    };
    // One documented example swaps the two: the code sits in `message`.
    let (code, message) = match code {
        Some(c) if !looks_like_code(&c) && looks_like_code(&message) => (Some(message), c),
        other => (other, message),
    };
    Some(ErrorBody {
        code,
        message,
        request_id: s.request_id,
    })
}

/// Maps a status and service code to a kind. Codes win over statuses because Huawei
/// says its status codes "may not be accurate".
pub fn classify(status: u16, code: Option<&str>) -> ErrorKind {
    if let Some(code) = code {
        match code {
            "APIGW.0308" => return ErrorKind::Throttled,
            "APIGW.0301" | "APIGW.0302" | "APIGW.0303" | "APIGW.0306" => {
                return ErrorKind::Unauthorized;
            }
            "APIGW.0101" => return ErrorKind::NotFound,
            "Ecs.0114" | "Ecs.0614" | "AS.0007" | "AS.2007" => return ErrorKind::NotFound,
            "Ecs.0001" | "Ecs.0013" | "Ecs.0021" | "Ecs.0067" => return ErrorKind::Quota,
            "Ecs.0018" | "Ecs.0319" | "Ecs.0012" => return ErrorKind::SoldOut,
            "Ecs.0122" => return ErrorKind::Conflict,
            "Ecs.1000" => return ErrorKind::Transient,
            _ => {}
        }
    }
    match status {
        401 | 403 => ErrorKind::Unauthorized,
        404 => ErrorKind::NotFound,
        409 => ErrorKind::Conflict,
        429 => ErrorKind::Throttled,
        500..=599 => ErrorKind::Transient,
        _ => ErrorKind::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_shape_is_parsed_with_request_id() {
        let e = CloudError::from_response(
            "list_servers",
            429,
            None,
            br#"{"error_code":"APIGW.0308","error_msg":"The throttling threshold has been reached","request_id":"r-1"}"#,
        );
        assert_eq!(e.kind, ErrorKind::Throttled);
        assert_eq!(e.code.as_deref(), Some("APIGW.0308"));
        assert_eq!(e.request_id.as_deref(), Some("r-1"));
        assert!(e.to_string().contains("list_servers"));
    }

    #[test]
    fn nested_ecs_shape_maps_codes_to_kinds() {
        let cases = [
            ("Ecs.0114", 404, ErrorKind::NotFound),
            ("Ecs.0001", 400, ErrorKind::Quota),
            ("Ecs.0018", 400, ErrorKind::SoldOut),
            ("Ecs.0319", 400, ErrorKind::SoldOut),
            ("Ecs.0122", 400, ErrorKind::Conflict),
            ("Ecs.0005", 400, ErrorKind::Invalid),
            ("Ecs.1000", 400, ErrorKind::Transient),
        ];
        for (code, status, kind) in cases {
            let body = format!(r#"{{"error":{{"code":"{code}","message":"m"}}}}"#);
            let e = CloudError::from_response("op", status, Some("hdr".into()), body.as_bytes());
            assert_eq!(e.kind, kind, "{code}");
            assert_eq!(e.code.as_deref(), Some(code));
            assert_eq!(e.request_id.as_deref(), Some("hdr"));
        }
    }

    #[test]
    fn flat_shape_and_swapped_fields_are_tolerated() {
        let flat = parse_error_body(br#"{"code":"CES.0014","message":"bad dim"}"#).expect("flat");
        assert_eq!(flat.code.as_deref(), Some("CES.0014"));
        let swapped =
            parse_error_body(br#"{"error":{"code":"invalid parameter","message":"Ecs.0005"}}"#)
                .expect("swapped");
        assert_eq!(swapped.code.as_deref(), Some("Ecs.0005"));
        assert_eq!(swapped.message, "invalid parameter");
    }

    #[test]
    fn unparseable_body_falls_back_to_status() {
        let e = CloudError::from_response("op", 503, None, b"<html>bad gateway</html>");
        assert_eq!(e.kind, ErrorKind::Transient);
        assert!(e.code.is_none());
        assert!(e.message.contains("bad gateway"));
    }
}
