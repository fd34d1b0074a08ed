//! The Grafana dashboards, tested without Grafana (it is not installable here): a structural lint
//! of every dashboard file; the provisioning files parsed; and every panel's, annotation's and
//! template variable's SQL run the way Grafana's PostgreSQL data source would run it — template
//! variables replaced as Grafana's front end does, then the global substitutions and the macros of
//! Grafana's Go code (`sqleng.Interpolate`, `postgresMacroEngine`, ported below) — against a
//! database that `netwarden serve` filled by polling a simulated fabric with faults injected, over a
//! connection that logs in as the SELECT-only role `netwarden grafana provision` created, with the
//! password it wrote into the data source file.

use chrono::{DateTime, Duration as ChronoDuration, SubsecRound as _, Utc};
use collector::sim::Fault;
use netwarden_tests::pg;
use netwarden_tests::serve::{Netwarden, WAIT, fabric, netwarden_bin, write_config};
use netwarden_tests::util::{free_tcp_port, tail};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

const PG_DATASOURCE_TYPE: &str = "grafana-postgresql-datasource";

fn dashboards_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dashboards")
}

/// Every dashboard file in dashboards/, by file name.
fn dashboard_files() -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dashboards_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).unwrap();
            let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            out.insert(path.file_name().unwrap().to_string_lossy().into_owned(), json);
        }
    }
    out
}

// ------------------------------------------------------------------------------------------------
// Structure

/// Every `$name` / `${name}` reference in `sql` that is not a macro call (`$__name(`).
fn variable_refs(sql: &str) -> Vec<String> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let braced = b.get(i + 1) == Some(&b'{');
            let start = if braced { i + 2 } else { i + 1 };
            let end = start + b[start..].iter().take_while(|c| c.is_ascii_alphanumeric() || **c == b'_').count();
            if end > start && b.get(end) != Some(&b'(') {
                out.push(sql[start..end].to_string());
            }
            i = end.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

/// Macros the PostgreSQL data source expands (postgresMacroEngine.evaluateMacro).
const MACROS: [&str; 15] = [
    "__time",
    "__timeEpoch",
    "__timeFilter",
    "__timeFrom",
    "__timeTo",
    "__timeGroup",
    "__timeGroupAlias",
    "__unixEpochFilter",
    "__unixEpochNanoFilter",
    "__unixEpochNanoFrom",
    "__unixEpochNanoTo",
    "__unixEpochGroup",
    "__unixEpochGroupAlias",
    "__unixEpochFrom",
    "__unixEpochTo",
];
/// Variables Grafana defines itself that the SQL may use.
const BUILTIN_VARIABLES: [&str; 2] = ["__interval", "__interval_ms"];

fn lint_sql(errors: &mut Vec<String>, at: &str, sql: &str, known: &[String]) {
    if sql.trim().is_empty() {
        errors.push(format!("{at}: empty rawSql"));
    }
    for name in variable_refs(sql) {
        if !known.contains(&name) && !BUILTIN_VARIABLES.contains(&name.as_str()) {
            errors.push(format!("{at}: ${name} is not a template variable defined before it"));
        }
    }
    for (name, _) in find_macros(sql) {
        if !MACROS.contains(&name.as_str()) {
            errors.push(format!("{at}: unknown macro ${name}"));
        }
    }
}

fn lint_datasource(errors: &mut Vec<String>, at: &str, ds: &Value) {
    if ds["uid"] != api::grafana::DATASOURCE_UID || ds["type"] != PG_DATASOURCE_TYPE {
        errors.push(format!("{at}: datasource {ds} is not the provisioned {}", api::grafana::DATASOURCE_UID));
    }
}

fn lint_target(errors: &mut Vec<String>, at: &str, t: &Value, known: &[String]) {
    lint_datasource(errors, at, &t["datasource"]);
    if t["rawQuery"] != true || t["editorMode"] != "code" {
        errors.push(format!("{at}: not a raw SQL query in code mode"));
    }
    if !matches!(t["format"].as_str(), Some("time_series" | "table")) {
        errors.push(format!("{at}: format {} is not time_series or table", t["format"]));
    }
    if t["refId"].as_str().is_none_or(str::is_empty) {
        errors.push(format!("{at}: no refId"));
    }
    lint_sql(errors, at, t["rawSql"].as_str().unwrap_or(""), known);
}

/// Everything wrong with one dashboard.
fn lint(file: &str, d: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let title = d["title"].as_str().unwrap_or(file);
    if d["schemaVersion"] != 39 || d["schemaVersion"] != api::grafana::SCHEMA_VERSION {
        errors.push(format!("{title}: schemaVersion {} is not the pinned 39", d["schemaVersion"]));
    }
    let uid = d["uid"].as_str().unwrap_or("");
    if uid.is_empty() || uid.len() > 40 || !uid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        errors.push(format!("{title}: uid {uid:?} is not 1-40 letters, digits, - or _"));
    }
    let text = d.to_string();
    if d.get("__inputs").is_some() || text.contains("${DS_") {
        errors.push(format!("{title}: export placeholders (__inputs, ${{DS_…}}) do not work in provisioning"));
    }
    if d.get("id").is_some_and(|id| !id.is_null()) {
        errors.push(format!("{title}: a numeric id must not be provisioned"));
    }
    if d["annotations"]["list"].as_array().is_none() || d["templating"]["list"].as_array().is_none() {
        errors.push(format!("{title}: annotations.list and templating.list are required"));
    }
    // Template variables: query variables on the data source, each referring only to earlier ones.
    let mut known: Vec<String> = Vec::new();
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        let name = v["name"].as_str().unwrap_or("").to_string();
        let at = format!("{title}: variable {name}");
        if v["type"] != "query" {
            errors.push(format!("{at}: type {} (only query variables are used)", v["type"]));
        }
        lint_datasource(&mut errors, &at, &v["datasource"]);
        let query = v["query"].as_str().unwrap_or("");
        if v["definition"] != query {
            errors.push(format!("{at}: definition differs from query"));
        }
        lint_sql(&mut errors, &at, query, &known);
        if known.contains(&name) || name.is_empty() {
            errors.push(format!("{at}: empty or duplicate name"));
        }
        known.push(name);
    }
    for a in d["annotations"]["list"].as_array().into_iter().flatten() {
        let at = format!("{title}: annotation {}", a["name"]);
        lint_datasource(&mut errors, &at, &a["datasource"]);
        lint_target(&mut errors, &at, &a["target"], &known);
    }
    let (mut ids, mut titles) = (BTreeSet::new(), BTreeSet::new());
    let mut cells: BTreeMap<(u64, u64), String> = BTreeMap::new();
    for p in d["panels"].as_array().into_iter().flatten() {
        let ptitle = p["title"].as_str().unwrap_or("");
        let at = format!("{title}: panel {ptitle:?}");
        if ptitle.is_empty() || !titles.insert(ptitle) {
            errors.push(format!("{at}: no title, or the title of another panel"));
        }
        if !p["id"].as_u64().is_some_and(|id| ids.insert(id)) {
            errors.push(format!("{at}: missing or duplicate id {}", p["id"]));
        }
        let g = &p["gridPos"];
        match (g["x"].as_u64(), g["y"].as_u64(), g["w"].as_u64(), g["h"].as_u64()) {
            (Some(x), Some(y), Some(w), Some(h)) if w >= 1 && h >= 1 && x + w <= 24 => {
                for cx in x..x + w {
                    for cy in y..y + h {
                        if let Some(other) = cells.insert((cx, cy), ptitle.to_string()) {
                            errors.push(format!("{at}: overlaps panel {other:?} at ({cx}, {cy})"));
                        }
                    }
                }
            }
            _ => errors.push(format!("{at}: gridPos {g} missing or outside the 24 columns")),
        }
        lint_datasource(&mut errors, &at, &p["datasource"]);
        let targets = p["targets"].as_array().cloned().unwrap_or_default();
        if targets.is_empty() {
            errors.push(format!("{at}: no targets"));
        }
        let refs: BTreeSet<&str> = targets.iter().filter_map(|t| t["refId"].as_str()).collect();
        if refs.len() != targets.len() {
            errors.push(format!("{at}: refIds not unique"));
        }
        for t in &targets {
            lint_target(&mut errors, &at, t, &known);
        }
        let series = targets.iter().any(|t| t["format"] == "time_series");
        if matches!(p["type"].as_str(), Some("timeseries" | "state-timeline")) != series {
            errors.push(format!("{at}: a {} panel with format time_series = {series}", p["type"]));
        }
    }
    errors
}

#[test]
fn every_dashboard_passes_the_structural_lint() {
    let files = dashboard_files();
    // The binary carries exactly the files of dashboards/, byte for byte.
    let embedded: BTreeMap<String, &str> =
        api::grafana::DASHBOARDS.iter().map(|(name, json)| (name.to_string(), *json)).collect();
    assert_eq!(files.keys().collect::<Vec<_>>(), embedded.keys().collect::<Vec<_>>());
    for (name, json) in &embedded {
        assert_eq!(std::fs::read_to_string(dashboards_dir().join(name)).unwrap(), *json, "{name}");
    }
    let mut errors = Vec::new();
    let (mut uids, mut titles) = (BTreeSet::new(), BTreeSet::new());
    for (file, d) in &files {
        errors.extend(lint(file, d));
        if !uids.insert(d["uid"].as_str().unwrap_or("").to_string()) {
            errors.push(format!("{file}: uid {} used twice", d["uid"]));
        }
        if !titles.insert(d["title"].as_str().unwrap_or("").to_string()) {
            errors.push(format!("{file}: title {} used twice", d["title"]));
        }
    }
    assert!(errors.is_empty(), "dashboard lint:\n  {}", errors.join("\n  "));
    assert_eq!(files.len(), 4);

    // The lint itself catches what it is for.
    let mut broken = files["interfaces.json"].clone();
    broken["schemaVersion"] = 41.into();
    broken["panels"][0]["targets"][0]["format"] = "timeseries".into();
    broken["panels"][1]["datasource"]["uid"] = "other".into();
    broken["panels"][2]["targets"][0]["rawSql"] = "SELECT $nosuch, $__timeBucket(time) FROM x".into();
    broken["panels"][3]["gridPos"]["x"] = 20.into();
    broken["templating"]["list"][1]["query"] = "SELECT name FROM interface WHERE x IN ($later)".into();
    let errors = lint("broken.json", &broken).join("\n");
    for expected in [
        "schemaVersion 41",
        "format \"timeseries\"",
        "datasource {\"type\":\"grafana-postgresql-datasource\",\"uid\":\"other\"}",
        "$nosuch is not a template variable",
        "unknown macro $__timeBucket",
        "outside the 24 columns",
        "$later is not a template variable defined before it",
    ] {
        assert!(errors.contains(expected), "{expected:?} not reported in:\n{errors}");
    }
}

#[test]
fn the_provisioning_files_parse_and_name_the_dashboards_folder() {
    let dir = dashboards_dir().join("provisioning");
    let ds: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(dir.join("datasources/netwarden.yaml")).unwrap()).unwrap();
    assert_eq!(ds["apiVersion"], 1);
    let ds = &ds["datasources"][0];
    assert_eq!((ds["uid"].as_str(), ds["type"].as_str()), (Some(api::grafana::DATASOURCE_UID), Some("postgres")));
    assert_eq!(ds["user"], api::grafana::DEFAULT_ROLE);
    assert_eq!(ds["jsonData"]["timescaledb"], false);
    let providers: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(dir.join("dashboards/netwarden.yaml")).unwrap()).unwrap();
    let p = &providers["providers"][0];
    assert_eq!((p["type"].as_str(), p["folder"].as_str()), (Some("file"), Some(api::grafana::NAME)));
    assert!(p["options"]["path"].as_str().unwrap().ends_with("/dashboards"), "{p}");
}

// ------------------------------------------------------------------------------------------------
// Grafana's query path, ported

/// `$name(args)` occurrences as Go's `\$([_a-zA-Z0-9]+)\(([^\)]*)\)` finds them (leftmost, not
/// overlapping): (name, args) with their byte range.
fn find_macro_spans(sql: &str) -> Vec<(String, String, std::ops::Range<usize>)> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let start = i + 1;
            let end = start + b[start..].iter().take_while(|c| c.is_ascii_alphanumeric() || **c == b'_').count();
            if end > start
                && b.get(end) == Some(&b'(')
                && let Some(close) = sql[end + 1..].find(')')
            {
                let close = end + 1 + close;
                out.push((sql[start..end].to_string(), sql[end + 1..close].to_string(), i..close + 1));
                i = close + 1;
                continue;
            }
        }
        i += 1;
    }
    out
}

fn find_macros(sql: &str) -> Vec<(String, String)> {
    find_macro_spans(sql).into_iter().map(|(n, a, _)| (n, a)).collect()
}

/// Go's time.RFC3339Nano of a UTC time: fraction trimmed of trailing zeros, none when zero.
fn rfc3339_nano(t: DateTime<Utc>) -> String {
    let mut s = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = t.timestamp_subsec_nanos();
    if nanos > 0 {
        s.push_str(format!(".{nanos:09}").trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Go's `%v` of a float64 (strconv 'g' with the shortest precision): the shortest digits, in
/// exponent form when the decimal exponent is < -4 or >= 6 (`1e+06`).
fn go_float(f: f64) -> String {
    if f == 0.0 {
        return "0".into();
    }
    let exp = f.abs().log10().floor() as i32;
    if (-4..6).contains(&exp) {
        format!("{f}")
    } else {
        let s = format!("{f:e}");
        let (mantissa, e) = s.split_once('e').unwrap();
        let e: i32 = e.parse().unwrap();
        format!("{mantissa}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
    }
}

/// gtime.ParseInterval: Go durations (`500ms`, `1m30s`) and whole days or weeks.
fn parse_interval(s: &str) -> Result<Duration, String> {
    if let Some(n) = s.strip_suffix('d').and_then(|n| n.parse::<u64>().ok()) {
        return Ok(Duration::from_secs(n * 86400));
    }
    if let Some(n) = s.strip_suffix('w').and_then(|n| n.parse::<u64>().ok()) {
        return Ok(Duration::from_secs(n * 7 * 86400));
    }
    // time.ParseDuration
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return Err(format!("invalid duration {s:?}"));
    }
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let n: f64 = rest[..num_len].parse().map_err(|_| format!("invalid duration {s:?}"))?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(format!("invalid duration {s:?}")),
        };
        total += n * scale;
        rest = &rest[unit_len..];
    }
    Ok(Duration::from_secs_f64(total))
}

/// gtime.FormatInterval: the largest whole unit.
fn format_interval(d: Duration) -> String {
    let ms = d.as_millis();
    let (year, day, hour, minute) = (365 * 86_400_000, 86_400_000, 3_600_000, 60_000);
    match ms {
        ms if ms >= year => format!("{}y", ms / year),
        ms if ms >= day => format!("{}d", ms / day),
        ms if ms >= hour => format!("{}h", ms / hour),
        ms if ms >= minute => format!("{}m", ms / minute),
        ms if ms >= 1000 => format!("{}s", ms / 1000),
        ms if ms >= 1 => format!("{ms}ms"),
        _ => "1ms".into(),
    }
}

/// rangeutil.roundInterval of @grafana/data.
fn round_interval(ms: f64) -> u64 {
    const LADDER: [(f64, u64); 27] = [
        (10.0, 1),
        (15.0, 10),
        (35.0, 20),
        (75.0, 50),
        (150.0, 100),
        (350.0, 200),
        (750.0, 500),
        (1500.0, 1000),
        (3500.0, 2000),
        (7500.0, 5000),
        (12500.0, 10000),
        (17500.0, 15000),
        (25000.0, 20000),
        (45000.0, 30000),
        (90000.0, 60000),
        (210000.0, 120000),
        (450000.0, 300000),
        (750000.0, 600000),
        (1050000.0, 900000),
        (1500000.0, 1200000),
        (2700000.0, 1800000),
        (5400000.0, 3600000),
        (9000000.0, 7200000),
        (16200000.0, 10800000),
        (32400000.0, 21600000),
        (86400000.0, 43200000),
        (604800000.0, 86400000),
    ];
    for (below, value) in LADDER {
        if ms < below {
            return value;
        }
    }
    if ms < 1814400000.0 {
        604800000
    } else if ms < 3628800000.0 {
        2592000000
    } else {
        31536000000
    }
}

/// What Grafana sends with a query: the dashboard's time range (whole milliseconds) and the
/// interval rangeutil.calculateInterval gives for the panel's width (its maxDataPoints), never
/// under the data source's minimum interval.
#[derive(Debug, Clone, Copy)]
struct QueryContext {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    interval: Duration,
}

impl QueryContext {
    fn new(from: DateTime<Utc>, to: DateTime<Utc>, max_data_points: u64, min_interval: Duration) -> Self {
        let (from, to) = (from.trunc_subsecs(3), to.trunc_subsecs(3));
        let range_ms = (to - from).num_milliseconds() as f64;
        let ms = round_interval(range_ms / max_data_points as f64).max(min_interval.as_millis() as u64);
        QueryContext { from, to, interval: Duration::from_millis(ms) }
    }
}

/// A template variable's current value: the values selected (several for multi-value or All).
#[derive(Debug, Clone)]
struct Selected {
    values: Vec<String>,
    multi_or_all: bool,
}

/// The front end's templateSrv.replace with the SQL data sources' interpolateVariable: multi-value
/// and All variables become quoted, comma-separated literals, a single value is inserted with its
/// quotes doubled; `$__interval` and `$__interval_ms` are the query's interval.
fn replace_variables(sql: &str, vars: &BTreeMap<String, Selected>, ctx: &QueryContext) -> String {
    let quote = |v: &str| format!("'{}'", v.replace('\'', "''"));
    let value = |name: &str| -> Option<String> {
        match name {
            "__interval" => Some(format_interval(ctx.interval)),
            "__interval_ms" => Some(ctx.interval.as_millis().to_string()),
            _ => vars.get(name).map(|s| {
                if s.multi_or_all {
                    s.values.iter().map(|v| quote(v)).collect::<Vec<_>>().join(",")
                } else {
                    s.values[0].replace('\'', "''")
                }
            }),
        }
    };
    let b = sql.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let braced = b.get(i + 1) == Some(&b'{');
            let start = if braced { i + 2 } else { i + 1 };
            let end = start + b[start..].iter().take_while(|c| c.is_ascii_alphanumeric() || **c == b'_').count();
            let closed = !braced || b.get(end) == Some(&b'}');
            if end > start
                && closed
                && let Some(v) = value(&sql[start..end])
            {
                out.push_str(&v);
                i = if braced { end + 1 } else { end };
                continue;
            }
        }
        let ch = sql[i..].chars().next().unwrap();
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// sqleng.Interpolate, then postgresMacroEngine.Interpolate (TimescaleDB toggle off).
fn expand_macros(sql: &str, ctx: &QueryContext) -> Result<String, String> {
    let sql = sql
        .replace("$__interval_ms", &ctx.interval.as_millis().to_string())
        .replace("$__interval", &format_interval(ctx.interval))
        .replace("$__unixEpochFrom()", &ctx.from.timestamp().to_string())
        .replace("$__unixEpochTo()", &ctx.to.timestamp().to_string());
    let mut out = String::new();
    let mut last = 0;
    for (mut name, args, span) in find_macro_spans(&sql) {
        // Pre-5.3 compatibility: $__timeGroup(...) directly followed by ',' is aliased.
        if name == "__timeGroup" {
            let whole = &sql[span.clone()];
            if let Some(at) = sql.find(whole)
                && sql.as_bytes().get(at + whole.len()) == Some(&b',')
            {
                name = "__timeGroupAlias".into();
            }
        }
        let args: Vec<String> = args.split(',').map(|a| a.trim_matches(' ').to_string()).collect();
        out.push_str(&sql[last..span.start]);
        out.push_str(&evaluate_macro(&name, &args, ctx)?);
        last = span.end;
    }
    out.push_str(&sql[last..]);
    Ok(out)
}

fn evaluate_macro(name: &str, args: &[String], ctx: &QueryContext) -> Result<String, String> {
    let (from, to) = (rfc3339_nano(ctx.from), rfc3339_nano(ctx.to));
    let need_column = || {
        if args.is_empty() { Err(format!("missing time column argument for macro {name}")) } else { Ok(&args[0]) }
    };
    let group = |args: &[String]| -> Result<(String, f64), String> {
        if args.len() < 2 {
            return Err(format!("macro {name} needs time column and interval and optional fill value"));
        }
        let interval =
            parse_interval(args[1].trim_matches('\'')).map_err(|_| format!("error parsing interval {}", args[1]))?;
        if args.len() == 3 && !matches!(args[2].as_str(), "NULL" | "previous") && args[2].parse::<f64>().is_err() {
            return Err(format!("error parsing fill value {}", args[2]));
        }
        Ok((args[0].clone(), interval.as_secs_f64()))
    };
    Ok(match name {
        "__time" => format!("{} AS \"time\"", need_column()?),
        "__timeEpoch" => format!("extract(epoch from {}) as \"time\"", need_column()?),
        "__timeFilter" => format!("{} BETWEEN '{from}' AND '{to}'", need_column()?),
        "__timeFrom" => format!("'{from}'"),
        "__timeTo" => format!("'{to}'"),
        "__timeGroup" => {
            let (col, secs) = group(args)?;
            format!("floor(extract(epoch from {col})/{})*{}", go_float(secs), go_float(secs))
        }
        "__timeGroupAlias" => format!("{} AS \"time\"", evaluate_macro("__timeGroup", args, ctx)?),
        "__unixEpochFilter" => {
            let c = need_column()?;
            format!("{c} >= {} AND {c} <= {}", ctx.from.timestamp(), ctx.to.timestamp())
        }
        "__unixEpochNanoFilter" => {
            let c = need_column()?;
            let (f, t) = (ctx.from.timestamp_nanos_opt().unwrap(), ctx.to.timestamp_nanos_opt().unwrap());
            format!("{c} >= {f} AND {c} <= {t}")
        }
        "__unixEpochNanoFrom" => ctx.from.timestamp_nanos_opt().unwrap().to_string(),
        "__unixEpochNanoTo" => ctx.to.timestamp_nanos_opt().unwrap().to_string(),
        "__unixEpochGroup" => {
            let (col, secs) = group(args)?;
            format!("floor(({col})/{})*{}", go_float(secs), go_float(secs))
        }
        "__unixEpochGroupAlias" => format!("{} AS \"time\"", evaluate_macro("__unixEpochGroup", args, ctx)?),
        other => return Err(format!("unknown macro {other:?}")),
    })
}

#[test]
fn the_macro_port_expands_as_grafanas_go_code() {
    // The expectations of Grafana's macros_test.go for PostgreSQL (TimescaleDB off).
    let from = DateTime::parse_from_rfc3339("2018-04-12T18:00:00Z").unwrap().to_utc();
    let ctx = QueryContext { from, to: from + ChronoDuration::minutes(5), interval: Duration::from_secs(60) };
    let x = |sql: &str| expand_macros(sql, &ctx).unwrap();
    assert_eq!(x("select $__time(time_column)"), "select time_column AS \"time\"");
    assert_eq!(x("select $__timeEpoch(time)"), "select extract(epoch from time) as \"time\"");
    assert_eq!(
        x("WHERE $__timeFilter(time_column)"),
        "WHERE time_column BETWEEN '2018-04-12T18:00:00Z' AND '2018-04-12T18:05:00Z'"
    );
    assert_eq!(x("GROUP BY $__timeGroup(time_column,'5m')"), "GROUP BY floor(extract(epoch from time_column)/300)*300");
    assert_eq!(
        x("SELECT $__timeGroup(time_column,'5m'), value"),
        "SELECT floor(extract(epoch from time_column)/300)*300 AS \"time\", value"
    );
    assert_eq!(
        x("SELECT $__timeGroupAlias(t, $__interval), x"),
        "SELECT floor(extract(epoch from t)/60)*60 AS \"time\", x"
    );
    assert_eq!(
        x("GROUP BY $__timeGroup(time_column,'1h', NULL)"),
        "GROUP BY floor(extract(epoch from time_column)/3600)*3600"
    );
    assert_eq!(x("select $__timeFrom()"), "select '2018-04-12T18:00:00Z'");
    assert_eq!(x("select $__unixEpochFilter(time)"), "select time >= 1523556000 AND time <= 1523556300");
    assert_eq!(x("select $__unixEpochGroup(time_column,'5m')"), "select floor((time_column)/300)*300");
    assert_eq!(x("$__interval_ms and $__interval"), "60000 and 1m");
    assert!(expand_macros("select $__nope(x)", &ctx).unwrap_err().contains("unknown macro"));
    assert_eq!(rfc3339_nano(from + ChronoDuration::milliseconds(120)), "2018-04-12T18:00:00.12Z");
    assert_eq!(
        (go_float(300.0), go_float(0.5), go_float(1e6), go_float(86400.0)),
        ("300".into(), "0.5".into(), "1e+06".into(), "86400".into())
    );
    // calculateInterval: 6 hours over 1000 points is 20s (21.6s rounded); the minimum wins above that.
    let ctx = QueryContext::new(from, from + ChronoDuration::hours(6), 1000, Duration::from_secs(1));
    assert_eq!(format_interval(ctx.interval), "20s");
    let ctx = QueryContext::new(from, from + ChronoDuration::hours(6), 1000, Duration::from_secs(60));
    assert_eq!(format_interval(ctx.interval), "1m");
    // Variables as the front end inserts them.
    let vars = BTreeMap::from([
        ("device".to_string(), Selected { values: vec!["leaf1".into(), "o'brien".into()], multi_or_all: true }),
        ("one".to_string(), Selected { values: vec!["it's".into()], multi_or_all: false }),
    ]);
    assert_eq!(
        replace_variables("IN ($device) AND x = '${one}' AND $__timeFilter(t) AND $__interval_ms", &vars, &ctx),
        "IN ('leaf1','o''brien') AND x = 'it''s' AND $__timeFilter(t) AND 60000"
    );
}

// ------------------------------------------------------------------------------------------------
// The queries against real data

/// Result of one query as Grafana's data source would see it.
struct QueryResult {
    columns: Vec<(String, tokio_postgres::types::Type)>,
    rows: Vec<Vec<Option<String>>>,
}

/// Prepares (for the column types) and runs the query over the simple query protocol, as the
/// data source does (pgconn Exec).
async fn run_query(c: &tokio_postgres::Client, sql: &str) -> Result<QueryResult, String> {
    let stmt = c.prepare(sql).await.map_err(|e| collector::db::error_text(&e))?;
    let columns = stmt.columns().iter().map(|c| (c.name().to_string(), c.type_().clone())).collect();
    let mut rows = Vec::new();
    for m in c.simple_query(sql).await.map_err(|e| collector::db::error_text(&e))? {
        if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
            rows.push((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect());
        }
    }
    Ok(QueryResult { columns, rows })
}

/// What a time-series result must be for Grafana: a `time` column first (a timestamp or epoch
/// number), never null, ascending; every other column a number or a string (a label).
fn check_time_series(r: &QueryResult) -> Result<(), String> {
    use tokio_postgres::types::Type;
    let Some((first, ty)) = r.columns.first() else { return Err("no columns".into()) };
    if first != "time" {
        return Err(format!("the first column is {first:?}, not \"time\""));
    }
    let numeric = [Type::INT2, Type::INT4, Type::INT8, Type::FLOAT4, Type::FLOAT8, Type::NUMERIC];
    let epoch = numeric.contains(ty);
    if !epoch && ![Type::TIMESTAMPTZ, Type::TIMESTAMP, Type::DATE].contains(ty) {
        return Err(format!("the time column is of type {ty}"));
    }
    for (name, ty) in &r.columns[1..] {
        if [Type::BOOL, Type::JSON, Type::JSONB, Type::TIMESTAMPTZ, Type::TIMESTAMP].contains(ty) {
            return Err(format!("column {name:?} of type {ty} is neither a value nor a label"));
        }
    }
    let mut previous: Option<f64> = None;
    for row in &r.rows {
        let text = row[0].as_deref().ok_or("a null time")?;
        let t = if epoch {
            text.parse::<f64>().map_err(|e| format!("time {text:?}: {e}"))?
        } else {
            let t =
                DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z").map_err(|e| format!("time {text:?}: {e}"))?;
            t.timestamp_millis() as f64 / 1000.0
        };
        if previous.is_some_and(|p| p > t) {
            return Err(format!("rows are not in ascending time order ({text} after a later time)"));
        }
        previous = Some(t);
    }
    Ok(())
}

/// How much data a panel must return on the polled fabric with its faults.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// At least one row.
    Rows,
    /// At least one row and a first value above zero (a stat counting what the faults caused).
    Positive,
    /// May be empty (nothing in the test produces it).
    Anything,
}

fn expectation(dashboard: &str, panel: &str) -> Expect {
    match (dashboard, panel) {
        (_, "SNMP traps") => Expect::Anything,
        // The planner needs a fault after the fabric was seen healthy; tests/tests/remediation.rs covers it.
        ("netwarden-alerts", "Remediation proposals") => Expect::Anything,
        ("netwarden-overview", "Devices up" | "Devices down" | "Devices with failing polls")
        | ("netwarden-overview", "Failed polls in range" | "Failing intents")
        | ("netwarden-routing", "BGP sessions established" | "BGP sessions down" | "OSPF neighbours full") => {
            Expect::Positive
        }
        _ => Expect::Rows,
    }
}

/// One query of a dashboard, with where it comes from.
struct Query {
    dashboard: String,
    uid: String,
    what: String,
    sql: String,
    format: String,
    max_data_points: u64,
}

/// The panels' and annotations' queries of a dashboard.
fn queries(d: &Value) -> Vec<Query> {
    let (title, uid) = (d["title"].as_str().unwrap().to_string(), d["uid"].as_str().unwrap().to_string());
    let mut out = Vec::new();
    for a in d["annotations"]["list"].as_array().unwrap() {
        out.push(Query {
            dashboard: title.clone(),
            uid: uid.clone(),
            what: format!("annotation {}", a["name"].as_str().unwrap()),
            sql: a["target"]["rawSql"].as_str().unwrap().to_string(),
            format: "table".into(),
            max_data_points: 1920,
        });
    }
    for p in d["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            out.push(Query {
                dashboard: title.clone(),
                uid: uid.clone(),
                what: p["title"].as_str().unwrap().to_string(),
                sql: t["rawSql"].as_str().unwrap().to_string(),
                format: t["format"].as_str().unwrap().to_string(),
                // maxDataPoints is the panel's width in pixels: 80 per grid column on a 1920 px screen.
                max_data_points: p["maxDataPoints"].as_u64().unwrap_or(p["gridPos"]["w"].as_u64().unwrap() * 80),
            });
        }
    }
    out
}

/// How a run chooses the variables' values among what their queries returned.
#[derive(Debug, Clone, Copy)]
enum Selection {
    /// "All": every value.
    All,
    /// The first value only.
    First,
}

/// Runs every variable, annotation and panel query of every dashboard as Grafana would for the
/// time range `ctx` and the selection; returns every failure, naming dashboard, query and SQL.
async fn run_dashboards(
    c: &tokio_postgres::Client,
    files: &BTreeMap<String, Value>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    min_interval: Duration,
    selection: Selection,
) -> (Vec<String>, usize) {
    let mut failures = Vec::new();
    let mut ran = 0;
    let label = format!("range {} .. {}, variables {selection:?}", rfc3339_nano(from), rfc3339_nano(to));
    'dashboard: for d in files.values() {
        let title = d["title"].as_str().unwrap();
        let mut vars = BTreeMap::new();
        // Variables in order: each one's query sees the ones before it.
        for v in d["templating"]["list"].as_array().unwrap() {
            let name = v["name"].as_str().unwrap();
            let ctx = QueryContext::new(from, to, 1920, min_interval);
            let sql = replace_variables(v["query"].as_str().unwrap(), &vars, &ctx);
            ran += 1;
            let result = match expand_macros(&sql, &ctx) {
                Ok(sql) => run_query(c, &sql).await.map(|r| (sql, r)),
                Err(e) => Err(format!("interpolation failed: {e}")),
            };
            match result {
                Ok((_, r)) => {
                    // One column, or __text/__value.
                    let col = r.columns.iter().position(|(n, _)| n == "__value").unwrap_or(0);
                    let values: Vec<String> = r.rows.iter().filter_map(|row| row[col].clone()).collect();
                    if values.is_empty() {
                        failures.push(format!("{title}: variable {name} ({label}) has no values:\n{sql}"));
                        continue 'dashboard;
                    }
                    let values = match selection {
                        Selection::All => values,
                        Selection::First => values[..1].to_vec(),
                    };
                    let multi = v["multi"] == true || v["includeAll"] == true;
                    vars.insert(name.to_string(), Selected { values, multi_or_all: multi });
                }
                Err(e) => {
                    failures.push(format!("{title}: variable {name} ({label}) failed: {e}\n{sql}"));
                    continue 'dashboard;
                }
            }
        }
        for q in queries(d) {
            let ctx = QueryContext::new(from, to, q.max_data_points, min_interval);
            let sql = replace_variables(&q.sql, &vars, &ctx);
            let sql = match expand_macros(&sql, &ctx) {
                Ok(sql) => sql,
                Err(e) => {
                    failures.push(format!("{}: {} ({label}): interpolation failed: {e}\n{sql}", q.dashboard, q.what));
                    continue;
                }
            };
            ran += 1;
            let r = match run_query(c, &sql).await {
                Ok(r) => r,
                Err(e) => {
                    failures.push(format!("{}: {} ({label}): {e}\n{sql}", q.dashboard, q.what));
                    continue;
                }
            };
            if q.format == "time_series"
                && let Err(e) = check_time_series(&r)
            {
                failures.push(format!("{}: {} ({label}): not a time series: {e}\n{sql}", q.dashboard, q.what));
            }
            let first_value = r.rows.first().and_then(|row| row.first().cloned().flatten());
            let ok = match expectation(&q.uid, &q.what) {
                Expect::Anything => true,
                Expect::Rows => !r.rows.is_empty(),
                Expect::Positive => first_value.as_deref().and_then(|v| v.parse::<f64>().ok()).is_some_and(|v| v > 0.0),
            };
            if !ok {
                failures.push(format!(
                    "{}: {} ({label}): expected {:?}, got {} row(s), first value {first_value:?}\n{sql}",
                    q.dashboard,
                    q.what,
                    expectation(&q.uid, &q.what),
                    r.rows.len()
                ));
            }
        }
    }
    (failures, ran)
}

/// Waits until `sql` (a count) is above zero.
async fn wait_count(c: &tokio_postgres::Client, nw: &Netwarden, sql: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let n: i64 = c.query_one(sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e}")).get(0);
        if n > 0 {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {sql}\n{}", tail(&nw.log, 30));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `netwarden grafana provision` (the real binary); its stdout and stderr.
fn provision(config: &Path, out: &Path, role: &str) -> String {
    let o = std::process::Command::new(netwarden_bin())
        .args(["--config", &config.display().to_string(), "grafana", "provision", "--out"])
        .arg(out)
        .args(["--role", role])
        .env("NETWARDEN_LOG", "debug")
        .output()
        .expect("running netwarden grafana provision");
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "grafana provision failed ({}):\n{text}", o.status);
    text
}

/// The data source file's fields that matter here, and its password.
fn read_datasource(out: &Path) -> (Value, String) {
    let path = out.join("provisioning/datasources/netwarden.yaml");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{} has mode {mode:o}", path.display());
    let yaml: Value = serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let ds = yaml["datasources"][0].clone();
    let password = ds["secureJsonData"]["password"].as_str().unwrap().to_string();
    (ds, password)
}

async fn connect_as(db: &pg::TestDb, role: &str, password: &str) -> Result<tokio_postgres::Client, String> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host_path(pg::server().socket_dir()).port(pg::server().port()).user(role).password(password).dbname(&db.name);
    let (client, connection) = cfg.connect(tokio_postgres::NoTls).await.map_err(|e| collector::db::error_text(&e))?;
    tokio::spawn(connection);
    Ok(client)
}

/// This test process's cluster trusts local connections; the role logs in with its password
/// (SCRAM) instead, so the password in the data source file is what opens the connection.
fn require_password_for(role: &str) {
    let hba = pg::server().data_dir().join("pg_hba.conf");
    let text = std::fs::read_to_string(&hba).unwrap();
    let line = format!("local all {role} scram-sha-256\n");
    if !text.contains(&line) {
        // Rewritten in place: the file keeps its owner (the server's user).
        std::fs::write(&hba, format!("{line}{text}")).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_query_runs_as_the_grafana_role_on_a_polled_fabric() {
    let dir = tempfile::tempdir().unwrap();
    let tdb = pg::fresh_db();
    let (fabric, inventory) = fabric("spines=2,leaves=2", dir.path()).await;
    let api_port = free_tcp_port();
    let config = write_config(dir.path(), &tdb, api_port, &inventory, "rule_files: [builtin]\n");
    let nw = Netwarden::start(&config, api_port, dir.path().join("netwarden.log")).await;
    let admin = tdb.connect().await;

    // Healthy polls with rates, then a cut cable and a silent agent.
    wait_count(&admin, &nw, "SELECT count(*) FROM if_sample WHERE in_bps IS NOT NULL").await;
    wait_count(&admin, &nw, "SELECT count(*) FROM intent_result WHERE verdict = 'pass'").await;
    fabric.inject(&Fault::LinkDown { a: "leaf001".into(), b: "spine1".into() }).unwrap();
    fabric.inject(&Fault::DeviceDown { device: "leaf002".into() }).unwrap();
    for sql in [
        "SELECT count(*) FROM device_state WHERE status = 'down'",
        "SELECT count(*) FROM alert WHERE rule = 'InterfaceDown' AND state = 'firing'",
        "SELECT count(*) FROM alert WHERE rule = 'DeviceDown' AND state = 'firing'",
        "SELECT count(*) FROM intent_result WHERE verdict = 'fail'",
        "SELECT count(*) FROM link_neighbor WHERE lost_at IS NOT NULL",
        "SELECT count(*) FROM state_change WHERE kind = 'bgp_peer'",
        "SELECT count(*) FROM bgp_peer WHERE state <> 'established'",
    ] {
        wait_count(&admin, &nw, sql).await;
    }
    // Rollups as the service's maintenance refreshes them every 5 minutes.
    admin.query_one("SELECT netwarden_maintain()", &[]).await.unwrap();

    // The real binary creates the role and writes the tree; a second run changes the password.
    let role = "nw_grafana_test";
    require_password_for(role);
    admin.query_one("SELECT pg_reload_conf()", &[]).await.unwrap();
    let out = dir.path().join("grafana");
    let first_run = provision(&config, &out, role);
    assert!(first_run.contains(&format!("{role} (created")), "{first_run}");
    let (_, first_password) = read_datasource(&out);
    let second_run = provision(&config, &out, role);
    assert!(second_run.contains(&format!("{role} (updated")), "{second_run}");
    let (ds, password) = read_datasource(&out);
    assert_ne!(password, first_password, "every run sets a new password");
    for (run, output) in [(&first_password, &first_run), (&password, &second_run)] {
        assert!(!output.contains(run.as_str()), "the password was printed:\n{output}");
    }
    assert!(!nw.log.exists() || !std::fs::read_to_string(&nw.log).unwrap().contains(&password));

    // The data source file names this installation's database and the role.
    assert_eq!(ds["uid"], api::grafana::DATASOURCE_UID);
    assert_eq!(ds["type"], "postgres");
    assert_eq!(ds["user"], role);
    assert_eq!(ds["url"], pg::server().socket_dir().to_string_lossy().as_ref(), "the test cluster's socket directory");
    assert_eq!(ds["jsonData"]["database"], tdb.name.as_str());
    assert_eq!(ds["jsonData"]["timescaledb"], false);
    assert_eq!(ds["jsonData"]["timeInterval"], "1s", "the poll interval");
    assert_eq!(ds["jsonData"]["postgresVersion"], 1500);
    let providers: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(out.join("provisioning/dashboards/netwarden.yaml")).unwrap())
            .unwrap();
    let provider = &providers["providers"][0];
    assert_eq!((provider["type"].as_str(), provider["folder"].as_str()), (Some("file"), Some("netwarden")));
    let dashboards = std::path::absolute(out.join("dashboards")).unwrap();
    assert_eq!(provider["options"]["path"], dashboards.to_string_lossy().as_ref());
    for (file, json) in api::grafana::DASHBOARDS {
        assert_eq!(std::fs::read_to_string(dashboards.join(file)).unwrap(), json, "{file}");
    }

    // Only the current password opens a session, and the session can read but not write.
    let Err(e) = connect_as(&tdb, role, &first_password).await else { panic!("the old password still works") };
    assert!(e.contains("password authentication failed"), "{e}");
    let c = connect_as(&tdb, role, &password).await.expect("logging in with the data source's password");
    for (sql, why) in [
        ("SELECT snmp_secret FROM device", "permission denied"),
        ("SELECT * FROM device", "permission denied"),
        ("SELECT * FROM config_snapshot", "permission denied"),
        ("UPDATE device SET site = 'x'", "read-only transaction"),
        ("CREATE TABLE grafana_was_here (x int)", "read-only transaction"),
    ] {
        let e = c.batch_execute(sql).await.err().unwrap_or_else(|| panic!("{sql} succeeded as {role}"));
        let e = collector::db::error_text(&e);
        assert!(e.contains(why), "{sql}: {e}");
    }
    // Read-only sessions are a default a query can change; the grants are what hold.
    c.batch_execute("SET default_transaction_read_only = off").await.unwrap();
    for sql in [
        "DELETE FROM alert",
        "UPDATE device_state SET status = 'up'",
        "TRUNCATE if_sample",
        "SELECT netwarden_maintain()",
    ] {
        let e = c.batch_execute(sql).await.err().unwrap_or_else(|| panic!("{sql} succeeded as {role}"));
        let e = collector::db::error_text(&e);
        assert!(e.contains("permission denied") || e.contains("must be owner"), "{sql}: {e}");
    }
    // A day partition created after the grants is readable through its parent.
    admin.query_one("SELECT netwarden_ensure_partitions(now() + interval '10 days')", &[]).await.unwrap();
    c.batch_execute("SELECT count(*) FROM if_sample WHERE time > now() + interval '12 days'").await.unwrap();

    // Every query, as Grafana runs it: over the data's time span with every value and with the
    // first value of each variable; then over a week and a year, where the traffic panels read the
    // 5-minute and hourly rollups.
    let files = dashboard_files();
    let start: DateTime<Utc> = admin.query_one("SELECT min(time) FROM poll_sample", &[]).await.unwrap().get(0);
    let now = Utc::now() + ChronoDuration::seconds(1);
    let min_interval = Duration::from_secs(1);
    let mut failures = Vec::new();
    let mut ran = 0;
    for (from, selection) in [
        (start - ChronoDuration::seconds(1), Selection::All),
        (start - ChronoDuration::seconds(1), Selection::First),
        (now - ChronoDuration::days(7), Selection::All),
        (now - ChronoDuration::days(365), Selection::All),
    ] {
        let (f, n) = run_dashboards(&c, &files, from, now, min_interval, selection).await;
        failures.extend(f);
        ran += n;
    }
    assert!(failures.is_empty(), "{} of {ran} dashboard queries failed:\n\n{}", failures.len(), failures.join("\n\n"));
    // Four runs of every panel, annotation and variable of the four dashboards.
    let per_run: usize =
        files.values().map(|d| queries(d).len() + d["templating"]["list"].as_array().unwrap().len()).sum();
    assert_eq!(ran, 4 * per_run);
    drop(nw);
}
