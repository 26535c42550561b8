//! Input validation: every constraint of the model, checked once, with AWS's messages.

use base64::Engine as _;
use serde_json::Value;

use super::timestamp::parse_timestamp;
use super::{Protocol, ServiceModel, Shape, ShapeRef, ShapeType, TimestampPlace};

/// A failure of the input to meet the model.
#[derive(Debug, Clone, PartialEq)]
pub enum InputError {
    /// The value has the wrong JSON type: a `SerializationException`.
    Type(String),
    /// Constraint violations in AWS's wording, each "Value ... at 'path' failed to satisfy
    /// constraint: ...". The service decides which error code carries them.
    Constraints(Vec<Violation>),
}

/// One constraint violation.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// The member path, e.g. `limit` or `tags.1.member.key`.
    pub path: String,
    /// The full sentence, in the words AWS uses.
    pub message: String,
}
impl Violation {
    /// Joins violations into AWS's "N validation error(s) detected: ..." message.
    pub fn summary(violations: &[Violation]) -> String {
        let n = violations.len();
        let noun = if n == 1 { "error" } else { "errors" };
        let details: Vec<&str> = violations.iter().map(|v| v.message.as_str()).collect();
        format!("{n} validation {noun} detected: {}", details.join("; "))
    }
}

impl ServiceModel {
    /// Checks `value` against the input structure `shape_name`, in place: unknown members are
    /// dropped, timestamps become epoch seconds, and every constraint of the model is checked.
    pub fn validate_input(
        &self,
        shape_name: &str,
        value: &mut Value,
        protocol: Protocol,
    ) -> Result<(), InputError> {
        let mut violations = Vec::new();
        let reference = ShapeRef {
            shape: shape_name.to_owned(),
            location: None,
            location_name: None,
            timestamp_format: None,
            idempotency_token: false,
            jsonvalue: false,
        };
        self.check(&reference, value, "", protocol, &mut violations)?;
        if violations.is_empty() {
            Ok(())
        } else {
            Err(InputError::Constraints(violations))
        }
    }

    fn check(
        &self,
        reference: &ShapeRef,
        value: &mut Value,
        path: &str,
        protocol: Protocol,
        violations: &mut Vec<Violation>,
    ) -> Result<(), InputError> {
        let Some(shape) = self.shapes.get(&reference.shape) else {
            return Ok(());
        };
        let type_error = |expected: &str| {
            InputError::Type(format!(
                "Unexpected value type at '{}': expected {expected}",
                path
            ))
        };
        match shape.shape_type {
            ShapeType::Structure => {
                let Value::Object(object) = value else {
                    return Err(type_error("a structure"));
                };
                // Clients may send members the model does not know (newer models); AWS ignores them.
                object.retain(|name, _| shape.members.contains_key(name));
                for required in &shape.required {
                    if object.get(required).is_none_or(Value::is_null) {
                        let member_path = join_path(path, required);
                        violations.push(Violation {
                            message: format!(
                                "Value null at '{member_path}' failed to satisfy constraint: Member must not be null"
                            ),
                            path: member_path,
                        });
                    }
                }
                if shape.union {
                    let set = object.values().filter(|v| !v.is_null()).count();
                    if set != 1 {
                        violate(violations, path, format!(
                            "Value at '{}' failed to satisfy constraint: Union must have exactly one member set, found {set}",
                            path
                        ));
                    }
                }
                let mut names: Vec<String> = object.keys().cloned().collect();
                names.sort();
                for name in names {
                    let (Some(member_ref), Some(member_value)) =
                        (shape.members.get(&name), object.get_mut(&name))
                    else {
                        continue;
                    };
                    if member_value.is_null() {
                        continue;
                    }
                    let member_path = join_path(path, &name);
                    self.check(member_ref, member_value, &member_path, protocol, violations)?;
                }
            }
            ShapeType::String => {
                let Value::String(text) = value else {
                    return Err(type_error("a string"));
                };
                let length = text.chars().count() as f64;
                let shown = text.clone();
                if let Some(allowed) = &shape.enum_values {
                    if !allowed.iter().any(|v| v == &shown) {
                        violate(violations, path, format!(
                            "Value '{shown}' at '{}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                            path,
                            allowed.join(", ")
                        ));
                    }
                }
                length_checks(shape, length, &shown, path, violations);
                if let (Some(pattern), Some(regex)) =
                    (&shape.pattern, self.pattern(&reference.shape))
                {
                    if !regex.is_match(&shown) {
                        violate(violations, path, format!(
                            "Value '{shown}' at '{}' failed to satisfy constraint: Member must satisfy regular expression pattern: {pattern}",
                            path
                        ));
                    }
                }
            }
            ShapeType::Integer | ShapeType::Long => {
                let number = value
                    .as_i64()
                    .map(|n| n as f64)
                    .or_else(|| value.as_u64().map(|n| n as f64));
                let Some(number) = number else {
                    return Err(type_error("an integer"));
                };
                value_checks(shape, number, path, violations);
            }
            ShapeType::Float | ShapeType::Double => {
                let Some(number) = value.as_f64() else {
                    return Err(type_error("a number"));
                };
                value_checks(shape, number, path, violations);
            }
            ShapeType::Boolean if !value.is_boolean() => return Err(type_error("a boolean")),
            ShapeType::Timestamp => {
                let format = reference.timestamp_format.or(shape.timestamp_format);
                match parse_timestamp(value, format, protocol, TimestampPlace::Body) {
                    Some(seconds) => *value = seconds,
                    None => return Err(type_error("a timestamp")),
                }
            }
            ShapeType::Blob => {
                let Value::String(encoded) = value else {
                    return Err(type_error("base64-encoded bytes"));
                };
                let Ok(bytes) =
                    base64::engine::general_purpose::STANDARD.decode(encoded.as_bytes())
                else {
                    return Err(type_error("base64-encoded bytes"));
                };
                length_checks(shape, bytes.len() as f64, "", path, violations);
            }
            ShapeType::List => {
                let Value::Array(items) = value else {
                    return Err(type_error("a list"));
                };
                let shown = format!(
                    "[{}]",
                    items.iter().map(show_value).collect::<Vec<_>>().join(", ")
                );
                length_checks(shape, items.len() as f64, &shown, path, violations);
                if let Some(member_ref) = &shape.member {
                    for (index, item) in items.iter_mut().enumerate() {
                        let item_path = format!("{}.{}.member", path, index + 1);
                        self.check(member_ref, item, &item_path, protocol, violations)?;
                    }
                }
            }
            ShapeType::Map => {
                let Value::Object(entries) = value else {
                    return Err(type_error("a map"));
                };
                let shown = format!(
                    "{{{}}}",
                    entries
                        .iter()
                        .map(|(k, v)| format!("{k}={}", show_value(v)))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                length_checks(shape, entries.len() as f64, &shown, path, violations);
                let (Some(key_ref), Some(value_ref)) = (&shape.key, &shape.value) else {
                    return Ok(());
                };
                let keys: Vec<String> = entries.keys().cloned().collect();
                for key in keys {
                    // Map entries are reported on the map itself, the way Coral words it.
                    let mut nested = Vec::new();
                    self.check(
                        key_ref,
                        &mut Value::String(key.clone()),
                        path,
                        protocol,
                        &mut nested,
                    )?;
                    wrap_map_violations(violations, nested, &shown, path, "Map keys");
                    if let Some(entry) = entries.get_mut(&key) {
                        let mut nested = Vec::new();
                        self.check(value_ref, entry, path, protocol, &mut nested)?;
                        wrap_map_violations(violations, nested, &shown, path, "Map value");
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

fn wrap_map_violations(
    violations: &mut Vec<Violation>,
    nested: Vec<Violation>,
    shown: &str,
    path: &str,
    what: &str,
) {
    for violation in nested {
        let constraint = violation
            .message
            .split_once("failed to satisfy constraint: ")
            .map_or(violation.message.as_str(), |(_, constraint)| constraint);
        violate(
            violations,
            path,
            format!("Value '{shown}' at '{path}' failed to satisfy constraint: {what} must satisfy constraint: [{constraint}]"),
        );
    }
}

fn violate(violations: &mut Vec<Violation>, path: &str, message: String) {
    violations.push(Violation {
        path: path.to_owned(),
        message,
    });
}

fn length_checks(
    shape: &Shape,
    length: f64,
    shown: &str,
    path: &str,
    violations: &mut Vec<Violation>,
) {
    if let Some(min) = shape.min {
        if length < min {
            violate(violations, path, format!(
                "Value '{shown}' at '{}' failed to satisfy constraint: Member must have length greater than or equal to {min}",
                path
            ));
        }
    }
    if let Some(max) = shape.max {
        if length > max {
            violate(violations, path, format!(
                "Value '{shown}' at '{}' failed to satisfy constraint: Member must have length less than or equal to {max}",
                path
            ));
        }
    }
}

fn value_checks(shape: &Shape, number: f64, path: &str, violations: &mut Vec<Violation>) {
    let shown = show_number(number);
    if let Some(min) = shape.min {
        if number < min {
            violate(violations, path, format!(
                "Value '{shown}' at '{}' failed to satisfy constraint: Member must have value greater than or equal to {}",
                path,
                show_number(min)
            ));
        }
    }
    if let Some(max) = shape.max {
        if number > max {
            violate(violations, path, format!(
                "Value '{shown}' at '{}' failed to satisfy constraint: Member must have value less than or equal to {}",
                path,
                show_number(max)
            ));
        }
    }
}

fn show_number(number: f64) -> String {
    if number.fract() == 0.0 {
        format!("{}", number as i64)
    } else {
        format!("{number}")
    }
}

fn show_value(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn join_path(path: &str, member: &str) -> String {
    if path.is_empty() {
        member.to_owned()
    } else {
        format!("{path}.{member}")
    }
}

#[cfg(test)]
mod fuzz {
    //! Randomised inputs, shaped like each operation's input but perturbed, must always be
    //! answered with Ok or an input error: never a panic.
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn random_string(rng: &mut StdRng) -> String {
        let alphabet = [
            'a',
            'Z',
            '0',
            ':',
            '*',
            '/',
            ' ',
            'é',
            '\u{1F600}',
            '"',
            '\\',
            '-',
            '_',
        ];
        let length = [0, 1, 5, 129, 513, 2000][rng.gen_range(0..6)];
        (0..length)
            .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
            .collect()
    }

    fn random_scalar(rng: &mut StdRng) -> Value {
        match rng.gen_range(0..7) {
            0 => Value::Null,
            1 => Value::Bool(rng.gen()),
            2 => Value::from(rng.gen::<i64>()),
            3 => Value::from(rng.gen::<f64>() * 1e12),
            4 => Value::from(vec![Value::from(1), Value::String("x".into())]),
            5 => serde_json::json!({"k": "v"}),
            _ => Value::String(random_string(rng)),
        }
    }

    fn shaped(model: &ServiceModel, shape_name: &str, rng: &mut StdRng, depth: usize) -> Value {
        if depth > 6 || rng.gen_ratio(1, 8) {
            return random_scalar(rng);
        }
        let Some(shape) = model.shape(shape_name) else {
            return Value::Null;
        };
        match shape.shape_type {
            ShapeType::Structure => {
                let mut object = serde_json::Map::new();
                for (name, member) in &shape.members {
                    if rng.gen_ratio(3, 4) {
                        object.insert(name.clone(), shaped(model, &member.shape, rng, depth + 1));
                    }
                }
                Value::Object(object)
            }
            ShapeType::List => {
                let member = shape
                    .member
                    .as_ref()
                    .map(|m| m.shape.clone())
                    .unwrap_or_default();
                Value::Array(
                    (0..rng.gen_range(0..4))
                        .map(|_| shaped(model, &member, rng, depth + 1))
                        .collect(),
                )
            }
            ShapeType::Map => {
                let value = shape
                    .value
                    .as_ref()
                    .map(|m| m.shape.clone())
                    .unwrap_or_default();
                Value::Object(
                    (0..rng.gen_range(0..4))
                        .map(|_| (random_string(rng), shaped(model, &value, rng, depth + 1)))
                        .collect(),
                )
            }
            ShapeType::String => match &shape.enum_values {
                Some(values) if rng.gen() => {
                    Value::String(values[rng.gen_range(0..values.len())].clone())
                }
                _ => Value::String(random_string(rng)),
            },
            ShapeType::Integer | ShapeType::Long => Value::from(rng.gen_range(-100i64..100_000)),
            ShapeType::Boolean => Value::Bool(rng.gen()),
            ShapeType::Timestamp => Value::from(rng.gen_range(0i64..2_000_000_000)),
            _ => random_scalar(rng),
        }
    }

    #[test]
    fn every_operation_survives_random_inputs() {
        let model = ServiceModel::parse(include_str!("../../../models/logs.json")).expect("model");
        let mut rng = StdRng::seed_from_u64(0x5_1u64);
        let mut outcomes = [0usize; 3];
        for operation in model.operations.values() {
            let Some(input) = &operation.input else {
                continue;
            };
            for _ in 0..40 {
                let mut value = shaped(&model, &input.shape, &mut rng, 0);
                let outcome = model.validate_input(&input.shape, &mut value, Protocol::AwsJson);
                outcomes[match outcome {
                    Ok(()) => 0,
                    Err(InputError::Type(_)) => 1,
                    Err(InputError::Constraints(violations)) => {
                        assert!(!violations.is_empty());
                        assert!(Violation::summary(&violations).contains("validation error"));
                        2
                    }
                }] += 1;
            }
        }
        // The generator must reach all three outcomes, or it is not exercising the validator.
        assert!(outcomes.iter().all(|&n| n > 0), "{outcomes:?}");
    }
}
