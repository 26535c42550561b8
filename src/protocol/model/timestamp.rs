//! The timestamp codec: the wire forms of a point in time (epoch seconds, ISO 8601, the HTTP
//! date), read into epoch seconds for handlers, and written back, either from a value
//! (`format_timestamp`) or straight from a typed output through [`EpochSeconds`] and
//! [`Iso8601`], the serde wrappers an output struct picks per member as the model says.

use serde::{Serialize, Serializer};
use serde_json::Value;
use time::format_description::well_known::{Rfc2822, Rfc3339};
use time::OffsetDateTime;

use super::{Protocol, TimestampFormat};

/// Where a timestamp travels, since rest-json formats each location differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampPlace {
    /// JSON body.
    Body,
    /// A query-string parameter.
    Query,
    /// An HTTP header.
    Header,
}

/// Parses a timestamp from the wire into epoch seconds.
pub fn parse_timestamp(
    value: &Value,
    format: Option<TimestampFormat>,
    protocol: Protocol,
    place: TimestampPlace,
) -> Option<Value> {
    let format = format.unwrap_or(default_timestamp_format(protocol, place));
    match (format, value) {
        (TimestampFormat::UnixTimestamp, Value::Number(number)) => {
            Some(Value::Number(number.clone()))
        }
        (TimestampFormat::UnixTimestamp, Value::String(text)) => {
            text.parse::<f64>().ok().and_then(seconds_value)
        }
        (TimestampFormat::Iso8601, Value::String(text)) => {
            let parsed = OffsetDateTime::parse(text, &Rfc3339).ok()?;
            seconds_value(parsed.unix_timestamp_nanos() as f64 / 1e9)
        }
        (TimestampFormat::Rfc822, Value::String(text)) => {
            let parsed = OffsetDateTime::parse(text, &Rfc2822).ok()?;
            seconds_value(parsed.unix_timestamp() as f64)
        }
        _ => None,
    }
}

/// Formats epoch seconds for the wire.
pub fn format_timestamp(
    seconds: f64,
    format: Option<TimestampFormat>,
    protocol: Protocol,
    place: TimestampPlace,
) -> Value {
    let format = format.unwrap_or(default_timestamp_format(protocol, place));
    match format {
        TimestampFormat::Iso8601 => iso8601_text(seconds).map_or(Value::Null, Value::String),
        TimestampFormat::Rfc822 => {
            instant(seconds).map_or(Value::Null, |i| Value::String(http_date(i)))
        }
        TimestampFormat::UnixTimestamp => seconds_value(seconds).unwrap_or(Value::Null),
    }
}

/// The instant of epoch seconds, to the millisecond: Sluice keeps times to the millisecond,
/// and rounding there keeps f64 noise out of the text.
fn instant(seconds: f64) -> Option<OffsetDateTime> {
    let millis = (seconds * 1000.0).round() as i128;
    OffsetDateTime::from_unix_timestamp_nanos(millis * 1_000_000).ok()
}

fn iso8601_text(seconds: f64) -> Option<String> {
    instant(seconds)?.format(&Rfc3339).ok()
}

/// The format a protocol uses where the model names none.
pub fn default_timestamp_format(protocol: Protocol, place: TimestampPlace) -> TimestampFormat {
    match (protocol, place) {
        (_, TimestampPlace::Header) => TimestampFormat::Rfc822,
        (Protocol::RestJson, TimestampPlace::Query) => TimestampFormat::Iso8601,
        _ => TimestampFormat::UnixTimestamp,
    }
}

fn http_date(instant: OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    instant
        .to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
}

fn seconds_value(seconds: f64) -> Option<Value> {
    if seconds.fract() == 0.0 && seconds.abs() < 9e15 {
        Some(Value::from(seconds as i64))
    } else {
        serde_json::Number::from_f64(seconds).map(Value::Number)
    }
}

/// A timestamp member written as epoch seconds, the JSON protocols' default body form: an
/// integer when whole, else a fraction (milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct EpochSeconds(pub f64);

impl EpochSeconds {
    /// From epoch milliseconds, as Sluice stores times.
    pub fn from_millis(millis: i64) -> Self {
        EpochSeconds(millis as f64 / 1000.0)
    }
}

impl Serialize for EpochSeconds {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let seconds = self.0;
        if seconds.fract() == 0.0 && seconds.abs() < 9e15 {
            serializer.serialize_i64(seconds as i64)
        } else {
            serializer.serialize_f64(seconds)
        }
    }
}

/// A timestamp member the model marks `timestampFormat: iso8601` (AppFabric's), written as
/// RFC 3339 text to the millisecond.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Iso8601(pub f64);

impl Iso8601 {
    /// From epoch milliseconds, as Sluice stores times.
    pub fn from_millis(millis: i64) -> Self {
        Iso8601(millis as f64 / 1000.0)
    }
}

impl Serialize for Iso8601 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match iso8601_text(self.0) {
            Some(text) => serializer.serialize_str(&text),
            None => Err(serde::ser::Error::custom(format!(
                "{} seconds is out of the range of a timestamp",
                self.0
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_wrappers_write_what_format_timestamp_writes() {
        for seconds in [0.0, 1_700_000_000.0, 1_700_000_000.123, -5.5] {
            let body = TimestampPlace::Body;
            assert_eq!(
                serde_json::to_value(EpochSeconds(seconds)).expect("encodes"),
                format_timestamp(seconds, None, Protocol::AwsJson, body)
            );
            assert_eq!(
                serde_json::to_value(Iso8601(seconds)).expect("encodes"),
                format_timestamp(
                    seconds,
                    Some(TimestampFormat::Iso8601),
                    Protocol::RestJson,
                    body
                )
            );
        }
        assert_eq!(
            serde_json::to_string(&Iso8601::from_millis(1_700_000_000_123)).expect("encodes"),
            "\"2023-11-14T22:13:20.123Z\""
        );
    }
}
