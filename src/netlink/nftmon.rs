//! The nftables change monitor: a NETLINK_NETFILTER socket subscribed to nftables notifications
//! ([`parse_nft`], [`NftWatch`]), so the daemon sees at once when someone else (e.g. `fw4 flush`)
//! deletes or edits `table inet moat`.

use super::socket::Socket;
use super::{be_u32, cstr, messages};
use crate::sys;
use std::io;
use std::os::fd::AsFd;

/// nfnetlink multicast group of nftables change notifications.
pub const NFNLGRP_NFTABLES: u32 = 7;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWGEN: u8 = 15;
const NFT_MSG_TRACE: u8 = 17;
/// `NFPROTO_INET`, the nfgenmsg family of an `inet` table.
pub const NFPROTO_INET: u8 = 1;

/// One nftables notification (NETLINK_NETFILTER, group [`NFNLGRP_NFTABLES`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NftEvent {
    /// An object (table, chain, rule, set, element, object, flowtable) of `table` in `family`
    /// was added or deleted; `msg` is the `NFT_MSG_*` type.
    Change {
        /// `NFT_MSG_*` message type (e.g. 2 = DELTABLE).
        msg: u8,
        /// nfgenmsg family (`NFPROTO_*`).
        family: u8,
        /// Table name.
        table: String,
    },
    /// A transaction committed (`NFT_MSG_NEWGEN`, sent after the transaction's changes).
    Gen {
        /// Process that committed it (0 if not reported).
        pid: u32,
        /// Its command name.
        comm: String,
    },
}

/// Parse one datagram from an nftables monitor socket. Pure: bytes in, events out; a malformed
/// message ends the datagram (the complete messages before it still count).
///
/// Layout: nlmsghdr (host order), nfgenmsg {family u8, version u8, res_id be16}, then
/// attributes (host-order headers). Attribute 1 is the table name in every object message
/// (NFTA_TABLE_NAME, NFTA_CHAIN_TABLE, NFTA_RULE_TABLE, NFTA_SET_TABLE, ...); in NEWGEN it is
/// the generation id, and NFTA_GEN_PROC_PID (2) is a big-endian u32.
pub fn parse_nft(buf: &[u8]) -> Vec<NftEvent> {
    let mut out = Vec::new();
    for m in messages(buf).map_while(Result::ok) {
        if m.ty >> 8 != NFNL_SUBSYS_NFTABLES {
            continue;
        }
        let Ok((nfgen, a)) = m.split(4) else { continue };
        let msg = (m.ty & 0xff) as u8;
        let family = nfgen[0];
        match msg {
            NFT_MSG_NEWGEN => {
                let mut pid = 0;
                let mut comm = String::new();
                for at in a.lenient() {
                    match at.ty {
                        2 => pid = be_u32(at.data, 0).unwrap_or(pid),
                        3 => comm = cstr(at.data),
                        _ => {}
                    }
                }
                out.push(NftEvent::Gen { pid, comm });
            }
            NFT_MSG_TRACE => {}
            _ => {
                if let Some(at) = a.lenient().find(|at| at.ty == 1) {
                    out.push(NftEvent::Change { msg, family, table: cstr(at.data) });
                }
            }
        }
    }
    out
}

/// Folds nftables notifications into "a transaction touched some of these tables": a pure
/// state machine over a list of watched `(family, table)` pairs.
#[derive(Debug, Clone, Default)]
pub struct NftWatch {
    touched: u32,
}

/// A committed transaction that changed watched tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftCommit {
    /// Committing process (0 if not reported).
    pub pid: u32,
    /// Its command name.
    pub comm: String,
    /// Bit `i` set: the transaction changed `watched[i]`.
    pub tables: u32,
}

impl NftWatch {
    /// Feed one event. Returns the commit when a transaction that changed one of `watched`
    /// (at most 32 `(family, table)` pairs) has committed (its NEWGEN arrived).
    pub fn feed(&mut self, ev: NftEvent, watched: &[(u8, &str)]) -> Option<NftCommit> {
        match ev {
            NftEvent::Change { family, table, .. } => {
                for (i, (f, t)) in watched.iter().enumerate().take(32) {
                    if *f == family && *t == table {
                        self.touched |= 1 << i;
                    }
                }
                None
            }
            NftEvent::Gen { pid, comm } => {
                let tables = std::mem::take(&mut self.touched);
                (tables != 0).then_some(NftCommit { pid, comm, tables })
            }
        }
    }
}

impl Socket {
    /// Open a NETLINK_NETFILTER socket subscribed to nftables notifications
    /// ([`NFNLGRP_NFTABLES`]), with a large receive buffer (loading fw4 sends hundreds).
    pub fn open_nft_monitor() -> io::Result<Socket> {
        let s = Self::open_proto(libc::NETLINK_NETFILTER, 1 << (NFNLGRP_NFTABLES - 1))?;
        // Failure only leaves the default size.
        let _ = sys::set_rcvbuf(s.as_fd(), 1 << 20, false);
        Ok(s)
    }

    /// Read every pending nftables notification (non-blocking). An error (ENOBUFS: some were
    /// lost) means the caller must re-check the state itself.
    pub fn nft_events(&self) -> io::Result<Vec<NftEvent>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            match self.recv_nowait(&mut buf)? {
                Some(n) => out.extend(parse_nft(&buf[..n])),
                None => return Ok(out),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Builder;
    use super::*;

    /// An nfnetlink message as the kernel builds it: host-order headers, be16 res_id.
    fn nft_msg(msg: u8, family: u8, attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let ty = (NFNL_SUBSYS_NFTABLES << 8) | msg as u16;
        let mut buf = [0u8; 256];
        let mut b = Builder::new(&mut buf, ty, 0, 0);
        b.bytes(&[family, 0, 0x12, 0x34]);
        for (t, d) in attrs {
            b.attr(*t, d);
        }
        let n = b.finish().unwrap();
        buf[..n].to_vec()
    }

    #[test]
    fn nft_notifications_parse_table_and_committing_pid() {
        let mut dgram = nft_msg(2, NFPROTO_INET, &[(1, b"moat\0"), (3, &[0, 0, 0, 0, 0, 0, 0, 9])]);
        dgram.extend(nft_msg(6, 2, &[(1, b"fw4\0"), (2, b"input\0")]));
        dgram.extend(nft_msg(
            NFT_MSG_NEWGEN,
            0,
            &[(1, &77u32.to_be_bytes()), (2, &0x0001_e240u32.to_be_bytes()), (3, b"nft\0")],
        ));
        dgram.extend(nft_msg(17, NFPROTO_INET, &[(1, b"moat\0")])); // trace: ignored
        let mut other = [0u8; 64];
        let n = Builder::new(&mut other, 16, 0, 1).bytes(&[0; 16]).finish().unwrap(); // RTM_NEWLINK: ignored
        dgram.extend(&other[..n]);
        let ev = parse_nft(&dgram);
        assert_eq!(
            ev,
            vec![
                NftEvent::Change { msg: 2, family: NFPROTO_INET, table: "moat".into() },
                NftEvent::Change { msg: 6, family: 2, table: "fw4".into() },
                NftEvent::Gen { pid: 123_456, comm: "nft".into() },
            ]
        );
        // Truncated datagram: no panic, the complete messages still parse.
        assert_eq!(parse_nft(&dgram[..dgram.len() - 3]).len(), 3);
        assert!(parse_nft(&[1, 2, 3]).is_empty());
    }

    #[test]
    fn nft_watch_reports_a_committed_transaction_touching_the_table() {
        let mut w = NftWatch::default();
        let ch = |fam: u8, t: &str| NftEvent::Change { msg: 2, family: fam, table: t.into() };
        let gen = |pid| NftEvent::Gen { pid, comm: "nft".into() };
        let watched = [(NFPROTO_INET, "moat"), (2, "mangle")];
        assert_eq!(w.feed(ch(2, "moat"), &watched), None); // ip moat: another table
        assert_eq!(w.feed(ch(NFPROTO_INET, "fw4"), &watched), None);
        assert_eq!(w.feed(gen(5), &watched), None);
        assert_eq!(w.feed(ch(NFPROTO_INET, "moat"), &watched), None);
        assert_eq!(w.feed(gen(6), &watched), Some(NftCommit { pid: 6, comm: "nft".into(), tables: 1 }));
        assert_eq!(w.feed(gen(7), &watched), None);
        w.feed(ch(2, "mangle"), &watched);
        w.feed(ch(NFPROTO_INET, "moat"), &watched);
        assert_eq!(w.feed(gen(8), &watched).map(|c| c.tables), Some(3));
    }
}
