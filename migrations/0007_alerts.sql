-- The alert engine's durable state: active alerts (pending and firing, with acknowledgement and the
-- reason they are suppressed), the append-only history of every transition, silences, and the
-- notification groups (what each receiver was told, so a resolve always follows a page after a
-- restart). Written only by rules::store.

CREATE TABLE alert (
    fingerprint   text        PRIMARY KEY,
    rule          text        NOT NULL,
    severity      text        NOT NULL,
    state         text        NOT NULL CHECK (state IN ('pending', 'firing')),
    labels        jsonb       NOT NULL,
    annotations   jsonb       NOT NULL DEFAULT '{}',
    device_id     bigint,                      -- no foreign key: a deleted device's alerts resolve in the engine
    series_kind   text        NOT NULL,
    series_item   text        NOT NULL,
    active_since  timestamptz NOT NULL,
    firing_since  timestamptz,
    flapping      boolean     NOT NULL DEFAULT false,
    suppressed_by jsonb,
    ack_by        text,
    ack_comment   text,
    ack_at        timestamptz,
    ack_until     timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_device ON alert (device_id);

CREATE TABLE alert_event (
    id          bigserial   PRIMARY KEY,
    at          timestamptz NOT NULL,
    fingerprint text        NOT NULL,
    rule        text        NOT NULL,
    change      text        NOT NULL,   -- pending, pending_cancelled, firing, resolved, flapping_started,
                                        -- flapping_stopped, acknowledged, unacknowledged, suppressed, unsuppressed
    state       text        NOT NULL,
    severity    text        NOT NULL,
    labels      jsonb       NOT NULL,
    annotations jsonb       NOT NULL DEFAULT '{}',
    detail      text
);
CREATE INDEX alert_event_fingerprint ON alert_event (fingerprint, at DESC);
CREATE INDEX alert_event_at ON alert_event (at DESC);

CREATE TABLE silence (
    id         bigserial   PRIMARY KEY,
    matchers   text[]      NOT NULL CHECK (cardinality(matchers) > 0),
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL,
    created_by text        NOT NULL,
    comment    text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at)
);
CREATE INDEX silence_ends ON silence (ends_at);

CREATE TABLE alert_group (
    key        text        PRIMARY KEY,
    state      jsonb       NOT NULL,      -- rules::dispatch::Group
    updated_at timestamptz NOT NULL DEFAULT now()
);
