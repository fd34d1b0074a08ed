-- Remediation proposals: fixes the planner derived from failing intents with a playbook, and the
-- append-only audit trail of each proposal's life. Written only by the remediation crate.
--
-- A proposal is open while its status is proposed, approved, applying or applied; at most one
-- open proposal exists per (device, playbook, target), so instances sharing the database and a
-- planner that runs again never propose the same fix twice.

CREATE TABLE remediation_proposal (
    id            bigserial   PRIMARY KEY,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    device_id     bigint      NOT NULL REFERENCES device (id) ON DELETE CASCADE,
    device        text        NOT NULL,
    intent        text        NOT NULL,            -- the failing intent it answers
    playbook      text        NOT NULL,
    target        text        NOT NULL,            -- what on the device it fixes: 'bgp_peer 10.0.0.1', 'interface eth1'
    title         text        NOT NULL,
    diagnosis     text        NOT NULL,
    risk          text        NOT NULL CHECK (risk IN ('low', 'medium', 'high')),
    approval_required boolean NOT NULL,            -- what the policy says for this risk
    status        text        NOT NULL CHECK (status IN ('proposed', 'approved', 'rejected', 'applying', 'applied',
                                                         'verified', 'rolled_back', 'failed', 'obsolete')),
    status_note   text        NOT NULL DEFAULT '',
    commands      text[]      NOT NULL,            -- CLI lines, in order
    rollback      text[]      NOT NULL,            -- CLI lines that undo them
    verify_within_s integer   NOT NULL,            -- the intent must pass this long after apply
    evidence      jsonb       NOT NULL             -- the failing checks and the facts of the item
);
CREATE UNIQUE INDEX remediation_open ON remediation_proposal (device_id, playbook, target)
    WHERE status IN ('proposed', 'approved', 'applying', 'applied');
CREATE INDEX remediation_status ON remediation_proposal (status, updated_at DESC);
CREATE INDEX remediation_device ON remediation_proposal (device_id, created_at DESC);

CREATE TABLE remediation_event (
    id          bigserial   PRIMARY KEY,
    proposal_id bigint      NOT NULL REFERENCES remediation_proposal (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL,
    status      text        NOT NULL,
    previous    text,
    actor       text        NOT NULL,              -- 'planner', or who approved / rejected / applied
    note        text        NOT NULL DEFAULT ''
);
CREATE INDEX remediation_event_proposal ON remediation_event (proposal_id, at);
