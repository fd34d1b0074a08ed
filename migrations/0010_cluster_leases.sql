-- Scale-out (collector::cluster): instances sharing this database split the devices with leases.
--
-- cluster_instance: one row per running instance, its heartbeat renewed every third of the lease;
-- an instance is live while its heartbeat is younger than its lease. `session` is random per
-- process, so a second live process configured with the same instance name is refused.
CREATE TABLE cluster_instance (
    name          text PRIMARY KEY,
    session       text NOT NULL,
    host          text NOT NULL,
    pid           integer NOT NULL,
    lease_ms      integer NOT NULL CHECK (lease_ms > 0),
    started_at    timestamptz NOT NULL DEFAULT now(),
    heartbeat_at  timestamptz NOT NULL DEFAULT now()
);

-- device_lease: who may poll a device until when (the database clock decides). A lease is taken
-- only when it is free, expired or already ours; rows are deleted on release.
CREATE TABLE device_lease (
    device_id    bigint PRIMARY KEY REFERENCES device(id) ON DELETE CASCADE,
    owner        text NOT NULL,
    acquired_at  timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX device_lease_owner_idx ON device_lease (owner);

-- Which instance polled: NULL for a single instance outside a cluster (and for older rows).
ALTER TABLE poll_sample ADD COLUMN instance text;
