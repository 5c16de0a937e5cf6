//! A netlink socket with request/acknowledge and dump exchanges (rtnetlink and the nftables
//! monitor use it; the queue has its own, see [`super::queue`]).

use super::{messages, Message, NLMSG_DONE, NLMSG_ERROR};
use crate::sys;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

/// A netlink socket (`NETLINK_ROUTE` from [`Socket::open`], `NETLINK_NETFILTER` from
/// [`Socket::open_nft_monitor`]).
pub struct Socket {
    fd: OwnedFd,
    seq: u32,
}

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for Socket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Room for one request moat sends on these sockets (the biggest, a rule, is 64 bytes).
pub(super) const REQ_MAX: usize = 128;

impl Socket {
    /// Open a socket of netlink protocol `proto` subscribed to the multicast `groups` bitmask.
    pub(super) fn open_proto(proto: libc::c_int, groups: u32) -> io::Result<Socket> {
        Ok(Socket { fd: sys::netlink_socket(proto, groups)?, seq: 1 })
    }

    /// The next sequence number.
    pub(super) fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Encode with `build` (given a sequence number) and send; returns the sequence number.
    pub(super) fn send(
        &mut self,
        build: impl FnOnce(&mut [u8], u32) -> Result<usize, super::Error>,
    ) -> io::Result<u32> {
        let seq = self.next_seq();
        let mut buf = [0u8; REQ_MAX];
        let n = build(&mut buf, seq)?;
        sys::send(self.fd.as_fd(), &buf[..n])?;
        Ok(seq)
    }

    /// Send `buf` (already encoded, e.g. an nfnetlink batch of several messages) as one datagram.
    pub(super) fn send_bytes(&self, buf: &[u8]) -> io::Result<()> {
        sys::send(self.fd.as_fd(), buf).map(drop)
    }

    /// Receive one datagram (blocking unless the socket is non-blocking).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        sys::recv(self.fd.as_fd(), buf, sys::Recv::default())
    }

    /// Receive one datagram without waiting: `None` if nothing is pending.
    pub(super) fn recv_nowait(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match sys::recv(self.fd.as_fd(), buf, sys::Recv { dontwait: true, trunc: false }) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Send a request (`build` encodes it with `NLM_F_ACK` into the buffer, with the sequence
    /// number given, and returns its length) and wait for its acknowledgement; a netlink error
    /// becomes an `io::Error` with its errno.
    pub(super) fn request(
        &mut self,
        build: impl FnOnce(&mut [u8], u32) -> Result<usize, super::Error>,
    ) -> io::Result<()> {
        let seq = self.send(build)?;
        let mut buf = vec![0u8; 8192];
        loop {
            let n = self.recv(&mut buf)?;
            for m in messages(&buf[..n]).map_while(Result::ok) {
                if m.seq == seq && m.ty == NLMSG_ERROR {
                    let a = m.ack()?;
                    return if a.errno == 0 { Ok(()) } else { Err(io::Error::from_raw_os_error(a.errno)) };
                }
            }
        }
    }

    /// Send a dump request and hand every reply message (up to `NLMSG_DONE`) to `each`.
    pub(super) fn dump(
        &mut self,
        build: impl FnOnce(&mut [u8], u32) -> Result<usize, super::Error>,
        mut each: impl FnMut(&Message<'_>),
    ) -> io::Result<()> {
        let seq = self.send(build)?;
        let mut buf = vec![0u8; 32768];
        loop {
            let n = self.recv(&mut buf)?;
            for m in messages(&buf[..n]).map_while(Result::ok) {
                if m.seq != seq {
                    continue;
                }
                match m.ty {
                    NLMSG_DONE => return Ok(()),
                    NLMSG_ERROR => {
                        let a = m.ack()?;
                        if a.errno != 0 {
                            return Err(io::Error::from_raw_os_error(a.errno));
                        }
                    }
                    _ => each(&m),
                }
            }
        }
    }
}
