//! The companion side of the engine: control messages carried in a schedule's cover packets,
//! the far end's cover packets (follow mode) and the router's links to its companions.

use super::{request_for, Link, ShapingEngine};
use crate::shaper::{Micros, Mode};
use crate::wire;

impl ShapingEngine {
    /// The schedule serving `queue`, if any.
    fn sched_of(&self, queue: u16) -> Option<usize> {
        self.scheds.iter().position(|s| s.devs.iter().any(|d| d.spec.queue == queue))
    }

    /// Write a control message into the cover packets of `queue`'s schedule (`None`: plain cover
    /// again). False if the queue is not served, has no cover packets or they are too small.
    pub fn set_control(&mut self, queue: u16, msg: Option<&crate::wire::control::Message>) -> bool {
        match self.sched_of(queue) {
            Some(si) => self.set_sched_control(si, msg),
            None => false,
        }
    }

    fn set_sched_control(&mut self, si: usize, msg: Option<&crate::wire::control::Message>) -> bool {
        let s = &mut self.scheds[si];
        // A control message must get through a saturated direction too: a cover slot a second.
        if let Mode::Constant(c) = &s.specs[0].config.mode {
            s.schedule.set_cover_every(if msg.is_some() { c.rate } else { 0 });
        }
        match s.cover.as_mut() {
            Some((pkt, _)) => crate::wire::control::write_into(pkt, msg).is_ok(),
            None => false,
        }
    }

    /// A cover packet of the far end asking for `answers` answers arrived for `queue`'s
    /// schedule at `now` (see [`crate::shaper::Schedule::on_peer_cover`]).
    pub fn peer_cover(&mut self, queue: u16, now: Micros, answers: u8) {
        if let Some(si) = self.sched_of(queue) {
            self.scheds[si].schedule.on_peer_cover(now, answers);
            self.rearm();
        }
    }

    /// The source address of the cover packets of `queue`'s schedule (the tunnel device's own
    /// address).
    pub fn cover_src(&self, queue: u16) -> Option<std::net::IpAddr> {
        self.sched_cover_src(self.sched_of(queue)?)
    }

    fn sched_cover_src(&self, si: usize) -> Option<std::net::IpAddr> {
        let (pkt, _) = self.scheds[si].cover.as_ref()?;
        match wire::version(pkt)? {
            4 => Some(std::net::IpAddr::from([pkt[12], pkt[13], pkt[14], pkt[15]])),
            _ => <[u8; 16]>::try_from(&pkt[8..24]).ok().map(std::net::IpAddr::from),
        }
    }

    /// Companion links and their state (router side).
    pub fn links(&self) -> &[Link] {
        &self.links
    }

    /// One link per tunnel device whose served queues name a companion; the request (from the
    /// first such schedule's shaper) goes into the cover packets of every schedule of that tunnel.
    pub(super) fn set_links(&mut self) {
        let mut old = std::mem::take(&mut self.links);
        let mut links: Vec<Link> = Vec::new();
        for si in 0..self.scheds.len() {
            let Some(spec) = self.scheds[si].specs.iter().find(|x| x.companion.is_some()).cloned() else { continue };
            let Some(c) = spec.companion.clone() else { continue };
            let dev = spec.tunnel_dev.clone();
            let li = match links.iter().position(|l| l.device == dev) {
                Some(li) => li,
                None => {
                    let req = self.sched_cover_src(si).and_then(|src| request_for(src, &spec.config));
                    let link = match old.iter().position(|l| l.device == dev && l.spec == c && l.request == req) {
                        Some(k) => old.swap_remove(k),
                        None => Link::new(&dev, c, req),
                    };
                    links.push(link);
                    links.len() - 1
                }
            };
            let msg = links[li].request.map(crate::wire::control::Message::Request);
            self.set_sched_control(si, msg.as_ref());
        }
        self.links = links;
    }
}
