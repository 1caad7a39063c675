//! Library errors (startup, state file) and API error responses.

use std::path::PathBuf;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Errors of the emulator library itself.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// Invalid configuration.
    #[error("invalid emulator configuration: {0}")]
    Config(String),
    /// The state file could not be read or written.
    #[error("state file {path}: {source}")]
    StateIo {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The state file is not valid.
    #[error("state file {path} is not valid emulator state: {reason}")]
    StateFormat {
        /// The file.
        path: PathBuf,
        /// Cause.
        reason: String,
    },
    /// Serving failed.
    #[error("server error: {0}")]
    Serve(std::io::Error),
}

/// Which error body shape to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `{"error_code","error_msg","request_id"}` (API gateway).
    Gateway,
    /// `{"error":{"code","message"}}` (ECS).
    Nested,
    /// `{"code","message"}` (flat; used for CES).
    Flat,
    /// `{"error":...}` with a plain message for the control API.
    Control,
}

/// An error answer of the emulated API.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Service code (`Ecs.0114`, `APIGW.0301`, ...).
    pub code: String,
    /// Message.
    pub message: String,
    /// Body shape.
    pub shape: Shape,
}

impl ApiError {
    /// Gateway-shaped error.
    pub fn gateway(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            shape: Shape::Gateway,
        }
    }
    /// ECS-shaped error.
    pub fn ecs(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            shape: Shape::Nested,
        }
    }
    /// `400 Ecs.0005` invalid parameter.
    pub fn ecs_invalid(message: impl Into<String>) -> Self {
        Self::ecs(StatusCode::BAD_REQUEST, "Ecs.0005", message)
    }
    /// CES-shaped error.
    pub fn ces(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            shape: Shape::Flat,
        }
    }
    /// `400 ces.0014` bad request (the code we use for every CES validation error).
    pub fn ces_invalid(message: impl Into<String>) -> Self {
        Self::ces(StatusCode::BAD_REQUEST, "ces.0014", message)
    }
    /// Control API error.
    pub fn control(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code: String::new(),
            message: message.into(),
            shape: Shape::Control,
        }
    }
    /// The throttling error.
    pub fn throttled(limit: f64) -> Self {
        Self::gateway(
            StatusCode::TOO_MANY_REQUESTS,
            "APIGW.0308",
            format!(
                "The throttling threshold has been reached: policy user over ratelimit,limit:{},time:1 second",
                limit.round() as i64
            ),
        )
    }
}

/// Request id placed in the response extensions by the API middleware.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl ApiError {
    /// The response, with `request_id` filled in gateway-shaped bodies.
    pub fn response_with_id(self, request_id: &str) -> Response {
        if self.shape == Shape::Gateway {
            let body = json!({"error_code": self.code, "error_msg": self.message, "request_id": request_id});
            return (self.status, axum::Json(body)).into_response();
        }
        self.into_response()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.shape {
            Shape::Gateway => {
                json!({"error_code": self.code, "error_msg": self.message, "request_id": ""})
            }
            Shape::Nested => json!({"error": {"code": self.code, "message": self.message}}),
            Shape::Flat => json!({"code": self.code, "message": self.message}),
            Shape::Control => json!({"error": self.message}),
        };
        (self.status, axum::Json(body)).into_response()
    }
}
