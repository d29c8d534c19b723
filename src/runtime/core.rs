//! One data-plane core: its listeners, their connections, its pipelines and backend pools.
//! It hears from the control plane only through its `Control` channel.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use glommio::channels::shared_channel::SharedReceiver;
use glommio::net::TcpListener;
use glommio::sync::Gate;

use super::shutdown::Shutdown;
use crate::config::{RoutingKey, Signal};
use crate::exporter::{Backend, BackendSettings};
use crate::grpc::{Status, signal_of};
use crate::receiver::budget::ByteBudget;
use crate::receiver::grpc::{GrpcService, serve};
use crate::receiver::{Pipeline, Topology};
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
    /// Send this core's counters to `reply`; `core` is the core's index in the gateway.
    Scrape { core: usize, reply: crate::telemetry::ScrapeReply },
}

/// One OTLP/gRPC receiver endpoint, served on every core through SO_REUSEPORT.
#[derive(Debug, Clone)]
pub struct ListenerSpec {
    pub addr: SocketAddr,
    pub max_recv: usize,
    pub max_streams: u32,
    /// Index into `CoreSpec::pipelines` for traces, metrics and logs (`Signal as usize`).
    pub routes: [Option<usize>; 3],
}

/// One exporter: a backend pool per core, shared by the pipelines that use it.
#[derive(Debug, Clone)]
pub struct ExporterSpec {
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
    pub exporters: Vec<ExporterSpec>,
    pub pipelines: Vec<PipelineSpec>,
}

/// The gateway's gRPC service on one listener of one core.
pub struct GatewayService {
    routes: [Option<Rc<Pipeline>>; 3],
    max_recv: usize,
    budget: Rc<ByteBudget>,
    /// This listener's index in `CoreSpec::listeners`, for telemetry.
    listener: usize,
}

impl GrpcService for GatewayService {
    type Method = Signal;

    fn route(&self, path: &str) -> Option<Signal> {
        signal_of(path).filter(|&s| self.routes[s as usize].is_some())
    }

    fn max_recv(&self) -> usize {
        self.max_recv
    }

    fn budget(&self) -> &ByteBudget {
        &self.budget
    }

    async fn call(&self, signal: Signal, framed: Bytes) -> Result<Bytes, Status> {
        match &self.routes[signal as usize] {
            Some(pipeline) => pipeline.export_from(self.listener, framed).await,
            None => Err(Status::new(crate::grpc::Code::Unimplemented, "no pipeline for this signal")),
        }
    }
}

/// Builds this core's pool for a backend set.
pub fn topology(set: &BackendSet, settings: &BackendSettings) -> Topology {
    let names = set.ring.backends();
    let backends = names.iter().zip(&set.addrs).map(|(n, a)| Backend::new(n.clone(), *a, settings.clone())).collect();
    Topology { ring: set.ring.clone(), backends }
}

/// A core's routing state: one backend pool per exporter, and the pipelines that use them.
struct Routing {
    spec: CoreSpec,
    pools: Vec<Option<Rc<Topology>>>,
    pipelines: Vec<Rc<Pipeline>>,
}

impl Routing {
    fn new(spec: CoreSpec) -> Self {
        let pools: Vec<Option<Rc<Topology>>> =
            spec.exporters.iter().map(|e| e.backends.as_deref().map(|s| Rc::new(topology(s, &e.settings)))).collect();
        let pool = |i: usize| pools.get(i).cloned().flatten();
        let pipelines = spec
            .pipelines
            .iter()
            .map(|p| Rc::new(Pipeline::new(p.signal, &p.key, pool(p.exporter)).for_exporter(p.exporter)))
            .collect();
        Routing { spec, pools, pipelines }
    }

    /// Each exporter's ring, for a telemetry snapshot.
    fn rings(&self) -> Vec<Option<crate::telemetry::RingView>> {
        self.pools.iter().map(|p| p.as_ref().map(|t| crate::telemetry::RingView::of(&t.ring))).collect()
    }

    /// Swaps in a new backend set, keeping the connections of backends that stay.
    fn set_backends(&mut self, exporter: usize, set: &BackendSet) {
        let (Some(e), Some(slot)) = (self.spec.exporters.get(exporter), self.pools.get_mut(exporter)) else { return };
        let old = slot.take();
        let kept = |name: &str, addr: SocketAddr| {
            old.iter().flat_map(|t| t.backends.iter()).find(|b| b.name == name && b.addr() == addr).cloned()
        };
        let backends = (set.ring.backends().iter().zip(&set.addrs))
            .map(|(n, &a)| kept(n, a).unwrap_or_else(|| Backend::new(n.clone(), a, e.settings.clone())))
            .collect();
        let topology = Some(Rc::new(Topology { ring: set.ring.clone(), backends }));
        *slot = topology.clone();
        for (p, spec) in self.pipelines.iter().zip(&self.spec.pipelines) {
            if spec.exporter == exporter {
                p.set_topology(topology.clone());
            }
        }
    }
}

fn service(l: &ListenerSpec, pipelines: &[Rc<Pipeline>], budget: &Rc<ByteBudget>, listener: usize) -> GatewayService {
    let route = |s: usize| l.routes[s].and_then(|i| pipelines.get(i).cloned());
    GatewayService { routes: [route(0), route(1), route(2)], max_recv: l.max_recv, budget: budget.clone(), listener }
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
    let pipelines = routing.pipelines.clone();
    let max_recv = spec.listeners.iter().map(|l| l.max_recv).max().unwrap_or(0);
    let budget = Rc::new(ByteBudget::new(super::tuning::core_request_budget(max_recv)));
    let (shutdown, gate) = (Shutdown::default(), Rc::new(Gate::new()));
    let acceptors: Vec<_> = listeners
        .into_iter()
        .zip(spec.listeners.iter().enumerate())
        .map(|(tcp, (i, l))| {
            let service = Rc::new(service(l, &pipelines, &budget, i));
            glommio::spawn_local(serve(tcp, service, l.max_streams, shutdown.clone(), gate.clone()))
        })
        .collect();
    let drain = loop {
        match control.recv().await {
            Some(Control::Backends { exporter, set }) => routing.set_backends(exporter, &set),
            Some(Control::Shutdown { drain }) => break drain,
            Some(Control::Scrape { core, reply }) => {
                drop(reply.send(crate::telemetry::core_snapshot(core, routing.rings(), budget.used())));
            }
            None => break Duration::from_secs(10),
        }
    };
    shutdown.trigger();
    for a in acceptors {
        a.await;
    }
    let _ = glommio::timer::timeout(drain, gate.close()).await;
}
