//! Coalescing parts per backend (sans-IO). While `max_in_flight` calls to a backend are
//! running on a core, new parts wait; when a call ends, the next one carries every part that
//! waited (up to `max_bytes`) as one message. Concatenated protobuf messages of one type are
//! one valid message whose repeated fields are concatenated, so an
//! `ExportTraceServiceRequest` built of several parts is the union of their resource spans.
//!
//! Under light load every part goes alone and at once (no added latency); under heavy load
//! the calls per part, and the backend's work per part, fall by the batching factor.

use std::collections::VecDeque;

/// How far to coalesce. Size `max_in_flight` so that a backend's round trip at light load
/// fits within it (a few calls); `max_bytes` below every backend's largest accepted message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoalesceLimits {
    /// Calls per backend and path running at once on a core before parts start to wait;
    /// 0 never coalesces. A few calls cover a backend's round trip at light load; lower
    /// batches more (fewer, larger calls) at the cost of waiting behind a running call.
    pub max_in_flight: usize,
    /// Largest coalesced message, in bytes (a larger single part still goes, alone). Keep it
    /// under the backends' `max_recv_msg_size_mib` (the collector's default is 4 MiB).
    pub max_bytes: usize,
}

impl Default for CoalesceLimits {
    fn default() -> Self {
        CoalesceLimits { max_in_flight: 4, max_bytes: 1 << 20 }
    }
}

/// One backend's (and path's) calls in flight and the parts waiting for the next call.
#[derive(Debug)]
pub struct Coalescer<T> {
    limits: CoalesceLimits,
    in_flight: usize,
    waiting: VecDeque<(usize, T)>,
}

impl<T> Coalescer<T> {
    pub fn new(limits: CoalesceLimits) -> Self {
        Coalescer { limits, in_flight: 0, waiting: VecDeque::new() }
    }

    /// Takes a call slot for a part sent now, if one is free and nobody waits (always, when
    /// coalescing is off).
    pub fn begin(&mut self) -> bool {
        let off = self.limits.max_in_flight == 0;
        let free = off || (self.in_flight < self.limits.max_in_flight && self.waiting.is_empty());
        self.in_flight += usize::from(free);
        free
    }

    /// Queues a part of `bytes` for the next call.
    pub fn wait(&mut self, bytes: usize, item: T) {
        self.waiting.push_back((bytes, item));
    }

    /// A call ended: the parts the next call carries, in arrival order (the slot passes to
    /// it), or none (the slot is freed).
    pub fn next_batch(&mut self) -> Vec<T> {
        let mut batch = Vec::new();
        let mut bytes = 0usize;
        while let Some((len, _)) = self.waiting.front() {
            if !batch.is_empty() && bytes.saturating_add(*len) > self.limits.max_bytes {
                break;
            }
            bytes = bytes.saturating_add(*len);
            batch.extend(self.waiting.pop_front().map(|(_, item)| item));
        }
        if batch.is_empty() {
            self.in_flight = self.in_flight.saturating_sub(1);
        }
        batch
    }

    /// Calls running now (for tests and telemetry).
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Parts waiting now.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_in_flight: usize, max_bytes: usize) -> CoalesceLimits {
        CoalesceLimits { max_in_flight, max_bytes }
    }

    #[test]
    fn zero_in_flight_turns_coalescing_off() {
        let mut c = Coalescer::<u32>::new(limits(0, 100));
        assert!((0..100).all(|_| c.begin()));
        assert!((0..100).all(|_| c.next_batch().is_empty()));
        assert_eq!(c.in_flight(), 0);
    }

    #[test]
    fn light_load_sends_every_part_at_once() {
        let mut c = Coalescer::<u32>::new(limits(2, 100));
        assert!(c.begin());
        assert!(c.next_batch().is_empty(), "nothing waited: the slot is freed");
        assert!(c.begin() && c.begin());
        assert_eq!(c.in_flight(), 2);
    }

    #[test]
    fn parts_wait_while_the_slots_are_busy_and_go_together() {
        let mut c = Coalescer::new(limits(1, 100));
        assert!(c.begin());
        for i in 0..3 {
            assert!(!c.begin());
            c.wait(10, i);
        }
        assert_eq!(c.next_batch(), [0, 1, 2], "all waiting parts, in order");
        assert_eq!(c.in_flight(), 1, "the slot passed to the batch");
        assert!(!c.begin(), "the batch holds the slot");
        c.wait(10, 3);
        assert_eq!(c.next_batch(), [3]);
        assert!(c.next_batch().is_empty());
        assert_eq!((c.in_flight(), c.waiting()), (0, 0));
    }

    #[test]
    fn batches_stop_at_max_bytes_but_a_large_part_still_goes() {
        let mut c = Coalescer::new(limits(1, 100));
        assert!(c.begin());
        [(40, 'a'), (50, 'b'), (20, 'c'), (500, 'd'), (1, 'e')].into_iter().for_each(|(n, x)| c.wait(n, x));
        assert_eq!(c.next_batch(), ['a', 'b']);
        assert_eq!(c.next_batch(), ['c']);
        assert_eq!(c.next_batch(), ['d'], "larger than max_bytes: alone");
        assert_eq!(c.next_batch(), ['e']);
    }

    #[test]
    fn the_slot_passes_to_the_batch_and_is_freed_after_it() {
        let mut c = Coalescer::new(limits(1, 100));
        assert!(c.begin());
        c.wait(1, 1);
        assert_eq!(c.next_batch(), [1]);
        assert!(!c.begin(), "the slot went to the batch");
        assert!(c.next_batch().is_empty());
        assert!(c.begin(), "free again once nothing waits");
    }
}
