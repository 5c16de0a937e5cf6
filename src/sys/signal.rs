//! The daemon's signals through a signalfd.

use super::cvt;
use std::io;
use std::os::fd::RawFd;

/// Block `signals` for the calling thread, ignore `SIGPIPE`, and return a non-blocking
/// close-on-exec signalfd that reports them. (The fd lives as long as the process.)
pub fn signalfd(signals: &[libc::c_int]) -> io::Result<RawFd> {
    // SAFETY: the sigset is a local, initialised by sigemptyset before use; sigprocmask, signal and
    // signalfd only read it. SIG_IGN for SIGPIPE is always a valid disposition.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
        cvt(libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()))?;
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        cvt(libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK))
    }
}

/// Every signal number pending on signalfd `fd` (non-blocking: stops when none is left).
pub fn read_signals(fd: RawFd) -> Vec<u32> {
    let mut out = Vec::new();
    loop {
        // SAFETY: signalfd_siginfo is plain old data; all-zero is a valid value.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let sz = std::mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: reading at most sz bytes into the struct we own.
        let n = unsafe { libc::read(fd, &mut info as *mut _ as *mut libc::c_void, sz) };
        if n != sz as isize {
            break;
        }
        out.push(info.ssi_signo);
    }
    out
}
