-- Routing and neighbour state (current, updated in place each poll) and the append-only history
-- of every state change, from which "as of T", "changes between T1 and T2", outage durations
-- and flap counts are answered.

CREATE TABLE bgp_peer (
    device_id                    bigint NOT NULL REFERENCES device(id) ON DELETE CASCADE,
    peer_addr                    inet NOT NULL,
    remote_as                    bigint,
    local_addr                   inet,
    local_as                     bigint,
    admin_status                 text,
    state                        text NOT NULL,
    established_time_s           bigint,
    fsm_established_transitions  bigint,
    in_updates                   bigint,
    out_updates                  bigint,
    last_error                   text,
    afi_safi                     text NOT NULL DEFAULT '',   -- '' for the session itself
    prefixes_received            bigint,
    prefixes_accepted            bigint,
    source                       text,
    state_since                  timestamptz NOT NULL,
    last_seen                    timestamptz NOT NULL,
    PRIMARY KEY (device_id, peer_addr, afi_safi)
);

CREATE TABLE ospf_neighbor (
    device_id          bigint NOT NULL REFERENCES device(id) ON DELETE CASCADE,
    neighbor_addr      inet NOT NULL,
    addressless_index  integer NOT NULL DEFAULT 0,
    router_id          inet,
    state              text NOT NULL,
    events             bigint,
    priority           integer,
    state_since        timestamptz NOT NULL,
    last_seen          timestamptz NOT NULL,
    PRIMARY KEY (device_id, neighbor_addr, addressless_index)
);

CREATE TABLE ospf_interface (
    device_id        bigint NOT NULL REFERENCES device(id) ON DELETE CASCADE,
    ip               inet NOT NULL,
    addressless_if   integer NOT NULL DEFAULT 0,
    area_id          inet,
    state            text,
    if_index         integer,
    last_seen        timestamptz NOT NULL,
    PRIMARY KEY (device_id, ip, addressless_if)
);

-- LLDP and CDP neighbours: what a device sees on each local port.
CREATE TABLE link_neighbor (
    device_id          bigint NOT NULL REFERENCES device(id) ON DELETE CASCADE,
    protocol           text NOT NULL,
    local_port_num     integer NOT NULL,
    local_if_index     integer,
    local_if_name      text,
    chassis_id         text NOT NULL,
    chassis_id_subtype integer,
    sys_name           text,
    port_id            text NOT NULL,
    port_id_subtype    integer,
    port_descr         text,
    mgmt_addr          inet,
    first_seen         timestamptz NOT NULL,
    last_seen          timestamptz NOT NULL,
    -- NULL while the neighbour is advertised; set when it vanished. The row is kept, so the
    -- topology can show a failed cable as a down link rather than forget it.
    lost_at            timestamptz,
    PRIMARY KEY (device_id, protocol, local_port_num, chassis_id, port_id)
);

-- The device's own LLDP chassis id, so other devices' reports of it are matched to it.
ALTER TABLE device_state ADD COLUMN lldp_chassis_id text;

-- Every change of a tracked state: kind is bgp_peer | ospf_neighbor | link_neighbor |
-- interface | device | topology_link; key names the object within the device (peer address,
-- neighbour, local port, interface name, link key). old_state NULL = appeared, new_state NULL =
-- vanished. Never updated, only appended.
CREATE TABLE state_change (
    id          bigserial PRIMARY KEY,
    time        timestamptz NOT NULL,
    device_id   bigint REFERENCES device(id) ON DELETE CASCADE,
    kind        text NOT NULL,
    key         text NOT NULL,
    old_state   text,
    new_state   text,
    detail      jsonb
);
CREATE INDEX state_change_object_idx ON state_change (device_id, kind, key, time DESC);
CREATE INDEX state_change_time_idx ON state_change (time);

-- IF-MIB status names, for history rows a person reads.
CREATE FUNCTION netwarden_if_status(s smallint) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE s WHEN 1 THEN 'up' WHEN 2 THEN 'down' WHEN 3 THEN 'testing' WHEN 4 THEN 'unknown'
                  WHEN 5 THEN 'dormant' WHEN 6 THEN 'notPresent' WHEN 7 THEN 'lowerLayerDown' END
$$;

-- The topology as built from the neighbour tables, stored whenever it changes: "the graph as of
-- T" and "what changed between T1 and T2" are diffs of these.
CREATE TABLE topology_snapshot (
    id        bigserial PRIMARY KEY,
    time      timestamptz NOT NULL,
    topology  jsonb NOT NULL
);
CREATE INDEX topology_snapshot_time_idx ON topology_snapshot (time);
