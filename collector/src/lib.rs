//! netwarden's collector: everything that talks to devices and everything that stores what they said.
//!
//! Role: the inventory (devices and their encrypted credentials), SNMP access (the one walker every
//! poll goes through), the polling scheduler, the decoders from varbinds to typed facts, counter
//! math, and the sample store (binary COPY into PostgreSQL, partitioned or TimescaleDB).
//!
//! Boundaries: only this crate speaks SNMP (and, later, SSH); it knows nothing of alert rules,
//! remediation or HTTP. Other crates read what it stored through its `store` modules and ask it
//! to poll through its public API; they never open a device session themselves.

pub mod cluster;
pub mod configs;
pub mod counters;
pub mod db;
pub mod ifmib;
pub mod inventory;
pub mod observe;
pub mod poll;
pub mod routing;
pub mod scheduler;
pub mod secrets;
pub mod sim;
pub mod snmp;
pub mod ssh;
pub mod store;
pub mod topology;
pub mod trap;
