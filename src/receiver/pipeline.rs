//! One core's traces pipeline: split a received request by routing key and forward the parts.
//! Everything here is owned by one core; the topology is swapped whole between requests.

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;

use crate::config::RoutingKey;
use crate::exporter::{Backend, fanout};
use crate::grpc::{Code, Status, TRACE_EXPORT};
use crate::routing::{Ring, ring::hash_key};
use crate::wire::{KeyLevel, Part, Route, Splitter, keys};

/// The backends a core routes to: the ring and a connection pool indexed like `ring.backends()`.
pub struct Topology {
    pub ring: Ring,
    pub backends: Vec<Rc<Backend>>,
}

/// A core's pipeline state.
pub struct Pipeline {
    pub routing_key: RoutingKey,
    /// Largest accepted message (`max_recv_msg_size_mib`).
    pub max_recv: usize,
    topology: RefCell<Option<Rc<Topology>>>,
    splitter: RefCell<Splitter>,
}

impl Pipeline {
    pub fn new(routing_key: RoutingKey, max_recv: usize, topology: Option<Topology>) -> Self {
        Pipeline {
            routing_key,
            max_recv,
            topology: RefCell::new(topology.map(Rc::new)),
            splitter: RefCell::new(Splitter::new()),
        }
    }

    /// Replaces the topology; requests already running keep the one they started with.
    pub fn set_topology(&self, topology: Option<Topology>) {
        *self.topology.borrow_mut() = topology.map(Rc::new);
    }

    /// Routes and forwards one framed ExportTraceServiceRequest; returns the framed response.
    pub async fn export_traces(&self, framed: Bytes) -> Result<Bytes, Status> {
        let topology = self.topology.borrow().clone();
        let Some(topology) = topology else {
            return Err(Status::new(Code::Unavailable, "no backends are configured or resolved"));
        };
        let parts = self.split(&framed, &topology)?;
        fanout::forward(&topology.backends, TRACE_EXPORT, parts).await
    }

    fn split(&self, framed: &Bytes, topology: &Topology) -> Result<Vec<Part>, Status> {
        let ring = &topology.ring;
        let owner = |hash: u64| ring.lookup(hash);
        let (level, key): (KeyLevel, crate::wire::split::KeyFn) = match self.routing_key {
            RoutingKey::TraceId => (KeyLevel::Item, keys::span_trace_id),
            RoutingKey::Service => (KeyLevel::Resource, keys::resource_service_name),
        };
        let route = Route { level, key, hash: hash_key, owner: &owner, backends: ring.len() };
        let mut parts = Vec::new();
        self.splitter
            .borrow_mut()
            .split(framed, &route, &mut parts)
            .map_err(|e| Status::new(Code::InvalidArgument, format!("cannot decode ExportTraceServiceRequest: {e}")))?;
        Ok(parts)
    }
}
