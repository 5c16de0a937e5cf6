//! Netlink: one checked, allocation-free message and attribute layer, and the three protocols
//! moat speaks on top of it: [`route`] (rtnetlink rules, routes, links, addresses and their
//! monitor), [`nftmon`] (the nftables change monitor) and [`queue`] (nfnetlink_queue).
//!
//! Reading: [`messages`] walks the `nlmsghdr`s of a datagram and [`attrs`] the `nlattr`s of a
//! message body; both check every length against the buffer before slicing and yield
//! [`Error::Malformed`] (then stop) instead of ever indexing past the end. [`Message::ack`] reads
//! an `NLMSG_ERROR` body with its length checked. Writing: [`Builder`] encodes one message
//! into a caller's buffer (no allocation), padding every part to 4 bytes.
//!
//! Netlink headers and attribute headers are in host byte order; payloads are whatever the
//! protocol says (rtnetlink: host order, nfnetlink: network order); the readers here are explicit
//! about which, so the code is right on big-endian MIPS too.

pub mod neigh;
pub mod nftables;
pub mod nftmon;
pub mod queue;
pub mod route;
mod socket;

pub use nftmon::{parse_nft, NftCommit, NftEvent, NftWatch, NFNLGRP_NFTABLES, NFPROTO_INET};
pub use route::{
    dump_addrs, AddrInfo, Event, LinkInfo, Route, Rule, PROTO_MOAT, RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR, RTMGRP_LINK,
};
pub use socket::Socket;

use std::fmt;

/// Length of `struct nlmsghdr`.
pub const NLMSG_HDRLEN: usize = 16;
/// Length of `struct nlattr`.
pub const NLA_HDRLEN: usize = 4;
/// `NLM_F_REQUEST`.
pub const NLM_F_REQUEST: u16 = 0x1;
/// `NLM_F_ACK`.
pub const NLM_F_ACK: u16 = 0x4;
/// `NLM_F_EXCL`.
pub const NLM_F_EXCL: u16 = 0x200;
/// `NLM_F_CREATE`.
pub const NLM_F_CREATE: u16 = 0x400;
/// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
pub const NLM_F_DUMP: u16 = 0x300;
/// `NLMSG_ERROR`: an error or (errno 0) an acknowledgement.
pub const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`: end of a dump.
pub const NLMSG_DONE: u16 = 3;
/// Attribute type bits that are flags (`NLA_F_NESTED`, `NLA_F_NET_BYTEORDER`), not the type.
const NLA_TYPE_MASK: u16 = !(0x8000 | 0x4000);

/// Why netlink bytes could not be read or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Received bytes are inconsistent: a length field below its header's size or beyond the
    /// buffer, or a required part missing. The text names the part.
    Malformed(&'static str),
    /// A message to send does not fit the caller's buffer (or the 16-bit attribute length).
    NoSpace,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Malformed(what) => write!(f, "netlink: malformed {what}"),
            Error::NoSpace => f.write_str("netlink: message too long for its buffer"),
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidData, e)
    }
}

/// 4-byte netlink alignment.
pub const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// A host-order u16 at `at`, if the bytes are there.
pub fn ne_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at.checked_add(2)?)?.try_into().ok()?))
}

/// A host-order u32 at `at`, if the bytes are there.
pub fn ne_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

/// A network-order u32 at `at`, if the bytes are there.
pub fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

/// A NUL-terminated (or unterminated) string attribute, lossily decoded.
pub fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// One netlink message: its header fields and its body (everything after the `nlmsghdr`,
/// exactly `nlmsg_len - 16` bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    /// `nlmsg_type`.
    pub ty: u16,
    /// `nlmsg_flags`.
    pub flags: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
    /// `nlmsg_pid`.
    pub pid: u32,
    /// The body.
    pub body: &'a [u8],
}

/// The body of an `NLMSG_ERROR` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// Positive errno, or 0 for a plain acknowledgement.
    pub errno: i32,
    /// `nlmsg_seq` of the request it answers, from the quoted request header (`None` if the
    /// kernel quoted less than a header, which it never does).
    pub request_seq: Option<u32>,
}

impl<'a> Message<'a> {
    /// The body of an `NLMSG_ERROR` message: the errno (length-checked) and the quoted
    /// request's sequence number. `Malformed` if the body is shorter than the errno.
    pub fn ack(&self) -> Result<Ack, Error> {
        let err = ne_u32(self.body, 0).ok_or(Error::Malformed("netlink error message"))? as i32;
        Ok(Ack { errno: err.checked_neg().unwrap_or(i32::MAX), request_seq: ne_u32(self.body, 4 + 8) })
    }

    /// Split the body into a fixed header of `fixed` bytes (e.g. 16 for `ifinfomsg`) and its
    /// attributes (starting at the aligned end of the header). `Malformed` if the body is shorter
    /// than the fixed header.
    pub fn split(&self, fixed: usize) -> Result<(&'a [u8], Attrs<'a>), Error> {
        let head = self.body.get(..fixed).ok_or(Error::Malformed("message header"))?;
        let rest = self.body.get(align4(fixed)..).unwrap_or(&[]);
        Ok((head, attrs(rest)))
    }
}

/// Iterator over the messages of a datagram; see [`messages`].
#[derive(Debug, Clone)]
pub struct Messages<'a> {
    rest: &'a [u8],
}

/// The netlink messages in `buf`. Trailing bytes shorter than a header are ignored (as the
/// kernel's `nlmsg_ok` does); a header whose length is below 16 or beyond the datagram yields
/// one `Err(Malformed)` and ends the iteration.
pub fn messages(buf: &[u8]) -> Messages<'_> {
    Messages { rest: buf }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<Message<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let d = self.rest;
        if d.len() < NLMSG_HDRLEN {
            return None;
        }
        let len = ne_u32(d, 0)? as usize;
        if len < NLMSG_HDRLEN || len > d.len() {
            self.rest = &[];
            return Some(Err(Error::Malformed("netlink header")));
        }
        let m = Message {
            ty: ne_u16(d, 4)?,
            flags: ne_u16(d, 6)?,
            seq: ne_u32(d, 8)?,
            pid: ne_u32(d, 12)?,
            body: &d[NLMSG_HDRLEN..len],
        };
        self.rest = d.get(align4(len)..).unwrap_or(&[]);
        Some(Ok(m))
    }
}

/// One attribute: its type (flag bits masked off) and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr<'a> {
    /// `nla_type & NLA_TYPE_MASK`.
    pub ty: u16,
    /// The payload (`nla_len - 4` bytes).
    pub data: &'a [u8],
}

impl Attr<'_> {
    /// The payload as a host-order u32 (rtnetlink), if it has at least 4 bytes.
    pub fn ne_u32(&self) -> Option<u32> {
        ne_u32(self.data, 0)
    }
    /// The payload as a network-order u32 (nfnetlink), if it has at least 4 bytes.
    pub fn be_u32(&self) -> Option<u32> {
        be_u32(self.data, 0)
    }
}

/// Iterator over attributes; see [`attrs`].
#[derive(Debug, Clone)]
pub struct Attrs<'a> {
    rest: &'a [u8],
}

/// The attributes in `buf`. Trailing bytes shorter than an attribute header are ignored; an
/// attribute whose length is below 4 or beyond the buffer yields one `Err(Malformed)` and ends
/// the iteration.
pub fn attrs(buf: &[u8]) -> Attrs<'_> {
    Attrs { rest: buf }
}

impl<'a> Attrs<'a> {
    /// The well-formed attributes, stopping silently at the first malformed one (for readers
    /// that take what they can, like the route dumps).
    pub fn lenient(self) -> impl Iterator<Item = Attr<'a>> {
        self.map_while(Result::ok)
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<Attr<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let d = self.rest;
        if d.len() < NLA_HDRLEN {
            return None;
        }
        let len = ne_u16(d, 0)? as usize;
        if len < NLA_HDRLEN || len > d.len() {
            self.rest = &[];
            return Some(Err(Error::Malformed("attribute")));
        }
        let a = Attr { ty: ne_u16(d, 2)? & NLA_TYPE_MASK, data: &d[NLA_HDRLEN..len] };
        self.rest = d.get(align4(len)..).unwrap_or(&[]);
        Some(Ok(a))
    }
}

/// Encodes one netlink message into a caller's buffer: header, then [`Builder::bytes`] (a
/// fixed protocol header) and [`Builder::attr`]s, each padded to 4 bytes. Running out of room
/// is remembered and reported by [`Builder::finish`], so calls chain without checks.
#[derive(Debug)]
pub struct Builder<'b> {
    buf: &'b mut [u8],
    len: usize,
    full: bool,
}

impl<'b> Builder<'b> {
    /// Start a message of type `ty` with `flags` (`NLM_F_REQUEST` is added) and sequence `seq`.
    pub fn new(buf: &'b mut [u8], ty: u16, flags: u16, seq: u32) -> Builder<'b> {
        let mut b = Builder { buf, len: 0, full: false };
        let mut h = [0u8; NLMSG_HDRLEN];
        h[4..6].copy_from_slice(&ty.to_ne_bytes());
        h[6..8].copy_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        h[8..12].copy_from_slice(&seq.to_ne_bytes());
        b.put(&h);
        b
    }

    fn put(&mut self, data: &[u8]) {
        self.put_zeroed(data, 0);
    }

    /// Append `data`, then `zeros` zero bytes, then padding to 4.
    fn put_zeroed(&mut self, data: &[u8], zeros: usize) {
        let end = self.len + align4(data.len() + zeros);
        if self.full || end > self.buf.len() {
            self.full = true;
            return;
        }
        self.buf[self.len..self.len + data.len()].copy_from_slice(data);
        self.buf[self.len + data.len()..end].fill(0);
        self.len = end;
    }

    /// Append a fixed header (e.g. `rtmsg`, `nfgenmsg`), padded to 4.
    pub fn bytes(&mut self, data: &[u8]) -> &mut Self {
        self.put(data);
        self
    }

    /// Append attribute `ty` with payload `data`.
    pub fn attr(&mut self, ty: u16, data: &[u8]) -> &mut Self {
        self.attr_padded(ty, data, 0)
    }

    /// Append attribute `ty` whose payload is `data` followed by `zeros` zero bytes.
    pub fn attr_padded(&mut self, ty: u16, data: &[u8], zeros: usize) -> &mut Self {
        let Ok(len) = u16::try_from(NLA_HDRLEN + data.len() + zeros) else {
            self.full = true;
            return self;
        };
        let mut h = [0u8; NLA_HDRLEN];
        h[..2].copy_from_slice(&len.to_ne_bytes());
        h[2..].copy_from_slice(&ty.to_ne_bytes());
        if self.len + NLA_HDRLEN + align4(data.len() + zeros) > self.buf.len() {
            self.full = true;
        }
        self.put(&h);
        self.put_zeroed(data, zeros);
        self
    }

    /// Open a nested attribute `ty` (`NLA_F_NESTED` set); attributes appended until
    /// [`Builder::nest_end`] with the returned position are its payload.
    pub fn nest_begin(&mut self, ty: u16) -> usize {
        let at = self.len;
        self.attr(ty | 0x8000, &[]);
        at
    }

    /// Close the nested attribute opened at `at` by [`Builder::nest_begin`] (writes its length).
    pub fn nest_end(&mut self, at: usize) -> &mut Self {
        match u16::try_from(self.len - at) {
            Ok(len) if !self.full => self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes()),
            _ => self.full = true,
        }
        self
    }

    /// Append a network-order u32 attribute (nfnetlink).
    pub fn attr_be_u32(&mut self, ty: u16, v: u32) -> &mut Self {
        self.attr(ty, &v.to_be_bytes())
    }

    /// Append a NUL-terminated string attribute.
    pub fn attr_str(&mut self, ty: u16, s: &str) -> &mut Self {
        self.attr_padded(ty, s.as_bytes(), 1)
    }

    /// Append a host-order u32 attribute (rtnetlink).
    pub fn attr_ne_u32(&mut self, ty: u16, v: u32) -> &mut Self {
        self.attr(ty, &v.to_ne_bytes())
    }

    /// Write the total length into the header; the message is `&buf[..n]`. `NoSpace` if any
    /// part did not fit.
    pub fn finish(&mut self) -> Result<usize, Error> {
        if self.full {
            return Err(Error::NoSpace);
        }
        self.buf[..4].copy_from_slice(&(self.len as u32).to_ne_bytes());
        Ok(self.len)
    }
}

#[cfg(test)]
mod tests;
