//! Clock, timerfd and scheduling.

use super::cvt;
use super::net::io;
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

/// `CLOCK_MONOTONIC` in microseconds: the clock every shaper in the engine runs on.
pub fn monotonic_us() -> u64 {
    // CLOCK_MONOTONIC always exists on Linux; an error cannot happen (0 if it did).
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).unwrap_or(TimeSpec::new(0, 0));
    ts.tv_sec() as u64 * 1_000_000 + ts.tv_nsec() as u64 / 1000
}

/// A non-blocking `CLOCK_MONOTONIC` timerfd armed at absolute times.
pub struct Timer {
    fd: TimerFd,
}

impl Timer {
    /// A new, disarmed timer.
    pub fn new() -> io::Result<Timer> {
        let flags = TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC;
        Ok(Timer { fd: TimerFd::new(ClockId::CLOCK_MONOTONIC, flags).map_err(io)? })
    }

    /// Arm at `at_us` microseconds of [`monotonic_us`] (absolute); `None` disarms.
    pub fn set(&self, at_us: Option<u64>) -> io::Result<()> {
        match at_us {
            Some(t) => {
                let ts = TimeSpec::new((t / 1_000_000) as _, ((t % 1_000_000) * 1000) as _);
                self.fd.set(Expiration::OneShot(ts), TimerSetTimeFlags::TFD_TIMER_ABSTIME)
            }
            None => self.fd.unset(),
        }
        .map_err(io)
    }

    /// Consume the expiry count (0 if the timer has not fired: the fd is non-blocking).
    pub fn read(&self) -> u64 {
        let mut buf = [0u8; 8];
        match super::read(self.fd.as_fd(), &mut buf) {
            Ok(8) => u64::from_ne_bytes(buf),
            _ => 0,
        }
    }
}

impl AsRawFd for Timer {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_fd().as_raw_fd()
    }
}

impl AsFd for Timer {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Runs the calling process with real-time scheduling (`SCHED_FIFO` priority 1, the lowest;
/// children such as `nft` and `ip` start with normal scheduling: `SCHED_RESET_ON_FORK`) when `on`,
/// or back with normal scheduling when not. This is `option realtime` of the main section: it cuts
/// the slot timer's wake-up lateness under CPU contention (BENCHMARKS.md), at a price: a real-time
/// task is never preempted by normal tasks, so a bug that spins would starve the router. Guard:
/// `RLIMIT_RTTIME` - more than 200 ms of CPU without blocking sends SIGXCPU (which ends the daemon;
/// its queues then drop, fail closed), 1 s SIGKILL; the kernel's RT throttling
/// (`sched_rt_runtime_us`, 95 % by default) still leaves normal tasks a share.
pub fn set_realtime(on: bool) -> io::Result<()> {
    let (policy, prio) = if on { (libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, 1) } else { (libc::SCHED_OTHER, 0) };
    if on {
        nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_RTTIME, 200_000, 1_000_000).map_err(io)?;
    }
    // The raw syscall: musl's sched_setscheduler() is a stub returning ENOSYS, and the kernel's
    // struct sched_param is just the priority (musl's has more fields).
    let param: libc::c_int = prio;
    // SAFETY: pid 0 = the calling thread; the kernel reads one int from a valid pointer.
    let r =
        unsafe { libc::syscall(libc::SYS_sched_setscheduler, 0 as libc::pid_t, policy, &param as *const libc::c_int) };
    cvt(r)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_fires_at_an_absolute_time_and_disarms() {
        let t = Timer::new().unwrap();
        assert_eq!(t.read(), 0, "a disarmed timer has nothing to read");
        t.set(Some(monotonic_us() + 2_000)).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(t.read(), 1);
        t.set(Some(monotonic_us() + 1_000)).unwrap();
        t.set(None).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(10));
        assert_eq!(t.read(), 0);
        let a = monotonic_us();
        assert!(monotonic_us() >= a);
    }
}
