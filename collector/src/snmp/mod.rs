//! SNMP access: the one client and table walker every poll goes through.
//!
//! snmp2 supplies the wire codec and USM; this module owns the session layer it lacks
//! (field-tested in the project's reference notes): a timeout on every request, retries on a
//! fresh socket (a late reply would otherwise poison the session), agent error-status checks,
//! owned values, strictly increasing OIDs, and v3 error classification.

mod client;
mod oid;
mod value;

pub(crate) use client::v3_security;
pub use client::{ClientOptions, Index, SnmpClient, SnmpError, WalkStats, WalkedColumns};
pub use oid::{Oid, OidParseError};
pub use value::Value;
