//! A line on stderr when the process dies of a trap or an abort.
//!
//! The release binaries are built with `-Cpanic=immediate-abort` (docs/DESIGN.md, Build): a panic
//! executes a trap instruction at once, without a message. This handler turns that into one line
//! on stderr (procd passes it to syslog): the signal, the thread's name and the address of the
//! trap, which names the function in the unstripped twin that `scripts/cross.sh` keeps next to
//! the binary (`llvm-symbolizer --obj=moat.syms ADDR`). Then the process dies of the same
//! signal, as it would have without the handler.

/// The trap of an aborting panic (SIGTRAP: mips `break`, aarch64 `brk`; SIGILL: x86 `ud2`, arm
/// `udf`) and `abort()` (SIGABRT). SIGSEGV/SIGBUS stay with std (its stack-overflow report).
const SIGNALS: [libc::c_int; 3] = [libc::SIGTRAP, libc::SIGILL, libc::SIGABRT];

/// Install the handler for the whole process (its line starts with `moat: `).
pub fn report_crashes() {
    for sig in SIGNALS {
        // SAFETY: a zeroed sigaction is valid (empty mask, no flags); the handler is an
        // `extern "C"` function of the SA_SIGINFO signature that only makes async-signal-safe
        // calls (write, prctl, raise). SA_RESETHAND restores the default action on entry.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_crash as *const () as libc::sighandler_t;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESETHAND;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// A fixed buffer the handler formats into (no allocation in a signal handler).
struct Line {
    buf: [u8; 256],
    len: usize,
}

impl Line {
    fn push(&mut self, s: &[u8]) {
        for &b in s {
            if self.len < self.buf.len() {
                self.buf[self.len] = b;
                self.len += 1;
            }
        }
    }

    fn hex(&mut self, v: usize) {
        let mut digits = [0u8; 2 * std::mem::size_of::<usize>()];
        for (i, d) in digits.iter_mut().rev().enumerate() {
            *d = b"0123456789abcdef"[(v >> (4 * i)) & 0xf];
        }
        self.push(b"0x");
        self.push(&digits);
    }
}

/// The line for `sig` in thread `thread` at `pc` (0: unknown).
fn crash_line(sig: libc::c_int, thread: &[u8], pc: usize) -> Line {
    let mut l = Line { buf: [0; 256], len: 0 };
    let name: &[u8] = match sig {
        libc::SIGTRAP => b"SIGTRAP",
        libc::SIGILL => b"SIGILL",
        libc::SIGABRT => b"SIGABRT",
        _ => b"signal",
    };
    l.push(b"moat: internal error (a bug, please report it): ");
    l.push(name);
    l.push(b" in thread '");
    l.push(thread);
    l.push(b"'");
    if pc != 0 {
        l.push(b" at ");
        l.hex(pc);
    }
    l.push(b" (a panic: this build prints no panic message, docs/DESIGN.md); exiting\n");
    l
}

extern "C" fn on_crash(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let mut thread = [0u8; 16];
    // SAFETY: PR_GET_NAME writes at most 16 bytes (NUL included) into the buffer.
    unsafe { libc::prctl(libc::PR_GET_NAME, thread.as_mut_ptr() as libc::c_ulong, 0, 0, 0) };
    let tlen = thread.iter().position(|&b| b == 0).unwrap_or(thread.len());
    let line = crash_line(sig, &thread[..tlen], pc(info, ctx));
    // SAFETY: write(2) from our own buffer; raise(2) of a signal whose action is back to default
    // (SA_RESETHAND): it is blocked while the handler runs and kills the process on return.
    unsafe {
        libc::write(2, line.buf.as_ptr() as *const libc::c_void, line.len);
        libc::raise(sig);
    }
}

/// The address of the faulting instruction, from the signal's context (0 if unknown).
fn pc(info: *mut libc::siginfo_t, ctx: *mut libc::c_void) -> usize {
    if ctx.is_null() || info.is_null() {
        return 0;
    }
    // SAFETY: with SA_SIGINFO the kernel passes a valid siginfo and ucontext to the handler.
    unsafe {
        // a raise()/kill() (SI_USER, SI_TKILL: si_code <= 0) has no faulting instruction
        if (*info).si_code <= 0 {
            return 0;
        }
        context_pc(ctx)
    }
}

#[cfg(target_arch = "x86_64")]
unsafe fn context_pc(ctx: *mut libc::c_void) -> usize {
    // SAFETY: the caller passes the handler's ucontext.
    unsafe { (*(ctx as *const libc::ucontext_t)).uc_mcontext.gregs[libc::REG_RIP as usize] as usize }
}

#[cfg(target_arch = "aarch64")]
unsafe fn context_pc(ctx: *mut libc::c_void) -> usize {
    // SAFETY: the caller passes the handler's ucontext.
    unsafe { (*(ctx as *const libc::ucontext_t)).uc_mcontext.pc as usize }
}

#[cfg(target_arch = "arm")]
unsafe fn context_pc(ctx: *mut libc::c_void) -> usize {
    // SAFETY: the caller passes the handler's ucontext.
    unsafe { (*(ctx as *const libc::ucontext_t)).uc_mcontext.arm_pc as usize }
}

#[cfg(target_arch = "mips")]
unsafe fn context_pc(ctx: *mut libc::c_void) -> usize {
    // o32 ucontext (libc has no type for it): uc_flags, uc_link, uc_stack (12 bytes), then the
    // 8-aligned sigcontext at 24: sc_regmask, sc_status, sc_pc (u64) at 32.
    // SAFETY: the caller passes the handler's ucontext, which is larger than 40 bytes.
    unsafe { std::ptr::read_unaligned((ctx as *const u8).add(32) as *const u64) as usize }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "arm", target_arch = "mips")))]
unsafe fn context_pc(_ctx: *mut libc::c_void) -> usize {
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_signal_thread_and_address() {
        let l = crash_line(libc::SIGTRAP, b"moat-packet", 0x4a_3f10);
        let s = std::str::from_utf8(&l.buf[..l.len]).unwrap();
        let pc = if cfg!(target_pointer_width = "64") { "0x00000000004a3f10" } else { "0x004a3f10" };
        assert!(
            s.starts_with(&format!(
                "moat: internal error (a bug, please report it): SIGTRAP in thread 'moat-packet' at {pc} ("
            )),
            "{s}"
        );
        assert!(s.ends_with("exiting\n"), "{s}");
        let l = crash_line(libc::SIGABRT, b"main", 0);
        let s = std::str::from_utf8(&l.buf[..l.len]).unwrap();
        assert!(s.contains("SIGABRT in thread 'main' (a panic"), "{s}");
    }

    /// The handler in a forked child: it must print the line and the child must still die of
    /// the signal. (fork, not a re-run of the test binary: under qemu-user there is no binfmt.)
    #[test]
    fn a_trap_prints_the_line_and_kills_with_the_signal() {
        let mut fds = [0; 2];
        // SAFETY: pipe fills the two fds; the child makes only async-signal-safe calls (dup2,
        // sigaction in report_crashes, raise, _exit) before it dies; the parent reads the pipe
        // to its end and reaps the child.
        let (status, err) = unsafe {
            assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
            let pid = libc::fork();
            assert!(pid >= 0);
            if pid == 0 {
                libc::dup2(fds[1], 2);
                report_crashes();
                libc::raise(libc::SIGTRAP);
                libc::_exit(0); // not reached: the raise kills
            }
            libc::close(fds[1]);
            let mut err = Vec::new();
            let mut buf = [0u8; 512];
            loop {
                let n = libc::read(fds[0], buf.as_mut_ptr() as *mut libc::c_void, buf.len());
                if n <= 0 {
                    break;
                }
                err.extend_from_slice(&buf[..n as usize]);
            }
            libc::close(fds[0]);
            let mut status = 0;
            assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
            (status, String::from_utf8_lossy(&err).into_owned())
        };
        assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGTRAP, "status {status:#x}: {err}");
        assert!(err.starts_with("moat: internal error (a bug, please report it): SIGTRAP in thread '"), "{err}");
        assert!(!err.contains(" at 0x"), "a raise() has no faulting address: {err}");
    }
}
