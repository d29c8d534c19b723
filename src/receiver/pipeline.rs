//! One core's pipeline for one signal: split a received request by routing key and forward
//! the parts. Everything here is owned by one core; the topology is swapped whole between
//! requests.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use bytes::Bytes;

use crate::config::{RoutingKey, Signal};
use crate::exporter::retry::{NewPart, QueuedPart};
use crate::exporter::{Backend, deliver, fanout};
use crate::grpc::{Code, Status, export_path};
use crate::receiver::budget::{ByteBudget, Held};
use crate::routing::{Ring, RouteKey};
use crate::telemetry;
use crate::wire::{GRPC_PREFIX, Part, Route, Splitter, walk};

/// The backends a core routes to: the ring and a connection pool indexed like `ring.backends()`.
pub struct Topology {
    pub ring: Ring,
    pub backends: Vec<Rc<Backend>>,
}

impl Topology {
    /// The backend for a key hash: its owner on the ring, or, when this core has ejected the
    /// owner and the exporter fails over, the next owner that is up (`Ring::lookup_up`). One
    /// flag read per key on the fast path.
    pub fn owner(&self, hash: u64) -> usize {
        let owner = self.ring.lookup(hash);
        let b = &self.backends[owner];
        if !b.is_ejected() || !b.settings().failover {
            return owner;
        }
        self.ring.lookup_up(hash, |i| !self.backends[i].is_ejected()).unwrap_or(owner)
    }
}

/// A rerouted part that could not be split again (no backends, or it no longer decodes).
pub fn drop_unroutable(part: &QueuedPart) {
    crate::exporter::retry::count_dropped(u64::from(part.items));
    log::error!("dropped a queued part ({} items): no backend to route it to", part.items);
}

/// A core's pipeline state for one signal.
pub struct Pipeline {
    pub signal: Signal,
    topology: RefCell<Option<Rc<Topology>>>,
    split: RefCell<(Splitter, RouteKey)>,
    /// Index of the exporter this pipeline feeds, for telemetry.
    exporter: usize,
}

impl Pipeline {
    pub fn new(signal: Signal, key: &RoutingKey, topology: Option<Rc<Topology>>) -> Self {
        Pipeline {
            signal,
            topology: RefCell::new(topology),
            split: RefCell::new((Splitter::new(), RouteKey::new(signal, key))),
            exporter: 0,
        }
    }

    /// Names the exporter (by index) this pipeline's counts are reported under.
    pub fn for_exporter(mut self, exporter: usize) -> Self {
        self.exporter = exporter;
        self
    }

    /// [`export`](Self::export), counting the request's items as accepted or refused by
    /// receiver `listener`.
    pub async fn export_from(&self, listener: usize, framed: Bytes, budget: &ByteBudget) -> Result<Bytes, Status> {
        let items = Cell::new(0);
        let result = self.export_counting(framed, &items, budget).await;
        telemetry::counters::with(|c| c.received(listener, self.signal, items.get(), result.is_ok()));
        result
    }

    /// Replaces the topology; requests already running keep the one they started with.
    pub fn set_topology(&self, topology: Option<Rc<Topology>>) {
        *self.topology.borrow_mut() = topology;
    }

    async fn export_counting(&self, framed: Bytes, items: &Cell<u64>, budget: &ByteBudget) -> Result<Bytes, Status> {
        let topology = self.topology.borrow().clone();
        let Some(topology) = topology else {
            items.set(request_items(self.signal, &framed));
            return Err(Status::new(Code::Unavailable, "no backends are configured or resolved"));
        };
        let mut parts = self.split(&framed, &topology)?;
        items.set(telemetry_items(self.signal, &mut parts));
        // The parts' copies are held until answered, like the request itself.
        let _held = charge_parts(budget, &framed, &parts)?;
        // The parts are copies (or share the request when it has one owner). Let the request
        // go now: it may be a slice of a reader's buffer, whose whole allocation it would pin
        // while backends answer.
        drop(framed);
        fanout::forward(&topology.backends, export_path(self.signal), parts, self.exporter).await
    }

    /// Routes an already acknowledged part again on the current topology (its backend was
    /// ejected or removed) and delivers the pieces; what cannot be delivered or queued is
    /// dropped, counted and logged (`deliver_acked`).
    pub async fn resubmit(&self, part: QueuedPart) {
        let topology = self.topology.borrow().clone();
        let parts = match &topology {
            Some(t) => self.split(&part.framed, t).unwrap_or_default(),
            None => Vec::new(),
        };
        let Some(topology) = topology.filter(|_| !parts.is_empty()) else {
            return drop_unroutable(&part);
        };
        for p in parts {
            let backend = topology.backends[p.backend].clone();
            let new = NewPart {
                framed: p.framed,
                path: part.path,
                signal: part.signal,
                items: p.items,
                exporter: part.exporter,
            };
            glommio::spawn_local(async move { deliver::deliver_acked(&backend, new).await }).detach();
        }
    }

    fn split(&self, framed: &Bytes, topology: &Topology) -> Result<Vec<Part>, Status> {
        let ring = &topology.ring;
        let owner = |hash: u64| topology.owner(hash);
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

/// Charges the bytes the split copied (nothing when the request passed through whole) to the
/// core's request budget: a request with huge resource or metric fields, cut N ways, holds up
/// to N × its size. Past the budget the request is refused before anything is sent.
fn charge_parts<'b>(budget: &'b ByteBudget, framed: &Bytes, parts: &[Part]) -> Result<Held<'b>, Status> {
    let copied: usize = parts.iter().filter(|p| p.framed.as_ptr() != framed.as_ptr()).map(|p| p.framed.len()).sum();
    let mut held = budget.hold();
    if budget.take(&mut held, copied) {
        return Ok(held);
    }
    let mib = budget.limit() >> 20;
    Err(Status::new(Code::ResourceExhausted, format!("this core holds {mib} MiB of requests in flight; retry later")))
}

/// The items telemetry counts, summed over `parts`: spans, log records, and (as the collector
/// counts them) metric data points. For metrics each part's `items` becomes its point count,
/// one more walk over the part's metrics (see docs/operations.md for its cost).
fn telemetry_items(signal: Signal, parts: &mut [Part]) -> u64 {
    if signal == Signal::Metrics {
        for p in parts.iter_mut() {
            let points = walk::count_points(&p.framed, GRPC_PREFIX..p.framed.len()).unwrap_or(0);
            p.items = u32::try_from(points).unwrap_or(u32::MAX);
        }
    }
    parts.iter().map(|p| u64::from(p.items)).sum()
}

/// The items of a whole request (0 if it does not decode), for a request refused unsplit.
fn request_items(signal: Signal, framed: &Bytes) -> u64 {
    let range = GRPC_PREFIX..framed.len();
    let count = if signal == Signal::Metrics { walk::count_points } else { walk::count_items };
    count(framed, range).unwrap_or(0)
}

#[cfg(test)]
mod charge_tests {
    use bytes::Bytes;

    use super::charge_parts;
    use crate::receiver::budget::ByteBudget;
    use crate::wire::Part;

    #[test]
    fn copied_parts_are_charged_and_a_passthrough_is_free() {
        let budget = ByteBudget::new(100);
        let request = Bytes::from(vec![0u8; 90]);
        let whole = [Part { backend: 0, framed: request.clone(), items: 1 }];
        let held = charge_parts(&budget, &request, &whole).unwrap();
        assert_eq!(budget.used(), 0, "the input's own bytes are already charged");
        drop(held);
        let cut = |n| Part { backend: 0, framed: Bytes::from(vec![0u8; n]), items: 1 };
        let held = charge_parts(&budget, &request, &[cut(40), cut(50)]).unwrap();
        assert_eq!(budget.used(), 90);
        let refused = charge_parts(&budget, &request, &[cut(20)]).unwrap_err();
        assert_eq!(refused.code, crate::grpc::Code::ResourceExhausted);
        drop(held);
        assert_eq!(budget.used(), 0, "released when answered");
    }
}
