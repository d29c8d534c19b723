//! Tools of the hostile-input suite: raw HTTP/2 frames written over a plain socket, legitimate
//! load that records what was acknowledged, and a watch on this process's memory (the gateway
//! runs in it).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use otlp_gateway::grpc::TRACE_EXPORT;
use otlp_gateway::tools::spangen::{self, grpc_frame};
use prost::Message;

use super::http1::Http1;
use super::{connect, export, on_client};

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Frame types.
pub const DATA: u8 = 0;
pub const HEADERS: u8 = 1;
pub const PRIORITY: u8 = 2;
pub const RST_STREAM: u8 = 3;
pub const SETTINGS: u8 = 4;
pub const PING: u8 = 6;
pub const WINDOW_UPDATE: u8 = 8;
pub const CONTINUATION: u8 = 9;
pub const END_STREAM: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;

/// One HTTP/2 frame.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u32).to_be_bytes();
    let mut out = vec![len[1], len[2], len[3], kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The HPACK block of a gRPC trace export request, from static-table and literal fields.
pub fn export_headers() -> Vec<u8> {
    let mut b = vec![0x83, 0x86]; // :method POST, :scheme http
    literal(&mut b, &[0x01], b"gw"); // :authority
    literal(&mut b, &[0x04], TRACE_EXPORT.as_bytes()); // :path
    literal(&mut b, &[0x0f, 0x10], b"application/grpc"); // content-type (index 31)
    b
}

/// A literal field without indexing: `name` (index prefix bytes) and a short `value`.
pub fn literal(block: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    block.extend_from_slice(name);
    hpack_len(block, value.len());
    block.extend_from_slice(value);
}

/// An HPACK string length (7-bit prefix, no Huffman).
fn hpack_len(block: &mut Vec<u8>, mut n: usize) {
    if n < 127 {
        return block.push(n as u8);
    }
    block.push(127);
    n -= 127;
    while n >= 128 {
        block.push((n % 128 + 128) as u8);
        n /= 128;
    }
    block.push(n as u8);
}

/// What a raw connection attack saw.
#[derive(Debug)]
pub struct Outcome {
    /// Attack frames written before the connection broke (or all of them).
    pub frames: u64,
    /// Whether the gateway closed the connection within the wait.
    pub closed: bool,
    /// Everything the gateway sent.
    pub received: Vec<u8>,
}

/// Connects, sends the preface, an empty SETTINGS and `setup`, then up to `count` frames made
/// by `next`, while a reader drains the answers; waits up to `wait` for the gateway to close.
pub fn flood(addr: SocketAddr, setup: &[u8], count: u64, wait: Duration, next: impl Fn(u64) -> Vec<u8>) -> Outcome {
    let mut tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let reader = drain(tcp.try_clone().unwrap());
    let mut out = [PREFACE, &frame(SETTINGS, 0, 0, &[]), setup].concat();
    let mut frames = 0;
    for i in 0..count {
        out.extend(next(i));
        frames += 1;
        if out.len() >= 16 << 10 && tcp.write_all(&std::mem::take(&mut out)).is_err() {
            break;
        }
    }
    let _ = tcp.write_all(&out);
    let (closed, received) = reader.finish(wait);
    Outcome { frames, closed, received }
}

/// Reads a connection to its end on a thread.
pub struct Drain {
    done: std::sync::mpsc::Receiver<Vec<u8>>,
    closed: Arc<AtomicBool>,
    stream: TcpStream,
}

pub fn drain(stream: TcpStream) -> Drain {
    let (tx, done) = std::sync::mpsc::channel();
    let mut reader = stream.try_clone().unwrap();
    let closed = Arc::new(AtomicBool::new(false));
    let seen = closed.clone();
    std::thread::spawn(move || {
        let (mut all, mut buf) = (Vec::new(), vec![0; 64 << 10]);
        while let Ok(n @ 1..) = reader.read(&mut buf) {
            all.extend_from_slice(&buf[..n.min(buf.len())]);
            all.truncate(1 << 20);
        }
        seen.store(true, Ordering::SeqCst);
        let _ = tx.send(all);
    });
    Drain { done, closed, stream }
}

impl Drain {
    /// Whether the peer closed within `wait`, and what it sent; closes our end either way.
    pub fn finish(self, wait: Duration) -> (bool, Vec<u8>) {
        let got = self.done.recv_timeout(wait);
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        match got {
            Ok(bytes) => (true, bytes),
            Err(_) => (false, self.done.recv_timeout(Duration::from_secs(5)).unwrap_or_default()),
        }
    }
}

/// Sends `bytes` one at a time, `every` apart, until the peer closes (or all are sent);
/// returns how long the gateway let it trickle, and whether it closed.
pub fn trickle(addr: SocketAddr, bytes: &[u8], every: Duration, wait: Duration) -> (Duration, bool) {
    let start = Instant::now();
    let mut tcp = TcpStream::connect(addr).expect("connect");
    let reader = drain(tcp.try_clone().unwrap());
    for b in bytes {
        if tcp.write_all(&[*b]).is_err() || reader_done(&reader) {
            break;
        }
        std::thread::sleep(every);
    }
    let (closed, _) = reader.finish(wait);
    (start.elapsed(), closed)
}

fn reader_done(d: &Drain) -> bool {
    d.closed.load(Ordering::SeqCst)
}

/// Legitimate clients sending valid trace exports until stopped: one on gRPC, one on
/// OTLP/HTTP, each on its own connection. Each request has its own seed, so its trace ids
/// tell whether it arrived.
pub struct Legit {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Vec<u64>>>,
    pub failed: Arc<AtomicU64>,
}

/// Spans per legitimate request, and per trace.
pub const LEGIT_SPANS: usize = 10;
pub const LEGIT_PER_TRACE: usize = 2;

impl Legit {
    pub fn start(grpc: SocketAddr, http: SocketAddr) -> Legit {
        let (stop, failed) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
        let (s, f) = (stop.clone(), failed.clone());
        let grpc = std::thread::spawn(move || on_client(move || grpc_load(grpc, s, f)));
        let (s, f) = (stop.clone(), failed.clone());
        let http = std::thread::spawn(move || http_load(http, s, f));
        Legit { stop, threads: vec![grpc, http], failed }
    }

    /// Stops the clients; the seeds of every acknowledged request.
    pub fn stop(self) -> Vec<u64> {
        self.stop.store(true, Ordering::SeqCst);
        self.threads.into_iter().flat_map(|t| t.join().unwrap()).collect()
    }
}

fn legit_request(seed: u64) -> Vec<u8> {
    spangen::request("legit", LEGIT_SPANS, LEGIT_PER_TRACE, seed).encode_to_vec()
}

async fn grpc_load(addr: SocketAddr, stop: Arc<AtomicBool>, failed: Arc<AtomicU64>) -> Vec<u64> {
    let send = connect(addr).await;
    let mut acked = Vec::new();
    for seed in 1.. {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        match export(&send, addr, grpc_frame(&legit_request(seed))).await {
            Ok(_) => acked.push(seed),
            Err(_) => {
                failed.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    acked
}

fn http_load(addr: SocketAddr, stop: Arc<AtomicBool>, failed: Arc<AtomicU64>) -> Vec<u64> {
    let mut c = Http1::connect(addr);
    let mut acked = Vec::new();
    for seed in (1u64 << 40).. {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let reply = c.post("/v1/traces", &["Content-Type: application/x-protobuf"], &legit_request(seed));
        if reply.status == 200 {
            acked.push(seed);
        } else {
            failed.fetch_add(1, Ordering::SeqCst);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    acked
}

/// The trace ids (and spans each) acknowledged requests with `seeds` carried.
pub fn expected_traces(seeds: &[u64]) -> Vec<(Vec<u8>, u64)> {
    let traces = (LEGIT_SPANS / LEGIT_PER_TRACE) as u64;
    let per = LEGIT_PER_TRACE as u64;
    seeds.iter().flat_map(|&s| (0..traces).map(move |n| (spangen::trace_id(s, n).to_vec(), per))).collect()
}

/// Process `pid`'s (`self`: this one's) resident memory now and at its peak, in KiB
/// (`VmRSS` and `VmHWM` of `/proc/<pid>/status`).
pub fn rss_kib(pid: &str) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap()
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Samples process `pid`'s resident memory every 10 ms until dropped; the highest sample.
pub struct MemoryWatch {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<u64>>,
}

impl MemoryWatch {
    pub fn start(pid: &str) -> MemoryWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let (s, pid) = (stop.clone(), pid.to_string());
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            while !s.load(Ordering::SeqCst) {
                peak = peak.max(rss_kib(&pid).0);
                std::thread::sleep(Duration::from_millis(10));
            }
            peak
        });
        MemoryWatch { stop, thread: Some(thread) }
    }

    /// The highest resident memory seen, in KiB.
    pub fn peak(mut self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().map_or(0, |t| t.join().unwrap())
    }
}

/// A gRPC frame around `payload`, with `flag` as its compressed flag.
pub fn framed(flag: u8, payload: &[u8]) -> Bytes {
    let mut f = grpc_frame(payload).to_vec();
    f[0] = flag;
    Bytes::from(f)
}
