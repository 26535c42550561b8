//! Trino functions CloudTrail Lake documents that DataFusion lacks, as UDFs under Trino's
//! names. DataFusion already has most of the documented ones under the same names (count,
//! approx_distinct, lower, regexp_like, date_trunc, from_unixtime, coalesce, ...).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray, TimestampMillisecondArray};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::{create_udf, ColumnarValue, ScalarUDF, Volatility};
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
    ctx.register_udf(udf(
        "from_iso8601_timestamp",
        vec![DataType::Utf8],
        DataType::Timestamp(TimeUnit::Millisecond, None),
        from_iso8601_timestamp,
    ));
}

fn udf(
    name: &str,
    inputs: Vec<DataType>,
    output: DataType,
    fun: impl Fn(&[ArrayRef]) -> Result<ArrayRef> + Send + Sync + 'static,
) -> ScalarUDF {
    create_udf(
        name,
        inputs,
        output,
        Volatility::Immutable,
        Arc::new(move |args: &[ColumnarValue]| {
            let scalar = args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let out = fun(&arrays)?;
            if scalar {
                return Ok(ColumnarValue::Scalar(
                    datafusion::common::ScalarValue::try_from_array(&out, 0)?,
                ));
            }
            Ok(ColumnarValue::Array(out))
        }),
    )
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
    fn json_paths() {
        let json: Value = serde_json::json!({"a": {"b": [1, {"c": "x"}]}});
        assert_eq!(follow(&json, "$.a.b[1].c"), Some(&Value::from("x")));
        assert_eq!(follow(&json, "$[\"a\"].b[0]"), Some(&Value::from(1)));
        assert_eq!(follow(&json, "$.z"), None);
        assert_eq!(follow(&json, "a"), None);
    }
}
