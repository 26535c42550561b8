//! Objects of events: newline-delimited JSON, or one Parquet file.
//!
//! Parquet: the Arrow schema is inferred from the object's own events (arrow-json), so OCSF
//! objects (`actor`, `user`, `src_endpoint`, `metadata`, ...) become nested struct columns and
//! arrays list columns; scalars of mixed types in one field become strings. Nulls, empty
//! objects and empty arrays are left out first (Parquet has no empty groups). Snappy
//! compression, one row group per object.

use std::sync::Arc;

use arrow::json::reader::{infer_json_schema_from_iterator, ReaderBuilder};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde_json::Value;

/// Why an object could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// Arrow could not take the events.
    #[error("cannot build Arrow columns: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// The Parquet writer failed.
    #[error("cannot write Parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
}

/// One event per line, each line newline-terminated.
pub fn json_lines(events: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for event in events {
        // Writing a Value into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, event);
        out.push(b'\n');
    }
    out
}

/// Drops nulls, empty objects and empty arrays, recursively.
fn prune(value: &Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::Object(map) => {
            let kept: serde_json::Map<String, Value> = map
                .iter()
                .filter_map(|(k, v)| prune(v).map(|v| (k.clone(), v)))
                .collect();
            (!kept.is_empty()).then_some(Value::Object(kept))
        }
        Value::Array(items) => {
            let kept: Vec<Value> = items.iter().filter_map(prune).collect();
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        other => Some(other.clone()),
    }
}

/// One Parquet file holding `events` as rows.
///
/// Events whose fields disagree in shape (an object in one event, a scalar in another) cannot
/// share nested columns; then `unmapped`, and failing that every nested top-level field, is
/// kept as JSON text instead, so that no event can block its destination.
pub fn parquet(events: &[Value]) -> Result<Vec<u8>, EncodeError> {
    let rows: Vec<Value> = events
        .iter()
        .map(|e| prune(e).unwrap_or_else(|| Value::Object(Default::default())))
        .collect();
    parquet_rows(&rows)
        .or_else(|_| parquet_rows(&flatten(&rows, |key| key == "unmapped")))
        .or_else(|_| parquet_rows(&flatten(&rows, |_| true)))
}

/// `rows` with the nested top-level fields `which` selects as JSON text.
fn flatten(rows: &[Value], which: impl Fn(&str) -> bool) -> Vec<Value> {
    rows.iter()
        .map(|row| match row {
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(key, value)| {
                        let nested = value.is_object() || value.is_array();
                        let value = if nested && which(key) {
                            Value::String(value.to_string())
                        } else {
                            value.clone()
                        };
                        (key.clone(), value)
                    })
                    .collect(),
            ),
            other => other.clone(),
        })
        .collect()
}

fn parquet_rows(rows: &[Value]) -> Result<Vec<u8>, EncodeError> {
    let schema = Arc::new(infer_json_schema_from_iterator(
        rows.iter().map(Ok::<_, arrow::error::ArrowError>),
    )?);
    let mut decoder = ReaderBuilder::new(schema.clone())
        .with_coerce_primitive(true)
        .with_batch_size(rows.len().max(1))
        .build_decoder()?;
    decoder.serialize(rows)?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by(concat!("sluice ", env!("CARGO_PKG_VERSION")).to_owned())
        .build();
    let mut writer = ArrowWriter::try_new(Vec::new(), schema, Some(properties))?;
    while let Some(batch) = decoder.flush()? {
        writer.write(&batch)?;
    }
    Ok(writer.into_inner()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use serde_json::json;

    #[test]
    fn fields_of_disagreeing_shapes_become_json_text() {
        let events = vec![
            json!({"class_uid": 0, "unmapped": {"x": {"a": 1}}}),
            json!({"class_uid": 0, "unmapped": {"x": "text"}}),
        ];
        let bytes = parquet(&events).expect("encodes");
        let reader = SerializedFileReader::new(bytes::Bytes::from(bytes)).expect("reads");
        assert_eq!(reader.metadata().file_metadata().num_rows(), 2);
    }

    #[test]
    fn parquet_holds_every_event_with_nested_columns() {
        let events = vec![
            json!({"class_uid": 3002, "user": {"name": "a", "uid": "1"}, "unmapped": {"x": {}}, "n": null}),
            json!({"class_uid": 3001, "user": {"name": "b"}, "metadata": {"uid": "2"}, "n": 1.5}),
        ];
        let bytes = parquet(&events).expect("encodes");
        let reader = SerializedFileReader::new(bytes::Bytes::from(bytes)).expect("reads");
        assert_eq!(reader.metadata().file_metadata().num_rows(), 2);
        let columns: Vec<String> = reader
            .metadata()
            .file_metadata()
            .schema_descr()
            .columns()
            .iter()
            .map(|c| c.path().string())
            .collect();
        assert!(columns.contains(&"user.name".to_owned()), "{columns:?}");
        assert_eq!(
            json_lines(&events[..1]),
            b"{\"class_uid\":3002,\"n\":null,\"unmapped\":{\"x\":{}},\"user\":{\"name\":\"a\",\"uid\":\"1\"}}\n"
        );
    }
}
