//! A small nfnetlink_queue client over a raw netlink socket, on the common [`super`] layer.
//!
//! Why in-house instead of the `nfq` crate: the daemon's event loop polls one set of file
//! descriptors, and `nfq` 0.2.5 does not expose its socket fd; it also sends verdicts without
//! asking the kernel for an acknowledgement, so a failed verdict (unknown id, bad payload) goes
//! unnoticed. The protocol subset moat needs — bind a queue, set copy mode/range and queue length,
//! receive packets, send verdicts with an optional new payload and mark — is small.
//!
//! Every configuration message and every verdict is sent with `NLM_F_ACK`. Configuration waits
//! for its acknowledgement; verdict acknowledgements arrive on the same socket as packets and are
//! returned by [`Queue::recv`] as [`Msg::Ack`] / [`Msg::Error`] carrying the verdict's sequence
//! number, so the event loop can count and log failures without blocking.
//!
//! Fail-open is explicitly switched off: while no process is bound (moat not running), the
//! kernel drops packets sent to the queue. Netlink headers are in host byte order, nfnetlink
//! attribute payloads in network byte order; both are encoded explicitly here.

use super::{attrs, be_u32, messages, Builder, Error, NLMSG_DONE, NLMSG_ERROR, NLM_F_ACK};
use crate::sys;
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

const NETLINK_NETFILTER: libc::c_int = 12;
const NFNL_SUBSYS_QUEUE: u16 = 3;
const NFQNL_MSG_PACKET: u16 = 0;
const NFQNL_MSG_VERDICT: u16 = 1;
const NFQNL_MSG_CONFIG: u16 = 2;

const NFQA_PACKET_HDR: u16 = 1;
const NFQA_VERDICT_HDR: u16 = 2;
const NFQA_MARK: u16 = 3;
const NFQA_IFINDEX_INDEV: u16 = 5;
const NFQA_IFINDEX_OUTDEV: u16 = 6;
const NFQA_PAYLOAD: u16 = 10;
const NFQA_CAP_LEN: u16 = 13;

const NFQA_CFG_CMD: u16 = 1;
const NFQA_CFG_PARAMS: u16 = 2;
const NFQA_CFG_QUEUE_MAXLEN: u16 = 3;
const NFQA_CFG_MASK: u16 = 4;
const NFQA_CFG_FLAGS: u16 = 5;
const NFQNL_CFG_CMD_BIND: u8 = 1;
const NFQNL_CFG_CMD_UNBIND: u8 = 2;
const NFQNL_COPY_PACKET: u8 = 2;
const NFQA_CFG_F_FAIL_OPEN: u32 = 1 << 0;
const NFQA_CFG_F_GSO: u32 = 1 << 2;

/// Most payload bytes a verdict can carry (the attribute length is 16 bits).
const MAX_PAYLOAD: usize = 65535 - 8;

/// Netfilter verdicts moat uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// `NF_DROP`.
    Drop,
    /// `NF_ACCEPT`.
    Accept,
}

impl Verdict {
    fn code(self) -> u32 {
        match self {
            Verdict::Drop => 0,
            Verdict::Accept => 1,
        }
    }
}

/// Queue settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueOptions {
    /// Bytes of each packet copied to userspace (packets longer than this arrive truncated and
    /// must not be given a new payload). Keep it near the MTU: each held packet pins a kernel
    /// buffer of about this size.
    pub copy_range: u32,
    /// Most packets the kernel holds for this queue (kernel default 1,024); more are dropped.
    pub max_len: u32,
    /// Socket receive buffer to request, bytes (set with `SO_RCVBUFFORCE` when permitted).
    pub rcvbuf: u32,
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions { copy_range: 1600, max_len: 1024, rcvbuf: 1 << 20 }
    }
}

/// A packet handed to userspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Id for the verdict.
    pub id: u32,
    /// Link-layer protocol (ETH_P_IP 0x0800, ETH_P_IPV6 0x86dd).
    pub hw_protocol: u16,
    /// Netfilter hook number.
    pub hook: u8,
    /// The packet mark (0 if none).
    pub mark: u32,
    /// Input interface index (0 if none).
    pub indev: u32,
    /// Output interface index (0 if none).
    pub outdev: u32,
    /// The packet's bytes from the IP header on (at most `copy_range`).
    pub payload: Vec<u8>,
    /// The packet's full length when `payload` was truncated.
    pub cap_len: Option<u32>,
}

impl Packet {
    /// Whether `payload` holds only part of the packet.
    pub fn truncated(&self) -> bool {
        matches!(self.cap_len, Some(l) if l as usize > self.payload.len())
    }
}

/// Something received on the queue socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// A queued packet awaiting a verdict.
    Packet(Packet),
    /// The request with this sequence number succeeded.
    Ack {
        /// Sequence number returned by [`Queue::verdict`].
        seq: u32,
    },
    /// The request with this sequence number failed with this errno.
    Error {
        /// Sequence number returned by [`Queue::verdict`].
        seq: u32,
        /// Positive errno (e.g. `ENOENT` for an unknown packet id).
        errno: i32,
    },
}

/// A bound nfnetlink queue.
pub struct Queue {
    fd: OwnedFd,
    num: u16,
    seq: u32,
    rx: Vec<u8>,
    tx: Vec<u8>,
    pending: VecDeque<Msg>,
}

impl Queue {
    /// Open a netlink socket in the current network namespace, bind queue `num` and configure it
    /// (copy whole packets up to `copy_range`, queue length, fail-open and GSO off).
    pub fn open(num: u16, opts: &QueueOptions) -> io::Result<Queue> {
        let fd = sys::netlink_socket(NETLINK_NETFILTER, 0)?;
        sys::set_rcvbuf(fd.as_fd(), opts.rcvbuf, true)?;
        // One netlink message per datagram: the packet (≤ copy_range) plus a few hundred bytes of
        // headers and attributes (~150 bytes; a longer message is detected with MSG_TRUNC).
        let rx = vec![0u8; opts.copy_range as usize + 512];
        // The send buffer is sized once for a padded verdict of a whole packet; a longer payload
        // (only through `verdict`) grows it.
        let tx = vec![0u8; opts.copy_range as usize + 512];
        let mut q = Queue { fd, num, seq: 0, rx, tx, pending: VecDeque::new() };

        // bind (the kernel answers EPERM if another socket holds this queue number)
        q.config(|b| b.attr(NFQA_CFG_CMD, &[NFQNL_CFG_CMD_BIND, 0, 0, 0]))?;
        let c = opts.copy_range.to_be_bytes();
        let params = [c[0], c[1], c[2], c[3], NFQNL_COPY_PACKET];
        q.config(|b| b.attr(NFQA_CFG_PARAMS, &params))?;
        q.config(|b| b.attr(NFQA_CFG_QUEUE_MAXLEN, &opts.max_len.to_be_bytes()))?;
        let mask = NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO;
        q.config(|b| b.attr(NFQA_CFG_MASK, &mask.to_be_bytes()).attr(NFQA_CFG_FLAGS, &0u32.to_be_bytes()))?;
        Ok(q)
    }

    /// The queue number.
    pub fn num(&self) -> u16 {
        self.num
    }

    /// Switch the socket between blocking and non-blocking receive.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        sys::set_nonblocking(self.fd.as_fd(), on)
    }

    /// Encode one message of `msg_type` (nfgenmsg family `AF_UNSPEC`, our queue number) with
    /// the attributes `attrs` adds, send it with `NLM_F_ACK`, and return its sequence number.
    /// `need` is the room the attributes take at most.
    fn send(&mut self, msg_type: u16, need: usize, attrs: impl FnOnce(&mut Builder<'_>)) -> io::Result<u32> {
        if self.tx.len() < need + 64 {
            self.tx.resize(need + 64, 0);
        }
        self.seq = self.seq.wrapping_add(1);
        let n = num_be(self.num);
        let mut b = Builder::new(&mut self.tx, (NFNL_SUBSYS_QUEUE << 8) | msg_type, NLM_F_ACK, self.seq);
        b.bytes(&[libc::AF_UNSPEC as u8, 0, n[0], n[1]]); // nfgenmsg: family, NFNETLINK_V0, res_id
        attrs(&mut b);
        let len = b.finish()?;
        loop {
            match sys::sendto_netlink_kernel(self.fd.as_fd(), &self.tx[..len]) {
                Ok(_) => return Ok(self.seq),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Send one config message and wait for its ack; packets arriving meanwhile are kept.
    fn config(&mut self, attrs: impl for<'x, 'y> FnOnce(&'x mut Builder<'y>) -> &'x mut Builder<'y>) -> io::Result<()> {
        let seq = self.send(NFQNL_MSG_CONFIG, 64, |b| {
            attrs(b);
        })?;
        let mut held = VecDeque::new();
        let res = loop {
            match self.read_one()? {
                Msg::Ack { seq: s } if s == seq => break Ok(()),
                Msg::Error { seq: s, errno } if s == seq => break Err(io::Error::from_raw_os_error(errno)),
                other => held.push_back(other),
            }
        };
        held.extend(self.pending.drain(..));
        self.pending = held;
        res
    }

    /// Send a verdict for packet `id`, optionally replacing its bytes with `payload` (which may be
    /// longer than the original: padding) and setting its mark. Returns the request's sequence
    /// number; its [`Msg::Ack`] or [`Msg::Error`] arrives later through [`Queue::recv`].
    pub fn verdict(&mut self, id: u32, verdict: Verdict, mark: Option<u32>, payload: Option<&[u8]>) -> io::Result<u32> {
        let p = payload.unwrap_or(&[]);
        if p.len() > MAX_PAYLOAD {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "payload too long"));
        }
        self.send(NFQNL_MSG_VERDICT, 24 + p.len(), |b| {
            b.attr(NFQA_VERDICT_HDR, &verdict_hdr(verdict, id));
            if let Some(m) = mark {
                b.attr(NFQA_MARK, &m.to_be_bytes());
            }
            if let Some(p) = payload {
                b.attr(NFQA_PAYLOAD, p);
            }
        })
    }

    /// Accept packet `id` with `payload` followed by zero bytes up to `pad_to` bytes in total
    /// (padding past the IP length), built straight into the send buffer. Returns the sequence
    /// number as [`Queue::verdict`] does.
    pub fn accept_padded(&mut self, id: u32, payload: &[u8], pad_to: usize) -> io::Result<u32> {
        let total = payload.len().max(pad_to);
        if total > MAX_PAYLOAD {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "payload too long"));
        }
        self.send(NFQNL_MSG_VERDICT, 16 + total, |b| {
            b.attr(NFQA_VERDICT_HDR, &verdict_hdr(Verdict::Accept, id));
            b.attr_padded(NFQA_PAYLOAD, payload, total - payload.len());
        })
    }

    /// Receive the next message (blocking unless the socket is non-blocking, in which case
    /// `WouldBlock` means nothing is waiting). `ENOBUFS` means the socket buffer overflowed and
    /// the kernel dropped queued packets (fail-closed); the caller logs it and goes on.
    pub fn recv(&mut self) -> io::Result<Msg> {
        if let Some(m) = self.pending.pop_front() {
            return Ok(m);
        }
        self.read_one()
    }

    fn read_one(&mut self) -> io::Result<Msg> {
        loop {
            if let Some(m) = self.pending.pop_front() {
                return Ok(m);
            }
            let n = match sys::recv(self.fd.as_fd(), &mut self.rx, sys::Recv { dontwait: false, trunc: true }) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n > self.rx.len() {
                // Cannot happen with moat's settings; never parse a cut message.
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("nfnetlink: {n}-byte message truncated"),
                ));
            }
            let rx = std::mem::take(&mut self.rx);
            let res = parse_datagram(&rx[..n], &mut self.pending);
            self.rx = rx;
            res?;
        }
    }

    /// Unbind the queue (the kernel also does this when the socket closes).
    pub fn unbind(&mut self) -> io::Result<()> {
        self.config(|b| b.attr(NFQA_CFG_CMD, &[NFQNL_CFG_CMD_UNBIND, 0, 0, 0]))
    }
}

impl AsRawFd for Queue {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for Queue {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn verdict_hdr(v: Verdict, id: u32) -> [u8; 8] {
    let mut vh = [0u8; 8];
    vh[..4].copy_from_slice(&v.code().to_be_bytes());
    vh[4..].copy_from_slice(&id.to_be_bytes());
    vh
}

fn num_be(n: u16) -> [u8; 2] {
    n.to_be_bytes()
}

/// Split a received datagram into netlink messages and decode the ones moat cares about into
/// `out`. Pure and fuzzed. A malformed message (lengths, an error message without the quoted
/// request header, a packet without its packet header) is an error; the messages before it are
/// kept in `out`.
pub fn parse_datagram(d: &[u8], out: &mut VecDeque<Msg>) -> Result<(), Error> {
    for m in messages(d) {
        let m = m?;
        match m.ty {
            NLMSG_ERROR => {
                let a = m.ack()?;
                let seq = a.request_seq.ok_or(Error::Malformed("netlink error message"))?;
                out.push_back(if a.errno == 0 { Msg::Ack { seq } } else { Msg::Error { seq, errno: a.errno } });
            }
            NLMSG_DONE => {}
            t if t == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET => out.push_back(Msg::Packet(parse_packet(m.body)?)),
            _ => {} // nothing else is expected on this socket
        }
    }
    Ok(())
}

/// One `NFQNL_MSG_PACKET` body: nfgenmsg, then attributes.
fn parse_packet(body: &[u8]) -> Result<Packet, Error> {
    let mut p =
        Packet { id: 0, hw_protocol: 0, hook: 0, mark: 0, indev: 0, outdev: 0, payload: Vec::new(), cap_len: None };
    let mut have_hdr = false;
    for a in attrs(body.get(4..).unwrap_or(&[])) {
        let a = a?;
        let v = a.data;
        match a.ty {
            NFQA_PACKET_HDR if v.len() >= 7 => {
                p.id = be_u32(v, 0).unwrap_or(0);
                p.hw_protocol = u16::from_be_bytes([v[4], v[5]]);
                p.hook = v[6];
                have_hdr = true;
            }
            NFQA_MARK => p.mark = a.be_u32().unwrap_or(p.mark),
            NFQA_IFINDEX_INDEV => p.indev = a.be_u32().unwrap_or(p.indev),
            NFQA_IFINDEX_OUTDEV => p.outdev = a.be_u32().unwrap_or(p.outdev),
            NFQA_CAP_LEN => p.cap_len = a.be_u32().or(p.cap_len),
            NFQA_PAYLOAD => p.payload = v.to_vec(),
            _ => {}
        }
    }
    if !have_hdr {
        return Err(Error::Malformed("packet (no packet header)"));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put_attr(buf: &mut Vec<u8>, ty: u16, data: &[u8]) {
        buf.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
        buf.extend_from_slice(&ty.to_ne_bytes());
        buf.extend_from_slice(data);
        while buf.len() % 4 != 0 {
            buf.push(0);
        }
    }

    fn nlmsg(ty: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(body);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    #[test]
    fn parses_packets_and_acks_in_one_datagram() {
        let mut body = vec![2, 0, 0x10, 0x68]; // nfgenmsg: AF_INET, v0, queue 4200
        put_attr(&mut body, NFQA_PACKET_HDR, &[0, 0, 1, 2, 0x08, 0x00, 3]);
        put_attr(&mut body, NFQA_MARK, &0x0100_0000u32.to_be_bytes());
        put_attr(&mut body, NFQA_IFINDEX_INDEV, &7u32.to_be_bytes());
        put_attr(&mut body, NFQA_PAYLOAD, &[0x45, 0, 0, 5, 9]);
        put_attr(&mut body, NFQA_CAP_LEN, &1500u32.to_be_bytes());
        let mut d = nlmsg(3 << 8, 0, &body);
        // ack for seq 9 and an error (ENOENT) for seq 10
        let mut ack = 0i32.to_ne_bytes().to_vec();
        ack.extend_from_slice(&nlmsg(0x301, 9, &[])[..16]);
        d.extend_from_slice(&nlmsg(NLMSG_ERROR, 9, &ack));
        let mut err = (-2i32).to_ne_bytes().to_vec();
        err.extend_from_slice(&nlmsg(0x301, 10, &[])[..16]);
        d.extend_from_slice(&nlmsg(NLMSG_ERROR, 10, &err));
        let mut out = VecDeque::new();
        parse_datagram(&d, &mut out).unwrap();
        let Some(Msg::Packet(p)) = out.pop_front() else { panic!("no packet") };
        assert_eq!((p.id, p.hw_protocol, p.hook, p.mark, p.indev), (258, 0x0800, 3, 0x0100_0000, 7));
        assert_eq!(p.payload, vec![0x45, 0, 0, 5, 9]);
        assert!(p.truncated());
        assert_eq!(out.pop_front(), Some(Msg::Ack { seq: 9 }));
        assert_eq!(out.pop_front(), Some(Msg::Error { seq: 10, errno: 2 }));
        assert!(out.is_empty());
    }

    #[test]
    fn rejects_malformed_input() {
        let mut out = VecDeque::new();
        let mut d = nlmsg(3 << 8, 0, &[2, 0, 0, 0]);
        assert!(parse_datagram(&d, &mut out).is_err(), "packet without header");
        d[0] = 200; // length beyond the datagram
        assert!(parse_datagram(&d, &mut out).is_err());
        let mut body = vec![2, 0, 0, 0];
        body.extend_from_slice(&[40, 0, 1, 0]); // attribute claiming 40 bytes
        assert!(parse_datagram(&nlmsg(0x300, 0, &body), &mut out).is_err());
        // an error message must quote the request header (its sequence number is read there)
        let mut good = vec![2, 0, 0, 0];
        put_attr(&mut good, NFQA_PACKET_HDR, &[0, 0, 0, 9, 0x08, 0x00, 1]);
        let mut d = nlmsg(3 << 8, 0, &good);
        d.extend(nlmsg(NLMSG_ERROR, 4, &0i32.to_ne_bytes()));
        out.clear();
        assert_eq!(parse_datagram(&d, &mut out), Err(Error::Malformed("netlink error message")));
        assert!(matches!(out.pop_front(), Some(Msg::Packet(p)) if p.id == 9), "messages before it are kept");
        assert!(parse_datagram(&nlmsg(NLMSG_ERROR, 4, &[0, 0]), &mut out).is_err(), "errno cut short");
    }
}
