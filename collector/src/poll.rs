//! One poll of one device: the system group with a GET, then IF-MIB with a multi-column walk.

use crate::ifmib::{self, DecodeIssue, InterfaceRow, SystemInfo};
use crate::snmp::{SnmpClient, SnmpError, WalkStats};
use std::time::{Duration, Instant};

/// Everything one poll collected, before rates (which need the previous poll).
#[derive(Debug, Clone, serde::Serialize)]
pub struct DevicePoll {
    pub target: String,
    pub system: SystemInfo,
    pub interfaces: Vec<InterfaceRow>,
    /// Cells that did not decode; the rest of the poll is kept.
    #[serde(serialize_with = "issues_as_text")]
    pub issues: Vec<DecodeIssue>,
    #[serde(skip)]
    pub stats: WalkStats,
    pub duration: Duration,
    /// BGP, OSPF and LLDP/CDP state, when asked for ([`poll_device`]).
    pub routing: Option<crate::routing::RoutingPoll>,
    /// Why the routing part failed, when it did (the interface part is still kept).
    pub routing_error: Option<String>,
}

fn issues_as_text<S: serde::Serializer>(v: &[DecodeIssue], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(ToString::to_string))
}

/// Polls the system group and the interface tables. A device without sysUpTime cannot give
/// rates, but its interfaces are still returned.
pub async fn poll_interfaces(client: &mut SnmpClient) -> Result<DevicePoll, SnmpError> {
    let started = Instant::now();
    client.reset_stats();
    client.cache_v3_engine().await?;
    let sys_vbs = client.get(ifmib::system_oids()).await?;
    if sys_vbs.iter().all(|(_, v)| v.is_exception()) {
        return Err(SnmpError::NoSuchObject {
            target: client.target().to_string(),
            oid: ifmib::SYS_UPTIME.parse().expect("static"),
        });
    }
    let system = ifmib::decode_system(&sys_vbs);
    let columns = client.walk_columns(ifmib::if_column_oids()).await?;
    let (interfaces, issues) = ifmib::decode_interfaces(&columns);
    client.close();
    Ok(DevicePoll {
        target: client.target().to_string(),
        system,
        interfaces,
        issues,
        stats: client.stats(),
        duration: started.elapsed(),
        routing: None,
        routing_error: None,
    })
}

/// A full poll: interfaces, then routing and neighbour tables. A failure of the routing walk is
/// kept in `routing_error`; the interface data still counts.
pub async fn poll_device(client: &mut SnmpClient) -> Result<DevicePoll, SnmpError> {
    let started = Instant::now();
    let mut poll = poll_interfaces(client).await?;
    match crate::routing::poll_routing(client, &poll.interfaces).await {
        Ok(r) => poll.routing = Some(r),
        Err(e) => poll.routing_error = Some(e.to_string()),
    }
    client.close();
    // The client counts from poll_interfaces' reset: both parts together.
    poll.stats = client.stats();
    poll.duration = started.elapsed();
    Ok(poll)
}
