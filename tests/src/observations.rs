//! Scheduler observations built in memory, for driving the alert service without an agent.

use chrono::Utc;
use collector::counters::InterfaceRates;
use collector::ifmib::{InterfaceRow, SystemInfo};
use collector::inventory::Device;
use collector::observe::{Observation, Outcome};
use collector::poll::DevicePoll;
use collector::scheduler::ScheduledDevice;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

/// Device `id` as the scheduler hands it over: v2c on 127.0.0.1, role leaf.
pub fn scheduled(id: i64, name: &str) -> ScheduledDevice {
    let device = Device { id: Some(id), role: Some("leaf".into()), ..Device::v2c(name, "127.0.0.1", 161, "public") };
    ScheduledDevice { id, device }
}

/// The name of port `i` (`eth0`, `eth1`, …).
pub fn port_name(i: usize) -> String {
    format!("eth{i}")
}

/// A successful poll of device `id` with `ports` 10 Gb/s interfaces, all admin up, oper down for
/// the ports in `down`.
pub fn interface_poll(id: i64, name: &str, ports: usize, down: Range<usize>) -> Observation {
    let interfaces = (0..ports)
        .map(|i| InterfaceRow {
            if_index: i as u32 + 1,
            name: Some(port_name(i)),
            speed_bps: Some(10_000_000_000),
            admin_status: Some(1),
            oper_status: Some(if down.contains(&i) { 2 } else { 1 }),
            ..Default::default()
        })
        .collect();
    let poll = DevicePoll {
        target: "127.0.0.1:161".into(),
        system: SystemInfo { sys_uptime_ticks: Some(100_000), ..Default::default() },
        interfaces,
        issues: Vec::new(),
        stats: Default::default(),
        duration: Duration::from_millis(1),
        routing: None,
        routing_error: None,
    };
    Observation {
        device_id: id,
        device: name.into(),
        at: Utc::now(),
        outcome: Outcome::Polled { poll: Arc::new(poll), rates: Arc::new(vec![InterfaceRates::default(); ports]) },
    }
}
