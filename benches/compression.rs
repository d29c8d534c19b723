//! CPU cost of compression and JSON against the uncompressed protobuf path, in one run:
//! - receive: splitting a protobuf request (the baseline path), gzip/zstd decode before it,
//!   OTLP/JSON → protobuf transcoding before it;
//! - export: compressing each part per `protocol.otlp.compression` (none/gzip/zstd/snappy).
//!
//! Input: one trace request of 500 spans (about 150 KB), 10 spans per trace, the size of a
//! typical SDK batch. Throughput is per uncompressed protobuf byte, so MB/s compare directly.
// Tests, benches and binaries may unwrap: clippy.toml disallows it for the library.
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use otlp_gateway::compression::Encoding;
use otlp_gateway::config::{RoutingKey, Signal};
use otlp_gateway::exporter::call::CallOptions;
use otlp_gateway::receiver::http_json;
use otlp_gateway::routing::{Ring, RouteKey};
use otlp_gateway::tools::spangen::{self, grpc_frame};
use otlp_gateway::wire::{Route, Splitter};
use prost::Message;

fn request() -> Vec<u8> {
    spangen::request("checkout", 500, 10, 42).encode_to_vec()
}

fn receive(c: &mut Criterion) {
    let body = request();
    let framed = grpc_frame(&body);
    let gzip = Encoding::Gzip.encode(&body).expect("gzip");
    let zstd = Encoding::Zstd.encode(&body).expect("zstd");
    let json = serde_json::to_vec(&spangen::request("checkout", 500, 10, 42)).expect("json");
    eprintln!(
        "request: {} B protobuf, {} B gzip, {} B zstd, {} B json",
        body.len(),
        gzip.len(),
        zstd.len(),
        json.len()
    );
    let ring = Ring::new(&["10.0.0.1:4317", "10.0.0.2:4317", "10.0.0.3:4317"]).expect("ring");
    let owner = |h: u64| ring.lookup(h);
    let route = Route { owner: &owner, backends: ring.len() };
    let mut key = RouteKey::new(Signal::Traces, &RoutingKey::TraceId);
    let (mut splitter, mut parts) = (Splitter::new(), Vec::new());
    let mut split = |framed: &Bytes| {
        splitter.split(framed, &mut key, &route, &mut parts).expect("split");
        black_box(&parts);
    };
    let mut g = c.benchmark_group("receive");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("protobuf_split", |b| b.iter(|| split(black_box(&framed))));
    g.bench_function("gzip_decode_split", |b| {
        b.iter(|| split(&Bytes::from(frame(Encoding::Gzip.decode(black_box(&gzip), 4 << 20).expect("gzip")))))
    });
    g.bench_function("zstd_decode_split", |b| {
        b.iter(|| split(&Bytes::from(frame(Encoding::Zstd.decode(black_box(&zstd), 4 << 20).expect("zstd")))))
    });
    g.bench_function("json_transcode_split", |b| {
        b.iter(|| split(&Bytes::from(http_json::request_to_framed(Signal::Traces, black_box(&json)).expect("json"))))
    });
    g.finish();
}

fn frame(body: Vec<u8>) -> Vec<u8> {
    grpc_frame(&body).to_vec()
}

fn export(c: &mut Criterion) {
    let body = request();
    let framed = grpc_frame(&body);
    let mut g = c.benchmark_group("export_compress");
    g.throughput(Throughput::Bytes(body.len() as u64));
    for enc in [Encoding::Identity, Encoding::Gzip, Encoding::Zstd, Encoding::Snappy] {
        let options = CallOptions::new(enc, Default::default());
        eprintln!("{}: {} B -> {} B", enc.name(), framed.len(), options.encode(framed.clone()).len());
        g.bench_function(enc.name(), |b| b.iter(|| black_box(options.encode(black_box(framed.clone())))));
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2));
    targets = receive, export
}
criterion_main!(benches);
