//! SSH device access against real peers: OpenSSH in the lab routers' namespaces with FRR's vtysh as
//! the login shell (tests/lab). Real sessions by password and by key, show commands and CLI facts,
//! configuration snapshots in a fresh database, a change made through apply_config seen as a diff and
//! an event, a rejected line failing the apply, a changed host key refused until re-trusted, an
//! unreachable and a hanging device timing out without holding up another device, and the time a
//! backup of many devices takes.
//!
//! The lab's addresses exist only inside its namespaces, so each test runs on a thread that joined
//! `nwlab-mgmt` with setns(2) and drives a current-thread tokio runtime there (PostgreSQL is reached over
//! its unix socket, which works from any network namespace). Needs root; brings the lab up (up.sh is
//! idempotent) and leaves it up. Configuration changes are undone before the test checks anything.

use collector::configs::{BackupTrigger, backup, drift, store as cstore};
use collector::db::{BackendChoice, DbPool};
use collector::inventory::{self, Device, ImportMode, SshAuth, SshCredentials};
use collector::secrets::SecretBox;
use collector::ssh::{self, ApplyError, ApplyOptions, ApplyStage, OfferedKey, Profiles, SshManager, SshOptions};
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Once, RwLock};
use std::time::{Duration, Instant};

const MGMT_NS: &str = "nwlab-mgmt";

fn lab_dir() -> PathBuf {
    std::env::var_os("NWLAB_DIR").filter(|v| !v.is_empty()).map(PathBuf::from).unwrap_or_else(|| "/tmp/nwlab".into())
}

fn bring_lab_up() {
    static UP: Once = Once::new();
    UP.call_once(|| {
        let was_up = PathBuf::from("/run/netns").join(MGMT_NS).exists();
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("lab");
        let run = |script: &str| {
            let started = Instant::now();
            let out =
                Command::new("bash").arg(dir.join(script)).output().unwrap_or_else(|e| panic!("running {script}: {e}"));
            assert!(
                out.status.success(),
                "{script} failed ({}):\n{}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            eprintln!("lab: {script} took {:?}", started.elapsed());
        };
        run("up.sh");
        if !was_up {
            run("check.sh"); // a fresh lab: wait until sshd answers everywhere
        }
    });
}

/// Skips (with the reason) without root; else brings the lab up.
fn lab_or_skip() -> bool {
    if netwarden_tests::util::skip_unless_root("joining the lab's network namespaces") {
        return false;
    }
    bring_lab_up();
    true
}

/// What each test gets: a fresh database with the lab's routers in the inventory, and a session manager.
struct Lab {
    /// For the test's own queries.
    db: tokio_postgres::Client,
    pool: DbPool,
    secrets: SecretBox,
    manager: SshManager,
    devices: HashMap<String, Device>,
}

impl Lab {
    fn device(&self, name: &str) -> Device {
        self.devices.get(name).unwrap_or_else(|| panic!("no lab device {name}")).clone()
    }

    /// Stores `device` (created or replaced) and returns it with its id.
    async fn upsert(&self, device: Device) -> Device {
        inventory::store::upsert_one(&self.db, &self.secrets, &device).await.expect("storing device")
    }
}

/// The measurement loads every router's sshd; the other tests assert timings, so they never overlap it.
static LOAD: RwLock<()> = RwLock::new(());

/// Runs `body` inside the lab's management namespace with a fresh database and the lab's routers stored.
fn in_lab<F, Fut>(opts: SshOptions, body: F)
where
    F: FnOnce(Lab) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let _shared = LOAD.read().unwrap_or_else(|e| e.into_inner());
    in_lab_unlocked(opts, body)
}

fn in_lab_exclusive<F, Fut>(opts: SshOptions, body: F)
where
    F: FnOnce(Lab) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let _alone = LOAD.write().unwrap_or_else(|e| e.into_inner());
    in_lab_unlocked(opts, body)
}

fn in_lab_unlocked<F, Fut>(opts: SshOptions, body: F)
where
    F: FnOnce(Lab) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    // Created here, in the root namespace: the first call starts the test cluster, which must not be a
    // child living in the lab's namespace.
    let db = netwarden_tests::pg::fresh_db();
    let path = PathBuf::from("/run/netns").join(MGMT_NS);
    std::thread::Builder::new()
        .name(std::thread::current().name().unwrap_or("ssh-lab").to_owned())
        .spawn(move || {
            let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("setns: {e}"));
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                let mut client = db.connect().await;
                collector::db::migrate(&mut client, BackendChoice::Auto).await.expect("migrate");
                let secrets = SecretBox::from_key(&[7u8; 32]);
                let devices =
                    inventory::read_inventory_file(&lab_dir().join("inventory.yaml"), None).expect("lab inventory");
                inventory::store::import(&mut client, &secrets, &devices, ImportMode::Merge).await.expect("import");
                let stored = inventory::store::list(&client, &secrets).await.expect("list");
                let pool = collector::db::connect(&db.connection_string, 24).await.expect("pool");
                let manager = SshManager::new(pool.clone(), Arc::new(Profiles::builtin()), opts);
                let devices = stored.into_iter().map(|d| (d.name.clone(), d)).collect();
                body(Lab { db: client, pool: pool.clone(), secrets, manager, devices }).await;
                pool.close();
                drop(db);
            });
        })
        .expect("spawning the lab thread")
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e));
}

async fn timed<T>(started: Instant, fut: impl Future<Output = T>) -> (T, Duration) {
    let r = fut.await;
    (r, started.elapsed())
}

fn quick() -> SshOptions {
    SshOptions {
        connect_timeout: Duration::from_secs(3),
        command_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(30),
        ..SshOptions::default()
    }
}

/// The host key a router really has, from the lab's files.
fn real_host_key(router: &str) -> OfferedKey {
    let path = lab_dir().join("nodes").join(router).join("ssh_host_ed25519_key.pub");
    OfferedKey::from_openssh(&std::fs::read_to_string(&path).expect("host key file")).expect("host key")
}

#[test]
fn sessions_by_password_and_key_run_show_commands_and_collect_facts() {
    if !lab_or_skip() {
        return;
    }
    in_lab(quick(), |lab| async move {
        // password, host key learned on first use
        let leaf1 = lab.device("leaf1");
        let mut s = lab.manager.session(&leaf1).await.expect("session to leaf1");
        assert!(!s.reused());
        assert_eq!(s.prompt(), "leaf1#");
        let out = s.run_show(&["show version", "show bogus"]).await.expect("show commands");
        assert!(out[0].output.starts_with("FRRouting 8.") && out[0].output.contains("(leaf1)"), "{:?}", out[0]);
        assert_eq!(out[0].error, None);
        assert_eq!(out[1].error.as_deref(), Some("% Unknown command: show bogus"));
        let sent = s.commands_sent();
        drop(s);
        let client = &lab.db;
        let trusted = ssh::store::trusted_key(client, leaf1.id.unwrap()).await.unwrap().expect("key learned");
        assert_eq!(trusted.fingerprint, real_host_key("leaf1").fingerprint);
        assert_eq!(trusted.trusted_by, "first-use");

        // the next job reuses the open session
        let mut s = lab.manager.session(&leaf1).await.expect("second lease");
        assert!(s.reused(), "an open, fresh session is reused");
        let (facts, errors) = ssh::facts::collect(&mut s).await.expect("facts");
        assert!(s.commands_sent() > sent);
        assert!(errors.is_empty(), "{errors:?}");
        let ssh::facts::Fact::BgpSummary(bgp) = &facts["bgp_summary"] else { panic!("{facts:?}") };
        assert_eq!((bgp.router_id.as_deref(), bgp.local_as), (Some("10.0.0.11"), Some(65011)));
        let peers: Vec<(&str, u32)> = bgp.neighbors.iter().map(|n| (n.address.as_str(), n.remote_as)).collect();
        assert_eq!(peers, vec![("10.0.11.0", 65001), ("10.0.21.0", 65002)]);
        let ssh::facts::Fact::Snmp(snmp) = &facts["snmp"] else { panic!() };
        assert!(snmp.agentx, "the lab's FRR exports its MIBs over AgentX");
        for (name, fact) in &facts {
            ssh::store::store_fact(client, leaf1.id.unwrap(), name, Ok(&fact.data_json())).await.unwrap();
        }
        let stored = ssh::store::facts(client, leaf1.id.unwrap()).await.unwrap();
        assert_eq!(stored.iter().map(|f| f.0.as_str()).collect::<Vec<_>>(), vec!["bgp_summary", "snmp", "syslog"]);
        drop(s);

        // key authentication
        let key = std::fs::read_to_string(lab_dir().join("ssh/id_ed25519")).expect("lab key");
        let mut spine1 = lab.device("spine1");
        spine1.ssh = Some(SshCredentials {
            user: "netops".into(),
            auth: SshAuth::Key { private_key: key, passphrase: None },
            port: 22,
        });
        let spine1 = lab.upsert(spine1).await;
        let mut s = lab.manager.session(&spine1).await.expect("session by key");
        let out = s.run_show(&["show version"]).await.unwrap();
        assert!(out[0].output.contains("(spine1)"), "{out:?}");
        s.close().await;

        // a wrong password is an authentication error, not a timeout
        let mut leaf2 = lab.device("leaf2");
        leaf2.name = "leaf2-wrong-password".into();
        leaf2.id = None;
        leaf2.ssh = Some(SshCredentials { user: "netops".into(), auth: SshAuth::Password("wrong".into()), port: 22 });
        let leaf2 = lab.upsert(leaf2).await;
        let e = lab.manager.session(&leaf2).await.expect_err("wrong password");
        assert_eq!(e.code(), "authentication", "{e}");
        assert!(!e.is_transient());
    });
}

#[test]
fn a_change_shows_up_as_a_diff_an_event_and_drift() {
    if !lab_or_skip() {
        return;
    }
    in_lab(quick(), |lab| async move {
        let leaf2 = lab.device("leaf2");
        let id = leaf2.id.unwrap();
        let first = backup::backup_device(&lab.manager, &leaf2, BackupTrigger::Manual).await.expect("first backup");
        assert!(first.recorded.first && !first.recorded.changed);
        let again = backup::backup_device(&lab.manager, &leaf2, BackupTrigger::Scheduled).await.expect("second backup");
        assert_eq!(again.recorded.snapshot_id, first.recorded.snapshot_id, "same configuration, same snapshot");
        assert!(!again.recorded.changed && again.recorded.event.is_none());
        let client = &lab.db;
        let original = cstore::snapshot(client, id, first.recorded.snapshot_id).await.unwrap().unwrap();
        assert!(
            original.content.starts_with("!\nfrr version"),
            "volatile header lines are gone:\n{}",
            &original.content[..80]
        );
        let old_description = original
            .content
            .split("interface nwlab-eth1\n")
            .nth(1)
            .and_then(|rest| rest.lines().next())
            .filter(|l| l.starts_with(" description "))
            .expect("nwlab-eth1 has a description")
            .trim()
            .to_owned();
        assert!(cstore::approve(client, id, first.recorded.snapshot_id, "test").await.unwrap());
        let in_sync =
            drift::against_approved(client, &leaf2, &lab.manager.profiles().get("frr").unwrap()).await.unwrap();
        assert!(in_sync.in_sync, "{in_sync:#?}");

        // the change, the backup that sees it, and the undo: before any assertion can fail
        let marker = format!("description nw-ssh-lab-{}", std::process::id());
        let mut s = lab.manager.session(&leaf2).await.expect("session");
        let applied = s.apply_config(&["interface nwlab-eth1", &marker], &ApplyOptions::default()).await;
        drop(s);
        let changed = backup::backup_device(&lab.manager, &leaf2, BackupTrigger::Change).await;
        let profile = lab.manager.profiles().get("frr").unwrap();
        let drift_changed = drift::against_approved(client, &leaf2, &profile).await;
        let template = drift::against_template(
            client,
            &leaf2,
            &profile,
            "leaf-descriptions",
            "interface nwlab-eth1\n description {{ vars.desc }}\n",
            &serde_json::json!({ "desc": marker.trim_start_matches("description ") }),
            drift::DriftMode::Contains,
        )
        .await;
        let mut s = lab.manager.session(&leaf2).await.expect("session for the undo");
        let undo = s.apply_config(&["interface nwlab-eth1", &old_description], &ApplyOptions::default()).await;
        drop(s);
        let restored = backup::backup_device(&lab.manager, &leaf2, BackupTrigger::Change).await;
        undo.expect("undoing the change");

        let applied = applied.expect("apply");
        assert_eq!(
            applied.transcript.iter().map(|e| e.command.as_str()).collect::<Vec<_>>(),
            vec!["configure terminal", "interface nwlab-eth1", marker.as_str(), "end"]
        );
        let changed = changed.expect("backup after the change");
        assert!(changed.recorded.changed);
        assert_ne!(changed.recorded.snapshot_id, first.recorded.snapshot_id);
        let event = changed.recorded.event.expect("a change event");
        assert_eq!((event.lines_added, event.lines_removed), (1, 1));
        assert!(event.diff.contains(&format!("\n- {old_description}\n+ {marker}\n")), "{}", event.diff);
        assert_eq!(event.trigger, "change");

        let events = cstore::events_after(client, 0, Some(id), 100).await.unwrap();
        assert_eq!(events.len(), 2, "the change and the undo");
        assert_eq!(events[0], event);
        assert_eq!(events[0].device, "leaf2");
        let restored = restored.expect("backup after the undo");
        assert_eq!(
            restored.recorded.snapshot_id, first.recorded.snapshot_id,
            "back to the first snapshot (deduplicated)"
        );
        assert!(restored.recorded.changed);

        let (a, b, d) = cstore::diff_snapshots(
            client,
            id,
            &profile,
            Some(first.recorded.snapshot_id),
            Some(changed.recorded.snapshot_id),
            false,
        )
        .await
        .unwrap();
        assert_eq!((a.id, b.id), (first.recorded.snapshot_id, changed.recorded.snapshot_id));
        assert_eq!(d.diff.lines().skip(2).collect::<Vec<_>>(), event.diff.lines().skip(2).collect::<Vec<_>>());

        let history = cstore::history(client, id, true, 50).await.unwrap();
        let kinds: Vec<(bool, bool, Option<i64>)> =
            history.iter().map(|h| (h.first, h.changed, h.snapshot_id)).collect();
        assert_eq!(
            kinds,
            vec![
                (false, true, Some(first.recorded.snapshot_id)),
                (false, true, Some(changed.recorded.snapshot_id)),
                (true, false, Some(first.recorded.snapshot_id))
            ],
            "newest first: undo, change, first backup"
        );
        assert_eq!(cstore::history(client, id, false, 50).await.unwrap().len(), 4);

        let finding = drift_changed.expect("drift against the approved snapshot");
        assert!(!finding.in_sync);
        assert_eq!(finding.missing, vec![format!("interface nwlab-eth1 > {old_description}")]);
        assert_eq!(finding.unexpected, vec![format!("interface nwlab-eth1 > {marker}")]);
        let finding = template.expect("drift against the template");
        assert!(finding.in_sync, "{finding:#?}");
    });
}

#[test]
fn a_rejected_line_fails_the_apply_and_the_session_recovers() {
    if !lab_or_skip() {
        return;
    }
    in_lab(quick(), |lab| async move {
        let leaf3 = lab.device("leaf3");
        let mut s = lab.manager.session(&leaf3).await.expect("session");
        let e = s
            .apply_config(
                &["interface nwlab-eth1", "bogus-command 42", "description never-sent"],
                &ApplyOptions::default(),
            )
            .await
            .expect_err("an invalid line must fail the apply");
        match &e {
            ApplyError::Rejected { stage, message, transcript, lines_in_effect, aborted, .. } => {
                assert_eq!(*stage, ApplyStage::Line { number: 2, line: "bogus-command 42".into() });
                assert!(message.starts_with("% Unknown command"), "{message}");
                assert!(*aborted, "configuration mode was left");
                assert_eq!(*lines_in_effect, 1, "vtysh applies line by line");
                assert!(
                    !transcript.iter().any(|x| x.command.contains("never-sent")),
                    "nothing after the rejected line"
                );
            }
            other => panic!("{other}"),
        }
        assert!(e.to_string().contains("leaf3: line 2 \"bogus-command 42\" rejected"), "{e}");
        assert_eq!(s.prompt(), "leaf3#", "back in exec mode");
        let out = s.run_show(&["show running-config"]).await.expect("the session still works");
        assert!(!out[0].output.contains("never-sent") && !out[0].output.contains("bogus"));
        let e = s
            .apply_config(
                &["interface lo"],
                &ApplyOptions { confirm_within: Some(Duration::from_secs(60)), save: false },
            )
            .await
            .expect_err("FRR has no confirmed commit");
        assert!(matches!(e, ApplyError::Unsupported { .. }), "{e}");
        assert!(s.run_show(&["show version\nshow version"]).await.is_err(), "one line per command");
    });
}

/// `ping` processes running in a lab router's namespace (vtysh's ping runs the system's).
fn pings_in(router: &str) -> Vec<i32> {
    let out = Command::new("ip").args(["netns", "pids", &format!("nwlab-{router}")]).output().expect("ip netns pids");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .filter(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "ping"))
        .collect()
}

#[test]
fn output_limit_and_command_timeout_break_the_session_and_a_new_one_is_opened() {
    if !lab_or_skip() {
        return;
    }
    let before = pings_in("leaf3");
    let opts = SshOptions { max_output_bytes: 1000, command_timeout: Duration::from_secs(1), ..quick() };
    in_lab(opts, move |lab| async move {
        let leaf3 = lab.device("leaf3");
        let mut s = lab.manager.session(&leaf3).await.expect("session");
        let e = s.run_show(&["show running-config"]).await.expect_err("about 1400 bytes, more than 1000");
        assert_eq!(e.code(), "output_too_large", "{e}");
        let e = s.run_show(&["show interface brief"]).await.expect_err("a broken session is not used again");
        assert_eq!(e.code(), "session", "{e}");
        drop(s);
        let mut s = lab.manager.session(&leaf3).await.expect("a new session");
        assert!(!s.reused(), "the broken one was replaced");
        let out = s.run_show(&["show interface brief"]).await.expect("a small output");
        assert!(out[0].error.is_none() && out[0].output.contains("nwlab-eth1"), "{out:?}");

        // a command that never ends (ping of leaf2's loopback, inside the lab): timeout, then Ctrl-C on close
        let started = Instant::now();
        let e = s.run_show(&["ping 10.0.0.12"]).await.expect_err("ping never returns to the prompt");
        assert_eq!(e.code(), "timeout", "{e}");
        assert!(e.to_string().contains("leaf3: ping 10.0.0.12: no prompt within 1s"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(3));
        s.close().await;
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut left: Vec<i32> = pings_in("leaf3").into_iter().filter(|p| !before.contains(p)).collect();
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        left.retain(|p| std::path::Path::new(&format!("/proc/{p}")).exists());
    }
    for p in &left {
        // ours (started through our session): stop it so the lab is left as it was, then fail
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*p), nix::sys::signal::Signal::SIGTERM);
    }
    assert!(left.is_empty(), "ping still running on leaf3 after the session closed: {left:?}");
}

#[test]
fn a_changed_host_key_is_refused_until_an_admin_retrusts_it() {
    if !lab_or_skip() {
        return;
    }
    in_lab(quick(), |lab| async move {
        let spine2 = lab.device("spine2");
        let id = spine2.id.unwrap();
        let wrong = real_host_key("leaf1");
        let real = real_host_key("spine2");
        let client = &lab.db;
        ssh::store::set_trusted_key(client, id, &wrong, "test").await.unwrap();

        let e = lab.manager.session(&spine2).await.expect_err("a different key must be refused");
        assert_eq!(e.code(), "host_key_changed", "{e}");
        let text = e.to_string();
        assert!(
            text.contains(&wrong.fingerprint) && text.contains(&real.fingerprint) && text.contains("re-trusts"),
            "{text}"
        );
        assert!(!e.is_transient());
        // still refused: nothing learned the new key behind the admin's back
        let e = lab.manager.session(&spine2).await.expect_err("still refused");
        assert_eq!(e.code(), "host_key_changed");

        let r = ssh::store::retrust(client, "spine2", Some("SHA256:notthekey"), "admin").await;
        assert!(matches!(r, Err(ssh::store::RetrustError::FingerprintMismatch { .. })), "{r:?}");
        let r = ssh::store::retrust(client, "spine2", Some(&real.fingerprint), "admin").await.unwrap();
        assert_eq!(
            r,
            ssh::store::Retrust::Trusted { fingerprint: real.fingerprint.clone(), previous: wrong.fingerprint.clone() }
        );
        let trusted = ssh::store::trusted_key(client, id).await.unwrap().unwrap();
        assert_eq!((trusted.fingerprint.as_str(), trusted.trusted_by.as_str()), (real.fingerprint.as_str(), "admin"));

        let mut s = lab.manager.session(&spine2).await.expect("re-trusted");
        assert!(s.run_show(&["show version"]).await.unwrap()[0].output.contains("(spine2)"));
    });
}

#[test]
fn unreachable_and_hanging_devices_time_out_without_blocking_others() {
    if !lab_or_skip() {
        return;
    }
    let opts = SshOptions { connect_timeout: Duration::from_secs(2), ..quick() };
    in_lab(opts, |lab| async move {
        // no host at .99 in the management subnet: SYNs go nowhere (ARP is never answered)
        let mut ghost = lab.device("leaf1");
        ghost.name = "ghost".into();
        ghost.id = None;
        ghost.host = "10.255.0.99".into();
        let ghost = lab.upsert(ghost).await;
        // a TCP listener (in nwlab-mgmt's own loopback) that accepts and never speaks SSH
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let holder = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((sock, _)) = listener.accept().await {
                held.push(sock);
            }
        });
        let mut hang = lab.device("leaf1");
        hang.name = "hanging".into();
        hang.id = None;
        hang.host = "127.0.0.1".into();
        hang.ssh.as_mut().unwrap().port = port;
        let hang = lab.upsert(hang).await;
        let leaf1 = lab.device("leaf1");

        let started = Instant::now();
        let ssh_error = |e: backup::BackupError| match e {
            backup::BackupError::Ssh(e) => e,
            other => panic!("{other}"),
        };
        let (ghost_r, hang_r, leaf_r) = tokio::join!(
            timed(started, async {
                backup::backup_device(&lab.manager, &ghost, BackupTrigger::Manual).await.map(|_| ()).map_err(ssh_error)
            }),
            timed(started, async { lab.manager.session(&hang).await.map(|_| ()) }),
            timed(started, async {
                backup::backup_device(&lab.manager, &leaf1, BackupTrigger::Manual).await.map(|_| ()).map_err(ssh_error)
            }),
        );
        holder.abort();
        eprintln!("measure: unreachable {:?}, hanging {:?}, leaf1 backup {:?}", ghost_r.1, hang_r.1, leaf_r.1);
        let e = ghost_r.0.expect_err("nothing at 10.255.0.99");
        assert_eq!(e.code(), "timeout", "{e}");
        assert!(e.to_string().contains("ghost: connect to 10.255.0.99:22 timed out after 2s"), "{e}");
        assert!(ghost_r.1 >= Duration::from_millis(1900) && ghost_r.1 < Duration::from_secs(4), "{:?}", ghost_r.1);
        let e = hang_r.0.expect_err("a peer that never speaks SSH");
        assert_eq!(e.code(), "timeout", "{e}");
        assert!(e.to_string().contains("ssh handshake with 127.0.0.1:"), "{e}");
        leaf_r.0.expect("leaf1 is backed up meanwhile");
        assert!(leaf_r.1 < Duration::from_millis(1900), "leaf1 did not wait for the dead devices: {:?}", leaf_r.1);

        let client = &lab.db;
        let h = cstore::history(client, ghost.id.unwrap(), true, 10).await.unwrap();
        assert_eq!(h.len(), 1, "the failed attempt is in the history");
        assert_eq!(h[0].status, "failed");
        assert!(h[0].error.as_deref().unwrap_or_default().contains("timed out"), "{h:?}");
    });
}

#[test]
fn scheduled_backups_run_once_per_interval() {
    if !lab_or_skip() {
        return;
    }
    in_lab(quick(), |lab| async move {
        let cancel = tokio_util::sync::CancellationToken::new();
        let opts = backup::ScheduleOptions {
            interval: Duration::from_secs(3600),
            check_every: Duration::from_millis(200),
            concurrency: 5,
            ..Default::default()
        };
        let stop = cancel.clone();
        let db = &lab.db;
        // Let several checks run; stop once every router's facts are in (bounded).
        let stopper = async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            for _ in 0..100 {
                let n: i64 =
                    db.query_one("SELECT count(DISTINCT device_id) FROM device_cli_fact", &[]).await.unwrap().get(0);
                if n >= 5 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            stop.cancel();
        };
        let (ran, ()) = tokio::join!(backup::run_schedule(&lab.manager, &lab.secrets, &opts, cancel), stopper);
        assert_eq!(ran, 5, "each lab router once in the interval, however many checks ran");
        let rows =
            lab.db.query("SELECT trigger, status, count(*) FROM config_backup GROUP BY 1, 2", &[]).await.unwrap();
        let got: Vec<(String, String, i64)> = rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
        assert_eq!(got, vec![("scheduled".to_owned(), "ok".to_owned(), 5)]);
        // The same schedule stores each router's CLI facts (its BGP summary among them).
        let facts: i64 = lab
            .db
            .query_one(
                "SELECT count(DISTINCT device_id) FROM device_cli_fact WHERE fact = 'bgp_summary' AND error IS NULL",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(facts, 5);
        let none = std::collections::HashMap::new();
        let due = backup::due_devices(&lab.db, &lab.secrets, &opts.rules(), &none).await.unwrap();
        assert!(due.due.is_empty(), "backed up within the interval: {:?}", due.plan);
        assert_eq!(due.scheduled.len(), 5);
        // From a minute in, with a one-minute interval, every router is due again.
        let rules = collector::configs::schedule::ScheduleRules {
            default_interval: Some(Duration::from_secs(60)),
            ..opts.rules()
        };
        let (now, last) = cstore::last_backups(&lab.db, &due.scheduled).await.unwrap();
        let candidates: Vec<_> =
            due.scheduled.iter().map(|&id| collector::configs::schedule::Candidate { id, interval: None }).collect();
        let later = collector::configs::schedule::plan(&candidates, &last, &rules, now + chrono::TimeDelta::minutes(1));
        assert_eq!(later.due.len(), 5);
    });
}

/// The closing note's number: backups of many devices with the concurrency used. The lab has 5 routers;
/// each is entered 20 times in the inventory under another name, so 100 devices are backed up for real
/// (100 SSH logins, 100 `show running-config`, 100 snapshots), 20 sessions in flight.
#[test]
fn backup_of_a_hundred_devices_measured() {
    if !lab_or_skip() {
        return;
    }
    in_lab_exclusive(quick(), |lab| async move {
        let routers: Vec<Device> =
            ["spine1", "spine2", "leaf1", "leaf2", "leaf3"].iter().map(|n| lab.device(n)).collect();
        // the 5 real devices, cold (new sessions) and warm (sessions reused)
        for (round, concurrency) in [("cold", 5), ("warm", 5)] {
            let started = Instant::now();
            let results = backup::backup_all(&lab.manager, &routers, BackupTrigger::Manual, concurrency).await;
            let elapsed = started.elapsed();
            for (name, r) in &results {
                r.as_ref().unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            eprintln!("measure: backup of 5 lab routers ({round}, concurrency {concurrency}): {elapsed:?}");
        }
        let mut many = Vec::new();
        for i in 0..20 {
            for r in &routers {
                let mut d = r.clone();
                d.name = format!("{}-{i:02}", r.name);
                d.id = None;
                many.push(lab.upsert(d).await);
            }
        }
        for concurrency in [20, 5] {
            lab.manager.close_idle().await;
            let fresh = SshManager::new(lab.pool.clone(), lab.manager.profiles().clone(), quick());
            let started = Instant::now();
            let results = backup::backup_all(&fresh, &many, BackupTrigger::Manual, concurrency).await;
            let elapsed = started.elapsed();
            let failed: Vec<String> =
                results.iter().filter_map(|(n, r)| r.as_ref().err().map(|e| format!("{n}: {e}"))).collect();
            let mut per_device: Vec<Duration> =
                results.iter().filter_map(|(_, r)| r.as_ref().ok().map(|o| o.duration)).collect();
            per_device.sort();
            eprintln!(
                "measure: backup of {} devices (5 routers x 20 names), concurrency {concurrency}: {elapsed:?}; per device p50 {:?} max {:?}; {} failed",
                many.len(),
                per_device[per_device.len() / 2],
                per_device.last().unwrap(),
                failed.len()
            );
            eprintln!("failed: {failed:?}");
            assert!(failed.is_empty(), "{failed:?}");
            fresh.close_idle().await;
        }
        let client = &lab.db;
        let n: i64 =
            client.query_one("SELECT count(*) FROM config_backup WHERE status = 'ok'", &[]).await.unwrap().get(0);
        assert_eq!(n, 10 + 200);
        let distinct: i64 =
            client.query_one("SELECT count(DISTINCT sha256) FROM config_snapshot", &[]).await.unwrap().get(0);
        assert!(distinct <= 5 + 1, "the same five configurations, deduplicated per device: {distinct}");
    });
}
