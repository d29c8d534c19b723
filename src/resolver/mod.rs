//! DNS membership: re-resolves `resolver.dns` every `interval` and reports each change of the
//! backend list.
//!
//! Resolution runs off the data-plane cores, on its own std thread (`otlp-resolver`) with a
//! tokio current-thread runtime and hickory-resolver. The pieces:
//! - [`Tracker`] (sans-IO): the last good list and whether an answer changes it.
//! - [`spawn`]: the loop on its own thread, calling `on_update` with each new list.
//! - [`ResolverHandle`]: stops the loop when dropped; reads the [`Stats`].
//!
//! Decisions (see docs/resolver.md):
//! - Start never waits for DNS: `spawn` returns at once; the first list arrives through
//!   `on_update` when the first refresh succeeds.
//! - A failed refresh (any query failing or timing out) keeps the last good list, and so does an
//!   answer with no backends (NXDOMAIN or no records): an empty ring can route nothing, while a
//!   stale entry at worst routes to a backend that health checks will eject.
//! - No cache: every refresh asks the server again, whatever the records' TTLs.

mod lookup;
mod tracker;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use futures_lite::future::or;
use tokio::sync::oneshot;

pub use tracker::Tracker;

use crate::config::DnsResolver;
use lookup::Lookup;

/// Why one refresh found no usable backend list. The last good list stays.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    #[error("{record} query failed: {reason}")]
    Query { record: &'static str, reason: String },
    #[error("no complete answer within {0:?}")]
    Timeout(Duration),
    #[error("DNS lists no backends (no such name, or no records)")]
    Empty,
}

/// Why the resolver could not start. DNS failures never stop it; only local setup can.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("cannot read the system's DNS configuration (/etc/resolv.conf): {0}")]
    SystemConfig(String),
    #[error("cannot start the resolver: {0}")]
    Io(#[from] std::io::Error),
}

/// Counters since start; they feed `otlp_loadbalancer_num_resolutions` (by success) and
/// `otlp_loadbalancer_num_backend_updates`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Refreshes finished, good or failed.
    pub resolutions: u64,
    /// Refreshes that failed or found no backends (the last good list stayed).
    pub failures: u64,
    /// Changed lists delivered to `on_update`.
    pub updates: u64,
}

#[derive(Debug, Default)]
struct Counters {
    resolutions: AtomicU64,
    failures: AtomicU64,
    updates: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats { resolutions: get(&self.resolutions), failures: get(&self.failures), updates: get(&self.updates) }
    }
}

/// Reads a resolver's counters; outlives the resolver (the counters then stay as they were).
#[derive(Debug, Clone)]
pub struct StatsHandle(Arc<Counters>);

impl StatsHandle {
    pub fn stats(&self) -> Stats {
        self.0.snapshot()
    }
}

/// The running resolver. Dropping it (or [`stop`](Self::stop)) ends the loop and joins the
/// thread; a refresh in flight is abandoned, so this takes milliseconds, not `timeout`.
#[derive(Debug)]
pub struct ResolverHandle {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl ResolverHandle {
    /// The counters now.
    pub fn stats(&self) -> Stats {
        self.counters.snapshot()
    }

    /// A handle that reads the counters from another thread (the metrics endpoint).
    pub fn stats_handle(&self) -> StatsHandle {
        StatsHandle(self.counters.clone())
    }

    /// Stops the loop and waits for its thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        // Dropping the sender wakes the loop's stop branch.
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ResolverHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts resolving `cfg` on a new `otlp-resolver` thread and returns at once.
///
/// `on_update` runs on that thread with every changed list (sorted, deduplicated, never empty);
/// the first call comes after the first good refresh. It should hand the list on (e.g. over a
/// channel to the control plane) and return quickly: the next refresh waits for it. It must not
/// drop the handle. Fails only when the system's DNS configuration cannot be read or the thread
/// cannot start.
pub fn spawn<F>(cfg: &DnsResolver, on_update: F) -> Result<ResolverHandle, SpawnError>
where
    F: FnMut(Vec<SocketAddr>) + Send + 'static,
{
    let (config, opts) = lookup::settings(cfg)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_io().enable_time().build()?;
    let (stop_tx, stop_rx) = oneshot::channel();
    let counters = Arc::new(Counters::default());
    let (cfg, shared) = (cfg.clone(), counters.clone());
    let thread = std::thread::Builder::new().name("otlp-resolver".into()).spawn(move || {
        runtime.block_on(async {
            let lookup = Lookup::new(&cfg, config, opts);
            run(&lookup, &cfg, on_update, stop_rx, &shared).await;
        });
    })?;
    Ok(ResolverHandle { stop: Some(stop_tx), thread: Some(thread), counters })
}

enum Step {
    Refreshed(Result<Vec<SocketAddr>, LookupError>),
    Stop,
}

/// Refreshes every `interval` (the first at once) until the handle goes away.
async fn run<F>(
    lookup: &Lookup,
    cfg: &DnsResolver,
    mut on_update: F,
    mut stop: oneshot::Receiver<()>,
    counters: &Counters,
) where
    F: FnMut(Vec<SocketAddr>),
{
    let mut ticks = tokio::time::interval(cfg.interval);
    // A slow refresh or callback delays the next tick instead of causing a burst.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut state = State { tracker: Tracker::default(), hostname: cfg.hostname.clone(), failing: false };
    loop {
        let refresh = async {
            ticks.tick().await;
            Step::Refreshed(lookup.resolve().await)
        };
        let stopped = async {
            let _ = (&mut stop).await;
            Step::Stop
        };
        let Step::Refreshed(result) = or(stopped, refresh).await else { return };
        if let Some(list) = state.take(result, counters) {
            on_update(list);
        }
    }
}

/// The loop's memory: the tracker, and whether refreshes are failing (to log changes only).
struct State {
    tracker: Tracker,
    hostname: String,
    failing: bool,
}

impl State {
    /// Applies one refresh; the new list when it changed.
    fn take(&mut self, result: Result<Vec<SocketAddr>, LookupError>, counters: &Counters) -> Option<Vec<SocketAddr>> {
        let outcome = self.tracker.apply(result);
        counters.resolutions.fetch_add(1, Ordering::Relaxed);
        let counter = if outcome.is_err() { &counters.failures } else { &counters.updates };
        if !matches!(outcome, Ok(None)) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        self.log(&outcome);
        outcome.ok().flatten()
    }

    /// One line when refreshes start failing and one when they recover, not one per refresh.
    fn log(&mut self, outcome: &Result<Option<Vec<SocketAddr>>, LookupError>) {
        match (outcome, self.failing) {
            (Err(e), false) => {
                let kept = self.tracker.current().map_or(0, <[SocketAddr]>::len);
                log::warn!("otlp-resolver: {}: {e}; keeping the last good list ({kept} backends)", self.hostname);
            }
            (Ok(_), true) => log::info!("otlp-resolver: {}: resolving again", self.hostname),
            _ => {}
        }
        self.failing = outcome.is_err();
    }
}

/// A backend's name on the ring: `ip:port`, `[v6]:port` (as `HostPort` prints it).
pub fn backend_names(list: &[SocketAddr]) -> Vec<String> {
    list.iter().map(SocketAddr::to_string).collect()
}
