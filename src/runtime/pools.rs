//! A core's routing state: one backend pool per exporter, the pipelines that use them, and how
//! both are replaced when the backend set changes or the config is reloaded. Connections to
//! backends that stay (same name, address and settings) are kept across every change.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::{Rc, Weak};

use super::core::{BackendSet, CoreSpec, ExporterSpec, PipelineSpec};
use crate::config::Signal;
use crate::exporter::backend::Rerouter;
use crate::exporter::retry::QueuedPart;
use crate::exporter::{Backend, BackendSettings};
use crate::receiver::pipeline::drop_unroutable;
use crate::receiver::{Pipeline, Topology};

pub(super) struct Routing {
    pub spec: CoreSpec,
    pools: Vec<Option<Rc<Topology>>>,
    pub pipelines: Vec<Rc<Pipeline>>,
    /// The current pipelines by (exporter, signal), shared by every routing this core has
    /// had, so a backend's rerouter always reaches the pipelines in force.
    registry: Registry,
}

type Registry = Rc<RefCell<Vec<(usize, Signal, Weak<Pipeline>)>>>;

/// Routes a queued part again through the current pipeline of its exporter and signal.
fn rerouter(registry: &Registry) -> Rerouter {
    let registry = registry.clone();
    Rc::new(move |part: QueuedPart| {
        let pipelines = registry.borrow();
        let found = pipelines.iter().find(|(e, s, _)| *e == part.exporter && *s == part.signal);
        match found.and_then(|(_, _, p)| p.upgrade()) {
            Some(p) => drop(glommio::spawn_local(async move { p.resubmit(part).await }).detach()),
            None => drop_unroutable(&part),
        }
    })
}

impl Routing {
    pub fn new(spec: CoreSpec) -> Self {
        Routing::build(spec, None)
    }

    /// The routing for `spec`, reusing what `old` has: connections to backends that stay, and
    /// the current pool of an exporter whose backends come from DNS (until the resolver speaks).
    pub fn build(spec: CoreSpec, old: Option<&Routing>) -> Self {
        let pool = |e: &ExporterSpec| match &e.backends {
            Some(set) => Some(Rc::new(build_pool(set, &e.settings, old))),
            // DNS: the current pool serves until the new resolver answers.
            None if e.used => old.and_then(|o| o.pool_of(e)),
            None => None,
        };
        let pools: Vec<Option<Rc<Topology>>> = spec.exporters.iter().map(pool).collect();
        let of = |i: usize| pools.get(i).cloned().flatten();
        let pipeline =
            |p: &PipelineSpec| Rc::new(Pipeline::new(p.signal, &p.key, of(p.exporter)).for_exporter(p.exporter));
        let pipelines: Vec<Rc<Pipeline>> = spec.pipelines.iter().map(pipeline).collect();
        let registry = old.map(|o| o.registry.clone()).unwrap_or_default();
        let entry = |(p, s): (&Rc<Pipeline>, &PipelineSpec)| (s.exporter, s.signal, Rc::downgrade(p));
        *registry.borrow_mut() = pipelines.iter().zip(&spec.pipelines).map(entry).collect();
        let routing = Routing { spec, pools, pipelines, registry };
        routing.adopt(old.map(|o| o.pools.as_slice()).unwrap_or_default());
        routing
    }

    /// Gives every backend the rerouter, and routes again what backends no longer in any
    /// pool (removed by DNS or reload) had queued: it was acknowledged, it must not be lost.
    fn adopt(&self, old_pools: &[Option<Rc<Topology>>]) {
        let rerouter = rerouter(&self.registry);
        let current = || self.pools.iter().flatten().flat_map(|t| t.backends.iter());
        current().for_each(|b| b.set_rerouter(rerouter.clone()));
        for b in old_pools.iter().flatten().flat_map(|t| t.backends.iter()) {
            if !current().any(|c| Rc::ptr_eq(b, c)) {
                b.set_rerouter(rerouter.clone());
                b.reroute_queue();
            }
        }
    }

    /// Each exporter's ring, for a telemetry snapshot.
    pub fn rings(&self) -> Vec<Option<crate::telemetry::RingView>> {
        self.pools.iter().map(|p| p.as_ref().map(|t| crate::telemetry::RingView::of(&t.ring))).collect()
    }

    /// Swaps in a new backend set for `exporter`; requests in flight keep the old one.
    pub fn set_backends(&mut self, exporter: usize, set: &BackendSet) {
        let Some(e) = self.spec.exporters.get(exporter) else { return };
        let topology = Some(Rc::new(build_pool(set, &e.settings, Some(self))));
        crate::telemetry::counters::with(|c| c.retain_backends(exporter, set.ring.backends()));
        let old = self.pools.clone();
        if let Some(slot) = self.pools.get_mut(exporter) {
            *slot = topology.clone();
        }
        for (p, spec) in self.pipelines.iter().zip(&self.spec.pipelines) {
            if spec.exporter == exporter {
                p.set_topology(topology.clone());
            }
        }
        self.adopt(&old);
    }

    /// Shutdown: retries stop waiting out long backoffs (`retry::set_hurry`).
    pub fn hurry_retries(&self) {
        crate::exporter::retry::set_hurry();
        self.pools.iter().flatten().flat_map(|t| t.backends.iter()).for_each(|b| b.hurry_retries());
    }

    /// The pool of the exporter with `e`'s id, if this routing has one.
    fn pool_of(&self, e: &ExporterSpec) -> Option<Rc<Topology>> {
        let i = self.spec.exporters.iter().position(|x| x.id == e.id)?;
        self.pools.get(i).cloned().flatten()
    }

    fn backend(&self, name: &str, addr: SocketAddr, settings: &BackendSettings) -> Option<Rc<Backend>> {
        let all = self.pools.iter().flatten().flat_map(|t| t.backends.iter());
        all.clone().find(|b| b.name == name && b.addr() == addr && b.settings() == settings).cloned()
    }
}

/// A pool for `set`, taking each backend's connection from `old` when it has one.
fn build_pool(set: &BackendSet, settings: &BackendSettings, old: Option<&Routing>) -> Topology {
    let backend = |(name, &addr): (&String, &SocketAddr)| {
        let kept = old.and_then(|o| o.backend(name, addr, settings));
        kept.unwrap_or_else(|| Backend::new(name.clone(), addr, settings.clone()))
    };
    let backends = set.ring.backends().iter().zip(&set.addrs).map(backend).collect();
    Topology { ring: set.ring.clone(), backends }
}
