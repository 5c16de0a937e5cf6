//! A tiny DNS responder and forwarder for the lab, over UDP and TCP.
//!
//! The responder stands in for an internet resolver (on the "internet" host) and for the VPN
//! provider's resolver (inside the tunnel): every `*.test` name resolves to the internet
//! host's addresses, and every question asked is recorded so a test can tell which resolver a
//! device's query reached. The forwarder stands in for the router's dnsmasq: it answers LAN
//! clients by asking an upstream resolver across the WAN — exactly the path that would leak a
//! protected device's names if moat did not redirect them.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::pcap::read_name;

/// What a server does with a question.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Answer `*.test` A/AAAA questions with these addresses.
    Answer { v4: Ipv4Addr, v6: Ipv6Addr },
    /// Forward the raw question over UDP to this resolver and relay its answer.
    Forward(SocketAddr),
}

/// Questions a server has seen, in order (lower-case names).
pub type QueryLog = Arc<Mutex<Vec<String>>>;

/// Build an answer to `query` (a DNS message) in `Answer` mode.
pub fn answer(query: &[u8], v4: Ipv4Addr, v6: Ipv6Addr) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    let (name, end) = read_name(query, 12)?;
    let qtype = u16::from_be_bytes([*query.get(end)?, *query.get(end + 1)?]);
    let question = query.get(12..end + 4)?;
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&query[0..2]); // id
    let rd = query[2] & 1;
    let known = name.ends_with(".test") || name == "test";
    let rcode = if known { 0 } else { 3 }; // NXDOMAIN outside the lab zone
    out.extend_from_slice(&[0x84 | rd, 0x80 | rcode]); // QR AA RD, RA
    out.extend_from_slice(&[0, 1]);
    let rdata: Option<Vec<u8>> = match (known, qtype) {
        (true, 1) => Some(v4.octets().to_vec()),
        (true, 28) => Some(v6.octets().to_vec()),
        _ => None,
    };
    out.extend_from_slice(&[0, rdata.is_some() as u8, 0, 0, 0, 0]);
    out.extend_from_slice(question);
    if let Some(r) = rdata {
        out.extend_from_slice(&[0xc0, 12]); // pointer to the question name
        out.extend_from_slice(&qtype.to_be_bytes());
        out.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
        out.extend_from_slice(&(r.len() as u16).to_be_bytes());
        out.extend_from_slice(&r);
    }
    Some(out)
}

fn respond(mode: &Mode, query: &[u8], log: &QueryLog) -> Option<Vec<u8>> {
    if let Some((name, _)) = read_name(query, 12) {
        log.lock().unwrap().push(name);
    }
    match mode {
        Mode::Answer { v4, v6 } => answer(query, *v4, *v6),
        Mode::Forward(up) => {
            let bind: SocketAddr = if up.is_ipv4() { "0.0.0.0:0".parse().unwrap() } else { "[::]:0".parse().unwrap() };
            let s = UdpSocket::bind(bind).ok()?;
            s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
            s.send_to(query, up).ok()?;
            let mut buf = [0u8; 4096];
            let (n, _) = s.recv_from(&mut buf).ok()?;
            Some(buf[..n].to_vec())
        }
    }
}

/// A running server: stops (and joins its threads) when dropped.
pub struct Server {
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
    /// Questions seen.
    pub log: QueryLog,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Start a DNS server on `addr` (UDP and TCP). Must be called on a thread that is already in
/// the wanted network namespace: the sockets are created here, the serving threads inherit them.
pub fn serve(addr: SocketAddr, mode: Mode) -> std::io::Result<Server> {
    let stop = Arc::new(AtomicBool::new(false));
    let log: QueryLog = Arc::new(Mutex::new(Vec::new()));
    let udp = UdpSocket::bind(addr)?;
    udp.set_read_timeout(Some(Duration::from_millis(100)))?;
    let tcp = TcpListener::bind(addr)?;
    tcp.set_nonblocking(true)?;
    let mut threads = Vec::new();
    {
        let (stop, log, mode) = (stop.clone(), log.clone(), mode.clone());
        threads.push(thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !stop.load(Ordering::SeqCst) {
                if let Ok((n, peer)) = udp.recv_from(&mut buf) {
                    if let Some(r) = respond(&mode, &buf[..n], &log) {
                        let _ = udp.send_to(&r, peer);
                    }
                }
            }
        }));
    }
    {
        let (stop, log) = (stop.clone(), log.clone());
        threads.push(thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match tcp.accept() {
                    Ok((c, _)) => {
                        let (log, mode) = (log.clone(), mode.clone());
                        thread::spawn(move || {
                            let _ = tcp_session(c, &mode, &log);
                        });
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        }));
    }
    Ok(Server { stop, threads, log })
}

fn tcp_session(mut c: TcpStream, mode: &Mode, log: &QueryLog) -> std::io::Result<()> {
    c.set_nonblocking(false)?;
    c.set_read_timeout(Some(Duration::from_secs(3)))?;
    loop {
        let mut len = [0u8; 2];
        c.read_exact(&mut len)?;
        let mut q = vec![0u8; u16::from_be_bytes(len) as usize];
        c.read_exact(&mut q)?;
        if let Some(r) = respond(mode, &q, log) {
            let mut msg = (r.len() as u16).to_be_bytes().to_vec();
            msg.extend_from_slice(&r);
            c.write_all(&msg)?;
        }
    }
}

/// The addresses `Answer` mode hands out, as `IpAddr`s (for assertions).
pub fn answers(v4: Ipv4Addr, v6: Ipv6Addr) -> [IpAddr; 2] {
    [IpAddr::V4(v4), IpAddr::V6(v6)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_a_question_for_the_lab_zone() {
        let mut q = vec![0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x05sleep\x06vendor\x04test\x00\x00\x01\x00\x01");
        let v4 = Ipv4Addr::new(203, 0, 113, 10);
        let r = answer(&q, v4, Ipv6Addr::LOCALHOST).unwrap();
        assert_eq!(&r[0..2], &[0xab, 0xcd]);
        assert_eq!(r[3] & 0x0f, 0, "rcode");
        assert_eq!(u16::from_be_bytes([r[6], r[7]]), 1, "one answer");
        assert_eq!(&r[r.len() - 4..], &v4.octets());
        let mut nx = vec![0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        nx.extend_from_slice(b"\x07example\x03com\x00\x00\x01\x00\x01");
        let r = answer(&nx, v4, Ipv6Addr::LOCALHOST).unwrap();
        assert_eq!(r[3] & 0x0f, 3, "NXDOMAIN outside .test");
    }
}
