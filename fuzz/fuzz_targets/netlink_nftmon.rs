//! Fuzz target for nftables monitor datagrams: parse, then fold the events into a watch.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moat::netlink::{nftmon, NftWatch, NFPROTO_INET};

fuzz_target!(|data: &[u8]| {
    let mut w = NftWatch::default();
    for ev in nftmon::parse_nft(data) {
        let _ = w.feed(ev, &[(NFPROTO_INET, "moat"), (2, "mangle"), (10, "mangle")]);
    }
});
