//! What rules look at: series. A series is one thing a device reports (the device itself, an
//! interface, a BGP session, an OSPF neighbour, an LLDP link) with its labels, its latest fields
//! and a short history of the fields that rules ask history questions about. Observations from
//! the scheduler update series; nothing here does I/O.

use collector::observe::{Observation, Outcome};
use rhai::{Dynamic, ImmutableString};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The kinds of series a rule can name in `source:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    Device,
    Interface,
    BgpPeer,
    OspfNeighbor,
    LldpLink,
    /// A device's running configuration, one reading per change detected between backups.
    Config,
    /// The result of one intent (a declarative assertion) on one device.
    Intent,
    /// One row of a metric query (SQL over the stored series, see `metric`).
    Metric,
}

impl SourceKind {
    pub const ALL: [SourceKind; 8] = [
        SourceKind::Device,
        SourceKind::Interface,
        SourceKind::BgpPeer,
        SourceKind::OspfNeighbor,
        SourceKind::LldpLink,
        SourceKind::Config,
        SourceKind::Intent,
        SourceKind::Metric,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Device => "device",
            SourceKind::Interface => "interface",
            SourceKind::BgpPeer => "bgp_peer",
            SourceKind::OspfNeighbor => "ospf_neighbor",
            SourceKind::LldpLink => "lldp_link",
            SourceKind::Config => "config",
            SourceKind::Intent => "intent",
            SourceKind::Metric => "metric",
        }
    }

    /// The fields a condition can use, in the order a series stores them.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            // status: up | down | unreachable (failing but not yet down); uptime in seconds;
            // uptime_reset: the agent restarted since the previous poll; skipped: ticks skipped by overruns.
            SourceKind::Device => {
                &["status", "reachable", "uptime", "uptime_reset", "consecutive_failures", "poll_ms", "skipped"]
            }
            // Statuses as IF-MIB names (up, down, testing, unknown, dormant, notPresent, lowerLayerDown);
            // rates per second; utilisation in percent of speed (the larger direction).
            SourceKind::Interface => &[
                "admin_status",
                "oper_status",
                "speed_bps",
                "in_bps",
                "out_bps",
                "in_pps",
                "out_pps",
                "in_errors",
                "out_errors",
                "in_discards",
                "out_discards",
                "utilisation",
            ],
            SourceKind::BgpPeer => &["state", "established", "admin_status", "remote_as", "established_time"],
            SourceKind::OspfNeighbor => &["state", "full"],
            // present: the neighbour is in the table now; remote: "sysname port" of the far end.
            SourceKind::LldpLink => &["present", "remote", "remote_device", "remote_port"],
            // changed: true in the reading of a change, false in the one that follows it at once (an
            // event: rules hold it with keep_firing_for); diff: unified, secrets masked.
            SourceKind::Config => &["changed", "lines_added", "lines_removed", "trigger", "diff"],
            // state: pass | fail | unknown (the device did not answer, or the data a check needs is
            // not polled yet); failed: how many checks failed; message: what failed and why.
            SourceKind::Intent => &["state", "passed", "failed", "message", "description"],
            // value: the query's `value` column; its other columns are labels.
            SourceKind::Metric => &["value"],
        }
    }

    /// The type of each field (parallel to [`fields`](Self::fields)), for rule test inputs.
    pub fn field_types(self) -> &'static [FieldType] {
        use FieldType::{Bool, Int, Num, Text};
        match self {
            SourceKind::Device => &[Text, Bool, Num, Bool, Int, Num, Int],
            SourceKind::Interface => &[Text, Text, Num, Num, Num, Num, Num, Num, Num, Num, Num, Num],
            SourceKind::BgpPeer => &[Text, Bool, Text, Int, Num],
            SourceKind::OspfNeighbor => &[Text, Bool],
            SourceKind::LldpLink => &[Bool, Text, Text, Text],
            SourceKind::Config => &[Bool, Int, Int, Text, Text],
            SourceKind::Intent => &[Text, Bool, Int, Text, Text],
            SourceKind::Metric => &[Num],
        }
    }

    /// Labels a series of this kind carries besides device, site, role and vendor.
    pub fn item_labels(self) -> &'static [&'static str] {
        match self {
            SourceKind::Device => &[],
            SourceKind::Interface => &["interface", "alias", "if_index"],
            SourceKind::BgpPeer => &["peer", "remote_as"],
            SourceKind::OspfNeighbor => &["neighbor", "neighbor_address"],
            SourceKind::LldpLink => &["interface"],
            SourceKind::Config => &[],
            SourceKind::Intent => &["intent"],
            SourceKind::Metric => &["metric"],
        }
    }

    pub fn field_index(self, name: &str) -> Option<usize> {
        self.fields().iter().position(|f| *f == name)
    }
}

impl std::str::FromStr for SourceKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        SourceKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            format!("unknown source {s:?} (expected one of {})", SourceKind::ALL.map(|k| k.as_str()).join(", "))
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Text,
    Bool,
    Int,
    Num,
}

impl FieldType {
    /// Reads a value written in a rule test file; `~`/`null`/empty is the missing value.
    pub fn parse(self, s: &str) -> Result<Dynamic, String> {
        if matches!(s, "~" | "null" | "") {
            return Ok(Dynamic::UNIT);
        }
        match self {
            FieldType::Text => Ok(text(s)),
            FieldType::Bool => {
                s.parse::<bool>().map(Dynamic::from_bool).map_err(|_| format!("{s:?} is not true or false"))
            }
            FieldType::Int => {
                s.parse::<i64>().map(Dynamic::from_int).map_err(|_| format!("{s:?} is not a whole number"))
            }
            FieldType::Num => s.parse::<f64>().map(Dynamic::from_float).map_err(|_| format!("{s:?} is not a number")),
        }
    }
}

/// Identity of a series: kind, device, and the item within the device (interface name, peer
/// address, neighbour router id, local port); empty for the device itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    pub kind: SourceKind,
    pub device_id: i64,
    pub item: Arc<str>,
}

/// What the engine knows of a device from the inventory: its labels and scope.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeviceMeta {
    pub id: i64,
    pub name: String,
    pub site: Option<String>,
    pub role: Option<String>,
    pub vendor: Option<String>,
    pub tags: Vec<String>,
}

impl DeviceMeta {
    pub fn from_device(id: i64, d: &collector::inventory::Device) -> DeviceMeta {
        DeviceMeta {
            id,
            name: d.name.clone(),
            site: d.site.clone(),
            role: d.role.clone(),
            vendor: d.vendor.clone(),
            tags: d.tags.clone(),
        }
    }

    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut l = BTreeMap::new();
        l.insert("device".to_string(), self.name.clone());
        for (k, v) in [("site", &self.site), ("role", &self.role), ("vendor", &self.vendor)] {
            if let Some(v) = v {
                l.insert(k.to_string(), v.clone());
            }
        }
        l
    }
}

/// A numeric point of history: numbers and booleans as f64, strings interned as their id.
pub type Point = (i64, f64);

/// One series: labels, latest fields (as Rhai values, parallel to `SourceKind::fields`), and
/// history of the fields rules ask about (timestamps in ms since the epoch).
#[derive(Debug, Clone)]
pub struct Series {
    pub labels: Arc<BTreeMap<String, String>>,
    pub fields: Vec<Dynamic>,
    pub updated_ms: i64,
    /// Per field index, when that field's history is kept.
    /// Shared with evaluations (cloned per evaluation as a pointer, not as data).
    pub history: Arc<Vec<(usize, std::collections::VecDeque<Point>)>>,
}

/// Interns strings for history points (state names are a small set).
#[derive(Debug, Default)]
pub struct Interner {
    ids: HashMap<ImmutableString, u32>,
}

impl Interner {
    pub fn id(&mut self, s: &ImmutableString) -> u32 {
        let n = self.ids.len() as u32;
        *self.ids.entry(s.clone()).or_insert(n)
    }
}

/// Converts a field value into a history point value.
pub fn point_value(v: &Dynamic, interner: &mut Interner) -> f64 {
    if let Ok(f) = v.as_float() {
        f
    } else if let Ok(i) = v.as_int() {
        i as f64
    } else if let Ok(b) = v.as_bool() {
        f64::from(u8::from(b))
    } else if let Some(s) = v.read_lock::<ImmutableString>() {
        f64::from(interner.id(&s))
    } else {
        f64::NAN
    }
}

/// The latest values of one series, before it is merged into the store.
#[derive(Debug, Clone)]
pub struct Reading {
    pub key: SeriesKey,
    pub labels: BTreeMap<String, String>,
    pub fields: Vec<Dynamic>,
}

pub fn if_status_name(v: Option<i16>) -> &'static str {
    match v {
        Some(1) => "up",
        Some(2) => "down",
        Some(3) => "testing",
        Some(5) => "dormant",
        Some(6) => "notPresent",
        Some(7) => "lowerLayerDown",
        _ => "unknown",
    }
}

/// [`if_status_name`] as a Rhai string, shared rather than allocated for every interface of every poll.
fn if_status_text(v: Option<i16>) -> Dynamic {
    static NAMES: std::sync::LazyLock<[ImmutableString; 7]> = std::sync::LazyLock::new(|| {
        [None, Some(1), Some(2), Some(3), Some(5), Some(6), Some(7)].map(|v| ImmutableString::from(if_status_name(v)))
    });
    let i = match v {
        Some(1) => 1,
        Some(2) => 2,
        Some(3) => 3,
        Some(5) => 4,
        Some(6) => 5,
        Some(7) => 6,
        _ => 0,
    };
    Dynamic::from(NAMES[i].clone())
}

fn num(v: Option<f64>) -> Dynamic {
    v.map_or(Dynamic::UNIT, Dynamic::from_float)
}

fn text(s: &str) -> Dynamic {
    Dynamic::from(ImmutableString::from(s))
}

/// Readings from one observation. `previous_uptime` is the device's sysUpTime (ticks) at the
/// previous poll, to detect restarts. A failed poll yields only the device reading: the other
/// series keep their last values (they are stale, not gone).
pub fn readings(obs: &Observation, meta: &DeviceMeta, previous_uptime: Option<u32>) -> Vec<Reading> {
    let base = meta.labels();
    let device_key = SeriesKey { kind: SourceKind::Device, device_id: obs.device_id, item: Arc::from("") };
    let mut out = Vec::new();
    match &obs.outcome {
        Outcome::Failed { consecutive_failures, down, .. } => {
            out.push(Reading {
                key: device_key,
                labels: base,
                fields: vec![
                    text(if *down { "down" } else { "unreachable" }),
                    Dynamic::from_bool(false),
                    Dynamic::UNIT,
                    Dynamic::from_bool(false),
                    Dynamic::from_int(i64::from(*consecutive_failures)),
                    Dynamic::UNIT,
                    Dynamic::from_int(0),
                ],
            });
        }
        Outcome::Overrun { skipped } => {
            // Only the skipped count changes; the engine merges it into the last device reading.
            out.push(Reading {
                key: device_key,
                labels: base,
                fields: vec![
                    Dynamic::UNIT,
                    Dynamic::UNIT,
                    Dynamic::UNIT,
                    Dynamic::UNIT,
                    Dynamic::UNIT,
                    Dynamic::UNIT,
                    Dynamic::from_int(*skipped),
                ],
            });
        }
        Outcome::Polled { poll, rates } => {
            let uptime = poll.system.sys_uptime_ticks;
            let reset = matches!((previous_uptime, uptime), (Some(p), Some(u)) if u < p);
            out.push(Reading {
                key: device_key,
                labels: base.clone(),
                fields: vec![
                    text("up"),
                    Dynamic::from_bool(true),
                    num(uptime.map(|t| f64::from(t) / 100.0)),
                    Dynamic::from_bool(reset),
                    Dynamic::from_int(0),
                    Dynamic::from_float(poll.duration.as_secs_f64() * 1000.0),
                    Dynamic::from_int(0),
                ],
            });
            let keys = collector::ifmib::tracking_keys(&poll.interfaces);
            for (i, (row, key)) in poll.interfaces.iter().zip(keys).enumerate() {
                let r = rates.get(i).cloned().unwrap_or_default();
                let speed = row.speed_bps.filter(|s| *s > 0).map(|s| s as f64);
                let utilisation = match (speed, r.in_bps, r.out_bps) {
                    (Some(s), Some(a), Some(b)) => Some(a.max(b) / s * 100.0),
                    (Some(s), Some(a), None) | (Some(s), None, Some(a)) => Some(a / s * 100.0),
                    _ => None,
                };
                let mut labels = base.clone();
                labels.insert("interface".into(), key.clone());
                labels.insert("if_index".into(), row.if_index.to_string());
                if let Some(a) = row.alias.as_ref().filter(|a| !a.is_empty()) {
                    labels.insert("alias".into(), a.clone());
                }
                out.push(Reading {
                    key: SeriesKey { kind: SourceKind::Interface, device_id: obs.device_id, item: Arc::from(key) },
                    labels,
                    fields: vec![
                        if_status_text(row.admin_status),
                        if_status_text(row.oper_status),
                        num(speed),
                        num(r.in_bps),
                        num(r.out_bps),
                        num(r.in_pps),
                        num(r.out_pps),
                        num(r.in_errors),
                        num(r.out_errors),
                        num(r.in_discards),
                        num(r.out_discards),
                        num(utilisation),
                    ],
                });
            }
            if let Some(routing) = &poll.routing {
                // One series per session: per-family records repeat the session fields.
                let mut seen = std::collections::HashSet::new();
                for p in &routing.bgp {
                    let item = p.peer_addr.to_string();
                    if !seen.insert(item.clone()) {
                        continue;
                    }
                    let mut labels = base.clone();
                    labels.insert("peer".into(), item.clone());
                    labels.insert("remote_as".into(), p.remote_as.to_string());
                    let state = collector::store::routing::bgp_state_name(p.state);
                    out.push(Reading {
                        key: SeriesKey { kind: SourceKind::BgpPeer, device_id: obs.device_id, item: Arc::from(item) },
                        labels,
                        fields: vec![
                            text(&state),
                            Dynamic::from_bool(state == "established"),
                            text(match p.admin_status {
                                Some(collector::routing::BgpAdminStatus::Stop) => "stop",
                                Some(collector::routing::BgpAdminStatus::Start) => "start",
                                None => "unknown",
                            }),
                            Dynamic::from_int(i64::from(p.remote_as)),
                            num(p.established_time_s.map(f64::from)),
                        ],
                    });
                }
                for n in &routing.ospf_neighbors {
                    let item = n.router_id.to_string();
                    let mut labels = base.clone();
                    labels.insert("neighbor".into(), item.clone());
                    labels.insert("neighbor_address".into(), n.addr.to_string());
                    let state = format!("{:?}", n.state).to_lowercase();
                    out.push(Reading {
                        key: SeriesKey {
                            kind: SourceKind::OspfNeighbor,
                            device_id: obs.device_id,
                            item: Arc::from(item),
                        },
                        labels,
                        fields: vec![text(&state), Dynamic::from_bool(state == "full")],
                    });
                }
                for n in &routing.neighbors {
                    let port = n.local_if_name.clone().unwrap_or_else(|| format!("port {}", n.local_port_num));
                    let remote_device = n.sys_name.clone().unwrap_or_else(|| n.chassis_id.clone());
                    let mut labels = base.clone();
                    labels.insert("interface".into(), port.clone());
                    out.push(Reading {
                        key: SeriesKey { kind: SourceKind::LldpLink, device_id: obs.device_id, item: Arc::from(port) },
                        labels,
                        fields: vec![
                            Dynamic::from_bool(true),
                            text(&format!("{remote_device} {}", n.port_id)),
                            text(&remote_device),
                            text(&n.port_id),
                        ],
                    });
                }
            }
        }
    }
    out
}

/// Which kinds a successful poll reports in full: a series of these kinds that the poll did not
/// mention has gone (a BGP peer deconfigured, an LLDP neighbour lost).
pub fn complete_kinds(obs: &Observation) -> &'static [SourceKind] {
    match &obs.outcome {
        Outcome::Polled { poll, .. } if poll.routing.is_some() => {
            &[SourceKind::Interface, SourceKind::BgpPeer, SourceKind::OspfNeighbor, SourceKind::LldpLink]
        }
        Outcome::Polled { .. } => &[SourceKind::Interface],
        _ => &[],
    }
}

/// The readings of one configuration change: the change itself (`changed` true) and, right after
/// it, the same values with `changed` false, so a rule on `changed` fires once per change and
/// clears (held by its `keep_firing_for`). The diff is cut to `max_diff` characters.
pub fn config_change_readings(
    device_id: i64,
    meta: &DeviceMeta,
    lines_added: i64,
    lines_removed: i64,
    trigger: &str,
    diff: &str,
    max_diff: usize,
) -> [Reading; 2] {
    let diff: String = if diff.chars().count() > max_diff {
        let cut: String = diff.chars().take(max_diff).collect();
        format!("{cut}\n… (diff cut at {max_diff} characters)")
    } else {
        diff.to_string()
    };
    let key = SeriesKey { kind: SourceKind::Config, device_id, item: Arc::from("") };
    let fields = |changed: bool| {
        vec![
            Dynamic::from_bool(changed),
            Dynamic::from_int(lines_added),
            Dynamic::from_int(lines_removed),
            text(trigger),
            text(&diff),
        ]
    };
    [
        Reading { key: key.clone(), labels: meta.labels(), fields: fields(true) },
        Reading { key, labels: meta.labels(), fields: fields(false) },
    ]
}
