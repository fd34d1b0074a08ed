//! One SSH session to one device: connect (bounded), verify the host key, authenticate, open a
//! PTY shell, learn the prompt, turn paging off, then one command at a time.

use super::hostkey::{self, HostKeyDecision, OfferedKey, TrustedKey};
use super::profile::{self, Profile, Profiles};
use super::screen::{self, Prompt, PromptMatcher};
use super::{SshError, SshErrorKind, SshOptions};
use crate::inventory::{Device, SshAuth};
use russh::client::{self, AuthResult, KeyboardInteractiveAuthResponse, Msg};
use russh::keys::{PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{Channel, ChannelMsg, Disconnect, MethodKind};
use serde::Serialize;
use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Everything needed to reach one device.
#[derive(Clone)]
pub struct SshTarget {
    pub device: String,
    pub device_id: Option<i64>,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub auth: SshAuth,
    pub profile: Arc<Profile>,
}

impl std::fmt::Debug for SshTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = match self.auth {
            SshAuth::Password(_) => "password",
            SshAuth::Key { .. } => "key",
        };
        write!(
            f,
            "SshTarget {{ device: {:?}, host: {:?}, port: {}, user: {:?}, auth: {auth} <redacted>, profile: {:?} }}",
            self.device, self.host, self.port, self.user, self.profile.name
        )
    }
}

impl SshTarget {
    pub fn from_device(device: &Device, profiles: &Profiles) -> Result<SshTarget, SshError> {
        let err = |kind| SshError::new(&device.name, kind);
        let ssh = device.ssh.as_ref().ok_or_else(|| err(SshErrorKind::NoCredentials))?;
        let profile = profiles.for_device(device.platform.as_deref(), device.vendor.as_deref()).ok_or_else(|| {
            err(SshErrorKind::UnknownPlatform {
                platform: device.platform.clone(),
                vendor: device.vendor.clone(),
                known: profiles.names().join(", "),
            })
        })?;
        Ok(SshTarget {
            device: device.name.clone(),
            device_id: device.id,
            host: device.host.trim_start_matches('[').trim_end_matches(']').to_owned(),
            port: ssh.port,
            user: ssh.user.clone(),
            auth: ssh.auth.clone(),
            profile,
        })
    }

    fn addr_text(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The output of one show command; `error` is the line that says the device rejected it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandOutput {
    pub command: String,
    pub output: String,
    pub error: Option<String>,
}

/// One line sent in a configuration change and what the device answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exchange {
    pub command: String,
    pub output: String,
}

#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// Commit so that the device rolls back by itself unless [`Session::confirm`] runs within
    /// this time (Junos `commit confirmed`, EOS session commit timer). Refused on platforms
    /// without it.
    pub confirm_within: Option<Duration>,
    /// Save the running configuration afterwards (e.g. `write memory`).
    pub save: bool,
}

/// A confirmed commit waiting for its confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingConfirm {
    pub session_name: String,
    pub commands: Vec<String>,
    /// The device rolls back after this (device clock, approximately).
    pub rolls_back_at: chrono::DateTime<chrono::Utc>,
}

/// A configuration change the device accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Applied {
    pub transcript: Vec<Exchange>,
    pub pending_confirm: Option<PendingConfirm>,
}

/// Where a configuration change failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum ApplyStage {
    Enter,
    /// `number` counts from 1.
    Line {
        number: usize,
        line: String,
    },
    Commit,
    Leave,
    Save,
    Confirm,
}

impl std::fmt::Display for ApplyStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApplyStage::Enter => f.write_str("entering configuration mode"),
            ApplyStage::Line { number, line } => write!(f, "line {number} {line:?}"),
            ApplyStage::Commit => f.write_str("commit"),
            ApplyStage::Leave => f.write_str("leaving configuration mode"),
            ApplyStage::Save => f.write_str("save"),
            ApplyStage::Confirm => f.write_str("confirming the commit"),
        }
    }
}

/// A configuration change that did not succeed. A rejected line is always an error, never an
/// `Ok` with a warning inside.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(
        "{device}: {stage} rejected: {message} ({lines_in_effect} earlier line(s) in effect{})",
        if *.aborted { ", configuration mode left" } else { ", leaving configuration mode failed too" }
    )]
    Rejected {
        device: String,
        stage: ApplyStage,
        /// The device's error line.
        message: String,
        transcript: Vec<Exchange>,
        /// Lines the device applied before the rejected one and that stay applied: on platforms
        /// that apply each line at once (FRR, IOS); 0 where changes wait for a commit (EOS, Junos).
        lines_in_effect: usize,
        /// Whether the abort commands ran and the session is back in exec mode.
        aborted: bool,
    },
    #[error("{device}: {what} is not supported by profile {profile}")]
    Unsupported { device: String, profile: String, what: &'static str },
    #[error(transparent)]
    Session(#[from] SshError),
}

/// Accepts the trusted key, or any key on first use, and remembers what was offered.
struct Verifier {
    trusted: Option<TrustedKey>,
    offered: Arc<Mutex<Option<OfferedKey>>>,
}

impl client::Handler for Verifier {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        // russh verified the key-exchange signature before this call; we only decide trust.
        let offered = OfferedKey::from_key(&key.public_key());
        let decision = hostkey::decide(self.trusted.as_ref(), &offered);
        *self.offered.lock().unwrap_or_else(|e| e.into_inner()) = Some(offered);
        Ok(decision != HostKeyDecision::Changed)
    }
}

static CHANGE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A logged-in PTY shell on one device. Use it through [`super::SshManager`] (one session per
/// device at a time); [`Session::open`] is public for one-off tools and tests.
pub struct Session {
    device: String,
    profile: Arc<Profile>,
    opts: SshOptions,
    handle: client::Handle<Verifier>,
    channel: Channel<Msg>,
    matcher: PromptMatcher,
    prompt: Prompt,
    host_key: OfferedKey,
    broken: Option<String>,
    last_used: Instant,
    commands_sent: u64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("device", &self.device)
            .field("profile", &self.profile.name)
            .field("prompt", &self.prompt.line)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Connects and logs in. With `trusted = None` any host key is accepted (first use: the
    /// caller records [`Session::host_key`]); otherwise only that key.
    pub async fn open(target: &SshTarget, trusted: Option<TrustedKey>, opts: &SshOptions) -> Result<Session, SshError> {
        let err = |kind| SshError::new(&target.device, kind);
        let addr = target.addr_text();
        let deadline = Instant::now() + opts.connect_timeout;
        let after = opts.connect_timeout;

        let addrs: Vec<SocketAddr> = match target.host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, target.port)],
            Err(_) => {
                match tokio::time::timeout_at(deadline, tokio::net::lookup_host((target.host.as_str(), target.port)))
                    .await
                {
                    Err(_) => return Err(err(SshErrorKind::ConnectTimeout { addr, after })),
                    Ok(Err(e)) => {
                        return Err(err(SshErrorKind::Resolve { host: target.host.clone(), reason: e.to_string() }));
                    }
                    Ok(Ok(a)) => a.collect(),
                }
            }
        };
        // russh's connect has no timeout of its own (a host that drops SYNs hangs for minutes).
        let stream = match tokio::time::timeout_at(deadline, tokio::net::TcpStream::connect(&addrs[..])).await {
            Err(_) => return Err(err(SshErrorKind::ConnectTimeout { addr, after })),
            Ok(Err(source)) => return Err(err(SshErrorKind::Connect { addr, source })),
            Ok(Ok(s)) => s,
        };
        let _ = stream.set_nodelay(true);

        let config = Arc::new(client::Config {
            // Also ends the session task if the handshake below is abandoned by the timeout.
            inactivity_timeout: Some(opts.idle_timeout.max(opts.command_timeout)),
            keepalive_interval: None,
            nodelay: true,
            preferred: russh::Preferred {
                key: Cow::Borrowed(hostkey::HOST_KEY_ALGORITHMS),
                ..russh::Preferred::DEFAULT
            },
            ..Default::default()
        });
        let offered = Arc::new(Mutex::new(None));
        let verifier = Verifier { trusted: trusted.clone(), offered: offered.clone() };
        let connected = tokio::time::timeout_at(deadline, client::connect_stream(config, stream, verifier)).await;
        let offered_key = offered.lock().unwrap_or_else(|e| e.into_inner()).take();
        let mut handle = match connected {
            Err(_) => return Err(err(SshErrorKind::HandshakeTimeout { addr, after })),
            Ok(Err(russh::Error::UnknownKey)) => {
                let offered = Box::new(offered_key.expect("the key was checked"));
                return Err(err(SshErrorKind::HostKeyChanged {
                    trusted: trusted.map(|t| t.fingerprint).unwrap_or_default(),
                    offered,
                }));
            }
            Ok(Err(e)) => return Err(err(SshErrorKind::Protocol(e))),
            Ok(Ok(h)) => h,
        };
        let host_key = offered_key.expect("a completed handshake checked the host key");

        match tokio::time::timeout_at(deadline, authenticate(&mut handle, &target.user, &target.auth)).await {
            Err(_) => return Err(err(SshErrorKind::HandshakeTimeout { addr, after })),
            Ok(Err(kind)) => return Err(err(kind)),
            Ok(Ok(())) => {}
        }
        let channel = match tokio::time::timeout_at(deadline, handle.channel_open_session()).await {
            Err(_) => return Err(err(SshErrorKind::HandshakeTimeout { addr, after })),
            Ok(r) => r.map_err(|e| err(e.into()))?,
        };
        // Wide terminal: narrow PTYs make the remote line editor wrap and redraw long echoes.
        channel.request_pty(false, "vt100", 511, 100, 0, 0, &[]).await.map_err(|e| err(e.into()))?;
        channel.request_shell(true).await.map_err(|e| err(e.into()))?;

        let profile = target.profile.clone();
        let matcher = PromptMatcher::new(&profile);
        let mut session = Session {
            device: target.device.clone(),
            profile,
            opts: opts.clone(),
            handle,
            channel,
            matcher,
            prompt: Prompt { line: String::new(), host: String::new(), config_mode: false },
            host_key,
            broken: None,
            last_used: Instant::now(),
            commands_sent: 0,
        };
        let login = session.read_until_prompt("login", opts.command_timeout).await;
        let prompt = match login {
            Ok((_, prompt)) => prompt,
            Err(kind) => {
                session.close().await;
                return Err(err(kind));
            }
        };
        session.matcher.pin(&prompt.host);
        session.prompt = prompt;
        for command in session.profile.paging_off.clone() {
            let output = session.line(&command).await?;
            if let Some(message) = session.profile.find_error(&output) {
                let message = message.to_owned();
                session.close().await;
                return Err(err(SshErrorKind::Rejected { command, message }));
            }
        }
        tracing::debug!(device = %session.device, prompt = %session.prompt.line, "ssh session open");
        Ok(session)
    }

    pub fn device(&self) -> &str {
        &self.device
    }

    pub fn profile(&self) -> &Arc<Profile> {
        &self.profile
    }

    /// The key the device presented in this session's handshake.
    pub fn host_key(&self) -> &OfferedKey {
        &self.host_key
    }

    /// The last prompt seen, e.g. `leaf1#`.
    pub fn prompt(&self) -> &str {
        &self.prompt.line
    }

    /// Commands sent since login (paging-off included).
    pub fn commands_sent(&self) -> u64 {
        self.commands_sent
    }

    /// Whether the session can take another command: not broken, connected, and not idle so long
    /// that the idle timeout is about to close it.
    pub fn is_usable(&self) -> bool {
        self.broken.is_none()
            && !self.handle.is_closed()
            && self.last_used.elapsed() < self.opts.idle_timeout.mul_f32(0.75)
    }

    /// Runs show commands one after another. A command the device rejects has `error` set; the
    /// others still run. A timeout, a closed session or an oversized output is an `Err`.
    pub async fn run_show<S: AsRef<str>>(&mut self, commands: &[S]) -> Result<Vec<CommandOutput>, SshError> {
        self.ensure_exec_mode().await?;
        let mut outputs = Vec::with_capacity(commands.len());
        for command in commands {
            let command = command.as_ref();
            let output = self.line(command).await?;
            let error = self.profile.find_error(&output).map(str::to_owned);
            outputs.push(CommandOutput { command: command.to_owned(), output, error });
        }
        Ok(outputs)
    }

    /// The running configuration as the device prints it (not yet normalised).
    pub async fn running_config(&mut self) -> Result<String, SshError> {
        let command = self.profile.show_running_config.clone();
        let mut out = self.run_show(&[&command]).await?;
        let out = out.pop().expect("one command, one output");
        match out.error {
            Some(message) => Err(SshError::new(&self.device, SshErrorKind::Rejected { command, message })),
            None => Ok(out.output),
        }
    }

    /// Enters configuration mode, sends `lines` one at a time, commits (where the platform has a
    /// commit) and leaves. The first line the device rejects stops the change: the profile's
    /// abort commands run and the result is [`ApplyError::Rejected`].
    pub async fn apply_config<S: AsRef<str>>(
        &mut self,
        lines: &[S],
        opts: &ApplyOptions,
    ) -> Result<Applied, ApplyError> {
        let profile = self.profile.clone();
        let (enter, commit) = match (opts.confirm_within, &profile.confirmed) {
            (None, _) => (&profile.config.enter, &profile.config.commit),
            (Some(_), Some(c)) => (&c.enter, &c.commit),
            (Some(_), None) => {
                return Err(ApplyError::Unsupported {
                    device: self.device.clone(),
                    profile: profile.name.clone(),
                    what: "a confirmed commit",
                });
            }
        };
        let confirm_within = opts.confirm_within.unwrap_or(Duration::from_secs(600));
        let session_name =
            format!("nw-{}-{}", chrono::Utc::now().timestamp(), CHANGE_COUNTER.fetch_add(1, Ordering::Relaxed));
        let expand = |c: &String| profile::expand(c, &session_name, confirm_within);
        self.ensure_exec_mode().await?;
        let mut transcript = Vec::new();

        for command in enter.iter().map(expand) {
            self.step(&command, ApplyStage::Enter, &mut transcript, 0).await?;
        }
        if !self.prompt.config_mode {
            let message = format!("prompt {:?} is not configuration mode", self.prompt.line);
            let aborted = self.abort(&mut transcript).await;
            return Err(self.rejected(ApplyStage::Enter, message, transcript, 0, aborted));
        }
        let mut sent = 0;
        for (i, line) in lines.iter().enumerate() {
            let line = line.as_ref();
            if line.trim().is_empty() {
                continue;
            }
            let stage = ApplyStage::Line { number: i + 1, line: line.to_owned() };
            let in_effect = if profile.config.commit.is_empty() { sent } else { 0 };
            self.step(line, stage, &mut transcript, in_effect).await?;
            sent += 1;
        }
        for command in commit.iter().map(expand) {
            self.step(&command, ApplyStage::Commit, &mut transcript, 0).await?;
        }
        if self.prompt.config_mode {
            for command in profile.config.leave.clone() {
                self.step(&command, ApplyStage::Leave, &mut transcript, sent).await?;
            }
        }
        if opts.save {
            for command in profile.save.clone() {
                self.step(&command, ApplyStage::Save, &mut transcript, sent).await?;
            }
        }
        let pending_confirm = match (opts.confirm_within, &profile.confirmed) {
            (Some(within), Some(c)) => Some(PendingConfirm {
                session_name: session_name.clone(),
                commands: c.confirm.iter().map(expand).collect(),
                rolls_back_at: chrono::Utc::now() + within,
            }),
            _ => None,
        };
        tracing::info!(device = %self.device, lines = sent, confirmed = pending_confirm.is_some(), "configuration applied");
        Ok(Applied { transcript, pending_confirm })
    }

    /// Confirms a confirmed commit before the device rolls it back.
    pub async fn confirm(&mut self, pending: &PendingConfirm) -> Result<Vec<Exchange>, ApplyError> {
        self.ensure_exec_mode().await?;
        let mut transcript = Vec::new();
        for command in &pending.commands {
            self.step(command, ApplyStage::Confirm, &mut transcript, 0).await?;
        }
        self.ensure_exec_mode().await?;
        Ok(transcript)
    }

    /// Says goodbye; the connection closes shortly after. A session that broke mid-command
    /// first gets Ctrl-C, so a command still running on the device (a `ping` that never ends)
    /// is interrupted rather than left behind.
    pub async fn close(self) {
        if self.broken.is_some() {
            let _ = self.channel.data_bytes(&b"\x03"[..]).await;
        }
        let _ = self.channel.close().await;
        let _ = self.handle.disconnect(Disconnect::ByApplication, "", "en").await;
    }

    /// Sends one configuration-mode command; a rejection aborts the change.
    async fn step(
        &mut self,
        command: &str,
        stage: ApplyStage,
        transcript: &mut Vec<Exchange>,
        lines_in_effect: usize,
    ) -> Result<(), ApplyError> {
        let output = self.line(command).await?;
        let error = self.profile.find_error(&output).map(str::to_owned);
        transcript.push(Exchange { command: command.to_owned(), output });
        if let Some(message) = error {
            let aborted = self.abort(transcript).await;
            return Err(self.rejected(stage, message, std::mem::take(transcript), lines_in_effect, aborted));
        }
        Ok(())
    }

    fn rejected(
        &self,
        stage: ApplyStage,
        message: String,
        transcript: Vec<Exchange>,
        lines_in_effect: usize,
        aborted: bool,
    ) -> ApplyError {
        tracing::warn!(device = %self.device, %stage, %message, "configuration change rejected");
        ApplyError::Rejected { device: self.device.clone(), stage, message, transcript, lines_in_effect, aborted }
    }

    /// Runs the profile's abort commands; true if the session is back in exec mode.
    async fn abort(&mut self, transcript: &mut Vec<Exchange>) -> bool {
        if !self.prompt.config_mode {
            return true;
        }
        for command in self.profile.config.abort.clone() {
            match self.line(&command).await {
                Ok(output) => transcript.push(Exchange { command, output }),
                Err(_) => return false,
            }
            if !self.prompt.config_mode {
                break;
            }
        }
        !self.prompt.config_mode
    }

    async fn ensure_exec_mode(&mut self) -> Result<(), SshError> {
        if !self.prompt.config_mode {
            return Ok(());
        }
        for command in self.profile.config.leave.clone() {
            self.line(&command).await?;
        }
        if self.prompt.config_mode {
            let message = format!("still in configuration mode ({:?})", self.prompt.line);
            self.broken = Some(message.clone());
            return Err(SshError::new(&self.device, SshErrorKind::Broken(message)));
        }
        Ok(())
    }

    /// Sends one line (only ever after a prompt) and returns its output up to the next prompt.
    async fn line(&mut self, command: &str) -> Result<String, SshError> {
        let err = |kind| SshError::new(&self.device, kind);
        if let Some(why) = &self.broken {
            return Err(err(SshErrorKind::Broken(why.clone())));
        }
        if command.contains(['\n', '\r']) {
            return Err(err(SshErrorKind::BadCommand(command.to_owned())));
        }
        let bytes = format!("{command}{}", self.profile.newline).into_bytes();
        if let Err(e) = self.channel.data_bytes(bytes).await {
            self.broken = Some(e.to_string());
            return Err(err(SshErrorKind::Closed { stage: command.to_owned(), tail: String::new() }));
        }
        self.commands_sent += 1;
        match self.read_until_prompt(command, self.opts.command_timeout).await {
            Ok((before, prompt)) => {
                self.prompt = prompt;
                self.last_used = Instant::now();
                Ok(screen::command_output(&before, command, &self.profile))
            }
            Err(kind) => {
                // Output may still be arriving: the session is out of step with the device.
                self.broken = Some(kind.to_string());
                Err(SshError::new(&self.device, kind))
            }
        }
    }

    async fn read_until_prompt(&mut self, stage: &str, limit: Duration) -> Result<(String, Prompt), SshErrorKind> {
        let deadline = Instant::now() + limit;
        let mut raw: Vec<u8> = Vec::new();
        loop {
            if let Some(found) = self.find_prompt(&raw) {
                return Ok(found);
            }
            let msg = match tokio::time::timeout_at(deadline, self.channel.wait()).await {
                Err(_) => {
                    return Err(SshErrorKind::CommandTimeout {
                        stage: stage.to_owned(),
                        after: limit,
                        tail: tail(&raw),
                    });
                }
                Ok(None) => return Err(SshErrorKind::Closed { stage: stage.to_owned(), tail: tail(&raw) }),
                Ok(Some(msg)) => msg,
            };
            match msg {
                // With a PTY stderr is merged by the device; a stray extended-data is output too.
                ChannelMsg::Data { data } | ChannelMsg::ExtendedData { data, .. } => {
                    raw.extend_from_slice(&data);
                    if raw.len() > self.opts.max_output_bytes {
                        return Err(SshErrorKind::OutputTooLarge {
                            stage: stage.to_owned(),
                            limit: self.opts.max_output_bytes,
                        });
                    }
                }
                ChannelMsg::Failure => return Err(SshErrorKind::Refused { stage: stage.to_owned() }),
                _ => {}
            }
        }
    }

    fn find_prompt(&self, raw: &[u8]) -> Option<(String, Prompt)> {
        let start = raw.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let mut last = &raw[start..];
        if last.is_empty() || last.len() > 4096 {
            return None;
        }
        // Text after a carriage return overwrote the start of the line on a terminal.
        if let Some(cr) = last.iter().rposition(|&b| b == b'\r')
            && cr + 1 < last.len()
        {
            last = &last[cr + 1..];
        }
        let line = screen::clean(last);
        let (_, prompt) = self.matcher.split(&line)?;
        Some((screen::clean(&raw[..start]), prompt))
    }
}

fn tail(raw: &[u8]) -> String {
    let text = screen::clean(&raw[raw.len().saturating_sub(400)..]);
    let chars: Vec<char> = text.chars().collect();
    chars[chars.len().saturating_sub(200)..].iter().collect()
}

async fn authenticate(handle: &mut client::Handle<Verifier>, user: &str, auth: &SshAuth) -> Result<(), SshErrorKind> {
    match auth {
        SshAuth::Password(password) => {
            let result = handle.authenticate_password(user, password).await?;
            if result.success() {
                return Ok(());
            }
            // Many devices (PAM, AAA) offer only keyboard-interactive for passwords.
            if let AuthResult::Failure { remaining_methods, .. } = &result
                && remaining_methods.contains(&MethodKind::KeyboardInteractive)
            {
                let mut response = handle.authenticate_keyboard_interactive_start(user, None).await?;
                for _ in 0..5 {
                    match response {
                        KeyboardInteractiveAuthResponse::Success => return Ok(()),
                        KeyboardInteractiveAuthResponse::Failure { .. } => break,
                        KeyboardInteractiveAuthResponse::InfoRequest { ref prompts, .. } => {
                            let answers = prompts
                                .iter()
                                .map(|p| if p.echo { user.to_owned() } else { password.clone() })
                                .collect();
                            response = handle.authenticate_keyboard_interactive_respond(answers).await?;
                        }
                    }
                }
            }
            Err(SshErrorKind::AuthRejected { user: user.to_owned(), method: "password" })
        }
        SshAuth::Key { private_key, passphrase } => {
            let key = russh::keys::decode_secret_key(private_key, passphrase.as_deref())
                .map_err(|e| SshErrorKind::BadKey(e.to_string()))?;
            let hash = if key.algorithm().is_rsa() { handle.best_supported_rsa_hash().await?.flatten() } else { None };
            let result = handle.authenticate_publickey(user, PrivateKeyWithHashAlg::new(Arc::new(key), hash)).await?;
            if result.success() {
                Ok(())
            } else {
                Err(SshErrorKind::AuthRejected { user: user.to_owned(), method: "public key" })
            }
        }
    }
}
