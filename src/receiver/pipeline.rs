//! One core's pipeline for one signal: split a received request by routing key and forward
//! the parts. Everything here is owned by one core; the topology is swapped whole between
//! requests.

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;

use crate::config::{RoutingKey, Signal};
use crate::exporter::{Backend, fanout};
use crate::grpc::{Code, Status, export_path};
use crate::routing::{Ring, RouteKey};
use crate::wire::{Part, Route, Splitter};

/// The backends a core routes to: the ring and a connection pool indexed like `ring.backends()`.
pub struct Topology {
    pub ring: Ring,
    pub backends: Vec<Rc<Backend>>,
}

/// A core's pipeline state for one signal.
pub struct Pipeline {
    pub signal: Signal,
    topology: RefCell<Option<Rc<Topology>>>,
    split: RefCell<(Splitter, RouteKey)>,
}

impl Pipeline {
    pub fn new(signal: Signal, key: &RoutingKey, topology: Option<Rc<Topology>>) -> Self {
        Pipeline {
            signal,
            topology: RefCell::new(topology),
            split: RefCell::new((Splitter::new(), RouteKey::new(signal, key))),
        }
    }

    /// Replaces the topology; requests already running keep the one they started with.
    pub fn set_topology(&self, topology: Option<Rc<Topology>>) {
        *self.topology.borrow_mut() = topology;
    }

    /// Routes and forwards one framed export request; returns the framed response.
    pub async fn export(&self, framed: Bytes) -> Result<Bytes, Status> {
        let topology = self.topology.borrow().clone();
        let Some(topology) = topology else {
            return Err(Status::new(Code::Unavailable, "no backends are configured or resolved"));
        };
        let parts = self.split(&framed, &topology)?;
        fanout::forward(&topology.backends, export_path(self.signal), parts).await
    }

    fn split(&self, framed: &Bytes, topology: &Topology) -> Result<Vec<Part>, Status> {
        let ring = &topology.ring;
        let owner = |hash: u64| ring.lookup(hash);
        let route = Route { owner: &owner, backends: ring.len() };
        let mut parts = Vec::new();
        let mut state = self.split.borrow_mut();
        let (splitter, key) = &mut *state;
        splitter.split(framed, key, &route, &mut parts).map_err(|e| {
            let what = self.signal.name();
            Status::new(Code::InvalidArgument, format!("cannot decode the {what} export request: {e}"))
        })?;
        Ok(parts)
    }
}
