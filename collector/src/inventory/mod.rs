//! The inventory: devices, credentials, import and export.

pub mod model;
pub use model::*;

pub mod file;
pub mod node;
mod protocols;
pub mod store;
pub mod view;

pub use file::{
    Format, InventoryError, InventoryErrors, KeyFiles, export_csv, export_yaml, parse_inventory, parse_inventory_with,
    read_inventory_file,
};
pub use store::{ImportMode, ImportReport, StoreError};
pub use view::{DeviceView, SnmpVersion, SshAuthKind};
