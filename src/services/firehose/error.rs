//! Amazon Data Firehose errors, and their one mapping to the wire.

use crate::protocol::model::Violation;
use crate::protocol::ApiError;
use crate::services::kit::ServiceError;
use crate::store::StoreError;
use crate::token::TokenError;

/// Every error a Firehose operation of Sluice can return.
#[derive(Debug, thiserror::Error)]
pub enum FirehoseError {
    /// Model constraint violations ("N validation errors detected: ...").
    #[error("{0}")]
    Validation(String),
    /// A semantically invalid argument, or a feature Sluice does not deliver.
    #[error("{0}")]
    InvalidArgument(String),
    /// The delivery stream does not exist (or is not ACTIVE where it must be).
    #[error("{0}")]
    ResourceNotFound(String),
    /// The stream exists already, or is in a state that forbids the change.
    #[error("{0}")]
    ResourceInUse(String),
    /// `CurrentDeliveryStreamVersionId` is not the stream's version any more.
    #[error("{0}")]
    ConcurrentModification(String),
    /// A quota would be exceeded.
    #[error("{0}")]
    LimitExceeded(String),
    /// A stored record could not be encoded or read back.
    #[error(
        "The request processing has failed because of an unknown error, exception or failure."
    )]
    InternalFailure,
    /// The store cannot take the request durably now, or the stream's buffer is full: the
    /// SDKs retry it.
    #[error("{0}")]
    ServiceUnavailable(String),
}

impl FirehoseError {
    /// Wraps model violations as Firehose does: `ValidationException`.
    pub fn from_violations(violations: &[Violation]) -> Self {
        FirehoseError::Validation(Violation::summary(violations))
    }
}

impl From<StoreError> for FirehoseError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(key) => FirehoseError::ConcurrentModification(format!(
                "Firehose {} is being changed by another request.",
                key.name
            )),
            StoreError::Unavailable(cause) => {
                // The store logs its own faults and refusals, rate-limited.
                tracing::debug!(error = %cause, "Store unavailable in Firehose.");
                FirehoseError::ServiceUnavailable(
                    "The service is unavailable. Back off and retry the operation.".to_owned(),
                )
            }
        }
    }
}

impl ServiceError for FirehoseError {
    fn from_violations(violations: &[Violation]) -> Self {
        FirehoseError::from_violations(violations)
    }

    fn invalid_input(message: String) -> Self {
        FirehoseError::InvalidArgument(message)
    }

    fn invalid_token(_error: TokenError, token: &str) -> Self {
        FirehoseError::InvalidArgument(format!("Invalid token {token}"))
    }
}

impl From<FirehoseError> for ApiError {
    fn from(err: FirehoseError) -> Self {
        let message = err.to_string();
        match err {
            FirehoseError::Validation(_) => ApiError::new("ValidationException", message),
            FirehoseError::InvalidArgument(_) => ApiError::new("InvalidArgumentException", message),
            FirehoseError::ResourceNotFound(_) => {
                ApiError::new("ResourceNotFoundException", message)
            }
            FirehoseError::ResourceInUse(_) => ApiError::new("ResourceInUseException", message),
            FirehoseError::ConcurrentModification(_) => {
                ApiError::new("ConcurrentModificationException", message)
            }
            FirehoseError::LimitExceeded(_) => ApiError::new("LimitExceededException", message),
            FirehoseError::ServiceUnavailable(_) => {
                ApiError::new("ServiceUnavailableException", message)
            }
            FirehoseError::InternalFailure => ApiError::new("InternalFailureException", message),
        }
    }
}
