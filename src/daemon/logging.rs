//! Logging for the daemon: syslog through `/dev/log` when it exists (OpenWrt's `logread`),
//! stderr otherwise, filtered at the configured `log_level`. Implements the `log` facade so
//! every module logs with `log::info!` etc.
//!
//! Logging never blocks the caller: a line is formatted on the calling thread and handed to a
//! logger thread through a bounded queue ([`QUEUE`] lines); the logger thread does the (possibly
//! blocking) syslog send or stderr write. When the queue is full the line is dropped and counted,
//! and the logger reports the count with its next line. This keeps the packet thread
//! ([`super::packet_path`]) off a slow syslog daemon or a full stderr pipe.

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use super::mailbox::{Queue, Slot};
use crate::config::LogLevel;

/// Lines the queue holds before new ones are dropped.
pub const QUEUE: usize = 256;

/// Where log lines go.
enum Sink {
    Syslog(UnixDatagram),
    Stderr,
}

enum Line {
    Text(log::Level, String),
    /// Answer once every line queued before it is written.
    Flush(Slot<()>),
}

struct Logger {
    tx: OnceLock<Queue<Line>>,
    /// Lines dropped because the queue was full (32-bit: no 64-bit atomics on 32-bit MIPS).
    dropped: AtomicU32,
}

static LOGGER: Logger = Logger { tx: OnceLock::new(), dropped: AtomicU32::new(0) };

/// Map the config's level to the `log` crate's filter.
pub fn filter(level: LogLevel) -> log::LevelFilter {
    match level {
        LogLevel::Error => log::LevelFilter::Error,
        LogLevel::Warn => log::LevelFilter::Warn,
        LogLevel::Info => log::LevelFilter::Info,
        LogLevel::Debug => log::LevelFilter::Debug,
    }
}

/// Install the logger and start its thread. `force_stderr` skips syslog even when `/dev/log`
/// exists. Call once, after the daemon blocked its signals (the thread inherits the mask). A
/// second call only changes the level.
pub fn init(force_stderr: bool, level: LogLevel) {
    let sink = if force_stderr {
        Sink::Stderr
    } else {
        match UnixDatagram::unbound().and_then(|s| s.connect("/dev/log").map(|_| s)) {
            Ok(s) => Sink::Syslog(s),
            Err(_) => Sink::Stderr,
        }
    };
    let tx = Queue::new(QUEUE);
    let rx = tx.clone();
    if LOGGER.tx.set(tx).is_ok() {
        let spawned = std::thread::Builder::new().name("log".into()).spawn(move || {
            let mut sink = sink;
            while let Some(line) = rx.pop() {
                match line {
                    Line::Text(level, msg) => {
                        write(&mut sink, level, &msg);
                        let lost = LOGGER.dropped.swap(0, Ordering::Relaxed);
                        if lost > 0 {
                            write(&mut sink, log::Level::Warn, &format!("{lost} log line(s) dropped (queue full)"));
                        }
                    }
                    Line::Flush(done) => done.put(()),
                }
            }
        });
        if spawned.is_err() {
            let _ = writeln!(std::io::stderr(), "moat: error: cannot start the logger thread; logging to nowhere");
        }
        let _ = log::set_logger(&LOGGER);
    }
    set_level(level);
}

/// Change the level (on reload).
pub fn set_level(level: LogLevel) {
    log::set_max_level(filter(level));
}

/// Wait (at most 2 s) until every line logged so far is written; call before the process exits.
pub fn flush() {
    let Some(tx) = LOGGER.tx.get() else { return };
    let done = Slot::default();
    // A full queue is drained by the logger thread within the wait; try until then.
    let until = std::time::Instant::now() + Duration::from_secs(2);
    let mut line = Line::Flush(done.clone());
    loop {
        match tx.try_push(line) {
            Ok(()) => {
                let _ = done.wait(until.saturating_duration_since(std::time::Instant::now()));
                return;
            }
            Err(back) if std::time::Instant::now() < until => {
                line = back;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => return,
        }
    }
}

fn write(sink: &mut Sink, level: log::Level, msg: &str) {
    match sink {
        Sink::Syslog(s) => {
            // facility daemon (3); severities: err 3, warning 4, info 6, debug 7.
            let sev = match level {
                log::Level::Error => 3,
                log::Level::Warn => 4,
                log::Level::Info => 6,
                log::Level::Debug | log::Level::Trace => 7,
            };
            let line = format!("<{}>moat[{}]: {}", 3 * 8 + sev, std::process::id(), msg);
            if s.send(line.as_bytes()).is_err() {
                let _ = writeln!(std::io::stderr(), "moat: {level}: {msg}");
            }
        }
        Sink::Stderr => {
            let _ = writeln!(std::io::stderr(), "moat: {}: {}", level.as_str().to_lowercase(), msg);
        }
    }
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &log::Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let Some(tx) = self.tx.get() else { return };
        // Never let a message break the line format: control characters are escaped.
        let msg: String = format!("{}", r.args())
            .chars()
            .flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] })
            .collect();
        if tx.try_push(Line::Text(r.level(), msg)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn flush(&self) {}
}
