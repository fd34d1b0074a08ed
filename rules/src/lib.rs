//! netwarden's rules crate: the alert engine, the intent engine and the notifiers.
//!
//! Role: evaluate rules over what the collector observed, keep the alert lifecycle (pending,
//! firing, resolved, acknowledged, silenced, inhibited, suppressed by topology), route alerts to
//! receivers with grouping and escalation, and deliver notifications durably through an outbox.
//! `service` is the one task inside `netwarden serve` that owns the alert state and connects the
//! pure parts (engine, suppression, dispatcher) to the database and the outbox worker. `intent`
//! checks declarative assertions (intents) on every poll; its results are a rule source
//! (`IntentViolated`) and are stored for the API and for remediation.
//! Boundaries: it performs no device I/O and never writes a sample; it reads state through the
//! collector's store and observations, and owns only the alert, intent and outbox tables.

pub mod alert;
pub mod config;
pub mod dispatch;
pub mod engine;
pub mod intent;
pub mod matcher;
pub mod metric;
pub mod notify;
pub mod outbox;
pub mod rule;
pub mod service;
pub mod source;
pub mod store;
pub mod suppress;
