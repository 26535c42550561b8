//! Sluice: a self-hostable server that speaks the real AWS APIs for log and audit-event
//! destinations.
//!
//! Modules in reading order:
//! - [`cli`], [`config`], [`app`]: start-up, configuration, wiring and shutdown;
//! - [`listener`]: the accept loop: connection limit, header and idle timeouts;
//! - [`unparsable`]: AWS answers for requests hyper cannot parse;
//! - [`server`]: request handling, `/_sluice/*`, browser guards, body limits;
//! - [`protocol`]: SigV4, the JSON 1.1 and rest-json codecs, model-driven validation, errors;
//! - [`services`]: one module per AWS service (`logs`, ...);
//! - [`store`]: durable state behind the [`store::Store`] trait;
//! - [`pipeline`]: the outbox and the delivery worker that moves accepted data to targets;
//! - [`sweeper`]: retention applied in the background;
//! - [`lease`]: background work held by one node at a time when nodes share a store;
//! - [`policy`]: IAM policy documents;
//! - [`arn`], [`token`]: ARNs and signed pagination tokens.

pub mod app;
pub mod arn;
pub mod cli;
pub mod config;
#[cfg(test)]
mod import_graph;
pub mod lease;
pub mod listener;
pub mod pipeline;
pub mod policy;
pub mod protocol;
pub mod server;
pub mod services;
pub mod store;
pub mod sweeper;
pub mod token;
pub mod unparsable;
