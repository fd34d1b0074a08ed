//! A simulated device's SNMP v2c agent: one UDP socket, one MIB, served by one tokio task.
//!
//! Built to run by the thousand in one process: an idle agent holds no receive buffer (datagrams
//! are read into a per-thread buffer once the socket is readable) and no task besides its
//! receive loop. Without latency a request is answered inline; with latency it is answered
//! by a short task that sleeps first, so a slow agent still takes requests meanwhile, up to
//! `max_in_flight` (then, like an overloaded agent, it drops them and counts the drop).

use super::codec::{self, Dropped, Malformed, ResponseLimits};
use super::mib::Mib;
use std::cell::RefCell;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How a simulated agent behaves on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// The read community; requests with any other get no answer, as from a real agent.
    pub community: String,
    /// Delay before every response, whatever it holds.
    pub latency_per_request: Duration,
    /// Extra delay per varbind in the response (slow real agents: ~1-2 ms).
    pub latency_per_varbind: Duration,
    /// Delayed responses pending at once; requests beyond it are dropped and counted.
    pub max_in_flight: usize,
    pub limits: ResponseLimits,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            community: "public".to_string(),
            latency_per_request: Duration::ZERO,
            latency_per_varbind: Duration::ZERO,
            max_in_flight: 64,
            limits: ResponseLimits::default(),
        }
    }
}

impl AgentConfig {
    fn latency(&self, varbinds: usize) -> Duration {
        self.latency_per_request + self.latency_per_varbind * u32::try_from(varbinds).unwrap_or(u32::MAX)
    }
}

/// What an agent has seen since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgentStats {
    pub datagrams: u64,
    pub responses: u64,
    pub varbinds: u64,
    /// Undecodable datagrams.
    pub malformed: u64,
    /// v1, v3, SET and other PDUs this agent does not serve.
    pub unsupported: u64,
    pub bad_community: u64,
    /// Dropped because `max_in_flight` delayed responses were pending.
    pub overloaded: u64,
    pub send_errors: u64,
    /// Ignored because the agent was told to stay silent (a device-down fault).
    pub silenced: u64,
}

#[derive(Default)]
struct Counters {
    datagrams: AtomicU64,
    responses: AtomicU64,
    varbinds: AtomicU64,
    malformed: AtomicU64,
    unsupported: AtomicU64,
    bad_community: AtomicU64,
    overloaded: AtomicU64,
    send_errors: AtomicU64,
    silenced: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> AgentStats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        AgentStats {
            datagrams: g(&self.datagrams),
            responses: g(&self.responses),
            varbinds: g(&self.varbinds),
            malformed: g(&self.malformed),
            unsupported: g(&self.unsupported),
            bad_community: g(&self.bad_community),
            overloaded: g(&self.overloaded),
            send_errors: g(&self.send_errors),
            silenced: g(&self.silenced),
        }
    }
}

/// A device's MIB, shared between its agent and whoever changes the device (fault injection,
/// a CLI session). Locks are held only while one request is answered.
#[derive(Debug, Clone, Default)]
pub struct SharedMib(Arc<RwLock<Mib>>);

impl SharedMib {
    pub fn new(mib: Mib) -> SharedMib {
        SharedMib(Arc::new(RwLock::new(mib)))
    }

    pub fn read(&self) -> RwLockReadGuard<'_, Mib> {
        // A panic while holding the lock cannot leave a BTreeMap half-written in a way that
        // matters to a simulator: keep serving.
        self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn write(&self) -> RwLockWriteGuard<'_, Mib> {
        self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// How a running agent misbehaves, changed at run time by fault injection; read once per
/// datagram (relaxed atomics: a fault takes effect from the next request on).
#[derive(Debug, Default)]
pub struct AgentBehaviour {
    silent: AtomicBool,
    extra_latency_us: AtomicU64,
    /// 0: none, else a [`Malformed`] mode + 1.
    malformed: AtomicU8,
}

impl AgentBehaviour {
    /// Silent: every datagram is ignored, as from a device that is down or unreachable.
    pub fn set_silent(&self, silent: bool) {
        self.silent.store(silent, Ordering::Relaxed);
    }

    pub fn is_silent(&self) -> bool {
        self.silent.load(Ordering::Relaxed)
    }

    /// Delay added to every response, on top of the configured latency.
    pub fn set_extra_latency(&self, latency: Duration) {
        self.extra_latency_us.store(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    pub fn extra_latency(&self) -> Duration {
        Duration::from_micros(self.extra_latency_us.load(Ordering::Relaxed))
    }

    /// Responses distorted this way, or well-formed again with `None`.
    pub fn set_malformed(&self, mode: Option<Malformed>) {
        let code = match mode {
            None => 0,
            Some(Malformed::WrongTypes) => 1,
            Some(Malformed::NonIncreasing) => 2,
            Some(Malformed::Truncated) => 3,
        };
        self.malformed.store(code, Ordering::Relaxed);
    }

    pub fn malformed(&self) -> Option<Malformed> {
        match self.malformed.load(Ordering::Relaxed) {
            1 => Some(Malformed::WrongTypes),
            2 => Some(Malformed::NonIncreasing),
            3 => Some(Malformed::Truncated),
            _ => None,
        }
    }

    /// Back to a well-behaved agent.
    pub fn reset(&self) {
        self.set_silent(false);
        self.set_extra_latency(Duration::ZERO);
        self.set_malformed(None);
    }
}

struct Shared {
    socket: UdpSocket,
    mib: SharedMib,
    behaviour: Arc<AgentBehaviour>,
    config: AgentConfig,
    counters: Counters,
    in_flight: Arc<Semaphore>,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

/// A running simulated agent. Dropping it stops it; [`SimAgent::shutdown`] also waits for
/// delayed responses to finish.
pub struct SimAgent {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

thread_local! {
    /// One receive buffer per runtime thread instead of one per agent: 10,000 idle agents
    /// would otherwise hold 640 MB of buffers.
    static RECV_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; 65_536]);
}

/// Datagrams handled in a row before the receive loop yields, so one busy agent cannot starve
/// the others sharing its thread.
const BATCH: usize = 32;

impl SimAgent {
    /// Binds `addr` (port 0 picks a free one) and starts serving `mib`.
    pub async fn bind(addr: SocketAddr, mib: impl Into<SharedMib>, config: AgentConfig) -> io::Result<SimAgent> {
        SimAgent::bind_with(addr, mib.into(), Arc::new(AgentBehaviour::default()), config).await
    }

    /// [`SimAgent::bind`] with a behaviour handle the caller keeps (a fabric changes it when
    /// faults are injected).
    pub async fn bind_with(
        addr: SocketAddr,
        mib: SharedMib,
        behaviour: Arc<AgentBehaviour>,
        config: AgentConfig,
    ) -> io::Result<SimAgent> {
        let socket = UdpSocket::bind(addr).await?;
        let addr = socket.local_addr()?;
        let shared = Arc::new(Shared {
            socket,
            mib,
            behaviour,
            in_flight: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
            config,
            counters: Counters::default(),
            cancel: CancellationToken::new(),
            tasks: TaskTracker::new(),
        });
        let s = Arc::clone(&shared);
        shared.tasks.spawn(async move { s.serve().await });
        Ok(SimAgent { shared, addr })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ip:port`, as the poller's inventory and net-snmp's tools take it.
    pub fn target(&self) -> String {
        self.addr.to_string()
    }

    pub fn mib(&self) -> &SharedMib {
        &self.shared.mib
    }

    pub fn config(&self) -> &AgentConfig {
        &self.shared.config
    }

    /// The agent's run-time behaviour (silence, extra latency, malformed responses).
    pub fn behaviour(&self) -> &Arc<AgentBehaviour> {
        &self.shared.behaviour
    }

    pub fn stats(&self) -> AgentStats {
        self.shared.counters.snapshot()
    }

    /// Stops receiving and waits for pending delayed responses to be sent or abandoned.
    pub async fn shutdown(self) {
        self.shared.cancel.cancel();
        self.shared.tasks.close();
        self.shared.tasks.wait().await;
    }
}

impl Drop for SimAgent {
    fn drop(&mut self) {
        self.shared.cancel.cancel();
    }
}

impl From<Mib> for SharedMib {
    fn from(m: Mib) -> Self {
        SharedMib::new(m)
    }
}

impl Shared {
    async fn serve(self: Arc<Self>) {
        loop {
            tokio::select! {
                biased;
                () = self.cancel.cancelled() => return,
                r = self.socket.readable() => {
                    if let Err(e) = r {
                        tracing::warn!(agent = %self.addr(), error = %e, "simulated agent socket failed");
                        return;
                    }
                }
            }
            for _ in 0..BATCH {
                let received = RECV_BUF.with_borrow_mut(|buf| match self.socket.try_recv_from(buf) {
                    Ok((n, peer)) => Ok(Some((self.handle(&buf[..n]), peer))),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
                    Err(e) => Err(e),
                });
                match received {
                    Ok(Some((Some(reply), peer))) => self.reply(reply, peer).await,
                    Ok(Some((None, _))) => {}
                    Ok(None) => break,
                    // e.g. ECONNREFUSED from an ICMP error for an earlier reply: not fatal.
                    Err(e) => tracing::debug!(agent = %self.addr(), error = %e, "receive error"),
                }
            }
            tokio::task::yield_now().await;
        }
    }

    fn addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Decodes and answers one datagram; `None` when it gets no answer.
    fn handle(&self, datagram: &[u8]) -> Option<codec::Reply> {
        let c = &self.counters;
        c.datagrams.fetch_add(1, Ordering::Relaxed);
        if self.behaviour.is_silent() {
            c.silenced.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let now = tokio::time::Instant::now();
        let malformed = self.behaviour.malformed();
        let result = {
            let mib = self.mib.read();
            codec::respond_malformed(
                datagram,
                self.config.community.as_bytes(),
                &mib,
                self.config.limits,
                now,
                malformed,
            )
        };
        match result {
            Ok(reply) => Some(reply),
            Err(Dropped::Malformed) => {
                c.malformed.fetch_add(1, Ordering::Relaxed);
                None
            }
            Err(Dropped::Unsupported) => {
                c.unsupported.fetch_add(1, Ordering::Relaxed);
                None
            }
            Err(Dropped::BadCommunity) => {
                c.bad_community.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    async fn reply(self: &Arc<Self>, reply: codec::Reply, peer: SocketAddr) {
        let delay = self.config.latency(reply.varbinds) + self.behaviour.extra_latency();
        if delay.is_zero() {
            self.send(&reply, peer).await;
            return;
        }
        let Ok(permit) = Arc::clone(&self.in_flight).try_acquire_owned() else {
            self.counters.overloaded.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let s = Arc::clone(self);
        self.tasks.spawn(async move {
            tokio::select! {
                () = s.cancel.cancelled() => {}
                () = tokio::time::sleep(delay) => s.send(&reply, peer).await,
            }
            drop(permit);
        });
    }

    async fn send(&self, reply: &codec::Reply, peer: SocketAddr) {
        let sent = match self.socket.try_send_to(&reply.datagram, peer) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.socket.send_to(&reply.datagram, peer).await,
            other => other,
        };
        match sent {
            Ok(_) => {
                self.counters.responses.fetch_add(1, Ordering::Relaxed);
                self.counters.varbinds.fetch_add(reply.varbinds as u64, Ordering::Relaxed);
            }
            Err(e) => {
                self.counters.send_errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(agent = %self.addr(), %peer, error = %e, "send failed");
            }
        }
    }
}

/// Starts one agent per MIB on `ip`, on consecutive ports from `base_port` (0: a free port
/// each). Stops at the first bind error (port taken, fd limit), dropping those already started.
pub async fn bind_agents(
    ip: IpAddr,
    base_port: u16,
    mibs: impl IntoIterator<Item = Mib>,
    config: &AgentConfig,
) -> io::Result<Vec<SimAgent>> {
    let mut agents = Vec::new();
    for (i, mib) in mibs.into_iter().enumerate() {
        let port = if base_port == 0 {
            0
        } else {
            u16::try_from(usize::from(base_port) + i)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "port range beyond 65535"))?
        };
        agents.push(SimAgent::bind(SocketAddr::new(ip, port), mib, config.clone()).await?);
    }
    Ok(agents)
}
