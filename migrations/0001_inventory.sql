-- The device inventory. Written only by collector::inventory::store.
-- Secrets are never stored in clear: snmp_secret and ssh_secret hold JSON sealed with
-- AES-256-GCM (collector::secrets::SecretBox, bound to 'device:<name>:snmp' / ':ssh').

CREATE TABLE device (
    id              bigserial   PRIMARY KEY,
    name            text        NOT NULL UNIQUE CHECK (name <> ''),
    host            text        NOT NULL CHECK (host <> ''),
    snmp_port       integer     NOT NULL DEFAULT 161 CHECK (snmp_port BETWEEN 1 AND 65535),
    site            text,
    role            text,
    vendor          text,
    platform        text,
    tags            text[]      NOT NULL DEFAULT '{}',

    snmp_version    text        NOT NULL CHECK (snmp_version IN ('v2c', 'v3')),
    snmp_v3_user    text,
    -- Canonical protocol names: MD5, SHA, SHA-224, SHA-256, SHA-384, SHA-512 / DES, AES, AES-192, AES-256.
    snmp_v3_auth    text        CHECK (snmp_v3_auth IN ('MD5', 'SHA', 'SHA-224', 'SHA-256', 'SHA-384', 'SHA-512')),
    snmp_v3_priv    text        CHECK (snmp_v3_priv IN ('DES', 'AES', 'AES-192', 'AES-256')),
    snmp_v3_context text,
    -- Sealed JSON: {"community"} for v2c; {"auth_password", "priv_password"} for v3 with auth.
    snmp_secret     bytea,

    ssh_user        text,
    ssh_port        integer     CHECK (ssh_port BETWEEN 1 AND 65535),
    ssh_auth_kind   text        CHECK (ssh_auth_kind IN ('password', 'key')),
    -- Sealed JSON: {"password"} or {"private_key", "passphrase"}.
    ssh_secret      bytea,

    poll_interval_s integer     CHECK (poll_interval_s > 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT device_snmp_v2c CHECK (
        snmp_version <> 'v2c'
        OR (snmp_secret IS NOT NULL AND snmp_v3_user IS NULL AND snmp_v3_auth IS NULL
            AND snmp_v3_priv IS NULL AND snmp_v3_context IS NULL)
    ),
    CONSTRAINT device_snmp_v3 CHECK (
        snmp_version <> 'v3'
        OR (snmp_v3_user IS NOT NULL
            AND (snmp_v3_priv IS NULL OR snmp_v3_auth IS NOT NULL)
            AND ((snmp_v3_auth IS NULL) = (snmp_secret IS NULL)))
    ),
    CONSTRAINT device_ssh_complete CHECK (
        (ssh_user IS NULL AND ssh_port IS NULL AND ssh_auth_kind IS NULL AND ssh_secret IS NULL)
        OR (ssh_user IS NOT NULL AND ssh_port IS NOT NULL AND ssh_auth_kind IS NOT NULL AND ssh_secret IS NOT NULL)
    )
);

CREATE INDEX device_site_idx ON device (site);
CREATE INDEX device_tags_idx ON device USING gin (tags);
