//! The alert tables against a real PostgreSQL: transitions write the active alert and its
//! history; acknowledgements, suppression changes and silences are recorded; notification groups
//! survive a reload; notifications are enqueued in the same transaction or not at all.

use chrono::{Duration, Utc};
use collector::db::{self, BackendChoice};
use netwarden_tests::pg;
use rules::alert::{AlertState, Labels, Severity, Suppression};
use rules::engine::{Change, Transition};
use rules::store;
use std::collections::BTreeMap;

fn transition(change: Change, state: AlertState) -> Transition {
    let labels: Labels =
        [("alertname", "InterfaceDown"), ("device", "leaf1"), ("interface", "swp1"), ("severity", "major")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    let now = Utc::now();
    Transition {
        fingerprint: rules::alert::fingerprint("InterfaceDown", &labels),
        rule: "InterfaceDown".into(),
        severity: Severity::Major,
        labels,
        annotations: BTreeMap::from([("summary".to_string(), "leaf1 swp1 is down".to_string())]),
        change,
        state,
        at: now,
        active_since: now,
        firing_since: (state == AlertState::Firing).then_some(now),
        flapping: false,
        device_id: 1,
        series: rules::source::SeriesKey {
            kind: rules::source::SourceKind::Interface,
            device_id: 1,
            item: "swp1".into(),
        },
    }
}

#[tokio::test]
async fn transitions_acks_suppression_silences_and_groups() {
    let tdb = pg::fresh_db();
    let mut c = tdb.connect().await;
    db::migrate(&mut c, BackendChoice::Auto).await.expect("migrate");

    let firing = transition(Change::Firing, AlertState::Firing);
    store::record_transition(&c, &firing).await.unwrap();
    let active = store::active_alerts(&c).await.unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!((active[0].state.as_str(), active[0].annotations["summary"].as_str()), ("firing", "leaf1 swp1 is down"));

    assert!(store::set_ack(&c, &firing.fingerprint, Some("alice"), Some("on it"), None, Utc::now()).await.unwrap());
    assert!(!store::set_ack(&c, "nope", Some("alice"), None, None, Utc::now()).await.unwrap());
    let sup = Suppression::Topology { device: "spine1".into() };
    store::record_suppression(&c, &firing.fingerprint, Some(&sup), Utc::now()).await.unwrap();
    let a = &store::active_alerts(&c).await.unwrap()[0];
    assert_eq!(a.acknowledged_by.as_deref(), Some("alice"));
    assert_eq!(a.suppressed_reason.as_deref(), Some("suppressed by spine1"));

    let resolved = Transition { at: Utc::now(), ..transition(Change::Resolved, AlertState::Resolved) };
    store::record_transition(&c, &resolved).await.unwrap();
    assert!(store::active_alerts(&c).await.unwrap().is_empty());
    let h = store::history(&c, Some(&firing.fingerprint), Utc::now() - Duration::hours(1), 100).await.unwrap();
    let changes: Vec<&str> = h.iter().rev().map(|e| e.change.as_str()).collect();
    assert_eq!(changes, ["firing", "acknowledged", "suppressed", "resolved"]);
    assert_eq!(h[1].detail.as_deref(), Some("suppressed by spine1"));

    // Silences: checked, listed while not ended, expired on request.
    let now = Utc::now();
    assert!(store::create_silence(&c, &[], now, now + Duration::hours(1), "bob", "x").await.is_err());
    assert!(
        store::create_silence(&c, &["device=~\"(\"".into()], now, now + Duration::hours(1), "bob", "x").await.is_err()
    );
    let id = store::create_silence(&c, &["device=\"leaf1\"".into()], now, now + Duration::hours(1), "bob", "swap")
        .await
        .unwrap();
    let list = store::silences(&c, now).await.unwrap();
    assert_eq!(list.len(), 1);
    assert!(list[0].compile().unwrap().is_active(now + Duration::minutes(1)));
    assert!(store::expire_silence(&c, id, Utc::now()).await.unwrap());
    assert!(store::silences(&c, Utc::now()).await.unwrap().is_empty());
    assert!(!store::expire_silence(&c, id, Utc::now()).await.unwrap(), "already ended");

    // Groups round-trip; notifications enqueued in a rolled-back transaction are gone.
    let g = rules::dispatch::Group {
        key: "route:abc".into(),
        route: 0,
        receiver: "noc".into(),
        labels: Labels::new(),
        alerts: BTreeMap::new(),
        next_flush: Some(Utc::now()),
        last_flush: None,
        notified: ["noc".to_string()].into(),
        escalation_since: None,
        escalation_level: 0,
    };
    store::save_group(&c, &g).await.unwrap();
    assert_eq!(store::load_groups(&c).await.unwrap(), vec![g.clone()]);
    store::delete_groups(&c, std::slice::from_ref(&g.key)).await.unwrap();
    assert!(store::load_groups(&c).await.unwrap().is_empty());
    let n = rules::alert::Notification {
        receiver: "noc".into(),
        group_key: g.key.clone(),
        group_labels: Labels::new(),
        kind: rules::alert::NotificationKind::Firing,
        escalation_level: 0,
        alerts: vec![],
        external_url: "http://nw".into(),
        created_at: Utc::now(),
    };
    let tx = c.transaction().await.unwrap();
    store::enqueue_all(&tx, std::slice::from_ref(&n)).await.unwrap();
    tx.rollback().await.unwrap();
    let queued: i64 = c.query_one("SELECT count(*) FROM notification_outbox", &[]).await.unwrap().get(0);
    assert_eq!(queued, 0);
}

fn notification(receiver: &str, group_key: &str) -> rules::alert::Notification {
    rules::alert::Notification {
        receiver: receiver.into(),
        group_key: group_key.into(),
        group_labels: Labels::new(),
        kind: rules::alert::NotificationKind::Firing,
        escalation_level: 0,
        alerts: vec![],
        external_url: "http://nw".into(),
        created_at: Utc::now(),
    }
}

fn group(key: &str) -> rules::dispatch::Group {
    rules::dispatch::Group {
        key: key.into(),
        route: 0,
        receiver: "noc".into(),
        labels: Labels::new(),
        alerts: BTreeMap::new(),
        next_flush: None,
        last_flush: Some(Utc::now()),
        notified: ["noc".to_string()].into(),
        escalation_since: None,
        escalation_level: 0,
    }
}

/// Another alert than [`transition`]'s, on interface `item`.
fn on_interface(t: Transition, item: &str) -> Transition {
    let mut labels = t.labels.clone();
    labels.insert("interface".into(), item.into());
    Transition {
        fingerprint: rules::alert::fingerprint("InterfaceDown", &labels),
        labels,
        series: rules::source::SeriesKey { item: item.into(), ..t.series.clone() },
        ..t
    }
}

async fn count(c: &tokio_postgres::Client, table: &str) -> i64 {
    c.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.unwrap().get(0)
}

/// A step's rows in one round trip: the one-statement form (transitions, groups, outbox rows claimed for the
/// local worker, ids in the order of the notifications) and the pipelined transaction (an alert resolved and
/// firing again within the step, acknowledgements, suppression changes); a failing statement leaves nothing
/// of its step behind in either form.
#[tokio::test]
async fn a_step_is_written_whole_in_one_round_trip_or_not_at_all() {
    let tdb = pg::fresh_db();
    let mut c = tdb.connect().await;
    db::migrate(&mut c, BackendChoice::Auto).await.expect("migrate");
    let pool = db::connect(&tdb.connection_string, 2).await.expect("pool");
    let conn = pool.get().await.unwrap();

    // One statement: two alerts fire, two groups are saved, three notifications are claimed.
    let a = transition(Change::Firing, AlertState::Firing);
    let b = on_interface(a.clone(), "swp2");
    let ts = [a.clone(), b.clone()];
    let groups = [group("route:a"), group("route:b")];
    let ns = [notification("noc", "route:a"), notification("pager", "route:b"), notification("mail", "route:a")];
    let mut rows = store::StepRows::default();
    rows.transitions(&ts);
    groups.iter().for_each(|g| rows.save_group(g));
    let batch = rules::outbox::InsertBatch::new(&ns, Some(std::time::Duration::from_secs(60)));
    let ids = store::write_step(&conn, &rows, &batch).await.expect("one-statement step");
    assert_eq!(ids.len(), 3);
    for ((id, until), n) in ids.iter().zip(&ns) {
        let r = c
            .query_one("SELECT receiver, state, attempts, claimed_until FROM notification_outbox WHERE id = $1", &[id])
            .await
            .unwrap();
        assert_eq!(r.get::<_, String>(0), n.receiver, "ids follow the notifications' order");
        assert_eq!((r.get::<_, String>(1).as_str(), r.get::<_, i32>(2)), ("delivering", 1), "claimed");
        assert_eq!(r.get::<_, Option<chrono::DateTime<Utc>>>(3), *until);
    }
    assert_eq!(store::active_alerts(&c).await.unwrap().len(), 2);
    assert_eq!(count(&c, "alert_event").await, 2);
    assert_eq!(store::load_groups(&c).await.unwrap().len(), 2);

    // Pipelined: `a` resolves and fires again (a new episode: a fresh row), `b` is acknowledged and suppressed,
    // a group ends; the notification goes in pending (no claim).
    let later = Utc::now() + Duration::seconds(5);
    let resolved = Transition { at: later, ..transition(Change::Resolved, AlertState::Resolved) };
    let again = Transition { at: later, active_since: later, firing_since: Some(later), ..a.clone() };
    let ts = [resolved, again];
    let acks =
        [store::AckChange { fingerprint: &b.fingerprint, by: Some("alice"), comment: None, until: None, at: later }];
    let sups = [(b.fingerprint.clone(), Some(Suppression::Silenced { silence_id: 7 }), later)];
    let ns = [notification("noc", "route:a")];
    let mut rows = store::StepRows::default();
    rows.transitions(&ts);
    rows.acks(&acks);
    rows.suppressions(&sups);
    rows.delete_group("route:b");
    let ids = store::write_step(&conn, &rows, &rules::outbox::InsertBatch::new(&ns, None)).await.expect("pipelined");
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].1, None, "pending, not claimed");
    let active = store::active_alerts(&c).await.unwrap();
    let a_row = active.iter().find(|x| x.fingerprint == a.fingerprint).unwrap();
    assert_eq!(a_row.active_since.timestamp_micros(), later.timestamp_micros(), "a fresh row for the new episode");
    let b_row = active.iter().find(|x| x.fingerprint == b.fingerprint).unwrap();
    assert_eq!(b_row.acknowledged_by.as_deref(), Some("alice"));
    assert_eq!(b_row.suppressed_by, Some(Suppression::Silenced { silence_id: 7 }));
    let h = store::history(&c, Some(&a.fingerprint), Utc::now() - Duration::hours(1), 100).await.unwrap();
    let changes: Vec<&str> = h.iter().rev().map(|e| e.change.as_str()).collect();
    assert_eq!(changes, ["firing", "resolved", "firing"]);
    let h = store::history(&c, Some(&b.fingerprint), Utc::now() - Duration::hours(1), 100).await.unwrap();
    let changes: Vec<&str> = h.iter().rev().map(|e| e.change.as_str()).collect();
    assert_eq!(changes, ["firing", "acknowledged", "suppressed"]);
    assert_eq!(store::load_groups(&c).await.unwrap().iter().map(|g| g.key.as_str()).collect::<Vec<_>>(), ["route:a"]);

    // A statement that fails (here the outbox refuses a receiver) takes its whole step with it, in both forms.
    c.batch_execute("ALTER TABLE notification_outbox ADD CONSTRAINT test_refuses CHECK (receiver <> 'refused')")
        .await
        .unwrap();
    let (alerts, events, outbox) =
        (count(&c, "alert").await, count(&c, "alert_event").await, count(&c, "notification_outbox").await);
    let new = [on_interface(a.clone(), "swp3")];
    let refused = [notification("refused", "route:c")];
    let g = group("route:c");
    let mut rows = store::StepRows::default();
    rows.transitions(&new);
    rows.save_group(&g);
    let err = store::write_step(&conn, &rows, &rules::outbox::InsertBatch::new(&refused, None)).await.unwrap_err();
    assert!(collector::db::error_text(&err).contains("test_refuses"), "{}", collector::db::error_text(&err));
    let mut rows = store::StepRows::default();
    rows.transitions(&new);
    rows.save_group(&g);
    rows.acks(&acks);
    let err = store::write_step(&conn, &rows, &rules::outbox::InsertBatch::new(&refused, None)).await.unwrap_err();
    assert!(collector::db::error_text(&err).contains("test_refuses"), "{}", collector::db::error_text(&err));
    assert_eq!(
        (count(&c, "alert").await, count(&c, "alert_event").await, count(&c, "notification_outbox").await),
        (alerts, events, outbox),
        "nothing of the failed steps was written"
    );
    assert_eq!(store::load_groups(&c).await.unwrap().len(), 1);
    // The connection is usable again afterwards (the failed transaction was rolled back, not left open).
    let ok = [notification("noc", "route:a")];
    store::write_step(&conn, &store::StepRows::default(), &rules::outbox::InsertBatch::new(&ok, None))
        .await
        .expect("the next step on the same connection");
}
