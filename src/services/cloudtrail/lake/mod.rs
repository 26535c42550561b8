//! CloudTrail Lake queries: SQL over event data stores on Apache DataFusion.
//!
//! `sql.rs` checks a statement (one read-only query) and does the little translation the
//! Lake dialect needs; `table.rs` exposes each event data store as a DataFusion table with
//! the integration event schema, read from the `cloudtrail_events` rows a page at a time;
//! `segments.rs` compacts each store's rows into Parquet segments in the background;
//! `counts.rs` keeps per-segment counts of few-valued columns and answers counts by one of
//! them from those;
//! `functions.rs` adds the Trino functions DataFusion lacks; `runner.rs` plans and runs
//! queries in the background; `queries.rs` is the API and the stored query records;
//! `delivery.rs` writes results to DeliveryS3Uri as gzip CSV files with a signed sign file.

mod counts;
pub mod delivery;
mod functions;
pub mod queries;
mod runner;
mod segments;
mod sql;
mod table;

pub use runner::Lake;
pub use segments::LakeFiles;
