//! A core's fixed memory, and the bound on its memory under overload (docs/faults.md,
//! "Memory"): many connections sending large requests as fast as their HTTP/2 windows allow to
//! backends that answer slowly.
//! The gateway runs as a child process (`OTLP_GATEWAY_BIN`, or the one cargo built with the
//! tests) so that its resident memory is its own. Print the figures with `--nocapture`.
#![allow(clippy::disallowed_methods)] // tests may unwrap (clippy.toml)

mod common;
#[path = "hostile/target.rs"]
mod target;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::ConfigBuilder;
use common::attack::rss_kib;
use otlp_gateway::exporter::error::ExportError;
use otlp_gateway::grpc::Code;
use otlp_gateway::tools::spangen;

/// `request_memory_mib`: small, so that HTTP/2 windows alone (16 MiB a connection before they
/// came from the core's pool) would break it many times over.
const REQUEST_MEMORY_MIB: u64 = 16;
const CONNECTIONS: usize = 32;
/// Requests each connection keeps in flight.
const STREAMS: usize = 16;
/// Spans per request: about 350 KB, so that one connection alone can fill a 16 MiB window.
const SPANS: usize = 1000;
const LOAD: Duration = Duration::from_secs(3);
/// What one busy connection may hold outside the request memory (docs/faults.md): its 64 KiB
/// read-ahead, h2's read buffer (up to a 256 KiB frame) and write buffer, and its 64 KiB
/// window when the pool is spent.
const CONNECTION_KIB: u64 = 400;
/// Allocator slack and the exporter's connections.
const SLACK_MIB: u64 = 8;
const ALLOWANCE_MIB: u64 = CONNECTIONS as u64 * CONNECTION_KIB / 1024 + SLACK_MIB;
/// Fixed memory of an idle core, generously: about 1 MiB measured (release build).
const PER_CORE_MIB: u64 = 4;
/// The rest of an idle process (code, control plane, telemetry), generously: one core measured
/// 22 MiB in all as a debug build (what `cargo test` runs), 8 MiB as a release build; with
/// glommio's default pools it was 20 MiB more.
const PROCESS_MIB: u64 = 24;

#[test]
fn overload_from_many_connections_stays_within_base_plus_request_memory() {
    let sink = common::sinks(3);
    sink.shared.set_delay(Duration::from_millis(200));
    let config = ConfigBuilder::new(&sink.addrs).http_max_body(4 << 20).request_memory_mib(REQUEST_MEMORY_MIB);
    let gw = target::Target::start_child(&config);
    std::thread::sleep(Duration::from_millis(300));
    let (base, _) = rss_kib(&gw.pid);
    let body = prost::Message::encode_to_vec(&spangen::request("svc", SPANS, 5, 1));
    let (ok, exhausted, other) = overload(gw.grpc, spangen::grpc_frame(&body));
    let (_, peak) = rss_kib(&gw.pid);
    gw.stop();
    sink.stop();
    let (base, peak, bound) = (base >> 10, peak >> 10, (base >> 10) + REQUEST_MEMORY_MIB + ALLOWANCE_MIB);
    eprintln!(
        "{CONNECTIONS}×{STREAMS} requests of {} KB against request_memory_mib {REQUEST_MEMORY_MIB}: {ok} acknowledged, {exhausted} refused, {other} other errors; RSS {base} MiB before, VmHWM {peak} MiB (bound {bound} MiB)",
        body.len() >> 10
    );
    assert!(ok > 0, "load flowed");
    assert!(exhausted > 0, "the load was over the budget");
    assert!(peak <= bound, "peak RSS {peak} MiB > {base} MiB base + {REQUEST_MEMORY_MIB} MiB + {ALLOWANCE_MIB} MiB");
}

/// What a core holds before any load (its io_uring rings, listeners, ring copy and backend
/// connections) stays small: glommio's default storage-I/O pool alone, registered with io_uring
/// and so resident from the start, was 10 MiB per executor (`runtime::executor` takes 64 KiB).
#[test]
fn a_core_adds_little_fixed_memory() {
    assert!(std::thread::available_parallelism().map_or(0, |n| n.get()) >= 2, "this test needs 2 CPUs");
    let sink = common::sinks(3);
    let config = ConfigBuilder::new(&sink.addrs).http();
    let idle_mib = |cores: &str| {
        let gw = target::Target::start_child_on(&config, cores);
        std::thread::sleep(Duration::from_millis(300));
        let (rss, _) = rss_kib(&gw.pid);
        gw.stop();
        rss >> 10
    };
    let (one, two) = (idle_mib("0"), idle_mib("0-1"));
    sink.stop();
    eprintln!("idle gateway: {one} MiB resident on 1 core, {two} MiB on 2");
    assert!(two.saturating_sub(one) <= PER_CORE_MIB, "the second core added {} MiB", two.saturating_sub(one));
    assert!(one <= PER_CORE_MIB + PROCESS_MIB, "one core: {one} MiB");
}

/// `CONNECTIONS` connections × `STREAMS` callers, each sending `framed` again as soon as it is
/// answered, for `LOAD`: (acknowledged, refused with RESOURCE_EXHAUSTED, other failures).
fn overload(addr: SocketAddr, framed: Bytes) -> (u64, u64, u64) {
    common::on_client(move || async move {
        let deadline = Instant::now() + LOAD;
        let mut callers = Vec::new();
        for _ in 0..CONNECTIONS {
            let send = common::connect(addr).await;
            for _ in 0..STREAMS {
                let (send, framed) = (send.clone(), framed.clone());
                callers.push(glommio::spawn_local(async move {
                    let mut n = [0; 3];
                    while Instant::now() < deadline {
                        n[outcome(common::export(&send, addr, framed.clone()).await)] += 1;
                    }
                    n
                }));
            }
        }
        let mut total = [0; 3];
        for caller in callers {
            let n = caller.await;
            (0..3).for_each(|i| total[i] += n[i]);
        }
        (total[0], total[1], total[2])
    })
}

/// 0: acknowledged, 1: RESOURCE_EXHAUSTED, 2: anything else.
fn outcome(result: Result<Bytes, ExportError>) -> usize {
    match result {
        Ok(_) => 0,
        Err(ExportError::Rejected(s)) if s.code == Code::ResourceExhausted => 1,
        Err(e) => {
            eprintln!("other error: {e}");
            2
        }
    }
}
