//! netwarden's remediation crate: proposals, risk, approvals, change windows and the executor.
//!
//! Boundaries: the executor here is the only code that changes a device, and it does so through
//! the collector's session API. Not built yet: it lands with the self-healing issue.
