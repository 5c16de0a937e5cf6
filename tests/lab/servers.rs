//! Echo and sink servers for the lab's internet host (plain std sockets, one thread each).
//!
//! Like [`super::dns::serve`], the `serve_*` functions must be called on a thread that is
//! already inside the wanted network namespace: sockets belong to the namespace they are
//! created in, and the serving threads inherit them.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// A running server: stops and joins its listener thread when dropped.
pub struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
    /// Bytes (TCP) or datagrams (UDP) received so far.
    pub received: Arc<AtomicU64>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What a TCP server does with a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpKind {
    /// Send back every byte received, close when the client half-closes.
    Echo,
    /// Read and count everything, send nothing back except the final byte count (8 bytes, BE).
    Sink,
    /// Push: send one byte every 100 ms for up to a minute, whatever the client does (like a
    /// device's persistent cloud connection); the server's packets keep arriving across faults.
    Push,
}

/// Serve TCP on `addr` (an IPv6 wildcard address also takes IPv4 connections).
pub fn serve_tcp(addr: SocketAddr, kind: TcpKind) -> std::io::Result<Server> {
    let l = TcpListener::bind(addr)?;
    l.set_nonblocking(true)?;
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let (s2, r2) = (stop.clone(), received.clone());
    let thread = thread::spawn(move || {
        while !s2.load(Ordering::SeqCst) {
            match l.accept() {
                Ok((c, _)) => {
                    let r = r2.clone();
                    thread::spawn(move || {
                        let _ = session(c, kind, &r);
                    });
                }
                Err(_) => thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    Ok(Server { stop, thread: Some(thread), received })
}

fn session(mut c: TcpStream, kind: TcpKind, received: &AtomicU64) -> std::io::Result<()> {
    c.set_nonblocking(false)?;
    if kind == TcpKind::Push {
        c.set_write_timeout(Some(Duration::from_secs(5)))?;
        for _ in 0..600 {
            c.write_all(b"p")?;
            thread::sleep(Duration::from_millis(100));
        }
        return Ok(());
    }
    c.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = c.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        received.fetch_add(n as u64, Ordering::Relaxed);
        if kind == TcpKind::Echo {
            c.write_all(&buf[..n])?;
        }
    }
    if kind == TcpKind::Sink {
        c.write_all(&total.to_be_bytes())?;
    }
    c.shutdown(std::net::Shutdown::Write)
}

/// Serve UDP echo on `addr`: every datagram goes back to its sender unchanged.
pub fn serve_udp_echo(addr: SocketAddr) -> std::io::Result<Server> {
    let s = UdpSocket::bind(addr)?;
    s.set_read_timeout(Some(Duration::from_millis(100)))?;
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let (s2, r2) = (stop.clone(), received.clone());
    let thread = thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while !s2.load(Ordering::SeqCst) {
            if let Ok((n, peer)) = s.recv_from(&mut buf) {
                r2.fetch_add(1, Ordering::Relaxed);
                let _ = s.send_to(&buf[..n], peer);
            }
        }
    });
    Ok(Server { stop, thread: Some(thread), received })
}
