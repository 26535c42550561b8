//! Outputs and the model: checking (in debug builds and tests) that a typed output, already in
//! wire form, is what the model describes.

use serde_json::Value;

use super::timestamp::default_timestamp_format;
use super::{Protocol, ServiceModel, ShapeRef, ShapeType, TimestampFormat, TimestampPlace};

impl ServiceModel {
    /// Checks an encoded output against the output structure `shape_name`: every member is
    /// one the model declares, under its wire name, with the JSON type of its shape; no member
    /// is `null` (AWS omits unset members); timestamps have the form the model and protocol
    /// give them. Returns the first mismatch, with its path. The kit runs this on every output
    /// in debug builds, which is how the typed outputs are tested against the models.
    pub fn check_output(
        &self,
        shape_name: &str,
        value: &Value,
        protocol: Protocol,
    ) -> Result<(), String> {
        let reference = ShapeRef::root(shape_name);
        self.check_wire(&reference, value, shape_name, protocol)
    }

    fn check_wire(
        &self,
        reference: &ShapeRef,
        value: &Value,
        path: &str,
        protocol: Protocol,
    ) -> Result<(), String> {
        let Some(shape) = self.shapes.get(&reference.shape) else {
            return Ok(());
        };
        let wrong = |expected: &str| Err(format!("{path}: expected {expected}, found {value}"));
        match (shape.shape_type, value) {
            (_, Value::Null) => Err(format!("{path}: null (AWS omits unset members)")),
            (ShapeType::Structure, Value::Object(object)) => {
                for (name, member) in object {
                    let Some(member_ref) = shape.members.get(name) else {
                        return Err(format!(
                            "{path}.{name}: not a member of {}",
                            reference.shape
                        ));
                    };
                    self.check_wire(member_ref, member, &format!("{path}.{name}"), protocol)?;
                }
                Ok(())
            }
            (ShapeType::List, Value::Array(items)) => match &shape.member {
                Some(member_ref) => items.iter().enumerate().try_for_each(|(index, item)| {
                    self.check_wire(member_ref, item, &format!("{path}[{index}]"), protocol)
                }),
                None => Ok(()),
            },
            (ShapeType::Map, Value::Object(entries)) => match &shape.value {
                Some(value_ref) => entries.iter().try_for_each(|(key, entry)| {
                    self.check_wire(value_ref, entry, &format!("{path}.{key}"), protocol)
                }),
                None => Ok(()),
            },
            (ShapeType::Timestamp, value) => {
                let format = reference
                    .timestamp_format
                    .or(shape.timestamp_format)
                    .unwrap_or(default_timestamp_format(protocol, TimestampPlace::Body));
                match (format, value) {
                    (TimestampFormat::UnixTimestamp, Value::Number(_)) => Ok(()),
                    (TimestampFormat::Iso8601 | TimestampFormat::Rfc822, Value::String(_)) => {
                        Ok(())
                    }
                    (format, _) => wrong(&format!("a {format:?} timestamp")),
                }
            }
            (ShapeType::String | ShapeType::Blob, Value::String(_)) => Ok(()),
            (ShapeType::Boolean, Value::Bool(_)) => Ok(()),
            (ShapeType::Integer | ShapeType::Long, Value::Number(number))
                if number.is_i64() || number.is_u64() =>
            {
                Ok(())
            }
            (ShapeType::Float | ShapeType::Double, Value::Number(_)) => Ok(()),
            (shape_type, _) => wrong(shape_type.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::{Protocol, ServiceModel};

    #[test]
    fn check_output_finds_nulls_unknown_members_and_wrong_timestamp_forms() {
        let logs = ServiceModel::parse(include_str!("../../../models/logs.json")).expect("model");
        let shape = "DescribeDestinationsResponse";
        let good = json!({"destinations": [{"destinationName": "d", "creationTime": 1}]});
        assert_eq!(logs.check_output(shape, &good, Protocol::AwsJson), Ok(()));
        let null = json!({"destinations": [], "nextToken": null});
        assert!(logs.check_output(shape, &null, Protocol::AwsJson).is_err());
        let unknown = json!({"destinations": [{"destinationname": "d"}]});
        assert!(logs
            .check_output(shape, &unknown, Protocol::AwsJson)
            .is_err());
        let appfabric =
            ServiceModel::parse(include_str!("../../../models/appfabric.json")).expect("model");
        let shape = "GetIngestionDestinationResponse";
        let seconds = json!({"ingestionDestination": {"createdAt": 1_700_000_000}});
        assert!(appfabric
            .check_output(shape, &seconds, Protocol::RestJson)
            .is_err());
        let text = json!({"ingestionDestination": {"createdAt": "2023-11-14T22:13:20Z"}});
        assert_eq!(
            appfabric.check_output(shape, &text, Protocol::RestJson),
            Ok(())
        );
    }
}
