//! The topology in the shape Grafana's Node Graph panel reads: a nodes frame and an edges frame whose field
//! names are the panel's (`id`, `title`, `subTitle`, `mainStat`, `secondaryStat`, `color`, `arc__*`,
//! `detail__*`; edges `id`, `source`, `target`, ...). Grafana matches the names case-insensitively, so the
//! camelCase spelling of `@grafana/data`'s `NodeGraphDataFrameFieldNames` works for old and new versions.
//!
//! Node ring: exactly one of `arc__up`, `arc__down`, `arc__unknown` is 1 for an inventory device (its status);
//! give those fields colors with field overrides (`color.fixedColor` green/red/gray; with the Infinity data
//! source, `arc__up_color` style columns are not needed). Discovered nodes have all arcs 0, so the panel falls
//! back to their `color`. Edges are colored by link status and dashed when only one end reports them.

use super::{DeviceStatus, Link, Node, NodeOrigin, OperStatus, SeenFrom, Topology};
use serde::{Deserialize, Serialize};

/// Both frames of the Node Graph panel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeGraph {
    pub nodes: Vec<NodeGraphNode>,
    pub edges: Vec<NodeGraphEdge>,
}

/// One row of the nodes frame. Every row has every field (empty string when there is nothing to say), so
/// the frame's columns are the same whatever the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeGraphNode {
    pub id: String,
    pub title: String,
    #[serde(rename = "subTitle")]
    pub sub_title: String,
    /// The node's links that are up, e.g. "3/4 links up".
    #[serde(rename = "mainStat")]
    pub main_stat: String,
    /// Management address.
    #[serde(rename = "secondaryStat")]
    pub secondary_stat: String,
    pub color: String,
    #[serde(rename = "arc__up")]
    pub arc_up: f64,
    #[serde(rename = "arc__down")]
    pub arc_down: f64,
    #[serde(rename = "arc__unknown")]
    pub arc_unknown: f64,
    #[serde(rename = "detail__status")]
    pub detail_status: String,
    #[serde(rename = "detail__role")]
    pub detail_role: String,
    #[serde(rename = "detail__site")]
    pub detail_site: String,
    #[serde(rename = "detail__sys_name")]
    pub detail_sys_name: String,
    #[serde(rename = "detail__chassis_ids")]
    pub detail_chassis_ids: String,
    /// "inventory" or "discovered (seen by leaf1, leaf2)".
    #[serde(rename = "detail__origin")]
    pub detail_origin: String,
}

/// One row of the edges frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeGraphEdge {
    /// The link key, `a:if--b:if`.
    pub id: String,
    pub source: String,
    pub target: String,
    /// Link status.
    #[serde(rename = "mainStat")]
    pub main_stat: String,
    /// The two interfaces, `source if ↔ target if`.
    #[serde(rename = "secondaryStat")]
    pub secondary_stat: String,
    pub color: String,
    /// Dashed when only one end reports the link, solid (empty) otherwise.
    #[serde(rename = "strokeDasharray")]
    pub stroke_dasharray: String,
    #[serde(rename = "detail__source_status")]
    pub detail_source_status: String,
    #[serde(rename = "detail__target_status")]
    pub detail_target_status: String,
    #[serde(rename = "detail__seen_from")]
    pub detail_seen_from: String,
    #[serde(rename = "detail__protocols")]
    pub detail_protocols: String,
}

const GREEN: &str = "green";
const RED: &str = "red";
const GRAY: &str = "gray";
const BLUE: &str = "blue";

impl Topology {
    /// The Node Graph panel's nodes and edges.
    pub fn node_graph(&self) -> NodeGraph {
        let nodes = self.nodes().iter().map(|n| self.graph_node(n)).collect();
        let edges = self.links().iter().map(graph_edge).collect();
        NodeGraph { nodes, edges }
    }

    fn graph_node(&self, node: &Node) -> NodeGraphNode {
        let links = self.links_of(&node.name);
        let up = links.iter().filter(|l| l.is_up()).count();
        let (arcs, color, origin) = match &node.origin {
            NodeOrigin::Inventory { .. } => {
                let (arcs, color) = match node.status {
                    DeviceStatus::Up => ([1.0, 0.0, 0.0], GREEN),
                    DeviceStatus::Down => ([0.0, 1.0, 0.0], RED),
                    DeviceStatus::Unknown => ([0.0, 0.0, 1.0], GRAY),
                };
                (arcs, color, "inventory".to_owned())
            }
            NodeOrigin::Discovered { seen_by, .. } => {
                ([0.0; 3], BLUE, format!("discovered (seen by {})", seen_by.join(", ")))
            }
        };
        let title = match &node.origin {
            NodeOrigin::Discovered { chassis_id, .. } => node.sys_name.clone().unwrap_or_else(|| chassis_id.clone()),
            NodeOrigin::Inventory { .. } => node.name.clone(),
        };
        let sub_title = match (&node.origin, node.role.as_deref(), node.site.as_deref()) {
            (NodeOrigin::Discovered { .. }, ..) => "discovered".to_owned(),
            (_, Some(role), Some(site)) => format!("{role} · {site}"),
            (_, Some(one), None) | (_, None, Some(one)) => one.to_owned(),
            (_, None, None) => String::new(),
        };
        let status = serde_json::to_value(node.status).ok().and_then(|v| v.as_str().map(str::to_owned));
        NodeGraphNode {
            id: node.name.clone(),
            title,
            sub_title,
            main_stat: format!("{up}/{} links up", links.len()),
            secondary_stat: node.mgmt_addr.clone().unwrap_or_default(),
            color: color.to_owned(),
            arc_up: arcs[0],
            arc_down: arcs[1],
            arc_unknown: arcs[2],
            detail_status: status.unwrap_or_default(),
            detail_role: node.role.clone().unwrap_or_default(),
            detail_site: node.site.clone().unwrap_or_default(),
            detail_sys_name: node.sys_name.clone().unwrap_or_default(),
            detail_chassis_ids: node.chassis_ids.join(", "),
            detail_origin: origin,
        }
    }
}

fn graph_edge(link: &Link) -> NodeGraphEdge {
    let color = match link.status {
        OperStatus::Up => GREEN,
        OperStatus::Down => RED,
        OperStatus::Unknown => GRAY,
    };
    let protocols: Vec<&str> = link
        .protocols
        .iter()
        .map(|p| match p {
            super::Protocol::Lldp => "lldp",
            super::Protocol::Cdp => "cdp",
        })
        .collect();
    NodeGraphEdge {
        id: link.key.to_string(),
        source: link.key.a.device.clone(),
        target: link.key.b.device.clone(),
        main_stat: link.status.as_str().to_owned(),
        secondary_stat: format!("{} ↔ {}", link.key.a.interface, link.key.b.interface),
        color: color.to_owned(),
        stroke_dasharray: if link.seen_from == SeenFrom::Both { String::new() } else { "6 4".to_owned() },
        detail_source_status: link.a_status.as_str().to_owned(),
        detail_target_status: link.b_status.as_str().to_owned(),
        detail_seen_from: link.seen_from.as_str().to_owned(),
        detail_protocols: protocols.join(","),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    fn keys(v: &serde_json::Value) -> Vec<&str> {
        v.as_object().unwrap().keys().map(String::as_str).collect()
    }

    #[test]
    fn field_names_are_the_panels() {
        let (devices, mut adjacencies) = lab();
        adjacencies.push(unknown_neighbour());
        set_oper(&mut adjacencies, LEAF2, "eth1", Some(false));
        let graph = Topology::build(&devices, &adjacencies).node_graph();
        let json = serde_json::to_value(&graph).unwrap();

        let mut node_keys = keys(&json["nodes"][0]);
        node_keys.sort_unstable();
        assert_eq!(
            node_keys,
            [
                "arc__down",
                "arc__unknown",
                "arc__up",
                "color",
                "detail__chassis_ids",
                "detail__origin",
                "detail__role",
                "detail__site",
                "detail__status",
                "detail__sys_name",
                "id",
                "mainStat",
                "secondaryStat",
                "subTitle",
                "title",
            ]
        );
        let mut edge_keys = keys(&json["edges"][0]);
        edge_keys.sort_unstable();
        assert_eq!(
            edge_keys,
            [
                "color",
                "detail__protocols",
                "detail__seen_from",
                "detail__source_status",
                "detail__target_status",
                "id",
                "mainStat",
                "secondaryStat",
                "source",
                "strokeDasharray",
                "target",
            ]
        );

        let discovered = &json["nodes"][0];
        assert_eq!(discovered["id"], "discovered:02:00:00:00:00:99");
        assert_eq!(discovered["title"], "server1.lab");
        assert_eq!(discovered["color"], "blue");
        assert_eq!(discovered["arc__up"], 0.0);
        assert_eq!(discovered["detail__origin"], "discovered (seen by leaf1)");

        let leaf2 = json["nodes"].as_array().unwrap().iter().find(|n| n["id"] == "leaf2").unwrap();
        assert_eq!(leaf2["subTitle"], "leaf · lab");
        assert_eq!(leaf2["mainStat"], "1/2 links up");
        assert_eq!(leaf2["secondaryStat"], "10.255.0.12");
        assert_eq!(leaf2["arc__up"], 1.0);

        let edges = json["edges"].as_array().unwrap();
        assert_eq!(edges.len(), 7);
        let server = &edges[0];
        assert_eq!(server["source"], "discovered:02:00:00:00:00:99");
        assert_eq!(server["target"], "leaf1");
        assert_eq!(server["strokeDasharray"], "6 4");
        let down = edges.iter().find(|e| e["id"] == "leaf2:eth1--spine1:eth2").unwrap();
        assert_eq!(down["mainStat"], "down");
        assert_eq!(down["color"], "red");
        assert_eq!(down["secondaryStat"], "eth1 ↔ eth2");
        assert_eq!(down["strokeDasharray"], "");
        assert_eq!(down["detail__source_status"], "down");
        assert_eq!(down["detail__target_status"], "up");
    }
}
