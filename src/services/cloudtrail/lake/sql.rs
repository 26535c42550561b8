//! The CloudTrail Lake dialect (Trino's) on DataFusion: statement checks, the little
//! translation the dialect needs, result column names, and values as results show them.
//!
//! Translation is kept to what DataFusion cannot take as written:
//! - an event data store is named by its bare ID (`FROM 0f1e2d3c-...`) or ARN, which no SQL
//!   tokenizer reads as one identifier, so both are quoted before parsing;
//! - Trino functions DataFusion lacks are registered as UDFs (`functions.rs`).
//!
//! Everything else (case-insensitive identifiers, nested fields, timestamps compared with
//! string literals) DataFusion already does over the schema in `table.rs`.

use std::ops::ControlFlow;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, MapArray, StructArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::sql::sqlparser::ast::{
    visit_relations, visit_statements, Expr, ObjectNamePart, Query, SelectItem, SetExpr, Statement,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use regex::Regex;

use super::table::canonical;

/// Why a statement is refused (`InvalidQueryStatementException`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StatementError(pub String);

/// A statement ready to plan.
#[derive(Debug)]
pub struct Prepared {
    /// The one query, parsed.
    pub statement: Statement,
    /// The tables it reads, as written (IDs and ARNs lower-cased); CTE names among them.
    pub relations: Vec<String>,
    /// How each result column is named, by position (see [`OutputName`]).
    pub names: Vec<OutputName>,
}

/// The name a result column gets, as Trino names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputName {
    /// An alias, or a column or field in its documented spelling.
    Fixed(String),
    /// `*`: the columns of the table, in their documented spelling.
    Wildcard,
    /// Any other expression: Trino's `_colN`, N its position from 0.
    Positional,
}

/// Bare event data store IDs and ARNs outside quotes and comments.
fn store_reference() -> &'static Regex {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"(?i)\b(?:arn:[a-z-]+:cloudtrail:[a-z0-9-]+:\d{12}:eventdatastore/)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
        )
        .unwrap_or_else(|err| panic!("store reference pattern: {err}"))
    })
}

/// The byte ranges of `text` that are SQL code: not inside a string literal, a quoted
/// identifier or a comment.
fn code_spans(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        let close: Option<&[u8]> = match bytes[i] {
            b'\'' => Some(b"'"),
            b'"' => Some(b"\""),
            b'-' if bytes.get(i + 1) == Some(&b'-') => Some(b"\n"),
            b'/' if bytes.get(i + 1) == Some(&b'*') => Some(b"*/"),
            _ => None,
        };
        let Some(close) = close else {
            i += 1;
            continue;
        };
        spans.push((start, i));
        let from = i + 1;
        let end = bytes[from..]
            .windows(close.len())
            .position(|w| w == close)
            .map_or(bytes.len(), |p| from + p + close.len());
        // A doubled quote inside a literal ('it''s') just starts the next literal.
        i = end;
        start = end;
    }
    spans.push((start, bytes.len()));
    spans
}

/// Quotes bare store IDs and ARNs so the statement parses; they become lower-case quoted
/// identifiers, the names tables are registered under.
pub fn quote_store_references(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut copied = 0;
    for (start, end) in code_spans(text) {
        // The quoted or commented part before this span, unchanged.
        out.push_str(&text[copied..start]);
        let replaced = store_reference()
            .replace_all(&text[start..end], |caps: &regex::Captures<'_>| {
                format!("\"{}\"", caps[0].to_ascii_lowercase())
            });
        out.push_str(&replaced);
        copied = end;
    }
    out.push_str(&text[copied..]);
    out
}

/// Checks a statement and parses it: exactly one read-only query.
pub fn prepare(text: &str) -> Result<Prepared, StatementError> {
    let quoted = quote_store_references(text);
    let mut statements = Parser::parse_sql(&GenericDialect {}, &quoted)
        .map_err(|err| StatementError(format!("Query statement is invalid: {err}")))?;
    if statements.len() != 1 {
        return Err(StatementError(format!(
            "Query statement must be exactly one statement; found {}.",
            statements.len()
        )));
    }
    let statement = statements.remove(0);
    let Statement::Query(query) = &statement else {
        return Err(StatementError(
            "Only SELECT queries are allowed: a query must not change data or settings.".to_owned(),
        ));
    };
    // Data-changing statements nested in the query (a CTE with INSERT, SELECT ... INTO).
    let nested = visit_statements(&statement, |inner| match inner {
        Statement::Query(q) if !writes(q) => ControlFlow::Continue(()),
        _ => ControlFlow::Break(()),
    });
    if nested.is_break() {
        return Err(StatementError(
            "Only SELECT queries are allowed: a query must not change data or settings.".to_owned(),
        ));
    }
    let mut relations = Vec::new();
    let _ = visit_relations(&statement, |name| {
        let parts: Vec<String> = name
            .0
            .iter()
            .map(|part| match part {
                ObjectNamePart::Identifier(ident) => ident.value.clone(),
                other => other.to_string(),
            })
            .collect();
        relations.push(parts.join("."));
        ControlFlow::<()>::Continue(())
    });
    let names = output_names(query);
    Ok(Prepared {
        statement,
        relations,
        names,
    })
}

/// Whether a query writes (`SELECT ... INTO`, or a set operation over a write).
fn writes(query: &Query) -> bool {
    fn body(expr: &SetExpr) -> bool {
        match expr {
            SetExpr::Select(select) => select.into.is_some(),
            SetExpr::Query(query) => writes(query),
            SetExpr::SetOperation { left, right, .. } => body(left) || body(right),
            SetExpr::Values(_) | SetExpr::Table(_) => false,
            SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) => {
                true
            }
        }
    }
    body(&query.body)
}

/// Result column names from the outermost SELECT (the left-most one of a UNION).
fn output_names(query: &Query) -> Vec<OutputName> {
    let mut body = query.body.as_ref();
    loop {
        match body {
            SetExpr::Query(inner) => body = inner.body.as_ref(),
            SetExpr::SetOperation { left, .. } => body = left.as_ref(),
            _ => break,
        }
    }
    let SetExpr::Select(select) = body else {
        return Vec::new();
    };
    select
        .projection
        .iter()
        .map(|item| match item {
            SelectItem::UnnamedExpr(Expr::Identifier(ident)) => OutputName::Fixed(
                canonical(&ident.value).map_or_else(|| ident.value.clone(), str::to_owned),
            ),
            SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => {
                let last = parts.last().map(|i| i.value.as_str()).unwrap_or_default();
                OutputName::Fixed(canonical(last).map_or_else(|| last.to_owned(), str::to_owned))
            }
            SelectItem::ExprWithAlias { alias, .. } => OutputName::Fixed(alias.value.clone()),
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => OutputName::Wildcard,
            _ => OutputName::Positional,
        })
        .collect()
}

/// The names of a result's columns given the planned fields' names: aliases and columns as
/// written, `*` expanded to the documented spellings, other expressions `_colN`.
pub fn column_names(names: &[OutputName], fields: &[String]) -> Vec<String> {
    let spelled = |field: &str| canonical(field).map_or_else(|| field.to_owned(), str::to_owned);
    let wildcards = names.iter().filter(|n| **n == OutputName::Wildcard).count();
    let fixed = names.len() - wildcards;
    // Unknown shape (VALUES, several wildcards): name by the planned fields.
    if names.is_empty() || wildcards > 1 || fields.len() < fixed {
        return fields.iter().map(|f| spelled(f)).collect();
    }
    let expanded = fields.len() - fixed;
    if wildcards == 0 && expanded != 0 {
        return fields.iter().map(|f| spelled(f)).collect();
    }
    let mut out = Vec::with_capacity(fields.len());
    for name in names {
        match name {
            OutputName::Fixed(text) => out.push(text.clone()),
            OutputName::Positional => out.push(format!("_col{}", out.len())),
            OutputName::Wildcard => {
                for field in &fields[out.len()..out.len() + expanded] {
                    out.push(spelled(field));
                }
            }
        }
    }
    out
}

/// How timestamps show in results, as CloudTrail Lake shows them.
const TIMESTAMP_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.3f";

/// A value of a result as the text GetQueryResults gives; `None` for SQL null.
pub fn render(array: &ArrayRef, row: usize) -> Option<String> {
    if array.is_null(row) {
        return None;
    }
    Some(match array.data_type() {
        DataType::Struct(_) => {
            let structs: &StructArray = array.as_struct();
            let parts: Vec<String> = structs
                .fields()
                .iter()
                .zip(structs.columns())
                .map(|(field, column)| {
                    let name = canonical(field.name()).unwrap_or(field.name());
                    format!(
                        "{name}={}",
                        render(column, row).unwrap_or_else(|| "null".into())
                    )
                })
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        DataType::Map(_, _) => {
            let maps: &MapArray = array.as_map();
            let entries = maps.value(row);
            let (keys, values) = (entries.column(0), entries.column(1));
            let parts: Vec<String> = (0..entries.len())
                .map(|i| {
                    format!(
                        "{}={}",
                        render(keys, i).unwrap_or_default(),
                        render(values, i).unwrap_or_else(|| "null".into())
                    )
                })
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        DataType::List(_) | DataType::LargeList(_) => {
            let items = match array.data_type() {
                DataType::List(_) => array.as_list::<i32>().value(row),
                _ => array.as_list::<i64>().value(row),
            };
            let parts: Vec<String> = (0..items.len())
                .map(|i| render(&items, i).unwrap_or_else(|| "null".into()))
                .collect();
            format!("[{}]", parts.join(", "))
        }
        DataType::Boolean => {
            let booleans: &BooleanArray = array.as_boolean();
            booleans.value(row).to_string()
        }
        _ => {
            let options = FormatOptions::default()
                .with_timestamp_format(Some(TIMESTAMP_FORMAT))
                .with_timestamp_tz_format(Some(TIMESTAMP_FORMAT));
            match ArrayFormatter::try_new(array.as_ref(), &options) {
                Ok(formatter) => formatter.value(row).to_string(),
                Err(_) => String::new(),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0";

    #[test]
    fn bare_ids_and_arns_are_quoted_outside_literals() {
        let text = format!("SELECT '{ID}' FROM {ID} -- {ID}\n WHERE x = \"{ID}\"");
        let quoted = quote_store_references(&text);
        let lower = ID.to_ascii_lowercase();
        assert_eq!(
            quoted,
            format!("SELECT '{ID}' FROM \"{lower}\" -- {ID}\n WHERE x = \"{ID}\"")
        );
        let arn = format!("arn:aws:cloudtrail:us-east-1:111122223333:eventdatastore/{ID}");
        let prepared = prepare(&format!("select * from {arn}")).expect("prepared");
        assert_eq!(prepared.relations, vec![arn.to_ascii_lowercase()]);
    }

    #[test]
    fn only_one_read_only_query() {
        let refused = |text: &str| prepare(text).err().map(|e| e.0);
        assert!(refused("SELECT 1; SELECT 2").is_some_and(|m| m.contains("exactly one")));
        assert!(refused("DELETE FROM t").is_some_and(|m| m.contains("Only SELECT")));
        assert!(refused("SELECT * INTO t2 FROM t").is_some_and(|m| m.contains("Only SELECT")));
        assert!(refused("SELEC 1").is_some_and(|m| m.starts_with("Query statement is invalid")));
        assert!(prepare("WITH a AS (SELECT 1) SELECT * FROM a").is_ok());
    }

    #[test]
    fn result_columns_are_named_as_trino_names_them() {
        let prepared = prepare(&format!(
            "SELECT eventData.EVENTNAME, count(*), eventtime AS At FROM {ID} GROUP BY 1, 3"
        ))
        .expect("prepared");
        let fields = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
        assert_eq!(
            column_names(&prepared.names, &fields),
            vec!["eventName", "_col1", "At"]
        );
        let star = prepare(&format!("SELECT *, 1 FROM {ID}")).expect("prepared");
        let fields = vec![
            "eventversion".to_owned(),
            "eventid".to_owned(),
            "x".to_owned(),
        ];
        assert_eq!(
            column_names(&star.names, &fields),
            vec!["eventVersion", "eventID", "_col2"]
        );
    }

    /// Statements from the dialect's pieces, well-formed or not.
    fn statement_soup() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let pieces = prop::sample::select(vec![
            "SELECT ",
            "* ",
            "FROM ",
            ID,
            "arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/",
            " WHERE ",
            "eventData.eventName ",
            "= ",
            "'x' ",
            "'",
            "\"",
            "-- ",
            "/*",
            "*/",
            ";",
            " UNION ",
            " ALL ",
            "(",
            ")",
            "count(*) ",
            "GROUP BY 1 ",
            "INSERT INTO t VALUES (1)",
            "DROP TABLE t",
            "WITH a AS ",
            "element_at(",
            ", ",
            "é",
            "\n",
        ]);
        prop::collection::vec(pieces, 0..20).prop_map(|parts| parts.concat())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        /// Any text is prepared or refused with a message, never a panic; quoting store
        /// references handles any text, multi-byte characters included.
        #[test]
        fn any_statement_is_prepared_or_refused(text in statement_soup()) {
            let _ = quote_store_references(&text);
            if let Err(StatementError(message)) = prepare(&text) {
                proptest::prop_assert!(!message.is_empty());
            }
        }

        #[test]
        fn quoting_accepts_any_text(text in "\\PC{0,60}") {
            let _ = quote_store_references(&text);
        }
    }
}
