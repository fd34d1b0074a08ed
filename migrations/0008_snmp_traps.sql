-- SNMP notifications (traps and informs) accepted from inventory devices. Written only by
-- collector::store::trap: appended as they arrive, rows older than 30 days deleted by the same
-- writer. Rejected datagrams (unknown source, wrong community, malformed) are counted, not stored.
CREATE TABLE snmp_trap (
    id         bigserial   PRIMARY KEY,
    time       timestamptz NOT NULL,                -- when the receiver got it
    device_id  bigint      NOT NULL REFERENCES device(id) ON DELETE CASCADE,
    source     text        NOT NULL,                -- address:port the datagram came from
    version    text        NOT NULL CHECK (version IN ('v1', 'v2c', 'v3')),
    inform     boolean     NOT NULL DEFAULT false,
    kind       text        NOT NULL,                -- link_down, link_up, cold_start, ..., other
    trap_oid   text        NOT NULL,                -- snmpTrapOID.0 (a v1 trap translated per RFC 3584)
    details    jsonb       NOT NULL DEFAULT '{}',   -- what the kind carries: if_index, peer, router_id, state
    varbinds   jsonb       NOT NULL                 -- ["OID = TYPE: value", ...]
);

CREATE INDEX snmp_trap_device_time ON snmp_trap (device_id, time DESC);
CREATE INDEX snmp_trap_time ON snmp_trap (time);
