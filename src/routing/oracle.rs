//! The key rules stated again over decoded (prost) messages, independently of the wire
//! walker: tests check that both agree. Test-only.

use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{Metric, metric};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use xxhash_rust::xxh3::xxh3_64;

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

fn value_bytes(v: &Option<AnyValue>) -> Vec<u8> {
    v.as_ref().map(|v| v.encode_to_vec()).unwrap_or_default()
}

/// Hash of `prefix` and `attrs` sorted by key.
pub fn canonical(prefix: u64, attrs: &[KeyValue]) -> u64 {
    let mut sorted: Vec<&KeyValue> = attrs.iter().collect();
    sorted.sort_by(|a, b| a.key.as_bytes().cmp(b.key.as_bytes()));
    let mut out = prefix.to_le_bytes().to_vec();
    for kv in sorted {
        put_bytes(&mut out, kv.key.as_bytes());
        put_bytes(&mut out, &value_bytes(&kv.value));
    }
    xxh3_64(&out)
}

fn attrs(r: &Option<Resource>) -> &[KeyValue] {
    r.as_ref().map(|r| r.attributes.as_slice()).unwrap_or_default()
}

pub fn identity(r: &Option<Resource>) -> u64 {
    canonical(0, attrs(r))
}

/// `service.name` as a non-empty string, if the first attribute of that key is one.
pub fn service_name(r: &Option<Resource>) -> Option<String> {
    let kv = attrs(r).iter().find(|kv| kv.key == "service.name")?;
    match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// The `service` key, with its fallback to the resource's identity.
pub fn service(r: &Option<Resource>) -> u64 {
    service_name(r).map_or_else(|| identity(r), |s| xxh3_64(s.as_bytes()))
}

/// The `traceID` key of an item with trace id `id` under resource `r`.
pub fn trace_id(id: &[u8], r: &Option<Resource>) -> u64 {
    if id.len() == 16 && id.iter().any(|&b| b != 0) { xxh3_64(id) } else { service(r) }
}

/// The `attributes` key: each name looked up on the item, then on the resource.
pub fn attributes(names: &[&str], item: &[KeyValue], r: &Option<Resource>) -> u64 {
    let mut out = Vec::new();
    for name in names {
        let find = |list: &[KeyValue]| list.iter().find(|kv| kv.key == *name).map(|kv| value_bytes(&kv.value));
        match find(item).or_else(|| find(attrs(r))) {
            Some(v) => {
                out.push(1);
                put_bytes(&mut out, &v);
            }
            None => out.push(0),
        }
    }
    xxh3_64(&out)
}

/// The `streamID` key prefix of a metric (everything but the point's attributes).
pub fn metric_stream(r: &Option<Resource>, scope: &Option<InstrumentationScope>, m: &Metric) -> u64 {
    let mut s = identity(r).to_le_bytes().to_vec();
    s.extend_from_slice(&scope.as_ref().map(|s| s.encode_to_vec()).unwrap_or_default());
    let scope_hash = xxh3_64(&s);
    let (data, temporality, monotonic) = match &m.data {
        Some(metric::Data::Gauge(_)) => (5, 0, false),
        Some(metric::Data::Sum(s)) => (7, s.aggregation_temporality as u64, s.is_monotonic),
        Some(metric::Data::Histogram(h)) => (9, h.aggregation_temporality as u64, false),
        Some(metric::Data::ExponentialHistogram(h)) => (10, h.aggregation_temporality as u64, false),
        Some(metric::Data::Summary(_)) => (11, 0, false),
        None => (0, 0, false),
    };
    let mut out = scope_hash.to_le_bytes().to_vec();
    put_bytes(&mut out, m.name.as_bytes());
    put_bytes(&mut out, m.unit.as_bytes());
    out.push(data);
    out.extend_from_slice(&temporality.to_le_bytes());
    out.push(u8::from(monotonic));
    xxh3_64(&out)
}
