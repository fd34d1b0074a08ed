//! Why a firing alert does not page: silences (label matchers, start and end), recurring
//! maintenance windows (a cron schedule plus a duration, scoped like rules), declarative
//! inhibition rules, and topology-derived suppression (the device sits only behind a device
//! that is down, per the discovered topology). Pure functions over the current state.

use crate::alert::{Labels, Suppression};
use crate::matcher::{Matcher, all_match};
use crate::rule::Scope;
use crate::source::DeviceMeta;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// A silence as stored and managed through the API.
#[derive(Debug, Clone, PartialEq)]
pub struct Silence {
    pub id: i64,
    pub matchers: Vec<Matcher>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub created_by: String,
    pub comment: String,
}

impl Silence {
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.starts_at <= now && now < self.ends_at
    }
}

/// A recurring maintenance window: `schedule` (5-field cron, UTC) starts it, `duration` ends it.
#[derive(Debug, Clone)]
pub struct MaintenanceWindow {
    pub name: String,
    pub schedule: croner::Cron,
    pub duration: Duration,
    pub scope: Scope,
    pub matchers: Vec<Matcher>,
}

impl MaintenanceWindow {
    /// The occurrence covering `now`, as (start, end).
    pub fn active_at(&self, now: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let start = self.schedule.find_previous_occurrence(&now, true).ok()?;
        let end = start + chrono::Duration::from_std(self.duration).ok()?;
        (now < end).then_some((start, end))
    }

    fn covers(&self, labels: &Labels, device: Option<&DeviceMeta>, now: DateTime<Utc>) -> bool {
        let in_scope = match device {
            Some(d) => self.scope.includes(d),
            None => self.scope == Scope::default(),
        };
        in_scope && all_match(&self.matchers, labels) && self.active_at(now).is_some()
    }
}

/// "While an alert matching `source` fires, alerts matching `target` with the same values of the
/// `equal` labels do not page" (e.g. a device down inhibits its interface alerts).
#[derive(Debug, Clone)]
pub struct InhibitRule {
    pub name: String,
    pub source: Vec<Matcher>,
    pub target: Vec<Matcher>,
    pub equal: Vec<String>,
}

/// What suppression is decided from.
pub struct Context<'a> {
    pub silences: &'a [Silence],
    pub windows: &'a [MaintenanceWindow],
    pub inhibit: &'a [InhibitRule],
    /// Device → the down device it sits behind (from `Topology::cut_off_by`).
    pub cut_off: &'a BTreeMap<String, String>,
    pub now: DateTime<Utc>,
    /// Per inhibition rule: the values of its `equal` labels → the first two firing alerts matching its source
    /// (two, so that an alert that is its own source still finds another).
    sources: Vec<HashMap<Vec<&'a str>, [Option<&'a str>; 2]>>,
}

impl<'a> Context<'a> {
    /// `firing`: the firing alerts (fingerprint, labels), the sources of inhibition. Indexed once here, so
    /// deciding an alert costs one lookup per inhibition rule rather than a scan of every firing alert.
    pub fn new(
        silences: &'a [Silence],
        windows: &'a [MaintenanceWindow],
        inhibit: &'a [InhibitRule],
        firing: &[(&'a str, &'a Labels)],
        cut_off: &'a BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> Context<'a> {
        let sources = inhibit
            .iter()
            .map(|rule| {
                let mut index: HashMap<Vec<&'a str>, [Option<&'a str>; 2]> = HashMap::new();
                for &(fp, labels) in firing.iter().filter(|(_, l)| all_match(&rule.source, l)) {
                    let slot = index.entry(equal_values(&rule.equal, labels)).or_default();
                    if slot[0].is_none() {
                        slot[0] = Some(fp);
                    } else if slot[1].is_none() {
                        slot[1] = Some(fp);
                    }
                }
                index
            })
            .collect();
        Context { silences, windows, inhibit, cut_off, now, sources }
    }
}

/// The values of `keys` in `labels`, a missing label counting as empty.
fn equal_values<'l>(keys: &[String], labels: &'l Labels) -> Vec<&'l str> {
    keys.iter().map(|k| labels.get(k).map(String::as_str).unwrap_or("")).collect()
}

/// The reason a firing alert is suppressed, if any. Topology comes first (it names the cause),
/// then inhibition, maintenance windows and silences.
pub fn suppression(
    fingerprint: &str,
    labels: &Labels,
    device: Option<&DeviceMeta>,
    ctx: &Context<'_>,
) -> Option<Suppression> {
    if let Some(parent) = labels.get("device").and_then(|d| ctx.cut_off.get(d)) {
        return Some(Suppression::Topology { device: parent.clone() });
    }
    for (rule, sources) in ctx.inhibit.iter().zip(&ctx.sources) {
        if !all_match(&rule.target, labels) {
            continue;
        }
        let source = sources
            .get(&equal_values(&rule.equal, labels))
            .and_then(|slot| slot.iter().flatten().find(|fp| **fp != fingerprint));
        if let Some(fp) = source {
            return Some(Suppression::Inhibited { rule: rule.name.clone(), by_fingerprint: fp.to_string() });
        }
    }
    if let Some(w) = ctx.windows.iter().find(|w| w.covers(labels, device, ctx.now)) {
        return Some(Suppression::Maintenance { window: w.name.clone() });
    }
    ctx.silences
        .iter()
        .find(|s| s.is_active(ctx.now) && all_match(&s.matchers, labels))
        .map(|s| Suppression::Silenced { silence_id: s.id })
}

/// The next time after `now` at which a silence or maintenance window starts or ends: until then, time alone
/// changes no alert's suppression.
pub fn next_boundary(silences: &[Silence], windows: &[MaintenanceWindow], now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let silence_times = silences.iter().flat_map(|s| [s.starts_at, s.ends_at]);
    let window_times = windows.iter().flat_map(|w| {
        let end = w.active_at(now).map(|(_, end)| end);
        let next_start = w.schedule.find_next_occurrence(&now, false).ok();
        [end, next_start].into_iter().flatten()
    });
    silence_times.chain(window_times).filter(|t| *t > now).min()
}

/// Maintenance windows as written in the alerting file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWindow {
    pub name: String,
    /// Five-field cron (minute hour day-of-month month day-of-week), UTC.
    pub schedule: String,
    pub duration: String,
    #[serde(default)]
    pub scope: Scope,
    #[serde(default, rename = "match")]
    pub matchers: Vec<String>,
}

impl RawWindow {
    pub fn compile(&self) -> Result<MaintenanceWindow, String> {
        let schedule = self
            .schedule
            .parse::<croner::Cron>()
            .map_err(|e| format!("maintenance window {:?}: schedule {:?}: {e}", self.name, self.schedule))?;
        let duration = humantime::parse_duration(&self.duration)
            .map_err(|e| format!("maintenance window {:?}: duration {:?}: {e}", self.name, self.duration))?;
        let matchers = self
            .matchers
            .iter()
            .map(|m| Matcher::parse(m))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("maintenance window {:?}: {e}", self.name))?;
        Ok(MaintenanceWindow { name: self.name.clone(), schedule, duration, scope: self.scope.clone(), matchers })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInhibit {
    pub name: String,
    pub source_match: Vec<String>,
    pub target_match: Vec<String>,
    #[serde(default)]
    pub equal: Vec<String>,
}

impl RawInhibit {
    pub fn compile(&self) -> Result<InhibitRule, String> {
        let parse = |list: &[String]| {
            list.iter()
                .map(|m| Matcher::parse(m))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("inhibit rule {:?}: {e}", self.name))
        };
        Ok(InhibitRule {
            name: self.name.clone(),
            source: parse(&self.source_match)?,
            target: parse(&self.target_match)?,
            equal: self.equal.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn ctx<'a>(
        silences: &'a [Silence],
        windows: &'a [MaintenanceWindow],
        inhibit: &'a [InhibitRule],
        firing: &'a [(String, Labels)],
        cut_off: &'a BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> Context<'a> {
        let firing: Vec<(&str, &Labels)> = firing.iter().map(|(fp, l)| (fp.as_str(), l)).collect();
        Context::new(silences, windows, inhibit, &firing, cut_off, now)
    }

    #[test]
    fn silences_windows_inhibition_and_topology() {
        let now = Utc.with_ymd_and_hms(2026, 11, 21, 2, 30, 0).unwrap(); // a Saturday
        let iface = labels(&[("alertname", "InterfaceDown"), ("device", "leaf2"), ("interface", "swp1")]);
        let none = BTreeMap::new();
        assert_eq!(suppression("a", &iface, None, &ctx(&[], &[], &[], &[], &none, now)), None);

        let silence = Silence {
            id: 7,
            matchers: vec![Matcher::parse(r#"device="leaf2""#).unwrap()],
            starts_at: now - chrono::Duration::hours(1),
            ends_at: now + chrono::Duration::hours(1),
            created_by: "noc".into(),
            comment: "swap".into(),
        };
        let s = [silence.clone()];
        assert_eq!(
            suppression("a", &iface, None, &ctx(&s, &[], &[], &[], &none, now)),
            Some(Suppression::Silenced { silence_id: 7 })
        );
        let later = now + chrono::Duration::hours(2);
        assert_eq!(suppression("a", &iface, None, &ctx(&s, &[], &[], &[], &none, later)), None, "expired");

        let w = RawWindow {
            name: "sat-night".into(),
            schedule: "0 2 * * 6".into(),
            duration: "2h".into(),
            scope: Scope { roles: vec!["leaf".into()], ..Default::default() },
            matchers: vec![],
        }
        .compile()
        .unwrap();
        let leaf = DeviceMeta { name: "leaf2".into(), role: Some("leaf".into()), ..Default::default() };
        let ws = [w];
        assert_eq!(
            suppression("a", &iface, Some(&leaf), &ctx(&[], &ws, &[], &[], &none, now)),
            Some(Suppression::Maintenance { window: "sat-night".into() })
        );
        assert_eq!(
            suppression("a", &iface, Some(&leaf), &ctx(&[], &ws, &[], &[], &none, now + chrono::Duration::hours(2))),
            None
        );
        let spine = DeviceMeta { name: "spine1".into(), role: Some("spine".into()), ..Default::default() };
        assert_eq!(suppression("a", &iface, Some(&spine), &ctx(&[], &ws, &[], &[], &none, now)), None, "out of scope");

        let inhibit = [RawInhibit {
            name: "device-down".into(),
            source_match: vec![r#"alertname="DeviceDown""#.into()],
            target_match: vec![r#"severity!="critical""#.into()],
            equal: vec!["device".into()],
        }
        .compile()
        .unwrap()];
        let firing = [(
            "src".to_string(),
            labels(&[("alertname", "DeviceDown"), ("device", "leaf2"), ("severity", "critical")]),
        )];
        assert_eq!(
            suppression("a", &iface, None, &ctx(&[], &[], &inhibit, &firing, &none, now)),
            Some(Suppression::Inhibited { rule: "device-down".into(), by_fingerprint: "src".into() })
        );
        let other = labels(&[("alertname", "InterfaceDown"), ("device", "leaf3")]);
        assert_eq!(suppression("a", &other, None, &ctx(&[], &[], &inhibit, &firing, &none, now)), None);
        assert_eq!(
            suppression("src", &firing[0].1, None, &ctx(&[], &[], &inhibit, &firing, &none, now)),
            None,
            "not itself"
        );

        // An alert that is itself the first source of its rule is inhibited by the next one, never by itself.
        let two = [
            firing[0].clone(),
            ("src2".to_string(), labels(&[("alertname", "DeviceDown"), ("device", "leaf2"), ("severity", "major")])),
        ];
        let not_critical = labels(&[("alertname", "DeviceDown"), ("device", "leaf2"), ("severity", "minor")]);
        assert_eq!(
            suppression("src", &not_critical, None, &ctx(&[], &[], &inhibit, &two, &none, now)),
            Some(Suppression::Inhibited { rule: "device-down".into(), by_fingerprint: "src2".into() })
        );

        let cut: BTreeMap<String, String> = [("leaf2".to_string(), "spine1".to_string())].into();
        assert_eq!(
            suppression("a", &iface, None, &ctx(&s, &[], &[], &[], &cut, now)),
            Some(Suppression::Topology { device: "spine1".into() }),
            "topology names the cause first"
        );
        assert!(
            RawWindow {
                schedule: "every tuesday".into(),
                ..RawWindow {
                    name: "x".into(),
                    schedule: String::new(),
                    duration: "1h".into(),
                    scope: Scope::default(),
                    matchers: vec![]
                }
            }
            .compile()
            .is_err()
        );
    }

    #[test]
    fn boundaries_are_the_next_silence_or_window_start_or_end() {
        let now = Utc.with_ymd_and_hms(2026, 11, 21, 2, 30, 0).unwrap(); // a Saturday, inside the window
        let silence = |start: i64, end: i64| Silence {
            id: 1,
            matchers: vec![Matcher::parse(r#"device="leaf2""#).unwrap()],
            starts_at: now + chrono::Duration::minutes(start),
            ends_at: now + chrono::Duration::minutes(end),
            created_by: "noc".into(),
            comment: String::new(),
        };
        assert_eq!(next_boundary(&[], &[], now), None);
        assert_eq!(next_boundary(&[silence(-10, 45)], &[], now), Some(now + chrono::Duration::minutes(45)));
        assert_eq!(next_boundary(&[silence(5, 45)], &[], now), Some(now + chrono::Duration::minutes(5)));
        let window = |schedule: &str| {
            RawWindow {
                name: "w".into(),
                schedule: schedule.into(),
                duration: "2h".into(),
                scope: Scope::default(),
                matchers: vec![],
            }
            .compile()
            .unwrap()
        };
        // Active since 02:00: it ends at 04:00.
        assert_eq!(
            next_boundary(&[], &[window("0 2 * * 6")], now),
            Some(Utc.with_ymd_and_hms(2026, 11, 21, 4, 0, 0).unwrap())
        );
        // Not active: the next start.
        assert_eq!(
            next_boundary(&[], &[window("0 3 * * *")], now),
            Some(Utc.with_ymd_and_hms(2026, 11, 21, 3, 0, 0).unwrap())
        );
        assert_eq!(
            next_boundary(&[silence(5, 45)], &[window("0 2 * * 6")], now),
            Some(now + chrono::Duration::minutes(5)),
            "the earliest of all"
        );
    }
}
