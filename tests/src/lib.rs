//! netwarden end-to-end tests and test-network fixtures.
//!
//! The fixtures are real peers, started per test process or per test and stopped by pid:
//! - [`pg`]: a private PostgreSQL cluster per process (netwarden's embedded default) and a fresh database per test;
//! - [`snmpd`]: a net-snmp agent with v2c and v3 users, plus net-snmp's client as the reference walker;
//! - [`snmpsim`]: recordings of real vendors' agents (Arista, Juniper, Cisco, HPE, H3C, Huawei) replayed by snmpsim;
//! - [`util`]: the cache dir, free ports, and `skip_unless_root` for tests that need root;
//! - [`app`]: the HTTP API's state over a test database, for in-process API tests;
//! - [`receivers`]: notification peers: a scripted capturing HTTP receiver, aiosmtpd and Alertmanager;
//! - [`serve`]: `netwarden serve` as a child process on a simulated fabric, its API, waiting for receivers;
//! - [`observations`]: scheduler observations built in memory, to drive the alert service without an agent;
//! - [`bench`]: what the benchmarks share: /proc CPU and memory, a loopback HTTP GET, the `BENCH` summary line.
//!
//! `bash .ci/run install` installs everything they need; none of them skips for lack of it, they fail and say
//! what to install.

pub mod app;
pub mod bench;
pub mod observations;
pub mod pg;
pub mod receivers;
pub mod serve;
pub mod snmpd;
pub mod snmpsim;
pub mod util;
