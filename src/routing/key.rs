//! Routing keys: which bytes of the data decide its backend, for each signal and each of the
//! collector's `routing_key` values. Keys are hashed (xxh3) as they are found; the ring maps
//! the hash to a backend.
//!
//! Composite keys are encoded before hashing so that different values never give the same
//! bytes: every part is length-prefixed (`a=foo,b=bar` and `a=foob,b=ar` differ), a missing
//! attribute is a distinct marker, and attribute values are their raw `AnyValue` encoding, so
//! the string `"1"` and the integer `1` differ.
//!
//! Fallback, so that nothing is dropped for a missing key: an item without a valid trace id
//! (absent, not 16 bytes, or all zero) routes by its resource's `service.name`; a resource
//! without `service.name` routes by its identity (all its attributes, in key order). Empty
//! scopes and resources travel with their resource's key as well.

use std::ops::Range;

use xxhash_rust::xxh3::xxh3_64;

use crate::config::{RoutingKey, Signal};
use crate::wire::keys::{collect_attributes, find_attributes, resource_service_name};
use crate::wire::pb::last_len_field;
use crate::wire::{KeyLevel, Keyer, MetricHead, WireError};

/// A routing key compiled for one signal, with the scratch space it hashes in. One per
/// pipeline per core; reused across requests.
#[derive(Debug, Clone)]
pub struct RouteKey {
    signal: Signal,
    key: RoutingKey,
    /// `routing_attributes`, as bytes.
    names: Vec<Box<[u8]>>,
    level: KeyLevel,
    ctx: ResourceCtx,
    /// Stream hash prefix of the current scope, then of the current metric.
    scope_hash: u64,
    metric_hash: u64,
    point_attrs: u32,
    found: Vec<Option<Range<usize>>>,
    kvs: Vec<(Range<usize>, Range<usize>)>,
    scratch: Vec<u8>,
}

/// What is known about the current resource; computed on first use.
#[derive(Debug, Clone, Default)]
struct ResourceCtx {
    range: Range<usize>,
    hash: Option<u64>,
    ident: Option<u64>,
    /// Values of the routing attributes on the resource.
    attrs: Option<Vec<Option<Range<usize>>>>,
}

impl RouteKey {
    /// `key` must be valid for `signal` (the config checks this).
    pub fn new(signal: Signal, key: &RoutingKey) -> Self {
        let names = match key {
            RoutingKey::Attributes(names) => names.iter().map(|n| n.as_bytes().into()).collect(),
            _ => Vec::new(),
        };
        RouteKey {
            signal,
            key: key.clone(),
            level: level(signal, key),
            found: vec![None; names.len()],
            names,
            ctx: ResourceCtx::default(),
            scope_hash: 0,
            metric_hash: 0,
            point_attrs: 7,
            kvs: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// The resource's identity: its attributes, sorted by key.
    fn ident(&mut self, buf: &[u8]) -> Result<u64, WireError> {
        if let Some(h) = self.ctx.ident {
            return Ok(h);
        }
        let resource = last_len_field(buf, self.ctx.range.clone(), 1)?;
        let h = canonical_hash(buf, resource, 1, 0, &mut self.kvs, &mut self.scratch)?;
        self.ctx.ident = Some(h);
        Ok(h)
    }

    fn service_or_ident(&mut self, buf: &[u8]) -> Result<u64, WireError> {
        let name = resource_service_name(buf, self.ctx.range.clone())?;
        if name.is_empty() { self.ident(buf) } else { Ok(xxh3_64(&buf[name])) }
    }

    fn trace_id(&mut self, buf: &[u8], item: Range<usize>) -> Result<u64, WireError> {
        let field = if self.signal == Signal::Logs { 9 } else { 1 };
        let id = &buf[last_len_field(buf, item, field)?];
        if id.len() == 16 && id.iter().any(|&b| b != 0) { Ok(xxh3_64(id)) } else { self.resource_hash(buf) }
    }

    /// The `attributes` key of an item or point whose attributes are field `field` of `msg`.
    fn attributes(&mut self, buf: &[u8], msg: Range<usize>, field: u32) -> Result<u64, WireError> {
        self.found.iter_mut().for_each(|f| *f = None);
        find_attributes(buf, msg, field, &self.names, &mut self.found)?;
        if self.found.iter().any(Option::is_none) {
            self.resource_attributes(buf)?;
        }
        self.scratch.clear();
        let on_resource = self.ctx.attrs.as_deref().unwrap_or_default();
        for (i, value) in self.found.iter().enumerate() {
            match value.as_ref().or(on_resource.get(i).and_then(Option::as_ref)) {
                Some(v) => {
                    self.scratch.push(1);
                    put_bytes(&mut self.scratch, &buf[v.clone()]);
                }
                None => self.scratch.push(0),
            }
        }
        Ok(xxh3_64(&self.scratch))
    }

    fn resource_attributes(&mut self, buf: &[u8]) -> Result<(), WireError> {
        if self.ctx.attrs.is_some() {
            return Ok(());
        }
        let mut attrs = vec![None; self.names.len()];
        let resource = last_len_field(buf, self.ctx.range.clone(), 1)?;
        find_attributes(buf, resource, 1, &self.names, &mut attrs)?;
        self.ctx.attrs = Some(attrs);
        Ok(())
    }
}

impl Keyer for RouteKey {
    fn level(&self) -> KeyLevel {
        self.level
    }

    fn resource(&mut self, _buf: &[u8], resource: Range<usize>) {
        self.ctx = ResourceCtx { range: resource, ..Default::default() };
    }

    fn resource_hash(&mut self, buf: &[u8]) -> Result<u64, WireError> {
        if let Some(h) = self.ctx.hash {
            return Ok(h);
        }
        let h = match self.key {
            RoutingKey::Resource => self.ident(buf)?,
            _ => self.service_or_ident(buf)?,
        };
        self.ctx.hash = Some(h);
        Ok(h)
    }

    fn item(&mut self, buf: &[u8], item: Range<usize>) -> Result<u64, WireError> {
        match self.key {
            RoutingKey::TraceId => self.trace_id(buf, item),
            RoutingKey::Metric => Ok(xxh3_64(&buf[last_len_field(buf, item, 1)?])),
            RoutingKey::Attributes(_) => {
                let field = if self.signal == Signal::Logs { 6 } else { 9 };
                self.attributes(buf, item, field)
            }
            _ => self.resource_hash(buf),
        }
    }

    fn scope(&mut self, buf: &[u8], scope: Range<usize>) -> Result<(), WireError> {
        // Only stream identities include the scope; point `attributes` keys do not.
        if !matches!(self.key, RoutingKey::StreamId) {
            return Ok(());
        }
        let ident = self.ident(buf)?;
        let inst = last_len_field(buf, scope, 1)?;
        self.scratch.clear();
        self.scratch.extend_from_slice(&ident.to_le_bytes());
        self.scratch.extend_from_slice(&buf[inst]);
        self.scope_hash = xxh3_64(&self.scratch);
        Ok(())
    }

    fn metric(&mut self, buf: &[u8], m: &MetricHead) -> Result<u64, WireError> {
        self.point_attrs = m.point_attributes_field();
        if !matches!(self.key, RoutingKey::StreamId) {
            return self.resource_hash(buf);
        }
        let s = &mut self.scratch;
        s.clear();
        s.extend_from_slice(&self.scope_hash.to_le_bytes());
        put_bytes(s, &buf[m.name.clone()]);
        put_bytes(s, &buf[m.unit.clone()]);
        s.push(m.data as u8);
        s.extend_from_slice(&m.temporality.to_le_bytes());
        s.push(u8::from(m.monotonic));
        self.metric_hash = xxh3_64(s);
        Ok(self.metric_hash)
    }

    fn point(&mut self, buf: &[u8], point: Range<usize>) -> Result<u64, WireError> {
        match self.key {
            RoutingKey::StreamId => {
                canonical_hash(buf, point, self.point_attrs, self.metric_hash, &mut self.kvs, &mut self.scratch)
            }
            _ => self.attributes(buf, point, self.point_attrs),
        }
    }
}

/// Where a key is found for `signal`.
fn level(signal: Signal, key: &RoutingKey) -> KeyLevel {
    match key {
        RoutingKey::Service | RoutingKey::Resource => KeyLevel::Resource,
        RoutingKey::StreamId => KeyLevel::Point,
        RoutingKey::Attributes(_) if signal == Signal::Metrics => KeyLevel::Point,
        RoutingKey::TraceId | RoutingKey::Metric | RoutingKey::Attributes(_) => KeyLevel::Item,
    }
}

/// Hash of `prefix` and the attributes (field `field` of `buf[msg]`) sorted by key: the same
/// set of attributes in any order gives the same hash.
fn canonical_hash(
    buf: &[u8],
    msg: Range<usize>,
    field: u32,
    prefix: u64,
    kvs: &mut Vec<(Range<usize>, Range<usize>)>,
    scratch: &mut Vec<u8>,
) -> Result<u64, WireError> {
    kvs.clear();
    collect_attributes(buf, msg, field, kvs)?;
    if !kvs.is_sorted_by(|a, b| buf[a.0.clone()] <= buf[b.0.clone()]) {
        kvs.sort_by(|a, b| buf[a.0.clone()].cmp(&buf[b.0.clone()]));
    }
    scratch.clear();
    scratch.extend_from_slice(&prefix.to_le_bytes());
    for (k, v) in kvs.iter() {
        put_bytes(scratch, &buf[k.clone()]);
        put_bytes(scratch, &buf[v.clone()]);
    }
    Ok(xxh3_64(scratch))
}

/// Appends `bytes` with a length prefix, so that concatenations stay unambiguous.
fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}
