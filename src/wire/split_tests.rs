//! Splitter tests: hand-written cases and the property that split-then-decode is a partition
//! of the input by key, with order kept and nothing lost, duplicated or altered.

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use proptest::prelude::*;
use prost::Message;

use super::split::{KeyLevel, Part, Route, Splitter};
use crate::config::{RoutingKey, Signal};
use crate::routing::{RouteKey, oracle};
use crate::tools::spangen::{self, grpc_frame};

/// One flattened entry: (resource without scopes, scope without spans, span).
type Entry = (ResourceSpans, Option<ScopeSpans>, Option<Span>);

fn owner_mod(n: usize) -> impl Fn(u64) -> usize {
    move |h: u64| (h % n as u64) as usize
}

fn hash(k: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(k)
}

fn trace_key() -> RouteKey {
    RouteKey::new(Signal::Traces, &RoutingKey::TraceId)
}

fn split(req: &ExportTraceServiceRequest, level: KeyLevel, n: usize) -> Vec<Part> {
    let owner = owner_mod(n);
    let mut key = match level {
        KeyLevel::Resource => RouteKey::new(Signal::Traces, &RoutingKey::Service),
        _ => trace_key(),
    };
    let route = Route { owner: &owner, backends: n };
    let mut out = vec![];
    Splitter::new().split(&grpc_frame(&req.encode_to_vec()), &mut key, &route, &mut out).unwrap();
    out
}

fn flatten(req: &ExportTraceServiceRequest) -> Vec<Entry> {
    let mut out = vec![];
    for rs in &req.resource_spans {
        let bare = ResourceSpans { scope_spans: vec![], ..rs.clone() };
        if rs.scope_spans.is_empty() {
            out.push((bare.clone(), None, None));
        }
        for ss in &rs.scope_spans {
            let bare_scope = ScopeSpans { spans: vec![], ..ss.clone() };
            if ss.spans.is_empty() {
                out.push((bare.clone(), Some(bare_scope.clone()), None));
            }
            for sp in &ss.spans {
                out.push((bare.clone(), Some(bare_scope.clone()), Some(sp.clone())));
            }
        }
    }
    out
}

/// The key hash the oracle gives an entry; empty scopes and resources go with their resource.
fn entry_hash(e: &Entry, level: KeyLevel) -> u64 {
    match (&e.2, level) {
        (Some(span), KeyLevel::Item) => oracle::trace_id(&span.trace_id, &e.0.resource),
        _ => oracle::service(&e.0.resource),
    }
}

/// The invariant: part b holds exactly the input entries whose key b owns, in input order.
fn check_partition(req: &ExportTraceServiceRequest, level: KeyLevel, n: usize) {
    let parts = split(req, level, n);
    let owner = owner_mod(n);
    let input = flatten(req);
    let mut seen = 0;
    for p in &parts {
        let len = u32::from_be_bytes([p.framed[1], p.framed[2], p.framed[3], p.framed[4]]) as usize;
        assert_eq!(len + 5, p.framed.len(), "gRPC length prefix");
        let got = flatten(&ExportTraceServiceRequest::decode(&p.framed[5..]).unwrap());
        let want: Vec<Entry> = input.iter().filter(|e| owner(entry_hash(e, level)) == p.backend).cloned().collect();
        assert_eq!(got, want, "backend {}", p.backend);
        assert_eq!(p.items as usize, got.iter().filter(|e| e.2.is_some()).count());
        seen += got.len();
    }
    assert_eq!(seen, input.len(), "every entry lands exactly once");
    let mut backends: Vec<_> = parts.iter().map(|p| p.backend).collect();
    backends.dedup();
    assert_eq!(backends.len(), parts.len(), "one part per backend");
}

fn arb_span() -> impl Strategy<Value = Span> {
    let id = prop_oneof![
        8 => (0u8..12).prop_map(|t| vec![t; 16]),
        1 => Just(vec![]),
        1 => proptest::collection::vec(any::<u8>(), 0..20),
    ];
    (id, any::<u64>(), "[a-z]{0,8}").prop_map(|(trace_id, t, name)| Span {
        trace_id,
        start_time_unix_nano: t,
        name,
        ..Default::default()
    })
}

fn arb_scope() -> impl Strategy<Value = ScopeSpans> {
    let scope = "[a-z]{0,6}".prop_map(|name| InstrumentationScope { name, ..Default::default() });
    (proptest::option::of(scope), proptest::collection::vec(arb_span(), 0..12), "[a-z]{0,3}")
        .prop_map(|(scope, spans, schema_url)| ScopeSpans { scope, spans, schema_url })
}

fn arb_request() -> impl Strategy<Value = ExportTraceServiceRequest> {
    let service = proptest::option::of(prop_oneof![Just("a"), Just("b"), Just("c"), Just("")]);
    let rs = (service, proptest::collection::vec(arb_scope(), 0..4), "[a-z]{0,3}").prop_map(
        |(svc, scope_spans, schema_url)| {
            let resource = svc.map(spangen::resource);
            ResourceSpans { resource, scope_spans, schema_url }
        },
    );
    proptest::collection::vec(rs, 0..5).prop_map(|resource_spans| ExportTraceServiceRequest { resource_spans })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn trace_split_is_a_partition(req in arb_request(), n in 1usize..6) {
        check_partition(&req, KeyLevel::Item, n);
    }

    #[test]
    fn service_split_is_a_partition(req in arb_request(), n in 1usize..6) {
        check_partition(&req, KeyLevel::Resource, n);
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300), n in 1usize..4) {
        let owner = owner_mod(n);
        let route = Route { owner: &owner, backends: n };
        let mut out = vec![];
        let _ = Splitter::new().split(&grpc_frame(&bytes), &mut trace_key(), &route, &mut out);
    }
}

#[test]
fn realistic_request_splits_across_backends() {
    let req = spangen::request("checkout", 100, 1, 9);
    let parts = split(&req, KeyLevel::Item, 3);
    assert_eq!(parts.len(), 3);
    assert_eq!(parts.iter().map(|p| p.items).sum::<u32>(), 100);
    check_partition(&req, KeyLevel::Item, 3);
}

#[test]
fn one_owner_passes_the_input_through_without_copying() {
    let framed = grpc_frame(&spangen::request("a", 10, 10, 1).encode_to_vec());
    let owner = owner_mod(3);
    let route = Route { owner: &owner, backends: 3 };
    let mut out = vec![];
    Splitter::new().split(&framed, &mut trace_key(), &route, &mut out).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].framed.as_ptr(), framed.as_ptr());
}

/// Encodes `span` with its fields in descending order, as the Go collector does.
fn descending(span: &Span) -> Vec<u8> {
    let singles = [
        Span { status: span.status.clone(), ..Default::default() },
        Span { attributes: span.attributes.clone(), ..Default::default() },
        Span { end_time_unix_nano: span.end_time_unix_nano, ..Default::default() },
        Span { start_time_unix_nano: span.start_time_unix_nano, ..Default::default() },
        Span { kind: span.kind, ..Default::default() },
        Span { name: span.name.clone(), ..Default::default() },
        Span { parent_span_id: span.parent_span_id.clone(), ..Default::default() },
        Span { span_id: span.span_id.clone(), ..Default::default() },
        Span { trace_id: span.trace_id.clone(), ..Default::default() },
    ];
    singles.iter().flat_map(|s| s.encode_to_vec()).collect()
}

/// Wraps raw span bytes (plus raw extra bytes at each level) into a request by hand.
fn hand_request(spans: &[Vec<u8>], unknown: &[u8]) -> Vec<u8> {
    let field = |n: u8, body: &[u8]| -> Vec<u8> {
        let mut v = vec![(n << 3) | 2];
        crate::wire::pb::put_varint(&mut v, body.len() as u64);
        v.extend_from_slice(body);
        v
    };
    let mut scope: Vec<u8> = spans.iter().flat_map(|s| field(2, s)).collect();
    scope.extend_from_slice(unknown);
    let mut rs = field(2, &scope);
    rs.extend_from_slice(unknown);
    let mut req = field(1, &rs);
    req.extend_from_slice(unknown);
    req
}

#[test]
fn go_field_order_and_unknown_fields_survive_verbatim() {
    // field 111, bytes "unknown-mark": not in the schema.
    let unknown: Vec<u8> = [&[0xfa, 0x06, 12][..], b"unknown-mark"].concat();
    let spans: Vec<Vec<u8>> = (0..40u64)
        .map(|i| {
            let mut s = descending(&spangen::span(spangen::trace_id(5, i), i));
            s.extend_from_slice(&unknown);
            s
        })
        .collect();
    let framed = grpc_frame(&hand_request(&spans, &unknown));
    let owner = owner_mod(4);
    let route = Route { owner: &owner, backends: 4 };
    let mut out = vec![];
    Splitter::new().split(&framed, &mut trace_key(), &route, &mut out).unwrap();
    assert_eq!(out.len(), 4);
    for (i, s) in spans.iter().enumerate() {
        let id = spangen::trace_id(5, i as u64);
        let part = out.iter().find(|p| p.backend == owner(hash(&id))).unwrap();
        assert!(contains(&part.framed, s), "span {i} copied verbatim to its owner");
    }
    for p in &out {
        let tail = &p.framed[p.framed.len() - unknown.len()..];
        assert_eq!(tail, unknown, "top-level unknown field kept");
        assert_eq!(count(&p.framed, &unknown), 3 + p.items as usize, "request, resource, scope and span unknowns kept");
    }
}

#[test]
fn malformed_requests_are_errors() {
    let owner = owner_mod(2);
    let route = Route { owner: &owner, backends: 2 };
    let mut out = vec![];
    let cases: &[&[u8]] =
        &[&[0x0a, 0x05, 0x12], &[0x0a, 0x02, 0x12, 0x05], &[0x0a, 0x04, 0x12, 0x02, 0x12, 0x07], &[0x0f]];
    for c in cases {
        assert!(Splitter::new().split(&grpc_frame(c), &mut trace_key(), &route, &mut out).is_err(), "{c:?}");
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

#[test]
fn empty_request_is_one_empty_part() {
    let parts = split(&ExportTraceServiceRequest::default(), KeyLevel::Item, 3);
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0].items, 0);
    let _ = Bytes::new();
}
