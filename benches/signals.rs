//! Metrics and logs splitters on realistic payloads, against prost decode, regroup, encode.
//!
//! Metrics: one service, 2 × 3 metrics (sum, histogram, gauge) × 24 streams, routed by
//! `streamID`, so every metric is cut across the 3 backends. Logs: 100 records of ~300 bytes,
//! half with a trace id, routed by `traceID` (the other half falls back to the service).
// Tests, benches and binaries may unwrap: clippy.toml disallows it for the library.
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{Metric, ResourceMetrics, ScopeMetrics, metric};
use otlp_gateway::config::{RoutingKey, Signal};
use otlp_gateway::routing::{Ring, RouteKey};
use otlp_gateway::tools::signalgen::{logs_request, metrics_request};
use otlp_gateway::tools::spangen::grpc_frame;
use otlp_gateway::wire::{Route, Splitter};
use prost::Message;
use xxhash_rust::xxh3::xxh3_64;

fn ring() -> Ring {
    Ring::new(&["10.0.0.1:4317", "10.0.0.2:4317", "10.0.0.3:4317"]).expect("ring")
}

fn bench_zero_copy(c: &mut Criterion, name: &str, framed: &Bytes, signal: Signal, key: RoutingKey) {
    let ring = ring();
    let owner = |h: u64| ring.lookup(h);
    let route = Route { owner: &owner, backends: ring.len() };
    let mut key = RouteKey::new(signal, &key);
    let (mut splitter, mut parts) = (Splitter::new(), Vec::new());
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Bytes(framed.len() as u64));
    g.bench_function("zero_copy", |b| {
        b.iter(|| {
            splitter.split(black_box(framed), &mut key, &route, &mut parts).expect("split");
            black_box(&parts);
        })
    });
    g.finish();
}

/// A stream key from decoded values: metric name and point attributes.
fn stream_hash(m: &Metric, attrs: &[KeyValue]) -> u64 {
    let mut k = m.name.clone().into_bytes();
    for kv in attrs {
        k.extend_from_slice(&kv.encode_to_vec());
    }
    xxh3_64(&k)
}

/// Keeps the points of `m` that `keep` selects; `None` when none remain.
fn filter_points(m: &Metric, keep: &dyn Fn(&[KeyValue]) -> bool) -> Option<Metric> {
    use metric::Data::*;
    let data = match m.data.clone()? {
        Sum(mut s) => {
            s.data_points.retain(|p| keep(&p.attributes));
            (!s.data_points.is_empty()).then_some(Sum(s))
        }
        Gauge(mut g) => {
            g.data_points.retain(|p| keep(&p.attributes));
            (!g.data_points.is_empty()).then_some(Gauge(g))
        }
        Histogram(mut h) => {
            h.data_points.retain(|p| keep(&p.attributes));
            (!h.data_points.is_empty()).then_some(Histogram(h))
        }
        other => Some(other),
    }?;
    Some(Metric { data: Some(data), ..m.clone() })
}

/// The prost path for metrics: decode, cut every metric per owner of its streams, encode.
fn prost_metrics(framed: &[u8], ring: &Ring) -> Vec<Vec<u8>> {
    let req = ExportMetricsServiceRequest::decode(&framed[5..]).expect("decode");
    let mut out = vec![ExportMetricsServiceRequest::default(); ring.len()];
    for rm in &req.resource_metrics {
        for sm in &rm.scope_metrics {
            for (b, o) in out.iter_mut().enumerate() {
                let metrics: Vec<Metric> = sm
                    .metrics
                    .iter()
                    .filter_map(|m| filter_points(m, &|a: &[KeyValue]| ring.lookup(stream_hash(m, a)) == b))
                    .collect();
                let scope = ScopeMetrics { metrics, ..sm.clone() };
                o.resource_metrics.push(ResourceMetrics { scope_metrics: vec![scope], ..rm.clone() });
            }
        }
    }
    out.iter().map(|r| r.encode_to_vec()).collect()
}

/// The prost path for logs: decode, regroup records by trace id owner, encode.
fn prost_logs(framed: &[u8], ring: &Ring) -> Vec<Vec<u8>> {
    let req = ExportLogsServiceRequest::decode(&framed[5..]).expect("decode");
    let mut out = vec![ExportLogsServiceRequest::default(); ring.len()];
    for mut rl in req.resource_logs {
        for sl in std::mem::take(&mut rl.scope_logs) {
            let mut by = vec![Vec::new(); ring.len()];
            for r in sl.log_records {
                by[ring.lookup(xxh3_64(&r.trace_id))].push(r);
            }
            for (b, log_records) in by.into_iter().enumerate() {
                let scope = ScopeLogs { log_records, scope: sl.scope.clone(), schema_url: sl.schema_url.clone() };
                out[b].resource_logs.push(ResourceLogs { scope_logs: vec![scope], ..rl.clone() });
            }
        }
    }
    out.iter().map(|r| r.encode_to_vec()).collect()
}

fn bench_prost(c: &mut Criterion, name: &str, framed: &Bytes, f: fn(&[u8], &Ring) -> Vec<Vec<u8>>) {
    let ring = ring();
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Bytes(framed.len() as u64));
    g.bench_function("prost_decode_regroup_encode", |b| b.iter(|| black_box(f(black_box(framed), &ring))));
    g.finish();
}

fn bench_signals(c: &mut Criterion) {
    let metrics = grpc_frame(&metrics_request("checkout", 2, 24).encode_to_vec());
    bench_zero_copy(c, "split_metrics_stream_id", &metrics, Signal::Metrics, RoutingKey::StreamId);
    bench_prost(c, "split_metrics_stream_id", &metrics, prost_metrics);
    let logs = grpc_frame(&logs_request("checkout", 100, 9).encode_to_vec());
    bench_zero_copy(c, "split_logs_trace_id", &logs, Signal::Logs, RoutingKey::TraceId);
    bench_prost(c, "split_logs_trace_id", &logs, prost_logs);
    let attrs = RoutingKey::Attributes(vec!["http.route".into()]);
    bench_zero_copy(c, "split_logs_attributes", &logs, Signal::Logs, attrs);
    bench_zero_copy(c, "split_metrics_service", &metrics, Signal::Metrics, RoutingKey::Service);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(3));
    targets = bench_signals
}
criterion_main!(benches);
