//! Alert rules: the file format, its compilation into checked rules, and rule unit tests.

pub mod expr;
pub mod file;
pub mod testing;

pub use file::{FlapPolicy, Rule, RuleError, Scope, load, parse_rules};
