//! netwarden's rules crate: the alert engine, the intent engine and the notifiers.
//!
//! Role: evaluate rules and intents over what the collector stored, keep the alert lifecycle, and
//! deliver notifications. Boundaries: it performs no device I/O; it reads samples and state
//! through the collector's store and never writes a sample.
//!
//! Not built yet: the engine lands with the alert-engine issue. This crate exists now so that the
//! dependency flow `collector → rules → remediation → api` is fixed in the workspace from day one.
