//! Kinesis Data Streams errors, and their one mapping to the wire.

use crate::protocol::model::Violation;
use crate::protocol::ApiError;
use crate::services::kit::ServiceError;
use crate::store::StoreError;
use crate::token::TokenError;

/// Every error a Kinesis operation of Sluice can return.
#[derive(Debug, thiserror::Error)]
pub enum KinesisError {
    /// Model constraint violations ("N validation errors detected: ...").
    #[error("{0}")]
    Validation(String),
    /// A semantically invalid argument.
    #[error("{0}")]
    InvalidArgument(String),
    /// The stream does not exist.
    #[error("{0}")]
    ResourceNotFound(String),
    /// The stream exists already, or is being changed.
    #[error("{0}")]
    ResourceInUse(String),
    /// A shard iterator older than five minutes.
    #[error("{0}")]
    ExpiredIterator(String),
    /// A pagination token older than its lifetime.
    #[error("{0}")]
    ExpiredNextToken(String),
    /// The caller may not act on another account's resource.
    #[error("{0}")]
    AccessDenied(String),
    /// A quota would be exceeded.
    #[error("{0}")]
    LimitExceeded(String),
    /// A stored record could not be encoded or read back; the client may retry.
    #[error(
        "The request processing has failed because of an unknown error, exception or failure."
    )]
    InternalFailure,
    /// `ServiceUnavailableException` (503): the store cannot take the request durably now
    /// (see `/_sluice/health`); the SDKs retry it.
    #[error("The service is unavailable. Back off and retry the operation.")]
    ServiceUnavailable,
}

impl KinesisError {
    /// Wraps model violations as Kinesis does: `ValidationException`.
    pub fn from_violations(violations: &[Violation]) -> Self {
        KinesisError::Validation(Violation::summary(violations))
    }
}

impl From<StoreError> for KinesisError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(key) => KinesisError::ResourceInUse(format!(
                "Stream {} is being changed by another request.",
                key.name
            )),
            StoreError::Unavailable(cause) => {
                // The store logs its own faults and refusals, rate-limited.
                tracing::debug!(error = %cause, "Store unavailable in Kinesis.");
                KinesisError::ServiceUnavailable
            }
        }
    }
}

impl ServiceError for KinesisError {
    fn from_violations(violations: &[Violation]) -> Self {
        KinesisError::from_violations(violations)
    }

    fn invalid_input(message: String) -> Self {
        KinesisError::InvalidArgument(message)
    }

    fn invalid_token(error: TokenError, token: &str) -> Self {
        match error {
            TokenError::Invalid => {
                KinesisError::InvalidArgument(format!("Invalid NextToken {token}"))
            }
            TokenError::Expired => {
                KinesisError::ExpiredNextToken(format!("NextToken {token} has expired"))
            }
        }
    }
}

impl From<KinesisError> for ApiError {
    fn from(err: KinesisError) -> Self {
        let message = err.to_string();
        match err {
            KinesisError::Validation(_) => ApiError::new("ValidationException", message),
            KinesisError::InvalidArgument(_) => ApiError::new("InvalidArgumentException", message),
            KinesisError::ResourceNotFound(_) => {
                ApiError::new("ResourceNotFoundException", message)
            }
            KinesisError::ResourceInUse(_) => ApiError::new("ResourceInUseException", message),
            KinesisError::ExpiredIterator(_) => ApiError::new("ExpiredIteratorException", message),
            KinesisError::ExpiredNextToken(_) => {
                ApiError::new("ExpiredNextTokenException", message)
            }
            KinesisError::LimitExceeded(_) => ApiError::new("LimitExceededException", message),
            KinesisError::AccessDenied(_) => ApiError::new("AccessDeniedException", message),
            KinesisError::ServiceUnavailable => {
                ApiError::new("ServiceUnavailableException", message)
            }
            KinesisError::InternalFailure => ApiError::new("InternalFailureException", message),
        }
    }
}
