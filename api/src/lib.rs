//! netwarden's API crate: the axum HTTP API and the wiring of the `netwarden` binary.
//!
//! Role: configuration, start-up and ordered shutdown of the service (database, migrations,
//! scheduler, sample writer, HTTP server), the HTTP API and the CLI's rendering.
//! Boundaries: it owns no device I/O (that is the collector's) and no SQL of its own tables
//! yet; it calls the other crates' public functions.

pub mod cli_ssh;
pub mod config;
pub mod demo;
pub mod grafana;
pub mod http;
pub mod http_alerts;
pub mod http_intents;
pub mod http_remediation;
pub mod noc;
pub mod render;
pub mod runtime;
pub mod telemetry;
