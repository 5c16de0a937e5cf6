//! Fuzz target for the owned nftables table's netlink code: any bytes as a reply datagram must
//! give acknowledgements or errors, never a panic; and kill-switch rules built from the bytes
//! must encode into a batch that decodes back into exactly its messages, numbered in order,
//! every nested attribute within its parent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moat::netlink::nftables::{encode_install, parse_acks, Key, KillRule, Unless};
use moat::netlink::{attrs, messages};

/// Every attribute in `b` well-formed, and (nested, up to `depth` levels) the ones inside it that
/// look nested: the encoder's nests are expressions, hooks and data.
fn well_formed(b: &[u8], depth: u32) -> bool {
    attrs(b).all(|a| match a {
        Err(_) => false,
        Ok(a) => depth == 0 || a.data.len() < 4 || !attrs(a.data).all(|x| x.is_ok()) || well_formed(a.data, depth - 1),
    })
}

fuzz_target!(|data: &[u8]| {
    let seq0 = data.get(..4).map_or(0, |b| u32::from_ne_bytes(b.try_into().unwrap()));
    let acks = parse_acks(data, seq0, 64);
    assert!(acks.iter().filter(|a| a.is_err()).count() <= 1, "a malformed message ends the datagram");
    let mut rules = Vec::new();
    for c in data.chunks(9).take(40) {
        let mut mac = [0u8; 6];
        mac[..c.len().min(6)].copy_from_slice(&c[..c.len().min(6)]);
        let n = c.get(6).copied().unwrap_or(0);
        let unless = match n % 3 {
            0 => Unless::Oif((0..n % 4).map(|i| format!("if{i}{}", "x".repeat((n as usize / 4) % 12))).collect()),
            1 => Unless::Dport { l4proto: n, ports: c.iter().map(|&b| u16::from(b) * 257).collect() },
            _ => Unless::Oif(vec![]),
        };
        let key = if n & 0x80 != 0 {
            Key::Source(std::net::IpAddr::from([mac[0], mac[1], mac[2], mac[3]]))
        } else {
            Key::Mac(mac)
        };
        rules.push(KillRule { key, unless });
    }
    let mut buf = vec![0u8; 65536];
    let Ok((n, count)) = encode_install(&mut buf, seq0, &rules) else { return };
    let msgs: Vec<_> = messages(&buf[..n]).collect();
    assert_eq!(msgs.len() as u32, count + 2, "begin + requests + end");
    for (i, m) in msgs.iter().enumerate() {
        let m = m.as_ref().expect("own message decodes");
        assert_eq!(m.seq, seq0.wrapping_add(i as u32));
        if i > 0 && i as u32 <= count {
            let (_, a) = m.split(4).expect("nfgenmsg");
            let mut k = 0;
            for at in a {
                let at = at.expect("own attribute decodes");
                k += 1;
                if at.ty == 4 {
                    // rule expressions / chain hook: list elements, each name + data
                    assert!(well_formed(at.data, 4), "nested attributes stay inside their parent");
                }
            }
            assert!(k >= 1, "every request names its table");
        }
    }
});
