//! The control plane's executor: the only place that talks to cores. It turns resolver
//! updates into rings (built once, sent to every core), reloads into new specs, scrapes into
//! per-core counter snapshots, and the stop flag into `Shutdown`. Everything reaches it over one channel, so a reload and the updates
//! of the resolvers it starts arrive in the order they happened.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::time::Duration;

use glommio::channels::shared_channel::{ConnectedSender, SharedSender};
use glommio::{ExecutorJoinHandle, Placement};

use super::core::{BackendSet, Control, CoreSpec};
use super::gateway::StartError;
use crate::config::DnsResolver;
use crate::resolver::{self, ResolverHandle, backend_names};
use crate::routing::Ring;
use crate::telemetry::ScrapeReply;

/// What the control plane hears from the rest of the process.
#[derive(Debug)]
pub(super) enum ToControl {
    /// A resolver of config generation `generation` has a new list for `exporter` (an index
    /// into that generation's `CoreSpec::exporters`).
    Resolved { generation: u64, exporter: usize, list: Vec<SocketAddr> },
    /// A reloaded config; updates from older generations are dropped from now on.
    Reload { generation: u64, spec: Arc<CoreSpec> },
}

/// Starts the control executor.
pub(super) fn spawn(
    senders: Vec<SharedSender<Control>>,
    inbox: Receiver<ToControl>,
    scrapes: Receiver<ScrapeReply>,
    stop: Arc<AtomicBool>,
    drain: Duration,
) -> Result<ExecutorJoinHandle<()>, StartError> {
    super::executor(Placement::Unbound)
        .name("otlp-control")
        .spawn(move || async move {
            let mut cores: Vec<ConnectedSender<Control>> = Vec::new();
            for s in senders {
                cores.push(s.connect().await);
            }
            let mut state = State::default();
            while !stop.load(Ordering::SeqCst) {
                while let Ok(msg) = inbox.try_recv() {
                    state.handle(&cores, msg).await;
                }
                while let Ok(reply) = scrapes.try_recv() {
                    // Never wait on a core for a scrape: a stuck core must not stall the
                    // control plane (updates, reloads, shutdown); its last snapshot stands in.
                    for (core, c) in cores.iter().enumerate() {
                        let _ = c.try_send(Control::Scrape { core, reply: reply.clone() });
                    }
                }
                glommio::timer::sleep(Duration::from_millis(20)).await;
            }
            broadcast(&cores, || Control::Shutdown { drain }).await;
        })
        .map_err(|e| StartError::Cores(format!("control plane: {e}")))
}

/// The control plane's memory: the config generation in force, and resolver answers of a
/// newer generation that arrived before its reload (the reload starts them first).
#[derive(Default)]
struct State {
    generation: u64,
    ahead: Vec<(u64, usize, Vec<SocketAddr>)>,
}

impl State {
    async fn handle(&mut self, cores: &[ConnectedSender<Control>], msg: ToControl) {
        match msg {
            ToControl::Reload { generation, spec } => {
                self.generation = generation;
                broadcast(cores, || Control::Reload(spec.clone())).await;
                for (_, exporter, list) in self.take_ahead(generation) {
                    send_backends(cores, exporter, &list).await;
                }
            }
            ToControl::Resolved { generation, exporter, list } if generation == self.generation => {
                send_backends(cores, exporter, &list).await;
            }
            ToControl::Resolved { generation, exporter, list } if generation > self.generation => {
                self.ahead.retain(|(g, e, _)| !(*g == generation && *e == exporter));
                self.ahead.push((generation, exporter, list));
            }
            ToControl::Resolved { .. } => {}
        }
    }

    /// The held answers of `generation`; older ones are dropped.
    fn take_ahead(&mut self, generation: u64) -> Vec<(u64, usize, Vec<SocketAddr>)> {
        let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.ahead)
            .into_iter()
            .filter(|(g, _, _)| *g >= generation)
            .partition(|(g, _, _)| *g == generation);
        self.ahead = later;
        now
    }
}

async fn send_backends(cores: &[ConnectedSender<Control>], exporter: usize, list: &[SocketAddr]) {
    if let Some(set) = backend_set(list) {
        broadcast(cores, || Control::Backends { exporter, set: set.clone() }).await;
    }
}

async fn broadcast(cores: &[ConnectedSender<Control>], msg: impl Fn() -> Control) {
    for c in cores {
        let _ = c.send(msg()).await;
    }
}

/// The ring for a resolved list, built once: every core gets a copy in the same message round.
fn backend_set(list: &[SocketAddr]) -> Option<Arc<BackendSet>> {
    let ring = Ring::new(&backend_names(list)).ok()?;
    let addr_of = |name: &String| list.iter().find(|a| a.to_string() == *name).copied();
    let addrs = ring.backends().iter().map(addr_of).collect::<Option<Vec<_>>>()?;
    Some(Arc::new(BackendSet { ring, addrs }))
}

/// Starts one resolver per DNS exporter of config generation `generation`.
pub(super) fn start_resolvers(
    dns: &[(usize, DnsResolver)],
    generation: u64,
    inbox: &Sender<ToControl>,
) -> Result<Vec<ResolverHandle>, StartError> {
    let start = |(exporter, cfg): &(usize, DnsResolver)| {
        let (tx, exporter) = (inbox.clone(), *exporter);
        let send = move |list| drop(tx.send(ToControl::Resolved { generation, exporter, list }));
        Ok(resolver::spawn(cfg, send)?)
    };
    dns.iter().map(start).collect()
}
