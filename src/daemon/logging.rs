//! Logging for the daemon: syslog through `/dev/log` when it exists (OpenWrt's `logread`),
//! stderr otherwise, filtered at the configured `log_level`. Implements the `log` facade so
//! every module logs with `log::info!` etc.

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::sync::Mutex;

use crate::config::LogLevel;

/// Where log lines go.
enum Sink {
    Syslog(UnixDatagram),
    Stderr,
}

struct Logger {
    sink: Mutex<Sink>,
}

static LOGGER: Logger = Logger { sink: Mutex::new(Sink::Stderr) };

/// Map the config's level to the `log` crate's filter.
pub fn filter(level: LogLevel) -> log::LevelFilter {
    match level {
        LogLevel::Error => log::LevelFilter::Error,
        LogLevel::Warn => log::LevelFilter::Warn,
        LogLevel::Info => log::LevelFilter::Info,
        LogLevel::Debug => log::LevelFilter::Debug,
    }
}

/// Install the logger. `force_stderr` skips syslog even when `/dev/log` exists.
pub fn init(force_stderr: bool, level: LogLevel) {
    let sink = if force_stderr {
        Sink::Stderr
    } else {
        match UnixDatagram::unbound().and_then(|s| s.connect("/dev/log").map(|_| s)) {
            Ok(s) => Sink::Syslog(s),
            Err(_) => Sink::Stderr,
        }
    };
    if let Ok(mut g) = LOGGER.sink.lock() {
        *g = sink;
    }
    let _ = log::set_logger(&LOGGER);
    set_level(level);
}

/// Change the level (on reload).
pub fn set_level(level: LogLevel) {
    log::set_max_level(filter(level));
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &log::Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        // Never let a message break the line format: control characters are escaped.
        let msg: String = format!("{}", r.args())
            .chars()
            .flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] })
            .collect();
        let Ok(mut g) = self.sink.lock() else { return };
        match &mut *g {
            Sink::Syslog(s) => {
                // facility daemon (3); severities: err 3, warning 4, info 6, debug 7.
                let sev = match r.level() {
                    log::Level::Error => 3,
                    log::Level::Warn => 4,
                    log::Level::Info => 6,
                    log::Level::Debug | log::Level::Trace => 7,
                };
                let line = format!("<{}>moat[{}]: {}", 3 * 8 + sev, std::process::id(), msg);
                if s.send(line.as_bytes()).is_err() {
                    let _ = writeln!(std::io::stderr(), "moat: {}: {}", r.level(), msg);
                }
            }
            Sink::Stderr => {
                let _ = writeln!(std::io::stderr(), "moat: {}: {}", r.level().as_str().to_lowercase(), msg);
            }
        }
    }

    fn flush(&self) {}
}
