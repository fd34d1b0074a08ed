//! netwarden's API crate: the axum HTTP API and the wiring of the `netwarden` binary.
//!
//! Role: configuration, start-up and ordered shutdown of the service (database, migrations,
//! scheduler, sample writer, alert service, remediation planner, HTTP server), the HTTP API, the
//! NOC page, the Grafana provisioning command and the CLI's rendering.
//! Boundaries: it owns no device I/O (that is the collector's) and no tables of its own; it calls
//! the other crates' public functions (the NOC page and the Grafana role read through them or
//! grant on their tables).

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
