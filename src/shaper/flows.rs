//! One lane's bounded queue, fair between the flows in it (stochastic fairness queueing).
//!
//! A lane is one device on the router, but one whole peer on a companion: everything the server
//! sends to a home arrives at one address, so a plain FIFO makes a plug's heartbeat wait behind
//! (or be dropped after) a speaker's 200 KB answer. The caller names each packet's flow by a
//! hash (the engine hashes addresses, protocol and ports with a secret salt); packets go to one
//! of [`BUCKETS`] buckets, a slot serves the buckets with packets in round robin (a quantum of
//! one packet: every packet has the same size on the wire), and when the lane is full the
//! newest packet of the longest bucket is dropped, so a bulk flow loses its own packets and a
//! small exchange still gets in.

use std::collections::VecDeque;

/// Buckets per lane: three flows collide in 64 buckets with probability ≈ 5 %.
pub const BUCKETS: usize = 64;

/// A bounded multi-bucket queue of `T`.
pub(super) struct FlowQueue<T> {
    buckets: Vec<VecDeque<T>>,
    /// Buckets holding packets, in service order; each appears once.
    active: VecDeque<u8>,
    len: usize,
}

impl<T> FlowQueue<T> {
    /// An empty queue (buckets allocate on first use).
    pub(super) fn new() -> FlowQueue<T> {
        FlowQueue { buckets: (0..BUCKETS).map(|_| VecDeque::new()).collect(), active: VecDeque::new(), len: 0 }
    }

    /// Packets held.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Queue `item` on the bucket of `flow`. With `limit` packets already held, either `item`
    /// itself (its bucket is a longest one) or the newest packet of the longest bucket is
    /// returned as the one to drop.
    pub(super) fn push(&mut self, flow: u32, item: T, limit: usize) -> Option<T> {
        let b = flow as usize % BUCKETS;
        let mut victim = None;
        if self.len >= limit {
            let (fat, fat_len) = self.fattest();
            if self.buckets[b].len() >= fat_len {
                return Some(item);
            }
            victim = self.buckets[fat].pop_back();
            self.len -= 1;
            if self.buckets[fat].is_empty() {
                self.active.retain(|&x| x as usize != fat);
            }
        }
        if self.buckets[b].is_empty() {
            self.active.push_back(b as u8);
        }
        self.buckets[b].push_back(item);
        self.len += 1;
        victim
    }

    /// The next packet in round-robin order over the buckets with packets.
    pub(super) fn pop(&mut self) -> Option<T> {
        let b = self.active.pop_front()? as usize;
        let item = self.buckets[b].pop_front();
        if !self.buckets[b].is_empty() {
            self.active.push_back(b as u8);
        }
        self.len -= item.is_some() as usize;
        item
    }

    /// Remove every packet (bucket order).
    pub(super) fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.active.clear();
        self.len = 0;
        self.buckets.iter_mut().flat_map(|q| q.drain(..))
    }

    fn fattest(&self) -> (usize, usize) {
        self.active.iter().map(|&b| (b as usize, self.buckets[b as usize].len())).fold((0, 0), |m, x| {
            if x.1 > m.1 {
                x
            } else {
                m
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flows_take_turns() {
        let mut q = FlowQueue::new();
        for i in 0..5 {
            assert!(q.push(1, (1, i), 100).is_none());
        }
        q.push(2, (2, 0), 100);
        q.push(3, (3, 0), 100);
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, vec![(1, 0), (2, 0), (3, 0), (1, 1), (1, 2), (1, 3), (1, 4)]);
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn a_full_queue_drops_from_the_longest_flow() {
        let mut q = FlowQueue::new();
        for i in 0..4 {
            q.push(7, i, 4);
        }
        // a newcomer gets in; the bulk flow loses its newest packet
        assert_eq!(q.push(8, 100, 4), Some(3));
        assert_eq!(q.len(), 4);
        // the bulk flow itself is refused its next packet
        assert_eq!(q.push(7, 4, 4), Some(4));
        assert_eq!(std::iter::from_fn(|| q.pop()).collect::<Vec<_>>(), vec![0, 100, 1, 2]);
    }

    #[test]
    fn drain_empties_everything() {
        let mut q = FlowQueue::new();
        q.push(1, 1, 9);
        q.push(BUCKETS as u32 + 1, 2, 9); // same bucket as flow 1
        q.push(5, 3, 9);
        let mut all: Vec<_> = q.drain().collect();
        all.sort();
        assert_eq!(all, vec![1, 2, 3]);
        assert_eq!(q.len(), 0);
        assert!(q.pop().is_none());
    }
}
