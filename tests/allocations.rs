//! The splitter allocates per part, never per span or per resource: a counting global
//! allocator measures one warm split of requests of growing size.

#![allow(clippy::disallowed_methods)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use otlp_gateway::config::{RoutingKey, Signal};
use otlp_gateway::routing::{Ring, RouteKey};
use otlp_gateway::tools::spangen::{self, grpc_frame};
use otlp_gateway::wire::{Part, Route, Splitter};
use prost::Message;

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations of one split of `framed`, after a first split has sized the splitter's buffers.
fn allocations_of_a_warm_split(framed: &Bytes, key: RoutingKey) -> (u64, usize) {
    let ring = Ring::new(&["10.0.0.1:4317", "10.0.0.2:4317", "10.0.0.3:4317"]).expect("ring");
    let owner = |h: u64| ring.lookup(h);
    let route = Route { owner: &owner, backends: ring.len() };
    let mut key = RouteKey::new(Signal::Traces, &key);
    let (mut splitter, mut parts): (Splitter, Vec<Part>) = (Splitter::new(), Vec::with_capacity(8));
    splitter.split(framed, &mut key, &route, &mut parts).expect("split");
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    splitter.split(framed, &mut key, &route, &mut parts).expect("split");
    (ALLOCATIONS.load(Ordering::Relaxed) - before, parts.len())
}

fn request(spans: usize, services: usize) -> Bytes {
    let mut req = spangen::request("svc-0", spans / services, 1, 7);
    for s in 1..services {
        req.resource_spans.extend(spangen::request(&format!("svc-{s}"), spans / services, 1, s as u64).resource_spans);
    }
    grpc_frame(&req.encode_to_vec())
}

#[test]
fn a_split_allocates_per_part_not_per_span() {
    for key in [RoutingKey::TraceId, RoutingKey::Service] {
        let counts: Vec<(u64, usize)> = [(100, 1), (1000, 1), (1000, 10)]
            .iter()
            .map(|&(n, s)| allocations_of_a_warm_split(&request(n, s), key.clone()))
            .collect();
        eprintln!("{key:?}: (allocations, parts) for 100 spans, 1000 spans, 1000 spans in 10 resources: {counts:?}");
        for (allocs, parts) in &counts {
            assert!(*allocs <= *parts as u64 + 1, "{key:?}: {allocs} allocations for {parts} parts");
        }
    }
}
