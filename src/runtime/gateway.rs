//! Starting, reloading and stopping the gateway: plan what every core runs, reserve the
//! listening ports, pin one executor per core, then talk to cores only through the control
//! plane (`control.rs`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::time::Duration;

use glommio::channels::shared_channel;
use glommio::{ExecutorJoinHandle, Placement};
use socket2::{Domain, Socket, Type};

use super::control::{self, ToControl};
use super::core::{self, CoreSpec, ListenerKind, ListenerSpec};
use super::plan::{Plan, plan};
use crate::config::{ComponentId, Config};
use crate::resolver::{ResolverHandle, StatsHandle};
use crate::telemetry::prometheus::Names;
use crate::telemetry::{ScrapeReply, Telemetry};
use std::sync::mpsc::Receiver;

/// Why the gateway could not start. Reported before any traffic is accepted.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("no pipeline has an OTLP receiver")]
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
    #[error("authenticator: {0}")]
    Auth(#[from] crate::receiver::auth::AuthError),
}

/// Why a reload was not applied; the running config stays in force.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{0}")]
    Plan(#[from] StartError),
    #[error("{0} changed; that takes a restart (nothing was applied)")]
    NeedsRestart(String),
}

/// A running gateway.
pub struct Gateway {
    /// The first OTLP/gRPC receiver's address (the real port when configured as 0).
    pub grpc_addr: SocketAddr,
    /// Every OTLP/gRPC receiver and the address it listens on.
    pub grpc_addrs: Vec<(ComponentId, SocketAddr)>,
    /// Every OTLP/HTTP receiver and the address it listens on.
    pub http_addrs: Vec<(ComponentId, SocketAddr)>,
    /// Every listener's address, indexed like the plan's listeners.
    bound: Vec<SocketAddr>,
    pub cores: Vec<usize>,
    stop: Arc<AtomicBool>,
    drain: Duration,
    control: Option<ExecutorJoinHandle<()>>,
    executors: Vec<ExecutorJoinHandle<()>>,
    inbox: Sender<ToControl>,
    /// The listeners as configured, to tell what a reload may change.
    listeners: Vec<ListenerSpec>,
    /// Receiver ids, indexed by `ListenerSpec::receiver`.
    receivers: Vec<ComponentId>,
    generation: u64,
    /// Exporter ids by index, stable across reloads.
    exporters: Vec<ComponentId>,
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
        let plan = plan(cfg, &[])?;
        let telemetry = Telemetry::start(&cfg.telemetry)?;
        let reservations = plan.listeners.iter().map(|l| reserve_port(l.addr)).collect::<Result<Vec<_>, _>>()?;
        let bound: Vec<SocketAddr> = reservations
            .iter()
            .zip(&plan.listeners)
            .map(|(r, l)| r.local_addr().ok().and_then(|a| a.as_socket()).unwrap_or(l.addr))
            .collect();
        let (scrape_tx, scrapes) = std::sync::mpsc::channel();
        let mut gw = Gateway::spawn_cores(&plan, &bound, cores, scrapes, cfg.runtime.drain_timeout)?;
        drop(reservations);
        gw.resolvers = control::start_resolvers(&plan.dns, 0, &gw.inbox)?;
        let scraper = crate::telemetry::Scraper::new(scrape_tx, gw.cores.clone());
        telemetry.shared.attach(scraper, telemetry_names(&plan), resolver_stats(&gw.resolvers), gw.stop_flag());
        (gw.metrics_addr, gw.health_addr) = (telemetry.metrics_addr, telemetry.health_addr);
        gw.telemetry = Some(telemetry);
        Ok(gw)
    }

    fn spawn_cores(
        plan: &Plan,
        bound: &[SocketAddr],
        cores: Vec<usize>,
        scrapes: Receiver<ScrapeReply>,
        drain: Duration,
    ) -> Result<Gateway, StartError> {
        let spec = with_addrs(&plan.spec, bound);
        let (mut senders, mut executors) = (Vec::new(), Vec::new());
        for &core in &cores {
            let (tx, rx) = shared_channel::new_bounded(8);
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            let spec = spec.clone();
            let handle = super::executor(Placement::Fixed(core))
                .name(&format!("otlp-core-{core}"))
                .spawn(move || core::run(spec, rx, ready_tx))
                .map_err(|e| StartError::Core { core, reason: e.to_string() })?;
            let ready = ready_rx.recv().unwrap_or_else(|_| Err("core exited during start".into()));
            ready.map_err(|reason| StartError::Core { core, reason })?;
            senders.push(tx);
            executors.push(handle);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (inbox, from_anyone) = std::sync::mpsc::channel();
        let control = control::spawn(senders, from_anyone, scrapes, stop.clone(), drain)?;
        Ok(Gateway {
            grpc_addr: addrs_of(plan, bound, ListenerKind::Grpc)
                .first()
                .map_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)), |(_, a)| *a),
            grpc_addrs: addrs_of(plan, bound, ListenerKind::Grpc),
            http_addrs: addrs_of(plan, bound, ListenerKind::Http),
            bound: bound.to_vec(),
            cores,
            stop,
            drain,
            control: Some(control),
            executors,
            inbox,
            listeners: plan.listeners.clone(),
            receivers: plan.ids.clone(),
            generation: 0,
            exporters: plan.exporters.clone(),
            resolvers: Vec::new(),
            metrics_addr: None,
            health_addr: None,
            telemetry: None,
        })
    }

    /// Applies a new config without dropping connections: pipelines, routing keys, exporters,
    /// backend lists, resolvers and TLS configs (certificates were re-read when `cfg` was
    /// loaded; new connections use them) change; receivers (their endpoints and stream limits)
    /// and cores cannot, and a config that changes them is refused whole.
    pub fn reload(&mut self, cfg: &Config) -> Result<(), ReloadError> {
        let plan = plan(cfg, &self.exporters)?;
        self.check_listeners(&plan)?;
        // Resolvers first: if one cannot start, nothing has changed. Their first answers may
        // reach the control plane before the reload does; it holds them until then.
        let generation = self.generation + 1;
        self.resolvers = control::start_resolvers(&plan.dns, generation, &self.inbox)?;
        self.generation = generation;
        let spec = Arc::new(with_addrs(&plan.spec, &self.bound));
        let _ = self.inbox.send(ToControl::Reload { generation, spec });
        self.exporters = plan.exporters.clone();
        if let Some(t) = &self.telemetry {
            t.shared.update(telemetry_names(&plan), resolver_stats(&self.resolvers));
        }
        Ok(())
    }

    fn check_listeners(&self, plan: &Plan) -> Result<(), ReloadError> {
        let key = |l: &ListenerSpec| (l.receiver, l.kind);
        let same_set = plan.listeners.iter().map(key).eq(self.listeners.iter().map(key));
        if !same_set || plan.ids != self.receivers {
            return Err(ReloadError::NeedsRestart("the set of OTLP receivers or their protocols".into()));
        }
        // The core's request budget was sized from max_recv at start: changing it needs a restart.
        let same = |a: &ListenerSpec, b: &ListenerSpec| {
            (a.addr, a.max_streams, a.header_timeout, a.max_recv, a.timeouts, a.limits)
                == (b.addr, b.max_streams, b.header_timeout, b.max_recv, b.timeouts, b.limits)
        };
        match plan.listeners.iter().zip(&self.listeners).find(|(a, b)| !same(a, b)) {
            Some((l, _)) => Err(ReloadError::NeedsRestart(format!(
                "receiver `{}` (endpoint, max_concurrent_streams, max message/body size, read_header_timeout, keepalive, idle_timeout, handshake_timeout, read_timeout or http2)",
                plan.ids[l.receiver]
            ))),
            None => Ok(()),
        }
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
        if let Some(c) = self.control.take() {
            let _ = c.join();
        }
        for e in self.executors.drain(..) {
            let _ = e.join();
        }
        self.resolvers.clear();
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

/// Telemetry's names for the plan's receiver and exporter indexes.
fn telemetry_names(plan: &Plan) -> Names {
    let kind = |i: usize| if plan.dns.iter().any(|(e, _)| *e == i) { "dns" } else { "static" };
    let listeners = &plan.spec.listeners;
    let transport = |l: &ListenerSpec| if l.kind == ListenerKind::Http { "http" } else { "grpc" };
    Names {
        receivers: listeners
            .iter()
            .map(|l| plan.ids.get(l.receiver).map(ToString::to_string).unwrap_or_default())
            .collect(),
        transports: listeners.iter().map(transport).collect(),
        exporters: plan.exporters.iter().map(ToString::to_string).collect(),
        resolvers: (0..plan.exporters.len()).map(kind).collect(),
    }
}

fn resolver_stats(resolvers: &[ResolverHandle]) -> Vec<(&'static str, StatsHandle)> {
    resolvers.iter().map(|r| ("dns", r.stats_handle())).collect()
}

/// The receivers' listeners of `kind` and their bound addresses.
fn addrs_of(plan: &Plan, bound: &[SocketAddr], kind: ListenerKind) -> Vec<(ComponentId, SocketAddr)> {
    let listeners = plan.listeners.iter().zip(bound).filter(|(l, _)| l.kind == kind);
    listeners.filter_map(|(l, a)| Some((plan.ids.get(l.receiver)?.clone(), *a))).collect()
}

/// `spec` with its listeners on the addresses actually bound (port 0 made real).
fn with_addrs(spec: &CoreSpec, bound: &[SocketAddr]) -> CoreSpec {
    let mut spec = spec.clone();
    for (l, a) in spec.listeners.iter_mut().zip(bound) {
        l.addr = *a;
    }
    spec
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
