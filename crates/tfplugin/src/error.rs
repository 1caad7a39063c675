//! The crate's error type.

use crate::path::AttrPath;

/// Errors of the protocol layer and the framework.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot decode value at {path}: {message}")]
    Decode { path: AttrPath, message: String },
    #[error("cannot encode value at {path}: {message}")]
    Encode { path: AttrPath, message: String },
    #[error("invalid type: {0}")]
    Type(String),
    #[error("invalid schema for {object}: {message}")]
    Schema { object: String, message: String },
    #[error("cannot convert {object} to its model: {message}")]
    Model { object: String, message: String },
    #[error(
        "this binary is a Terraform provider plugin and is started by Terraform; run it with --debug to attach Terraform by hand"
    )]
    NotStartedByTerraform,
    #[error("plugin handshake failed: {0}")]
    Handshake(String),
    #[error("tls setup failed: {0}")]
    Tls(String),
    #[error("plugin server i/o failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("grpc server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}
