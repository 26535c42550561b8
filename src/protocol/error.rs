//! The one error type every operation returns, whatever the service.
//!
//! Services define their own typed error enums (thiserror) and convert them into [`ApiError`]
//! in one place each; the protocol codecs then render an `ApiError` exactly as the clients
//! parse it. Internal causes are logged by the renderer, never echoed to the client.

use serde_json::{Map, Value};

/// An AWS error as it leaves the server: code, HTTP status, message and the extra members
/// that the error shape of the model declares (for example `resourceName`).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The error shape name, sent as `__type` and `X-Amzn-ErrorType`.
    pub code: String,
    /// The HTTP status the model (or AWS's behaviour) gives the shape.
    pub status: u16,
    /// The human message; `None` sends no message member at all.
    pub message: Option<String>,
    /// The member that carries the message: `message`, or `Message` where the model says so.
    pub message_member: &'static str,
    /// Extra members of the error shape, serialised beside the message.
    pub fields: Map<String, Value>,
}

impl ApiError {
    /// A client error (HTTP 400) with a message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::with_status(code, 400, message)
    }

    /// An error with an explicit status.
    pub fn with_status(code: impl Into<String>, status: u16, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            status,
            message: Some(message.into()),
            message_member: "message",
            fields: Map::new(),
        }
    }

    /// Adds an extra member of the error shape.
    pub fn field(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.fields.insert(name.to_owned(), value.into());
        self
    }

    /// `SerializationException`: the body could not be read as the operation's input.
    pub fn serialization(message: impl Into<String>) -> Self {
        Self::new("SerializationException", message)
    }

    /// `UnknownOperationException`: no operation of any served service matches the request.
    pub fn unknown_operation(message: impl Into<String>) -> Self {
        Self::new("UnknownOperationException", message)
    }

    /// `InternalFailure` (500): a bug or a broken store. The cause is logged, not sent.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "Internal failure while serving a request.");
        Self::with_status(
            "InternalFailure",
            500,
            "The request processing has failed because of an unknown error, exception or failure.",
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.code, self.status)?;
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    /// An operation of the model that Sluice does not implement yet (501, so no SDK retries it).
    pub fn not_implemented(service: &str, operation: &str) -> Self {
        Self::with_status(
            "NotImplemented",
            501,
            format!("Sluice does not implement the {service} operation {operation} yet"),
        )
    }
}
