//! The simulator's core: SNMP v2c agents for simulated devices, thousands per process on loopback.
//!
//! - [`mib`]: a device's ordered OID → value store, with values computed at request time
//!   (counters advancing by a rate, sysUpTime from the device's start);
//! - [`codec`]: v2c requests in (decoded with snmp2), BER responses out, within a size limit;
//! - [`agent`]: one UDP socket per device served by one tokio task, with optional latency;
//! - [`device`]: builders that fill a MIB (system group, IF-MIB with N ports);
//! - [`fabric`]: a spine-leaf fabric as plain data (devices, AS numbers, addresses, cables);
//! - [`wiring`]: fills each fabric device's MIB (IF-MIB, BGP4-MIB, OSPF-MIB, LLDP-MIB) from
//!   the model, both ends of a cable from one record;
//! - [`faults`] and [`running`]: faults (link down, BGP down, device down, reboot, counter
//!   wrap, slow and malformed agents) injected into a running [`Fabric`];
//! - [`control`]: the line protocol on a loopback TCP port that `netwarden sim` serves;
//! - [`cli`] and [`ssh`]: each device's IOS/FRR-like CLI over SSH (russh server, password
//!   login), whose configuration changes go through the same state as the faults;
//! - [`traps`]: SNMPv2c notifications (linkDown/linkUp, coldStart, BGP) sent when state changes.
//!
//! Boundaries: the simulator only answers; it never polls, and nothing in it is used by the
//! poller. It lives in `collector` because only this crate speaks SNMP.

pub mod agent;
pub mod cli;
pub mod codec;
pub mod control;
pub mod device;
pub mod fabric;
pub mod faults;
pub mod mib;
pub mod running;
pub mod ssh;
pub mod traps;
pub mod wiring;

pub use agent::{AgentBehaviour, AgentConfig, AgentStats, SharedMib, SimAgent, bind_agents};
pub use codec::{Malformed, ResponseLimits};
pub use control::ControlServer;
pub use fabric::{FabricModel, FabricSpec, Role};
pub use faults::{Command, Fault};
pub use mib::{BulkParams, Mib, MibValue};
pub use running::{Fabric, FaultError, SshEndpoints};
pub use ssh::{SimSsh, SimSshConfig};
pub use traps::TrapSender;
