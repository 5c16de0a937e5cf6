//! Sockets: netlink, raw ICMP, and the fd flags and buffers they need; interface addresses.

use super::cvt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

fn sockaddr_nl(groups: u32) -> libc::sockaddr_nl {
    // SAFETY: sockaddr_nl is plain old data; all-zero (pid 0 = the kernel / let it choose) is valid.
    let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    sa.nl_groups = groups;
    sa
}

/// A close-on-exec `AF_NETLINK` raw socket of protocol `proto` (`NETLINK_ROUTE`,
/// `NETLINK_NETFILTER`), bound with the kernel choosing the port id and subscribed to the
/// multicast `groups` bitmask (0: requests only).
pub fn netlink_socket(proto: libc::c_int, groups: u32) -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the result is checked, then owned at once.
    let raw = cvt(unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto) })?;
    // SAFETY: `raw` is a fresh fd nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let sa = sockaddr_nl(groups);
    // SAFETY: a valid sockaddr_nl of the size given.
    cvt(unsafe {
        libc::bind(
            raw,
            &sa as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    })?;
    Ok(fd)
}

/// A non-blocking close-on-exec raw IP socket (`AF_INET`/`IPPROTO_ICMP`,
/// `AF_INET6`/`IPPROTO_ICMPV6`).
pub fn raw_socket(family: libc::c_int, proto: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the result is checked, then owned at once.
    let raw = cvt(unsafe { libc::socket(family, libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, proto) })?;
    // SAFETY: `raw` is a fresh fd nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Ask for a receive buffer of `bytes`: with `force`, `SO_RCVBUFFORCE` first (needs
/// CAP_NET_ADMIN; above `rmem_max`), falling back to `SO_RCVBUF`.
pub fn set_rcvbuf(fd: BorrowedFd<'_>, bytes: u32, force: bool) -> io::Result<()> {
    let v = bytes.min(i32::MAX as u32) as libc::c_int;
    let set = |opt| {
        // SAFETY: setsockopt reads one c_int of the size given from a valid pointer.
        cvt(unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                &v as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        })
    };
    if force && set(libc::SO_RCVBUFFORCE).is_ok() {
        return Ok(());
    }
    set(libc::SO_RCVBUF).map(|_| ())
}

/// Switch `O_NONBLOCK` on or off.
pub fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    // SAFETY: fcntl F_GETFL/F_SETFL on an open fd, no pointers involved.
    unsafe {
        let fl = cvt(libc::fcntl(fd.as_raw_fd(), libc::F_GETFL))?;
        let fl = if on { fl | libc::O_NONBLOCK } else { fl & !libc::O_NONBLOCK };
        cvt(libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl))?;
    }
    Ok(())
}

/// How [`recv`] waits and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Recv {
    /// `MSG_DONTWAIT`: `WouldBlock` instead of waiting.
    pub dontwait: bool,
    /// `MSG_TRUNC`: return the datagram's real length even if it was longer than the buffer.
    pub trunc: bool,
}

/// `recv(2)` one datagram into `buf`. With [`Recv::trunc`] the result may exceed `buf.len()`
/// (the datagram was cut); otherwise it never does.
pub fn recv(fd: BorrowedFd<'_>, buf: &mut [u8], how: Recv) -> io::Result<usize> {
    let flags = if how.dontwait { libc::MSG_DONTWAIT } else { 0 } | if how.trunc { libc::MSG_TRUNC } else { 0 };
    // SAFETY: buf is a valid writable buffer of buf.len() bytes for the duration of the call.
    let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr() as *mut libc::c_void, buf.len(), flags) };
    cvt(n).map(|n| n as usize)
}

/// `send(2)` `buf` on a connected (or netlink) socket.
pub fn send(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: buf is a valid readable buffer of buf.len() bytes.
    let n = unsafe { libc::send(fd.as_raw_fd(), buf.as_ptr() as *const libc::c_void, buf.len(), 0) };
    cvt(n).map(|n| n as usize)
}

/// `sendto(2)` `buf` to the kernel (netlink port id 0).
pub fn sendto_netlink_kernel(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    let sa = sockaddr_nl(0);
    // SAFETY: valid buffer; a valid sockaddr_nl of the size given.
    let n = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            buf.as_ptr() as *const libc::c_void,
            buf.len(),
            0,
            &sa as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    cvt(n).map(|n| n as usize)
}

/// `sendto(2)` `buf` on a raw IP socket to `dst` (port 0).
pub fn sendto_ip(fd: BorrowedFd<'_>, buf: &[u8], dst: IpAddr) -> io::Result<usize> {
    let n = match dst {
        IpAddr::V4(a) => {
            // SAFETY: sockaddr_in is plain old data; all-zero is valid.
            let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            sa.sin_family = libc::AF_INET as libc::sa_family_t;
            sa.sin_addr.s_addr = u32::from_ne_bytes(a.octets());
            // SAFETY: valid buffer; a valid sockaddr_in of the size given.
            unsafe {
                libc::sendto(
                    fd.as_raw_fd(),
                    buf.as_ptr() as *const libc::c_void,
                    buf.len(),
                    0,
                    &sa as *const _ as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                )
            }
        }
        IpAddr::V6(a) => {
            // SAFETY: sockaddr_in6 is plain old data; all-zero is valid.
            let mut sa: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sa.sin6_addr.s6_addr = a.octets();
            // SAFETY: valid buffer; a valid sockaddr_in6 of the size given.
            unsafe {
                libc::sendto(
                    fd.as_raw_fd(),
                    buf.as_ptr() as *const libc::c_void,
                    buf.len(),
                    0,
                    &sa as *const _ as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                )
            }
        }
    };
    cvt(n).map(|n| n as usize)
}

/// The first IPv4 (or IPv6, for `v6`) address of interface `dev`, if any (`getifaddrs`).
pub fn interface_addr(dev: &str, v6: bool) -> Option<IpAddr> {
    let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs allocates a list we free below; we only read it in between.
    if unsafe { libc::getifaddrs(&mut ifap) } != 0 {
        return None;
    }
    let mut found = None;
    let mut p = ifap;
    while !p.is_null() {
        // SAFETY: p is a non-null node of the list returned by getifaddrs, alive until freeifaddrs.
        let ifa = unsafe { &*p };
        p = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a non-null NUL-terminated string owned by the list.
        let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) };
        if name.to_bytes() != dev.as_bytes() {
            continue;
        }
        // SAFETY: ifa_addr is non-null and points at a sockaddr; its family tells which one.
        let fam = unsafe { (*ifa.ifa_addr).sa_family } as i32;
        if fam == libc::AF_INET && !v6 {
            // SAFETY: family AF_INET means the sockaddr is a sockaddr_in.
            let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
            found = Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))));
            break;
        }
        if fam == libc::AF_INET6 && v6 {
            // SAFETY: family AF_INET6 means the sockaddr is a sockaddr_in6.
            let sin6 = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
            found = Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)));
            break;
        }
    }
    // SAFETY: ifap came from a successful getifaddrs and is freed exactly once; no reference
    // into the list survives this point.
    unsafe { libc::freeifaddrs(ifap) };
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    // Under qemu-user (how the mips unit tests run) musl's getifaddrs did not return within
    // minutes on 2026-12-01; not investigated yet, so the test runs natively only.
    #[cfg_attr(target_arch = "mips", ignore = "getifaddrs hangs under qemu-mips (open item)")]
    fn loopback_has_127_0_0_1() {
        assert_eq!(interface_addr("lo", false), Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert_eq!(interface_addr("no-such-if0", false), None);
    }
}
