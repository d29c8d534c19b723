//! The counting sink: an OTLP/gRPC backend that accepts all three signals and counts items, for
//! the demo, load runs and tests. Not on the gateway's data path, so plain atomics are fine.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use glommio::net::TcpListener;
use glommio::sync::Gate;
use glommio::{ExecutorJoinHandle, Placement};

use super::record::{Recorded, snapshot};
use super::throttle::Throttle;
use crate::config::Signal;
use crate::grpc::{Code, Status, signal_of};
use crate::receiver::budget::ByteBudget;
use crate::receiver::grpc::{ConnOptions, GrpcService, serve};
use crate::receiver::limits::ConnSlots;
use crate::runtime::shutdown::Shutdown;
use crate::tls::ServerConfig;
use crate::wire::{GRPC_PREFIX, walk};

/// The throttles' common clock.
static EPOCH: OnceLock<Instant> = OnceLock::new();

/// What one sink listener has received.
#[derive(Debug, Default)]
pub struct SinkStats {
    pub spans: AtomicU64,
    pub points: AtomicU64,
    pub logs: AtomicU64,
    pub requests: AtomicU64,
    pub bytes: AtomicU64,
    /// When set, every request is refused with this gRPC code (tests of failure handling).
    pub fail_with: AtomicU8,
    /// Where data went, kept only when the sink records.
    pub recorded: Recorded,
    record: bool,
    /// Whether to keep every request body whole (see [`SinkStats::keep_bodies`]).
    keep: AtomicBool,
    bodies: std::sync::Mutex<Vec<(Signal, Vec<u8>)>>,
    /// This listener's capacity (see [`SinkStats::set_max_rate`]).
    throttle: std::sync::Mutex<Throttle>,
}

impl SinkStats {
    fn new(record: bool) -> Self {
        SinkStats { record, ..Default::default() }
    }

    pub fn spans(&self) -> u64 {
        self.spans.load(Ordering::Relaxed)
    }

    /// Spans, data points or log records received.
    pub fn items(&self, signal: Signal) -> u64 {
        self.counter(signal).load(Ordering::Relaxed)
    }

    fn counter(&self, signal: Signal) -> &AtomicU64 {
        match signal {
            Signal::Traces => &self.spans,
            Signal::Metrics => &self.points,
            Signal::Logs => &self.logs,
        }
    }

    /// Spans per trace id (recording sinks only).
    pub fn traces(&self) -> HashMap<Vec<u8>, u64> {
        snapshot(&self.recorded.traces)
    }

    /// Keeps every request body from now on, for tests that compare content; never for load.
    pub fn keep_bodies(&self) {
        self.keep.store(true, Ordering::Relaxed);
    }

    /// The request bodies kept (protobuf, without the gRPC prefix), in arrival order.
    pub fn bodies(&self) -> Vec<(Signal, Vec<u8>)> {
        self.bodies.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Makes this listener serve at most `items_per_s` spans, points or log records per second,
    /// one request after another, like a collector of fixed capacity (0: unlimited).
    pub fn set_max_rate(&self, items_per_s: u64) {
        self.throttle.lock().unwrap_or_else(|p| p.into_inner()).set_rate(items_per_s);
    }

    /// How long a request of `framed` takes to be served at this listener's capacity.
    fn service_time(&self, signal: Signal, framed: &[u8]) -> Duration {
        let range = GRPC_PREFIX..framed.len();
        let items = match signal {
            Signal::Metrics => walk::count_points(framed, range),
            _ => walk::count_items(framed, range),
        };
        let now = EPOCH.get_or_init(Instant::now).elapsed();
        self.throttle.lock().unwrap_or_else(|p| p.into_inner()).admit(now, items.unwrap_or(0))
    }

    /// Makes this listener refuse requests with `code` (`None` to accept again).
    pub fn set_failure(&self, code: Option<Code>) {
        self.fail_with.store(code.map_or(0, |c| c as u8), Ordering::Relaxed);
    }

    fn failure(&self) -> Option<Status> {
        match self.fail_with.load(Ordering::Relaxed) {
            0 => None,
            c => Some(Status::new(Code::from_u8(c), "sink told to fail")),
        }
    }

    fn take(&self, signal: Signal, framed: &[u8]) -> Result<(), Status> {
        let bad = |e: String| Status::new(Code::InvalidArgument, format!("sink: {e}"));
        let range = GRPC_PREFIX..framed.len();
        let items = match signal {
            Signal::Metrics => walk::count_points(framed, range),
            _ => walk::count_items(framed, range),
        };
        let items = items.map_err(|e| bad(e.to_string()))?;
        if self.record {
            self.recorded.take(signal, &framed[GRPC_PREFIX..]).map_err(bad)?;
        }
        if self.keep.load(Ordering::Relaxed) {
            let body = (signal, framed[GRPC_PREFIX..].to_vec());
            self.bodies.lock().unwrap_or_else(|p| p.into_inner()).push(body);
        }
        self.counter(signal).fetch_add(items, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(framed.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// State shared by every listener of one sink: a delay to inject, and how many requests it
/// held at once (so tests can see that the gateway fans out in parallel).
#[derive(Debug, Default)]
pub struct SinkShared {
    delay_ms: AtomicU64,
    in_flight: AtomicU64,
    peak: AtomicU64,
}

impl SinkShared {
    /// Makes every listener hold each request this long before answering.
    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms.store(delay.as_millis() as u64, Ordering::Relaxed);
    }

    /// The most requests the sink's listeners held at the same moment.
    pub fn peak_in_flight(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

/// Counts one request in flight until dropped.
struct InFlight<'a>(&'a SinkShared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a SinkShared) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        shared.peak.fetch_max(now, Ordering::Relaxed);
        InFlight(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

struct SinkService(Arc<SinkStats>, Arc<SinkShared>, ByteBudget, Option<Arc<ServerConfig>>);

impl GrpcService for SinkService {
    type Method = Signal;

    fn route(&self, path: &str) -> Option<Signal> {
        signal_of(path)
    }

    fn max_recv(&self) -> usize {
        64 << 20
    }

    fn budget(&self) -> &ByteBudget {
        &self.2
    }

    fn tls(&self) -> Option<Arc<ServerConfig>> {
        self.3.clone()
    }

    async fn call(&self, signal: Signal, framed: Bytes) -> Result<Bytes, Status> {
        let _in_flight = InFlight::enter(&self.1);
        let delay = self.1.delay_ms.load(Ordering::Relaxed);
        if delay > 0 {
            glommio::timer::sleep(Duration::from_millis(delay)).await;
        }
        let service = self.0.service_time(signal, &framed);
        if !service.is_zero() {
            glommio::timer::sleep(service).await;
        }
        if let Some(status) = self.0.failure() {
            return Err(status);
        }
        self.0.take(signal, &framed)?;
        Ok(Bytes::from_static(&[0, 0, 0, 0, 0]))
    }
}

/// Sinks running on one executor thread.
pub struct Sink {
    pub addrs: Vec<SocketAddr>,
    pub stats: Vec<Arc<SinkStats>>,
    pub shared: Arc<SinkShared>,
    stop: Arc<AtomicBool>,
    handle: Option<ExecutorJoinHandle<()>>,
}

impl Sink {
    /// Listens on every address (port 0 picks one); `record` keeps trace ids for checks.
    pub fn start(listen: &[SocketAddr], placement: Placement, record: bool) -> std::io::Result<Sink> {
        Sink::start_tls(listen, placement, record, None)
    }

    /// [`Sink::start`], serving TLS with `tls` when set (a TLS backend for tests and benches).
    pub fn start_tls(
        listen: &[SocketAddr],
        placement: Placement,
        record: bool,
        tls: Option<Arc<ServerConfig>>,
    ) -> std::io::Result<Sink> {
        let stats: Vec<_> = listen.iter().map(|_| Arc::new(SinkStats::new(record))).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let shared = Arc::new(SinkShared::default());
        let (listen, st, sh, stop2) = (listen.to_vec(), stats.clone(), shared.clone(), stop.clone());
        let handle = crate::runtime::executor(placement)
            .name("otlp-sink")
            .spawn(move || serve_all(listen, (st, sh, tls), stop2, tx))
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let addrs = rx.recv().map_err(std::io::Error::other)??;
        Ok(Sink { addrs, stats, shared, stop, handle: Some(handle) })
    }

    pub fn total_spans(&self) -> u64 {
        self.stats.iter().map(|s| s.spans()).sum()
    }

    /// Stops the listeners and waits for the executor.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// What every listener's service shares: its stats, the sink's state, its TLS config.
type Services = (Vec<Arc<SinkStats>>, Arc<SinkShared>, Option<Arc<ServerConfig>>);

async fn serve_all(
    listen: Vec<SocketAddr>,
    (stats, shared, tls): Services,
    stop: Arc<AtomicBool>,
    ready: std::sync::mpsc::Sender<std::io::Result<Vec<SocketAddr>>>,
) {
    let bound: std::io::Result<Vec<TcpListener>> =
        listen.iter().map(|a| TcpListener::bind(a).map_err(|e| std::io::Error::other(e.to_string()))).collect();
    let listeners = match bound {
        Ok(l) => l,
        Err(e) => return drop(ready.send(Err(e))),
    };
    let addrs = listeners.iter().filter_map(|l| l.local_addr().ok()).collect();
    let _ = ready.send(Ok(addrs));
    let (shutdown, gate) = (Shutdown::default(), Rc::new(Gate::new()));
    let tasks: Vec<_> = listeners
        .into_iter()
        .zip(stats)
        .map(|(l, s)| {
            glommio::spawn_local(serve(
                l,
                Rc::new(SinkService(s, shared.clone(), ByteBudget::new(1 << 30), tls.clone())),
                ConnOptions::new(4096, ConnSlots::new(usize::MAX)),
                shutdown.clone(),
                gate.clone(),
            ))
        })
        .collect();
    while !stop.load(Ordering::SeqCst) {
        glommio::timer::sleep(Duration::from_millis(20)).await;
    }
    shutdown.trigger();
    for t in tasks {
        t.await;
    }
    let _ = glommio::timer::timeout(Duration::from_secs(5), gate.close()).await;
}
