//! A backend of fixed capacity, for overload runs: requests are served one after another at
//! `rate` items per second, so a request waits for the work queued before it. Sans-IO: the
//! caller passes the time and sleeps for the answer.

use std::time::Duration;

/// A FIFO server of `rate` items/s (0: unlimited).
#[derive(Debug, Default, Clone)]
pub struct Throttle {
    rate: u64,
    /// When the work admitted so far is done, as time since the caller's epoch.
    busy_until: Duration,
}

impl Throttle {
    pub fn set_rate(&mut self, items_per_s: u64) {
        self.rate = items_per_s;
    }

    /// Admits `items` arriving at `now`; returns how long the request takes to be served
    /// (its wait behind earlier work plus its own service time).
    pub fn admit(&mut self, now: Duration, items: u64) -> Duration {
        if self.rate == 0 {
            return Duration::ZERO;
        }
        let service = Duration::from_secs_f64(items as f64 / self.rate as f64);
        self.busy_until = self.busy_until.max(now) + service;
        self.busy_until - now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn requests_queue_behind_each_other_at_the_rate() {
        let mut t = Throttle::default();
        assert_eq!(t.admit(MS(0), 1_000_000), Duration::ZERO, "unlimited by default");
        t.set_rate(1000);
        assert_eq!(t.admit(MS(0), 100), MS(100));
        assert_eq!(t.admit(MS(0), 100), MS(200), "waits for the first");
        assert_eq!(t.admit(MS(150), 100), MS(150));
        assert_eq!(t.admit(MS(1000), 100), MS(100), "idle time is not banked");
    }
}
