-- The notification outbox: every notification the alert engine decides to send, written in the same
-- transaction as the alert's state change, then delivered (at least once) by rules::outbox's worker.
-- Written only by rules::outbox.

CREATE TABLE notification_outbox (
    id            bigserial   PRIMARY KEY,
    receiver      text        NOT NULL,
    group_key     text        NOT NULL,
    kind          text        NOT NULL CHECK (kind IN ('firing', 'resolved', 'acknowledged', 'flapping')),
    notification  jsonb       NOT NULL,                 -- rules::alert::Notification; no secrets
    created_at    timestamptz NOT NULL DEFAULT now(),
    due_at        timestamptz NOT NULL DEFAULT now(),   -- next attempt not before
    attempts      integer     NOT NULL DEFAULT 0,       -- claims so far (a claim lost to a crash counts)
    state         text        NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'delivering', 'delivered', 'failed')),
    claimed_until timestamptz,                          -- lease of the worker delivering it
    last_error    text,
    delivered_at  timestamptz,
    CHECK ((state = 'delivering') = (claimed_until IS NOT NULL))
);

-- The worker's claim query: due pending rows and expired leases.
CREATE INDEX notification_outbox_due ON notification_outbox (due_at) WHERE state IN ('pending', 'delivering');
CREATE INDEX notification_outbox_receiver ON notification_outbox (receiver, id DESC);

-- Every delivery attempt, for the API and for post-mortems. Error texts never contain secrets.
CREATE TABLE notification_attempt (
    id          bigserial   PRIMARY KEY,
    outbox_id   bigint      NOT NULL REFERENCES notification_outbox(id) ON DELETE CASCADE,
    at          timestamptz NOT NULL DEFAULT now(),
    outcome     text        NOT NULL CHECK (outcome IN ('ok', 'transient', 'permanent')),
    http_status integer,                                -- HTTP status or SMTP reply code, if the peer answered
    error       text,
    duration_ms integer     NOT NULL
);
CREATE INDEX notification_attempt_outbox ON notification_attempt (outbox_id, at);
