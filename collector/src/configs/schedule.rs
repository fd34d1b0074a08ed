//! When each device's scheduled configuration backup is due: a pure function from the devices'
//! intervals, their last backups and the time now to the devices due now and the next check.
//!
//! A device is due when its interval (its own `backup_interval`, else the global one) has passed
//! since its last successful backup, whatever triggered it: a manual or API backup counts as much
//! as a scheduled one. The history is the database's, so a restart neither backs everything up at
//! once nor forgets a device. A failed attempt is retried after `retry_after` (or the device's
//! interval, if shorter), not at every check.

use crate::inventory::BackupInterval;
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::HashMap;
use std::time::Duration;

/// A device's backups as the schedule sees them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LastBackups {
    /// The last successful backup (any trigger).
    pub ok: Option<DateTime<Utc>>,
    /// The last failed attempt; it matters only when it is later than `ok`.
    pub failed: Option<DateTime<Utc>>,
}

impl LastBackups {
    /// With an attempt started at `at` whose outcome may not be recorded (the database was away
    /// when it ended): it counts as a failure unless a later success is known, so such a device
    /// waits `retry_after` like any failed one instead of being tried again at once.
    pub fn with_attempt(self, at: DateTime<Utc>) -> Self {
        LastBackups { failed: self.failed.max(Some(at)), ..self }
    }
}

/// The schedule's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRules {
    /// For devices without their own interval; `None`: those have no scheduled backup.
    pub default_interval: Option<Duration>,
    /// After a failed attempt the next one comes this long after it (or the device's interval
    /// after it, if shorter).
    pub retry_after: Duration,
    /// The longest time between two checks, so inventory changes and backups taken by others
    /// are seen within it.
    pub max_wait: Duration,
}

/// One device the schedule considers (a device with SSH credentials).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub id: i64,
    /// The device's own interval; `None` means the default.
    pub interval: Option<BackupInterval>,
}

/// What to do now and when to look again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupPlan {
    /// Device ids due now: never backed up first, then the longest overdue.
    pub due: Vec<i64>,
    /// The earliest time a device not due now becomes due, at most `max_wait` after now.
    pub next_check: DateTime<Utc>,
}

impl BackupPlan {
    /// How long to sleep from `now` until [`BackupPlan::next_check`].
    pub fn wait(&self, now: DateTime<Utc>) -> Duration {
        (self.next_check - now).to_std().unwrap_or(Duration::ZERO)
    }
}

/// The interval that applies to a device: its own, else the default; `None`: no scheduled backup.
pub fn effective_interval(own: Option<BackupInterval>, default: Option<Duration>) -> Option<Duration> {
    match own {
        Some(own) => own.interval(),
        None => default,
    }
    .filter(|i| !i.is_zero())
}

/// When a device with this interval and these backups is next due; `None`: it never had an
/// attempt, so it is due at once (before every device that has).
pub fn due_at(interval: Duration, last: LastBackups, retry_after: Duration) -> Option<DateTime<Utc>> {
    let after_ok = last.ok.map(|ok| add(ok, interval));
    let failed_since_ok = last.failed.filter(|failed| last.ok.is_none_or(|ok| *failed > ok));
    let after_failure = failed_since_ok.map(|failed| add(failed, retry_after.min(interval)));
    after_ok.max(after_failure)
}

/// Which of `devices` are due at `now`, and when to check again.
pub fn plan(
    devices: &[Candidate],
    last: &HashMap<i64, LastBackups>,
    rules: &ScheduleRules,
    now: DateTime<Utc>,
) -> BackupPlan {
    let mut due: Vec<(Option<DateTime<Utc>>, i64)> = Vec::new();
    let mut next_check = add(now, rules.max_wait);
    for device in devices {
        let Some(interval) = effective_interval(device.interval, rules.default_interval) else { continue };
        match due_at(interval, last.get(&device.id).copied().unwrap_or_default(), rules.retry_after) {
            Some(at) if at > now => next_check = next_check.min(at),
            at => due.push((at, device.id)),
        }
    }
    due.sort();
    BackupPlan { due: due.into_iter().map(|(_, id)| id).collect(), next_check }
}

/// `t + d`, saturating (a global interval of centuries must not overflow).
fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(d).ok().and_then(|d| t.checked_add_signed(d)).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: u64 = 3600;

    fn t(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap() + TimeDelta::minutes(minutes)
    }

    fn rules(default_hours: Option<u64>) -> ScheduleRules {
        ScheduleRules {
            default_interval: default_hours.map(|h| Duration::from_secs(h * H)),
            retry_after: Duration::from_secs(H),
            max_wait: Duration::from_secs(60),
        }
    }

    fn every(hours: u64) -> Option<BackupInterval> {
        Some(BackupInterval::Every(Duration::from_secs(hours * H)))
    }

    fn ok_at(minutes: i64) -> LastBackups {
        LastBackups { ok: Some(t(minutes)), failed: None }
    }

    /// Plans `devices` (id, own interval, last backups) at `now`; returns the ids due and the wait.
    #[track_caller]
    fn check(
        devices: &[(i64, Option<BackupInterval>, LastBackups)],
        rules: &ScheduleRules,
        now: DateTime<Utc>,
        expected_due: &[i64],
        expected_wait: Duration,
    ) {
        let candidates: Vec<Candidate> = devices.iter().map(|&(id, interval, _)| Candidate { id, interval }).collect();
        let last: HashMap<i64, LastBackups> = devices.iter().map(|&(id, _, last)| (id, last)).collect();
        let plan = plan(&candidates, &last, rules, now);
        assert_eq!(plan.due, expected_due, "due");
        assert_eq!(plan.wait(now), expected_wait, "wait");
    }

    #[test]
    fn own_interval_else_the_default() {
        let devices = [
            (1, None, ok_at(-24 * 60)),    // default 24h: due exactly now
            (2, every(6), ok_at(-5 * 60)), // 6h: due in 1h
            (3, every(6), ok_at(-7 * 60)), // overdue by 1h
            (4, every(48), ok_at(-24 * 60 - 1)),
            (5, Some(BackupInterval::Off), ok_at(-1000 * 60)),
            (6, None, LastBackups::default()), // never backed up: first
        ];
        check(&devices, &rules(Some(24)), t(0), &[6, 3, 1], Duration::from_secs(60));
        // Without a default, only the devices with their own interval are scheduled.
        check(&devices, &rules(None), t(0), &[3], Duration::from_secs(60));
        check(
            &devices,
            &ScheduleRules { default_interval: Some(Duration::ZERO), ..rules(None) },
            t(0),
            &[3],
            Duration::from_secs(60),
        );
    }

    #[test]
    fn wakes_at_the_earliest_due_time_within_max_wait() {
        let devices = [(1, every(1), ok_at(-59)), (2, every(2), ok_at(-119))];
        let long = ScheduleRules { max_wait: Duration::from_secs(600), ..rules(None) };
        check(&devices, &long, t(0), &[], Duration::from_secs(60));
        check(&devices, &long, t(0) + TimeDelta::seconds(30), &[], Duration::from_secs(30));
        check(&devices, &long, t(1), &[1, 2], Duration::from_secs(600));
        // Nothing scheduled: check again after max_wait (the inventory may change).
        check(&[], &long, t(0), &[], Duration::from_secs(600));
        check(&[(1, every(1), ok_at(-30))], &rules(None), t(0), &[], Duration::from_secs(60));
    }

    #[test]
    fn any_successful_backup_restarts_the_interval() {
        // A manual backup 10 minutes ago: the scheduled one waits a whole interval from it.
        check(&[(1, every(6), ok_at(-10))], &rules(None), t(0), &[], Duration::from_secs(60));
        let due = due_at(Duration::from_secs(6 * H), ok_at(-10), Duration::from_secs(H));
        assert_eq!(due, Some(t(6 * 60 - 10)));
    }

    #[test]
    fn a_failure_is_retried_after_retry_after_or_the_interval_if_shorter() {
        let failed = |ok: Option<i64>, failed: i64| LastBackups { ok: ok.map(t), failed: Some(t(failed)) };
        let hour = Duration::from_secs(H);
        // Last success 25h ago (overdue), the attempt 10 minutes ago failed: next try in 50 minutes.
        assert_eq!(due_at(Duration::from_secs(24 * H), failed(Some(-25 * 60), -10), hour), Some(t(50)));
        // Never succeeded: the same.
        assert_eq!(due_at(Duration::from_secs(24 * H), failed(None, -10), hour), Some(t(50)));
        // An interval shorter than retry_after wins.
        assert_eq!(due_at(Duration::from_secs(600), failed(None, -10), hour), Some(t(0)));
        // A failure before the last success does not matter.
        assert_eq!(due_at(Duration::from_secs(6 * H), failed(Some(-10), -20), hour), Some(t(6 * 60 - 10)));
        // The success's interval still applies when it ends after the retry.
        assert_eq!(due_at(Duration::from_secs(6 * H), failed(Some(-60), -50), hour), Some(t(5 * 60)));
        check(
            &[(1, every(24), failed(Some(-25 * 60), -10)), (2, every(24), failed(None, -70))],
            &ScheduleRules { max_wait: Duration::from_secs(3 * H), ..rules(None) },
            t(0),
            &[2],
            Duration::from_secs(50 * 60),
        );
    }

    #[test]
    fn an_unrecorded_attempt_counts_as_a_failure_until_a_later_success() {
        let retry = Duration::from_secs(H);
        let interval = Duration::from_secs(24 * H);
        let never = LastBackups::default().with_attempt(t(0));
        assert_eq!(due_at(interval, never, retry), Some(t(60)));
        let succeeded = LastBackups { ok: Some(t(1)), failed: None }.with_attempt(t(0));
        assert_eq!(due_at(interval, succeeded, retry), Some(t(1 + 24 * 60)));
    }

    #[test]
    fn huge_intervals_saturate() {
        let centuries = Duration::from_secs(u64::MAX / 2);
        assert_eq!(due_at(centuries, ok_at(0), Duration::from_secs(H)), Some(DateTime::<Utc>::MAX_UTC));
        let r = ScheduleRules { default_interval: Some(centuries), max_wait: centuries, ..rules(None) };
        let plan = plan(&[Candidate { id: 1, interval: None }], &HashMap::from([(1, ok_at(0))]), &r, t(0));
        assert!(plan.due.is_empty());
        assert_eq!(plan.next_check, DateTime::<Utc>::MAX_UTC);
    }
}
