//! One data-plane core: its listeners, their connections, its pipelines and backend pools.
//! It hears from the control plane only through its `Control` channel.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use glommio::channels::shared_channel::SharedReceiver;
use glommio::net::TcpListener;
use glommio::sync::Gate;

use super::pools::Routing;
use super::shutdown::Shutdown;
use crate::config::{ComponentId, RoutingKey, Signal};
use crate::exporter::BackendSettings;
use crate::grpc::{Status, signal_of};
use crate::receiver::Pipeline;
use crate::receiver::auth::BearerAuth;
use crate::receiver::budget::ByteBudget;
use crate::receiver::grpc::{ConnOptions, GrpcService, serve};
use crate::receiver::http;
use crate::receiver::limits::{ConnSlots, ConnTimeouts, ProtocolLimits};
use crate::receiver::window::{self, WindowShare};
use crate::routing::Ring;

/// The backend set as the control plane computed it: built once, replicated to every core.
#[derive(Debug, Clone)]
pub struct BackendSet {
    pub ring: Ring,
    /// Addresses indexed like `ring.backends()`.
    pub addrs: Vec<SocketAddr>,
}

/// Messages from the control plane to a core.
#[derive(Debug)]
pub enum Control {
    /// Stop accepting, drain in-flight requests within the deadline, then exit.
    Shutdown { drain: Duration },
    /// A new backend set for `exporter` (an index into `CoreSpec::exporters`). Requests in
    /// flight finish on the set they started with; the next request uses the new one.
    Backends { exporter: usize, set: Arc<BackendSet> },
    /// A reloaded config: same listeners, new pipelines, keys and exporters.
    Reload(Arc<CoreSpec>),
    /// Send this core's counters to `reply`; `core` is the core's index in the gateway.
    Scrape { core: usize, reply: crate::telemetry::ScrapeReply },
}

/// The protocol a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    /// OTLP/gRPC (`protocols.grpc`).
    Grpc,
    /// OTLP/HTTP (`protocols.http`): HTTP/1.1 and h2c.
    Http,
}

/// One receiver endpoint (a receiver's gRPC or HTTP server), served on every core through
/// SO_REUSEPORT.
#[derive(Debug, Clone)]
pub struct ListenerSpec {
    pub kind: ListenerKind,
    /// The receiver's index (telemetry counts per receiver, whatever the protocol).
    pub receiver: usize,
    pub addr: SocketAddr,
    pub max_recv: usize,
    pub max_streams: u32,
    /// HTTP only: `read_header_timeout`.
    pub header_timeout: Duration,
    /// When an idle or old connection gets GOAWAY.
    pub timeouts: ConnTimeouts,
    /// Handshake and body deadlines, HTTP/2 limits.
    pub limits: ProtocolLimits,
    /// The receiver's authenticator (its token file read by the control plane, again on reload).
    pub auth: Option<Arc<BearerAuth>>,
    /// Index into `CoreSpec::pipelines` for traces, metrics and logs (`Signal as usize`).
    pub routes: [Option<usize>; 3],
    /// `tls`: the server config new connections use (`None`: plaintext). A reload may change
    /// it (rotated certificates); connections keep the session they started with.
    pub tls: Option<Arc<crate::tls::ServerConfig>>,
}

/// One exporter: a backend pool per core, shared by the pipelines that use it.
#[derive(Debug, Clone)]
pub struct ExporterSpec {
    pub id: ComponentId,
    /// `false` for the slot of an exporter a reload removed (indexes stay stable): no pool.
    pub used: bool,
    pub backends: Option<Arc<BackendSet>>,
    pub settings: BackendSettings,
}

/// One (signal, exporter) pipeline.
#[derive(Debug, Clone)]
pub struct PipelineSpec {
    pub signal: Signal,
    pub key: RoutingKey,
    /// Index into `CoreSpec::exporters`.
    pub exporter: usize,
}

/// What a core needs to start.
#[derive(Debug, Clone)]
pub struct CoreSpec {
    pub listeners: Vec<ListenerSpec>,
    /// `service.runtime.max_connections_per_core`.
    pub max_connections: usize,
    pub exporters: Vec<ExporterSpec>,
    pub pipelines: Vec<PipelineSpec>,
    /// The core's request memory in bytes (`Config::request_memory`): its request budget and
    /// its HTTP/2 window pool ([`CoreSpec::memory_split`]).
    pub request_memory: usize,
}

impl CoreSpec {
    /// `request_memory` as (request budget, window pool): see `receiver/window.rs`.
    pub fn memory_split(&self) -> (usize, usize) {
        let largest = self.listeners.iter().map(|l| l.max_recv).max().unwrap_or(0);
        window::split(self.request_memory, largest)
    }
}

/// The gateway's service on one listener of one core (the HTTP receiver calls it with the
/// gRPC path of the request's signal).
pub struct GatewayService {
    /// The pipeline per signal; replaced whole on reload, between requests.
    routes: RefCell<[Option<Rc<Pipeline>>; 3]>,
    max_recv: Cell<usize>,
    tls: RefCell<Option<Arc<crate::tls::ServerConfig>>>,
    budget: Rc<ByteBudget>,
    /// This listener's index in `CoreSpec::listeners`, for telemetry.
    listener: usize,
    auth: RefCell<Option<Arc<BearerAuth>>>,
}

impl GatewayService {
    fn new(l: &ListenerSpec, pipelines: &[Rc<Pipeline>], budget: &Rc<ByteBudget>, listener: usize) -> Self {
        let routes = Default::default();
        let (max_recv, tls, auth) = (Cell::new(0), RefCell::new(None), RefCell::new(None));
        let service = GatewayService { routes, max_recv, tls, budget: budget.clone(), listener, auth };
        service.update(l, pipelines);
        service
    }

    fn update(&self, l: &ListenerSpec, pipelines: &[Rc<Pipeline>]) {
        let route = |s: usize| l.routes[s].and_then(|i| pipelines.get(i).cloned());
        *self.routes.borrow_mut() = [route(0), route(1), route(2)];
        self.max_recv.set(l.max_recv);
        *self.tls.borrow_mut() = l.tls.clone();
        *self.auth.borrow_mut() = l.auth.clone();
    }
}

impl GrpcService for GatewayService {
    type Method = Signal;

    fn route(&self, path: &str) -> Option<Signal> {
        signal_of(path).filter(|&s| self.routes.borrow()[s as usize].is_some())
    }

    fn max_recv(&self) -> usize {
        self.max_recv.get()
    }

    fn budget(&self) -> &ByteBudget {
        &self.budget
    }

    fn tls(&self) -> Option<Arc<crate::tls::ServerConfig>> {
        self.tls.borrow().clone()
    }

    fn authenticate(&self, headers: &::http::HeaderMap) -> Result<(), Status> {
        self.auth.borrow().as_ref().map_or(Ok(()), |auth| auth.check(headers))
    }

    async fn call(&self, signal: Signal, framed: Bytes) -> Result<Bytes, Status> {
        let pipeline = self.routes.borrow()[signal as usize].clone();
        match pipeline {
            Some(pipeline) => pipeline.export_from(self.listener, framed, &self.budget).await,
            None => Err(Status::new(crate::grpc::Code::Unimplemented, "no pipeline for this signal")),
        }
    }
}

/// Applies a reloaded spec: new pipelines and pools (keeping live connections), and every
/// listener routed to them. Listener addresses are unchanged (the control plane checks).
fn reload(old: &Routing, spec: &CoreSpec, services: &[Rc<GatewayService>], slots: &ConnSlots) -> Routing {
    let routing = Routing::build(spec.clone(), Some(old));
    slots.set_limit(spec.max_connections);
    for (l, service) in spec.listeners.iter().zip(services) {
        service.update(l, &routing.pipelines);
    }
    routing
}

fn bind_all(spec: &CoreSpec) -> Result<Vec<TcpListener>, String> {
    spec.listeners.iter().map(|l| TcpListener::bind(l.addr).map_err(|e| format!("bind {}: {e}", l.addr))).collect()
}

/// The core's main task. Binds before it returns its first await so the caller can wait for
/// `ready`; returns when shut down and drained.
pub async fn run(spec: CoreSpec, control: SharedReceiver<Control>, ready: std::sync::mpsc::Sender<Result<(), String>>) {
    let listeners = match bind_all(&spec) {
        Ok(l) => l,
        Err(e) => return drop(ready.send(Err(e))),
    };
    // Ready before connecting: the control plane connects its end only after every core is up.
    let _ = ready.send(Ok(()));
    let control = control.connect().await;
    let mut routing = Routing::new(spec.clone());
    let (requests, pool) = spec.memory_split();
    let (budget, windows) = (Rc::new(ByteBudget::new(requests)), WindowShare::new(pool));
    let (shutdown, gate) = (Shutdown::default(), Rc::new(Gate::new()));
    // Counters are kept per listener (receiver × transport); telemetry names them.
    let service = |(i, l): (usize, &ListenerSpec)| Rc::new(GatewayService::new(l, &routing.pipelines, &budget, i));
    let services: Vec<Rc<GatewayService>> = spec.listeners.iter().enumerate().map(service).collect();
    let slots = ConnSlots::new(spec.max_connections);
    let acceptors: Vec<_> = (listeners.into_iter().zip(&spec.listeners).zip(&services))
        .map(|((tcp, l), service)| {
            let (service, shutdown, gate) = (service.clone(), shutdown.clone(), gate.clone());
            let (slots, windows) = (slots.clone(), windows.clone());
            let (max_streams, timeouts, limits) = (l.max_streams, l.timeouts, l.limits);
            let conn = ConnOptions { max_streams, timeouts, slots, limits, windows };
            match l.kind {
                ListenerKind::Grpc => glommio::spawn_local(serve(tcp, service, conn, shutdown, gate)),
                ListenerKind::Http => {
                    let limits = http::Limits { conn, header_timeout: l.header_timeout };
                    glommio::spawn_local(http::serve(tcp, service, limits, shutdown, gate))
                }
            }
        })
        .collect();
    let drain = loop {
        match control.recv().await {
            Some(Control::Backends { exporter, set }) => routing.set_backends(exporter, &set),
            Some(Control::Reload(spec)) => {
                let (requests, pool) = spec.memory_split();
                budget.set_limit(requests);
                windows.set_pool(pool);
                routing = reload(&routing, &spec, &services, &slots);
            }
            Some(Control::Shutdown { drain }) => break drain,
            Some(Control::Scrape { core, reply }) => {
                drop(reply.send(crate::telemetry::core_snapshot(core, routing.rings(), &budget)));
            }
            None => break Duration::from_secs(10),
        }
    };
    let deadline = std::time::Instant::now() + drain;
    shutdown.trigger();
    routing.hurry_retries();
    for a in acceptors {
        a.await;
    }
    let _ = glommio::timer::timeout(drain, gate.close()).await;
    drain_retry_queues(deadline).await;
    report_undelivered();
}

/// Waits until this core's retry queues are empty or `deadline` passes: what they hold was
/// acknowledged to clients.
async fn drain_retry_queues(deadline: std::time::Instant) {
    use crate::exporter::retry::queued_items;
    while queued_items() > 0 && std::time::Instant::now() < deadline {
        glommio::timer::sleep(Duration::from_millis(20)).await;
    }
}

/// Logs what this core acknowledged and did not deliver: still queued at the deadline, or
/// dropped after its retries ran out. Nothing acknowledged is lost silently.
fn report_undelivered() {
    use crate::exporter::retry::{dropped_items, queued_bytes, queued_items};
    let (queued, dropped) = (queued_items(), dropped_items());
    if queued + dropped > 0 {
        log::error!(
            "shutdown: {} acknowledged items not delivered: {queued} still queued for retry ({} bytes) at the drain deadline, {dropped} dropped after retry_on_failure.max_elapsed_time",
            queued + dropped,
            queued_bytes()
        );
    }
}
