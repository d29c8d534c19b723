//! The hostile-input suite: every class of bad input a peer can send, each while legitimate
//! clients export on other connections. Each input gets its error (gRPC status, HTTP status)
//! or, for protocol abuse, a closed connection; every acknowledged legitimate span reaches a
//! backend; the process's memory stays under a stated bound. Counts and memory are printed
//! (run with `--nocapture`) for docs/security-limits.md.
#![allow(clippy::disallowed_methods)] // tests may unwrap (clippy.toml)

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use common::attack::*;
use common::{ConfigBuilder, refused, refused_at, sinks, wait_until};

#[path = "hostile/classes.rs"]
mod classes;
#[path = "hostile/target.rs"]
mod target;

/// Resident memory the gateway may reach: with the gateway in this process, the whole test
/// process (gateway, sinks, clients, attack inputs) is measured.
const RSS_BOUND_MIB: u64 = 768;

/// Inputs tried per class.
#[derive(Default)]
pub struct Tally(BTreeMap<&'static str, u64>);

impl Tally {
    pub fn add(&mut self, class: &'static str, n: u64) {
        *self.0.entry(class).or_default() += n;
    }
}

#[test]
fn attacks_get_their_errors_while_legitimate_load_loses_nothing() {
    let sink = sinks(2);
    let gw = target::Target::start(
        &ConfigBuilder::new(&sink.addrs)
            .max_recv_mib(1)
            .http_max_body(1 << 20)
            .http_setting("read_header_timeout: 1s")
            .grpc_setting("keepalive:\n          server_parameters:\n            max_connection_idle: 2s\n            max_connection_age_grace: 1s"),
    );
    let (grpc, http) = (gw.grpc, gw.http);
    let (rss_before, _) = rss_kib(&gw.pid);
    let memory = MemoryWatch::start(&gw.pid);
    let legit = Legit::start(grpc, http);
    let slow = std::thread::spawn(move || classes::slowloris(grpc, http));
    let mut tally = Tally::default();
    classes::malformed_protobuf(grpc, http, &mut tally);
    classes::truncated_and_lying_frames(grpc, &mut tally);
    classes::bombs(grpc, http, &mut tally);
    classes::invalid_json(http, &mut tally);
    classes::oversize(grpc, http, &mut tally);
    classes::h2_floods(grpc, http, &mut tally);
    tally.add("slowloris and idle connections", slow.join().unwrap());
    let failed = legit.failed.load(std::sync::atomic::Ordering::SeqCst);
    let seeds = legit.stop();
    let expected = expected_traces(&seeds);
    let delivered = || {
        let got: std::collections::HashMap<Vec<u8>, u64> = sink.stats.iter().flat_map(|s| s.traces()).collect();
        expected.iter().filter(|(id, n)| got.get(id) != Some(n)).count()
    };
    wait_until(Duration::from_secs(10), || delivered() == 0);
    let lost = delivered();
    let peak = memory.peak();
    let (_, hwm) = rss_kib(&gw.pid);
    let floods = refused_at(gw.metrics, "h2_flood");
    let measured = if gw.is_child() { "the gateway process" } else { "the whole test process" };
    gw.stop();
    println!("hostile inputs tried per class:");
    tally.0.iter().for_each(|(class, n)| println!("  {class}: {n}"));
    let spans = expected.len() as u64 * LEGIT_PER_TRACE as u64;
    println!("legitimate: {} requests acknowledged ({spans} spans), {failed} refused, {lost} traces lost", seeds.len());
    println!(
        "resident memory of {measured}: {} MiB before the attacks, {} MiB peak sampled every 10 ms, VmHWM {} MiB",
        rss_before >> 10,
        peak >> 10,
        hwm >> 10
    );
    // PING, SETTINGS, WINDOW_UPDATE, PRIORITY and unknown frames are not limited by h2 itself.
    assert!(floods >= 10, "the flood guard closed {floods} connections");
    assert!(seeds.len() > 20, "legitimate load flowed: {} requests", seeds.len());
    assert_eq!(lost, 0, "every acknowledged legitimate span arrived");
    assert_eq!(failed, 0, "no legitimate request was refused");
    assert!(peak >> 10 < RSS_BOUND_MIB, "peak RSS {} MiB", peak >> 10);
    sink.stop();
}

#[test]
fn connections_past_the_core_limit_are_closed_at_once() {
    let sink = sinks(1);
    let gw = ConfigBuilder::new(&sink.addrs).runtime_setting("max_connections_per_core: 8").start();
    let held: Vec<_> = (0..8).map(|_| open_h2(gw.grpc_addr)).collect();
    let extra = std::net::TcpStream::connect(gw.grpc_addr).unwrap();
    let (closed, _) = drain(extra).finish(Duration::from_secs(5));
    assert!(closed, "the ninth connection is closed");
    assert_eq!(refused(&gw, "connection_limit"), 1);
    drop(held);
    let ok = wait_until(Duration::from_secs(5), || {
        let (closed, _) = drain(open_h2(gw.grpc_addr)).finish(Duration::from_millis(300));
        !closed
    });
    gw.shutdown();
    assert!(ok, "a slot frees when a connection closes");
    sink.stop();
}

/// A connection that sent its preface and SETTINGS and waits.
fn open_h2(addr: SocketAddr) -> std::net::TcpStream {
    use std::io::Write;
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.write_all(&[PREFACE, &frame(SETTINGS, 0, 0, &[])].concat()).unwrap();
    tcp
}

#[test]
fn old_and_idle_connections_are_asked_to_leave() {
    let sink = sinks(1);
    let gw = ConfigBuilder::new(&sink.addrs)
        .grpc_setting("keepalive:\n          server_parameters:\n            max_connection_idle: 0s\n            max_connection_age: 300ms\n            max_connection_age_grace: 500ms")
        .http()
        .http_setting("idle_timeout: 300ms")
        .start();
    let body = otlp_gateway::tools::spangen::request("svc", 4, 2, 9);
    let framed = otlp_gateway::tools::spangen::grpc_frame(&prost::Message::encode_to_vec(&body));
    let grpc = gw.grpc_addr;
    let (first, later) = common::on_client(move || async move {
        let send = common::connect(grpc).await;
        let first = common::export(&send, grpc, framed.clone()).await.is_ok();
        glommio::timer::sleep(Duration::from_millis(1500)).await;
        (first, common::export(&send, grpc, framed).await.is_ok())
    });
    let mut http = common::http1::Http1::connect(gw.http_addrs[0].1);
    let ok = http.post("/v1/traces", &["Content-Type: application/x-protobuf"], &prost::Message::encode_to_vec(&body));
    std::thread::sleep(Duration::from_millis(1000));
    let idle_closed = http.is_closed();
    gw.shutdown();
    assert!(first, "a request before max_connection_age is served");
    assert!(!later, "the connection is gone after max_connection_age and its grace");
    assert_eq!(ok.status, 200);
    assert!(idle_closed, "an HTTP connection idle past idle_timeout is closed");
    assert_eq!(sink.total_spans(), 8);
    sink.stop();
}
