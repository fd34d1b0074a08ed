//! The SNMP client: one device, one request in flight, timeouts and retries on fresh sockets.

use super::oid::EncodedOids;
use super::{Oid, Value};
use crate::inventory::{AuthProtocol, PrivProtocol, SnmpCredentials, SnmpV3Credentials};
use snmp2::AsyncSession;
use snmp2::v3;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Per-request timeout.
    pub timeout: Duration,
    /// Extra attempts after the first, each on a fresh socket.
    pub retries: u32,
    /// GETBULK max-repetitions for single-subtree walks.
    pub max_repetitions: u32,
    /// Upper bound on varbinds asked for in one multi-column GETBULK (net-snmp answers at most
    /// 100 per response; asking for more only makes agents that refuse to truncate say tooBig).
    pub max_varbinds_per_request: u32,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: Duration::from_secs(2),
            retries: 2,
            max_repetitions: 25,
            max_varbinds_per_request: 100,
        }
    }
}

/// Counters of what a client sent and received, for poll records and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalkStats {
    pub requests: u64,
    pub varbinds: u64,
    pub retries: u64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SnmpError {
    #[error(
        "{target}: timeout: no response after {attempts} attempt(s) of {timeout:?} (wrong community or privacy password, ACL, or device down)"
    )]
    Timeout { target: String, attempts: u32, timeout: Duration },
    #[error("{target}: authentication failed for user {user:?}: unknown user or wrong authentication password")]
    Auth { target: String, user: String },
    #[error("{target}: SNMPv3 security error: {detail}")]
    Security { target: String, detail: String },
    #[error("{target}: agent answered {status} (error-status {code}) at varbind {index}")]
    Agent { target: String, code: u32, status: &'static str, index: u32 },
    #[error("{target}: no such object {oid}")]
    NoSuchObject { target: String, oid: Oid },
    #[error("{target}: malformed response: {detail}")]
    Malformed { target: String, detail: String },
    #[error("{target}: OID not increasing: {oid} after {previous}")]
    NotIncreasing { target: String, oid: Oid, previous: Oid },
    #[error("{target}: {detail}")]
    Network { target: String, detail: String },
}

impl SnmpError {
    /// A short, stable word for records, metrics and the API.
    pub fn kind(&self) -> &'static str {
        match self {
            SnmpError::Timeout { .. } => "timeout",
            SnmpError::Auth { .. } => "authentication",
            SnmpError::Security { .. } => "security",
            SnmpError::Agent { .. } => "agent-error",
            SnmpError::NoSuchObject { .. } => "no-such-object",
            SnmpError::Malformed { .. } => "malformed",
            SnmpError::NotIncreasing { .. } => "not-increasing",
            SnmpError::Network { .. } => "network",
        }
    }

    /// Whether the device may answer a later poll (as opposed to a configuration problem).
    pub fn is_transient(&self) -> bool {
        matches!(self, SnmpError::Timeout { .. } | SnmpError::Network { .. } | SnmpError::Malformed { .. })
    }
}

fn error_status_name(code: u32) -> &'static str {
    match code {
        1 => "tooBig",
        2 => "noSuchName",
        3 => "badValue",
        4 => "readOnly",
        5 => "genErr",
        6 => "noAccess",
        7 => "wrongType",
        8 => "wrongLength",
        9 => "wrongEncoding",
        10 => "wrongValue",
        11 => "noCreation",
        12 => "inconsistentValue",
        13 => "resourceUnavailable",
        14 => "commitFailed",
        15 => "undoFailed",
        16 => "authorizationError",
        17 => "notWritable",
        18 => "inconsistentName",
        _ => "unknown error",
    }
}

enum Request<'a> {
    Get(&'a EncodedOids),
    Bulk { oids: &'a EncodedOids, max_repetitions: u32 },
}

/// A table index: the arcs after a column's OID. Inline up to four arcs (ifIndex, an IPv4 address),
/// so a walked cell costs no allocation of its own.
pub type Index = smallvec::SmallVec<[u32; 4]>;

/// What [`SnmpClient::walk_columns`] returns: per column, `(index, value)` in walk order.
pub type WalkedColumns = Vec<Vec<(Index, Value)>>;

/// What one attempt produced, before retry policy is applied.
enum Attempt {
    /// The response's varbinds went to the sink; this many.
    Done(u64),
    AgentError {
        code: u32,
        index: u32,
    },
    Failed(snmp2::Error),
    TimedOut,
}

/// A client for one device. Not shareable: one request in flight at a time, like a real poller
/// session; concurrency comes from many clients.
pub struct SnmpClient {
    target: String,
    creds: SnmpCredentials,
    opts: ClientOptions,
    session: Option<AsyncSession>,
    /// v3 security with keys already localized to the agent's engine ID: new sessions skip
    /// discovery and the 2.5 ms of key localization.
    v3_template: Option<v3::Security>,
    next_req_id: i32,
    stats: WalkStats,
}

impl SnmpClient {
    pub fn new(target: impl Into<String>, creds: SnmpCredentials, opts: ClientOptions) -> SnmpClient {
        SnmpClient {
            target: target.into(),
            creds,
            opts,
            session: None,
            v3_template: None,
            next_req_id: rand::random_range(1..i32::MAX / 2),
            stats: WalkStats::default(),
        }
    }

    pub fn target(&self) -> &str {
        &self.target
    }

    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    pub fn stats(&self) -> WalkStats {
        self.stats
    }

    pub fn reset_stats(&mut self) {
        self.stats = WalkStats::default();
    }

    /// Drops the socket (kept otherwise between requests of one poll).
    pub fn close(&mut self) {
        self.session = None;
    }

    /// GET of scalars or instances; exceptions (noSuchObject...) come back as values.
    pub async fn get(&mut self, oids: &[Oid]) -> Result<Vec<(Oid, Value)>, SnmpError> {
        let mut encoded = EncodedOids::default();
        for o in oids {
            encoded.push(o.arcs());
        }
        let mut vbs = Vec::with_capacity(oids.len());
        self.request(Request::Get(&encoded), |o, v| {
            vbs.push((Oid::from_snmp2(o).unwrap_or_default(), Value::from_snmp2(&v)));
        })
        .await?;
        if vbs.len() != oids.len() {
            return Err(self.malformed(format!("asked for {} varbinds, decoded {}", oids.len(), vbs.len())));
        }
        Ok(vbs)
    }

    /// Walks one subtree with GETBULK, as `snmpbulkwalk` does.
    pub async fn walk(&mut self, root: &Oid) -> Result<Vec<(Oid, Value)>, SnmpError> {
        let reps = self.opts.max_repetitions;
        let mut cols = self.walk_columns_with(std::slice::from_ref(root), reps).await?;
        let col = cols.pop().unwrap_or_default();
        Ok(col.into_iter().map(|(idx, v)| (root.child(&idx), v)).collect())
    }

    /// Walks several table columns at once: each GETBULK carries one varbind per column still
    /// open, so a table of C columns and R rows costs about C*R/limit requests instead of one
    /// subtree walk per column. Returns, per column, `(index arcs, value)` in order.
    pub async fn walk_columns(&mut self, columns: &[Oid]) -> Result<WalkedColumns, SnmpError> {
        self.walk_columns_with(columns, self.opts.max_repetitions).await
    }

    async fn walk_columns_with(&mut self, columns: &[Oid], max_repetitions: u32) -> Result<WalkedColumns, SnmpError> {
        let n = columns.len();
        // Each column's last OID, overwritten in place (its allocation is kept across requests).
        let mut cursors: Vec<Vec<u32>> = columns.iter().map(|c| c.arcs().to_vec()).collect();
        let mut done = vec![false; n];
        let mut out: WalkedColumns = vec![Vec::new(); n];
        let mut reps_cap = max_repetitions.max(1);
        let mut active: Vec<usize> = (0..n).collect();
        let mut request_oids = EncodedOids::default();
        // The OID of the varbind being looked at, decoded into one reused buffer.
        let mut arcs: Vec<u32> = Vec::new();
        while !active.is_empty() {
            let k = active.len() as u32;
            let reps = (self.opts.max_varbinds_per_request / k).clamp(1, reps_cap);
            request_oids.clear();
            for &c in &active {
                request_oids.push(&cursors[c]);
            }
            // Set by the first varbind that does not follow its column's cursor: (oid, previous).
            let mut not_increasing: Option<(Vec<u32>, Vec<u32>)> = None;
            let mut pos = 0usize;
            let sink = |oid: &snmp2::Oid<'_>, val: snmp2::Value<'_>| {
                let c = active[pos % active.len()];
                pos += 1;
                if not_increasing.is_some() || done[c] {
                    return;
                }
                // An OID with an arc beyond u32 is under no column (as an empty OID would be).
                Oid::arcs_from_snmp2(oid, &mut arcs);
                let Some(index) = arcs.strip_prefix(columns[c].arcs()).filter(|i| !i.is_empty()) else {
                    done[c] = true;
                    return;
                };
                if matches!(val, snmp2::Value::EndOfMibView) {
                    done[c] = true;
                    return;
                }
                if arcs.as_slice() <= cursors[c].as_slice() {
                    not_increasing = Some((arcs.clone(), cursors[c].clone()));
                    return;
                }
                let index = Index::from_slice(index);
                cursors[c].clear();
                cursors[c].extend_from_slice(&arcs);
                out[c].push((index, Value::from_snmp2(&val)));
            };
            let got = match self.request(Request::Bulk { oids: &request_oids, max_repetitions: reps }, sink).await {
                Ok(n) => n,
                // tooBig: ask for fewer rows per request rather than failing the walk.
                Err(SnmpError::Agent { code: 1, .. }) if reps > 1 => {
                    reps_cap = (reps / 2).max(1);
                    continue;
                }
                Err(e) => return Err(e),
            };
            if got == 0 {
                return Err(
                    self.malformed("empty varbind list in GETBULK response (undecodable value or broken agent)".into())
                );
            }
            if let Some((oid, previous)) = not_increasing {
                return Err(SnmpError::NotIncreasing {
                    target: self.target.clone(),
                    oid: Oid(oid),
                    previous: Oid(previous),
                });
            }
            active.retain(|&c| !done[c]);
        }
        Ok(out)
    }

    fn malformed(&self, detail: String) -> SnmpError {
        SnmpError::Malformed { target: self.target.clone(), detail }
    }

    /// Sends one request (with retries) and hands every varbind of the response that counts to
    /// `sink`, in order, straight from the receive buffer; returns how many there were.
    async fn request<F>(&mut self, req: Request<'_>, mut sink: F) -> Result<u64, SnmpError>
    where
        F: FnMut(&snmp2::Oid<'_>, snmp2::Value<'_>),
    {
        let oids: Vec<snmp2::Oid<'_>> = match &req {
            Request::Get(o) | Request::Bulk { oids: o, .. } => o.snmp2_oids(),
        };
        let refs: Vec<&snmp2::Oid<'_>> = oids.iter().collect();
        let mut attempts: u32 = 0;
        let mut auth_updates = 0;
        loop {
            if self.session.is_none() {
                self.session = Some(self.open().await?);
            }
            attempts += 1;
            self.stats.requests += 1;
            let attempt = {
                let sess = self.session.as_mut().expect("session opened above");
                let fut = async {
                    let pdu = match &req {
                        Request::Get(_) => sess.get_many(&refs).await,
                        Request::Bulk { max_repetitions, .. } => sess.getbulk(&refs, 0, *max_repetitions).await,
                    };
                    match pdu {
                        Ok(pdu) if pdu.error_status != 0 => {
                            Attempt::AgentError { code: pdu.error_status, index: pdu.error_index }
                        }
                        Ok(pdu) => {
                            let mut n = 0u64;
                            for (o, v) in pdu.varbinds {
                                n += 1;
                                sink(&o, v);
                            }
                            Attempt::Done(n)
                        }
                        Err(e) => Attempt::Failed(e),
                    }
                };
                match tokio::time::timeout(self.opts.timeout, fut).await {
                    Ok(a) => a,
                    Err(_) => Attempt::TimedOut,
                }
            };
            let retry_allowed = attempts <= self.opts.retries;
            match attempt {
                Attempt::Done(n) => {
                    self.stats.varbinds += n;
                    return Ok(n);
                }
                Attempt::AgentError { code, index } => {
                    return Err(SnmpError::Agent {
                        target: self.target.clone(),
                        code,
                        status: error_status_name(code),
                        index,
                    });
                }
                Attempt::TimedOut => {
                    // A late reply would sit in the socket and poison the next request.
                    self.session = None;
                    if !retry_allowed {
                        return Err(SnmpError::Timeout {
                            target: self.target.clone(),
                            attempts,
                            timeout: self.opts.timeout,
                        });
                    }
                }
                Attempt::Failed(e) => {
                    use snmp2::Error as E;
                    use v3::AuthErrorKind as K;
                    match e {
                        // The agent told us its boots/time: resend on the same session.
                        E::AuthUpdated if auth_updates < 2 => {
                            auth_updates += 1;
                            attempts -= 1;
                            continue;
                        }
                        E::AuthFailure(K::NotAuthenticated | K::SignatureMismatch | K::UsernameMismatch) => {
                            self.session = None;
                            return Err(SnmpError::Auth { target: self.target.clone(), user: self.user_name() });
                        }
                        E::AuthFailure(K::KeyExtensionRequired | K::KeyLengthMismatch | K::UnsupportedUSM) => {
                            self.session = None;
                            return Err(SnmpError::Security {
                                target: self.target.clone(),
                                detail: format!("{e}: check the auth/priv protocol pair"),
                            });
                        }
                        E::AuthFailure(K::EngineIdMismatch) => {
                            // Agent re-initialised or replaced: rediscover.
                            self.session = None;
                            self.v3_template = None;
                        }
                        E::AuthFailure(_) => {
                            // Time window or boots drift: the session has re-synced, one retry.
                        }
                        E::AsnParse
                        | E::AsnInvalidLen
                        | E::AsnWrongType
                        | E::AsnUnsupportedType
                        | E::AsnEof
                        | E::AsnIntOverflow
                        | E::UnsupportedVersion
                        | E::CommunityMismatch
                        | E::ValueOutOfRange => {
                            self.session = None;
                            if !retry_allowed {
                                return Err(self.malformed(format!("undecodable packet: {e}")));
                            }
                        }
                        _ => {
                            // RequestIdMismatch, Send, Receive (ICMP port unreachable): fresh socket.
                            self.session = None;
                            if !retry_allowed {
                                let detail = match e {
                                    E::Receive => "no SNMP agent listening (port unreachable)".to_string(),
                                    other => format!("request failed: {other}"),
                                };
                                return Err(SnmpError::Network { target: self.target.clone(), detail });
                            }
                        }
                    }
                    if !retry_allowed {
                        return Err(SnmpError::Security { target: self.target.clone(), detail: e.to_string() });
                    }
                }
            }
            self.stats.retries += 1;
        }
    }

    fn user_name(&self) -> String {
        match &self.creds {
            SnmpCredentials::V2c { .. } => String::new(),
            SnmpCredentials::V3(v3) => v3.user.clone(),
        }
    }

    fn take_req_id(&mut self) -> i32 {
        let id = self.next_req_id;
        self.next_req_id = if id > i32::MAX - 100_000 { 1 } else { id + 10_000 };
        id
    }

    async fn open(&mut self) -> Result<AsyncSession, SnmpError> {
        let req_id = self.take_req_id();
        let net = |e: std::io::Error, target: &str| SnmpError::Network {
            target: target.to_string(),
            detail: format!("cannot open UDP session: {e}"),
        };
        match &self.creds {
            SnmpCredentials::V2c { community } => AsyncSession::new_v2c(&self.target, community.as_bytes(), req_id)
                .await
                .map_err(|e| net(e, &self.target)),
            SnmpCredentials::V3(v3c) => {
                if let Some(t) = &self.v3_template {
                    return AsyncSession::new_v3(&self.target, req_id, t.clone())
                        .await
                        .map_err(|e| net(e, &self.target));
                }
                let sec = v3_security(v3c);
                let mut s =
                    AsyncSession::new_v3(&self.target, req_id, sec.clone()).await.map_err(|e| net(e, &self.target))?;
                self.stats.requests += 1;
                match tokio::time::timeout(self.opts.timeout, s.init()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(snmp2::Error::AuthFailure(k))) => {
                        return Err(SnmpError::Security {
                            target: self.target.clone(),
                            detail: format!("engine discovery failed: {k}"),
                        });
                    }
                    Ok(Err(snmp2::Error::Receive)) => {
                        return Err(SnmpError::Network {
                            target: self.target.clone(),
                            detail: "no SNMP agent listening (port unreachable)".into(),
                        });
                    }
                    Ok(Err(e)) => {
                        return Err(SnmpError::Network {
                            target: self.target.clone(),
                            detail: format!("engine discovery failed: {e}"),
                        });
                    }
                    Err(_) => {
                        return Err(SnmpError::Timeout {
                            target: self.target.clone(),
                            attempts: 1,
                            timeout: self.opts.timeout,
                        });
                    }
                }
                Ok(s)
            }
        }
    }

    /// Learns the agent's engine ID once (snmpEngineID.0) so later sessions skip discovery.
    pub async fn cache_v3_engine(&mut self) -> Result<(), SnmpError> {
        let SnmpCredentials::V3(v3c) = &self.creds else { return Ok(()) };
        if self.v3_template.is_some() {
            return Ok(());
        }
        let v3c = v3c.clone();
        let engine_oid: Oid = super::oid::oid("1.3.6.1.6.3.10.2.1.1.0");
        let got = self.get(std::slice::from_ref(&engine_oid)).await?;
        if let Some((_, Value::OctetString(id))) = got.first() {
            match v3_security(&v3c).with_engine_id(id) {
                Ok(t) => self.v3_template = Some(t),
                Err(e) => {
                    tracing::debug!(target = %self.target, error = %e, "cannot localize v3 keys; discovery every poll")
                }
            }
        }
        Ok(())
    }
}

pub(crate) fn v3_security(c: &SnmpV3Credentials) -> v3::Security {
    let auth_pw = c.auth.as_ref().map(|(_, p)| p.as_bytes()).unwrap_or(b"");
    let mut sec = v3::Security::new(c.user.as_bytes(), auth_pw);
    let mut auth_proto = v3::AuthProtocol::Sha1;
    if let Some((p, _)) = &c.auth {
        auth_proto = match p {
            AuthProtocol::Md5 => v3::AuthProtocol::Md5,
            AuthProtocol::Sha1 => v3::AuthProtocol::Sha1,
            AuthProtocol::Sha224 => v3::AuthProtocol::Sha224,
            AuthProtocol::Sha256 => v3::AuthProtocol::Sha256,
            AuthProtocol::Sha384 => v3::AuthProtocol::Sha384,
            AuthProtocol::Sha512 => v3::AuthProtocol::Sha512,
        };
        sec = sec.with_auth_protocol(auth_proto);
    }
    let auth = match (&c.auth, &c.privacy) {
        (None, _) => v3::Auth::NoAuthNoPriv,
        (Some(_), None) => v3::Auth::AuthNoPriv,
        (Some(_), Some((p, pw))) => {
            let cipher = match p {
                PrivProtocol::Des => v3::Cipher::Des,
                PrivProtocol::Aes128 => v3::Cipher::Aes128,
                PrivProtocol::Aes192 => v3::Cipher::Aes192,
                PrivProtocol::Aes256 => v3::Cipher::Aes256,
            };
            if cipher.priv_key_needs_extension(&auth_proto) {
                // net-snmp's AES-192/256 with short digests uses Blumenthal key extension.
                sec = sec.with_key_extension_method(v3::KeyExtension::Blumenthal);
            }
            v3::Auth::AuthPriv { cipher, privacy_password: pw.as_bytes().to_vec() }
        }
    };
    sec = sec.with_auth(auth);
    if let Some(ctx) = c.context.as_deref().filter(|s| !s.is_empty()) {
        sec = sec.with_context_name(ctx);
    }
    sec
}
