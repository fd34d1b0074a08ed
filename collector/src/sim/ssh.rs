//! SSH on every simulated device: a russh server per device on its agent's IP (its own port),
//! password login with the fabric's credentials, and the device's [`cli`](super::cli) in a PTY
//! shell (echo, `\r` or `\n` ends a line, backspace) or one command per exec request (exit status
//! 1 when the CLI rejects it).
//!
//! One host key for the whole fabric (generated at start unless one is given). Sessions run
//! concurrently across devices, at most [`SimSshConfig::max_connections`] at once for the whole
//! fabric: russh has no connection limit of its own, so the accept loops share a semaphore and a
//! connection beyond it is closed at once (counted), like sshd's `MaxStartups`.

use super::cli::Shell;
use super::running::{Fabric, SshEndpoints};
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{HashAlg, PrivateKey};
use russh::server::{Auth, ChannelOpenHandle, Msg, Session};
use russh::{Channel, ChannelId, Disconnect, MethodKind, MethodSet, Pty};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Longest line the CLI takes; a longer one ends the session (no device takes megabytes).
const MAX_LINE: usize = 4096;

/// How the fabric's devices serve SSH.
#[derive(Clone)]
pub struct SimSshConfig {
    /// Device `i` listens on `base_port + i` (0: any free port for each).
    pub base_port: u16,
    pub user: String,
    pub password: String,
    /// SSH connections open at once, all devices together; more are closed at accept.
    pub max_connections: usize,
    /// The fabric's host key; `None`: a fresh ed25519 key.
    pub host_key: Option<PrivateKey>,
    /// A connection nothing arrives on for this long is closed.
    pub idle_timeout: Duration,
}

impl std::fmt::Debug for SimSshConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimSshConfig")
            .field("base_port", &self.base_port)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("max_connections", &self.max_connections)
            .field("host_key", &self.host_key.as_ref().map(|k| k.algorithm()))
            .field("idle_timeout", &self.idle_timeout)
            .finish()
    }
}

impl Default for SimSshConfig {
    fn default() -> Self {
        SimSshConfig {
            base_port: 0,
            user: "netwarden".to_string(),
            password: "netwarden".to_string(),
            max_connections: 64,
            host_key: None,
            idle_timeout: Duration::from_secs(600),
        }
    }
}

/// A host key from an OpenSSH private key file (unencrypted).
pub fn load_host_key(path: &std::path::Path) -> io::Result<PrivateKey> {
    russh::keys::load_secret_key(path, None)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("host key {}: {e}", path.display())))
}

/// A fresh ed25519 host key.
pub fn generate_host_key() -> PrivateKey {
    PrivateKey::from(Ed25519Keypair::from_seed(&rand::random::<[u8; 32]>()))
}

/// SSH connections since start.
#[derive(Debug, Default)]
struct Counts {
    accepted: AtomicU64,
    refused: AtomicU64,
}

/// The fabric's SSH servers; dropping this stops accepting.
pub struct SimSsh {
    addrs: Vec<SocketAddr>,
    fingerprint: String,
    counts: Arc<Counts>,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

/// What every connection's handler shares.
struct Shared {
    fabric: Arc<Fabric>,
    user: String,
    password: String,
    slots: Arc<Semaphore>,
    counts: Arc<Counts>,
    config: Arc<russh::server::Config>,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

impl SimSsh {
    /// Serves SSH for every device of `fabric` on its agent's IP (serve the agents first), and
    /// records the logins in the fabric so that [`Fabric::inventory`] carries them.
    pub async fn bind(fabric: Arc<Fabric>, config: SimSshConfig) -> io::Result<SimSsh> {
        let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
        if fabric.agents().is_empty() {
            return Err(invalid("simulated SSH: the fabric's agents are not served yet".to_string()));
        }
        let key = config.host_key.clone().unwrap_or_else(generate_host_key);
        let fingerprint = key.public_key().fingerprint(HashAlg::Sha256).to_string();
        let server_config = Arc::new(russh::server::Config {
            keys: vec![key],
            methods: MethodSet::from(&[MethodKind::Password][..]),
            // Clients probe "none" first: answer it at once; a wrong password waits a little.
            auth_rejection_time: Duration::from_millis(200),
            auth_rejection_time_initial: Some(Duration::ZERO),
            inactivity_timeout: Some(config.idle_timeout),
            nodelay: true,
            ..Default::default()
        });
        let mut listeners = Vec::with_capacity(fabric.agents().len());
        for (i, agent) in fabric.agents().iter().enumerate() {
            let ip = agent.local_addr().ip();
            let port = port_of(config.base_port, i)
                .ok_or_else(|| invalid(format!("ssh port {} + device {i} goes beyond 65535", config.base_port)))?;
            let listener = TcpListener::bind(SocketAddr::new(ip, port))
                .await
                .map_err(|e| io::Error::new(e.kind(), format!("binding ssh on {ip}:{port}: {e}")))?;
            listeners.push(listener);
        }
        let addrs = listeners.iter().map(TcpListener::local_addr).collect::<io::Result<Vec<_>>>()?;
        let shared = Arc::new(Shared {
            fabric: Arc::clone(&fabric),
            user: config.user.clone(),
            password: config.password.clone(),
            slots: Arc::new(Semaphore::new(config.max_connections.max(1))),
            counts: Arc::new(Counts::default()),
            config: server_config,
            cancel: CancellationToken::new(),
            tasks: TaskTracker::new(),
        });
        for (device, listener) in listeners.into_iter().enumerate() {
            shared.tasks.spawn(accept_loop(listener, device, Arc::clone(&shared)));
        }
        fabric.set_ssh(SshEndpoints { addrs: addrs.clone(), user: config.user, password: config.password });
        Ok(SimSsh {
            addrs,
            fingerprint,
            counts: Arc::clone(&shared.counts),
            cancel: shared.cancel.clone(),
            tasks: shared.tasks.clone(),
        })
    }

    /// Per device (model order), where it takes SSH.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The fabric's host key, `SHA256:…` as `ssh-keygen -lf` prints it.
    pub fn host_key_fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Connections served and connections closed at accept for want of a slot.
    pub fn connection_counts(&self) -> (u64, u64) {
        (self.counts.accepted.load(Ordering::Relaxed), self.counts.refused.load(Ordering::Relaxed))
    }

    /// Stops accepting, disconnects every session and waits for their tasks.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

impl Drop for SimSsh {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn port_of(base: u16, device: usize) -> Option<u16> {
    if base == 0 { Some(0) } else { u16::try_from(usize::from(base) + device).ok() }
}

async fn accept_loop(listener: TcpListener, device: usize, shared: Arc<Shared>) {
    loop {
        let (stream, peer) = tokio::select! {
            () = shared.cancel.cancelled() => return,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(device, error = %e, "sim ssh: accept failed");
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&shared.slots).try_acquire_owned() else {
            shared.counts.refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(device, %peer, "sim ssh: connection limit reached; connection closed");
            continue;
        };
        shared.counts.accepted.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        let conn = Connection { shared: Arc::clone(&shared), device, terminals: HashMap::new() };
        let shared = Arc::clone(&shared);
        shared.tasks.clone().spawn(async move {
            let _permit = permit;
            if let Err(e) = serve_connection(stream, conn, &shared).await {
                tracing::debug!(device, %peer, error = %e, "sim ssh: connection ended");
            }
        });
    }
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    conn: Connection,
    shared: &Shared,
) -> Result<(), russh::Error> {
    let running = tokio::select! {
        () = shared.cancel.cancelled() => return Ok(()),
        r = russh::server::run_stream(Arc::clone(&shared.config), stream, conn) => r?,
    };
    let handle = running.handle();
    tokio::select! {
        () = shared.cancel.cancelled() => {
            let _ = handle.disconnect(Disconnect::ByApplication, "simulator stopping".into(), "en".into()).await;
            Ok(())
        }
        r = running => r,
    }
}

/// One channel's CLI.
struct Terminal {
    shell: Shell,
    line: Vec<u8>,
    pty: bool,
    /// The last byte ended a line with `\r`: a `\n` right after it is the same Enter.
    after_cr: bool,
}

/// One SSH connection to one device.
struct Connection {
    shared: Arc<Shared>,
    device: usize,
    terminals: HashMap<ChannelId, Terminal>,
}

/// Output as a terminal shows it: `\r\n` line ends with a PTY.
fn term_text(pty: bool, text: &str) -> String {
    if pty { text.replace('\n', "\r\n") } else { text.to_string() }
}

impl Connection {
    /// Handles the bytes typed on a shell channel; returns what to send back and whether the
    /// session ends.
    fn typed(&mut self, channel: ChannelId, data: &[u8]) -> Option<(Vec<u8>, bool)> {
        let fabric = Arc::clone(&self.shared.fabric);
        let t = self.terminals.get_mut(&channel)?;
        let mut reply = Vec::new();
        for &b in data {
            let after_cr = std::mem::replace(&mut t.after_cr, b == b'\r');
            match b {
                b'\n' if after_cr => {}
                b'\r' | b'\n' => {
                    let line = String::from_utf8_lossy(&std::mem::take(&mut t.line)).into_owned();
                    if t.pty {
                        reply.extend_from_slice(b"\r\n");
                    }
                    let r = t.shell.run(&fabric, &line);
                    reply.extend(term_text(t.pty, &r.output).into_bytes());
                    if r.quit {
                        return Some((reply, true));
                    }
                    reply.extend(t.shell.prompt().into_bytes());
                }
                0x7f | 0x08 => {
                    if t.line.pop().is_some() && t.pty {
                        reply.extend_from_slice(b"\x08 \x08");
                    }
                }
                // Ctrl-C drops the line being typed, as a device does.
                0x03 => {
                    t.line.clear();
                    reply.extend(term_text(t.pty, &format!("\n{}", t.shell.prompt())).into_bytes());
                }
                _ if t.line.len() >= MAX_LINE => return Some((reply, true)),
                _ => {
                    t.line.push(b);
                    if t.pty {
                        reply.push(b);
                    }
                }
            }
        }
        Some((reply, false))
    }
}

fn end_channel(session: &mut Session, channel: ChannelId, status: u32) -> Result<(), russh::Error> {
    session.exit_status_request(channel, status)?;
    session.eof(channel)?;
    session.close(channel)
}

impl russh::server::Handler for Connection {
    type Error = russh::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        if user == self.shared.user && password == self.shared.password {
            return Ok(Auth::Accept);
        }
        // Keep offering password: a client may try again, as with a device.
        Ok(Auth::Reject {
            proceed_with_methods: Some(MethodSet::from(&[MethodKind::Password][..])),
            partial_success: false,
        })
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _: &mut Session,
    ) -> Result<(), Self::Error> {
        let shell = Shell::new(&self.shared.fabric, self.device);
        self.terminals.insert(channel.id(), Terminal { shell, line: Vec::new(), pty: false, after_cr: false });
        // Dropping `reply` would refuse the channel.
        reply.accept().await;
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _: &str,
        _: u32,
        _: u32,
        _: u32,
        _: u32,
        _: &[(Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(t) = self.terminals.get_mut(&channel) {
            t.pty = true;
        }
        session.channel_success(channel)
    }

    async fn shell_request(&mut self, channel: ChannelId, session: &mut Session) -> Result<(), Self::Error> {
        let Some(t) = self.terminals.get(&channel) else { return session.channel_failure(channel) };
        session.channel_success(channel)?;
        let banner =
            format!("\nnetwarden simulated device {}\n\n{}", t.shell.prompt().trim_end_matches('#'), t.shell.prompt());
        session.data(channel, term_text(t.pty, &banner).into_bytes())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(t) = self.terminals.get_mut(&channel) else { return session.channel_failure(channel) };
        session.channel_success(channel)?;
        let r = t.shell.run(&self.shared.fabric, &String::from_utf8_lossy(data));
        let out = term_text(t.pty, &r.output).into_bytes();
        if r.ok {
            session.data(channel, out)?;
        } else {
            session.extended_data(channel, 1, out)?;
        }
        end_channel(session, channel, u32::from(!r.ok))
    }

    async fn data(&mut self, channel: ChannelId, data: &[u8], session: &mut Session) -> Result<(), Self::Error> {
        let Some((reply, quit)) = self.typed(channel, data) else { return Ok(()) };
        if !reply.is_empty() {
            session.data(channel, reply)?;
        }
        if quit {
            self.terminals.remove(&channel);
            end_channel(session, channel, 0)?;
        }
        Ok(())
    }

    async fn channel_close(&mut self, channel: ChannelId, _: &mut Session) -> Result<(), Self::Error> {
        self.terminals.remove(&channel);
        Ok(())
    }
}
