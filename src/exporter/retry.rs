//! Retrying only what failed, sans-IO: the retry schedule (the collector's `retry_on_failure`)
//! and one backend's bounded queue of parts waiting for their next attempt. Everything takes
//! `now` and a jitter value; the glommio edge (`backend.rs`) sleeps and sends.
//!
//! The queue backs off as a whole: while its backend fails, one part is tried per interval;
//! once one gets through, the rest follow at once, `num_consumers` at a time. Each part keeps
//! its own first-failure time, and a part older than `max_elapsed_time` is dropped (counted
//! and logged). Queued bytes are charged to the core's queue budget (`Charge`).

use std::cell::Cell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::error::ExportError;
use crate::config::{RetryOnFailure, SendingQueue, Signal};

/// The retry schedule: exponential, capped, randomized, with a deadline per part.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    pub initial: Duration,
    pub max_interval: Duration,
    pub max_elapsed: Duration,
    pub multiplier: f64,
    pub randomization: f64,
}

impl RetryPolicy {
    /// The policy of `cfg`, or `None` when retries are disabled.
    pub fn from_config(cfg: &RetryOnFailure) -> Option<Self> {
        cfg.enabled.then_some(RetryPolicy {
            initial: cfg.initial_interval,
            max_interval: cfg.max_interval,
            max_elapsed: cfg.max_elapsed_time,
            multiplier: cfg.multiplier,
            randomization: cfg.randomization_factor,
        })
    }

    /// The wait after `failures` consecutive failures (≥ 1); `jitter` in [0, 1) spreads it by
    /// ± `randomization`.
    pub fn delay(&self, failures: u32, jitter: f64) -> Duration {
        let exp = self.multiplier.powi(i32::try_from(failures.saturating_sub(1).min(64)).unwrap_or(64));
        let base = self.initial.as_secs_f64() * exp;
        let capped = base.min(self.max_interval.as_secs_f64());
        let spread = 1.0 + self.randomization * (2.0 * jitter.clamp(0.0, 1.0) - 1.0);
        Duration::from_secs_f64((capped * spread).max(0.0))
    }

    /// Whether a part that first failed at `first` may still be tried at `at`.
    pub fn alive(&self, first: Instant, at: Instant) -> bool {
        at.saturating_duration_since(first) <= self.max_elapsed
    }
}

/// Whether a failed part may be sent again: the backend may take it later.
pub fn is_retryable(e: &ExportError) -> bool {
    match e {
        ExportError::Unreachable { .. }
        | ExportError::Connect { .. }
        | ExportError::ConnectionLost(_)
        | ExportError::StreamReset(_)
        | ExportError::Timeout(_) => true,
        ExportError::Rejected(status) => status.code.is_retryable(),
        ExportError::BadResponse(_) | ExportError::NoBackends => false,
    }
}

thread_local! {
    /// Bytes queued for retry on this core, over every backend.
    static QUEUED_BYTES: Cell<usize> = const { Cell::new(0) };
    /// Items (spans, points, log records) acknowledged to clients and still queued on this core.
    static QUEUED_ITEMS: Cell<u64> = const { Cell::new(0) };
    /// Items acknowledged to clients and then dropped from this core's queues.
    static DROPPED_ITEMS: Cell<u64> = const { Cell::new(0) };
    /// Set when the core drains for shutdown: retries stop waiting out long backoffs.
    static HURRY: Cell<bool> = const { Cell::new(false) };
}

/// The longest wait between retries while the core drains for shutdown: the drain deadline
/// is short, and waiting out a 30 s backoff would turn queued data into a log line.
pub const HURRIED_WAIT: Duration = Duration::from_millis(200);

/// Makes this core's retry queues hurry (shutdown): waits are capped at [`HURRIED_WAIT`].
pub fn set_hurry() {
    HURRY.with(|h| h.set(true));
}

fn hurried(wait: Duration) -> Duration {
    if HURRY.with(Cell::get) { wait.min(HURRIED_WAIT) } else { wait }
}

/// Counts acknowledged items that will not be delivered.
pub fn count_dropped(items: u64) {
    DROPPED_ITEMS.with(|d| d.set(d.get() + items));
}

/// Items acknowledged to clients and then dropped on this core (retries ran out).
pub fn dropped_items() -> u64 {
    DROPPED_ITEMS.with(Cell::get)
}

/// Items acknowledged to clients and queued for retry on this core (for shutdown accounting).
pub fn queued_items() -> u64 {
    QUEUED_ITEMS.with(Cell::get)
}

/// Bytes queued for retry on this core.
pub fn queued_bytes() -> usize {
    QUEUED_BYTES.with(Cell::get)
}

/// A part's bytes and items held in the core's queue budget; returned on drop.
#[derive(Debug)]
pub struct Charge {
    bytes: usize,
    items: u64,
}

impl Charge {
    /// Charges `bytes` if the core stays within `limit`.
    pub fn take(bytes: usize, items: u64, limit: usize) -> Option<Charge> {
        let used = queued_bytes().checked_add(bytes).filter(|&u| u <= limit)?;
        QUEUED_BYTES.with(|q| q.set(used));
        QUEUED_ITEMS.with(|q| q.set(q.get() + items));
        Some(Charge { bytes, items })
    }
}

impl Charge {
    fn add_items(&mut self, items: u64) {
        QUEUED_ITEMS.with(|q| q.set(q.get() + items));
        self.items += items;
    }
}

/// Room held in a backend's queue for a part about to be sent to a failing backend: its slot
/// counted and its bytes charged, so that if the part fails it is queued for sure. Released on
/// drop (the part was accepted) or used by [`RetryQueue::push`].
#[derive(Debug)]
pub struct Reservation {
    charge: Option<Charge>,
    slots: Rc<Cell<usize>>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.slots.set(self.slots.get().saturating_sub(1));
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        QUEUED_BYTES.with(|q| q.set(q.get().saturating_sub(self.bytes)));
        QUEUED_ITEMS.with(|q| q.set(q.get().saturating_sub(self.items)));
    }
}

/// One part waiting for another attempt.
#[derive(Debug)]
pub struct QueuedPart {
    pub framed: Bytes,
    pub path: &'static str,
    pub signal: Signal,
    pub items: u32,
    /// Exporter index, for telemetry.
    pub exporter: usize,
    /// When its first attempt failed: `max_elapsed_time` counts from here.
    pub first_failure: Instant,
    _charge: Charge,
}

/// Why a part was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QueueFull {
    #[error("the backend's retry queue holds its `queue_size` parts")]
    Parts,
    #[error("the core's retry queues hold their `max_size_mib`")]
    Bytes,
}

/// Sizes of one backend's queue on one core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    pub parts: usize,
    pub bytes: usize,
    pub consumers: usize,
}

impl QueueLimits {
    pub fn from_config(q: &SendingQueue) -> Self {
        QueueLimits { parts: q.queue_size, bytes: q.max_bytes, consumers: q.num_consumers.max(1) }
    }
}

/// What the part being queued carries.
#[derive(Debug)]
pub struct NewPart {
    pub framed: Bytes,
    pub path: &'static str,
    pub signal: Signal,
    pub items: u32,
    pub exporter: usize,
}

/// One backend's retry queue on one core.
#[derive(Debug)]
pub struct RetryQueue {
    parts: VecDeque<QueuedPart>,
    limits: QueueLimits,
    failures: u32,
    next_attempt: Option<Instant>,
    /// Slots held by [`Reservation`]s.
    reserved: Rc<Cell<usize>>,
    /// Parts taken for a re-send and not yet back: they still occupy the queue, so a request
    /// never sees an empty (healthy-looking) queue that fills before its own part fails.
    in_flight: usize,
}

impl RetryQueue {
    pub fn new(limits: QueueLimits) -> Self {
        let reserved = Rc::new(Cell::new(0));
        RetryQueue { parts: VecDeque::new(), limits, failures: 0, next_attempt: None, reserved, in_flight: 0 }
    }

    /// Holds room for a part of `bytes`, or says why there is none.
    pub fn reserve(&self, bytes: usize) -> Result<Reservation, QueueFull> {
        if self.parts.len() + self.in_flight + self.reserved.get() >= self.limits.parts {
            return Err(QueueFull::Parts);
        }
        let charge = Charge::take(bytes, 0, self.limits.bytes).ok_or(QueueFull::Bytes)?;
        self.reserved.set(self.reserved.get() + 1);
        Ok(Reservation { charge: Some(charge), slots: self.reserved.clone() })
    }

    pub fn len(&self) -> usize {
        self.parts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Whether the backend has parts waiting or being re-sent: it is failing.
    pub fn busy(&self) -> bool {
        !self.parts.is_empty() || self.in_flight > 0
    }

    /// A re-sent part was dropped (a permanent error): it no longer occupies the queue.
    pub fn on_dropped(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// Queues a part whose first attempt failed at `now`, in the room `reserved` for it if any
    /// (then it cannot fail); the queue's next attempt is one backoff step away unless one is
    /// already planned.
    pub fn push(
        &mut self,
        part: NewPart,
        now: Instant,
        first_wait: Duration,
        reserved: Option<Reservation>,
    ) -> Result<(), QueueFull> {
        let mut charge = match reserved.and_then(|mut r| r.charge.take()) {
            Some(charge) => charge,
            None => self.reserve(part.framed.len())?.charge.take().ok_or(QueueFull::Bytes)?,
        };
        charge.add_items(u64::from(part.items));
        let NewPart { framed, path, signal, items, exporter } = part;
        self.parts.push_back(QueuedPart { framed, path, signal, items, exporter, first_failure: now, _charge: charge });
        self.next_attempt.get_or_insert(now + first_wait);
        Ok(())
    }

    /// How long until parts may be sent; `None` when the queue is empty.
    pub fn wait(&self, now: Instant) -> Option<Duration> {
        if self.parts.is_empty() {
            return None;
        }
        Some(self.next_attempt.map_or(Duration::ZERO, |t| t.saturating_duration_since(now)))
    }

    /// The parts to send now: one while the backend is failing, else up to `consumers`.
    /// Parts past `max_elapsed_time` come back in `expired` instead.
    pub fn take_due(&mut self, now: Instant, policy: &RetryPolicy, expired: &mut Vec<QueuedPart>) -> Vec<QueuedPart> {
        if self.wait(now).is_none_or(|w| !w.is_zero()) {
            return Vec::new();
        }
        while self.parts.front().is_some_and(|p| !policy.alive(p.first_failure, now)) {
            expired.extend(self.parts.pop_front());
        }
        let n = if self.failures > 0 { 1 } else { self.limits.consumers };
        let n = n.min(self.parts.len());
        self.next_attempt = Some(now + policy.max_interval.max(Duration::from_secs(1)));
        self.in_flight += n;
        self.parts.drain(..n).collect()
    }

    /// A sent part was accepted: the backend is back, send the rest at once.
    pub fn on_success(&mut self, now: Instant) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.failures = 0;
        self.next_attempt = Some(now);
    }

    /// A sent part failed again: it goes back to the front, the queue backs off.
    pub fn on_failure(&mut self, part: QueuedPart, now: Instant, policy: &RetryPolicy, jitter: f64) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.failures = self.failures.saturating_add(1);
        self.parts.push_front(part);
        self.next_attempt = Some(now + hurried(policy.delay(self.failures + 1, jitter)));
    }

    /// Brings a planned attempt forward to at most [`HURRIED_WAIT`] from `now` (shutdown).
    pub fn hurry(&mut self, now: Instant) {
        if let Some(t) = self.next_attempt {
            self.next_attempt = Some(t.min(now + HURRIED_WAIT));
        }
    }

    /// Takes every part out (the backend left the ring: they are routed again).
    pub fn take_all(&mut self) -> Vec<QueuedPart> {
        self.next_attempt = None;
        self.parts.drain(..).collect()
    }
}

#[cfg(test)]
mod tests;
