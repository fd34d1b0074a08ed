-- The intent engine's results: the current verdict of every intent on every device it scopes, and
-- the append-only history of verdict changes (what failed, observed against expected). Written
-- only by rules::intent::store; remediation reads violations from here.

CREATE TABLE intent_result (
    intent     text        NOT NULL,
    device_id  bigint      NOT NULL REFERENCES device (id) ON DELETE CASCADE,
    verdict    text        NOT NULL CHECK (verdict IN ('pass', 'fail', 'unknown')),
    message    text        NOT NULL DEFAULT '',
    checks     jsonb       NOT NULL,           -- [{check, verdict, observed, expected, detail}]
    since      timestamptz NOT NULL,           -- when this verdict began
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (intent, device_id)
);
CREATE INDEX intent_result_device ON intent_result (device_id);
CREATE INDEX intent_result_failing ON intent_result (intent) WHERE verdict = 'fail';

CREATE TABLE intent_event (
    id        bigserial   PRIMARY KEY,
    at        timestamptz NOT NULL,
    intent    text        NOT NULL,
    device_id bigint      NOT NULL,            -- no foreign key: history outlives a deleted device
    device    text        NOT NULL,
    verdict   text        NOT NULL,            -- the new verdict, or 'removed' (out of scope)
    previous  text,
    message   text        NOT NULL DEFAULT '',
    checks    jsonb       NOT NULL DEFAULT '[]'
);
CREATE INDEX intent_event_intent ON intent_event (intent, at DESC);
CREATE INDEX intent_event_device ON intent_event (device_id, at DESC);
