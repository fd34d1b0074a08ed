//! The session registry: at most one session per device at a time, reused while it is fresh,
//! host keys checked against (and learned into) `ssh_host_key`, sessions in use capped.

use super::session::{Session, SshTarget};
use super::{SshError, SshErrorKind, SshOptions, profile::Profiles, store};
use crate::db::DbPool;
use crate::inventory::Device;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

const CONNECT_RETRIES: u32 = 2;

/// A connection refused, reset or closed before login completed: worth another try. Timeouts are
/// not retried (they already waited the whole budget), nor anything after login.
fn retry_connect(kind: &SshErrorKind) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionReset};
    match kind {
        SshErrorKind::Connect { source, .. } => matches!(source.kind(), ConnectionReset | ConnectionAborted),
        SshErrorKind::Protocol(russh::Error::IO(e)) => matches!(e.kind(), ConnectionReset | ConnectionAborted),
        SshErrorKind::Protocol(russh::Error::Disconnect | russh::Error::SendError) => true,
        SshErrorKind::Closed { stage, .. } => stage == "login",
        _ => false,
    }
}

#[derive(Default)]
struct Slot {
    session: Option<Session>,
}

/// Opens, lends and reuses device sessions. One per service; cheap to share behind an `Arc`.
pub struct SshManager {
    db: DbPool,
    profiles: Arc<Profiles>,
    opts: SshOptions,
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot>>>>,
    permits: Arc<Semaphore>,
}

/// A job's exclusive use of one device's session. Every call through it uses the same
/// connection; when it is dropped the session stays open for the next job on the device until it
/// has been idle too long. A session that broke (timeout, size limit) is never lent again.
pub struct DeviceSession {
    guard: OwnedMutexGuard<Slot>,
    _permit: OwnedSemaphorePermit,
    reused: bool,
}

impl std::fmt::Debug for DeviceSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceSession").field("session", &self.guard.session).field("reused", &self.reused).finish()
    }
}

impl std::ops::Deref for DeviceSession {
    type Target = Session;
    fn deref(&self) -> &Session {
        self.guard.session.as_ref().expect("a lease always holds a session")
    }
}

impl std::ops::DerefMut for DeviceSession {
    fn deref_mut(&mut self) -> &mut Session {
        self.guard.session.as_mut().expect("a lease always holds a session")
    }
}

impl DeviceSession {
    /// Whether this lease got a session an earlier job opened.
    pub fn reused(&self) -> bool {
        self.reused
    }

    /// Ends the lease and the session (instead of keeping it for the next job).
    pub async fn close(mut self) {
        if let Some(s) = self.guard.session.take() {
            s.close().await;
        }
    }
}

impl SshManager {
    pub fn new(db: DbPool, profiles: Arc<Profiles>, opts: SshOptions) -> SshManager {
        let permits = Arc::new(Semaphore::new(opts.max_sessions.max(1)));
        SshManager { db, profiles, opts, slots: Mutex::new(HashMap::new()), permits }
    }

    pub fn options(&self) -> &SshOptions {
        &self.opts
    }

    pub fn profiles(&self) -> &Arc<Profiles> {
        &self.profiles
    }

    pub fn db(&self) -> &DbPool {
        &self.db
    }

    /// The device's session, for this job alone: waits (up to `lock_wait`) while another job
    /// uses the device, reuses an open session, or connects.
    pub async fn session(&self, device: &Device) -> Result<DeviceSession, SshError> {
        let target = SshTarget::from_device(device, &self.profiles)?;
        let device_id = device.id.ok_or_else(|| SshError::new(&device.name, SshErrorKind::NotStored))?;
        let slot = self.slots.lock().unwrap_or_else(|e| e.into_inner()).entry(device.name.clone()).or_default().clone();
        let started = Instant::now();
        let deadline = started + self.opts.lock_wait;
        let busy = || SshError::new(&device.name, SshErrorKind::Busy { waited: started.elapsed() });
        let guard = tokio::time::timeout_at(deadline, slot.lock_owned()).await.map_err(|_| busy())?;
        let permit = tokio::time::timeout_at(deadline, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| busy())?
            .expect("the semaphore is never closed");
        let mut lease = DeviceSession { guard, _permit: permit, reused: false };
        if lease.guard.session.as_ref().is_some_and(Session::is_usable) {
            lease.reused = true;
            return Ok(lease);
        }
        if let Some(stale) = lease.guard.session.take() {
            stale.close().await;
        }
        lease.guard.session = Some(self.open(&target, device_id).await?);
        Ok(lease)
    }

    /// Closes every idle session (at shutdown, or to free devices' session slots).
    pub async fn close_idle(&self) {
        let slots: Vec<_> = self.slots.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
        for slot in slots {
            if let Ok(mut guard) = slot.try_lock()
                && let Some(s) = guard.session.take()
            {
                s.close().await;
            }
        }
    }

    async fn open(&self, target: &SshTarget, device_id: i64) -> Result<Session, SshError> {
        let db_err = |e: String| SshError::new(&target.device, SshErrorKind::Db(e));
        let trusted = {
            let client = self.db.get().await.map_err(|e| db_err(e.to_string()))?;
            store::trusted_key(&**client, device_id).await.map_err(|e| db_err(e.to_string()))?
        };
        let mut opened = Session::open(target, trusted.clone(), &self.opts).await;
        // Devices (and sshd's MaxStartups) reset connections they have no room for: try again,
        // a little later, before reporting it.
        for attempt in 1..=CONNECT_RETRIES {
            match &opened {
                Err(e) if retry_connect(&e.kind) => {
                    tracing::debug!(device = %target.device, error = %e, attempt, "ssh connect failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(150 * u64::from(attempt))).await;
                    opened = Session::open(target, trusted.clone(), &self.opts).await;
                }
                _ => break,
            }
        }
        let client = self.db.get().await.map_err(|e| db_err(e.to_string()))?;
        match opened {
            Ok(session) => {
                let offered = session.host_key().clone();
                let result = match trusted {
                    Some(_) => store::touch_key(&**client, device_id).await.map(|()| None),
                    None => store::learn_key(&**client, device_id, &offered).await.map(Some),
                };
                match result {
                    Ok(Some(stored)) if stored.fingerprint != offered.fingerprint => {
                        // Another session learned a different key at the same moment: trust neither.
                        session.close().await;
                        return Err(SshError::new(
                            &target.device,
                            SshErrorKind::HostKeyChanged { trusted: stored.fingerprint, offered: Box::new(offered) },
                        ));
                    }
                    Ok(Some(_)) => {
                        tracing::info!(device = %target.device, fingerprint = %offered.fingerprint, "ssh host key trusted on first use")
                    }
                    Ok(None) => {}
                    Err(e) => {
                        session.close().await;
                        return Err(db_err(e.to_string()));
                    }
                }
                Ok(session)
            }
            Err(e) => {
                if let SshErrorKind::HostKeyChanged { offered, trusted } = &e.kind {
                    tracing::error!(device = %target.device, trusted = %trusted, offered = %offered.fingerprint, "ssh host key changed: refused");
                    store::record_refused(&**client, device_id, offered).await.map_err(|e| db_err(e.to_string()))?;
                }
                Err(e)
            }
        }
    }
}
