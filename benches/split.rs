//! Splitter throughput on realistic 100-span requests (~350-byte spans, 8 attributes),
//! against the obvious alternative: prost decode, regroup by owner, encode.
// Tests, benches and binaries may unwrap: clippy.toml disallows it for the library.
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use otlp_gateway::config::{RoutingKey, Signal};
use otlp_gateway::routing::Ring;
use otlp_gateway::routing::RouteKey;
use otlp_gateway::routing::ring::hash_key;
use otlp_gateway::tools::spangen::{self, grpc_frame};
use otlp_gateway::wire::{Route, Splitter, walk};
use prost::Message;

fn ring() -> Ring {
    Ring::new(&["10.0.0.1:4317", "10.0.0.2:4317", "10.0.0.3:4317"]).expect("ring")
}

fn input() -> (ExportTraceServiceRequest, Bytes) {
    let req = spangen::request("checkout", 100, 1, 42);
    let framed = grpc_frame(&req.encode_to_vec());
    (req, framed)
}

/// The prost path: decode everything, regroup spans by owner, encode one request each.
fn prost_split(framed: &[u8], ring: &Ring) -> Vec<Vec<u8>> {
    let req = ExportTraceServiceRequest::decode(&framed[5..]).expect("decode");
    let mut out: Vec<ExportTraceServiceRequest> = vec![ExportTraceServiceRequest::default(); ring.len()];
    for rs in req.resource_spans {
        for ss in rs.scope_spans {
            let mut by: Vec<Vec<_>> = vec![Vec::new(); ring.len()];
            for span in ss.spans {
                by[ring.lookup(hash_key(&span.trace_id))].push(span);
            }
            for (b, spans) in by.into_iter().enumerate().filter(|(_, s)| !s.is_empty()) {
                let scope = ScopeSpans { scope: ss.scope.clone(), spans, schema_url: ss.schema_url.clone() };
                let rs2 = ResourceSpans {
                    resource: rs.resource.clone(),
                    scope_spans: vec![scope],
                    schema_url: rs.schema_url.clone(),
                };
                out[b].resource_spans.push(rs2);
            }
        }
    }
    out.iter().map(|r| r.encode_to_vec()).collect()
}

fn bench_split(c: &mut Criterion) {
    let ring = ring();
    let (_, framed) = input();
    let mut g = c.benchmark_group("split_100_spans_3_backends");
    g.throughput(Throughput::Bytes(framed.len() as u64));
    let owner = |h: u64| ring.lookup(h);
    let route = Route { owner: &owner, backends: ring.len() };
    let mut by_trace = RouteKey::new(Signal::Traces, &RoutingKey::TraceId);
    let mut splitter = Splitter::new();
    let mut parts = Vec::new();
    g.bench_function("zero_copy_trace_id", |b| {
        b.iter(|| {
            splitter.split(black_box(&framed), &mut by_trace, &route, &mut parts).expect("split");
            black_box(&parts);
        })
    });
    let mut by_service = RouteKey::new(Signal::Traces, &RoutingKey::Service);
    g.bench_function("zero_copy_service", |b| {
        b.iter(|| {
            splitter.split(black_box(&framed), &mut by_service, &route, &mut parts).expect("split");
            black_box(&parts);
        })
    });
    g.bench_function("prost_decode_regroup_encode", |b| b.iter(|| black_box(prost_split(black_box(&framed), &ring))));
    g.finish();
}

/// The cost of counting metric data points for telemetry (`otelcol_*_metric_points`), one
/// extra walk over each part, against the split itself.
fn bench_count_points(c: &mut Criterion) {
    let ring = ring();
    let req = otlp_gateway::tools::signalgen::metrics_request("checkout", 10, 10);
    let framed = grpc_frame(&req.encode_to_vec());
    let mut g = c.benchmark_group("metrics_split_vs_count_points");
    g.throughput(Throughput::Bytes(framed.len() as u64));
    let owner = |h: u64| ring.lookup(h);
    let route = Route { owner: &owner, backends: ring.len() };
    let mut key = RouteKey::new(Signal::Metrics, &RoutingKey::StreamId);
    let (mut splitter, mut parts) = (Splitter::new(), Vec::new());
    g.bench_function("split_stream_id", |b| {
        b.iter(|| splitter.split(black_box(&framed), &mut key, &route, &mut parts).expect("split"))
    });
    splitter.split(&framed, &mut key, &route, &mut parts).expect("split");
    g.bench_function("count_points_of_parts", |b| {
        b.iter(|| {
            let count = |p: &otlp_gateway::wire::Part| walk::count_points(&p.framed, 5..p.framed.len()).unwrap_or(0);
            black_box(parts.iter().map(count).sum::<u64>())
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(3));
    targets = bench_split, bench_count_points
}
criterion_main!(benches);
