//! The gateway end to end on loopback: real HTTP/2 and gRPC between a client, the gateway
//! and in-process sinks.
#![allow(clippy::disallowed_methods)] // tests may unwrap (clippy.toml)

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{ConfigBuilder, connect, export, on_client, sinks, unary_on};
use otlp_gateway::exporter::ExportError;
use otlp_gateway::grpc::Code;
use otlp_gateway::tools::loadgen::{self, LoadgenOpts};
use otlp_gateway::tools::spangen::{self, grpc_frame};
use prost::Message;

fn code_of(r: &Result<bytes::Bytes, ExportError>) -> Option<Code> {
    match r {
        Ok(_) => Some(Code::Ok),
        Err(ExportError::Rejected(s)) => Some(s.code),
        Err(_) => None,
    }
}

/// Trace id → the sink indexes that saw it.
fn owners(sink: &otlp_gateway::tools::sink::Sink) -> HashMap<Vec<u8>, Vec<usize>> {
    let mut owners: HashMap<Vec<u8>, Vec<usize>> = HashMap::new();
    for (i, s) in sink.stats.iter().enumerate() {
        for id in s.traces().keys() {
            owners.entry(id.clone()).or_default().push(i);
        }
    }
    owners
}

#[test]
fn concurrent_load_keeps_trace_affinity_and_loses_nothing() {
    let sink = sinks(3);
    let gw = ConfigBuilder::new(&sink.addrs).start();
    let opts = LoadgenOpts {
        target: gw.grpc_addr,
        duration: Duration::from_millis(1500),
        spans_per_trace: 4,
        connections: 3,
        streams: 8,
        ..Default::default()
    };
    let report = loadgen::run(opts).unwrap();
    gw.shutdown();
    assert_eq!(report.requests_failed, 0, "{:?}", report.errors);
    assert!(report.spans_ok >= 1000, "load ran: {}", report.spans_ok);
    assert_eq!(sink.total_spans(), report.spans_ok, "every acknowledged span arrived once");
    let owners = owners(&sink);
    assert_eq!(owners.len() as u64, report.traces_ok);
    assert!(owners.values().all(|o| o.len() == 1), "a trace reached two backends");
    assert!(sink.stats.iter().all(|s| s.spans() > report.spans_ok / 6), "all backends used");
    sink.stop();
}

#[test]
fn malformed_request_gets_invalid_argument_and_the_connection_survives() {
    let sink = sinks(2);
    let gw = ConfigBuilder::new(&sink.addrs).start();
    let addr = gw.grpc_addr;
    let codes = on_client(move || async move {
        let send = connect(addr).await;
        let good = grpc_frame(&spangen::request("svc", 20, 1, 1).encode_to_vec());
        let garbage = grpc_frame(&[0x0a, 0x05, 0x12, 0x03, 0xff]);
        let (a, b) =
            futures_lite::future::zip(export(&send, addr, garbage.clone()), export(&send, addr, good.clone())).await;
        let c = export(&send, addr, good).await;
        let d = export(&send, addr, grpc_frame(&[0xff; 64])).await;
        [code_of(&a), code_of(&b), code_of(&c), code_of(&d)]
    });
    gw.shutdown();
    assert_eq!(codes, [Some(Code::InvalidArgument), Some(Code::Ok), Some(Code::Ok), Some(Code::InvalidArgument)]);
    assert_eq!(sink.total_spans(), 40, "the good requests arrived; nothing of the bad ones");
    sink.stop();
}

#[test]
fn unknown_method_is_unimplemented_and_bad_framing_is_refused() {
    let sink = sinks(1);
    let gw = ConfigBuilder::new(&sink.addrs).start();
    let addr = gw.grpc_addr;
    let codes = on_client(move || async move {
        let send = connect(addr).await;
        let good = grpc_frame(&spangen::request("svc", 5, 1, 2).encode_to_vec());
        let metrics = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Nope";
        let unknown = unary_on(&send, addr, metrics, good.clone()).await;
        let mut truncated = good.to_vec();
        truncated.truncate(good.len() - 3);
        let truncated = export(&send, addr, truncated.into()).await;
        let mut compressed = good.to_vec();
        compressed[0] = 1;
        let lying = export(&send, addr, compressed.into()).await;
        let ok = export(&send, addr, good).await;
        [code_of(&unknown), code_of(&truncated), code_of(&lying), code_of(&ok)]
    });
    gw.shutdown();
    assert_eq!(codes, [Some(Code::Unimplemented), Some(Code::Internal), Some(Code::Internal), Some(Code::Ok)]);
    sink.stop();
}

#[test]
fn oversize_message_is_resource_exhausted() {
    let sink = sinks(1);
    let gw = ConfigBuilder::new(&sink.addrs).max_recv_mib(1).start();
    let addr = gw.grpc_addr;
    let codes = on_client(move || async move {
        let send = connect(addr).await;
        let big = grpc_frame(&spangen::request("svc", 4000, 1, 3).encode_to_vec());
        assert!(big.len() > 1 << 20);
        let small = grpc_frame(&spangen::request("svc", 100, 1, 3).encode_to_vec());
        let r = export(&send, addr, big).await;
        let msg = match &r {
            Err(ExportError::Rejected(s)) => s.message.to_string(),
            _ => String::new(),
        };
        (code_of(&r), msg, code_of(&export(&send, addr, small).await))
    });
    gw.shutdown();
    assert_eq!(codes.0, Some(Code::ResourceExhausted));
    assert!(codes.1.contains("1048576"), "message names the limit: {}", codes.1);
    assert_eq!(codes.2, Some(Code::Ok), "same connection still serves");
    sink.stop();
}

#[test]
fn unreachable_backend_is_unavailable_fast_without_a_retry_storm() {
    let sink = sinks(1);
    // A port nobody listens on: bind one, note it, close it.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let gw = ConfigBuilder::new(&[sink.addrs[0], dead]).no_retry().never_eject().start();
    let addr = gw.grpc_addr;
    let (codes, messages, took) = on_client(move || async move {
        let send = connect(addr).await;
        let t0 = Instant::now();
        let (mut codes, mut messages) = (vec![], vec![]);
        for seed in 0..50 {
            let r = export(&send, addr, grpc_frame(&spangen::request("s", 50, 1, seed).encode_to_vec())).await;
            codes.push(code_of(&r));
            if let Err(ExportError::Rejected(s)) = r {
                messages.push(s.message.to_string());
            }
        }
        (codes, messages, t0.elapsed())
    });
    gw.shutdown();
    assert!(codes.iter().all(|c| *c == Some(Code::Unavailable)), "{codes:?}");
    assert!(
        messages.iter().all(|m| m.contains(&dead.to_string())),
        "the status names the failed backend: {:?}",
        messages[0]
    );
    assert!(took < Duration::from_secs(5), "failing fast while backing off, took {took:?}");
    sink.stop();
}

#[test]
fn backend_rejections_reach_the_client_with_their_code() {
    let sink = sinks(2);
    let gw = ConfigBuilder::new(&sink.addrs).no_retry().start();
    let addr = gw.grpc_addr;
    sink.stats[1].set_failure(Some(Code::ResourceExhausted));
    let code = on_client(move || async move {
        let send = connect(addr).await;
        code_of(&export(&send, addr, grpc_frame(&spangen::request("s", 100, 1, 7).encode_to_vec())).await)
    });
    sink.stats[1].set_failure(None);
    gw.shutdown();
    assert_eq!(code, Some(Code::ResourceExhausted));
    assert!(sink.stats[0].spans() > 0, "the healthy backend's part was delivered");
    sink.stop();
}

#[test]
fn service_routing_keeps_each_service_on_one_backend() {
    let sink = sinks(3);
    let gw = ConfigBuilder::new(&sink.addrs).routing_key("service").start();
    let addr = gw.grpc_addr;
    on_client(move || async move {
        let send = connect(addr).await;
        for i in 0..60u64 {
            let svc = format!("service-{}", i % 12);
            let r = export(&send, addr, grpc_frame(&spangen::request(&svc, 10, 1, i).encode_to_vec())).await;
            assert!(r.is_ok(), "{r:?}");
        }
    });
    gw.shutdown();
    assert_eq!(sink.total_spans(), 600);
    // Each request is one service; a service's spans must all be on one sink, so each sink's
    // count is a multiple of a service's 50 spans.
    assert!(
        sink.stats.iter().all(|s| s.spans() % 50 == 0),
        "{:?}",
        sink.stats.iter().map(|s| s.spans()).collect::<Vec<_>>()
    );
    assert!(sink.stats.iter().filter(|s| s.spans() > 0).count() >= 2, "more than one backend used");
    sink.stop();
}

#[test]
fn two_cores_share_the_port_and_route_identically() {
    let cores = otlp_gateway::runtime::gateway::choose_cores(None).unwrap();
    assert!(cores.len() >= 2, "this test needs two online CPUs (every machine of this project has two)");
    let sink = sinks(3);
    let gw = otlp_gateway::Gateway::start(&ConfigBuilder::new(&sink.addrs).build(), Some(cores[..2].to_vec())).unwrap();
    let opts = LoadgenOpts {
        target: gw.grpc_addr,
        duration: Duration::from_millis(800),
        spans_per_trace: 3,
        connections: 8,
        streams: 4,
        ..Default::default()
    };
    let report = loadgen::run(opts).unwrap();
    gw.shutdown();
    assert_eq!(report.requests_failed, 0, "{:?}", report.errors);
    assert_eq!(sink.total_spans(), report.spans_ok);
    assert!(owners(&sink).values().all(|o| o.len() == 1), "both cores' rings agree");
    sink.stop();
}

#[test]
fn parts_go_to_their_backends_in_parallel() {
    let sink = sinks(3);
    // Each backend holds a request 300 ms: one after another, the sink would never hold more
    // than one of this request's parts at once.
    sink.shared.set_delay(Duration::from_millis(300));
    let gw = ConfigBuilder::new(&sink.addrs).start();
    let addr = gw.grpc_addr;
    let code = on_client(move || async move {
        let send = connect(addr).await;
        code_of(&export(&send, addr, grpc_frame(&spangen::request("s", 100, 1, 11).encode_to_vec())).await)
    });
    gw.shutdown();
    assert_eq!(code, Some(Code::Ok));
    assert_eq!(sink.stats.iter().filter(|s| s.spans() > 0).count(), 3, "the request was split three ways");
    assert_eq!(sink.shared.peak_in_flight(), 3, "all three parts were in flight together");
    sink.stop();
}
