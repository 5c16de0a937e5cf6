//! The packet path on a thread of its own: the [`Engine`] (queues, slot timer, cover packets)
//! is served by a dedicated thread that never runs control-plane work.
//!
//! Why a thread for the engine rather than a control worker: the control plane (converge, the
//! apply order, hold on SIGTERM, reload validating first, restoring the table after a foreign
//! deletion) stays one sequential program on the main thread, exactly as before, free to block
//! on `nft`, `iptables-restore`, netlink and the 30 s check; nothing about its ordering had to
//! be re-proved. What crosses the boundary is small and one-way in who waits: the control thread
//! sends a command (new plan, scheduling, status request, shutdown) over a channel, wakes the
//! packet thread through a socket pair it polls next to the queue and timer fds, and waits for
//! the short answer; the packet thread never waits for the control thread (commands are handled
//! between slots, its log lines go to the bounded non-blocking queue of [`super::logging`]).
//! A side effect: `option realtime` now raises only this thread, so the programs and probes of
//! the control thread no longer run at real-time priority's expense of the router.
//! Shared state is channels only (no 64-bit atomics: 32-bit MIPS has none).

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::mailbox::{Queue, Slot};
use super::{poll, timeout_ms, Engine};
use crate::plan::Plan;

/// How long the control thread waits for an answer before giving up on it (the packet thread
/// answers between two slots; this only turns a dead thread into a logged error).
const ANSWER_WAIT: Duration = Duration::from_secs(2);

enum Cmd {
    Plan(Box<Plan>, Slot<Result<(), String>>),
    Realtime(bool, Slot<io::Result<()>>),
    Status(Slot<Option<String>>),
    Shutdown(Slot<Option<String>>),
}

/// Commands waiting for the packet thread (the control thread waits for each answer, so a few
/// at most are ever queued).
const COMMANDS: usize = 16;

/// Handle of the packet thread, owned by the control thread.
pub struct PacketPath {
    tx: Queue<Cmd>,
    wake: UnixStream,
    thread: Option<JoinHandle<()>>,
}

fn no_answer() -> String {
    "the packet thread did not answer".to_string()
}

impl PacketPath {
    /// Start the thread serving `engine`. Call after the signals are blocked (the thread
    /// inherits the mask, so SIGHUP/SIGTERM keep arriving at the signalfd only).
    pub fn spawn(engine: Box<dyn Engine>) -> io::Result<PacketPath> {
        let (wake, wake_rx) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        wake_rx.set_nonblocking(true)?;
        let tx = Queue::new(COMMANDS);
        let rx = tx.clone();
        let thread = std::thread::Builder::new().name("packets".into()).spawn(move || serve(engine, rx, wake_rx))?;
        Ok(PacketPath { tx, wake, thread: Some(thread) })
    }

    fn send<T>(&self, cmd: impl FnOnce(Slot<T>) -> Cmd) -> Option<T> {
        let answer = Slot::default();
        self.tx.try_push(cmd(answer.clone())).ok()?;
        // A full socket buffer already holds a wake-up: ignore WouldBlock.
        let _ = (&self.wake).write(&[1]);
        answer.wait(ANSWER_WAIT)
    }

    /// [`Engine::plan_applied`] on the packet thread.
    pub fn plan_applied(&self, plan: &Plan) -> Result<(), String> {
        self.send(|a| Cmd::Plan(Box::new(plan.clone()), a)).unwrap_or_else(|| Err(no_answer()))
    }

    /// Real-time scheduling for the packet thread (see `set_realtime` of the engine module).
    pub fn set_realtime(&self, on: bool) -> io::Result<()> {
        self.send(|a| Cmd::Realtime(on, a)).unwrap_or_else(|| Err(io::Error::other(no_answer())))
    }

    /// [`Engine::status_json`] of the engine now.
    pub fn status_json(&self) -> Option<String> {
        self.send(Cmd::Status).flatten()
    }

    /// [`Engine::shutdown`], then end the thread. Returns the engine's last status.
    pub fn shutdown(mut self) -> Option<String> {
        let last = self.send(Cmd::Shutdown).flatten();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        last
    }
}

impl Drop for PacketPath {
    /// A control thread that goes away without [`PacketPath::shutdown`] closes the queue: the
    /// packet thread then releases the queues and ends.
    fn drop(&mut self) {
        self.tx.close();
        let _ = (&self.wake).write(&[1]);
    }
}

/// The packet thread: poll the engine's fds and the wake-up socket, nothing else.
fn serve(mut engine: Box<dyn Engine>, rx: Queue<Cmd>, mut wake: UnixStream) {
    loop {
        let efds = engine.fds();
        let mut fds = Vec::with_capacity(efds.len() + 1);
        fds.push(libc::pollfd { fd: wake.as_raw_fd(), events: libc::POLLIN, revents: 0 });
        fds.extend(efds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }));
        let timeout = engine.next_deadline().map_or(-1, |t| timeout_ms(t, Instant::now()));
        if let Err(e) = poll(&mut fds, timeout) {
            log::error!("poll (packet thread): {e}");
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        if fds[0].revents != 0 {
            let mut buf = [0u8; 64];
            while matches!(wake.read(&mut buf), Ok(n) if n > 0) {}
            loop {
                match rx.try_pop() {
                    Some(Cmd::Plan(plan, a)) => a.put(engine.plan_applied(&plan)),
                    Some(Cmd::Realtime(on, a)) => a.put(crate::sys::set_realtime(on)),
                    Some(Cmd::Status(a)) => a.put(engine.status_json()),
                    Some(Cmd::Shutdown(a)) => {
                        engine.shutdown();
                        a.put(engine.status_json());
                        return;
                    }
                    None if rx.is_closed() => {
                        // The control thread is gone without a shutdown: release the queues.
                        engine.shutdown();
                        return;
                    }
                    None => break,
                }
            }
        }
        let now = Instant::now();
        for (i, fd) in efds.iter().enumerate() {
            if fds[1 + i].revents != 0 {
                engine.readable(*fd, now);
            }
        }
        if engine.next_deadline().is_some_and(|t| t <= now) {
            engine.tick(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::RawFd;
    use std::sync::mpsc;

    /// An engine whose only fd is one end of a socket pair; it reports what it was asked to do.
    struct Fake {
        rx: UnixStream,
        seen: mpsc::Sender<&'static str>,
        plans: u32,
    }

    impl Engine for Fake {
        fn fds(&self) -> Vec<RawFd> {
            vec![self.rx.as_raw_fd()]
        }
        fn readable(&mut self, _fd: RawFd, _now: Instant) {
            let mut b = [0u8; 16];
            let _ = (&self.rx).read(&mut b);
            let _ = self.seen.send("readable");
        }
        fn next_deadline(&self) -> Option<Instant> {
            None
        }
        fn tick(&mut self, _now: Instant) {}
        fn plan_applied(&mut self, _plan: &Plan) -> Result<(), String> {
            self.plans += 1;
            Err(format!("plan {}", self.plans))
        }
        fn shutdown(&mut self) {
            let _ = self.seen.send("shutdown");
        }
        fn status_json(&self) -> Option<String> {
            Some(format!("{{\"plans\":{}}}", self.plans))
        }
    }

    fn plan() -> Plan {
        let dir = std::env::temp_dir().join(format!("moat-packet-path-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("moat.conf");
        std::fs::write(&file, "config moat 'main'\n\toption enabled '0'\n").unwrap();
        let model = crate::config::load_file(file.to_str().unwrap()).unwrap().model;
        let _ = std::fs::remove_dir_all(&dir);
        crate::plan::build(&model, &crate::plan::facts::Facts::default()).unwrap()
    }

    #[test]
    fn packets_are_served_without_the_control_thread_and_commands_round_trip() {
        let (a, b) = UnixStream::pair().unwrap();
        b.set_nonblocking(true).unwrap();
        let (tx, seen) = mpsc::channel();
        let p = PacketPath::spawn(Box::new(Fake { rx: b, seen: tx, plans: 0 })).unwrap();
        // This (control) thread polls nothing: the packet thread serves the fd on its own.
        for _ in 0..3 {
            (&a).write_all(b"x").unwrap();
            assert_eq!(seen.recv_timeout(ANSWER_WAIT), Ok("readable"));
        }
        let plan = plan();
        assert_eq!(p.plan_applied(&plan), Err("plan 1".to_string()));
        assert_eq!(p.plan_applied(&plan), Err("plan 2".to_string()));
        assert_eq!(p.status_json().as_deref(), Some("{\"plans\":2}"));
        assert_eq!(p.shutdown().as_deref(), Some("{\"plans\":2}"));
        assert_eq!(seen.recv_timeout(ANSWER_WAIT), Ok("shutdown"));
    }
}
