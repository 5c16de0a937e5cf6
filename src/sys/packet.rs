//! Sending cover packets onto a tunnel device with an `AF_PACKET`/`SOCK_DGRAM` socket.
//!
//! A packet written this way goes straight to the device's transmit path: it skips the routing
//! table and netfilter (so it does not re-enter moat's queue), and on a WireGuard device it is
//! encrypted and sent to the peer like any other inner packet. On a layer-3 device (WireGuard,
//! TUN) no link-layer address is needed; for Ethernet-like devices (veth in tests) the
//! destination MAC is given.

use super::ifindex;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;

/// An open sender for one interface (by name: if the interface is re-created, e.g. wireguard-go
/// restarted, its new index is looked up on the next send).
pub struct Injector {
    fd: OwnedFd,
    name: String,
    ifindex: std::cell::Cell<i32>,
    dst_mac: Option<[u8; 6]>,
}

impl Injector {
    /// Open a sender for interface `ifname` (current network namespace). `dst_mac` is the
    /// link-layer destination for Ethernet-like devices; `None` for WireGuard/TUN.
    pub fn open(ifname: &str, dst_mac: Option<[u8; 6]>) -> io::Result<Injector> {
        let ifindex = ifindex(ifname)?;
        // Protocol 0: this socket only sends, it receives nothing.
        use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
        let fd =
            socket(AddressFamily::Packet, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None).map_err(super::net::io)?;
        Ok(Injector { fd, name: ifname.to_string(), ifindex: std::cell::Cell::new(ifindex), dst_mac })
    }

    /// Send one IPv4 or IPv6 packet (the protocol is taken from its version nibble). If the
    /// interface index is gone (`ENXIO`), the name is looked up again and the send retried once.
    pub fn send(&self, pkt: &[u8]) -> io::Result<()> {
        match self.send_once(pkt) {
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                let i = ifindex(&self.name)?;
                if i == self.ifindex.get() {
                    return Err(e);
                }
                self.ifindex.set(i);
                self.send_once(pkt)
            }
            r => r,
        }
    }

    fn send_once(&self, pkt: &[u8]) -> io::Result<()> {
        let proto = match pkt.first().map(|b| b >> 4) {
            Some(4) => ETH_P_IP,
            Some(6) => ETH_P_IPV6,
            _ => return Err(io::Error::new(io::ErrorKind::InvalidInput, "not an IP packet")),
        };
        // SAFETY: sockaddr_ll is plain old data; all-zero is valid (fields set below).
        let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sa.sll_family = libc::AF_PACKET as u16;
        sa.sll_protocol = proto.to_be();
        sa.sll_ifindex = self.ifindex.get();
        if let Some(m) = self.dst_mac {
            sa.sll_halen = 6;
            sa.sll_addr[..6].copy_from_slice(&m);
        }
        loop {
            // SAFETY: pkt is a valid readable buffer; sa a valid sockaddr_ll of the size given.
            let r = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    pkt.as_ptr() as *const libc::c_void,
                    pkt.len(),
                    0,
                    &sa as *const _ as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                )
            };
            if r >= 0 {
                return if r as usize == pkt.len() {
                    Ok(())
                } else {
                    Err(io::Error::new(io::ErrorKind::WriteZero, "short AF_PACKET send"))
                };
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// The interface index this injector sends on.
    pub fn ifindex(&self) -> i32 {
        self.ifindex.get()
    }
}

impl AsRawFd for Injector {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
