//! A core's pool of HTTP/2 receive windows: what bounds the request bytes h2 buffers before
//! handlers read (and charge) them. Single-threaded, no locks; plain logic, no I/O.
//!
//! A peer may send as many bytes as its connection window allows, and h2 holds them until a
//! handler reads them: with 16 MiB per connection, 32 connections may park 512 MiB on a core
//! that the request budget never sees. So every HTTP/2 connection's window is taken from a
//! per-core pool carved out of `request_memory` ([`split`]), and the windows of a core's open
//! connections never add up to more than that pool (past `pool / 64 KiB` connections each new
//! one still gets the protocol's 64 KiB, which cannot be refused: see [`MIN_WINDOW`]).
//!
//! A connection's window is taken when it opens, as `min(fair share, what is left)`, where the
//! fair share is `pool / max(open connections, 4)` clamped to [`MIN_WINDOW`, `CONN_WINDOW`]
//! (the first connection alone does not take the whole pool). As connections come and go, a
//! gRPC connection is rebalanced between streams ([`ConnWindow::rebalance`]): grown towards
//! the fair share from what is left, or lowered to it. HTTP/2 cannot take back credit already
//! granted (a lower target only withholds WINDOW_UPDATEs until the peer has used it), so a
//! lowered window's former credit stays taken from the pool until the connection's handlers
//! have read that many bytes ([`Consumed`]); everything goes back when the connection closes.
//! h2c connections (through hyper) keep the window they opened with.

use std::cell::Cell;
use std::rc::Rc;

use crate::runtime::tuning::{CONN_WINDOW, STREAM_WINDOW};

/// The protocol's initial window (RFC 9113 §6.9.2): a peer may send this much on a new
/// connection before any WINDOW_UPDATE, so it is every connection's floor.
pub const MIN_WINDOW: usize = 65_535;

/// No connection's fair share is more than this fraction of the pool, however few are open:
/// what the first connections take, later ones would not get until they close.
const FEW: usize = 4;

/// Splits a core's `request_memory` into (request budget, window pool): the pool is a quarter,
/// less if the budget would then not hold two of the `largest` requests (one being read and
/// its split parts; the config check guarantees `request_memory` holds two).
pub fn split(request_memory: usize, largest: usize) -> (usize, usize) {
    let pool = (request_memory / 4).min(request_memory.saturating_sub(largest.saturating_mul(2)));
    (request_memory - pool, pool)
}

/// The windows of one core's HTTP/2 connections (both receivers).
#[derive(Debug)]
pub struct WindowShare {
    pool: Cell<usize>,
    /// Sum of the windows of open connections (at least `MIN_WINDOW` each, even past the pool).
    taken: Cell<usize>,
    open: Cell<usize>,
}

impl WindowShare {
    /// Size `pool` with [`split`]: bytes h2 may buffer on this core before handlers read them.
    pub fn new(pool: usize) -> Rc<Self> {
        Rc::new(WindowShare { pool: Cell::new(pool), taken: Cell::new(0), open: Cell::new(0) })
    }

    /// A new pool (reload). Open connections keep their windows (they go back to the pool as
    /// they close); new connections and growth see the new pool.
    pub fn set_pool(&self, pool: usize) {
        self.pool.set(pool);
    }

    pub fn pool(&self) -> usize {
        self.pool.get()
    }

    /// Sum of the windows of open connections.
    pub fn taken(&self) -> usize {
        self.taken.get()
    }

    /// `pool / max(open connections, FEW)`, within [`MIN_WINDOW`, `CONN_WINDOW`].
    fn fair(&self) -> usize {
        (self.pool.get() / self.open.get().max(FEW)).clamp(MIN_WINDOW, CONN_WINDOW as usize)
    }

    fn left(&self) -> usize {
        self.pool.get().saturating_sub(self.taken.get())
    }

    /// The window of a connection that opens now: `min(fair share, what is left)`, at least
    /// [`MIN_WINDOW`]. Held until the returned [`ConnWindow`] is dropped.
    pub fn open(self: &Rc<Self>) -> ConnWindow {
        self.open.set(self.open.get() + 1);
        let size = self.fair().min(self.left()).max(MIN_WINDOW);
        self.taken.set(self.taken.get() + size);
        ConnWindow { share: self.clone(), size, draining: 0, consumed: Consumed::default(), seen: 0 }
    }
}

/// Request bytes a connection's stream handlers have read and released to h2: what lets a
/// lowered window give its former credit back to the pool.
#[derive(Debug, Clone, Default)]
pub struct Consumed(Rc<Cell<usize>>);

impl Consumed {
    pub fn add(&self, n: usize) {
        self.0.set(self.0.get().wrapping_add(n));
    }
}

/// One connection's window, taken from its core's [`WindowShare`]; returned on drop.
#[derive(Debug)]
pub struct ConnWindow {
    share: Rc<WindowShare>,
    size: usize,
    /// Credit granted before the window was lowered, which the peer may still use: taken from
    /// the pool until the handlers have read as much (bytes of streams h2 dropped unread are
    /// not counted, so this errs on the side of holding the pool).
    draining: usize,
    consumed: Consumed,
    /// `consumed` when last settled.
    seen: usize,
}

impl ConnWindow {
    /// The connection's receive window (h2 `initial_connection_window_size`).
    pub fn size(&self) -> u32 {
        u32::try_from(self.size).unwrap_or(CONN_WINDOW)
    }

    /// The per-stream window to advertise: [`STREAM_WINDOW`], but never more than the
    /// connection's (one stream alone must not be able to use the whole window of the others).
    pub fn stream_size(&self) -> u32 {
        STREAM_WINDOW.min(self.size())
    }

    /// The counter the connection's stream handlers add the bytes they read to.
    pub fn consumed(&self) -> Consumed {
        self.consumed.clone()
    }

    /// The window this connection should have now, if it changed (to apply with
    /// `set_target_window_size`): lowered to the fair share when above it (the credit it had
    /// granted stays taken from the pool until read), or grown towards it from what is left.
    pub fn rebalance(&mut self) -> Option<u32> {
        self.settle();
        let fair = self.share.fair();
        if self.size <= fair {
            return self.grow();
        }
        self.draining += self.size - fair;
        self.size = fair;
        Some(self.size())
    }

    /// Returns to the pool what the handlers have read of the credit granted before lowering.
    fn settle(&mut self) {
        let total = self.consumed.0.get();
        let freed = total.wrapping_sub(self.seen).min(self.draining);
        self.seen = total;
        self.draining -= freed;
        self.share.taken.set(self.share.taken.get() - freed);
    }

    /// Grows the window towards the fair share from what the pool has left.
    fn grow(&mut self) -> Option<u32> {
        let want = self.share.fair().saturating_sub(self.size).min(self.share.left());
        if want == 0 {
            return None;
        }
        self.size += want;
        self.share.taken.set(self.share.taken.get() + want);
        Some(self.size())
    }
}

impl Drop for ConnWindow {
    fn drop(&mut self) {
        let share = &self.share;
        share.taken.set(share.taken.get() - self.size - self.draining);
        share.open.set(share.open.get() - 1);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::disallowed_methods)]
    use super::*;

    const MIB: usize = 1 << 20;

    #[test]
    fn split_keeps_two_largest_requests_in_the_budget() {
        assert_eq!(split(256 * MIB, 4 * MIB), (192 * MIB, 64 * MIB));
        assert_eq!(split(16 * MIB, 4 * MIB), (12 * MIB, 4 * MIB));
        assert_eq!(split(8 * MIB, 4 * MIB), (8 * MIB, 0), "exactly two requests: no pool");
        assert_eq!(split(10 * MIB, 4 * MIB), (8 * MIB, 2 * MIB));
    }

    #[test]
    fn one_connection_gets_the_full_window() {
        let share = WindowShare::new(64 * MIB);
        let c = share.open();
        assert_eq!(c.size(), CONN_WINDOW);
        assert_eq!(c.stream_size(), STREAM_WINDOW);
    }

    #[test]
    fn windows_never_add_up_past_the_pool() {
        let share = WindowShare::new(4 * MIB);
        let conns: Vec<ConnWindow> = (0..64).map(|_| share.open()).collect();
        assert!(conns[..4].iter().all(|c| c.size() == MIB as u32), "a quarter of the pool each");
        assert!(conns[4..].iter().all(|c| c.size() == MIN_WINDOW as u32), "past the pool: the protocol's floor");
        assert_eq!(share.taken(), 4 * MIB + 60 * MIN_WINDOW);
        drop(conns);
        assert_eq!(share.taken(), 0);
    }

    #[test]
    fn the_stream_window_never_exceeds_the_connection_window() {
        let share = WindowShare::new(MIB);
        let a = share.open();
        assert_eq!((a.size(), a.stream_size()), (MIB as u32 / 4, MIB as u32 / 4));
    }

    #[test]
    fn a_connection_grows_into_what_a_closed_one_left() {
        let share = WindowShare::new(4 * MIB);
        let first: Vec<ConnWindow> = (0..4).map(|_| share.open()).collect();
        let mut late = share.open();
        assert_eq!(late.size(), MIN_WINDOW as u32);
        assert_eq!(late.rebalance(), None, "nothing left");
        drop(first);
        assert_eq!(late.rebalance(), Some(MIB as u32), "a quarter of the pool");
        assert_eq!(share.taken(), MIB);
        assert_eq!(late.rebalance(), None);
    }

    #[test]
    fn a_lowered_window_returns_its_credit_to_the_pool_as_it_is_read() {
        let share = WindowShare::new(64 * MIB);
        let mut first = share.open();
        let _others: Vec<ConnWindow> = (0..7).map(|_| share.open()).collect();
        let taken = share.taken();
        assert_eq!(first.size(), CONN_WINDOW);
        assert_eq!(first.rebalance(), Some(8 * MIB as u32), "lowered to 64 MiB / 8");
        assert_eq!(share.taken(), taken, "its former credit is still out");
        first.consumed().add(5 * MIB);
        assert_eq!(first.rebalance(), None);
        assert_eq!(share.taken(), taken - 5 * MIB, "read: back in the pool");
        first.consumed().add(10 * MIB);
        first.rebalance();
        assert_eq!(share.taken(), taken - 8 * MIB, "no more than it had granted above its window");
        drop(first);
        assert_eq!(share.taken(), taken - 16 * MIB);
    }

    #[test]
    fn a_smaller_pool_applies_to_new_connections() {
        let share = WindowShare::new(64 * MIB);
        let a = share.open();
        share.set_pool(16 * MIB);
        let b = share.open();
        assert_eq!(a.size(), CONN_WINDOW, "kept until rebalanced");
        assert_eq!(b.size(), MIN_WINDOW as u32, "nothing left of the new pool");
        drop(a);
        assert_eq!(share.open().size(), 4 * MIB as u32, "a quarter of the 16 MiB pool");
    }
}
