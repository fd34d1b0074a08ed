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
