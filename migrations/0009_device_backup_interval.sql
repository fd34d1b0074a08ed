-- A device's own schedule for configuration backups (collector::configs::backup::run_schedule).
-- NULL: the global [configs] backup_interval; 0: no scheduled backup; else seconds between
-- successful backups.
ALTER TABLE device ADD COLUMN backup_interval_s integer CHECK (backup_interval_s >= 0);

-- The scheduler asks for each device's last successful backup at every check.
CREATE INDEX config_backup_ok_idx ON config_backup (device_id, taken_at DESC) WHERE status = 'ok';
