//! The receivers' configurable protocol limits, each set small and shown to bite: a body
//! trickled past `read_timeout`, a preface past `handshake_timeout`, a PING flood past
//! `http2.max_control_frames`, a header list past `http2.max_header_list_size`, and a stream
//! past `max_concurrent_streams` (gRPC and h2c). Each time the connection, or the other requests, live on.
#![allow(clippy::disallowed_methods)] // tests may unwrap (clippy.toml)

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::attack::*;
use common::http1::Http1;
use common::{ConfigBuilder, on_client, sinks};
use h2::client::SendRequest;
use otlp_gateway::grpc::{Code, TRACE_EXPORT};
use otlp_gateway::tools::spangen;
use prost::Message;

/// A framed trace export of `spans` spans.
fn export_frame(spans: usize, seed: u64) -> Bytes {
    let body = spangen::request("svc", spans, 1, seed);
    spangen::grpc_frame(&body.encode_to_vec())
}

/// Starts an export whose 5-byte prefix announces 1000 bytes, then sends one byte every 100 ms;
/// returns the call's gRPC status and how long it took to come.
async fn trickled_export(send: &SendRequest<Bytes>, addr: SocketAddr) -> (Option<u32>, Duration) {
    let start = Instant::now();
    let uri = format!("http://{addr}{TRACE_EXPORT}");
    let req = http::Request::post(uri).header("content-type", "application/grpc").header("te", "trailers");
    let mut send = send.clone().ready().await.unwrap();
    let (response, mut body) = send.send_request(req.body(()).unwrap(), false).unwrap();
    body.send_data(Bytes::from_static(&[0, 0, 0, 3, 232]), false).unwrap();
    let trickle = glommio::spawn_local(async move {
        for _ in 0..50 {
            glommio::timer::sleep(Duration::from_millis(100)).await;
            if body.send_data(Bytes::from_static(&[0]), false).is_err() {
                return;
            }
        }
    });
    let status = glommio::timer::timeout(Duration::from_secs(5), async { Ok(grpc_status(response.await).await) });
    let status = status.await.ok().flatten();
    drop(trickle.cancel());
    (status, start.elapsed())
}

/// `grpc-status` of a response, trailers-only or in trailers.
async fn grpc_status(response: Result<http::Response<h2::RecvStream>, h2::Error>) -> Option<u32> {
    let response = response.ok()?;
    let parse = |h: &http::HeaderMap| h.get("grpc-status")?.to_str().ok()?.parse().ok();
    if let Some(code) = parse(response.headers()) {
        return Some(code);
    }
    let mut body = response.into_body();
    while body.data().await.is_some() {}
    parse(&body.trailers().await.ok()??)
}

#[test]
fn a_trickled_grpc_body_gets_deadline_exceeded_and_the_connection_serves_on() {
    let sink = sinks(1);
    let gw = ConfigBuilder::new(&sink.addrs).grpc_setting("read_timeout: 500ms").start();
    let addr = gw.grpc_addr;
    let ((status, took), next) = on_client(move || async move {
        let send = common::connect(addr).await;
        let trickled = trickled_export(&send, addr).await;
        (trickled, common::export(&send, addr, export_frame(10, 1)).await.is_ok())
    });
    gw.shutdown();
    assert_eq!(status, Some(Code::DeadlineExceeded as u32), "after {took:?}");
    assert!(took >= Duration::from_millis(450) && took < Duration::from_secs(4), "answered after {took:?}");
    assert!(next, "the next request on the same connection is served");
    assert_eq!(sink.total_spans(), 10, "only the whole request was forwarded");
    sink.stop();
}

#[test]
fn a_trickled_http_body_gets_408_with_a_status_body() {
    let sink = sinks(1);
    let gw = ConfigBuilder::new(&sink.addrs).http().http_setting("read_timeout: 500ms").start();
    let mut http = Http1::connect(gw.http_addrs[0].1);
    let start = Instant::now();
    let head =
        "POST /v1/traces HTTP/1.1\r\nHost: gw\r\nContent-Type: application/x-protobuf\r\nContent-Length: 1000\r\n\r\n";
    http.send_raw(head.as_bytes());
    http.send_raw(b"\x0a\x02");
    let reply = http.read_reply();
    let took = start.elapsed();
    let mut fresh = Http1::connect(gw.http_addrs[0].1);
    let body = spangen::request("svc", 5, 1, 2).encode_to_vec();
    let ok = fresh.post("/v1/traces", &["Content-Type: application/x-protobuf"], &body);
    gw.shutdown();
    assert_eq!(reply.status, 408, "{reply:?}");
    assert_eq!(&reply.body[..2], &[0x08, Code::DeadlineExceeded as u8], "google.rpc.Status code 4");
    assert!(took >= Duration::from_millis(450) && took < Duration::from_secs(4), "answered after {took:?}");
    assert_eq!(ok.status, 200, "other clients are served");
    assert_eq!(sink.total_spans(), 5);
    sink.stop();
}

#[test]
fn a_configured_handshake_timeout_drops_a_trickled_preface() {
    let sink = sinks(1);
    let gw = ConfigBuilder::new(&sink.addrs).grpc_setting("handshake_timeout: 300ms").start();
    let (took, closed) = trickle(gw.grpc_addr, PREFACE, Duration::from_millis(100), Duration::from_secs(5));
    gw.shutdown();
    sink.stop();
    // The default (10 s) would let all 24 bytes through (2.4 s) and keep the connection.
    assert!(closed && took < Duration::from_millis(1500), "closed {closed} after {took:?}");
}

/// Opens an HTTP/2 connection (preface, SETTINGS and the ACK of the gateway's) and writes `frames`.
fn raw_h2(addr: SocketAddr, frames: &[u8]) -> std::net::TcpStream {
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    let ack = frame(SETTINGS, 1, 0, &[]);
    tcp.write_all(&[PREFACE, &frame(SETTINGS, 0, 0, &[]), &ack, frames].concat()).unwrap();
    tcp
}

#[test]
fn a_ping_flood_past_max_control_frames_is_dropped() {
    let sink = sinks(1);
    let gw = ConfigBuilder::new(&sink.addrs).grpc_setting("http2:\n          max_control_frames: 50").start();
    let pings: Vec<u8> = (0..200u64).flat_map(|i| frame(PING, 0, 0, &i.to_be_bytes())).collect();
    let (flooded, _) = drain(raw_h2(gw.grpc_addr, &pings[..60 * 17])).finish(Duration::from_secs(5));
    let (calm, _) = drain(raw_h2(gw.grpc_addr, &pings[..40 * 17])).finish(Duration::from_millis(500));
    gw.shutdown();
    sink.stop();
    assert!(flooded, "60 PINGs against a burst of 50: dropped");
    assert!(!calm, "40 PINGs: the connection stays");
}

#[test]
fn a_header_list_past_max_header_list_size_is_refused_and_the_connection_serves_on() {
    let sink = sinks(1);
    let gw = ConfigBuilder::new(&sink.addrs).grpc_setting("http2:\n          max_header_list_size: 1024").start();
    let addr = gw.grpc_addr;
    let (big, next) = on_client(move || async move {
        let send = common::connect(addr).await;
        let mut headers = http::HeaderMap::new();
        headers.insert("x-padding", http::HeaderValue::from_str(&"a".repeat(2000)).unwrap());
        let uri: http::Uri = format!("http://{addr}{TRACE_EXPORT}").parse().unwrap();
        let call = otlp_gateway::exporter::call::unary_with;
        let big = call(send.clone(), uri, export_frame(3, 3), Duration::from_secs(5), &headers).await;
        (big.is_ok(), common::export(&send, addr, export_frame(7, 4)).await.is_ok())
    });
    gw.shutdown();
    assert!(!big, "a 2 KB header against a 1 KiB limit is refused");
    assert!(next, "the connection serves the next request");
    assert_eq!(sink.total_spans(), 7);
    sink.stop();
}

/// Reads frames from `tcp` until `done` says stop or the wait runs out; returns
/// `(type, flags, stream, payload)` of each.
fn read_frames(tcp: &mut std::net::TcpStream, wait: Duration, done: impl Fn(&[Frame]) -> bool) -> Vec<Frame> {
    use std::io::Read;
    tcp.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let (deadline, mut buf, mut frames) = (Instant::now() + wait, Vec::new(), Vec::new());
    let mut chunk = [0u8; 16 << 10];
    while Instant::now() < deadline && !done(&frames) {
        match tcp.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => continue,
        }
        while buf.len() >= 9 {
            let len = u32::from_be_bytes([0, buf[0], buf[1], buf[2]]) as usize;
            if buf.len() < 9 + len {
                break;
            }
            let stream = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) & 0x7fff_ffff;
            frames.push(Frame { kind: buf[3], flags: buf[4], stream, payload: buf[9..9 + len].to_vec() });
            buf.drain(..9 + len);
        }
    }
    frames
}

#[derive(Debug)]
struct Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

const GOAWAY: u8 = 7;
const REFUSED_STREAM: [u8; 4] = [0, 0, 0, 7];

/// On a new connection to `addr` (whose limit is 2 streams), opens streams 1, 3 and 5 with
/// `headers`, waits for stream 5's reset, then ends stream 1 with `body`; the frames read before
/// and after ending it (the second read stops at a frame of stream 1 with END_STREAM).
fn third_stream_then_first(addr: SocketAddr, headers: &[u8], body: &[u8]) -> (Vec<Frame>, Vec<Frame>) {
    let open = |id| frame(HEADERS, END_HEADERS, id, headers);
    let mut tcp = raw_h2(addr, &[]);
    // The limit applies once our ACK of the gateway's SETTINGS is in; let it land first.
    let _ = read_frames(&mut tcp, Duration::from_millis(300), |_| false);
    tcp.write_all(&[open(1), open(3), open(5)].concat()).unwrap();
    let refused = |f: &[Frame]| f.iter().any(|f| f.kind == RST_STREAM && f.stream == 5);
    let before = read_frames(&mut tcp, Duration::from_secs(5), refused);
    tcp.write_all(&frame(DATA, END_STREAM, 1, body)).unwrap();
    let ended = |f: &[Frame]| f.iter().any(|f| f.stream == 1 && f.flags & END_STREAM != 0);
    (before, read_frames(&mut tcp, Duration::from_secs(5), ended))
}

#[test]
fn a_stream_past_max_concurrent_streams_is_refused_and_the_connection_survives() {
    let sink = sinks(1);
    let gw = ConfigBuilder::new(&sink.addrs).grpc_setting("max_concurrent_streams: 2").start();
    // Finish stream 1 with a valid export: it is answered and delivered.
    let (before, after) = third_stream_then_first(gw.grpc_addr, &export_headers(), &export_frame(6, 5));
    let answered = |f: &[Frame]| f.iter().any(|f| f.kind == HEADERS && f.stream == 1 && f.flags & END_STREAM != 0);
    gw.shutdown();
    let rst = before.iter().find(|f| f.kind == RST_STREAM && f.stream == 5);
    assert_eq!(rst.map(|f| f.payload.as_slice()), Some(&REFUSED_STREAM[..]), "{before:?}");
    assert!(!before.iter().chain(&after).any(|f| f.kind == GOAWAY), "no GOAWAY: {before:?} {after:?}");
    assert!(answered(&after), "stream 1 is answered on the same connection: {after:?}");
    assert_eq!(sink.total_spans(), 6);
    sink.stop();
}

/// The HPACK block of an OTLP/HTTP protobuf trace export over h2c.
fn http_export_headers() -> Vec<u8> {
    let mut b = vec![0x83, 0x86]; // :method POST, :scheme http
    literal(&mut b, &[0x01], b"gw"); // :authority
    literal(&mut b, &[0x04], b"/v1/traces"); // :path
    literal(&mut b, &[0x0f, 0x10], b"application/x-protobuf"); // content-type (index 31)
    b
}

#[test]
fn an_h2c_stream_past_the_http_receivers_max_concurrent_streams_is_refused() {
    let sink = sinks(1);
    let gw = ConfigBuilder::new(&sink.addrs).http().http_setting("max_concurrent_streams: 2").start();
    let body = spangen::request("svc", 4, 1, 6).encode_to_vec();
    let (before, after) = third_stream_then_first(gw.http_addrs[0].1, &http_export_headers(), &body);
    gw.shutdown();
    let rst = before.iter().find(|f| f.kind == RST_STREAM && f.stream == 5);
    assert_eq!(rst.map(|f| f.payload.as_slice()), Some(&REFUSED_STREAM[..]), "{before:?}");
    assert!(!before.iter().chain(&after).any(|f| f.kind == GOAWAY), "no GOAWAY: {before:?} {after:?}");
    let status = after.iter().find(|f| f.kind == HEADERS && f.stream == 1);
    assert!(status.is_some(), "stream 1 is answered on the same connection: {after:?}");
    assert_eq!(sink.total_spans(), 4);
    sink.stop();
}
