//! Emulated smart-home devices for the privacy benchmark (`scripts/bench-privacy.sh`): a smart
//! speaker, a sleep monitor and a plug, each keeping one TCP connection to its "cloud" on the
//! internet host ([`serve_cloud`], port [`CLOUD_PORT`]), idle heartbeats in between and
//! activities at times drawn from a seeded schedule. Every activity is logged with its real
//! start and end (the ground truth an observer tries to recover), every request/answer exchange
//! with the latency the device saw.
//!
//! Wire protocol (both directions, so the servers answer): the device sends an 8-byte header
//! `[request bytes u32 BE][answer bytes u32 BE]`, then the request bytes (possibly paced over
//! time, an audio upload); the cloud reads them all and sends the answer bytes back.
//!
//! | device | idle | activity |
//! |---|---|---|
//! | speaker | 80 B / 80 B every 20 s | "audio" upload 2-6 s (1000 B every 62.5 ms), then a 40-200 KB answer |
//! | sleepmon | 300 B / 40 B every 30 s | recording session 60-180 s: 1000 B every 200 ms, then a 40 B answer |
//! | plug | 60 B / 60 B every 30 s | toggle: 150 B / 100 B, 300 ms later a 200 B / 60 B state report |
//!
//! Activities start as a Poisson process (per hour: speaker 50, plug 40, sleepmon 8); one that is
//! due while the previous one still runs starts right after it. On average the home's devices
//! move about 4-5 KB/s (both directions, at their Ethernet interfaces; the run prints it).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// TCP port of the devices' cloud on the internet host.
pub const CLOUD_PORT: u16 = 8883;

/// Seconds since the Unix epoch (the clock tcpdump stamps packets with).
pub fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// A small seeded generator (splitmix64): the same seed gives the same schedule.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`, decorrelated per `stream` (e.g. one per device).
    pub fn new(seed: u64, stream: u64) -> Rng {
        let mut r = Rng(seed ^ stream.wrapping_mul(0xd1b5_4a32_d192_ed03));
        r.next();
        r
    }
    /// Next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    /// Exponentially distributed with the given mean.
    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }
}

/// The kinds of emulated device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// Smart speaker: audio upload, then a larger answer.
    Speaker,
    /// Sleep monitor: periodic samples, recording sessions of steady upload.
    SleepMonitor,
    /// Smart plug: tiny heartbeat, toggles.
    Plug,
}

impl DeviceKind {
    /// The three devices of the benchmark's home.
    pub const HOME: [DeviceKind; 3] = [DeviceKind::Speaker, DeviceKind::SleepMonitor, DeviceKind::Plug];

    /// Lab label (`speaker`, `sleepmon`, `plug`).
    pub fn label(self) -> &'static str {
        match self {
            DeviceKind::Speaker => "speaker",
            DeviceKind::SleepMonitor => "sleepmon",
            DeviceKind::Plug => "plug",
        }
    }
    fn heartbeat(self) -> (f64, u32, u32) {
        match self {
            DeviceKind::Speaker => (20.0, 80, 80),
            DeviceKind::SleepMonitor => (30.0, 300, 40),
            DeviceKind::Plug => (30.0, 60, 60),
        }
    }
    fn activities_per_hour(self) -> f64 {
        match self {
            DeviceKind::Speaker => 50.0,
            DeviceKind::SleepMonitor => 8.0,
            DeviceKind::Plug => 40.0,
        }
    }
}

/// One planned activity.
#[derive(Debug, Clone, PartialEq)]
pub enum Activity {
    /// Speaker: upload `chunks` × 1000 B every 62.5 ms, then receive `answer` bytes.
    Voice { chunks: u32, answer: u32 },
    /// Sleep monitor: upload `chunks` × 1000 B every 200 ms, then a 40 B answer.
    Recording { chunks: u32 },
    /// Plug: a toggle and its state report.
    Toggle,
}

/// An activity due `at` seconds after the run's start.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// Seconds after the start.
    pub at: f64,
    /// What happens.
    pub what: Activity,
}

/// The seeded schedule of `kind` for a run of `secs` seconds (activity start times; the
/// device shifts one that is due while it is still busy).
pub fn schedule(kind: DeviceKind, seed: u64, secs: f64) -> Vec<Planned> {
    let mut rng = Rng::new(seed, kind as u64 + 1);
    let mean = 3600.0 / kind.activities_per_hour();
    let mut t = rng.exp(mean);
    let mut v = Vec::new();
    while t < secs {
        let what = match kind {
            DeviceKind::Speaker => {
                Activity::Voice { chunks: (rng.range(2.0, 6.0) * 16.0) as u32, answer: rng.range(40e3, 200e3) as u32 }
            }
            DeviceKind::SleepMonitor => Activity::Recording { chunks: (rng.range(60.0, 180.0) * 5.0) as u32 },
            DeviceKind::Plug => Activity::Toggle,
        };
        v.push(Planned { at: t, what });
        t += rng.exp(mean);
    }
    v
}

/// What the devices did, for the ground truth and the latency figures.
#[derive(Debug, Default)]
pub struct Record {
    /// (device, activity kind, start, end), Unix seconds.
    pub activities: Vec<(String, String, f64, f64)>,
    /// (device, exchange kind, start, latency in ms or None if it failed).
    pub exchanges: Vec<(String, String, f64, Option<f64>)>,
    /// Bytes the devices' application layer sent and received.
    pub app_bytes: u64,
}

impl Record {
    /// Write `truth.tsv` (activities) and `exchanges.tsv` into `dir`.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let mut s = String::from("device\tactivity\tstart\tend\n");
        for (d, k, a, b) in &self.activities {
            s.push_str(&format!("{d}\t{k}\t{a:.6}\t{b:.6}\n"));
        }
        std::fs::write(dir.join("truth.tsv"), s)?;
        let mut s = String::from("device\texchange\tstart\tlatency_ms\n");
        for (d, k, a, l) in &self.exchanges {
            let l = l.map_or("fail".to_string(), |l| format!("{l:.3}"));
            s.push_str(&format!("{d}\t{k}\t{a:.6}\t{l}\n"));
        }
        std::fs::write(dir.join("exchanges.tsv"), s)
    }
}

// ---------------------------------------------------------------------------------------------
// The cloud
// ---------------------------------------------------------------------------------------------

/// The devices' cloud: answers every request (see the module docs). Stops when dropped.
pub struct Cloud {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Drop for Cloud {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serve the cloud on `addr`; call on a thread inside the internet namespace ([`super::in_ns`]).
pub fn serve_cloud(addr: SocketAddr) -> std::io::Result<Cloud> {
    let l = TcpListener::bind(addr)?;
    l.set_nonblocking(true)?;
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let thread = thread::spawn(move || {
        while !s2.load(Ordering::SeqCst) {
            match l.accept() {
                Ok((c, _)) => {
                    let s3 = s2.clone();
                    thread::spawn(move || {
                        let _ = cloud_session(c, &s3);
                    });
                }
                Err(_) => thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    Ok(Cloud { stop, thread: Some(thread) })
}

fn cloud_session(mut c: TcpStream, stop: &AtomicBool) -> std::io::Result<()> {
    c.set_nonblocking(false)?;
    c.set_nodelay(true)?;
    c.set_read_timeout(Some(Duration::from_secs(1)))?;
    c.set_write_timeout(Some(Duration::from_secs(30)))?;
    let answer = super::pattern(256 * 1024, 11);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let mut hdr = [0u8; 8];
        if !read_full(&mut c, &mut hdr, stop)? {
            return Ok(());
        }
        let up = u32::from_be_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]) as usize;
        let down = (u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]) as usize).min(answer.len());
        let mut left = up;
        while left > 0 {
            let n = left.min(buf.len());
            if !read_full(&mut c, &mut buf[..n], stop)? {
                return Ok(());
            }
            left -= n;
        }
        c.write_all(&answer[..down])?;
    }
}

/// Read exactly `buf.len()` bytes, waiting across read timeouts until `stop`; false on EOF/stop.
fn read_full(c: &mut TcpStream, buf: &mut [u8], stop: &AtomicBool) -> std::io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match c.read(&mut buf[got..]) {
            Ok(0) => return Ok(false),
            Ok(n) => got += n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                if stop.load(Ordering::SeqCst) {
                    return Ok(false);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

// ---------------------------------------------------------------------------------------------
// The devices
// ---------------------------------------------------------------------------------------------

struct Conn {
    addr: SocketAddr,
    s: Option<TcpStream>,
}

impl Conn {
    fn stream(&mut self) -> std::io::Result<&mut TcpStream> {
        if self.s.is_none() {
            let s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))?;
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(Duration::from_secs(15)))?;
            s.set_write_timeout(Some(Duration::from_secs(15)))?;
            self.s = Some(s);
        }
        Ok(self.s.as_mut().unwrap())
    }

    /// One exchange: header, `up` bytes in `chunks` pieces `gap` apart, then `down` bytes back.
    /// Returns the latency from the last request byte to the last answer byte, in ms.
    fn exchange(&mut self, up: u32, down: u32, chunks: u32, gap: Duration, app: &mut u64) -> Result<f64, String> {
        let r = self.try_exchange(up, down, chunks, gap, app);
        if r.is_err() {
            if let Some(s) = self.s.take() {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        r.map_err(|e| e.to_string())
    }

    fn try_exchange(&mut self, up: u32, down: u32, chunks: u32, gap: Duration, app: &mut u64) -> std::io::Result<f64> {
        let s = self.stream()?;
        let chunks = chunks.max(1);
        let total = up * chunks;
        let mut hdr = total.to_be_bytes().to_vec();
        hdr.extend_from_slice(&down.to_be_bytes());
        let data = super::pattern(up as usize, up as u64);
        let mut next = Instant::now();
        for k in 0..chunks {
            if k == 0 {
                let mut first = hdr.clone();
                first.extend_from_slice(&data);
                s.write_all(&first)?;
            } else {
                next += gap;
                if let Some(d) = next.checked_duration_since(Instant::now()) {
                    thread::sleep(d);
                }
                s.write_all(&data)?;
            }
        }
        let sent = Instant::now();
        let mut buf = vec![0u8; 64 * 1024];
        let mut left = down as usize;
        while left > 0 {
            let n = s.read(&mut buf[..left.min(64 * 1024)])?;
            if n == 0 {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "cloud closed"));
            }
            left -= n;
        }
        *app += 8 + total as u64 + down as u64;
        Ok(sent.elapsed().as_secs_f64() * 1e3)
    }
}

/// Run device `kind` inside namespace `ns` for `secs` seconds (or until `stop`), following
/// [`schedule`]`(kind, seed, secs)`, talking to `cloud`; results appended to `rec`.
pub fn run_device(
    kind: DeviceKind,
    ns: &str,
    cloud: SocketAddr,
    seed: u64,
    secs: f64,
    stop: Arc<AtomicBool>,
    rec: Arc<Mutex<Record>>,
) -> thread::JoinHandle<()> {
    let path = format!("/var/run/netns/{ns}");
    let plan = schedule(kind, seed, secs);
    thread::spawn(move || {
        super::enter_ns(&path).expect("enter device namespace");
        let label = kind.label().to_string();
        let (period, hb_up, hb_down) = kind.heartbeat();
        let mut rng = Rng::new(seed, 100 + kind as u64);
        let start = Instant::now();
        let mut next_hb = rng.range(0.0, period);
        let mut conn = Conn { addr: cloud, s: None };
        let mut app = 0u64;
        let mut plan = plan.into_iter().peekable();
        let now = |start: Instant| start.elapsed().as_secs_f64();
        let log_x = |rec: &Mutex<Record>, what: &str, t: f64, r: &Result<f64, String>| {
            rec.lock().unwrap().exchanges.push((label.clone(), what.to_string(), t, r.as_ref().ok().copied()));
        };
        loop {
            let due_act = plan.peek().map(|p| p.at).unwrap_or(f64::INFINITY);
            let due = due_act.min(next_hb);
            if due >= secs {
                break;
            }
            // Sleep until due, in slices, so a stop request ends the run promptly.
            while now(start) < due && !stop.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_secs_f64((due - now(start)).clamp(0.0, 0.2)));
            }
            if stop.load(Ordering::SeqCst) {
                break;
            }
            if due_act <= next_hb {
                let p = plan.next().unwrap();
                let t0 = unix_now();
                let name = match p.what {
                    Activity::Voice { chunks, answer } => {
                        let r = conn.exchange(1000, answer, chunks, Duration::from_micros(62_500), &mut app);
                        log_x(&rec, "voice-answer", t0, &r);
                        "voice"
                    }
                    Activity::Recording { chunks } => {
                        let r = conn.exchange(1000, 40, chunks, Duration::from_millis(200), &mut app);
                        log_x(&rec, "recording-answer", t0, &r);
                        "recording"
                    }
                    Activity::Toggle => {
                        let r = conn.exchange(150, 100, 1, Duration::ZERO, &mut app);
                        log_x(&rec, "toggle", t0, &r);
                        thread::sleep(Duration::from_millis(300));
                        let t1 = unix_now();
                        let r = conn.exchange(200, 60, 1, Duration::ZERO, &mut app);
                        log_x(&rec, "state-report", t1, &r);
                        "toggle"
                    }
                };
                rec.lock().unwrap().activities.push((label.clone(), name.to_string(), t0, unix_now()));
                // Heartbeats keep their grid; the ones missed while busy are skipped.
                while next_hb < now(start) {
                    next_hb += period;
                }
            } else {
                let t0 = unix_now();
                let r = conn.exchange(hb_up, hb_down, 1, Duration::ZERO, &mut app);
                log_x(&rec, "heartbeat", t0, &r);
                next_hb += period;
            }
        }
        // Every run covers its full duration (the observer's windows up to the end).
        while now(start) < secs && !stop.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_secs_f64((secs - now(start)).clamp(0.0, 0.2)));
        }
        rec.lock().unwrap().app_bytes += app;
    })
}

/// One packet the WAN observer saw: (Unix time, upstream?, frame length).
pub type WanPacket = (f64, bool, usize);

/// Every frame of a tcpdump capture of the WAN link with its time, direction and length.
/// Upstream = sent by the router: the Ethernet source of the frames carrying `router_ips`.
pub fn wan_packets(data: &[u8], router_ips: &[std::net::IpAddr]) -> Result<Vec<WanPacket>, String> {
    if data.len() < 24 || data[..4] != [0xd4, 0xc3, 0xb2, 0xa1] {
        return Err("expected a little-endian microsecond pcap file".into());
    }
    let u32_at = |p: usize| u32::from_le_bytes([data[p], data[p + 1], data[p + 2], data[p + 3]]);
    let mut frames = Vec::new();
    let mut pos = 24;
    while pos + 16 <= data.len() {
        let t = u32_at(pos) as f64 + u32_at(pos + 4) as f64 / 1e6;
        let incl = u32_at(pos + 8) as usize;
        let orig = u32_at(pos + 12) as usize;
        pos += 16;
        if pos + incl > data.len() {
            break;
        }
        frames.push((t, &data[pos..pos + incl], orig));
        pos += incl;
    }
    let mut router_mac: Option<[u8; 6]> = None;
    for (_, f, _) in &frames {
        if let super::pcap::Kind::Ip { src, .. } = super::pcap::decode_ethernet(f) {
            if router_ips.contains(&src) && f.len() >= 12 {
                router_mac = Some(f[6..12].try_into().unwrap());
                break;
            }
        }
    }
    let mac = router_mac.ok_or("no frame from the router in the capture")?;
    Ok(frames.iter().map(|(t, f, orig)| (*t, f.len() >= 12 && f[6..12] == mac, *orig)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_are_seeded_and_differ_between_seeds() {
        let a = schedule(DeviceKind::Speaker, 1, 3600.0);
        assert_eq!(a, schedule(DeviceKind::Speaker, 1, 3600.0));
        assert_ne!(a, schedule(DeviceKind::Speaker, 2, 3600.0));
        assert!((20..90).contains(&a.len()), "{} activities in an hour", a.len());
    }
}
