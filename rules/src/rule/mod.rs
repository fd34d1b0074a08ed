//! Alert rules: the file format, its compilation into checked rules, and rule unit tests.

pub mod expr;
