//! The fabric's control listener: a line protocol on a loopback TCP port, for tests, demos and
//! operators injecting faults into a running `netwarden sim`.
//!
//! Each line is one [`Command`](super::faults::Command) (see [`super::faults`] for the
//! language); each gets one line back: `ok`, `ok <text>` or `error: <what>`. Lines are at most
//! [`MAX_LINE`] bytes; at most [`MAX_CLIENTS`] connections are served at once (more wait in
//! the accept queue). Plain tokio: the collector has no HTTP stack and needs none for this.

use super::faults::Command;
use super::running::Fabric;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub const MAX_LINE: usize = 1024;
pub const MAX_CLIENTS: usize = 16;

/// A running control listener; dropping it stops it.
pub struct ControlServer {
    addr: SocketAddr,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

impl ControlServer {
    /// Listens on `addr` (loopback only; port 0 picks one) and serves commands on `fabric`.
    pub async fn bind(addr: SocketAddr, fabric: Arc<Fabric>) -> io::Result<ControlServer> {
        if !addr.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("control listener {addr}: loopback addresses only"),
            ));
        }
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let cancel = CancellationToken::new();
        let tasks = TaskTracker::new();
        let (c, t) = (cancel.clone(), tasks.clone());
        tasks.spawn(accept_loop(listener, fabric, c, t));
        Ok(ControlServer { addr, cancel, tasks })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, closes every connection and waits for their tasks.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn accept_loop(listener: TcpListener, fabric: Arc<Fabric>, cancel: CancellationToken, tasks: TaskTracker) {
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    loop {
        let acquired = tokio::select! {
            () = cancel.cancelled() => return,
            p = Arc::clone(&slots).acquire_owned() => p,
        };
        let Ok(permit) = acquired else { return };
        let (stream, peer) = tokio::select! {
            () = cancel.cancelled() => return,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "sim control: accept failed");
                    continue;
                }
            },
        };
        let (fabric, cancel) = (Arc::clone(&fabric), cancel.clone());
        tasks.spawn(async move {
            tokio::select! {
                () = cancel.cancelled() => {}
                r = serve_client(stream, &fabric) => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "sim control: connection ended");
                    }
                }
            }
            drop(permit);
        });
    }
}

/// The answer line to one command line (without the newline).
pub fn answer(fabric: &Fabric, line: &str) -> String {
    let cmd = match line.parse::<Command>() {
        Ok(c) => c,
        Err(e) => return format!("error: {e}"),
    };
    match fabric.execute(&cmd) {
        Ok(text) if text.is_empty() => "ok".to_string(),
        Ok(text) => format!("ok {text}"),
        Err(e) => format!("error: {e}"),
    }
}

async fn serve_client(stream: TcpStream, fabric: &Fabric) -> io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut line = String::new();
    loop {
        line.clear();
        // One byte more than allowed tells an over-long line from one exactly at the limit.
        let n = (&mut read).take(MAX_LINE as u64 + 1).read_line(&mut line).await?;
        if n == 0 {
            return Ok(());
        }
        if n > MAX_LINE {
            write.write_all(format!("error: line longer than {MAX_LINE} bytes\n").as_bytes()).await?;
            return Ok(());
        }
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        if text == "quit" {
            return Ok(());
        }
        let mut reply = answer(fabric, text);
        reply.push('\n');
        write.write_all(reply.as_bytes()).await?;
    }
}
