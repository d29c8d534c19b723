//! One data-plane core: its listener, its connections, its pipeline, its backend pool.
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
use crate::grpc::{Status, TRACE_EXPORT};
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
}

/// What a core needs to start.
#[derive(Debug, Clone)]
pub struct CoreSpec {
    pub listen: SocketAddr,
    pub routing_key: RoutingKey,
    pub max_recv: usize,
    pub max_streams: u32,
    pub backends: Option<Arc<BackendSet>>,
    pub settings: BackendSettings,
}

/// The gateway's gRPC service on one core.
pub struct GatewayService {
    pub pipeline: Pipeline,
    pub budget: ByteBudget,
}

impl GrpcService for GatewayService {
    type Method = Signal;

    fn route(&self, path: &str) -> Option<Signal> {
        (path == TRACE_EXPORT).then_some(Signal::Traces)
    }

    fn max_recv(&self) -> usize {
        self.pipeline.max_recv
    }

    fn budget(&self) -> &ByteBudget {
        &self.budget
    }

    async fn call(&self, _method: Signal, framed: Bytes) -> Result<Bytes, Status> {
        self.pipeline.export_traces(framed).await
    }
}

/// Builds this core's pool for a backend set.
pub fn topology(set: &BackendSet, settings: &BackendSettings) -> Topology {
    let names = set.ring.backends();
    let backends = names.iter().zip(&set.addrs).map(|(n, a)| Backend::new(n.clone(), *a, settings.clone())).collect();
    Topology { ring: set.ring.clone(), backends }
}

/// The core's main task. Binds before it returns its first await so the caller can wait for
/// `ready`; returns when shut down and drained.
pub async fn run(spec: CoreSpec, control: SharedReceiver<Control>, ready: std::sync::mpsc::Sender<Result<(), String>>) {
    let listener = match TcpListener::bind(spec.listen) {
        Ok(l) => l,
        Err(e) => {
            let _ = ready.send(Err(format!("bind {}: {e}", spec.listen)));
            return;
        }
    };
    // Ready before connecting: the control plane connects its end only after every core is up.
    let _ = ready.send(Ok(()));
    let control = control.connect().await;
    let topo = spec.backends.as_deref().map(|s| topology(s, &spec.settings));
    let pipeline = Pipeline::new(spec.routing_key, spec.max_recv, topo);
    let budget = ByteBudget::new(super::tuning::core_request_budget(spec.max_recv));
    let service = Rc::new(GatewayService { pipeline, budget });
    let (shutdown, gate) = (Shutdown::default(), Rc::new(Gate::new()));
    let acceptor = glommio::spawn_local(serve(listener, service, spec.max_streams, shutdown.clone(), gate.clone()));
    let drain = match control.recv().await {
        Some(Control::Shutdown { drain }) => drain,
        None => Duration::from_secs(10),
    };
    shutdown.trigger();
    acceptor.await;
    let _ = glommio::timer::timeout(drain, gate.close()).await;
}
