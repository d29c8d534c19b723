//! Starting and stopping the gateway: the control plane resolves config into a backend set,
//! reserves the listening port, pins one executor per core, and later tells cores to stop.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use glommio::channels::shared_channel::{self, ConnectedSender, SharedSender};
use glommio::{ExecutorJoinHandle, LocalExecutorBuilder, Placement};
use socket2::{Domain, Socket, Type};

use super::core::{self, BackendSet, Control, CoreSpec, ExporterSpec, ListenerSpec, PipelineSpec};
use crate::config::{
    ComponentId, Config, DnsResolver, Exporter, GrpcServer, HostPort, LoadBalancing, Resolver, RoutingKey, Signal,
};
use crate::exporter::BackendSettings;
use crate::resolver::{self, ResolverHandle, StatsHandle, backend_names};
use crate::routing::Ring;
use crate::telemetry::prometheus::Names;
use crate::telemetry::{ScrapeReply, Telemetry};
use std::sync::mpsc::{Receiver, Sender};

/// Why the gateway could not start. Reported before any traffic is accepted.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("no pipeline has an OTLP/gRPC receiver")]
    NoGrpcReceiver,
    #[error("cannot start the DNS resolver: {0}")]
    Resolver(#[from] crate::resolver::SpawnError),
    #[error("cannot resolve {what} `{addr}`: {reason}")]
    Resolve { what: &'static str, addr: String, reason: String },
    #[error("cannot bind {addr}: {reason}")]
    Bind { addr: SocketAddr, reason: String },
    #[error("core {core}: {reason}")]
    Core { core: usize, reason: String },
    #[error("no usable cores: {0}")]
    Cores(String),
    #[error(transparent)]
    Telemetry(#[from] crate::telemetry::TelemetryError),
}

/// A running gateway.
pub struct Gateway {
    /// The first OTLP/gRPC receiver's address (the real port when configured as 0).
    pub grpc_addr: SocketAddr,
    /// Every OTLP/gRPC receiver and the address it listens on.
    pub grpc_addrs: Vec<(ComponentId, SocketAddr)>,
    pub cores: Vec<usize>,
    stop: Arc<AtomicBool>,
    drain: Duration,
    control: Option<ExecutorJoinHandle<()>>,
    executors: Vec<ExecutorJoinHandle<()>>,
    /// DNS resolvers, one per exporter that uses one; they stop when dropped.
    resolvers: Vec<ResolverHandle>,
    /// `/metrics` and the status page (the real port when configured as 0), if enabled.
    pub metrics_addr: Option<SocketAddr>,
    /// The health check, if the `health_check` extension is enabled.
    pub health_addr: Option<SocketAddr>,
    telemetry: Option<Telemetry>,
}

impl Gateway {
    /// Starts on `cores` (all online cores when `None`); returns once every core listens.
    pub fn start(cfg: &Config, cores: Option<Vec<usize>>) -> Result<Gateway, StartError> {
        let cores = choose_cores(cores.or_else(|| cfg.runtime.cores.clone()))?;
        let plan = plan(cfg)?;
        let telemetry = Telemetry::start(&cfg.telemetry)?;
        let names = telemetry_names(&plan);
        let (scrape_tx, scrapes) = std::sync::mpsc::channel();
        let reservations = plan.listeners.iter().map(|l| reserve_port(l.addr)).collect::<Result<Vec<_>, _>>()?;
        let mut spec = plan.spec;
        for (l, r) in spec.listeners.iter_mut().zip(&reservations) {
            l.addr = r.local_addr().ok().and_then(|a| a.as_socket()).unwrap_or(l.addr);
        }
        let grpc_addrs: Vec<_> = plan.ids.into_iter().zip(spec.listeners.iter().map(|l| l.addr)).collect();
        let (updates_tx, updates) = std::sync::mpsc::channel();
        let mut gw = Gateway::spawn_cores(spec, cores, updates, scrapes)?;
        drop(reservations);
        gw.resolvers = start_resolvers(&plan.dns, updates_tx)?;
        let scraper = crate::telemetry::Scraper::new(scrape_tx, gw.cores.clone());
        telemetry.shared.attach(scraper, names, resolver_stats(&gw.resolvers), gw.stop_flag());
        (gw.metrics_addr, gw.health_addr) = (telemetry.metrics_addr, telemetry.health_addr);
        gw.telemetry = Some(telemetry);
        gw.grpc_addr = grpc_addrs.first().map_or(gw.grpc_addr, |(_, a)| *a);
        gw.grpc_addrs = grpc_addrs;
        Ok(gw)
    }

    fn spawn_cores(
        spec: CoreSpec,
        cores: Vec<usize>,
        updates: Receiver<Update>,
        scrapes: Receiver<ScrapeReply>,
    ) -> Result<Gateway, StartError> {
        let (mut senders, mut executors) = (Vec::new(), Vec::new());
        for &core in &cores {
            let (tx, rx) = shared_channel::new_bounded(8);
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            let spec = spec.clone();
            let handle = LocalExecutorBuilder::new(Placement::Fixed(core))
                .name(&format!("otlp-core-{core}"))
                .spawn(move || core::run(spec, rx, ready_tx))
                .map_err(|e| StartError::Core { core, reason: e.to_string() })?;
            let ready = ready_rx.recv().unwrap_or_else(|_| Err("core exited during start".into()));
            ready.map_err(|reason| StartError::Core { core, reason })?;
            senders.push(tx);
            executors.push(handle);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let drain = Duration::from_secs(10);
        let control = spawn_control(senders, updates, scrapes, stop.clone(), drain)?;
        let grpc_addr = spec.listeners.first().map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |l| l.addr);
        Ok(Gateway {
            grpc_addr,
            grpc_addrs: Vec::new(),
            cores,
            stop,
            drain,
            control: Some(control),
            executors,
            resolvers: Vec::new(),
            metrics_addr: None,
            health_addr: None,
            telemetry: None,
        })
    }

    /// The flag that stops the gateway; signal handlers set it.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// How long shutdown waits for in-flight requests.
    pub fn drain_deadline(&self) -> Duration {
        self.drain
    }

    /// Blocks until the gateway has stopped (after the stop flag is set).
    pub fn wait(mut self) {
        self.resolvers.clear();
        if let Some(c) = self.control.take() {
            let _ = c.join();
        }
        for e in self.executors.drain(..) {
            let _ = e.join();
        }
        // Health answers 503 through the drain; the endpoints close last.
        if let Some(t) = self.telemetry.take() {
            t.stop();
        }
    }

    /// Stops accepting, drains, and waits for every core to exit.
    pub fn shutdown(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wait();
    }
}

/// A resolved backend list for an exporter (an index into `CoreSpec::exporters`).
type Update = (usize, Vec<SocketAddr>);

/// The control plane: turns resolver updates into backend sets for every core, and the stop
/// flag into `Shutdown` messages.
fn spawn_control(
    senders: Vec<SharedSender<Control>>,
    updates: Receiver<Update>,
    scrapes: Receiver<ScrapeReply>,
    stop: Arc<AtomicBool>,
    drain: Duration,
) -> Result<ExecutorJoinHandle<()>, StartError> {
    LocalExecutorBuilder::new(Placement::Unbound)
        .name("otlp-control")
        .spawn(move || async move {
            let mut connected: Vec<ConnectedSender<Control>> = Vec::new();
            for s in senders {
                connected.push(s.connect().await);
            }
            while !stop.load(Ordering::SeqCst) {
                while let Ok((exporter, list)) = updates.try_recv() {
                    broadcast_backends(&connected, exporter, &list).await;
                }
                while let Ok(reply) = scrapes.try_recv() {
                    scrape_cores(&connected, &reply).await;
                }
                glommio::timer::sleep(Duration::from_millis(20)).await;
            }
            for c in &connected {
                let _ = c.send(Control::Shutdown { drain }).await;
            }
        })
        .map_err(|e| StartError::Cores(format!("control plane: {e}")))
}

/// Builds the ring once and hands every core a copy: all cores converge in one message round.
async fn broadcast_backends(cores: &[ConnectedSender<Control>], exporter: usize, list: &[SocketAddr]) {
    let Ok(ring) = Ring::new(&backend_names(list)) else { return };
    let addr_of = |name: &String| list.iter().find(|a| a.to_string() == *name).copied();
    let Some(addrs) = ring.backends().iter().map(addr_of).collect::<Option<Vec<_>>>() else { return };
    let set = Arc::new(BackendSet { ring, addrs });
    for c in cores {
        let _ = c.send(Control::Backends { exporter, set: set.clone() }).await;
    }
}

/// Asks every core for its counters; each answers on `reply` itself.
async fn scrape_cores(cores: &[ConnectedSender<Control>], reply: &ScrapeReply) {
    for (core, c) in cores.iter().enumerate() {
        let _ = c.send(Control::Scrape { core, reply: reply.clone() }).await;
    }
}

/// Telemetry's names for the plan's receiver and exporter indexes.
fn telemetry_names(plan: &Plan) -> Names {
    let kind = |i: usize| if plan.dns.iter().any(|(e, _)| *e == i) { "dns" } else { "static" };
    Names {
        receivers: plan.ids.iter().map(ToString::to_string).collect(),
        exporters: plan.exporters.iter().map(ToString::to_string).collect(),
        resolvers: (0..plan.exporters.len()).map(kind).collect(),
    }
}

fn resolver_stats(resolvers: &[ResolverHandle]) -> Vec<(&'static str, StatsHandle)> {
    resolvers.iter().map(|r| ("dns", r.stats_handle())).collect()
}

fn start_resolvers(dns: &[(usize, DnsResolver)], updates: Sender<Update>) -> Result<Vec<ResolverHandle>, StartError> {
    let start = |(exporter, cfg): &(usize, DnsResolver)| {
        let (tx, e) = (updates.clone(), *exporter);
        Ok(resolver::spawn(cfg, move |list| drop(tx.send((e, list))))?)
    };
    dns.iter().map(start).collect()
}

/// What the cores will run, derived from the config's routes.
struct Plan {
    spec: CoreSpec,
    /// Receiver ids, indexed like `spec.listeners`.
    ids: Vec<ComponentId>,
    listeners: Vec<ListenerSpec>,
    /// Exporters whose backends come from DNS, by index into `spec.exporters`.
    dns: Vec<(usize, DnsResolver)>,
    /// Exporter ids, indexed like `spec.exporters`.
    exporters: Vec<ComponentId>,
}

fn plan(cfg: &Config) -> Result<Plan, StartError> {
    let mut spec = CoreSpec { listeners: Vec::new(), exporters: Vec::new(), pipelines: Vec::new() };
    let (mut exporter_ids, mut ids) = (Vec::new(), Vec::new());
    for route in cfg.routes() {
        let (Some(receiver), Some(exporter)) = (cfg.receivers.get(&route.receiver), cfg.exporters.get(&route.exporter))
        else {
            continue;
        };
        let Some(grpc) = &receiver.grpc else { continue };
        let e = index_of(&mut exporter_ids, &route.exporter, || exporter_spec(exporter), &mut spec.exporters)?;
        let pipeline = PipelineSpec { signal: route.signal, key: routing_key(exporter, route.signal), exporter: e };
        let p =
            position_or_push(&mut spec.pipelines, pipeline, |a, b| a.signal == b.signal && a.exporter == b.exporter);
        let l = index_of(&mut ids, &route.receiver, || listener_spec(grpc), &mut spec.listeners)?;
        spec.listeners[l].routes[route.signal as usize] = Some(p);
    }
    if spec.listeners.is_empty() {
        return Err(StartError::NoGrpcReceiver);
    }
    let listeners = spec.listeners.clone();
    let dns =
        exporter_ids.iter().enumerate().filter_map(|(i, id)| Some((i, dns_of(cfg.exporters.get(id)?)?))).collect();
    Ok(Plan { spec, ids, listeners, dns, exporters: exporter_ids })
}

/// The index of `id` in `ids`, building and pushing its value on first sight.
fn index_of<T>(
    ids: &mut Vec<ComponentId>,
    id: &ComponentId,
    build: impl FnOnce() -> Result<T, StartError>,
    values: &mut Vec<T>,
) -> Result<usize, StartError> {
    if let Some(i) = ids.iter().position(|x| x == id) {
        return Ok(i);
    }
    values.push(build()?);
    ids.push(id.clone());
    Ok(ids.len() - 1)
}

fn position_or_push<T>(values: &mut Vec<T>, value: T, same: impl Fn(&T, &T) -> bool) -> usize {
    values.iter().position(|v| same(v, &value)).unwrap_or_else(|| {
        values.push(value);
        values.len() - 1
    })
}

fn listener_spec(grpc: &GrpcServer) -> Result<ListenerSpec, StartError> {
    let addr = resolve_one("receiver endpoint", &grpc.endpoint)?;
    Ok(ListenerSpec {
        addr,
        max_recv: grpc.max_recv_msg_size,
        max_streams: grpc.max_concurrent_streams,
        routes: [None; 3],
    })
}

fn exporter_spec(exporter: &Exporter) -> Result<ExporterSpec, StartError> {
    let protocol = match exporter {
        Exporter::LoadBalancing(lb) => &lb.protocol,
        Exporter::Otlp(otlp) => otlp,
    };
    let settings = BackendSettings { timeout: protocol.timeout, ..Default::default() };
    Ok(ExporterSpec { backends: backend_set(exporter)?, settings })
}

fn routing_key(exporter: &Exporter, signal: Signal) -> RoutingKey {
    match exporter {
        Exporter::LoadBalancing(lb) => lb.key_for(signal),
        Exporter::Otlp(_) => RoutingKey::default_for(signal),
    }
}

fn dns_of(exporter: &Exporter) -> Option<DnsResolver> {
    match exporter {
        Exporter::LoadBalancing(LoadBalancing { resolver: Resolver::Dns(dns), .. }) => Some(dns.clone()),
        _ => None,
    }
}

/// The ring and addresses for a static backend list, resolved once here on the control plane;
/// `None` for DNS (the resolver sends sets later) or an empty list.
fn backend_set(exporter: &Exporter) -> Result<Option<Arc<BackendSet>>, StartError> {
    let Some(hosts) = exporter.static_backends() else { return Ok(None) };
    let names: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
    let Ok(ring) = Ring::new(&names) else {
        return Ok(None);
    };
    let addrs = ring.backends().iter().map(|name| resolve_name("backend", name)).collect::<Result<Vec<_>, _>>()?;
    Ok(Some(Arc::new(BackendSet { ring, addrs })))
}

fn resolve_one(what: &'static str, hp: &HostPort) -> Result<SocketAddr, StartError> {
    let host = if hp.host.is_empty() { "0.0.0.0" } else { hp.host.as_str() };
    resolve_name(what, &HostPort { host: host.to_string(), port: hp.port }.to_string())
}

fn resolve_name(what: &'static str, name: &str) -> Result<SocketAddr, StartError> {
    let err = |reason: String| StartError::Resolve { what, addr: name.to_string(), reason };
    let mut addrs = name.to_socket_addrs().map_err(|e| err(e.to_string()))?;
    addrs.next().ok_or_else(|| err("no addresses".into()))
}

/// Binds (without listening) so that port 0 becomes one real port every core then shares
/// through SO_REUSEPORT. Unlistened, it never receives connections.
fn reserve_port(addr: SocketAddr) -> Result<Socket, StartError> {
    let err = |e: std::io::Error| StartError::Bind { addr, reason: e.to_string() };
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).map_err(err)?;
    socket.set_reuse_port(true).map_err(err)?;
    socket.set_reuse_address(true).map_err(err)?;
    socket.bind(&addr.into()).map_err(err)?;
    Ok(socket)
}

/// The cores to run on: the given list, checked against the online CPUs, or all of them.
pub fn choose_cores(wanted: Option<Vec<usize>>) -> Result<Vec<usize>, StartError> {
    let online: Vec<usize> =
        glommio::CpuSet::online().map_err(|e| StartError::Cores(e.to_string()))?.into_iter().map(|l| l.cpu).collect();
    let Some(wanted) = wanted else {
        return Ok(online);
    };
    match wanted.iter().find(|c| !online.contains(c)) {
        Some(c) => Err(StartError::Cores(format!("CPU {c} is not online (online: {online:?})"))),
        None if wanted.is_empty() => Err(StartError::Cores("empty CPU list".into())),
        None => Ok(wanted),
    }
}
