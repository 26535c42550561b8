//! The HTTP status of every error a service returns, from the models, in one place.
//!
//! botocore gives a status (`error.httpStatusCode`) to the shapes of rest-json models, but
//! not to most shapes of the JSON 1.1 models; for those the Smithy model's `httpError` trait,
//! where it has one, is the source, copied into [`SMITHY_HTTP_ERRORS`]. Services name an
//! error by its shape (code) only; the kit asks [`ServiceModel::error_status`] for its status.

use super::ServiceModel;

/// `httpError` values of the Smithy models for shapes whose botocore model has no status:
/// (signing name, shape, status). Read from the Smithy JSON models AWS publishes
/// (`aws/api-models-aws`, and the copies in `smithy-lang/smithy-rs`).
const SMITHY_HTTP_ERRORS: &[(&str, &str, u16)] = &[
    ("cloudtrail", "ConflictException", 409),
    ("logs", "InternalServerException", 500),
    ("logs", "TooManyTagsException", 400),
];

/// Statuses Sluice gives codes of its own choosing, whatever the service:
/// `ServiceUnavailableException` means "the store cannot take the write durably now" and is
/// sent as 503 (not the 500 a Smithy `server` error defaults to) so that every SDK retries it
/// with back-off; the internal failures are 500.
const SLUICE_STATUSES: &[(&str, u16)] = &[
    ("ServiceUnavailableException", 503),
    ("InternalFailureException", 500),
    ("InternalFailure", 500),
];

impl ServiceModel {
    /// The HTTP status of the error `code` of this service: Sluice's own status for the codes
    /// it chooses; else botocore's `httpStatusCode`; else the Smithy `httpError`; else 500 for
    /// a shape botocore marks `fault` and 400 for any other error shape of the model. `None`
    /// for a code that is not a shape of the model (a protocol-level code such as
    /// `SerializationException` or `NotImplemented`): its own status stands.
    pub fn error_status(&self, code: &str) -> Option<u16> {
        if let Some((_, status)) = SLUICE_STATUSES.iter().find(|(name, _)| *name == code) {
            return Some(*status);
        }
        let shape = self.shapes.get(code).filter(|shape| shape.exception);
        if let Some(status) = shape
            .and_then(|shape| shape.error.as_ref())
            .and_then(|error| error.http_status_code)
        {
            return Some(status);
        }
        let signing_name = self.signing_name();
        if let Some((_, _, status)) = SMITHY_HTTP_ERRORS
            .iter()
            .find(|(service, name, _)| *service == signing_name && *name == code)
        {
            return Some(*status);
        }
        shape.map(|shape| if shape.fault { 500 } else { 400 })
    }

    /// The member name an error shape uses for its message (`message` or `Message`).
    pub fn error_message_member(&self, code: &str) -> &'static str {
        match self.shapes.get(code) {
            Some(shape) if shape.members.contains_key("Message") => "Message",
            _ => "message",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ServiceModel;

    fn model(json: &str) -> ServiceModel {
        ServiceModel::parse(json).expect("model parses")
    }

    #[test]
    fn statuses_come_from_botocore_then_smithy_then_the_fault_flag() {
        let appfabric = model(include_str!("../../../models/appfabric.json"));
        assert_eq!(
            appfabric.error_status("ServiceQuotaExceededException"),
            Some(402)
        );
        assert_eq!(
            appfabric.error_status("ResourceNotFoundException"),
            Some(404)
        );
        assert_eq!(appfabric.error_status("ConflictException"), Some(409));
        let cloudtrail = model(include_str!("../../../models/cloudtrail.json"));
        assert_eq!(cloudtrail.error_status("ConflictException"), Some(409));
        assert_eq!(
            cloudtrail.error_status("ChannelNotFoundException"),
            Some(400)
        );
        let kinesis = model(include_str!("../../../models/kinesis.json"));
        assert_eq!(kinesis.error_status("InternalFailureException"), Some(500));
        assert_eq!(kinesis.error_status("ResourceNotFoundException"), Some(400));
        let logs = model(include_str!("../../../models/logs.json"));
        assert_eq!(logs.error_status("ServiceUnavailableException"), Some(503));
        assert_eq!(logs.error_status("SerializationException"), None);
        // Every Smithy entry names a shape its model really has.
        for (service, code, _) in super::SMITHY_HTTP_ERRORS {
            let model = match *service {
                "cloudtrail" => &cloudtrail,
                "logs" => &logs,
                other => panic!("no model for {other}"),
            };
            assert!(
                model.shapes.get(code).is_some_and(|s| s.exception),
                "{code}"
            );
        }
    }
}
