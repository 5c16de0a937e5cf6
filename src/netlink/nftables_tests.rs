use super::*;
use crate::netlink::{attrs, messages};

fn rules() -> Vec<KillRule> {
    vec![
        KillRule { key: Key::Mac([2, 0, 0, 0, 0, 1]), unless: Unless::Oif(vec!["wg0".into()]) },
        KillRule { key: Key::Mac([2, 0, 0, 0, 0, 2]), unless: Unless::Oif(vec![]) },
        KillRule { key: Key::Mac([2, 0, 0, 0, 0, 2]), unless: Unless::Dport { l4proto: 17, ports: vec![67, 547] } },
        KillRule { key: Key::Source("10.64.0.2".parse().unwrap()), unless: Unless::Oif(vec!["wg0".into()]) },
    ]
}

#[test]
fn install_batch_decodes_back() {
    let mut buf = vec![0u8; 4096];
    let (n, count) = encode_install(&mut buf, 100, &rules()).unwrap();
    assert_eq!(count, 15, "table, five chains and flushes, four rules");
    let msgs: Vec<_> = messages(&buf[..n]).map(Result::unwrap).collect();
    let types: Vec<u16> = msgs.iter().map(|m| m.ty).collect();
    assert_eq!(
        types,
        [
            0x10, 0xa00, 0xa03, 0xa08, 0xa03, 0xa08, 0xa03, 0xa08, 0xa03, 0xa08, 0xa03, 0xa08, 0xa06, 0xa06, 0xa06,
            0xa06, 0x11
        ]
    );
    let seqs: Vec<u32> = msgs.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (100..117).collect::<Vec<u32>>());
    assert_eq!(msgs[0].body, [0, 0, 0, 10], "batch begin names the nftables subsystem");
    let (_, a) = msgs[1].split(4).unwrap();
    let a: Vec<_> = a.map(Result::unwrap).collect();
    assert_eq!(a[0].data, b"moat_persist\0");
    assert_eq!(a[1].be_u32(), Some(NFT_TABLE_F_OWNER | NFT_TABLE_F_PERSIST));
    // rule 1: payload, cmp mac, meta, cmp != "wg0", immediate drop
    let (_, a) = msgs[12].split(4).unwrap();
    let exprs = a.map(Result::unwrap).find(|x| x.ty == 4).unwrap();
    let names: Vec<String> =
        attrs(exprs.data).map(|e| crate::netlink::cstr(attrs(e.unwrap().data).next().unwrap().unwrap().data)).collect();
    assert_eq!(names, ["meta", "cmp", "payload", "cmp", "meta", "cmp", "immediate"]);
    let (_, a) = msgs[13].split(4).unwrap();
    let exprs = a.map(Result::unwrap).find(|x| x.ty == 4).unwrap();
    assert_eq!(attrs(exprs.data).count(), 5, "no interface allowed: iiftype, mac, drop");
    let (_, a) = msgs[14].split(4).unwrap();
    let a: Vec<_> = a.map(Result::unwrap).collect();
    assert_eq!(a[1].data, b"kill_input\0");
    assert_eq!(attrs(a[2].data).count(), 10, "iiftype, mac, l4proto, dport: 2 each; two port cmps, drop");
    let (_, a) = msgs[15].split(4).unwrap();
    let a: Vec<_> = a.map(Result::unwrap).collect();
    assert_eq!(a[1].data, b"kill_postrouting\0");
    for m in &msgs[1..16] {
        assert_ne!(m.flags & NLM_F_ACK, 0, "every request is acknowledged");
    }
}

#[test]
fn encoder_refuses_bad_names_and_small_buffers() {
    let bad = [KillRule { key: Key::Mac([0; 6]), unless: Unless::Oif(vec!["a-name-too-long-x".into()]) }];
    assert!(encode_install(&mut [0u8; 4096], 0, &bad).is_err());
    assert!(encode_install(&mut [0u8; 100], 0, &rules()).is_err());
    let mut buf = [0u8; 256];
    let n = encode_delete(&mut buf, 7).unwrap();
    let types: Vec<u16> = messages(&buf[..n]).map(|m| m.unwrap().ty).collect();
    assert_eq!(types, [0x10, 0xa02, 0x11]);
}

fn ack(seq: u32, errno: i32) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&36u32.to_ne_bytes());
    v.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
    v.extend_from_slice(&0u16.to_ne_bytes());
    v.extend_from_slice(&seq.to_ne_bytes());
    v.extend_from_slice(&0u32.to_ne_bytes());
    v.extend_from_slice(&(-errno).to_ne_bytes());
    v.extend_from_slice(&[0; 16]);
    v
}

#[test]
fn acks_are_matched_by_sequence_and_length_checked() {
    let mut d = ack(11, 0);
    d.extend(ack(99, 1)); // not ours
    d.extend(ack(12, libc::EPERM));
    assert_eq!(parse_acks(&d, 10, 2), vec![Ok(0), Ok(libc::EPERM)]);
    // a truncated error body (only 2 bytes of errno)
    let mut short = ack(11, 0);
    short.truncate(18);
    short[..4].copy_from_slice(&18u32.to_ne_bytes());
    assert!(parse_acks(&short, 10, 1)[0].is_err());
    // a length beyond the datagram
    let mut long = ack(11, 0);
    long[..4].copy_from_slice(&64u32.to_ne_bytes());
    assert!(parse_acks(&long, 10, 1)[0].is_err());
    assert!(matches!(NftError::from(io::Error::from_raw_os_error(libc::EOPNOTSUPP)), NftError::Unsupported(_)));
    assert!(matches!(NftError::from(io::Error::from_raw_os_error(libc::EPERM)), NftError::NotOwner));
}

/// Found by the fuzz target `netlink_nftables`: an error message whose body is too short for its
/// errno ends the datagram, like a malformed header does (at most one error comes back).
#[test]
fn a_truncated_ack_ends_the_datagram() {
    let crash = [
        0x13, 0, 0, 0, 0x02, 0, 0x01, 0x05, 0x17, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x58, 0, 0x9d, 0x4a, 0, 0, 0x9e,
        0x9d, 0x9d, 0x9d, 0x9d, 0x9d, 0x17, 0x0a, 0x4b, 0xff, 0xff, 0xff, 0xff, 0x4a, 0, 0, 0x9e, 0x9d, 0x9d, 0x9d,
        0x9d, 0x9d,
    ];
    let acks = parse_acks(&crash, 0x13, 64);
    assert!(acks.iter().filter(|a| a.is_err()).count() <= 1, "{acks:?}");
}
