use super::*;
use crate::wire::{cover_ipv4, cover_ipv6};

fn req(addr: IpAddr) -> Request {
    Request { seq: 7, addr, pad_to: 1408, mode: ModeParams::Constant { rate: 20 } }
}

fn stoch() -> ModeParams {
    ModeParams::Stochastic {
        decoys_per_hour: 6,
        rate_cap: 50,
        budget_mb: 100,
        decoy_rate: 5,
        decoy_duration_s: 30,
        max_duration_s: 600,
        idle_gap_s: 10,
        pace_percent: 100,
    }
}

#[test]
fn round_trips_in_cover_packets_of_both_families() {
    let a4 = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    let a6: IpAddr = "fd00::2".parse().unwrap();
    let msgs = [
        Message::Request(req(a4)),
        Message::Request(Request { mode: stoch(), ..req(a6) }),
        Message::Answer(Answer { request: req(a4), refused: None }),
        Message::Answer(Answer { request: req(a6), refused: Some(Refusal::RateTooHigh) }),
    ];
    for m in msgs {
        let mut p4 = cover_ipv4(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2), 1408);
        let before = p4[..20].to_vec();
        write_into(&mut p4, Some(&m)).unwrap();
        assert_eq!(&p4[..20], &before[..], "IP header (bad checksum) untouched");
        assert_eq!(p4.len(), 1408, "same size as every other packet");
        assert_eq!(parse(&p4), Ok(Some(m)));
        let mut p6 = cover_ipv6(Ipv6Addr::LOCALHOST, Ipv6Addr::LOCALHOST, MIN_PACKET as u16);
        write_into(&mut p6, Some(&m)).unwrap();
        assert_eq!(parse(&p6), Ok(Some(m)));
        write_into(&mut p6, None).unwrap();
        assert_eq!(parse(&p6), Ok(None));
    }
}

#[test]
fn plain_cover_packets_are_not_control() {
    let p = cover_ipv4(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2), 200);
    assert_eq!(parse(&p), Ok(None));
    assert_eq!(parse(&[]), Err(ControlError::NotIp));
    assert_eq!(parse(&[0x46; 30]), Err(ControlError::NotIp), "IPv4 with options is not a cover packet");
}

#[test]
fn hostile_bodies_are_refused() {
    let good = encode(&Message::Answer(Answer { request: req(IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4))), refused: None }));
    assert!(parse_body(&good).is_ok());
    let mutate = |at: usize, v: u8| {
        let mut b = good.clone();
        b[at] = v;
        parse_body(&b)
    };
    assert_eq!(mutate(4, 2), Err(ControlError::Version(2)));
    assert_eq!(mutate(5, 9), Err(ControlError::Kind(9)));
    assert_eq!(mutate(5, 1), Err(ControlError::Length), "answer length under a request kind");
    assert_eq!(mutate(7, 47), Err(ControlError::Length));
    assert_eq!(mutate(8 + 4, 5), Err(ControlError::Field("family")));
    assert_eq!(mutate(8 + 5, MAX_ANSWERS + 1), Err(ControlError::Field("answers")));
    assert_eq!(mutate(8 + 5, 1), Err(ControlError::Field("answers")), "an answer's echo asks for none");
    let request = encode(&Message::Request(req(IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4)))));
    let mut asking = request.clone();
    asking[8 + 5] = MAX_ANSWERS;
    assert_eq!(parse_body(&asking), parse_body(&request), "answers are not part of the request");
    asking[8 + 5] = MAX_ANSWERS + 1;
    assert_eq!(parse_body(&asking), Err(ControlError::Field("answers")));
    assert_eq!(mutate(8 + 12, 1), Err(ControlError::Field("family")), "IPv4 with bytes in the v6 part");
    assert_eq!(mutate(8 + 24, 3), Err(ControlError::Field("mode")));
    assert_eq!(mutate(8 + 24 + 10, 1), Err(ControlError::Field("mode")), "constant with stray bytes");
    assert_eq!(mutate(8 + 44, 2), Err(ControlError::Field("status")));
    assert_eq!(mutate(8 + 45, 1), Err(ControlError::Field("status")), "shaped with a reason");
    assert_eq!(mutate(8 + 46, 1), Err(ControlError::Field("reserved")));
    let mut refused = good.clone();
    refused[8 + 44] = 1;
    refused[8 + 45] = 99;
    assert_eq!(parse_body(&refused), Err(ControlError::Field("reason")));
    let mut trailer = good.clone();
    trailer.extend_from_slice(&[0, 0, 1]);
    assert_eq!(parse_body(&trailer), Err(ControlError::Trailer));
    for n in 0..good.len() {
        assert!(parse_body(&good[..n]).is_err(), "truncated to {n}");
    }
}

#[test]
fn too_small_a_packet_cannot_carry_a_message() {
    let mut p = cover_ipv4(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2), 60);
    let m = Message::Request(req(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))));
    assert_eq!(write_into(&mut p, Some(&m)), Err(ControlError::Length));
}

#[test]
fn answers_ride_in_a_request_without_changing_it() {
    let r = req(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
    let mut p = cover_ipv4(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2), 560);
    assert!(!set_answers(&mut p, 2), "a plain cover packet carries no request");
    assert_eq!(answers(&p), 0);
    write_into(&mut p, Some(&Message::Request(r))).unwrap();
    assert_eq!(answers(&p), 0, "a fresh request asks for none");
    assert!(set_answers(&mut p, 2));
    assert_eq!((answers(&p), parse(&p)), (2, Ok(Some(Message::Request(r)))));
    assert!(set_answers(&mut p, 200));
    assert_eq!(answers(&p), MAX_ANSWERS, "capped");
    assert!(set_answers(&mut p, 0));
    assert_eq!(answers(&p), 0);
    let mut a = cover_ipv4(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2), 560);
    write_into(&mut a, Some(&Message::Answer(Answer { request: r, refused: None }))).unwrap();
    assert!(!set_answers(&mut a, 2), "an answer asks for nothing");
    assert_eq!(answers(&a), 0);
}
