//! Outputs and the model: rewriting an untyped output for the wire, and checking (in debug
//! builds and tests) that a typed output, already in wire form, is what the model describes.

use serde_json::Value;

use super::timestamp::{default_timestamp_format, format_timestamp};
use super::{Protocol, ServiceModel, ShapeRef, ShapeType, TimestampFormat, TimestampPlace};

impl ServiceModel {
    /// Rewrites an output value for the wire: timestamps (epoch seconds inside Sluice) take the
    /// protocol's form, and nulls are dropped since AWS omits unset members.
    pub fn render_output(&self, shape_name: &str, value: &mut Value, protocol: Protocol) {
        let reference = ShapeRef {
            shape: shape_name.to_owned(),
            location: None,
            location_name: None,
            timestamp_format: None,
            idempotency_token: false,
            jsonvalue: false,
        };
        self.render(&reference, value, protocol);
    }

    fn render(&self, reference: &ShapeRef, value: &mut Value, protocol: Protocol) {
        let Some(shape) = self.shapes.get(&reference.shape) else {
            return;
        };
        match (shape.shape_type, value) {
            (ShapeType::Structure, Value::Object(object)) => {
                object.retain(|_, v| !v.is_null());
                for (name, member) in object.iter_mut() {
                    if let Some(member_ref) = shape.members.get(name) {
                        self.render(member_ref, member, protocol);
                    }
                }
            }
            (ShapeType::List, Value::Array(items)) => {
                if let Some(member_ref) = &shape.member {
                    items
                        .iter_mut()
                        .for_each(|item| self.render(member_ref, item, protocol));
                }
            }
            (ShapeType::Map, Value::Object(entries)) => {
                if let Some(value_ref) = &shape.value {
                    entries
                        .values_mut()
                        .for_each(|entry| self.render(value_ref, entry, protocol));
                }
            }
            (ShapeType::Timestamp, value) => {
                let format = reference.timestamp_format.or(shape.timestamp_format);
                if let Some(seconds) = value.as_f64() {
                    *value = format_timestamp(seconds, format, protocol, TimestampPlace::Body);
                }
            }
            _ => {}
        }
    }
}

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
        let reference = ShapeRef {
            shape: shape_name.to_owned(),
            location: None,
            location_name: None,
            timestamp_format: None,
            idempotency_token: false,
            jsonvalue: false,
        };
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
