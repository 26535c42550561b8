//! Trino functions CloudTrail Lake documents that DataFusion lacks, as UDFs under Trino's
//! names. DataFusion already has most of the documented ones under the same names (count,
//! approx_distinct, lower, regexp_like, date_trunc, from_unixtime, coalesce, ...).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray, TimestampMillisecondArray};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use serde_json::Value;

use super::table;

/// Registers every function of this module on a query's context.
pub fn register(ctx: &SessionContext) {
    let map_type = table::string_map_type();
    ctx.register_udf(udf(
        "element_at",
        vec![map_type, DataType::Utf8],
        DataType::Utf8,
        element_at,
    ));
    ctx.register_udf(udf(
        "json_extract_scalar",
        vec![DataType::Utf8, DataType::Utf8],
        DataType::Utf8,
        |args| json_path(args, true),
    ));
    ctx.register_udf(udf(
        "json_extract",
        vec![DataType::Utf8, DataType::Utf8],
        DataType::Utf8,
        |args| json_path(args, false),
    ));
    let millis = DataType::Timestamp(TimeUnit::Millisecond, None);
    ctx.register_udf(udf(
        "date_diff",
        vec![DataType::Utf8, millis.clone(), millis.clone()],
        DataType::Int64,
        date_diff,
    ));
    ctx.register_udf(udf("to_iso8601", vec![millis], DataType::Utf8, to_iso8601));
    ctx.register_udf(udf(
        "from_iso8601_timestamp",
        vec![DataType::Utf8],
        DataType::Timestamp(TimeUnit::Millisecond, None),
        from_iso8601_timestamp,
    ));
}

/// A Trino function: declared argument types (arguments are cast to them, so `now()` or a
/// text literal goes where a millisecond timestamp is declared), a result type, and a body
/// over whole arrays.
#[derive(Debug)]
struct Trino {
    name: &'static str,
    signature: Signature,
    inputs: Vec<DataType>,
    output: DataType,
    body: fn(&[ArrayRef]) -> Result<ArrayRef>,
}

// Functions are told apart by name and types (DataFusion compares UDFs when it simplifies).
impl PartialEq for Trino {
    fn eq(&self, other: &Self) -> bool {
        (self.name, &self.inputs, &self.output) == (other.name, &other.inputs, &other.output)
    }
}

impl Eq for Trino {}

impl std::hash::Hash for Trino {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.name, &self.inputs, &self.output).hash(state);
    }
}

impl ScalarUDFImpl for Trino {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(self.output.clone())
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        if args.len() != self.inputs.len() {
            return plan_err!(
                "{} takes {} arguments, not {}",
                self.name,
                self.inputs.len(),
                args.len()
            );
        }
        Ok(self.inputs.clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let out = (self.body)(&arrays)?;
        if scalar {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?));
        }
        Ok(ColumnarValue::Array(out))
    }
}

fn udf(
    name: &'static str,
    inputs: Vec<DataType>,
    output: DataType,
    body: fn(&[ArrayRef]) -> Result<ArrayRef>,
) -> ScalarUDF {
    ScalarUDF::new_from_impl(Trino {
        name,
        signature: Signature::user_defined(Volatility::Immutable),
        inputs,
        output,
        body,
    })
}

/// `element_at(map, key)`: the value under `key`, or null.
fn element_at(args: &[ArrayRef]) -> Result<ArrayRef> {
    let (Some(maps), Some(keys)) = (args.first(), args.get(1)) else {
        return exec_err!("element_at takes a map and a key");
    };
    let maps = maps.as_map();
    let keys = keys.as_string::<i32>();
    let out: StringArray = (0..maps.len())
        .map(|row| {
            if maps.is_null(row) || keys.is_null(row) {
                return None;
            }
            let entries = maps.value(row);
            let names = entries.column(0).as_string::<i32>();
            let values = entries.column(1).as_string::<i32>();
            let wanted = keys.value(row);
            (0..names.len())
                .find(|i| names.value(*i) == wanted)
                .filter(|i| !values.is_null(*i))
                .map(|i| values.value(i).to_owned())
        })
        .collect();
    Ok(Arc::new(out))
}

/// Follows a JSON path of the form `$.a.b[0]["c"]`.
fn follow<'a>(mut value: &'a Value, path: &str) -> Option<&'a Value> {
    let mut rest = path.trim().strip_prefix('$')?;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            value = value.get(&after[..end])?;
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']')?;
            let inside = after[..end].trim();
            value = match inside.parse::<usize>() {
                Ok(index) => value.get(index)?,
                Err(_) => value.get(inside.trim_matches(|c| c == '"' || c == '\''))?,
            };
            rest = &after[end + 1..];
        } else {
            return None;
        }
    }
    Some(value)
}

/// `json_extract_scalar` (a string or number as text; null for objects and arrays) and
/// `json_extract` (the JSON text of what the path names).
fn json_path(args: &[ArrayRef], scalar: bool) -> Result<ArrayRef> {
    let (Some(texts), Some(paths)) = (args.first(), args.get(1)) else {
        return exec_err!("json functions take a JSON text and a path");
    };
    let texts = texts.as_string::<i32>();
    let paths = paths.as_string::<i32>();
    let out: StringArray = (0..texts.len())
        .map(|row| {
            if texts.is_null(row) || paths.is_null(row) {
                return None;
            }
            let json: Value = serde_json::from_str(texts.value(row)).ok()?;
            let found = follow(&json, paths.value(row))?;
            match (scalar, found) {
                (true, Value::String(text)) => Some(text.clone()),
                (true, Value::Object(_) | Value::Array(_) | Value::Null) => None,
                (_, other) => Some(other.to_string()),
            }
        })
        .collect();
    Ok(Arc::new(out))
}

/// `date_diff(unit, from, to)`: whole units from `from` to `to` (negative when `to` is
/// earlier), calendar months for month, quarter and year.
fn date_diff(args: &[ArrayRef]) -> Result<ArrayRef> {
    let (Some(units), Some(from), Some(to)) = (args.first(), args.get(1), args.get(2)) else {
        return exec_err!("date_diff takes a unit and two timestamps");
    };
    let units = units.as_string::<i32>();
    let from = from.as_primitive::<datafusion::arrow::datatypes::TimestampMillisecondType>();
    let to = to.as_primitive::<datafusion::arrow::datatypes::TimestampMillisecondType>();
    let mut out = Vec::with_capacity(units.len());
    for row in 0..units.len() {
        if units.is_null(row) || from.is_null(row) || to.is_null(row) {
            out.push(None);
            continue;
        }
        let (a, b) = (from.value(row), to.value(row));
        let fixed = |unit_millis: i64| Some((b - a) / unit_millis);
        let value = match units.value(row).to_ascii_lowercase().as_str() {
            "millisecond" => fixed(1),
            "second" => fixed(1000),
            "minute" => fixed(60_000),
            "hour" => fixed(3_600_000),
            "day" => fixed(86_400_000),
            "week" => fixed(7 * 86_400_000),
            unit @ ("month" | "quarter" | "year") => {
                let months = months_between(a, b);
                months.map(|m| match unit {
                    "month" => m,
                    "quarter" => m / 3,
                    _ => m / 12,
                })
            }
            other => return exec_err!("date_diff: unknown unit '{other}'"),
        };
        out.push(value);
    }
    Ok(Arc::new(datafusion::arrow::array::Int64Array::from(out)))
}

/// Whole calendar months from `a` to `b` (epoch milliseconds).
fn months_between(a: i64, b: i64) -> Option<i64> {
    let at = |millis: i64| {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000).ok()
    };
    let (start, end) = (at(a.min(b))?, at(a.max(b))?);
    let mut months = (i64::from(end.year()) - i64::from(start.year())) * 12
        + (i64::from(u8::from(end.month())) - i64::from(u8::from(start.month())));
    // Not a whole month yet when the later day-and-time of month comes before the earlier's.
    let within = |t: time::OffsetDateTime| (t.day(), t.time());
    if within(end) < within(start) {
        months -= 1;
    }
    Some(if b < a { -months } else { months })
}

/// `to_iso8601(timestamp)`: `2023-01-30T22:22:30.000Z`.
fn to_iso8601(args: &[ArrayRef]) -> Result<ArrayRef> {
    let Some(times) = args.first() else {
        return exec_err!("to_iso8601 takes a timestamp");
    };
    let times = times.as_primitive::<datafusion::arrow::datatypes::TimestampMillisecondType>();
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    let out: StringArray = (0..times.len())
        .map(|row| {
            if times.is_null(row) {
                return None;
            }
            let at = time::OffsetDateTime::from_unix_timestamp_nanos(
                i128::from(times.value(row)) * 1_000_000,
            )
            .ok()?;
            at.format(&format).ok()
        })
        .collect();
    Ok(Arc::new(out))
}

/// `from_iso8601_timestamp(text)`.
fn from_iso8601_timestamp(args: &[ArrayRef]) -> Result<ArrayRef> {
    let Some(texts) = args.first() else {
        return exec_err!("from_iso8601_timestamp takes a text");
    };
    let texts = texts.as_string::<i32>();
    let out: TimestampMillisecondArray = (0..texts.len())
        .map(|row| {
            if texts.is_null(row) {
                return None;
            }
            let at = time::OffsetDateTime::parse(
                texts.value(row),
                &time::format_description::well_known::Iso8601::DEFAULT,
            )
            .ok()?;
            i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
        })
        .collect();
    Ok(Arc::new(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_months() {
        let at = |text: &str| {
            let t =
                time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                    .expect("time");
            i64::try_from(t.unix_timestamp_nanos() / 1_000_000).expect("millis")
        };
        let (a, b) = (at("2023-01-31T00:00:00Z"), at("2023-03-30T00:00:00Z"));
        assert_eq!(months_between(a, b), Some(1));
        assert_eq!(months_between(b, a), Some(-1));
        assert_eq!(months_between(a, at("2024-01-31T00:00:00Z")), Some(12));
    }

    #[test]
    fn json_paths() {
        let json: Value = serde_json::json!({"a": {"b": [1, {"c": "x"}]}});
        assert_eq!(follow(&json, "$.a.b[1].c"), Some(&Value::from("x")));
        assert_eq!(follow(&json, "$[\"a\"].b[0]"), Some(&Value::from(1)));
        assert_eq!(follow(&json, "$.z"), None);
        assert_eq!(follow(&json, "a"), None);
    }
}
