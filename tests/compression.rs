//! Compressed requests on the OTLP/gRPC receiver: gzip and zstd decode and arrive intact, a
//! compression bomb stops at the message limit, and a lying flag or unknown encoding is refused
//! while the connection lives on.
#![allow(clippy::disallowed_methods)] // tests may unwrap (clippy.toml)

mod common;

use bytes::Bytes;
use common::{ConfigBuilder, grpc_codes, sinks};
use http::{HeaderMap, HeaderValue};
use otlp_gateway::compression::Encoding;
use otlp_gateway::grpc::Code;
use otlp_gateway::tools::spangen::{self, grpc_frame};
use prost::Message;

/// A gRPC frame with the compressed flag set around `payload`.
fn compressed_frame(payload: &[u8]) -> Bytes {
    let mut f = grpc_frame(payload).to_vec();
    f[0] = 1;
    Bytes::from(f)
}

fn encoding(name: &'static str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("grpc-encoding", HeaderValue::from_static(name));
    h
}

#[test]
fn gzip_and_zstd_requests_arrive_intact() {
    let sink = sinks(2);
    let gw = ConfigBuilder::new(&sink.addrs).start();
    let body = spangen::request("svc", 300, 3, 7).encode_to_vec();
    let calls = vec![
        (encoding("gzip"), compressed_frame(&Encoding::Gzip.encode(&body).unwrap())),
        (encoding("zstd"), compressed_frame(&Encoding::Zstd.encode(&body).unwrap())),
        // An encoding is declared, but this message is not compressed: allowed.
        (encoding("gzip"), grpc_frame(&body)),
    ];
    let codes = grpc_codes(gw.grpc_addr, calls);
    gw.shutdown();
    assert_eq!(codes, vec![Some(Code::Ok); 3]);
    assert_eq!(sink.total_spans(), 900);
    let traces: usize = sink.stats.iter().map(|s| s.traces().len()).sum();
    assert_eq!(traces, 100, "the same 100 traces each time");
    sink.stop();
}

#[test]
fn a_bomb_is_resource_exhausted_and_bad_input_is_refused_on_a_live_connection() {
    let sink = sinks(1);
    let gw = ConfigBuilder::new(&sink.addrs).max_recv_mib(1).start();
    let bomb = Encoding::Gzip.encode(&vec![0u8; 16 << 20]).unwrap();
    let body = spangen::request("svc", 10, 1, 1).encode_to_vec();
    let calls = vec![
        (encoding("gzip"), compressed_frame(&bomb)),
        (HeaderMap::new(), compressed_frame(&body)),
        (encoding("gzip"), compressed_frame(b"this is not gzip")),
        (encoding("br"), grpc_frame(&body)),
        (encoding("zstd"), compressed_frame(&Encoding::Zstd.encode(&body).unwrap())),
    ];
    let codes = grpc_codes(gw.grpc_addr, calls);
    gw.shutdown();
    let want = [Code::ResourceExhausted, Code::Internal, Code::Internal, Code::Unimplemented, Code::Ok];
    assert_eq!(codes, want.map(Some).to_vec());
    assert_eq!(sink.total_spans(), 10);
    sink.stop();
}
