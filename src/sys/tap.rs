//! Reading control messages off a tunnel device: an `AF_PACKET`/`SOCK_DGRAM` receive socket
//! bound to one interface, with a classic BPF filter so the kernel copies only packets whose
//! body starts with the control magic (the tap sees every packet of the device otherwise).
//!
//! The tap sees an incoming packet before the IP layer (which then drops a cover packet for its
//! bad checksum / next header 59), so control messages in cover packets can be read although
//! the kernel discards them. Outgoing packets (our own cover) are skipped
//! (`PACKET_IGNORE_OUTGOING`, and the packet type is checked as well for older kernels).

use super::ifindex;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

const ETH_P_ALL: u16 = 0x0003;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
const PACKET_OUTGOING: u8 = 4;

/// A receive tap on one interface for packets whose body (after a 20-byte IPv4 header without
/// options, or the 40-byte IPv6 header) starts with `magic`.
pub struct Tap {
    fd: OwnedFd,
}

fn bpf(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

impl Tap {
    /// Open a non-blocking tap on `ifname` (current network namespace) for bodies starting with
    /// `magic`.
    pub fn open(ifname: &str, magic: [u8; 4]) -> io::Result<Tap> {
        let idx = ifindex(ifname)?;
        use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
        let fd =
            socket(AddressFamily::Packet, SockType::Datagram, SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK, None)
                .map_err(super::net::io)?;
        let m = u32::from_be_bytes(magic);
        // ldb [0]; jeq 0x45 ? ipv4 : v6check; ipv4: ld [20]; jeq m ? accept : drop;
        // v6check: and 0xf0; jeq 0x60 ? ld [40] : drop; jeq m ? accept : drop
        let prog = [
            bpf(0x30, 0, 0, 0),
            bpf(0x15, 0, 2, 0x45),
            bpf(0x20, 0, 0, 20),
            bpf(0x15, 5, 4, m),
            bpf(0x54, 0, 0, 0xf0),
            bpf(0x15, 0, 2, 0x60),
            bpf(0x20, 0, 0, 40),
            bpf(0x15, 1, 0, m),
            bpf(0x06, 0, 0, 0),
            bpf(0x06, 0, 0, 0xffff),
        ];
        let fprog = libc::sock_fprog { len: prog.len() as u16, filter: prog.as_ptr() as *mut _ };
        // SAFETY: fprog points at `prog`, alive for the call; the kernel copies the program.
        super::cvt(unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ATTACH_FILTER,
                &fprog as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
            )
        })?;
        let one: libc::c_int = 1;
        // SAFETY: a c_int option value of the size given. Failure (kernel < 4.20) is fine: the
        // packet type is checked on receive too.
        let _ = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                PACKET_IGNORE_OUTGOING,
                &one as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        // SAFETY: sockaddr_ll is plain old data; all-zero is valid (fields set below).
        let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sa.sll_family = libc::AF_PACKET as u16;
        sa.sll_protocol = ETH_P_ALL.to_be();
        sa.sll_ifindex = idx;
        // SAFETY: sa is a valid sockaddr_ll of the size given.
        super::cvt(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &sa as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })?;
        Ok(Tap { fd })
    }

    /// Receive one incoming packet into `buf` (its length; cut to `buf.len()`), or `WouldBlock`.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // SAFETY: sockaddr_ll is plain old data; the kernel fills it.
            let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut sl = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            // SAFETY: buf is writable for buf.len() bytes; sa/sl describe a valid address buffer.
            let r = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                    0,
                    &mut sa as *mut _ as *mut libc::sockaddr,
                    &mut sl,
                )
            };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if sa.sll_pkttype == PACKET_OUTGOING {
                continue;
            }
            return Ok(r as usize);
        }
    }
}

impl AsRawFd for Tap {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for Tap {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
