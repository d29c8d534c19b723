//! Export settings end to end: `compression` (each codec reaches the sink intact, and the wire
//! carries `grpc-encoding` and compressed messages), `headers` on every backend request, and
//! `timeout` reported to the client as DEADLINE_EXCEEDED (gRPC) or 503 with Retry-After (HTTP),
//! and `coalesce`: parts for a busy backend sent together.
#![allow(clippy::disallowed_methods)] // tests may unwrap (clippy.toml)

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::http1::Http1;
use common::{ConfigBuilder, connect, export, on_client, sinks};
use glommio::net::TcpListener;
use glommio::{LocalExecutorBuilder, Placement};
use http::{HeaderMap, Response};
use otlp_gateway::exporter::ExportError;
use otlp_gateway::grpc::Code;
use otlp_gateway::runtime::io::TokioIo;
use otlp_gateway::tools::spangen::{self, grpc_frame};
use prost::Message;

#[test]
fn every_compression_reaches_the_backend_intact() {
    for compression in ["gzip", "zstd", "snappy", "none"] {
        let sink = sinks(2);
        let gw = ConfigBuilder::new(&sink.addrs).compression(compression).start();
        let framed = grpc_frame(&spangen::request("svc", 120, 3, 11).encode_to_vec());
        let addr = gw.grpc_addr;
        let ok = on_client(move || async move { export(&connect(addr).await, addr, framed).await.is_ok() });
        gw.shutdown();
        assert!(ok, "{compression}");
        assert_eq!(sink.total_spans(), 120, "{compression}");
        let traces: usize = sink.stats.iter().map(|s| s.traces().len()).sum();
        assert_eq!(traces, 40, "{compression}");
        sink.stop();
    }
}

/// What a recording backend saw of each request: its headers and its message's flag byte.
type Seen = Arc<Mutex<Vec<(HeaderMap, u8)>>>;

/// A bare h2 backend that records each request and answers OK; stops after `requests`.
fn recording_backend(requests: usize) -> (std::net::SocketAddr, Seen, glommio::ExecutorJoinHandle<()>) {
    let seen: Seen = Arc::default();
    let (tx, rx) = std::sync::mpsc::channel();
    let seen2 = seen.clone();
    let handle = LocalExecutorBuilder::new(Placement::Unbound)
        .spawn(move || async move {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let tcp = listener.accept().await.unwrap();
            let mut conn = h2::server::handshake(TokioIo::new(tcp)).await.unwrap();
            for _ in 0..requests {
                let Some(Ok((req, mut respond))) = conn.accept().await else { break };
                let (head, mut body) = req.into_parts();
                let mut first = None;
                while let Some(Ok(chunk)) = body.data().await {
                    first = first.or(chunk.first().copied());
                }
                seen2.lock().unwrap().push((head.headers, first.unwrap_or(0xff)));
                let response =
                    Response::builder().header("content-type", "application/grpc").header("grpc-status", "0");
                respond.send_response(response.body(()).unwrap(), true).unwrap();
            }
            // Keep serving the connection until the gateway goes.
            let _ = futures_lite::future::poll_fn(|cx| conn.poll_closed(cx)).await;
        })
        .unwrap();
    (rx.recv().unwrap(), seen, handle)
}

#[test]
fn headers_and_grpc_encoding_are_on_every_backend_request() {
    let (backend, seen, handle) = recording_backend(2);
    let gw = ConfigBuilder::new(&[backend])
        .compression("zstd")
        .otlp("headers: {X-Tenant: acme, authorization: \"Bearer t0k\"}")
        .start();
    let addr = gw.grpc_addr;
    let results = on_client(move || async move {
        let send = connect(addr).await;
        let mut results = Vec::new();
        for seed in 0..2 {
            let framed = grpc_frame(&spangen::request("svc", 10, 1, seed).encode_to_vec());
            results.push(export(&send, addr, framed).await.is_ok());
        }
        results
    });
    gw.shutdown();
    let _ = handle.join();
    assert_eq!(results, [true, true]);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    for (headers, flag) in seen.iter() {
        assert_eq!(headers.get("x-tenant").unwrap(), "acme");
        assert_eq!(headers.get("authorization").unwrap(), "Bearer t0k");
        assert_eq!(headers.get("grpc-encoding").unwrap(), "zstd");
        assert_eq!(*flag, 1, "the message is compressed");
    }
}

#[test]
fn a_backend_timeout_is_deadline_exceeded_or_503() {
    let sink = sinks(1);
    sink.shared.set_delay(Duration::from_millis(800));
    // Without retries: with them (the default) a timed-out part is queued and retried, and the
    // client hears OK once it is queued (tests/faults.rs).
    let gw = ConfigBuilder::new(&sink.addrs).timeout("200ms").no_retry().never_eject().http().start();
    let body = spangen::request("svc", 5, 1, 3).encode_to_vec();
    let addr = gw.grpc_addr;
    let framed = grpc_frame(&body);
    let grpc = on_client(move || async move { export(&connect(addr).await, addr, framed).await });
    let http = Http1::connect(gw.http_addrs[0].1).post("/v1/traces", &["Content-Type: application/x-protobuf"], &body);
    gw.shutdown();
    sink.stop();
    match grpc {
        Err(ExportError::Rejected(s)) => assert_eq!(s.code, Code::DeadlineExceeded, "{s:?}"),
        other => panic!("expected DEADLINE_EXCEEDED, got {other:?}"),
    }
    assert_eq!(http.status, 503, "{http:?}");
    assert_eq!(http.header("retry-after"), Some("1"));
}

/// `concurrent` exports of 10 spans (one trace each) at once on one connection; how many OK.
fn concurrent_exports(addr: std::net::SocketAddr, concurrent: u64) -> usize {
    on_client(move || async move {
        let send = connect(addr).await;
        let calls: Vec<_> = (0..concurrent)
            .map(|seed| {
                let (send, framed) = (send.clone(), grpc_frame(&spangen::request("svc", 10, 10, seed).encode_to_vec()));
                glommio::spawn_local(async move { export(&send, addr, framed).await.is_ok() })
            })
            .collect();
        let mut ok = 0;
        for call in calls {
            ok += usize::from(call.await);
        }
        ok
    })
}

#[test]
fn parts_for_a_busy_backend_are_coalesced_into_fewer_calls() {
    let sink = sinks(1);
    sink.shared.set_delay(Duration::from_millis(300));
    let gw = ConfigBuilder::new(&sink.addrs).exporter_extra("    coalesce:\n      max_in_flight: 2\n").start();
    let ok = concurrent_exports(gw.grpc_addr, 40);
    gw.shutdown();
    let calls = sink.stats[0].requests.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(ok, 40, "every request is acknowledged");
    assert_eq!(sink.total_spans(), 400, "every span arrives, once");
    let traces = sink.stats[0].traces();
    assert!(traces.len() == 40 && traces.values().all(|&n| n == 10), "each trace whole: {traces:?}");
    // Two calls go at once; the 38 parts that waited ride in one or a few more.
    assert!((3..=10).contains(&calls), "40 parts in {calls} calls");
    sink.stop();
}

#[test]
fn max_in_flight_zero_sends_every_part_alone() {
    let sink = sinks(1);
    sink.shared.set_delay(Duration::from_millis(100));
    let gw = ConfigBuilder::new(&sink.addrs).exporter_extra("    coalesce:\n      max_in_flight: 0\n").start();
    let ok = concurrent_exports(gw.grpc_addr, 20);
    gw.shutdown();
    assert_eq!(ok, 20);
    assert_eq!(sink.stats[0].requests.load(std::sync::atomic::Ordering::Relaxed), 20, "one call per part");
    assert_eq!(sink.total_spans(), 200);
    sink.stop();
}
