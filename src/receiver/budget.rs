//! A core's budget for request bytes held in memory: what bounds memory when clients open
//! many streams and send large or never-ending requests. Single-threaded, no atomics.

use std::cell::Cell;

/// Bytes of request bodies a core may hold at once.
#[derive(Debug)]
pub struct ByteBudget {
    limit: Cell<usize>,
    used: Cell<usize>,
    /// High-water mark of `used`: what an operator compares with `limit` to size it.
    peak: Cell<usize>,
}

impl ByteBudget {
    /// Size it to (concurrent requests you expect per core) × (typical request size), and at
    /// least a few times the largest accepted message.
    pub fn new(limit: usize) -> Self {
        ByteBudget { limit: Cell::new(limit), used: Cell::new(0), peak: Cell::new(0) }
    }

    pub fn limit(&self) -> usize {
        self.limit.get()
    }

    /// A new limit (reload). Bytes already held stay held; new takes see the new limit.
    pub fn set_limit(&self, limit: usize) {
        self.limit.set(limit);
    }

    pub fn used(&self) -> usize {
        self.used.get()
    }

    /// The most bytes held at once since the core started.
    pub fn peak(&self) -> usize {
        self.peak.get()
    }

    /// Takes `n` bytes into `held`, or refuses without taking anything.
    pub fn take(&self, held: &mut Held<'_>, n: usize) -> bool {
        let used = self.used.get().saturating_add(n);
        if used > self.limit.get() {
            return false;
        }
        self.used.set(used);
        self.peak.set(self.peak.get().max(used));
        held.bytes += n;
        true
    }

    /// An empty hold that returns its bytes when dropped.
    pub fn hold(&self) -> Held<'_> {
        Held { budget: self, bytes: 0 }
    }
}

/// Bytes one request holds; returned to the budget on drop, whatever path the request took.
#[derive(Debug)]
pub struct Held<'a> {
    budget: &'a ByteBudget,
    bytes: usize,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.budget.used.set(self.budget.used.get() - self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_the_limit_and_returns_on_drop() {
        let b = ByteBudget::new(100);
        let mut a = b.hold();
        assert!(b.take(&mut a, 60));
        let mut c = b.hold();
        assert!(!b.take(&mut c, 41), "over the limit");
        assert!(b.take(&mut c, 40));
        assert_eq!(b.used(), 100);
        drop(a);
        assert_eq!(b.used(), 40);
        drop(c);
        assert_eq!(b.used(), 0);
        assert_eq!(b.peak(), 100, "the high-water mark stays");
    }
}
