//! Per-core counters. Each data-plane core is one thread, so its counters are plain `Cell`s in a
//! thread-local: no atomics, no locks, no cache lines shared between cores on the hot path.
//! The control plane asks every core for a [`CoreSnapshot`] at scrape time and sums them.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::time::{Instant, SystemTime};

use crate::config::Signal;
use crate::exporter::ExportError;

/// Upper bounds (ms) of the backend latency histogram's buckets; the last bucket is `+Inf`.
/// Backends on the same network answer in 1–50 ms; timeouts show up in the top buckets.
pub const LATENCY_BOUNDS_MS: [f64; 14] =
    [1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0];

/// Recent errors a core keeps for the status page. Older ones are dropped.
pub const RECENT_ERRORS: usize = 16;

/// Items accepted and refused, per signal.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ItemCounts {
    pub ok: [u64; 3],
    pub failed: [u64; 3],
}

impl ItemCounts {
    fn add(&mut self, signal: Signal, items: u64, ok: bool) {
        let slot = if ok { &mut self.ok } else { &mut self.failed };
        slot[signal as usize] += items;
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &ItemCounts) {
        for i in 0..3 {
            self.ok[i] += other.ok[i];
            self.failed[i] += other.failed[i];
        }
    }
}

/// A histogram with [`LATENCY_BOUNDS_MS`] buckets (per-bucket counts, not cumulative).
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub buckets: [u64; LATENCY_BOUNDS_MS.len() + 1],
    pub sum: f64,
    pub count: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { buckets: [0; LATENCY_BOUNDS_MS.len() + 1], sum: 0.0, count: 0 }
    }
}

impl Histogram {
    fn observe(&mut self, ms: f64) {
        let i = LATENCY_BOUNDS_MS.iter().position(|b| ms <= *b).unwrap_or(LATENCY_BOUNDS_MS.len());
        self.buckets[i] += 1;
        self.sum += ms;
        self.count += 1;
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Histogram) {
        self.buckets.iter_mut().zip(other.buckets).for_each(|(a, b)| *a += b);
        self.sum += other.sum;
        self.count += other.count;
    }
}

/// One backend of one exporter, as one core saw it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BackendStats {
    /// Items sent (accepted by the backend) and failed, per signal.
    pub items: ItemCounts,
    /// Calls that succeeded (`otelcol_loadbalancer_backend_outcome{success="true"}`).
    pub calls_ok: u64,
    pub calls_failed: u64,
    pub latency: Histogram,
    /// Last successful call.
    pub last_ok: Option<Instant>,
    /// Last call that could not reach the backend (connect, connection lost, timeout).
    pub last_unreachable: Option<Instant>,
}

impl BackendStats {
    /// Whether the backend answered more recently than it was unreachable (unknown = yes).
    pub fn reachable(&self) -> bool {
        match (self.last_ok, self.last_unreachable) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(ok), Some(bad)) => ok > bad,
        }
    }

    /// Adds another core's view of the same backend into `self`.
    pub fn merge(&mut self, other: &BackendStats) {
        self.items.merge(&other.items);
        self.calls_ok += other.calls_ok;
        self.calls_failed += other.calls_failed;
        self.latency.merge(&other.latency);
        self.last_ok = self.last_ok.max(other.last_ok);
        self.last_unreachable = self.last_unreachable.max(other.last_unreachable);
    }
}

/// An error worth showing an operator (a failed backend call), with when it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct RecentError {
    pub at: SystemTime,
    pub message: String,
}

/// The counters of one core. Lives in a thread-local; see [`with`].
#[derive(Debug, Default)]
pub struct CoreStats {
    /// Receiver items by listener index.
    receivers: RefCell<Vec<ItemCounts>>,
    /// Backends by exporter index, then backend name.
    backends: RefCell<Vec<HashMap<String, BackendStats>>>,
    /// Items of backends that left the ring, by exporter index: the exporter's totals stay
    /// monotonic while the per-backend entries are dropped (memory stays bounded under DNS churn).
    retired: RefCell<Vec<ItemCounts>>,
    connections: Cell<u64>,
    streams: Cell<u64>,
    parts_in_flight: Cell<u64>,
    errors: RefCell<VecDeque<RecentError>>,
    refused: [Cell<u64>; Refused::ALL.len()],
}

thread_local! {
    static CORE: CoreStats = CoreStats::default();
}

/// Runs `f` on this thread's (this core's) counters.
pub fn with<T>(f: impl FnOnce(&CoreStats) -> T) -> T {
    CORE.with(f)
}

impl CoreStats {
    /// One request on `listener` with `items` items, answered OK or not.
    pub fn received(&self, listener: usize, signal: Signal, items: u64, ok: bool) {
        let mut receivers = self.receivers.borrow_mut();
        if receivers.len() <= listener {
            receivers.resize(listener + 1, ItemCounts::default());
        }
        receivers[listener].add(signal, items, ok);
    }

    /// One part forwarded to `backend`, as metered by `at`.
    pub fn forwarded(&self, at: &PartMeter, backend: &str, result: Result<(), &ExportError>) {
        let now = Instant::now();
        let ms = now.duration_since(at.started).as_secs_f64() * 1000.0;
        let mut backends = self.backends.borrow_mut();
        if let Some(b) = backend_entry(&mut backends, at.exporter, backend) {
            record_call(b, at, ms, now, result);
        }
        drop(backends);
        if let Err(e) = result {
            let message = format!("backend {backend}: {e}");
            super::logging::limited(log::Level::Warn, backend, || message.clone());
            self.remember_error(message);
        }
    }

    /// Drops the stats of `exporter`'s backends not in `keep` (they left the ring), folding
    /// their items into the exporter's retired totals.
    pub fn retain_backends(&self, exporter: usize, keep: &[String]) {
        let mut backends = self.backends.borrow_mut();
        let Some(map) = backends.get_mut(exporter) else { return };
        let mut retired = self.retired.borrow_mut();
        if retired.len() <= exporter {
            retired.resize(exporter + 1, ItemCounts::default());
        }
        map.retain(|name, b| {
            let stays = keep.contains(name);
            if !stays {
                retired[exporter].merge(&b.items);
            }
            stays
        });
    }

    fn remember_error(&self, message: String) {
        let mut errors = self.errors.borrow_mut();
        if errors.len() == RECENT_ERRORS {
            errors.pop_front();
        }
        errors.push_back(RecentError { at: SystemTime::now(), message });
    }

    /// A snapshot of everything, for the control plane.
    pub fn snapshot(&self) -> Counters {
        Counters {
            receivers: self.receivers.borrow().clone(),
            backends: self.backends.borrow().iter().map(sorted).collect(),
            retired: self.retired.borrow().clone(),
            connections: self.connections.get(),
            streams: self.streams.get(),
            parts_in_flight: self.parts_in_flight.get(),
            errors: self.errors.borrow().iter().cloned().collect(),
            refused: self.refused.each_ref().map(Cell::get),
        }
    }
}

fn sorted(map: &HashMap<String, BackendStats>) -> Vec<(String, BackendStats)> {
    let mut v: Vec<_> = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// The stats of `backend` of `exporter`, created on first use (one allocation per backend).
fn backend_entry<'a>(
    backends: &'a mut Vec<HashMap<String, BackendStats>>,
    exporter: usize,
    backend: &str,
) -> Option<&'a mut BackendStats> {
    if backends.len() <= exporter {
        backends.resize_with(exporter + 1, HashMap::new);
    }
    let map = &mut backends[exporter];
    if !map.contains_key(backend) {
        map.insert(backend.to_string(), BackendStats::default());
    }
    map.get_mut(backend)
}

fn record_call(b: &mut BackendStats, at: &PartMeter, ms: f64, now: Instant, result: Result<(), &ExportError>) {
    b.items.add(at.signal, at.items, result.is_ok());
    if !at.call {
        return;
    }
    b.latency.observe(ms);
    match result {
        Ok(()) => {
            b.calls_ok += 1;
            b.last_ok = Some(now);
        }
        Err(e) => {
            b.calls_failed += 1;
            if !matches!(e, ExportError::Rejected(_)) {
                b.last_unreachable = Some(now);
            }
        }
    }
}

/// What one core's counters hold at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    /// By listener index.
    pub receivers: Vec<ItemCounts>,
    /// By exporter index: (backend name, its stats), sorted by name.
    pub backends: Vec<Vec<(String, BackendStats)>>,
    /// By exporter index: items of backends no longer on the ring.
    pub retired: Vec<ItemCounts>,
    pub connections: u64,
    pub streams: u64,
    /// Parts sent to a backend and not yet answered (the core's export queue depth).
    pub parts_in_flight: u64,
    /// Oldest first.
    pub errors: Vec<RecentError>,
    /// By `Refused as usize`.
    pub refused: [u64; Refused::ALL.len()],
}

/// Why a receiver turned a request or a connection away before reading its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Missing or wrong credentials.
    Unauthenticated,
    /// Closed on accept: the core had `max_connections_per_core` open.
    ConnectionLimit,
    /// Dropped for an HTTP/2 control or empty frame flood.
    H2Flood,
}

impl Refused {
    pub const ALL: [Refused; 3] = [Refused::Unauthenticated, Refused::ConnectionLimit, Refused::H2Flood];

    /// The `reason` label.
    pub fn label(self) -> &'static str {
        match self {
            Refused::Unauthenticated => "unauthenticated",
            Refused::ConnectionLimit => "connection_limit",
            Refused::H2Flood => "h2_flood",
        }
    }

    /// Counts one on this core.
    pub fn note(self) {
        with(|c| c.refused[self as usize].set(c.refused[self as usize].get() + 1));
    }
}

/// Counts a live gauge (connections, streams, parts in flight) up while it lives.
#[derive(Debug)]
pub struct Live(fn(&CoreStats) -> &Cell<u64>);

impl Live {
    fn new(gauge: fn(&CoreStats) -> &Cell<u64>) -> Self {
        with(|c| gauge(c).set(gauge(c).get() + 1));
        Live(gauge)
    }

    /// An accepted client connection.
    pub fn connection() -> Self {
        Live::new(|c| &c.connections)
    }

    /// A client request stream being served.
    pub fn stream() -> Self {
        Live::new(|c| &c.streams)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let gauge = self.0;
        with(|c| gauge(c).set(gauge(c).get().saturating_sub(1)));
    }
}

/// One part on its way to a backend: started when it is handed to the backend, recorded
/// with [`PartMeter::finish`].
#[derive(Debug)]
pub struct PartMeter {
    exporter: usize,
    signal: Signal,
    items: u64,
    started: Instant,
    _in_flight: Live,
    /// Whether this part's answer is a call of its own (false: it rode in a coalesced call
    /// another part counts), for the per-call outcome and latency.
    call: bool,
}

impl PartMeter {
    pub fn start(exporter: usize, signal: Signal, items: u32) -> Self {
        let _in_flight = Live::new(|c| &c.parts_in_flight);
        let started = Instant::now();
        PartMeter { exporter, signal, items: u64::from(items), started, _in_flight, call: true }
    }

    /// Records `backend`'s answer.
    pub fn finish<T>(self, backend: &str, result: &Result<T, ExportError>) {
        with(|c| c.forwarded(&self, backend, result.as_ref().map(|_| ())));
    }

    /// Records `backend`'s answer to the call this part went in; `own_call` false when the
    /// part rode in a coalesced call that another part counts (items count either way).
    pub fn finish_part<T>(mut self, backend: &str, result: &Result<T, ExportError>, own_call: bool) {
        self.call = own_call;
        self.finish(backend, result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc::{Code, Status};

    #[test]
    fn receivers_count_items_by_listener_and_outcome() {
        let c = CoreStats::default();
        c.received(1, Signal::Traces, 10, true);
        c.received(1, Signal::Traces, 3, false);
        c.received(0, Signal::Logs, 7, true);
        let s = c.snapshot();
        assert_eq!(s.receivers[1].ok, [10, 0, 0]);
        assert_eq!(s.receivers[1].failed, [3, 0, 0]);
        assert_eq!(s.receivers[0].ok, [0, 0, 7]);
    }

    #[test]
    fn parts_record_outcome_latency_and_reachability() {
        let ok = PartMeter::start(0, Signal::Metrics, 5);
        assert_eq!(with(|c| c.snapshot().parts_in_flight), 1);
        ok.finish("b:1", &Ok::<(), ExportError>(()));
        let rejected = PartMeter::start(0, Signal::Metrics, 2);
        rejected.finish("b:1", &Err::<(), _>(ExportError::Rejected(Status::new(Code::InvalidArgument, "x"))));
        let s = with(CoreStats::snapshot);
        let (name, b) = &s.backends[0][0];
        assert_eq!((name.as_str(), b.items.ok[1], b.items.failed[1]), ("b:1", 5, 2));
        assert_eq!((b.calls_ok, b.calls_failed, b.latency.count), (1, 1, 2));
        assert!(b.reachable(), "a rejection still means the backend answered");
        assert_eq!(s.parts_in_flight, 0);
        assert_eq!(s.errors.len(), 1);
        let down = PartMeter::start(0, Signal::Metrics, 1);
        down.finish("b:1", &Err::<(), _>(ExportError::Timeout(std::time::Duration::from_secs(1))));
        assert!(!with(CoreStats::snapshot).backends[0][0].1.reachable());
    }

    #[test]
    fn backends_that_leave_are_dropped_and_their_items_stay_in_the_totals() {
        // A fresh thread: its own core counters.
        std::thread::spawn(|| {
            for (backend, items) in [("a:1", 4), ("b:1", 6)] {
                PartMeter::start(0, Signal::Traces, items).finish(backend, &Ok::<(), ExportError>(()));
            }
            with(|c| c.retain_backends(0, &["b:1".to_string()]));
            let s = with(CoreStats::snapshot);
            assert_eq!(s.backends[0].iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["b:1"]);
            assert_eq!(s.retired[0].ok[0], 4, "the departed backend's spans still count for the exporter");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn histogram_buckets_by_upper_bound() {
        let mut h = Histogram::default();
        for ms in [0.5, 1.0, 1.5, 40_000.0] {
            h.observe(ms);
        }
        assert_eq!((h.buckets[0], h.buckets[1], h.buckets[LATENCY_BOUNDS_MS.len()]), (2, 1, 1));
        assert_eq!(h.count, 4);
    }

    #[test]
    fn live_gauges_go_down_when_dropped() {
        let a = Live::connection();
        let b = Live::stream();
        assert_eq!(with(|c| (c.connections.get(), c.streams.get())), (1, 1));
        drop((a, b));
        assert_eq!(with(|c| (c.connections.get(), c.streams.get())), (0, 0));
    }

    #[test]
    fn recent_errors_are_bounded() {
        let c = CoreStats::default();
        for i in 0..RECENT_ERRORS + 3 {
            c.remember_error(format!("e{i}"));
        }
        let s = c.snapshot();
        assert_eq!(s.errors.len(), RECENT_ERRORS);
        assert_eq!(s.errors[0].message, "e3");
    }
}
