//! Every `unsafe` libc call of moat, behind safe wrappers: sockets (netlink, raw ICMP,
//! `AF_PACKET`), fds, the monotonic clock, timerfd, signalfd, `poll`, real-time scheduling,
//! `getrandom(2)`, interface lookups (`if_nametoindex`, `getifaddrs`), process liveness and the
//! crash line on a trap ([`report_crashes`]).
//!
//! Nothing outside this module writes `unsafe`; each block here carries a `// SAFETY:` comment.
//! The wrappers are thin (one syscall each, errors as [`std::io::Error`]) so the protocol and
//! policy code above stays testable without a kernel. Where `nix` has a safe wrapper for a call
//! it is used (sockets, timerfd, clock, `getifaddrs`, `if_nametoindex`, `fcntl`, `setrlimit`,
//! `kill`; its mipsel cost is in ARCHITECTURE.md); libc remains for what nix does not cover or
//! covers awkwardly: `getrandom(2)`, the raw `sched_setscheduler` syscall, `poll` over the
//! daemon's `pollfd` array, the signalfd set-up, and `sendto` with a `sockaddr_ll`.

mod crash;
mod net;
mod packet;
mod signal;
mod tap;
mod time;

pub use crash::report_crashes;
pub use net::{
    interface_addr, netlink_socket, raw_socket, recv, send, sendto_ip, sendto_netlink_kernel, set_nonblocking,
    set_rcvbuf, Recv,
};
pub use packet::Injector;
pub use signal::{read_signals, signalfd};
pub use tap::Tap;
pub use time::{monotonic_us, set_realtime, Timer};

use std::io;

/// `Err(last_os_error)` for a negative syscall result.
fn cvt<T: Copy + Default + PartialOrd>(r: T) -> io::Result<T> {
    if r < T::default() {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// The interface index of `name` in the current network namespace (the one `if_nametoindex`
/// lookup of the crate). An OS error (`ENODEV`) if there is no such interface.
pub fn ifindex(name: &str) -> io::Result<i32> {
    if name.contains('\0') {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "NUL in interface name"));
    }
    nix::net::if_::if_nametoindex(name).map(|i| i as i32).map_err(net::io)
}

/// Fill `buf` from the kernel's CSPRNG (`getrandom(2)`, blocking until it is seeded). The raw
/// syscall: libc is already a dependency and the `getrandom` crate would add one for a single
/// call on the only OS moat runs on. Retries `EINTR`; any other failure is returned.
pub fn getrandom(buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        // SAFETY: the pointer/length pair describes the unfilled tail of `buf`, writable by us.
        let r = unsafe {
            libc::syscall(
                libc::SYS_getrandom,
                buf[filled..].as_mut_ptr() as *mut libc::c_void,
                buf.len() - filled,
                0 as libc::c_uint,
            )
        };
        if r > 0 {
            filled += r as usize;
        } else {
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }
    Ok(())
}

/// `poll(2)` over `fds` for at most `timeout_ms` (-1: no limit). Returns how many have events.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<usize> {
    // SAFETY: fds is a valid, writable array of fds.len() pollfd for the duration of the call.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    cvt(n).map(|n| n as usize)
}

/// Whether a process `pid` exists (`kill(pid, 0)`; false for `pid` ≤ 0).
pub fn process_alive(pid: i32) -> bool {
    pid > 0 && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

/// Read up to `buf.len()` bytes from `fd` (`read(2)`).
pub fn read(fd: std::os::fd::BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    nix::unistd::read(fd.as_raw_fd(), buf).map_err(net::io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_has_an_index_and_nonsense_has_none() {
        assert!(ifindex("lo").unwrap() > 0);
        assert!(ifindex("no-such-if0").is_err());
        assert!(ifindex("a\0b").is_err());
    }

    #[test]
    fn getrandom_fills_and_varies() {
        let mut a = [0u8; 64];
        let mut b = [0u8; 64];
        getrandom(&mut a).unwrap();
        getrandom(&mut b).unwrap();
        assert_ne!(a, b);
        assert!(process_alive(std::process::id() as i32));
        assert!(!process_alive(0));
    }
}
