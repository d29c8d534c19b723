//! Realistic trace payloads: ~350-byte spans with 8 attributes, as an HTTP service emits them.
//!
//! `Template` encodes one request once and then stamps fresh trace ids into copies of it, so
//! the load generator can produce millions of distinct spans per second on one core.

use bytes::{BufMut, Bytes, BytesMut};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use prost::Message;

/// A string attribute.
pub fn attr(key: &str, value: &str) -> KeyValue {
    let value = any_value::Value::StringValue(value.to_string());
    KeyValue { key: key.to_string(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

fn int_attr(key: &str, value: i64) -> KeyValue {
    let value = any_value::Value::IntValue(value);
    KeyValue { key: key.to_string(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

/// One server span of about 350 bytes with 8 attributes.
pub fn span(trace_id: [u8; 16], seq: u64) -> Span {
    let start = 1_700_000_000_000_000_000u64 + seq * 1_000;
    Span {
        trace_id: trace_id.to_vec(),
        span_id: (seq + 1).to_be_bytes().to_vec(),
        parent_span_id: (seq + 2).to_be_bytes().to_vec(),
        name: "GET /api/v1/users/{id}".into(),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: start + 1_250_000,
        attributes: vec![
            attr("http.request.method", "GET"),
            attr("http.route", "/api/v1/users/{id}"),
            int_attr("http.response.status_code", 200),
            attr("url.path", "/api/v1/users/83412"),
            attr("server.address", "users.svc.local"),
            attr("client.address", "10.12.34.56"),
            attr("user_agent.original", "okhttp/4.12.0"),
            attr("network.protocol.version", "1.1"),
        ],
        status: Some(Status { message: String::new(), code: 1 }),
        ..Default::default()
    }
}

/// A resource with a service name and a few host attributes.
pub fn resource(service: &str) -> Resource {
    Resource {
        attributes: vec![
            attr("service.name", service),
            attr("service.version", "1.42.0"),
            attr("host.name", "web-17.example.com"),
            attr("telemetry.sdk.language", "go"),
        ],
        ..Default::default()
    }
}

/// One request: `spans` spans of `service`, `spans_per_trace` consecutive spans per trace.
pub fn request(service: &str, spans: usize, spans_per_trace: usize, seed: u64) -> ExportTraceServiceRequest {
    let per = spans_per_trace.max(1);
    let spans = (0..spans).map(|i| span(trace_id(seed, (i / per) as u64), seed + i as u64)).collect();
    let scope =
        InstrumentationScope { name: "io.opentelemetry.http".into(), version: "2.1.0".into(), ..Default::default() };
    let scope_spans = ScopeSpans { scope: Some(scope), spans, schema_url: String::new() };
    let rs =
        ResourceSpans { resource: Some(resource(service)), scope_spans: vec![scope_spans], schema_url: String::new() };
    ExportTraceServiceRequest { resource_spans: vec![rs] }
}

/// A deterministic, well-spread trace id.
pub fn trace_id(seed: u64, n: u64) -> [u8; 16] {
    let a = xxhash_rust::xxh3::xxh3_64_with_seed(&n.to_le_bytes(), seed);
    let b = xxhash_rust::xxh3::xxh3_64_with_seed(&n.to_le_bytes(), !seed);
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&a.to_be_bytes());
    id[8..].copy_from_slice(&b.to_be_bytes());
    id
}

/// Prefixes an encoded message with the 5-byte gRPC header (uncompressed).
pub fn grpc_frame(msg: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(msg.len() + 5);
    out.put_u8(0);
    out.put_u32(msg.len() as u32);
    out.put_slice(msg);
    out.freeze()
}

/// An encoded request whose trace ids can be restamped cheaply.
#[derive(Debug, Clone)]
pub struct Template {
    framed: Vec<u8>,
    /// Offsets of each span's 16 trace-id bytes in `framed`.
    id_offsets: Vec<usize>,
    spans_per_trace: usize,
}

impl Template {
    /// `spans` spans per request, `spans_per_trace` consecutive spans share a trace.
    pub fn new(service: &str, spans: usize, spans_per_trace: usize) -> Self {
        let req = request(service, spans, 1, 0x5eed);
        let framed = grpc_frame(&req.encode_to_vec()).to_vec();
        let id_offsets =
            req.resource_spans[0].scope_spans[0].spans.iter().filter_map(|s| find(&framed, &s.trace_id)).collect();
        Template { framed, id_offsets, spans_per_trace: spans_per_trace.max(1) }
    }

    /// Spans in each request.
    pub fn spans(&self) -> usize {
        self.id_offsets.len()
    }

    /// A copy with fresh trace ids drawn from `rng`.
    pub fn stamp(&self, rng: &mut fastrand::Rng) -> Bytes {
        let mut buf = self.framed.clone();
        let mut id = [0u8; 16];
        for (i, &off) in self.id_offsets.iter().enumerate() {
            if i % self.spans_per_trace == 0 {
                id = rng.u128(..).to_be_bytes();
            }
            buf[off..off + 16].copy_from_slice(&id);
        }
        Bytes::from(buf)
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_realistic_size() {
        let len = span(trace_id(1, 1), 7).encoded_len();
        assert!((330..=370).contains(&len), "span is {len} bytes");
    }

    #[test]
    fn template_stamps_distinct_trace_ids() {
        let t = Template::new("svc", 100, 4);
        assert_eq!(t.spans(), 100);
        let mut rng = fastrand::Rng::with_seed(3);
        let framed = t.stamp(&mut rng);
        let req = ExportTraceServiceRequest::decode(&framed[5..]).unwrap();
        let spans = &req.resource_spans[0].scope_spans[0].spans;
        let ids: std::collections::HashSet<_> = spans.iter().map(|s| s.trace_id.clone()).collect();
        assert_eq!(ids.len(), 25);
        assert_eq!(spans[0].trace_id, spans[3].trace_id);
    }
}
