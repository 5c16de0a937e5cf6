//! What the daemon's three threads hand each other: a bounded [`Queue`] and a one-shot reply
//! [`Slot`], on `Mutex` + `Condvar`. Not `std::sync::mpsc`: its channels carry three flavours of
//! implementation each, instantiated per message type, and the packet and logger threads' five
//! channel types cost 137 KB of the stripped mipsel binary (measured at the issue-8 merge).
//! No 64-bit atomics (32-bit MIPS has none).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

struct State<T> {
    items: VecDeque<T>,
    cap: usize,
    closed: bool,
}

struct Inner<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
}

/// A bounded multi-producer queue; clones share it.
pub struct Queue<T>(Arc<Inner<T>>);

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue(Arc::clone(&self.0))
    }
}

impl<T> Queue<T> {
    /// An empty queue holding at most `cap` items (at least 1).
    pub fn new(cap: usize) -> Queue<T> {
        let state = State { items: VecDeque::new(), cap: cap.max(1), closed: false };
        Queue(Arc::new(Inner { state: Mutex::new(state), ready: Condvar::new() }))
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A thread that panicked while holding the lock left the queue consistent (every
        // operation is one VecDeque call): keep using it.
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Append `v` unless the queue is full or closed (then `v` comes back). Never blocks.
    pub fn try_push(&self, v: T) -> Result<(), T> {
        let mut s = self.lock();
        if s.closed || s.items.len() >= s.cap {
            return Err(v);
        }
        s.items.push_back(v);
        drop(s);
        self.0.ready.notify_one();
        Ok(())
    }

    /// The oldest item, if any. Never blocks.
    pub fn try_pop(&self) -> Option<T> {
        self.lock().items.pop_front()
    }

    /// The oldest item, waiting for one; `None` once the queue is closed and empty.
    pub fn pop(&self) -> Option<T> {
        let mut s = self.lock();
        loop {
            if let Some(v) = s.items.pop_front() {
                return Some(v);
            }
            if s.closed {
                return None;
            }
            s = self.0.ready.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// No more pushes; [`Queue::pop`] returns what is left, then `None`.
    pub fn close(&self) {
        self.lock().closed = true;
        self.0.ready.notify_all();
    }

    /// Whether [`Queue::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }
}

/// A one-shot answer: one side [`Slot::put`]s, the other [`Slot::wait`]s for it.
pub struct Slot<T>(Arc<(Mutex<Option<T>>, Condvar)>);

impl<T> Clone for Slot<T> {
    fn clone(&self) -> Self {
        Slot(Arc::clone(&self.0))
    }
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot(Arc::new((Mutex::new(None), Condvar::new())))
    }
}

impl<T> Slot<T> {
    /// Store the answer and wake the waiter.
    pub fn put(&self, v: T) {
        *self.0 .0.lock().unwrap_or_else(|e| e.into_inner()) = Some(v);
        self.0 .1.notify_all();
    }

    /// The answer, waiting at most `timeout` for it.
    pub fn wait(&self, timeout: Duration) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut g = self.0 .0.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(v) = g.take() {
                return Some(v);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            g = self.0 .1.wait_timeout(g, left).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_refuses_and_a_closed_one_drains_then_ends() {
        let q = Queue::new(2);
        assert!(q.try_push(1).is_ok() && q.try_push(2).is_ok());
        assert_eq!(q.try_push(3), Err(3));
        assert_eq!(q.try_pop(), Some(1));
        q.close();
        assert!(q.is_closed());
        assert_eq!(q.try_push(4), Err(4));
        assert_eq!(q.pop(), Some(2));
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn pop_waits_for_another_thread_and_a_slot_carries_the_answer() {
        let q: Queue<Slot<u32>> = Queue::new(4);
        let worker = {
            let q = q.clone();
            std::thread::spawn(move || {
                while let Some(s) = q.pop() {
                    s.put(42);
                }
            })
        };
        let s = Slot::default();
        q.try_push(s.clone()).ok().unwrap();
        assert_eq!(s.wait(Duration::from_secs(5)), Some(42));
        let never: Slot<u32> = Slot::default();
        assert_eq!(never.wait(Duration::from_millis(20)), None);
        q.close();
        worker.join().unwrap();
    }
}
