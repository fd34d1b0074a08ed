//! The NOC page at `/` and `/noc`: one server-rendered HTML page for the wall screen (fabric
//! health, firing alerts, failing intents, what is down, recent changes), refreshing itself with a
//! meta refresh and no JavaScript, `?site=` to show one site, `?refresh=` to pace it.
//!
//! Each section is an async function that reads what it shows through the owning crates' query
//! functions and returns markup; [`section`] frames it and turns a failed read into an error box
//! naming the section and the cause, so one failing query never blanks the page. Adding a section
//! is writing one such function and one line in [`page`]. Every value goes through maud, which
//! escapes it; URLs built from values are percent-encoded first.

use crate::runtime::AppState;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, TimeDelta, Utc};
use collector::inventory::DeviceView;
use collector::store::query::{self, DeviceState};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rules::alert::Severity;
use rules::intent::Verdict;
use rules::store::StoredAlert;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

pub fn routes() -> Router<AppState> {
    Router::new().route("/", get(page)).route("/noc", get(page))
}

const DEFAULT_REFRESH: Duration = Duration::from_secs(10);
const MIN_REFRESH: Duration = Duration::from_secs(2);
const MAX_REFRESH: Duration = Duration::from_secs(3600);
/// How long one section (or getting a connection) may take: a wall screen must show "the
/// database does not answer", not hang on it.
const SECTION_TIMEOUT: Duration = Duration::from_secs(5);
/// Rows listed per table; beyond that the rest is counted.
const MAX_ROWS: usize = 50;
/// Recent routing and topology changes: this far back, at most this many.
const CHANGES_WINDOW: TimeDelta = TimeDelta::hours(1);
const MAX_CHANGES: usize = 30;
/// Recent configuration changes: this far back, at most this many.
const CONFIG_WINDOW: TimeDelta = TimeDelta::hours(24);
const MAX_CONFIG_EVENTS: usize = 20;

/// Why a section could not be rendered, in words for the wall.
#[derive(Debug, Clone)]
struct SectionError(String);

impl fmt::Display for SectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<tokio_postgres::Error> for SectionError {
    fn from(e: tokio_postgres::Error) -> Self {
        SectionError(collector::db::error_text(&e))
    }
}

type SectionResult = Result<Markup, SectionError>;

/// The page's options from its query string; a value that does not parse is reported on the page
/// and its default used (the page never refuses to render).
struct Options {
    site: Option<String>,
    /// `None`: no automatic refresh (`refresh=0` or `off`).
    refresh: Option<Duration>,
    /// The `refresh` parameter as given, kept on the site links.
    refresh_param: Option<String>,
    notes: Vec<String>,
}

impl Options {
    fn parse(q: &HashMap<String, String>) -> Options {
        let site = q.get("site").map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        let refresh_param = q.get("refresh").map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        let mut notes = Vec::new();
        let refresh = match refresh_param.as_deref() {
            None => Some(DEFAULT_REFRESH),
            Some("0" | "off" | "no") => None,
            Some(v) => {
                let parsed = v.parse::<u64>().map(Duration::from_secs).or_else(|_| humantime::parse_duration(v));
                match parsed {
                    Ok(d) => Some(d.clamp(MIN_REFRESH, MAX_REFRESH)),
                    Err(_) => {
                        notes.push(format!(
                            "refresh={v:?} is neither seconds nor a duration (10, 30s, 1m): refreshing every {}s",
                            DEFAULT_REFRESH.as_secs()
                        ));
                        Some(DEFAULT_REFRESH)
                    }
                }
            }
        };
        Options { site, refresh, refresh_param, notes }
    }

    /// This page's URL for another site (`None`: all sites), keeping the refresh setting.
    fn site_href(&self, site: Option<&str>) -> String {
        let mut params = Vec::new();
        if let Some(s) = site {
            params.push(format!("site={}", enc(s)));
        }
        if let Some(r) = &self.refresh_param {
            params.push(format!("refresh={}", enc(r)));
        }
        format!("?{}", params.join("&"))
    }
}

/// How a device is doing, from its stored state (the alert engine's device `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    Up,
    /// Marked down after `down_after_failures` failed polls.
    Down,
    /// Failing, not yet marked down.
    Unreachable,
    /// Not polled successfully yet.
    Unknown,
}

impl Health {
    fn of(state: Option<&DeviceState>) -> Health {
        match state {
            None => Health::Unknown,
            Some(s) if s.status == "down" => Health::Down,
            Some(s) if s.consecutive_failures > 0 => Health::Unreachable,
            Some(s) if s.status == "up" => Health::Up,
            Some(_) => Health::Unknown,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Health::Up => "up",
            Health::Down => "down",
            Health::Unreachable => "unreachable",
            Health::Unknown => "unknown",
        }
    }
}

/// One inventory device with its state.
struct Device {
    view: DeviceView,
    state: Option<DeviceState>,
}

impl Device {
    fn id(&self) -> i64 {
        self.view.id.unwrap_or_default()
    }
    fn health(&self) -> Health {
        Health::of(self.state.as_ref())
    }
}

/// The inventory as the page sees it: the devices of the selected site (all without a filter),
/// read once per page; sections use it to filter and to name devices.
struct Fleet {
    devices: Vec<Device>,
    by_id: HashMap<i64, usize>,
    /// Every site in the inventory, for the site links.
    sites: BTreeSet<String>,
    filtered: bool,
}

impl Fleet {
    async fn read(db: &deadpool_postgres::Object, site: Option<&str>) -> Result<Fleet, SectionError> {
        let views = collector::inventory::store::list_views(&***db).await.map_err(|e| match e {
            collector::inventory::store::StoreError::Db(e) => SectionError::from(e),
            other => SectionError(format!("reading the inventory: {other}")),
        })?;
        let mut states: HashMap<i64, DeviceState> =
            query::device_states(&***db).await?.into_iter().map(|s| (s.device_id, s)).collect();
        Ok(Fleet::new(views, &mut states, site))
    }

    fn new(views: Vec<DeviceView>, states: &mut HashMap<i64, DeviceState>, site: Option<&str>) -> Fleet {
        let sites = views.iter().filter_map(|v| v.site.clone()).collect();
        let devices: Vec<Device> = views
            .into_iter()
            .filter(|v| site.is_none_or(|s| v.site.as_deref() == Some(s)))
            .map(|view| Device { state: view.id.and_then(|id| states.remove(&id)), view })
            .collect();
        let by_id = devices.iter().enumerate().map(|(i, d)| (d.id(), i)).collect();
        Fleet { devices, by_id, sites, filtered: site.is_some() }
    }

    fn get(&self, id: i64) -> Option<&Device> {
        self.by_id.get(&id).map(|&i| &self.devices[i])
    }

    /// The device ids to filter queries by: `None` (everything) without a site filter.
    fn ids(&self) -> Option<Vec<i64>> {
        self.filtered.then(|| self.devices.iter().map(Device::id).collect())
    }

    fn shows_device(&self, id: Option<i64>) -> bool {
        !self.filtered || id.is_some_and(|id| self.by_id.contains_key(&id))
    }

    /// An alert is in view if its device is, or (for a device-less series) its site label is.
    fn shows_alert(&self, a: &StoredAlert, site: Option<&str>) -> bool {
        !self.filtered
            || self.shows_device(a.device_id)
            || (a.device_id.is_none() && site.is_some_and(|s| a.labels.get("site").is_some_and(|l| l == s)))
    }
}

/// What every section gets: the connection, the fleet in view, the clock. Either of the first two
/// may have failed; a section that needs it reports that as its own error.
struct Ctx<'a> {
    state: &'a AppState,
    db: Result<&'a deadpool_postgres::Object, &'a SectionError>,
    fleet: Result<&'a Fleet, &'a SectionError>,
    site: Option<&'a str>,
    now: DateTime<Utc>,
}

impl Ctx<'_> {
    fn db(&self) -> Result<&deadpool_postgres::Object, SectionError> {
        self.db.map_err(Clone::clone)
    }
    fn fleet(&self) -> Result<&Fleet, SectionError> {
        self.fleet.map_err(Clone::clone)
    }
}

async fn page(State(s): State<AppState>, Query(q): Query<HashMap<String, String>>) -> Response {
    let opts = Options::parse(&q);
    let now = Utc::now();
    let db = match tokio::time::timeout(SECTION_TIMEOUT, s.pool.get()).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(SectionError(format!("no database connection: {e}"))),
        Err(_) => Err(SectionError(format!(
            "no database connection within {}s (pool exhausted or database unreachable)",
            SECTION_TIMEOUT.as_secs()
        ))),
    };
    let fleet = match &db {
        Ok(c) => within(Fleet::read(c, opts.site.as_deref())).await,
        Err(e) => Err(e.clone()),
    };
    let cx = Ctx { state: &s, db: db.as_ref(), fleet: fleet.as_ref(), site: opts.site.as_deref(), now };

    // The sections, in page order: one line each.
    let sections = [
        section("alerts", "Firing alerts", "wide", alerts(&cx)).await,
        section("intents", "Failing intents", "", intents(&cx)).await,
        section("remediations", "Proposed fixes", "wide", remediations(&cx)).await,
        section("devices-down", "Devices down", "", devices_down(&cx)).await,
        section("interfaces-down", "Interfaces admin up, oper down", "", interfaces_down(&cx)).await,
        section("changes", "Routing and topology changes (last hour)", "", state_changes(&cx)).await,
        section("config-changes", "Configuration changes (last 24 h)", "", config_changes(&cx)).await,
    ];
    let header = section("health", "Fabric health", "wide", health(&cx)).await;
    let markup = layout(&opts, fleet.as_ref().ok(), now, header, &sections);
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], markup.into_string())
        .into_response()
}

/// Runs a read under the section time limit.
async fn within<T>(read: impl Future<Output = Result<T, SectionError>>) -> Result<T, SectionError> {
    within_limit(SECTION_TIMEOUT, read).await
}

async fn within_limit<T>(
    limit: Duration,
    read: impl Future<Output = Result<T, SectionError>>,
) -> Result<T, SectionError> {
    tokio::time::timeout(limit, read).await.unwrap_or_else(|_| {
        Err(SectionError(format!("no answer from the database within {}", humantime::format_duration(limit))))
    })
}

/// One section: its anchor, title and body, or an error box saying which section failed and why.
async fn section(id: &str, title: &str, class: &str, body: impl Future<Output = SectionResult>) -> Markup {
    let body = within(body).await;
    if let Err(e) = &body {
        tracing::warn!(section = id, error = %e, "NOC page section failed");
    }
    html! {
        section id=(id) class=[(!class.is_empty()).then_some(class)] {
            h2 { (title) }
            @match body {
                Ok(m) => (m),
                Err(e) => (error_box(title, &e)),
            }
        }
    }
}

fn error_box(what: &str, e: &SectionError) -> Markup {
    html! {
        div.error role="alert" {
            strong { (what) " could not be read: " }
            (e.0)
        }
    }
}

fn layout(opts: &Options, fleet: Option<&Fleet>, now: DateTime<Utc>, header: Markup, sections: &[Markup]) -> Markup {
    let title = match &opts.site {
        Some(s) => format!("netwarden NOC: {s}"),
        None => "netwarden NOC".to_string(),
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                @if let Some(r) = opts.refresh {
                    meta http-equiv="refresh" content=(r.as_secs());
                }
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(CSS)) }
            }
            body {
                header.top {
                    h1 { (title) }
                    nav.sites {
                        "Sites: "
                        a href=(opts.site_href(None)) class=[opts.site.is_none().then_some("current")] { "all" }
                        @for s in fleet.map(|f| &f.sites).into_iter().flatten() {
                            " "
                            a href=(opts.site_href(Some(s)))
                                class=[(opts.site.as_deref() == Some(s.as_str())).then_some("current")] { (s) }
                        }
                    }
                    span.stamp {
                        "updated " (now.format("%H:%M:%S UTC"))
                        @match opts.refresh {
                            Some(r) => { " · refresh every " (r.as_secs()) "s" }
                            None => " · no automatic refresh",
                        }
                    }
                }
                @for n in &opts.notes {
                    p.note { (n) }
                }
                @if let Some(site) = opts.site.as_deref().filter(|_| fleet.is_some_and(|f| f.devices.is_empty())) {
                    p.note { "No device in site " (site) "." }
                }
                (header)
                main {
                    @for s in sections {
                        (s)
                    }
                }
                footer {
                    "JSON API: "
                    @for (path, what) in API_LINKS {
                        a href=(path) { (what) } " "
                    }
                }
            }
        }
    }
}

const API_LINKS: [(&str, &str); 12] = [
    ("/api/v1/status", "status"),
    ("/api/v1/cluster", "cluster"),
    ("/api/v1/devices", "devices"),
    ("/api/v1/alerts", "alerts"),
    ("/api/v1/alerts/summary", "alert summary"),
    ("/api/v1/silences", "silences"),
    ("/api/v1/intents", "intents"),
    ("/api/v1/intents/results?verdict=fail", "failing intents"),
    ("/api/v1/changes", "changes"),
    ("/api/v1/config-events", "config events"),
    ("/api/v1/topology/full", "topology"),
    ("/health", "health"),
];

/// Everything but RFC 3986's unreserved characters: safe in a path segment and a query value.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Percent-encodes a value for a URL path segment or query value.
fn enc(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// "42s", "5m 3s", "3h 12m", "2d 4h": how long ago, coarse enough to read across a room.
fn ago(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    let s = (now - t).num_seconds().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    }
}

/// A time as "5m 3s ago", the exact time on hover.
fn since(now: DateTime<Utc>, t: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(t.to_rfc3339()) title=(t.format("%Y-%m-%d %H:%M:%S UTC")) { (ago(now, t)) " ago" }
    }
}

fn device_link(name: &str) -> Markup {
    html! { a href={ "/api/v1/devices/" (enc(name)) } { (name) } }
}

fn json_link(href: &str) -> Markup {
    html! { a.json href=(href) { "json" } }
}

fn more(shown: usize, total: usize, href: &str) -> Markup {
    html! {
        @if total > shown {
            p.more { (total - shown) " more not shown: " a href=(href) { "all as JSON" } }
        }
    }
}

fn tile(id: &str, label: &str, n: impl fmt::Display, class: &str) -> Markup {
    html! {
        div id=(id) class=(format!("tile {class}").trim_end()) { b { (n) } span { (label) } }
    }
}

/// Devices by health, failing polls, the newest poll, this instance's counters and the cluster.
async fn health(cx: &Ctx<'_>) -> SectionResult {
    let fleet = cx.fleet.map_err(Clone::clone);
    let cluster = match cx.db() {
        Ok(db) => collector::store::lease::cluster_view(&***db).await.map_err(SectionError::from),
        Err(e) => Err(e),
    };
    let st = &cx.state.scheduler_stats;
    let w = cx.state.writer.stats();
    Ok(html! {
        @match fleet {
            Ok(f) => {
                @let count = |h: Health| f.devices.iter().filter(|d| d.health() == h).count();
                @let (down, unreachable, unknown) = (count(Health::Down), count(Health::Unreachable), count(Health::Unknown));
                @let failing = f.devices.iter().filter(|d| d.state.as_ref().is_some_and(|s| s.consecutive_failures > 0)).count();
                @let last_poll = f.devices.iter().filter_map(|d| d.state.as_ref()?.last_poll).max();
                div.tiles {
                    (tile("devices-total", "devices", f.devices.len(), ""))
                    (tile("devices-up", "up", count(Health::Up), "good"))
                    (tile("devices-down", "down", down, if down > 0 { "bad" } else { "" }))
                    (tile("devices-unreachable", "unreachable", unreachable, if unreachable > 0 { "warn" } else { "" }))
                    @if unknown > 0 {
                        (tile("devices-unknown", "not polled yet", unknown, ""))
                    }
                    (tile("polls-failing", "polls failing", failing, if failing > 0 { "warn" } else { "" }))
                    @match last_poll {
                        Some(t) => (tile("last-poll", "since last poll", ago(cx.now, t), "")),
                        None => (tile("last-poll", "since last poll", "never", "warn")),
                    }
                }
            }
            Err(e) => (error_box("The devices", &e)),
        }
        p.instance {
            "This instance: polls ok " (st.polls_ok.load(Ordering::Relaxed))
            " · failed " (st.polls_failed.load(Ordering::Relaxed))
            " · skipped " (st.polls_skipped.load(Ordering::Relaxed))
            " · state write errors " (st.db_errors.load(Ordering::Relaxed))
            " · samples written " (w.rows_written.load(Ordering::Relaxed))
            " · dropped " (w.rows_dropped.load(Ordering::Relaxed))
            " · storage " (cx.state.backend) " "
            (json_link("/api/v1/status"))
        }
        @match cluster {
            Ok(c) if c.instances.is_empty() => p.cluster { "Cluster: not enabled (one instance polls every device)." }
            Ok(c) => {
                @let live = c.instances.iter().filter(|i| i.live).count();
                p.cluster {
                    "Cluster: " span class=[(live < c.instances.len()).then_some("warn")] { (live) "/" (c.instances.len()) " instances live" }
                    @if c.unleased_devices > 0 {
                        " · " span.warn { (c.unleased_devices) " device(s) held by no instance" }
                    }
                    " " (json_link("/api/v1/cluster"))
                }
                ul.instances {
                    @for i in &c.instances {
                        li class=[(!i.live).then_some("bad")] {
                            (i.name) ": " @if i.live { "live" } @else { "not live" }
                            ", " (i.devices) " devices, heartbeat " (since(cx.now, i.heartbeat_at))
                        }
                    }
                }
            }
            Err(e) => (error_box("The cluster", &e)),
        }
    })
}

fn severity_badge(s: Severity) -> Markup {
    html! { span class={ "sev sev-" (s.as_str()) } { (s.as_str()) } }
}

/// Labels an alert's other columns do not already show.
fn extra_labels(a: &StoredAlert) -> impl Iterator<Item = (&String, &String)> {
    const SHOWN: [&str; 6] = ["alertname", "severity", "device", "site", "role", "vendor"];
    a.labels.iter().filter(|(k, _)| !SHOWN.contains(&k.as_str()))
}

/// Firing alerts, most severe first and the newest first within a severity (a new alert shows at
/// the top of its kind); acknowledged, silenced and suppressed ones are marked and dimmed.
async fn alerts(cx: &Ctx<'_>) -> SectionResult {
    let db = cx.db()?;
    let fleet = cx.fleet()?;
    let all = rules::store::active_alerts(&***db).await?;
    let in_view: Vec<&StoredAlert> = all.iter().filter(|a| fleet.shows_alert(a, cx.site)).collect();
    let pending = in_view.iter().filter(|a| a.state == "pending").count();
    let mut firing: Vec<&StoredAlert> = in_view.into_iter().filter(|a| a.state == "firing").collect();
    firing.sort_by(|a, b| {
        rules::store::severity(&b.severity)
            .cmp(&rules::store::severity(&a.severity))
            .then(b.firing_since.cmp(&a.firing_since))
    });
    let mut by_severity: Vec<(Severity, usize)> = Vec::new();
    for a in &firing {
        let s = rules::store::severity(&a.severity);
        match by_severity.iter_mut().find(|(k, _)| *k == s) {
            Some((_, n)) => *n += 1,
            None => by_severity.push((s, 1)),
        }
    }
    Ok(html! {
        p.summary {
            @for (s, n) in &by_severity {
                span.count { (severity_badge(*s)) " " (n) } " "
            }
            @if pending > 0 { span.count { (pending) " pending" } " " }
            (json_link("/api/v1/alerts"))
        }
        @if firing.is_empty() {
            p.ok { "No firing alerts." }
        } @else {
            table {
                thead { tr { th { "Severity" } th { "Alert" } th { "Device" } th { "Summary" } th { "Since" } th { "State" } th {} } }
                tbody {
                    @for a in firing.iter().take(MAX_ROWS) {
                        @let sev = rules::store::severity(&a.severity);
                        @let quiet = a.suppressed_by.is_some() || a.acknowledged_by.is_some();
                        tr class=(format!("alert sev-row-{}{}", sev.as_str(), if quiet { " muted" } else { "" })) {
                            td { (severity_badge(sev)) }
                            td.rule { (a.rule) }
                            td {
                                @if let Some(d) = a.labels.get("device") { (device_link(d)) }
                                @for (k, v) in extra_labels(a) {
                                    " " span.chip { (k) "=" (v) }
                                }
                            }
                            td { (a.annotations.get("summary").map(String::as_str).unwrap_or_default()) }
                            td { (since(cx.now, a.firing_since.unwrap_or(a.active_since))) }
                            td.state {
                                @if let Some(by) = &a.acknowledged_by {
                                    div.acked {
                                        "acknowledged by " (by)
                                        @if let Some(c) = &a.ack_comment { ": " (c) }
                                        @if let Some(u) = a.ack_until { " (until " (u.format("%H:%M UTC")) ")" }
                                    }
                                }
                                @if let Some(r) = &a.suppressed_reason { div.suppressed { (r) } }
                                @if a.flapping { div.flapping { "flapping" } }
                                @if !quiet && !a.flapping { "unacknowledged" }
                            }
                            td { (json_link(&format!("/api/v1/alerts/{}", enc(&a.fingerprint)))) }
                        }
                    }
                }
            }
            (more(MAX_ROWS, firing.len(), "/api/v1/alerts?state=firing"))
        }
    })
}

/// Intents failing on a device: which checks fail, observed against expected, and since when.
async fn intents(cx: &Ctx<'_>) -> SectionResult {
    let db = cx.db()?;
    let fleet = cx.fleet()?;
    let filter = rules::intent::store::ResultFilter { verdict: Some("fail".into()), ..Default::default() };
    let mut failing: Vec<_> = rules::intent::store::results(&***db, &filter)
        .await?
        .into_iter()
        .filter(|r| fleet.shows_device(Some(r.device_id)))
        .collect();
    failing.sort_by(|a, b| b.since.cmp(&a.since).then_with(|| a.intent.cmp(&b.intent)));
    Ok(html! {
        @if failing.is_empty() {
            p.ok { "No failing intents." " " (json_link("/api/v1/intents")) }
        } @else {
            table {
                thead { tr { th { "Intent" } th { "Device" } th { "Failing checks: observed vs expected" } th { "Since" } th {} } }
                tbody {
                    @for r in failing.iter().take(MAX_ROWS) {
                        tr.intent {
                            td { a href={ "/api/v1/intents/" (enc(&r.intent)) } { (r.intent) } }
                            td { (device_link(&r.device)) }
                            td {
                                @for c in r.checks.iter().filter(|c| c.verdict != Verdict::Pass) {
                                    div.check {
                                        span.check-name { (c.check) } ": "
                                        span.observed { (c.observed) } " vs expected "
                                        span.expected { (c.expected) }
                                        @if c.verdict == Verdict::Unknown { " (unknown)" }
                                        @if !c.detail.is_empty() { " — " span.detail { (c.detail) } }
                                    }
                                }
                            }
                            td { (since(cx.now, r.since)) }
                            td { (json_link(&format!("/api/v1/intents/results?intent={}&device={}", enc(&r.intent), enc(&r.device)))) }
                        }
                    }
                }
            }
            (more(MAX_ROWS, failing.len(), "/api/v1/intents/results?verdict=fail"))
        }
    })
}

/// Open remediation proposals (the fixes the planner derived from failing intents), newest first.
async fn remediations(cx: &Ctx<'_>) -> SectionResult {
    let db = cx.db()?;
    let fleet = cx.fleet()?;
    let filter = remediation::store::Filter { statuses: vec!["open".into()], limit: 1000, ..Default::default() };
    let open: Vec<_> = remediation::store::list(&***db, &filter)
        .await?
        .into_iter()
        .filter(|p| fleet.shows_device(Some(p.device_id)))
        .collect();
    Ok(html! {
        @if open.is_empty() {
            p.ok { "No open proposals." " " (json_link("/api/v1/remediations")) }
        } @else {
            table {
                thead { tr { th { "Fix" } th { "Device" } th { "Risk" } th { "Status" } th { "Commands" } th { "Proposed" } th {} } }
                tbody {
                    @for p in open.iter().take(MAX_ROWS) {
                        tr.remediation {
                            td { span.title { (p.title) } div.detail { (p.diagnosis) } }
                            td { (device_link(&p.device)) }
                            td { span class={ "risk risk-" (p.risk) } { (p.risk) } }
                            td {
                                (p.status)
                                @if p.approval_required { " (needs approval)" }
                            }
                            td { pre.commands { (p.commands.join("\n")) } }
                            td { (since(cx.now, p.created_at)) }
                            td { (json_link(&format!("/api/v1/remediations/{}", p.id))) }
                        }
                    }
                }
            }
            (more(MAX_ROWS, open.len(), "/api/v1/remediations?status=open"))
        }
    })
}

/// Devices marked down or failing their polls, the most recent first.
async fn devices_down(cx: &Ctx<'_>) -> SectionResult {
    let fleet = cx.fleet()?;
    let mut down: Vec<&Device> =
        fleet.devices.iter().filter(|d| matches!(d.health(), Health::Down | Health::Unreachable)).collect();
    down.sort_by_key(|d| std::cmp::Reverse(d.state.as_ref().map(|s| s.status_since)));
    Ok(html! {
        @if down.is_empty() {
            p.ok { "Every device answers." }
        } @else {
            table {
                thead { tr { th { "Device" } th { "Site / role" } th { "Status" } th { "Since" } th { "Last error" } th {} } }
                tbody {
                    @for d in down.iter().take(MAX_ROWS) {
                        @let h = d.health();
                        tr class=(if h == Health::Down { "device sev-row-critical" } else { "device sev-row-warning" }) {
                            td { (device_link(&d.view.name)) }
                            td { (d.view.site.as_deref().unwrap_or("—")) " / " (d.view.role.as_deref().unwrap_or("—")) }
                            td.status { (h.as_str()) }
                            td {
                                @if let Some(s) = &d.state {
                                    // Unreachable devices are still "up" in the table: their trouble
                                    // started with the last success.
                                    @let from = if h == Health::Down { Some(s.status_since) } else { s.last_success.or(Some(s.status_since)) };
                                    @if let Some(t) = from { (since(cx.now, t)) }
                                }
                            }
                            td {
                                @if let Some(s) = &d.state {
                                    @if let Some(k) = &s.last_error_kind { span.chip { (k) } " " }
                                    (s.last_error.as_deref().unwrap_or_default())
                                    " (" (s.consecutive_failures) " failed polls)"
                                }
                            }
                            td { (json_link(&format!("/api/v1/devices/{}", enc(&d.view.name)))) }
                        }
                    }
                }
            }
            (more(MAX_ROWS, down.len(), "/api/v1/devices"))
        }
    })
}

/// IF-MIB ifOperStatus names.
fn oper_status_name(s: Option<i16>) -> &'static str {
    s.and_then(collector::ifmib::status_name).unwrap_or("?")
}

/// Interfaces administratively up whose link is not (cut cables, a peer shut), latest first.
async fn interfaces_down(cx: &Ctx<'_>) -> SectionResult {
    let db = cx.db()?;
    let fleet = cx.fleet()?;
    let ids = fleet.ids();
    let rows = query::interfaces_down(&***db, ids.as_deref(), MAX_ROWS as i64 + 1).await?;
    Ok(html! {
        @if rows.is_empty() {
            p.ok { "No interface is down." }
        } @else {
            table {
                thead { tr { th { "Device" } th { "Interface" } th { "Oper status" } th { "Since" } th {} } }
                tbody {
                    @for i in rows.iter().take(MAX_ROWS) {
                        @let name = fleet.get(i.device_id).map(|d| d.view.name.as_str()).unwrap_or("?");
                        tr.interface {
                            td { (device_link(name)) }
                            td { (i.name) @if let Some(a) = i.alias.as_deref().filter(|a| !a.is_empty()) { " " span.alias { "(" (a) ")" } } }
                            td { (oper_status_name(i.oper_status)) }
                            td { @if let Some(t) = i.since { (since(cx.now, t)) } }
                            td { (json_link(&format!("/api/v1/devices/{}/interfaces", enc(name)))) }
                        }
                    }
                }
            }
            @if rows.len() > MAX_ROWS { p.more { "More interfaces are down than shown." } }
        }
    })
}

/// Routing, neighbour, interface, device and topology state changes of the last hour, newest first.
async fn state_changes(cx: &Ctx<'_>) -> SectionResult {
    let db = cx.db()?;
    let fleet = cx.fleet()?;
    let ids = fleet.ids();
    let from = cx.now - CHANGES_WINDOW;
    let rows = query::recent_state_changes(&***db, ids.as_deref(), from, MAX_CHANGES as i64).await?;
    let from_param = enc(&from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    Ok(html! {
        @if rows.is_empty() {
            p.ok { "No state change in the last hour." " " (json_link(&format!("/api/v1/changes?from={from_param}"))) }
        } @else {
            table {
                thead { tr { th { "When" } th { "Device" } th { "What" } th { "Change" } th {} } }
                tbody {
                    @for c in &rows {
                        @let device = c.device_id.and_then(|id| fleet.get(id)).map(|d| d.view.name.as_str());
                        tr.change {
                            td { (since(cx.now, c.time)) }
                            td { @match device { Some(n) => (device_link(n)), None => "—" } }
                            td { span.chip { (c.kind) } " " (c.key) }
                            td { (c.old_state.as_deref().unwrap_or("(none)")) " → " (c.new_state.as_deref().unwrap_or("(gone)")) }
                            td {
                                @let href = match device {
                                    Some(n) => format!("/api/v1/changes?device={}&kind={}&from={from_param}", enc(n), enc(&c.kind)),
                                    None => format!("/api/v1/changes?kind={}&from={from_param}", enc(&c.kind)),
                                };
                                (json_link(&href))
                            }
                        }
                    }
                }
            }
            @if rows.len() == MAX_CHANGES {
                p.more { "Only the latest " (MAX_CHANGES) ": " a href={ "/api/v1/changes?from=" (from_param) } { "the hour as JSON" } }
            }
        }
    })
}

/// Configuration changes detected between backups in the last day, newest first.
async fn config_changes(cx: &Ctx<'_>) -> SectionResult {
    let db = cx.db()?;
    let fleet = cx.fleet()?;
    let ids = fleet.ids();
    let events = collector::configs::store::recent_events(
        &***db,
        ids.as_deref(),
        cx.now - CONFIG_WINDOW,
        MAX_CONFIG_EVENTS as i64,
    )
    .await?;
    Ok(html! {
        @if events.is_empty() {
            p.ok { "No configuration change in the last 24 hours." " " (json_link("/api/v1/config-events")) }
        } @else {
            table {
                thead { tr { th { "When" } th { "Device" } th { "Lines" } th { "Trigger" } th {} } }
                tbody {
                    @for e in &events {
                        tr.config-change {
                            td { (since(cx.now, e.detected_at)) }
                            td { (device_link(&e.device)) }
                            td { span.added { "+" (e.lines_added) } " " span.removed { "−" (e.lines_removed) } }
                            td { (e.trigger) }
                            td {
                                a.json href={ "/api/v1/devices/" (enc(&e.device)) "/configs/diff?from=" (e.from_snapshot_id) "&to=" (e.to_snapshot_id) } { "diff" }
                                " "
                                (json_link(&format!("/api/v1/config-events?after={}&device={}&limit=1", e.id - 1, enc(&e.device))))
                            }
                        }
                    }
                }
            }
        }
    })
}

/// Dark, large and dense: read from across the room on a TV.
const CSS: &str = r#"
:root { color-scheme: dark; }
body { margin: 0; padding: .5rem 1rem; background: #101317; color: #e8eaed; font: 20px/1.35 system-ui, sans-serif; }
header.top { display: flex; flex-wrap: wrap; gap: .3rem 1.5rem; align-items: baseline; }
h1 { font-size: 1.5rem; margin: 0; }
h2 { font-size: 1.1rem; margin: .4rem 0 .3rem; padding-bottom: .1rem; border-bottom: 1px solid #333a44; color: #c6cbd2; }
nav.sites a { margin-right: .3rem; }
nav.sites a.current { font-weight: 700; color: #fff; text-decoration: none; border-bottom: 2px solid #8ab4f8; }
.stamp { color: #9aa4b1; font-size: .9rem; }
main { display: grid; grid-template-columns: repeat(auto-fit, minmax(40rem, 1fr)); gap: .5rem 1.5rem; }
section { min-width: 0; }
section.wide { grid-column: 1 / -1; }
.tiles { display: flex; flex-wrap: wrap; gap: .5rem; }
.tile { background: #1c222a; border-radius: 6px; padding: .2rem .9rem; min-width: 6.5rem; text-align: center; }
.tile b { display: block; font-size: 2.2rem; line-height: 1.1; }
.tile span { color: #aab3bf; font-size: .85rem; }
.tile.good b { color: #66bb6a; }
.tile.warn { background: #6b4e00; }
.tile.bad { background: #8e1b1b; }
.instance, .cluster, .summary { margin: .3rem 0; color: #c6cbd2; font-size: .9rem; }
ul.instances { margin: 0; padding-left: 1.2rem; font-size: .85rem; }
table { width: 100%; border-collapse: collapse; font-size: .9rem; }
th { text-align: left; color: #9aa4b1; font-weight: 600; border-bottom: 1px solid #333a44; padding: .1rem .4rem; }
td { padding: .15rem .4rem; border-bottom: 1px solid #222830; vertical-align: top; }
tr.muted td { opacity: .5; }
tr.sev-row-critical td:first-child { border-left: 6px solid #e53935; }
tr.sev-row-major td:first-child { border-left: 6px solid #f4511e; }
tr.sev-row-minor td:first-child { border-left: 6px solid #fb8c00; }
tr.sev-row-warning td:first-child { border-left: 6px solid #fdd835; }
tr.sev-row-info td:first-child { border-left: 6px solid #42a5f5; }
.sev { display: inline-block; padding: 0 .45rem; border-radius: 4px; font-weight: 700; text-transform: uppercase; font-size: .8rem; }
.sev-critical { background: #e53935; color: #fff; }
.sev-major { background: #f4511e; color: #fff; }
.sev-minor { background: #fb8c00; color: #111; }
.sev-warning { background: #fdd835; color: #111; }
.sev-info { background: #1e88e5; color: #fff; }
.count { margin-right: .6rem; }
.chip { background: #2a313b; border-radius: 3px; padding: 0 .3rem; font-size: .8rem; white-space: nowrap; }
.observed { color: #ff8a80; font-weight: 700; }
.expected { color: #b9f6ca; }
.detail, .alias { color: #aab3bf; }
.risk { display: inline-block; padding: 0 .45rem; border-radius: 4px; font-weight: 700; font-size: .8rem; }
.risk-low { background: #2e7d32; color: #fff; } .risk-medium { background: #fb8c00; color: #111; }
.risk-high { background: #e53935; color: #fff; }
pre.commands { margin: 0; font-size: .8rem; color: #cfd8dc; }
.acked { color: #81c784; }
.suppressed, .flapping { color: #ffb74d; }
.added { color: #81c784; } .removed { color: #ff8a80; }
.ok { color: #66bb6a; }
.warn, .note { color: #ffb74d; }
.bad { color: #ff8a80; }
.more { color: #9aa4b1; font-size: .85rem; }
.error { border: 2px solid #e53935; background: #3b1212; padding: .4rem .6rem; border-radius: 6px; margin: .3rem 0; }
a { color: #8ab4f8; }
a.json { font-size: .75rem; color: #9aa4b1; }
footer { margin-top: 1rem; color: #9aa4b1; font-size: .8rem; }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> Options {
        Options::parse(&pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn refresh_is_seconds_or_a_duration_clamped_and_a_bad_value_is_reported() {
        assert_eq!(opts(&[]).refresh, Some(DEFAULT_REFRESH));
        assert_eq!(opts(&[("refresh", "30")]).refresh, Some(Duration::from_secs(30)));
        assert_eq!(opts(&[("refresh", "1m")]).refresh, Some(Duration::from_secs(60)));
        assert_eq!(opts(&[("refresh", "1")]).refresh, Some(MIN_REFRESH));
        assert_eq!(opts(&[("refresh", "off")]).refresh, None);
        let bad = opts(&[("refresh", "<soon>")]);
        assert_eq!(bad.refresh, Some(DEFAULT_REFRESH));
        assert_eq!(bad.notes.len(), 1, "{:?}", bad.notes);
    }

    #[test]
    fn site_links_keep_the_refresh_and_encode_values() {
        let o = opts(&[("refresh", "30"), ("site", "a b")]);
        assert_eq!(o.site_href(Some("par&1")), "?site=par%261&refresh=30");
        assert_eq!(o.site_href(None), "?refresh=30");
        assert_eq!(opts(&[("site", "  ")]).site, None);
        assert_eq!(enc("leaf-1.a_b~c/d?e"), "leaf-1.a_b~c%2Fd%3Fe");
    }

    #[test]
    fn ages_read_across_a_room() {
        let now = Utc::now();
        let check = |secs: i64, expected: &str| assert_eq!(ago(now, now - TimeDelta::seconds(secs)), expected);
        check(-5, "0s");
        check(42, "42s");
        check(303, "5m 3s");
        check(3 * 3600 + 12 * 60 + 9, "3h 12m");
        check(2 * 86400 + 4 * 3600, "2d 4h");
    }

    #[tokio::test]
    async fn a_failed_section_is_an_error_box_naming_it_and_the_cause_escaped() {
        let m = section("intents", "Failing intents", "", async {
            Err(SectionError("relation \"intent_result\" does not exist <b>".into()))
        })
        .await
        .into_string();
        assert!(m.starts_with(r#"<section id="intents"><h2>Failing intents</h2>"#), "{m}");
        assert!(m.contains("Failing intents could not be read: "), "{m}");
        assert!(m.contains("relation &quot;intent_result&quot; does not exist &lt;b&gt;"), "{m}");
        assert!(!m.contains("<b>"), "{m}");
    }

    #[tokio::test]
    async fn a_read_that_hangs_fails_at_the_time_limit() {
        let r: Result<(), _> = within_limit(Duration::from_millis(10), std::future::pending()).await;
        assert_eq!(r.unwrap_err().0, "no answer from the database within 10ms");
    }

    fn state(status: &str, failures: i32) -> DeviceState {
        DeviceState {
            device_id: 0,
            status: status.into(),
            status_since: Utc::now(),
            last_poll: None,
            last_success: None,
            last_error_kind: None,
            last_error: None,
            consecutive_failures: failures,
            polls_total: 0,
            polls_failed: 0,
            polls_skipped: 0,
            sys_name: None,
            sys_descr: None,
            sys_object_id: None,
            sys_uptime_ticks: None,
            last_poll_duration_ms: None,
        }
    }

    #[test]
    fn health_follows_the_alert_engines_device_status() {
        assert_eq!(Health::of(None), Health::Unknown);
        assert_eq!(Health::of(Some(&state("up", 0))), Health::Up);
        assert_eq!(Health::of(Some(&state("up", 1))), Health::Unreachable);
        assert_eq!(Health::of(Some(&state("unknown", 1))), Health::Unreachable);
        assert_eq!(Health::of(Some(&state("down", 3))), Health::Down);
        assert_eq!(Health::of(Some(&state("unknown", 0))), Health::Unknown);
    }
}
