//! Fuzz target for rtnetlink replies and events: any datagram must be walked without a panic by
//! the message/attribute layer and every route parser (links, addresses, rules, routes, events).
#![no_main]

use libfuzzer_sys::fuzz_target;
use moat::netlink::{self, route};

fuzz_target!(|data: &[u8]| {
    let _ = route::parse_events(data);
    for m in netlink::messages(data).map_while(Result::ok) {
        let _ = route::parse_link(&m);
        let _ = route::parse_addr(&m);
        let _ = route::parse_moat_rule(&m);
        let _ = route::parse_moat_route(&m);
        let _ = m.ack();
        for fixed in [0, 4, 8, 12, 16] {
            if let Ok((_, attrs)) = m.split(fixed) {
                for a in attrs.map_while(Result::ok) {
                    let _ = (a.ne_u32(), a.be_u32());
                }
            }
        }
    }
});
