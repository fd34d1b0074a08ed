-- SSH device access and configuration snapshots. Written only by collector::ssh::store
-- (host keys, CLI facts) and collector::configs::store (snapshots, backups, change events).

-- Trust on first use: the host key a device presented the first time, until an admin re-trusts
-- another one. A refused (changed) key is kept next to it so the admin sees what to trust.
CREATE TABLE ssh_host_key (
    device_id           bigint      PRIMARY KEY REFERENCES device(id) ON DELETE CASCADE,
    algorithm           text        NOT NULL,
    fingerprint         text        NOT NULL CHECK (fingerprint LIKE 'SHA256:%'),
    public_key          text        NOT NULL,
    trusted_by          text        NOT NULL,            -- 'first-use' or the admin's name
    trusted_at          timestamptz NOT NULL DEFAULT now(),
    last_seen           timestamptz NOT NULL DEFAULT now(),
    refused_algorithm   text,
    refused_fingerprint text,
    refused_public_key  text,
    refused_at          timestamptz,
    refused_count       integer     NOT NULL DEFAULT 0
);

-- Facts read over the CLI where SNMP has none (NTP, syslog, SNMP and AAA settings, BGP summary):
-- current state per device and fact, updated in place like device_state.
CREATE TABLE device_cli_fact (
    device_id    bigint      NOT NULL REFERENCES device(id) ON DELETE CASCADE,
    fact         text        NOT NULL,                  -- ntp | syslog | snmp | aaa | bgp_summary
    collected_at timestamptz NOT NULL DEFAULT now(),
    data         jsonb,                                 -- NULL when the last collection failed
    error        text,
    PRIMARY KEY (device_id, fact)
);

-- One row per distinct configuration of a device (deduplicated by the hash of the normalised
-- text: volatile lines such as "! Last configuration change at …" removed). The text is the
-- normalised configuration, secrets included: mask before showing (collector::configs::mask).
CREATE TABLE config_snapshot (
    id          bigserial   PRIMARY KEY,
    device_id   bigint      NOT NULL REFERENCES device(id) ON DELETE CASCADE,
    sha256      text        NOT NULL CHECK (length(sha256) = 64),
    content     text        NOT NULL,
    lines       integer     NOT NULL,
    first_seen  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now(),
    approved_at timestamptz,                            -- the drift baseline when set
    approved_by text,
    UNIQUE (device_id, sha256)
);

-- Every backup attempt: when, why (trigger), and the snapshot it found or why it failed. The
-- device's history is this table in time order; `changed` marks the rows whose snapshot differs
-- from the previous successful backup's.
CREATE TABLE config_backup (
    id          bigserial   PRIMARY KEY,
    device_id   bigint      NOT NULL REFERENCES device(id) ON DELETE CASCADE,
    taken_at    timestamptz NOT NULL DEFAULT now(),
    trigger     text        NOT NULL CHECK (trigger IN ('manual', 'scheduled', 'change', 'api')),
    status      text        NOT NULL CHECK (status IN ('ok', 'failed')),
    snapshot_id bigint      REFERENCES config_snapshot(id) ON DELETE SET NULL,
    changed     boolean     NOT NULL DEFAULT false,
    duration_ms integer,
    error       text,
    CHECK ((status = 'ok' AND error IS NULL) OR (status = 'failed' AND error IS NOT NULL))
);
CREATE INDEX config_backup_device_idx ON config_backup (device_id, taken_at DESC);

-- A configuration change seen between two snapshots: an event for the NOC and a source for the
-- alert engine. `diff` is a unified diff with secrets already masked, safe to notify.
CREATE TABLE config_event (
    id               bigserial   PRIMARY KEY,
    device_id        bigint      NOT NULL REFERENCES device(id) ON DELETE CASCADE,
    detected_at      timestamptz NOT NULL DEFAULT now(),
    trigger          text        NOT NULL,
    from_snapshot_id bigint      NOT NULL REFERENCES config_snapshot(id) ON DELETE CASCADE,
    to_snapshot_id   bigint      NOT NULL REFERENCES config_snapshot(id) ON DELETE CASCADE,
    lines_added      integer     NOT NULL,
    lines_removed    integer     NOT NULL,
    diff             text        NOT NULL
);
CREATE INDEX config_event_device_idx ON config_event (device_id, detected_at DESC);
