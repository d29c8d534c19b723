//! The gateway's own telemetry: per-core counters (`counters`), summed at scrape time into
//! Prometheus text (`prometheus`), the health check (`health`), the status page
//! (`status_page`), logs (`logging`), and the HTTP endpoints serving them off the data-plane
//! cores (`server`).
//!
//! The hot path only touches its own core's thread-local `Cell`s. A scrape travels as
//! `Control::Scrape` from the control plane to every core; each core answers with a
//! [`CoreSnapshot`] on a std channel, and the HTTP thread sums them.

pub mod counters;
pub mod health;
pub mod logging;
pub mod prometheus;
pub mod server;
pub mod status_page;

use std::sync::mpsc::{self, Sender};
use std::time::{Duration, Instant};

pub use counters::{Counters, Live, PartMeter, Refused};
pub use server::{Shared, Telemetry, TelemetryError};

use crate::receiver::budget::ByteBudget;
use crate::routing::Ring;

/// One core's answer to a scrape.
#[derive(Debug, Clone, Default)]
pub struct CoreSnapshot {
    /// The CPU the core runs on (the core answers with its index; the scraper maps it).
    pub cpu: usize,
    pub counters: Counters,
    /// Request bytes the core holds (its `ByteBudget` in use).
    pub bytes_in_flight: u64,
    /// The most request bytes the core has held at once.
    pub bytes_in_flight_peak: u64,
    /// The ring of each exporter (by index) the core routes with; `None` while it has none.
    pub rings: Vec<Option<RingView>>,
    /// Acknowledged parts waiting for a retry: (items, bytes), and items dropped after their
    /// retries ran out (`exporter::retry`).
    pub retry: RetryCounts,
}

/// A core's retry queues at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryCounts {
    pub queued_items: u64,
    pub queued_bytes: u64,
    pub dropped_items: u64,
}

impl RetryCounts {
    /// This core's (call it on the core's own thread).
    pub fn here() -> Self {
        use crate::exporter::retry::{dropped_items, queued_bytes, queued_items};
        RetryCounts {
            queued_items: queued_items(),
            queued_bytes: queued_bytes() as u64,
            dropped_items: dropped_items(),
        }
    }
}

/// A ring as the status page shows it: each backend and its share of the key space.
#[derive(Debug, Clone, PartialEq)]
pub struct RingView {
    pub backends: Vec<String>,
    pub shares: Vec<f64>,
}

impl RingView {
    pub fn of(ring: &Ring) -> Self {
        RingView { backends: ring.backends().to_vec(), shares: ring.shares() }
    }
}

/// Takes this core's snapshot (call it on the core's own thread).
pub fn core_snapshot(core: usize, rings: Vec<Option<RingView>>, budget: &ByteBudget) -> CoreSnapshot {
    let counters = counters::with(counters::CoreStats::snapshot);
    let (bytes_in_flight, bytes_in_flight_peak) = (budget.used() as u64, budget.peak() as u64);
    CoreSnapshot { cpu: core, counters, bytes_in_flight, bytes_in_flight_peak, rings, retry: RetryCounts::here() }
}

/// Where a core sends its snapshot.
pub type ScrapeReply = Sender<CoreSnapshot>;

/// Asks the control plane for a snapshot from every core.
#[derive(Debug, Clone)]
pub struct Scraper {
    requests: Sender<ScrapeReply>,
    /// CPU of each core, by core index.
    cpus: Vec<usize>,
}

impl Scraper {
    /// `requests` reaches the control plane, which forwards a reply channel to each core;
    /// `cpus` is the CPU of each core, by index.
    pub fn new(requests: Sender<ScrapeReply>, cpus: Vec<usize>) -> Self {
        Scraper { requests, cpus }
    }

    /// The cores' snapshots, in core order; fewer if some did not answer within `limit`
    /// (a stopping gateway), none if the control plane is gone.
    pub fn scrape(&self, limit: Duration) -> Vec<CoreSnapshot> {
        let (tx, rx) = mpsc::channel();
        if self.requests.send(tx).is_err() {
            return Vec::new();
        }
        let deadline = Instant::now() + limit;
        let mut out = Vec::with_capacity(self.cpus.len());
        while out.len() < self.cpus.len() {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(mut s) => {
                    s.cpu = self.cpus.get(s.cpu).copied().unwrap_or(s.cpu);
                    out.push(s);
                }
                Err(_) => break,
            }
        }
        out.sort_by_key(|s| s.cpu);
        out
    }
}
