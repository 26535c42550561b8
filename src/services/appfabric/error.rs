//! AppFabric errors, and their one mapping to the wire.
//!
//! Every AppFabric error shape carries more than a message: `ValidationException` has a
//! `reason` and a `fieldList`, `ResourceNotFoundException` and `ConflictException` name the
//! resource (`resourceId`, `resourceType`), and `ServiceQuotaExceededException` also names
//! the quota (`serviceCode`, `quotaCode`). The variants below carry exactly those members.

use serde_json::json;

use super::quotas::Quota;
use crate::protocol::model::Violation;
use crate::protocol::ApiError;
use crate::services::kit::ServiceError;
use crate::store::StoreError;
use crate::token::TokenError;

/// The `reason` of a `ValidationException` (the model's `ValidationExceptionReason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidationReason {
    /// A member failed a constraint.
    FieldValidationFailed,
    /// The request could not be read (wrong JSON type, malformed body).
    CannotParse,
    /// Anything else, such as an operation Sluice does not support.
    Other,
}

impl ValidationReason {
    fn as_str(self) -> &'static str {
        match self {
            ValidationReason::FieldValidationFailed => "fieldValidationFailed",
            ValidationReason::CannotParse => "cannotParse",
            ValidationReason::Other => "other",
        }
    }
}

/// Every error an AppFabric operation of Sluice can return.
#[derive(Debug, thiserror::Error)]
pub enum AppFabricError {
    /// `ValidationException` (400).
    #[error("{message}")]
    Validation {
        /// The summary sentence.
        message: String,
        /// Why the request was refused.
        reason: ValidationReason,
        /// `(name, message)` of each offending field.
        fields: Vec<(String, String)>,
    },
    /// `ResourceNotFoundException` (404).
    #[error("{message}")]
    ResourceNotFound {
        /// The sentence.
        message: String,
        /// The identifier the caller gave.
        resource_id: String,
        /// `AppBundle`, `Ingestion`, ...
        resource_type: &'static str,
    },
    /// `ConflictException` (409).
    #[error("{message}")]
    Conflict {
        /// The sentence.
        message: String,
        /// The resource in conflict.
        resource_id: String,
        /// Its type.
        resource_type: &'static str,
    },
    /// `ServiceQuotaExceededException` (402).
    #[error("{message}")]
    QuotaExceeded {
        /// The sentence.
        message: String,
        /// The resource that would go past the quota (its parent for child resources).
        resource_id: String,
        /// The quota that would be exceeded.
        quota: &'static Quota,
    },
    /// A conditional write lost a race; the operation is retried, and only if it keeps losing
    /// does the client see a `ConflictException`.
    #[error("Another request changed the resource at the same time; retry the request.")]
    Contended,
    /// `ServiceUnavailableException` (503): the store cannot take the request durably now
    /// (see `/_sluice/health`); the SDKs retry it. The cause is logged, not sent.
    #[error("The service is unavailable. Back off and retry the operation.")]
    ServiceUnavailable,
}

impl AppFabricError {
    /// A `ValidationException` of reason `other`: a request the resource's state refuses
    /// where the model lists no `ConflictException`.
    pub fn refused(message: impl Into<String>) -> Self {
        AppFabricError::Validation {
            message: message.into(),
            reason: ValidationReason::Other,
            fields: Vec::new(),
        }
    }

    /// A `ValidationException` naming one field.
    pub fn field(name: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        AppFabricError::Validation {
            message: format!("1 validation error detected: {message}"),
            reason: ValidationReason::FieldValidationFailed,
            fields: vec![(name.to_owned(), message)],
        }
    }

    /// Wraps model violations the way AppFabric answers them: `ValidationException` with
    /// reason `fieldValidationFailed`, the "N validation error(s) detected: ..." summary of
    /// the Coral-style sentences Sluice's validator writes, and one `fieldList` entry per
    /// violation, named by the member path (`destinationConfiguration.auditLog`, `maxResults`).
    ///
    /// AWS's exact wording for AppFabric could not be confirmed from public material; this is
    /// the wording AWS's JSON services use for model constraint failures.
    pub fn from_violations(violations: &[Violation]) -> Self {
        AppFabricError::Validation {
            message: Violation::summary(violations),
            reason: ValidationReason::FieldValidationFailed,
            fields: violations
                .iter()
                .map(|v| (v.path.clone(), v.message.clone()))
                .collect(),
        }
    }

    /// A `ResourceNotFoundException`.
    pub fn not_found(resource_type: &'static str, resource_id: &str) -> Self {
        AppFabricError::ResourceNotFound {
            message: format!("{resource_type} {resource_id} does not exist"),
            resource_id: resource_id.to_owned(),
            resource_type,
        }
    }
}

impl From<StoreError> for AppFabricError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(_) => AppFabricError::Contended,
            StoreError::Unavailable(cause) => {
                // The store logs its own faults and refusals, rate-limited.
                tracing::debug!(error = %cause, "Store unavailable in AppFabric.");
                AppFabricError::ServiceUnavailable
            }
        }
    }
}

impl ServiceError for AppFabricError {
    fn from_violations(violations: &[Violation]) -> Self {
        AppFabricError::from_violations(violations)
    }

    /// The model has already checked the input, so this is a shape the model allows but the
    /// handler cannot take.
    fn invalid_input(message: String) -> Self {
        AppFabricError::Validation {
            message: format!("The request could not be read: {message}"),
            reason: ValidationReason::CannotParse,
            fields: Vec::new(),
        }
    }

    /// AppFabric has no SerializationException shape: a body of the wrong type is a
    /// ValidationException whose reason is `cannotParse`.
    fn type_error(message: &str) -> Option<Self> {
        Some(AppFabricError::Validation {
            message: message.to_owned(),
            reason: ValidationReason::CannotParse,
            fields: Vec::new(),
        })
    }

    fn invalid_token(error: TokenError, _token: &str) -> Self {
        AppFabricError::field(
            "nextToken",
            match error {
                TokenError::Invalid => "The pagination token is invalid.",
                TokenError::Expired => "The pagination token has expired.",
            },
        )
    }

    fn is_conflict(&self) -> bool {
        matches!(self, AppFabricError::Contended)
    }
}

impl From<AppFabricError> for ApiError {
    fn from(err: AppFabricError) -> Self {
        let message = err.to_string();
        match err {
            AppFabricError::Validation { reason, fields, .. } => {
                let mut error =
                    ApiError::new("ValidationException", message).field("reason", reason.as_str());
                if !fields.is_empty() {
                    let list: Vec<_> = fields
                        .into_iter()
                        .map(|(name, message)| json!({"name": name, "message": message}))
                        .collect();
                    error = error.field("fieldList", list);
                }
                error
            }
            AppFabricError::ResourceNotFound {
                resource_id,
                resource_type,
                ..
            } => ApiError::new("ResourceNotFoundException", message)
                .field("resourceId", resource_id)
                .field("resourceType", resource_type),
            AppFabricError::Conflict {
                resource_id,
                resource_type,
                ..
            } => ApiError::new("ConflictException", message)
                .field("resourceId", resource_id)
                .field("resourceType", resource_type),
            AppFabricError::QuotaExceeded {
                resource_id, quota, ..
            } => ApiError::new("ServiceQuotaExceededException", message)
                .field("resourceId", resource_id)
                .field("resourceType", quota.resource_type)
                .field("serviceCode", super::quotas::SERVICE_CODE)
                .field("quotaCode", quota.code),
            AppFabricError::Contended => ApiError::new("ConflictException", message)
                .field("resourceId", "")
                .field("resourceType", ""),
            AppFabricError::ServiceUnavailable => {
                ApiError::new("ServiceUnavailableException", message)
            }
        }
    }
}
