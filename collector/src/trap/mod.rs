//! SNMP notifications (traps and informs) as a trigger: a trap from an inventory device makes the scheduler
//! poll that device at once, so a fault shows up in seconds instead of at the next poll interval.
//!
//! - [`decode`](decode_community): v1 and v2c traps, v2c informs (answered), v3 traps under USM (authNoPriv,
//!   authPriv) with the device's credentials localized to the sender's engineID. v3 informs are not supported:
//!   their sender first needs engine discovery answered by an authoritative engine, which snmp2 cannot be.
//! - [`classify`]: snmpTrapOID.0 → [`TrapKind`] (IF-MIB link traps, coldStart/warmStart, BGP4-MIB and
//!   BGP4V2-MIB session traps, OSPF neighbour state changes, authenticationFailure; the rest is `Other`).
//! - [`run`]: the listener. Each datagram ends in one counted outcome (`netwarden_traps_total{kind,outcome}`).
//!
//! The source address selects the device (its `host` must be that IP literal); a v1/v2c community must be
//! the device's v2c community. Communities and keys are never logged.

mod classify;
mod decode;
mod receiver;

pub use classify::{TrapKind, classify, v1_to_v2_varbinds, v1_trap_oid};
pub use decode::{
    CommunityMessage, DecodeError, Notification, TrapVersion, V3Error, V3Header, decode_community, decode_v3,
    message_version, v3_header,
};
pub use receiver::{BindError, DEFAULT_LISTEN, TrapCounts, TrapEvent, TrapHooks, TrapOutcome, TrapStats, bind, run};
