//! The simulator's core: SNMP v2c agents for simulated devices, thousands per process on loopback.
//!
//! - [`mib`]: a device's ordered OID → value store, with values computed at request time
//!   (counters advancing by a rate, sysUpTime from the device's start);
//! - [`codec`]: v2c requests in (decoded with snmp2), BER responses out, within a size limit;
//! - [`agent`]: one UDP socket per device served by one tokio task, with optional latency;
//! - [`device`]: builders that fill a MIB (system group, IF-MIB with N ports).
//!
//! Boundaries: the simulator only answers; it never polls, and nothing in it is used by the
//! poller. It lives in `collector` because only this crate speaks SNMP.

pub mod agent;
pub mod codec;
pub mod device;
pub mod mib;

pub use agent::{AgentConfig, AgentStats, SharedMib, SimAgent, bind_agents};
pub use codec::ResponseLimits;
pub use mib::{BulkParams, Mib, MibValue};
