//! netwarden's remediation crate: turns intent violations into proposed fixes.
//!
//! Playbooks (YAML, [`playbook`]) say which failing intent checks they answer, which item of the
//! device broke (a Rhai condition over its BGP sessions, interfaces or the device), and the CLI that
//! fixes it and the CLI that undoes it (MiniJinja templates). The planner ([`planner`]) sweeps the
//! failing intent results in the database, plans with the device's current state ([`plan`], pure),
//! and records proposals with their risk, whether the policy needs an approval, the evidence and an
//! audit trail ([`store`], migration 0012); a proposal whose violation goes away becomes obsolete.
//!
//! Boundaries: this crate reads intent results and device state from the database (written by the
//! rules and collector crates) and owns the remediation tables. Approving, applying over SSH,
//! verifying and rolling back are the executor's job; it will be the only code here that changes a
//! device, through the collector's session API, and it is not built yet: proposals stay `proposed`
//! until a person acts on them.

pub mod plan;
pub mod planner;
pub mod playbook;
pub mod store;

pub use plan::{DeviceState, Policy, Proposal, Violation};
pub use playbook::{Playbook, PlaybookError, Playbooks, Risk, load, parse_playbooks};
