use super::*;
use crate::companion::config::from_bytes;

fn cfg(extra: &str) -> CompanionConfig {
    from_bytes("t", format!("config companion 'main'\n\toption device 'wg0'\n{extra}").as_bytes()).unwrap()
}

fn req(addr: &str, rate: u32) -> Request {
    Request { seq: 1, addr: addr.parse().unwrap(), pad_to: 1280, mode: ModeParams::Constant { rate } }
}

#[test]
fn a_peer_gets_its_own_queue_and_only_its_own_address() {
    let c = cfg("");
    let mut p = Peers::default();
    let a: IpAddr = "10.0.0.2".parse().unwrap();
    let b: IpAddr = "10.0.0.3".parse().unwrap();
    assert_eq!(p.request(&c, Some(1420), a, req("10.0.0.2", 20), 0), Outcome::Changed);
    assert_eq!(p.request(&c, Some(1420), a, req("10.0.0.2", 20), 1), Outcome::Refreshed);
    assert_eq!(p.request(&c, Some(1420), b, req("10.0.0.3", 20), 1), Outcome::Changed);
    assert_eq!(p.rules().iter().map(|r| r.queue).collect::<Vec<_>>(), [QUEUE_BASE, QUEUE_BASE + 1]);
    // b asks to shape a's traffic: refused, counted, nothing changes
    let before = p.peers.clone();
    assert_eq!(p.request(&c, Some(1420), b, req("10.0.0.2", 40), 2), Outcome::Refused(Refusal::AddressMismatch));
    assert_eq!(p.peers, before);
    assert_eq!(p.refused.address_mismatch, 1);
    assert_eq!(p.request(&c, Some(1420), a, req("10.0.0.2", 40), 3), Outcome::Changed, "a changes its own rate");
}

#[test]
fn limits_are_enforced() {
    let c = cfg("\toption max_rate '50'\n\toption max_peers '1'\n\tlist allow_peer '10.0.0.0/30'\n");
    let mut p = Peers::default();
    let a: IpAddr = "10.0.0.2".parse().unwrap();
    assert_eq!(p.request(&c, Some(1420), a, req("10.0.0.2", 51), 0), Outcome::Refused(Refusal::RateTooHigh));
    assert_eq!(p.request(&c, Some(1420), a, req("10.0.0.2", 0), 0), Outcome::Refused(Refusal::BadParams));
    let big = Request { pad_to: 1421, ..req("10.0.0.2", 20) };
    assert_eq!(p.request(&c, Some(1420), a, big, 0), Outcome::Refused(Refusal::BadParams), "pad_to above MTU");
    assert_eq!(p.request(&c, None, a, req("10.0.0.2", 20), 0), Outcome::Refused(Refusal::BadParams), "no MTU");
    let far: IpAddr = "10.0.0.9".parse().unwrap();
    assert_eq!(p.request(&c, Some(1420), far, req("10.0.0.9", 20), 0), Outcome::Refused(Refusal::NotAllowed));
    assert_eq!(p.request(&c, Some(1420), a, req("10.0.0.2", 20), 0), Outcome::Changed);
    let b: IpAddr = "10.0.0.1".parse().unwrap();
    assert_eq!(p.request(&c, Some(1420), b, req("10.0.0.1", 20), 0), Outcome::Refused(Refusal::TooManyPeers));
    assert!(!p.expire(EXPIRE_US - 1));
    assert!(p.expire(EXPIRE_US));
    assert!(p.peers.is_empty());
}

#[test]
fn both_ends_run_the_same_shaper() {
    let r = req("10.0.0.2", 20);
    let c = shaper_config(&r);
    assert_eq!(c.pad_to, 1280);
    assert_eq!(c.mode, Mode::Constant(ConstantConfig::with_rate(20)));
    let back = crate::daemon::engine::request_for(r.addr, &c).unwrap();
    assert_eq!(back, r, "router's request from its shaper config round-trips");
}

#[test]
fn stochastic_peers_outlive_their_rare_requests() {
    let c = cfg("");
    let mut p = Peers::default();
    let a: IpAddr = "10.0.0.2".parse().unwrap();
    let mode = ModeParams::Stochastic {
        decoys_per_hour: 6,
        rate_cap: 20,
        budget_mb: 50,
        decoy_rate: 5,
        decoy_duration_s: 30,
        max_duration_s: 600,
        idle_gap_s: 10,
        pace_percent: 100,
    };
    let r = Request { mode, ..req("10.0.0.2", 1) };
    assert_eq!(p.request(&c, Some(1420), a, r, 0), Outcome::Changed);
    assert!(!p.expire(EXPIRE_US * 10), "a stochastic peer asks only in decoy periods");
    assert!(p.expire(EXPIRE_STOCHASTIC_US));
}
