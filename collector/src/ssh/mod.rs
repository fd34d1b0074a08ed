//! SSH device access: the one session type every other crate uses to read from and write to a
//! device's CLI (through [`SshManager`]), platform profiles as data, trust-on-first-use host keys,
//! and the parsers for show commands SNMP has no answer for.
//!
//! How a session works: one SSH connection per device with one interactive PTY shell on it (real
//! network devices are driven through their shell, not through exec). After login the prompt is
//! learned and pinned, paging is turned off, and from then on every command is one line sent
//! after a prompt and its output is everything up to the next prompt. A profile
//! ([`profile::Profile`]) says what the prompts look like and which output lines are errors.
//!
//! Limits, each with its own error: connect timeout (TCP, SSH handshake and authentication
//! together), command timeout (until the next prompt), idle timeout (russh closes a connection
//! nothing was received on for that long; the registry drops idle sessions before that), output
//! size per command. A session that hit a limit mid-command is in an unknown state and is never
//! reused. The registry allows one session per device at a time: a job holds a
//! [`DeviceSession`] lease and every call through it reuses the same connection.

pub mod facts;
pub mod hostkey;
pub mod profile;
mod registry;
pub mod screen;
mod session;
pub mod store;

pub use hostkey::{HostKeyDecision, OfferedKey, TrustedKey};
pub use profile::{Profile, Profiles};
pub use registry::{DeviceSession, SshManager};
pub use session::{
    Applied, ApplyError, ApplyOptions, ApplyStage, CommandOutput, Exchange, PendingConfirm, Session, SshTarget,
};

use std::time::Duration;

/// Limits of every session; one set for the whole service.
#[derive(Debug, Clone)]
pub struct SshOptions {
    /// TCP connect, SSH handshake and authentication, together.
    pub connect_timeout: Duration,
    /// From sending a command to its prompt.
    pub command_timeout: Duration,
    /// A connection on which nothing was received for this long is closed.
    pub idle_timeout: Duration,
    /// Largest output of one command (and of the login banner); a larger one breaks the session.
    pub max_output_bytes: usize,
    /// How long a job waits for another job's session on the same device.
    pub lock_wait: Duration,
    /// Sessions in use at once, all devices together.
    pub max_sessions: usize,
}

impl Default for SshOptions {
    fn default() -> Self {
        SshOptions {
            connect_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
            max_output_bytes: 16 << 20,
            lock_wait: Duration::from_secs(120),
            max_sessions: 32,
        }
    }
}

/// A failed SSH operation on one device.
#[derive(Debug, thiserror::Error)]
#[error("{device}: {kind}")]
pub struct SshError {
    pub device: String,
    #[source]
    pub kind: SshErrorKind,
}

#[derive(Debug, thiserror::Error)]
pub enum SshErrorKind {
    #[error("no ssh credentials in the inventory")]
    NoCredentials,
    #[error("device is not stored in the inventory (its host key cannot be recorded)")]
    NotStored,
    #[error("no platform profile for platform {platform:?} / vendor {vendor:?} (profiles: {known})")]
    UnknownPlatform { platform: Option<String>, vendor: Option<String>, known: String },
    #[error("cannot resolve {host}: {reason}")]
    Resolve { host: String, reason: String },
    #[error("connect to {addr} timed out after {after:?}")]
    ConnectTimeout { addr: String, after: Duration },
    #[error("connect to {addr}: {source}")]
    Connect { addr: String, source: std::io::Error },
    #[error("ssh handshake with {addr} timed out after {after:?}")]
    HandshakeTimeout { addr: String, after: Duration },
    #[error(
        "host key changed: trusted {trusted}, offered {} ({}); refusing to connect until an admin re-trusts \
         the device's key",
        offered.fingerprint,
        offered.algorithm
    )]
    HostKeyChanged { trusted: String, offered: Box<OfferedKey> },
    #[error("authentication as {user:?} by {method} was rejected")]
    AuthRejected { user: String, method: &'static str },
    #[error("private key: {0}")]
    BadKey(String),
    #[error("{stage}: no prompt within {after:?}; last output: {tail:?}")]
    CommandTimeout { stage: String, after: Duration, tail: String },
    #[error("{stage}: output exceeds {limit} bytes")]
    OutputTooLarge { stage: String, limit: usize },
    #[error("{stage}: the device closed the session; last output: {tail:?}")]
    Closed { stage: String, tail: String },
    #[error("{stage}: the device refused the request")]
    Refused { stage: String },
    #[error("{command:?} rejected by the device: {message}")]
    Rejected { command: String, message: String },
    #[error("{0:?}: a command must be one line")]
    BadCommand(String),
    #[error("the session broke earlier ({0}) and cannot be used")]
    Broken(String),
    #[error("busy: another job held the device's session for {waited:?}")]
    Busy { waited: Duration },
    #[error("ssh: {0}")]
    Protocol(#[from] russh::Error),
    #[error("database: {0}")]
    Db(String),
}

impl SshError {
    pub fn new(device: impl Into<String>, kind: SshErrorKind) -> SshError {
        SshError { device: device.into(), kind }
    }

    /// Whether trying again later may succeed (a timeout, a refused or reset connection, a busy
    /// device); a changed host key, rejected credentials or a missing profile need a human.
    pub fn is_transient(&self) -> bool {
        use SshErrorKind::*;
        match &self.kind {
            ConnectTimeout { .. }
            | Connect { .. }
            | HandshakeTimeout { .. }
            | CommandTimeout { .. }
            | Closed { .. } => true,
            Busy { .. } | Resolve { .. } | Db(_) | Broken(_) => true,
            Protocol(e) => matches!(e, russh::Error::IO(_) | russh::Error::Disconnect | russh::Error::SendError),
            NoCredentials
            | NotStored
            | UnknownPlatform { .. }
            | HostKeyChanged { .. }
            | AuthRejected { .. }
            | BadKey(_) => false,
            OutputTooLarge { .. } | Refused { .. } | Rejected { .. } | BadCommand(_) => false,
        }
    }

    /// A short stable name for logs, metrics and the API (`timeout`, `host_key_changed`, …).
    pub fn code(&self) -> &'static str {
        use SshErrorKind::*;
        match &self.kind {
            NoCredentials | NotStored | UnknownPlatform { .. } => "not_configured",
            Resolve { .. } | Connect { .. } => "network",
            ConnectTimeout { .. } | HandshakeTimeout { .. } | CommandTimeout { .. } => "timeout",
            HostKeyChanged { .. } => "host_key_changed",
            AuthRejected { .. } | BadKey(_) => "authentication",
            OutputTooLarge { .. } => "output_too_large",
            Closed { .. } | Broken(_) | Protocol(_) => "session",
            Refused { .. } | Rejected { .. } | BadCommand(_) => "device",
            Busy { .. } => "busy",
            Db(_) => "database",
        }
    }
}
