//! The service kit: what every JSON service of Sluice is built from, so that an operation is
//! one typed handler and one line of its service's table.
//!
//! - [`operations!`](crate::services::kit::operations) declares a service's operation table
//!   once and implements the protocol's [`Service`](crate::protocol::Service) trait from it:
//!   the validated input is decoded into the handler's typed input, the handler
//!   `async fn(&State, &RequestContext, Input) -> Result<Output, E>` runs, and its typed
//!   output is encoded straight into the response body ([`run`]).
//! - [`ServiceError`] is what a service's error enum gives the kit: the errors for model
//!   violations, unreadable input and refused page tokens, and whether an error is a lost
//!   conditional write. [`wire_error`] turns it into an `ApiError` with the status the
//!   model gives its code (`ServiceModel::error_status`), in one place.
//! - [`Pages`] is the one paginator (scope, signed token, list limit + 1, next token);
//!   [`retry`] the one retry of a read-check-write step that lost a race.
//! - [`load`], [`load_all`], [`load_records`] and [`put`] read and write a service's stored records.
//!
//! It lives under `services` rather than `protocol` because it knows the store and the page
//! tokens (`Deps`), which the protocol layer must not; the protocol layer stays the only
//! place that knows HTTP and service-agnostic.

mod page;

use std::future::Future;
use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

pub use page::Pages;

use crate::protocol::model::{Operation, Protocol, ServiceModel, Violation};
use crate::protocol::{ApiError, RequestContext};
use crate::services::Deps;
use crate::store::{self, RecordKey, StoreError};
use crate::token::TokenError;

pub use crate::store::put;

/// What a service's error enum provides to the kit. The conversion to the wire
/// (`Into<ApiError>`) names the code and message; the status comes from the model.
pub trait ServiceError: From<StoreError> + Into<ApiError> + Send + 'static {
    /// Model violations, as this service words them (CloudWatch Logs:
    /// `InvalidParameterException`; AppFabric: `ValidationException` with a field list ...).
    fn from_violations(violations: &[Violation]) -> Self;

    /// Input that met the model but cannot be read into the operation's typed input.
    fn invalid_input(message: String) -> Self;

    /// A body of the wrong JSON type. `None` answers `SerializationException`, which most
    /// services have; services whose model has no such shape (AppFabric) override this.
    fn type_error(_message: &str) -> Option<Self> {
        None
    }

    /// A page token (`token`, as sent) this service did not issue, issued for another
    /// request, or expired.
    fn invalid_token(error: TokenError, token: &str) -> Self;

    /// Whether the error is a conditional write that lost a race, which [`retry`] retries.
    fn is_conflict(&self) -> bool {
        false
    }
}

/// A service error as it leaves the server: its code and message from the service's own
/// mapping, its HTTP status from the model.
pub fn wire_error<E: ServiceError>(model: &ServiceModel, error: E) -> ApiError {
    with_model_status(model, error.into())
}

/// Gives an error the status the model gives its code; codes the model does not know keep
/// their own (protocol-level codes such as `SerializationException`).
pub fn with_model_status(model: &ServiceModel, mut error: ApiError) -> ApiError {
    if let Some(status) = model.error_status(&error.code) {
        error.status = status;
    }
    error
}

/// The error for a body of the wrong JSON type, for `Service::type_error`.
pub fn type_error<E: ServiceError>(model: &ServiceModel, message: String) -> ApiError {
    match E::type_error(&message) {
        Some(error) => wire_error(model, error),
        None => ApiError::serialization(message),
    }
}

/// A value already encoded in its wire form `W`, for list items kept encoded in the read cache
/// ([`Pages::encoded_after`]): an output holding it writes the bytes as they are.
pub struct Encoded<W> {
    json: std::sync::Arc<serde_json::value::RawValue>,
    wire: std::marker::PhantomData<fn() -> W>,
}

impl<W: Serialize> Encoded<W> {
    /// `wire`, encoded.
    pub fn new(wire: &W) -> Result<Self, StoreError> {
        let json = serde_json::value::to_raw_value(wire).map_err(|err| {
            tracing::error!(error = %err, "A list item cannot be encoded.");
            StoreError::Unavailable(format!("cannot encode a list item: {err}"))
        })?;
        Ok(Encoded {
            json: json.into(),
            wire: std::marker::PhantomData,
        })
    }
}

impl<W> Clone for Encoded<W> {
    fn clone(&self) -> Self {
        Encoded {
            json: self.json.clone(),
            wire: std::marker::PhantomData,
        }
    }
}

impl<W> Serialize for Encoded<W> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.json.serialize(serializer)
    }
}

impl<W> std::fmt::Debug for Encoded<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.json.get())
    }
}

/// Runs one operation: reads the validated `input` into the handler's typed input, calls the
/// handler, and encodes its output (or maps its error) for the wire.
pub async fn run<E, I, O, F, Fut>(
    model: &ServiceModel,
    operation: &Operation,
    protocol: Protocol,
    input: Value,
    handler: F,
) -> Result<Vec<u8>, ApiError>
where
    E: ServiceError,
    I: DeserializeOwned,
    O: Serialize,
    F: FnOnce(I) -> Fut,
    Fut: Future<Output = Result<O, E>>,
{
    let input = serde_json::from_value::<I>(input)
        .map_err(|err| wire_error(model, E::invalid_input(err.to_string())))?;
    let output = handler(input).await.map_err(|err| wire_error(model, err))?;
    encode(model, operation, protocol, &output)
}

/// Writes an output as the response body. Operations without an output answer `{}`, as AWS
/// does. In debug builds (and so in every test) the body is checked against the model.
fn encode<O: Serialize>(
    model: &ServiceModel,
    operation: &Operation,
    protocol: Protocol,
    output: &O,
) -> Result<Vec<u8>, ApiError> {
    let Some(output_ref) = &operation.output else {
        return Ok(b"{}".to_vec());
    };
    let mut body = serde_json::to_vec(output).map_err(ApiError::internal)?;
    if body == b"null" {
        // A handler with nothing to say (`()`) for an output whose members are all optional.
        body = b"{}".to_vec();
    }
    if cfg!(debug_assertions) {
        let value: Value = serde_json::from_slice(&body).map_err(ApiError::internal)?;
        if let Err(mismatch) = model.check_output(&output_ref.shape, &value, protocol) {
            panic!(
                "{} output does not match the model: {mismatch}",
                operation.name
            );
        }
    }
    Ok(body)
}

/// Declares a service's operation table and implements `protocol::Service` from it.
///
/// ```text
/// operations! {
///     LogsService { model: "logs", error: LogsError, state: deps }
///     PutDestination => destinations::put_destination,
///     StartQuery => lake::queries::start [lake],   // a handler over another field
/// }
/// ```
///
/// Each handler is `async fn(&State, &RequestContext, Input) -> Result<Output, Error>`, where
/// `State` is the named field of the service (`deps` unless the entry names another), `Input`
/// is `Deserialize` and `Output` is `Serialize` in wire form: output structs use
/// [`EpochSeconds`] and [`Iso8601`] for their timestamp members and skip unset members. An
/// operation of the model missing from the table answers `NotImplemented`.
///
/// [`EpochSeconds`]: crate::protocol::model::EpochSeconds
/// [`Iso8601`]: crate::protocol::model::Iso8601
macro_rules! operations {
    (
        $service:ty { model: $model:literal, error: $error:ty, state: $default:ident }
        $( $operation:ident => $handler:path $([$state:ident])? ),* $(,)?
    ) => {
        #[async_trait::async_trait]
        impl $crate::protocol::Service for $service {
            fn signing_name(&self) -> &'static str {
                $model
            }

            fn model(&self) -> &$crate::protocol::model::ServiceModel {
                $crate::services::kit::embedded_model($model)
            }

            fn validation_error(
                &self,
                violations: &[$crate::protocol::model::Violation],
            ) -> $crate::protocol::ApiError {
                $crate::services::kit::wire_error(
                    self.model(),
                    <$error as $crate::services::kit::ServiceError>::from_violations(violations),
                )
            }

            fn type_error(&self, message: String) -> $crate::protocol::ApiError {
                $crate::services::kit::type_error::<$error>(self.model(), message)
            }

            async fn call(
                &self,
                ctx: &$crate::protocol::RequestContext,
                operation: &$crate::protocol::model::Operation,
                input: serde_json::Value,
                protocol: $crate::protocol::model::Protocol,
            ) -> Result<Vec<u8>, $crate::protocol::ApiError> {
                let model = self.model();
                match operation.name.as_str() {
                    $(
                        stringify!($operation) => {
                            $crate::services::kit::run::<$error, _, _, _, _>(
                                model,
                                operation,
                                protocol,
                                input,
                                |input| $handler(
                                    $crate::services::kit::operations!(@state self, $default $(, $state)?),
                                    ctx,
                                    input,
                                ),
                            )
                            .await
                        }
                    )*
                    other => Err($crate::protocol::ApiError::not_implemented(
                        model.signing_name(),
                        other,
                    )),
                }
            }
        }
    };
    (@state $self:ident, $default:ident) => { &$self.$default };
    (@state $self:ident, $default:ident, $state:ident) => { &$self.$state };
}
pub(crate) use operations;

/// Declares the embedded models once: their list and the lookup.
macro_rules! embedded_models {
    ($($name:literal),*) => {
        /// The signing names of the embedded botocore models.
        pub const EMBEDDED_MODELS: &[&str] = &[$($name),*];

        /// The botocore model embedded for a signing name, parsed once.
        pub fn embedded_model(name: &str) -> &'static ServiceModel {
            match name {
                $($name => {
                    static MODEL: OnceLock<ServiceModel> = OnceLock::new();
                    ServiceModel::embedded(
                        &MODEL,
                        $name,
                        include_str!(concat!("../../../models/", $name, ".json")),
                    )
                })*
                other => panic!("no embedded model for {other}"),
            }
        }
    };
}
embedded_models!(
    "logs",
    "kinesis",
    "firehose",
    "appfabric",
    "cloudtrail",
    "cloudtrail-data"
);

/// Reads a stored record into its type, with its version.
pub async fn load<T: DeserializeOwned>(
    deps: &Deps,
    key: &RecordKey,
) -> Result<Option<(T, i64)>, StoreError> {
    store::load(&*deps.store, key).await
}

/// Reads every record of a kind in the caller's account and region whose name has a prefix,
/// in name order.
pub async fn load_all<T: store::Stored>(
    deps: &Deps,
    ctx: &RequestContext,
    kind: &'static str,
    prefix: &str,
) -> Result<Vec<T>, StoreError> {
    let records = load_records(deps, ctx, kind, prefix).await?;
    Ok(records.into_iter().map(|(_, value, _)| value).collect())
}

/// [`load_all`] with each record's key and version, for writes conditional on them.
pub async fn load_records<T: store::Stored>(
    deps: &Deps,
    ctx: &RequestContext,
    kind: &'static str,
    prefix: &str,
) -> Result<Vec<(RecordKey, T, i64)>, StoreError> {
    store::load_all(&*deps.store, kind, &ctx.account_id, &ctx.region, prefix).await
}

/// A typed value as a JSON tree, for the few places that keep an answer as data (AppFabric's
/// remembered responses to client tokens).
pub fn to_value<T: Serialize>(value: T) -> Result<Value, StoreError> {
    serde_json::to_value(value).map_err(|err| StoreError::Unavailable(err.to_string()))
}

/// The inverse of [`to_value`]: a typed value back from the data it was kept as.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, StoreError> {
    serde_json::from_value(value)
        .map_err(|err| StoreError::Unavailable(format!("corrupt record: {err}")))
}

/// Stripes of [`one_writer`]: enough that unrelated hot records rarely share one.
const STRIPES: usize = 256;

/// Waits until no other request of this process writes `key` (its stripe, rather), and holds
/// that until the guard drops: writers of a hot record (one log stream under many concurrent
/// PutLogEvents) then take turns instead of all but one losing the conditional write, again
/// and again, up to [`retry`]'s limit. Other nodes of a shared store still race; [`retry`]
/// settles those.
pub async fn one_writer(key: &RecordKey) -> tokio::sync::MutexGuard<'static, ()> {
    use std::hash::{Hash, Hasher};
    static LOCKS: OnceLock<Vec<tokio::sync::Mutex<()>>> = OnceLock::new();
    let locks = LOCKS.get_or_init(|| (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect());
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    let stripe = (hasher.finish() % STRIPES as u64) as usize;
    locks[stripe].lock().await
}

/// How often [`retry`] runs a step that keeps losing races before giving up.
const ATTEMPTS: usize = 16;

/// Runs a read-check-write step again while its conditional write loses races to concurrent
/// writers (`ServiceError::is_conflict`), a bounded number of times with random pauses; the
/// last attempt's error stands. Every step re-reads what it checks, so a retry decides on
/// fresh state.
pub async fn retry<T, E, F, Fut>(mut step: F) -> Result<T, E>
where
    E: ServiceError,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    for attempt in 1..ATTEMPTS {
        match step().await {
            // A random pause, growing with each loss (up to 32 ms), so that racers (other
            // nodes of a shared store, say) spread out instead of colliding again.
            Err(err) if err.is_conflict() => {
                let ceiling = 500u64 << attempt.min(6);
                let pause = rand::Rng::gen_range(&mut rand::thread_rng(), 0..ceiling);
                tokio::time::sleep(std::time::Duration::from_micros(pause)).await;
            }
            other => return other,
        }
    }
    step().await
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_embedded_model_parses_and_writes_outputs_in_the_body() {
        for name in super::EMBEDDED_MODELS {
            let model = super::embedded_model(name);
            // Services register under the name they embed, without parsing the model.
            assert_eq!(model.signing_name(), *name);
            assert!(!model.operations.is_empty(), "{name}");
            // Shapes are parsed at their first use; here every one of them is.
            assert!(model.shapes.iter().count() > 0, "{name}");
            assert!(
                crate::protocol::rest_json::body_only_outputs(model),
                "{name}"
            );
        }
    }
}
