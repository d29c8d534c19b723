//! The OTLP/HTTP receiver end to end: HTTP/1.1 keep-alive and chunked bodies, protobuf and
//! JSON, Content-Encoding, the official OTLP/JSON examples, and every refusal answered with a
//! `google.rpc.Status` on a connection that keeps serving.
#![allow(clippy::disallowed_methods)] // tests may unwrap (clippy.toml)

mod common;

use std::net::SocketAddr;

use bytes::Bytes;
use common::http1::{Http1, Reply};
use common::{ConfigBuilder, connect, on_client, sinks, wait_until};
use otlp_gateway::compression::Encoding;
use otlp_gateway::config::Signal;
use otlp_gateway::receiver::http_json;
use otlp_gateway::tools::spangen;
use prost::Message;

const PROTOBUF: &str = "Content-Type: application/x-protobuf";
const JSON: &str = "Content-Type: application/json";

fn example(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/data/otlp-examples/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn http_addr(gw: &otlp_gateway::Gateway) -> SocketAddr {
    gw.http_addrs.first().expect("an HTTP listener").1
}

/// The `code` of a protobuf `google.rpc.Status` body (field 1, a varint below 128).
fn rpc_code(reply: &Reply) -> u8 {
    assert_eq!(reply.header("content-type"), Some("application/x-protobuf"), "{reply:?}");
    if reply.body.first() == Some(&0x08) { reply.body[1] } else { 0 }
}

#[test]
fn protobuf_over_keep_alive_and_chunked_bodies_arrives_intact() {
    let sink = sinks(2);
    let gw = ConfigBuilder::new(&sink.addrs).http().start();
    let body = spangen::request("svc", 200, 4, 3).encode_to_vec();
    let mut c = Http1::connect(http_addr(&gw));
    let plain = c.post("/v1/traces", &[PROTOBUF], &body);
    let chunked = c.post_chunked("/v1/traces", &[PROTOBUF], &body, 1000);
    let gzip = c.post("/v1/traces", &[PROTOBUF, "Content-Encoding: gzip"], &Encoding::Gzip.encode(&body).unwrap());
    let zstd =
        c.post_chunked("/v1/traces", &[PROTOBUF, "Content-Encoding: zstd"], &Encoding::Zstd.encode(&body).unwrap(), 77);
    let deflate =
        c.post("/v1/traces", &[PROTOBUF, "Content-Encoding: deflate"], &Encoding::Deflate.encode(&body).unwrap());
    gw.shutdown();
    for r in [&plain, &chunked, &gzip, &zstd, &deflate] {
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.header("content-type"), Some("application/x-protobuf"));
    }
    assert_eq!(sink.total_spans(), 1000);
    let traces: usize = sink.stats.iter().map(|s| s.traces().len()).sum();
    assert_eq!(traces, 50, "the same 50 traces each time, each on one backend");
    sink.stop();
}

#[test]
fn official_json_examples_are_accepted_and_arrive() {
    let sink = sinks(1);
    let gw = ConfigBuilder::new(&sink.addrs).pipelines(&[("traces", ""), ("metrics", ""), ("logs", "")]).http().start();
    sink.stats[0].keep_bodies();
    let mut c = Http1::connect(http_addr(&gw));
    let replies = [
        c.post("/v1/traces", &[JSON], &example("trace.json")),
        c.post("/v1/metrics", &[JSON], &example("metrics.json")),
        c.post("/v1/logs", &[JSON], &example("logs.json")),
        c.post("/v1/logs", &[JSON, "Content-Encoding: gzip"], &Encoding::Gzip.encode(&example("events.json")).unwrap()),
    ];
    gw.shutdown();
    for r in &replies {
        assert_eq!(r.status, 200, "{r:?} {}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.header("content-type"), Some("application/json"));
        let json: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert!(json.is_object(), "{json}");
    }
    let s = &sink.stats[0];
    assert_eq!(s.items(Signal::Traces), 1);
    assert_eq!(s.items(Signal::Logs), 2, "logs.json and events.json: one record each");
    assert!(s.items(Signal::Metrics) >= 4, "metrics.json data points: {}", s.items(Signal::Metrics));
    let trace_id = hex_id("5B8EFFF798038103D269B633813FC60C");
    assert_eq!(s.traces().get(&trace_id), Some(&1));
    // Each arrived as exactly the protobuf its JSON transcodes to.
    let sent = [
        (Signal::Traces, "trace.json"),
        (Signal::Metrics, "metrics.json"),
        (Signal::Logs, "logs.json"),
        (Signal::Logs, "events.json"),
    ];
    let arrived = s.bodies();
    assert_eq!(arrived.len(), sent.len());
    for ((signal, name), (got_signal, body)) in sent.iter().zip(&arrived) {
        let framed = http_json::request_to_framed(*signal, &example(name)).unwrap();
        assert_eq!(got_signal, signal);
        assert_eq!(decoded(*signal, body), decoded(*signal, &framed[5..]), "{name}");
    }
    sink.stop();
}

/// A body decoded by prost and printed, so that any difference shows.
fn decoded(signal: Signal, body: &[u8]) -> String {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    match signal {
        Signal::Traces => format!("{:?}", ExportTraceServiceRequest::decode(body).unwrap()),
        Signal::Metrics => format!("{:?}", ExportMetricsServiceRequest::decode(body).unwrap()),
        Signal::Logs => format!("{:?}", ExportLogsServiceRequest::decode(body).unwrap()),
    }
}

#[test]
fn h2c_with_prior_knowledge_is_served() {
    let sink = sinks(1);
    let gw = ConfigBuilder::new(&sink.addrs).http().start();
    let addr = http_addr(&gw);
    let body = Bytes::from(spangen::request("svc", 20, 2, 5).encode_to_vec());
    let statuses = on_client(move || async move {
        let send = connect(addr).await;
        let mut statuses = Vec::new();
        for path in ["/v1/traces", "/v1/traces", "/v1/nope"] {
            let req = http::Request::post(format!("http://{addr}{path}"))
                .header("content-type", "application/x-protobuf")
                .body(())
                .unwrap();
            let (response, mut stream) = send.clone().ready().await.unwrap().send_request(req, false).unwrap();
            stream.send_data(body.clone(), true).unwrap();
            statuses.push(response.await.unwrap().status().as_u16());
        }
        statuses
    });
    gw.shutdown();
    assert_eq!(statuses, [200, 200, 404]);
    assert_eq!(sink.total_spans(), 40);
    sink.stop();
}

fn hex_id(hex: &str) -> Vec<u8> {
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
}

#[test]
fn bad_requests_get_the_right_status_and_the_connection_lives_on() {
    let sink = sinks(1);
    let gw = ConfigBuilder::new(&sink.addrs).http_max_body(64 * 1024).start();
    let good = spangen::request("svc", 10, 1, 1).encode_to_vec();
    let bomb = Encoding::Gzip.encode(&vec![0u8; 4 << 20]).unwrap();
    let mut c = Http1::connect(http_addr(&gw));
    let cases: Vec<(Reply, u16, u8)> = vec![
        (c.post("/v1/nothing", &[PROTOBUF], &good), 404, 12),
        (c.post("/v1/metrics", &[PROTOBUF], &good), 404, 12),
        (c.request("GET", "/v1/traces", &[], b""), 405, 12),
        (c.post("/v1/traces", &["Content-Type: text/plain"], &good), 415, 3),
        (c.post("/v1/traces", &[PROTOBUF, "Content-Encoding: br"], &good), 415, 3),
        (c.post("/v1/traces", &[PROTOBUF], &good[..good.len() - 3]), 400, 3),
        (c.post("/v1/traces", &[PROTOBUF], b"\xff\xff\xff\xff garbage"), 400, 3),
        (c.post("/v1/traces", &[PROTOBUF, "Content-Encoding: gzip"], &good), 400, 3),
        (c.post("/v1/traces", &[PROTOBUF, "Content-Encoding: gzip"], &bomb), 413, 8),
        (c.post("/v1/traces", &[PROTOBUF], &vec![0u8; 100 * 1024]), 413, 8),
    ];
    for (i, (reply, status, code)) in cases.iter().enumerate() {
        assert_eq!(reply.status, *status, "case {i}: {reply:?}");
        assert_eq!(rpc_code(reply), *code, "case {i}: {reply:?}");
    }
    assert_eq!(cases[2].0.header("allow"), Some("POST"));
    let mut c = Http1::connect(http_addr(&gw));
    let json_cases = [
        (c.post("/v1/traces", &[JSON], b"{\"resourceSpans\": [}"), 400),
        (
            c.post(
                "/v1/traces",
                &[JSON],
                b"{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":\"\xff\"}]}]}]}",
            ),
            400,
        ),
        (c.post("/v1/traces", &[JSON], br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}"#), 400),
    ];
    for (reply, status) in &json_cases {
        assert_eq!(reply.status, *status, "{reply:?}");
        assert_eq!(reply.header("content-type"), Some("application/json"));
        let json: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(json["code"], 3, "{json}");
    }
    let ok = c.post("/v1/traces", &[PROTOBUF], &good);
    gw.shutdown();
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(sink.total_spans(), 10, "only the good request arrived");
    sink.stop();
}

/// A body refused from its `Content-Length` before it is read: the gateway then lingers,
/// reading and dropping the rest, so the 413 reaches a client that writes its whole body
/// before it reads. Without that the client's writes meet a reset (as did
/// tests/hostile.rs once), and OTLP exporters retry a reset where they drop a 413.
#[test]
fn an_oversize_body_refused_unread_still_gets_its_413() {
    let sink = sinks(1);
    let gw = ConfigBuilder::new(&sink.addrs).http_max_body(64 * 1024).start();
    let replies: Vec<Reply> =
        (0..3).map(|_| Http1::connect(http_addr(&gw)).post("/v1/traces", &[PROTOBUF], &vec![0u8; 8 << 20])).collect();
    gw.shutdown();
    sink.stop();
    for reply in &replies {
        assert_eq!((reply.status, rpc_code(reply)), (413, 8), "{reply:?}");
    }
}

#[test]
fn backend_failures_map_to_retryable_statuses_with_retry_after() {
    let sink = sinks(1);
    // Without retries, so the backend's status reaches the client (with them, a retryable
    // failure is queued and answered OK: tests/faults.rs).
    let gw = ConfigBuilder::new(&sink.addrs).no_retry().never_eject().http().start();
    let good = spangen::request("svc", 5, 1, 1).encode_to_vec();
    let mut c = Http1::connect(http_addr(&gw));
    let mut replies = Vec::new();
    for code in [otlp_gateway::grpc::Code::Unavailable, otlp_gateway::grpc::Code::ResourceExhausted] {
        sink.stats[0].set_failure(Some(code));
        replies.push(c.post("/v1/traces", &[PROTOBUF], &good));
    }
    sink.stats[0].set_failure(Some(otlp_gateway::grpc::Code::InvalidArgument));
    let invalid = c.post("/v1/traces", &[PROTOBUF], &good);
    gw.shutdown();
    assert_eq!((replies[0].status, rpc_code(&replies[0])), (503, 14), "{:?}", replies[0]);
    assert_eq!((replies[1].status, rpc_code(&replies[1])), (429, 8), "{:?}", replies[1]);
    assert!(replies.iter().all(|r| r.header("retry-after") == Some("1")));
    assert_eq!(invalid.status, 400);
    assert_eq!(invalid.header("retry-after"), None);
    sink.stop();
}

#[test]
fn a_full_retry_queue_answers_429_with_retry_after_of_one_retry_interval() {
    let sink = sinks(1);
    let gw = ConfigBuilder::new(&sink.addrs).retry("2500ms", "120s").queue(1).never_eject().http().start();
    sink.stats[0].set_failure(Some(otlp_gateway::grpc::Code::Unavailable));
    let mut c = Http1::connect(http_addr(&gw));
    let body = |seed| spangen::request("svc", 5, 1, seed).encode_to_vec();
    let queued = c.post("/v1/traces", &[PROTOBUF], &body(1));
    let refused = c.post("/v1/traces", &[PROTOBUF], &body(2));
    sink.stats[0].set_failure(None);
    let delivered = wait_until(std::time::Duration::from_secs(30), || sink.total_spans() == 5);
    gw.shutdown();
    sink.stop();
    assert_eq!(queued.status, 200, "the first part waits in the queue: {queued:?}");
    assert_eq!((refused.status, rpc_code(&refused)), (429, 8), "{refused:?}");
    assert_eq!(refused.header("retry-after"), Some("3"), "2.5 s retry interval, rounded up");
    assert!(delivered, "the queued part arrived once the backend recovered");
}

#[test]
fn slow_headers_and_idle_keep_alive_connections_are_closed_after_read_header_timeout() {
    use std::io::Read;
    let sink = sinks(1);
    let gw = ConfigBuilder::new(&sink.addrs).http().http_setting("read_header_timeout: 300ms").start();
    let addr = http_addr(&gw);
    let body = spangen::request("svc", 3, 1, 1).encode_to_vec();
    // A connection that served one request, then idles.
    let mut idle = Http1::connect(addr);
    assert_eq!(idle.post("/v1/traces", &[PROTOBUF], &body).status, 200);
    // A connection that starts a request and never finishes its headers.
    let mut slow = std::net::TcpStream::connect(addr).unwrap();
    std::io::Write::write_all(&mut slow, b"POST /v1/traces HTTP/1.1\r\nHost: x\r\n").unwrap();
    slow.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    let closed = slow.read_to_end(&mut rest).is_ok();
    let waited = started.elapsed();
    let idle_closed = idle.is_closed();
    gw.shutdown();
    sink.stop();
    assert!(closed, "the slow connection was closed");
    assert!(waited < std::time::Duration::from_secs(3), "closed after {waited:?}");
    assert!(idle_closed, "the idle keep-alive connection was closed");
}
