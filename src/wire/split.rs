//! The splitter: one OTLP export request in, one request per backend out.
//!
//! OTLP requests of every signal share one shape: `Export*Request.resource_*s = 1` →
//! `Resource*.scope_*s = 2` → `Scope*.<items> = 2`. The splitter walks that shape once, asks a
//! key function which backend owns each item, then writes each backend's request by copying
//! byte ranges verbatim (resources, scopes, items, unknown fields) and recomputing only the
//! length prefixes of the resource and scope wrappers. Nothing below an item is decoded except
//! what the key needs.
//!
//! Scratch vectors live in the `Splitter` and are reused, so a warm splitter does not allocate
//! per item; it allocates one output buffer per backend per request.

use std::ops::Range;

use bytes::Bytes;

use super::GRPC_PREFIX;
use super::pb::{Reader, WireError, len_header_len, put_len_header};
use super::points::MetricHead;

/// A backend's share of one request: a complete gRPC message (5-byte prefix included).
#[derive(Debug, Clone)]
pub struct Part {
    pub backend: usize,
    pub framed: Bytes,
    /// Items (spans, log records, metrics) in this part. The pipeline replaces a metrics
    /// part's count with its data points, which telemetry counts as the collector does.
    pub items: u32,
}

/// How deep the walker goes to find keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyLevel {
    /// Every item of a resource routes by the resource's key.
    Resource,
    /// Each item (span, log record, metric) routes by its own key.
    Item,
    /// Each metric data point routes by its own key; a metric whose points have several
    /// owners is cut into one metric per owner (metrics only).
    Point,
}

/// What the splitter asks of a routing key. All ranges index the request buffer. The walker
/// calls `resource` before anything inside that resource, and `scope`/`metric` before the
/// points inside them, so a keyer can keep per-resource context between calls.
pub trait Keyer {
    fn level(&self) -> KeyLevel;
    /// Starts a resource (`Resource*` message payload).
    fn resource(&mut self, buf: &[u8], resource: Range<usize>);
    /// The current resource's key hash: the owner of `Resource`-level keys, and of scopes,
    /// items and points that have no key of their own.
    fn resource_hash(&mut self, buf: &[u8]) -> Result<u64, WireError>;
    /// An item's key hash (`Item` level).
    fn item(&mut self, buf: &[u8], item: Range<usize>) -> Result<u64, WireError>;
    /// Starts a scope (`Scope*` message payload; `Point` level).
    fn scope(&mut self, buf: &[u8], scope: Range<usize>) -> Result<(), WireError>;
    /// Starts a metric (`Point` level); returns the hash that owns it when it has no points.
    fn metric(&mut self, buf: &[u8], metric: &MetricHead) -> Result<u64, WireError>;
    /// A data point's key hash (`Point` level).
    fn point(&mut self, buf: &[u8], point: Range<usize>) -> Result<u64, WireError>;
}

#[derive(Debug, Clone)]
struct Scope {
    resource: u32,
    /// Indexes into `Splitter::scope_heads`.
    heads: Range<u32>,
    head_len: u32,
    /// `false` for the stand-in scope of a resource that has none: nothing is written for it.
    wrapper: bool,
}

#[derive(Debug, Clone)]
pub(super) struct Item {
    pub scope: u32,
    /// The item's whole field, in the request or (when `synth`) in `Splitter::synth`.
    pub bytes: Range<u32>,
    pub backend: u32,
    /// 0 for the stand-in item that carries an empty scope or resource to its backend.
    pub count: u32,
    /// A metric cut down to one owner's points, written by the splitter.
    pub synth: bool,
}

/// `Item::backend` of an item whose owner is looked up after the walk.
const PENDING: u32 = u32::MAX;

/// Reusable splitting state; one per core.
#[derive(Debug, Default)]
pub struct Splitter {
    extras: Vec<Range<u32>>,
    /// Per resource: its indexes into `res_heads`, and their byte length.
    resources: Vec<(Range<u32>, u32)>,
    /// Byte ranges of the fields of resources (and of scopes) other than their children.
    res_heads: Vec<Range<u32>>,
    scope_heads: Vec<Range<u32>>,
    scopes: Vec<Scope>,
    pub(super) items: Vec<Item>,
    order: Vec<u32>,
    /// Key hashes of items whose owner is looked up after the walk (`backend == PENDING`).
    hashes: Vec<u64>,
    counts: Vec<u32>,
    next: Vec<u32>,
    sizes: Vec<u32>,
    /// Metrics cut per owner (`KeyLevel::Point`): written here, copied like input ranges.
    pub(super) synth: Vec<u8>,
    pub(super) metric_heads: Vec<Range<u32>>,
    pub(super) data_heads: Vec<Range<u32>>,
    /// The points of the metric being routed point by point.
    pub(super) points: Vec<super::points::Point>,
}

/// Where key hashes go: the ring lookup and the number of backends.
pub struct Route<'r> {
    /// Backend index for a key hash. Must be `< backends`.
    pub owner: &'r dyn Fn(u64) -> usize,
    pub backends: usize,
}

impl Route<'_> {
    #[inline]
    pub(super) fn owner_of(&self, hash: u64) -> u32 {
        (self.owner)(hash).min(self.backends.saturating_sub(1)) as u32
    }
}

impl Splitter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Splits a framed gRPC message (`framed[5..]` is the request). When every item has one
    /// owner the input is passed through without a copy.
    pub fn split<K: Keyer>(
        &mut self,
        framed: &Bytes,
        key: &mut K,
        route: &Route<'_>,
        out: &mut Vec<Part>,
    ) -> Result<(), WireError> {
        out.clear();
        if framed.len() > u32::MAX as usize {
            return Err(WireError::TooLarge(framed.len()));
        }
        self.plan(framed, key, route)?;
        self.resolve_owners(route);
        if let Some(only) = self.single_owner() {
            let items = self.items.iter().map(|i| i.count).sum();
            out.push(Part { backend: only as usize, framed: framed.clone(), items });
            return Ok(());
        }
        self.group_by_backend(route.backends);
        self.write_parts(framed, out);
        Ok(())
    }

    // ---- walking -------------------------------------------------------------------------

    fn plan<K: Keyer>(&mut self, buf: &[u8], key: &mut K, route: &Route<'_>) -> Result<(), WireError> {
        self.clear();
        let mut top = Reader::new(buf, GRPC_PREFIX..buf.len());
        while let Some(f) = top.next_field()? {
            if f.number == 1 {
                self.walk_resource(buf, f.len_payload()?, key, route)?;
            } else {
                self.extras.push(r32(f.whole));
            }
        }
        Ok(())
    }

    fn clear(&mut self) {
        self.extras.clear();
        self.resources.clear();
        self.res_heads.clear();
        self.scope_heads.clear();
        self.scopes.clear();
        self.items.clear();
        self.hashes.clear();
        self.synth.clear();
    }

    fn walk_resource<K: Keyer>(
        &mut self,
        buf: &[u8],
        range: Range<usize>,
        key: &mut K,
        route: &Route<'_>,
    ) -> Result<(), WireError> {
        let res = self.resources.len() as u32;
        key.resource(buf, range.clone());
        let owner = match key.level() {
            KeyLevel::Resource => Some(route.owner_of(key.resource_hash(buf)?)),
            KeyLevel::Item | KeyLevel::Point => None,
        };
        let (first_head, first_scope) = (self.res_heads.len(), self.scopes.len());
        self.resources.push((0..0, 0));
        let mut r = Reader::new(buf, range);
        while let Some(f) = r.next_field()? {
            if f.number == 2 {
                self.walk_scope(buf, res, f.len_payload()?, owner, key, route)?;
            } else {
                self.res_heads.push(r32(f.whole));
            }
        }
        let heads = first_head as u32..self.res_heads.len() as u32;
        self.resources[res as usize] = (heads.clone(), span_len(&self.res_heads[first_head..]));
        if self.scopes.len() == first_scope {
            let owner = self.owner_or_resource(owner, buf, key, route)?;
            self.stand_in_scope(res, owner);
        }
        Ok(())
    }

    fn walk_scope<K: Keyer>(
        &mut self,
        buf: &[u8],
        resource: u32,
        range: Range<usize>,
        owner: Option<u32>,
        key: &mut K,
        route: &Route<'_>,
    ) -> Result<(), WireError> {
        let scope = self.scopes.len() as u32;
        let (first_head, first_item) = (self.scope_heads.len(), self.items.len());
        if key.level() == KeyLevel::Point {
            key.scope(buf, range.clone())?;
        }
        let mut r = Reader::new(buf, range);
        while let Some(f) = r.next_field()? {
            if f.number != 2 {
                self.scope_heads.push(r32(f.whole));
                continue;
            }
            match (owner, key.level()) {
                (Some(backend), _) => self.push_item(scope, r32(f.whole), backend),
                (None, KeyLevel::Point) => self.walk_metric(buf, scope, &f, key, route)?,
                (None, _) => {
                    let backend = self.defer_owner(buf, f.len_payload()?, key)?;
                    self.push_item(scope, r32(f.whole), backend);
                }
            }
        }
        let heads = first_head as u32..self.scope_heads.len() as u32;
        let head_len = span_len(&self.scope_heads[first_head..]);
        self.scopes.push(Scope { resource, heads, head_len, wrapper: true });
        if self.items.len() == first_item {
            let backend = self.owner_or_resource(owner, buf, key, route)?;
            self.items.push(Item { scope, bytes: 0..0, backend, count: 0, synth: false });
        }
        Ok(())
    }

    pub(super) fn push_item(&mut self, scope: u32, bytes: Range<u32>, backend: u32) {
        self.items.push(Item { scope, bytes, backend, count: 1, synth: false });
    }

    /// A resource with no scopes still travels: a stand-in scope and item carry it.
    fn stand_in_scope(&mut self, resource: u32, backend: u32) {
        let scope = self.scopes.len() as u32;
        self.scopes.push(Scope { resource, heads: 0..0, head_len: 0, wrapper: false });
        self.items.push(Item { scope, bytes: 0..0, backend, count: 0, synth: false });
    }

    /// The resource's owner when known, or the owner of the resource's own key.
    fn owner_or_resource<K: Keyer>(
        &self,
        owner: Option<u32>,
        buf: &[u8],
        key: &mut K,
        route: &Route<'_>,
    ) -> Result<u32, WireError> {
        match owner {
            Some(b) => Ok(b),
            None => Ok(route.owner_of(key.resource_hash(buf)?)),
        }
    }

    /// Hashes an item's key now and looks its owner up after the walk: the lookups then run
    /// back to back, so their cache misses on the ring table overlap instead of queueing.
    fn defer_owner<K: Keyer>(&mut self, buf: &[u8], range: Range<usize>, key: &mut K) -> Result<u32, WireError> {
        self.hashes.push(key.item(buf, range)?);
        Ok(PENDING)
    }

    fn resolve_owners(&mut self, route: &Route<'_>) {
        let mut hashes = self.hashes.iter();
        for it in self.items.iter_mut().filter(|it| it.backend == PENDING) {
            if let Some(&h) = hashes.next() {
                it.backend = route.owner_of(h);
            }
        }
    }

    fn single_owner(&self) -> Option<u32> {
        let first = self.items.first().map_or(0, |i| i.backend);
        self.items.iter().all(|i| i.backend == first).then_some(first)
    }

    // ---- grouping ------------------------------------------------------------------------

    /// Stable counting sort of item indexes by backend: each backend's items keep their order.
    fn group_by_backend(&mut self, backends: usize) {
        self.counts.clear();
        self.counts.resize(backends + 1, 0);
        for it in &self.items {
            self.counts[it.backend as usize + 1] += 1;
        }
        for b in 1..self.counts.len() {
            self.counts[b] += self.counts[b - 1];
        }
        self.order.clear();
        self.order.resize(self.items.len(), 0);
        self.next.clear();
        self.next.extend_from_slice(&self.counts);
        for (i, it) in self.items.iter().enumerate() {
            let slot = &mut self.next[it.backend as usize];
            self.order[*slot as usize] = i as u32;
            *slot += 1;
        }
    }

    // ---- writing -------------------------------------------------------------------------

    fn write_parts(&mut self, buf: &[u8], out: &mut Vec<Part>) {
        for b in 0..self.counts.len() - 1 {
            let (lo, hi) = (self.counts[b] as usize, self.counts[b + 1] as usize);
            if lo < hi {
                let framed = self.write_part(buf, lo..hi);
                let items = self.order[lo..hi].iter().map(|&i| self.items[i as usize].count).sum();
                out.push(Part { backend: b, framed, items });
            }
        }
    }

    fn write_part(&mut self, buf: &[u8], slice: Range<usize>) -> Bytes {
        self.sizes.clear();
        let body = self.measure(slice.clone()) + span_len(&self.extras) as usize;
        let mut out = Vec::with_capacity(GRPC_PREFIX + body);
        out.push(0);
        out.extend_from_slice(&(body as u32).to_be_bytes());
        self.emit(buf, slice, &mut out);
        for e in &self.extras {
            out.extend_from_slice(&buf[e.start as usize..e.end as usize]);
        }
        debug_assert_eq!(out.len(), GRPC_PREFIX + body);
        Bytes::from(out)
    }

    /// Pass 1: the length of every resource and scope wrapper of this part, in write order.
    fn measure(&mut self, slice: Range<usize>) -> usize {
        let mut total = 0;
        let mut i = slice.start;
        while i < slice.end {
            let res = self.scope_of(i).resource;
            let res_slot = self.reserve_size();
            let mut res_len = self.resources[res as usize].1 as usize;
            while i < slice.end && self.scope_of(i).resource == res {
                let (next, scope_len) = self.measure_scope(i, slice.end);
                res_len += scope_len;
                i = next;
            }
            self.sizes[res_slot] = res_len as u32;
            total += len_header_len(res_len) + res_len;
        }
        total
    }

    /// Measures the run of items sharing item `i`'s scope; returns where the run ends and the
    /// bytes the scope takes inside its resource.
    fn measure_scope(&mut self, mut i: usize, end: usize) -> (usize, usize) {
        let scope_idx = self.item_at(i).scope;
        let scope = &self.scopes[scope_idx as usize];
        let (wrapper, mut len) = (scope.wrapper, scope.head_len as usize);
        let slot = self.reserve_size();
        while i < end && self.item_at(i).scope == scope_idx {
            let b = &self.item_at(i).bytes;
            len += (b.end - b.start) as usize;
            i += 1;
        }
        self.sizes[slot] = len as u32;
        (i, if wrapper { len_header_len(len) + len } else { len })
    }

    /// Pass 2: writes wrappers with the lengths from pass 1, and copies every range verbatim.
    fn emit(&self, buf: &[u8], slice: Range<usize>, out: &mut Vec<u8>) {
        let (mut i, mut k) = (slice.start, 0);
        while i < slice.end {
            let res = self.scope_of(i).resource;
            put_len_header(out, 1, self.sizes[k] as usize);
            k += 1;
            copy_ranges(buf, &self.res_heads, self.resources[res as usize].0.clone(), out);
            while i < slice.end && self.scope_of(i).resource == res {
                let scope_idx = self.item_at(i).scope;
                let scope = &self.scopes[scope_idx as usize];
                if scope.wrapper {
                    put_len_header(out, 2, self.sizes[k] as usize);
                    copy_ranges(buf, &self.scope_heads, scope.heads.clone(), out);
                }
                k += 1;
                while i < slice.end && self.item_at(i).scope == scope_idx {
                    let it = self.item_at(i);
                    let src = if it.synth { &self.synth[..] } else { buf };
                    out.extend_from_slice(&src[it.bytes.start as usize..it.bytes.end as usize]);
                    i += 1;
                }
            }
        }
    }

    fn reserve_size(&mut self) -> usize {
        self.sizes.push(0);
        self.sizes.len() - 1
    }

    #[inline]
    fn item_at(&self, i: usize) -> &Item {
        &self.items[self.order[i] as usize]
    }

    #[inline]
    fn scope_of(&self, i: usize) -> &Scope {
        &self.scopes[self.item_at(i).scope as usize]
    }
}

pub(super) fn copy_ranges(buf: &[u8], pool: &[Range<u32>], which: Range<u32>, out: &mut Vec<u8>) {
    for r in &pool[which.start as usize..which.end as usize] {
        out.extend_from_slice(&buf[r.start as usize..r.end as usize]);
    }
}

pub(super) fn span_len(ranges: &[Range<u32>]) -> u32 {
    ranges.iter().map(|r| r.end - r.start).sum()
}

#[inline]
pub(super) fn r32(r: Range<usize>) -> Range<u32> {
    r.start as u32..r.end as u32
}
