//! The configuration backup schedule on a real PostgreSQL: per-device intervals are stored and
//! read back, and the devices the scheduler picks come from the stored inventory and backup
//! history (so a restart neither backs everything up at once nor forgets a device). Real backups
//! over SSH are covered by the lab (tests/tests/ssh_lab.rs).

use chrono::{DateTime, TimeDelta, Utc};
use collector::configs::backup::{ScheduleOptions, due_devices};
use collector::configs::{BackupTrigger, store as cstore};
use collector::inventory::store::{ImportMode, import, list, list_views};
use collector::inventory::{BackupInterval, Device, parse_inventory};
use collector::secrets::SecretBox;
use collector::ssh::Profiles;
use netwarden_tests::pg;
use std::collections::HashMap;
use std::time::Duration;

const SSH: &str = "ssh: { user: ops, password: sshpass1 }";

fn inventory() -> Vec<Device> {
    let dev = |name: &str, extra: &str| {
        format!("  - {{ name: {name}, address: 10.0.0.1, snmp: {{ version: v2c, community: c }}, {extra} }}\n")
    };
    let text = [
        "devices:\n".to_owned(),
        dev("default-overdue", SSH),
        dev("six-hours-recent", &format!("backup_interval: 6h, {SSH}")),
        dev("six-hours-overdue", &format!("backup_interval: 6h, {SSH}")),
        dev("off", &format!("backup_interval: off, {SSH}")),
        dev("no-ssh", "backup_interval: 1h"),
        dev("never", SSH),
        dev("hourly-failed", &format!("backup_interval: 1h, {SSH}")),
        dev("manual-recent", SSH),
    ]
    .concat();
    parse_inventory("t.yaml", &text, None).unwrap()
}

/// Records a successful backup (through the real write path) and moves it `ago` into the past.
async fn backed_up(c: &mut tokio_postgres::Client, id: i64, trigger: BackupTrigger, ago: &str) -> DateTime<Utc> {
    let frr = Profiles::builtin().get("frr").unwrap();
    let config = format!("hostname d{id}\n!\n");
    let r = cstore::record_backup(c, id, &frr, &config, trigger, Duration::from_millis(5)).await.unwrap();
    c.query_one(
        "UPDATE config_backup SET taken_at = now() - $2::text::interval WHERE id = $1 RETURNING taken_at",
        &[&r.backup_id, &ago],
    )
    .await
    .unwrap()
    .get(0)
}

async fn failed(c: &tokio_postgres::Client, id: i64, ago: &str) -> DateTime<Utc> {
    let backup_id =
        cstore::record_failure(c, id, BackupTrigger::Scheduled, "timed out", Duration::from_secs(10)).await.unwrap();
    c.query_one(
        "UPDATE config_backup SET taken_at = now() - $2::text::interval WHERE id = $1 RETURNING taken_at",
        &[&backup_id, &ago],
    )
    .await
    .unwrap()
    .get(0)
}

#[tokio::test]
async fn the_scheduler_picks_due_devices_from_stored_state() {
    let tdb = pg::fresh_db();
    let mut c = tdb.connect().await;
    collector::db::migrate(&mut c, collector::db::BackendChoice::Auto).await.unwrap();
    let secrets = SecretBox::from_key(&[5; 32]);
    let devices = inventory();
    import(&mut c, &secrets, &devices, ImportMode::Merge).await.unwrap();

    // Stored and read back as given; the API view shows seconds, 0 for off.
    let stored = list(&c, &secrets).await.unwrap();
    let by_name: HashMap<&str, &Device> = stored.iter().map(|d| (d.name.as_str(), d)).collect();
    let id = |name: &str| by_name[name].id.unwrap();
    assert_eq!(by_name["six-hours-recent"].backup_interval, Some(BackupInterval::Every(Duration::from_secs(6 * 3600))));
    assert_eq!(by_name["off"].backup_interval, Some(BackupInterval::Off));
    assert_eq!(by_name["never"].backup_interval, None);
    let views = list_views(&c).await.unwrap();
    let view = |name: &str| views.iter().find(|v| v.name == name).unwrap().backup_interval_s;
    assert_eq!((view("six-hours-recent"), view("off"), view("never")), (Some(6 * 3600), Some(0), None));
    let row = c.query_one("SELECT backup_interval_s FROM device WHERE name = 'off'", &[]).await.unwrap();
    assert_eq!(row.get::<_, Option<i32>>(0), Some(0));
    // Re-importing the same file changes nothing.
    let again = import(&mut c, &secrets, &devices, ImportMode::Merge).await.unwrap();
    assert_eq!(again.unchanged.len(), devices.len());

    // The history: what a process that ran before this one left behind.
    backed_up(&mut c, id("default-overdue"), BackupTrigger::Scheduled, "25 hours").await;
    let recent = backed_up(&mut c, id("six-hours-recent"), BackupTrigger::Scheduled, "5 hours").await;
    backed_up(&mut c, id("six-hours-overdue"), BackupTrigger::Scheduled, "8 hours").await;
    backed_up(&mut c, id("hourly-failed"), BackupTrigger::Scheduled, "2 hours").await;
    let failed_at = failed(&c, id("hourly-failed"), "10 minutes").await;
    failed(&c, id("off"), "40 days").await;
    // An on-demand backup counts: the default 24h restarts from it.
    backed_up(&mut c, id("manual-recent"), BackupTrigger::Scheduled, "30 hours").await;
    backed_up(&mut c, id("manual-recent"), BackupTrigger::Api, "1 hour").await;

    let (now, last) = cstore::last_backups(&c, &[id("hourly-failed"), id("never"), id("manual-recent")]).await.unwrap();
    assert_eq!(last[&id("hourly-failed")].failed, Some(failed_at));
    assert!(!last.contains_key(&id("never")));
    assert!(last[&id("manual-recent")].ok.is_some_and(|ok| now - ok < TimeDelta::minutes(61)));
    assert_eq!(last[&id("manual-recent")].failed, None);

    let opts = ScheduleOptions {
        interval: Duration::from_secs(24 * 3600),
        retry_after: Duration::from_secs(3600),
        check_every: Duration::from_secs(2 * 3600),
        concurrency: 4,
    };
    let none = HashMap::new();
    let round = due_devices(&c, &secrets, &opts.rules(), &none).await.unwrap();
    let names = |ds: &[Device]| ds.iter().map(|d| d.name.clone()).collect::<Vec<_>>();
    // Never backed up first, then the longest overdue; off, no SSH, recent and retried-later are not due.
    assert_eq!(names(&round.due), ["never", "six-hours-overdue", "default-overdue"]);
    assert_eq!(round.scheduled.len(), 7, "every device with SSH credentials is considered");
    assert!(!round.scheduled.contains(&id("no-ssh")));
    // The next look: when the failed hourly device may be retried (before six-hours-recent is due).
    assert_eq!(round.plan.next_check, failed_at + TimeDelta::hours(1));
    assert!(round.plan.next_check < recent + TimeDelta::hours(6));
    let wait = round.plan.wait(round.now);
    assert!(wait > Duration::from_secs(49 * 60) && wait <= Duration::from_secs(50 * 60), "{wait:?}");
    // With the default check_every, the scheduler looks again within a minute.
    let bounded = due_devices(&c, &secrets, &ScheduleOptions::default().rules(), &none).await.unwrap();
    assert_eq!(bounded.plan.wait(bounded.now), Duration::from_secs(60));

    // An attempt this process started but could not record keeps its device from being tried again at once.
    let attempted = HashMap::from([(id("never"), round.now)]);
    let after = due_devices(&c, &secrets, &opts.rules(), &attempted).await.unwrap();
    assert_eq!(names(&after.due), ["six-hours-overdue", "default-overdue"]);

    // The due devices are backed up; a "restarted" scheduler (nothing in memory) finds nothing due.
    for d in &round.due {
        backed_up(&mut c, d.id.unwrap(), BackupTrigger::Scheduled, "1 second").await;
    }
    let restarted = due_devices(&c, &secrets, &opts.rules(), &none).await.unwrap();
    assert!(restarted.due.is_empty(), "{:?}", names(&restarted.due));

    // Without a global interval, only devices with their own are scheduled: the 1h one, once its retry is due.
    let own_only = ScheduleOptions { interval: Duration::ZERO, ..opts.clone() };
    c.execute("UPDATE config_backup SET taken_at = taken_at - interval '50 minutes'", &[]).await.unwrap();
    let round = due_devices(&c, &secrets, &own_only.rules(), &none).await.unwrap();
    assert_eq!(names(&round.due), ["hourly-failed"]);
    let round = due_devices(&c, &secrets, &opts.rules(), &none).await.unwrap();
    assert_eq!(
        names(&round.due),
        ["hourly-failed"],
        "50 minutes after their backups, the 24h and 6h devices are not due"
    );

    // An inventory change is followed at the next look: "off" gets an interval and is due at once
    // (its only attempt failed 40 days ago).
    let mut changed = by_name["off"].clone();
    changed.backup_interval = Some(BackupInterval::Every(Duration::from_secs(12 * 3600)));
    collector::inventory::store::upsert_one(&c, &secrets, &changed).await.unwrap();
    let round = due_devices(&c, &secrets, &opts.rules(), &none).await.unwrap();
    assert_eq!(names(&round.due), ["off", "hourly-failed"]);
}
