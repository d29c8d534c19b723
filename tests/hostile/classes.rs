//! One function per class of hostile input; each asserts the answers and counts its inputs.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use otlp_gateway::compression::Encoding;
use otlp_gateway::grpc::{Code, TRACE_EXPORT};
use otlp_gateway::tools::spangen::{self, grpc_frame};
use prost::Message;

use super::Tally;
use crate::common::attack::*;
use crate::common::http1::Http1;
use crate::common::{connect, grpc_codes, on_client};

const PROTOBUF: &str = "Content-Type: application/x-protobuf";
const JSON: &str = "Content-Type: application/json";

/// A valid attack request: its seeds are far from the legitimate clients'.
fn valid(seed: u64) -> Vec<u8> {
    spangen::request("attacker", 6, 2, (1 << 50) + seed).encode_to_vec()
}

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    pairs.iter().map(|(k, v)| (http::HeaderName::from_static(k), HeaderValue::from_static(v))).collect()
}

/// Posts each body to `/v1/traces` on one connection; the HTTP statuses.
fn http_statuses(addr: SocketAddr, head: &[&str], bodies: &[Vec<u8>]) -> Vec<u16> {
    let mut c = Http1::connect(addr);
    bodies.iter().map(|b| c.post("/v1/traces", head, b).status).collect()
}

fn assert_all<T: PartialEq + std::fmt::Debug>(got: &[T], allowed: &[T], what: &str) {
    for (i, g) in got.iter().enumerate() {
        assert!(allowed.contains(g), "{what} #{i}: got {g:?}, allowed {allowed:?}");
    }
}

/// Bad varints, overlong lengths, wrong wire types and deep nesting, then random mutations
/// and truncations of a valid request, on both receivers.
pub fn malformed_protobuf(grpc: SocketAddr, http: SocketAddr, tally: &mut Tally) {
    let crafted: Vec<Vec<u8>> = vec![
        vec![0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], // 11-byte varint length
        vec![0xff; 12],                                                               // overlong tag varint
        vec![0x0a, 0x80],                                                             // varint cut short
        vec![0x0a, 0xe8, 0x07, 1, 2, 3],                                              // length 1000, 3 bytes
        vec![0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f],                                     // length 4 GiB
        vec![0x08, 0x01],                                                             // field 1 as varint
        vec![0x09, 0, 0, 0, 0, 0, 0, 0, 0],                                           // field 1 as fixed64
        vec![0x0d, 0, 0, 0, 0],                                                       // field 1 as fixed32
        vec![0x0b, 0x0c],                                                             // field 1 as a group
        vec![0x0e, 0x00],                                                             // wire type 6
        vec![0x0f, 0x00],                                                             // wire type 7
        vec![0x00, 0x00],                                                             // field 0
        [&[0x0a, 0x04, 0x12, 0x02][..], &[0x0a, 0x05]].concat(),                      // inner length past its parent
    ];
    let nested = nest(5_000);
    let mut codes = grpc_codes(grpc, crafted.iter().map(|b| (HeaderMap::new(), grpc_frame(b))).collect());
    assert_all(&codes, &[Some(Code::InvalidArgument)], "crafted protobuf over gRPC");
    assert_all(&http_statuses(http, &[PROTOBUF], &crafted), &[400], "crafted protobuf over HTTP");
    codes = grpc_codes(grpc, vec![(HeaderMap::new(), grpc_frame(&nested))]);
    assert_all(&codes, &[Some(Code::InvalidArgument), Some(Code::Ok)], "deep nesting");
    let mutants = mutants(400);
    codes = grpc_codes(grpc, mutants.iter().map(|b| (HeaderMap::new(), grpc_frame(b))).collect());
    assert_all(&codes, &[Some(Code::InvalidArgument), Some(Code::Ok)], "mutated protobuf over gRPC");
    let statuses = http_statuses(http, &[PROTOBUF], &mutants[..200]);
    assert_all(&statuses, &[400, 200], "mutated protobuf over HTTP");
    tally.add("malformed protobuf", (crafted.len() * 2 + 1 + mutants.len() + 200) as u64);
}

/// `depth` messages each holding the next as field 1: request → resource spans → resource → ...
fn nest(depth: usize) -> Vec<u8> {
    let mut inner = Vec::new();
    for _ in 0..depth {
        let mut outer = vec![0x0a];
        prost::encoding::encode_varint(inner.len() as u64, &mut outer);
        outer.extend_from_slice(&inner);
        inner = outer;
    }
    inner
}

/// Valid requests with 1 to 4 bytes changed, or cut short.
fn mutants(n: u64) -> Vec<Vec<u8>> {
    let mut rng = fastrand::Rng::with_seed(7);
    (0..n)
        .map(|i| {
            let mut b = valid(i);
            if i % 4 == 0 {
                b.truncate(rng.usize(1..b.len()));
            } else {
                for _ in 0..rng.usize(1..=4) {
                    let at = rng.usize(..b.len());
                    b[at] = rng.u8(..);
                }
            }
            b
        })
        .collect()
}

/// Frames whose length prefix lies, and compressed flags that lie about the encoding.
pub fn truncated_and_lying_frames(grpc: SocketAddr, tally: &mut Tally) {
    let body = valid(1);
    let mut short = grpc_frame(&body).to_vec();
    short.truncate(short.len() - 10);
    let mut long = grpc_frame(&body).to_vec();
    long.extend_from_slice(b"trailing");
    let two = [grpc_frame(&body), grpc_frame(&body)].concat();
    let gzip = Encoding::Gzip.encode(&body).unwrap();
    let calls = vec![
        (HeaderMap::new(), Bytes::from(short), Code::Internal),
        (HeaderMap::new(), Bytes::from(long), Code::Internal),
        (HeaderMap::new(), Bytes::from(two), Code::Internal),
        (HeaderMap::new(), Bytes::from_static(&[0, 0, 0]), Code::Internal),
        (HeaderMap::new(), framed(1, &gzip), Code::Internal),
        (headers(&[("grpc-encoding", "gzip")]), framed(1, b"not gzip at all"), Code::Internal),
        (headers(&[("grpc-encoding", "zstd")]), framed(1, &gzip), Code::Internal),
        (headers(&[("grpc-encoding", "snappy")]), framed(1, &gzip), Code::Internal),
        (headers(&[("grpc-encoding", "gzip")]), framed(0, &gzip), Code::InvalidArgument),
        (headers(&[("grpc-encoding", "br")]), framed(1, &gzip), Code::Unimplemented),
    ];
    let want: Vec<_> = calls.iter().map(|c| Some(c.2)).collect();
    let codes = grpc_codes(grpc, calls.into_iter().map(|(h, f, _)| (h, f)).collect());
    assert_eq!(codes, want, "truncated and lying frames");
    tally.add("truncated gRPC frames and lying compression flags", want.len() as u64);
}

/// A stream of `mib` MiB of zeros compressed by `encode`.
fn bomb(mib: usize, mut encoder: impl Write) {
    let zeros = vec![0u8; 1 << 20];
    (0..mib).for_each(|_| encoder.write_all(&zeros).unwrap());
}

fn gzip_bomb(mib: usize) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    bomb(mib, &mut e);
    e.finish().unwrap()
}

fn zstd_bomb(mib: usize) -> Vec<u8> {
    let mut e = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    bomb(mib, &mut e);
    e.finish().unwrap()
}

/// A zstd frame that asks for a 1 GiB window (past the decoder's 16 MiB cap).
const ZSTD_HUGE_WINDOW: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd, 0x00, 0xa0, 0x09, 0x00, 0x00, 0x00];

/// gzip, zstd, deflate and snappy bombs, a huge zstd window, and a doubly gzipped body.
pub fn bombs(grpc: SocketAddr, http: SocketAddr, tally: &mut Tally) {
    let (gzip, zstd) = (gzip_bomb(32), zstd_bomb(256));
    let snappy = Encoding::Snappy.encode(&vec![0u8; 16 << 20]).unwrap();
    let deflate = Encoding::Deflate.encode(&vec![0u8; 16 << 20]).unwrap();
    let double = Encoding::Gzip.encode(&Encoding::Gzip.encode(&valid(2)).unwrap()).unwrap();
    let enc = |name| headers(&[("grpc-encoding", name)]);
    let calls = vec![
        (enc("gzip"), framed(1, &gzip), Code::ResourceExhausted),
        (enc("zstd"), framed(1, &zstd), Code::ResourceExhausted),
        (enc("snappy"), framed(1, &snappy), Code::ResourceExhausted),
        (enc("zstd"), framed(1, ZSTD_HUGE_WINDOW), Code::Internal),
        (enc("gzip"), framed(1, &double), Code::InvalidArgument),
    ];
    let want: Vec<_> = calls.iter().map(|c| Some(c.2)).collect();
    let codes = grpc_codes(grpc, calls.into_iter().map(|(h, f, _)| (h, f)).collect());
    assert_eq!(codes, want, "bombs over gRPC");
    let mut c = Http1::connect(http);
    let mut post = |encoding: &str, body: &[u8]| c.post("/v1/traces", &[PROTOBUF, encoding], body).status;
    let statuses = [
        post("Content-Encoding: gzip", &gzip),
        post("Content-Encoding: zstd", &zstd),
        post("Content-Encoding: deflate", &deflate),
        post("Content-Encoding: zstd", ZSTD_HUGE_WINDOW),
        post("Content-Encoding: gzip", &double),
    ];
    assert_eq!(statuses, [413, 413, 413, 400, 400], "bombs over HTTP");
    tally.add("compression bombs (gzip, zstd, deflate, snappy)", 10);
}

/// Bodies that are not JSON, not an object, not OTLP, or not UTF-8; then random mutations
/// of a valid OTLP/JSON request.
pub fn invalid_json(http: SocketAddr, tally: &mut Tally) {
    let mut crafted: Vec<Vec<u8>> = [
        "",
        "{",
        "}",
        "[]",
        "[1,2]",
        "null",
        "true",
        "\"text\"",
        "{\"resourceSpans\": 5}",
        "{\"resourceSpans\": [1]}",
        "{\"resourceSpans\": [{\"scopeSpans\": [{\"spans\": [{\"traceId\": \"zz\"}]}]}]}",
        "{\"resourceSpans\": [{\"scopeSpans\": [{\"spans\": [{\"kind\": \"x\"}]}]}]}",
        "{\"resourceSpans\": [{\"resource\": {\"attributes\": [{\"key\": \"\\ud800\"}]}}]}",
        "{\"resourceSpans\": [{\"scopeSpans\": [{\"spans\": [{\"startTimeUnixNano\": \"1e99999\"}]}]}]}",
        "{\"resourceSpans\": [] ",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    crafted.push(b"{\"resourceSpans\": [{\"resource\": {\"attributes\": [{\"key\": \"\xff\xfe\"}]}}]}".to_vec());
    crafted.push(b"\xef\xbb\xbf{\"resourceSpans\": []}".to_vec());
    crafted.push([&b"{\"a\":"[..], &vec![b'['; 100_000]].concat());
    crafted.push([&b"{\"a\":"[..], &vec![b'{'; 100_000]].concat());
    let statuses = http_statuses(http, &[JSON], &crafted);
    assert_all(&statuses, &[400], "invalid JSON");
    let json = serde_json::to_vec(&spangen::request("attacker", 6, 2, 1 << 51)).unwrap();
    let mut rng = fastrand::Rng::with_seed(11);
    let mutants: Vec<Vec<u8>> = (0..300)
        .map(|_| {
            let mut b = json.clone();
            let at = rng.usize(..b.len());
            b[at] = *rng.choice(b"{}[]\":,0\\\xff").unwrap();
            b
        })
        .collect();
    assert_all(&http_statuses(http, &[JSON], &mutants), &[400, 200], "mutated JSON");
    tally.add("invalid JSON and invalid UTF-8", (crafted.len() + mutants.len()) as u64);
}

/// Messages and bodies past their limit, and header lists past theirs.
pub fn oversize(grpc: SocketAddr, http: SocketAddr, tally: &mut Tally) {
    let big = spangen::request("attacker", 4000, 2, 1 << 52).encode_to_vec();
    assert!(big.len() > 1 << 20);
    let calls = vec![
        (HeaderMap::new(), grpc_frame(&big)),
        (HeaderMap::new(), Bytes::from_static(&[0, 0xff, 0xff, 0xff, 0xff, 1, 2, 3])),
    ];
    assert_eq!(grpc_codes(grpc, calls), [Some(Code::ResourceExhausted); 2], "oversize gRPC messages");
    assert_eq!(Http1::connect(http).post("/v1/traces", &[PROTOBUF], &big).status, 413);
    assert_eq!(Http1::connect(http).post_chunked("/v1/traces", &[PROTOBUF], &big, 64 << 10).status, 413);
    let mut n = 4;
    n += oversize_headers(grpc, http);
    tally.add("oversize headers and bodies", n);
}

/// A 20 KiB header on gRPC (431 or a reset stream), then 200 headers and a 1 MiB header on
/// HTTP/1.1 (431 or a closed connection).
fn oversize_headers(grpc: SocketAddr, http: SocketAddr) -> u64 {
    let outcome = on_client(move || async move {
        let send = connect(grpc).await;
        let mut send = send.ready().await.unwrap();
        let req = http::Request::post(format!("http://{grpc}{TRACE_EXPORT}"))
            .header("content-type", "application/grpc")
            .header("x-big", "a".repeat(20 << 10))
            .body(())
            .unwrap();
        let (response, _) = send.send_request(req, true).unwrap();
        response.await.map(|r| r.status().as_u16()).map_err(|e| e.to_string())
    });
    assert!(matches!(outcome, Ok(431) | Err(_)), "20 KiB header on gRPC: {outcome:?}");
    let many: Vec<String> = (0..200).map(|i| format!("X-H{i}: v")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let huge = format!("X-Huge: {}", "a".repeat(1 << 20));
    for head in [many, vec![huge.as_str()]] {
        let mut tcp = std::net::TcpStream::connect(http).unwrap();
        let reader = drain(tcp.try_clone().unwrap());
        // The gateway may close before it has read it all: a failed write is expected.
        let _ =
            tcp.write_all(format!("POST /v1/traces HTTP/1.1\r\nHost: x\r\n{}\r\n\r\n", head.join("\r\n")).as_bytes());
        let (closed, answer) = reader.finish(Duration::from_secs(10));
        let text = String::from_utf8_lossy(&answer);
        assert!(closed && (answer.is_empty() || text.starts_with("HTTP/1.1 431")), "oversize HTTP headers: {text}");
    }
    3
}

/// The flood's n-th frame (or frames).
type NextFrame = Box<dyn Fn(u64) -> Vec<u8>>;

/// Each HTTP/2 flood, on both receivers: the connection must be closed.
pub fn h2_floods(grpc: SocketAddr, http: SocketAddr, tally: &mut Tally) {
    let open = frame(HEADERS, END_HEADERS, 1, &export_headers());
    let floods: Vec<(&str, Vec<u8>, NextFrame)> = vec![
        ("PING", vec![], Box::new(|_| frame(PING, 0, 0, &[0; 8]))),
        ("SETTINGS", vec![], Box::new(|_| frame(SETTINGS, 0, 0, &[]))),
        ("empty DATA", open.clone(), Box::new(|_| frame(DATA, 0, 1, &[]))),
        ("empty CONTINUATION", frame(HEADERS, 0, 1, &[]), Box::new(|_| frame(CONTINUATION, 0, 1, &[]))),
        ("WINDOW_UPDATE", vec![], Box::new(|_| frame(WINDOW_UPDATE, 0, 0, &[0, 0, 0, 1]))),
        ("window overflow", vec![], Box::new(|_| frame(WINDOW_UPDATE, 0, 0, &[0x7f, 0xff, 0xff, 0xff]))),
        ("PRIORITY", vec![], Box::new(|_| frame(PRIORITY, 0, 1, &[0, 0, 0, 0, 16]))),
        ("unknown frame type", vec![], Box::new(|_| frame(0xfa, 0, 0, &[]))),
        ("rapid reset", vec![], Box::new(|i| rapid_reset(i as u32))),
    ];
    let mut frames = 0;
    for (name, setup, next) in &floods {
        for (receiver, addr) in [("gRPC", grpc), ("HTTP", http)] {
            let outcome = flood(addr, setup, 200_000, Duration::from_secs(20), next);
            assert!(outcome.closed, "{name} flood on the {receiver} receiver: connection still open");
            frames += outcome.frames;
        }
    }
    tally.add("HTTP/2 flood connections", 2 * floods.len() as u64);
    tally.add("HTTP/2 flood frames sent", frames);
}

/// A request opened and cancelled at once.
fn rapid_reset(i: u32) -> Vec<u8> {
    let stream = 2 * i + 1;
    [frame(HEADERS, END_HEADERS, stream, &export_headers()), frame(RST_STREAM, 0, stream, &[0, 0, 0, 8])].concat()
}

/// Slow clients: a trickled HTTP/2 preface, trickled HTTP/1.1 headers, and an idle HTTP/2
/// connection, each on its own thread; all must be dropped by the gateway's deadlines.
pub fn slowloris(grpc: SocketAddr, http: SocketAddr) -> u64 {
    let preface =
        std::thread::spawn(move || trickle(grpc, PREFACE, Duration::from_millis(500), Duration::from_secs(20)));
    let head = b"POST /v1/traces HTTP/1.1\r\nHost: gateway\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    let headers = std::thread::spawn(move || trickle(http, head, Duration::from_millis(200), Duration::from_secs(20)));
    let idle = std::thread::spawn(move || {
        let mut tcp = std::net::TcpStream::connect(grpc).unwrap();
        tcp.write_all(&[PREFACE, &frame(SETTINGS, 0, 0, &[])].concat()).unwrap();
        drain(tcp).finish(Duration::from_secs(20)).0
    });
    let (took, closed) = preface.join().unwrap();
    assert!(closed && took < Duration::from_secs(20), "trickled preface: closed {closed} after {took:?}");
    let (took, closed) = headers.join().unwrap();
    assert!(closed && took < Duration::from_secs(10), "trickled headers: closed {closed} after {took:?}");
    assert!(idle.join().unwrap(), "an idle HTTP/2 connection is closed after max_connection_idle");
    3
}
