//! Reconnect backoff for one backend, sans-IO: it is told `now` and answers whether a connect
//! attempt may start. While a backend is down, requests fail fast instead of each one trying
//! to connect: that is what keeps a dead backend from causing a retry storm.

use std::time::{Duration, Instant};

/// Exponential backoff between connect attempts.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    failures: u32,
    next_attempt: Option<Instant>,
}

impl Backoff {
    /// `initial` after the first failure, doubling up to `max`. 100 ms / 5 s suit a LAN tier
    /// of collectors: a restarted collector is found again within 5 s.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff { initial, max, failures: 0, next_attempt: None }
    }

    /// `Some(wait)` while attempts are held back.
    pub fn blocked(&self, now: Instant) -> Option<Duration> {
        self.next_attempt.and_then(|t| t.checked_duration_since(now)).filter(|d| !d.is_zero())
    }

    /// Records a failed attempt; `jitter` in [0, 1) spreads cores' and replicas' retries.
    pub fn on_failure(&mut self, now: Instant, jitter: f64) {
        let exp = self.initial.saturating_mul(1u32 << self.failures.min(16));
        let delay = exp.min(self.max).mul_f64(1.0 + jitter.clamp(0.0, 1.0) * 0.2);
        self.failures = self.failures.saturating_add(1);
        self.next_attempt = Some(now + delay);
    }

    pub fn on_success(&mut self) {
        self.failures = 0;
        self.next_attempt = None;
    }

    /// Consecutive failed attempts.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn doubles_up_to_max_and_resets() {
        let t0 = Instant::now();
        let mut b = Backoff::new(100 * MS, 1000 * MS);
        assert_eq!(b.blocked(t0), None);
        let mut waits = vec![];
        for _ in 0..6 {
            b.on_failure(t0, 0.0);
            waits.push(b.blocked(t0).unwrap().as_millis());
        }
        assert_eq!(waits, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.blocked(t0 + 1000 * MS), None, "attempts resume after the wait");
        b.on_success();
        assert_eq!((b.blocked(t0), b.failures()), (None, 0));
    }

    #[test]
    fn jitter_stretches_by_at_most_a_fifth() {
        let t0 = Instant::now();
        let mut b = Backoff::new(100 * MS, 1000 * MS);
        b.on_failure(t0, 0.999);
        let w = b.blocked(t0).unwrap();
        assert!(w > 119 * MS && w <= 120 * MS, "{w:?}");
    }
}
