//! Backends found through DNS (a real DNS server on loopback, SRV records) join, leave and
//! are replaced while load runs: nothing acknowledged is lost or duplicated.
#![allow(clippy::disallowed_methods)] // tests may unwrap (clippy.toml)

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::traces::TraceTally;
use common::{ConfigBuilder, connect, export, on_client, sinks, wait_until};
use otlp_gateway::tools::dnsserver::DnsServer;
use otlp_gateway::tools::loadgen::{self, LoadgenOpts};
use otlp_gateway::tools::spangen::{self, grpc_frame};
use prost::Message;

const SRV: &str = "_otlp._tcp.collectors.test";

/// Publishes the sinks at `which` as the SRV targets `s<i>.test`.
fn publish(dns: &DnsServer, sinks: &[SocketAddr], which: &[usize]) {
    let loopback: IpAddr = [127, 0, 0, 1].into();
    let names: Vec<String> = which.iter().map(|i| format!("s{i}.test")).collect();
    for n in &names {
        dns.set_ips(n, &[loopback]);
    }
    let targets: Vec<(u16, &str)> = which.iter().zip(&names).map(|(&i, n)| (sinks[i].port(), n.as_str())).collect();
    dns.set_srv(SRV, &targets);
}

/// Sends one small request until the gateway has backends and accepts it.
fn until_routing(addr: SocketAddr) -> bool {
    on_client(move || async move {
        let conn = connect(addr).await;
        for i in 0..200 {
            let body = grpc_frame(&spangen::request("probe", 1, 1, 1_000_000 + i).encode_to_vec());
            if export(&conn, addr, body).await.is_ok() {
                return true;
            }
            glommio::timer::sleep(Duration::from_millis(25)).await;
        }
        false
    })
}

#[test]
fn backends_join_leave_and_are_replaced_under_load_without_loss() {
    let sink = sinks(3);
    let dns = DnsServer::start().unwrap();
    publish(&dns, &sink.addrs, &[0, 1]);
    let gw = ConfigBuilder::new(&[]).dns(dns.addr(), SRV, "50ms").start();
    assert!(until_routing(gw.grpc_addr), "the gateway routes once DNS answers");
    let probes = sink.total_spans();
    let opts = LoadgenOpts {
        target: gw.grpc_addr,
        duration: Duration::from_millis(4000),
        spans_per_trace: 5,
        connections: 2,
        streams: 4,
        ..Default::default()
    };
    let load = std::thread::spawn(move || loadgen::run(opts));
    std::thread::sleep(Duration::from_millis(500));
    publish(&dns, &sink.addrs, &[0, 1, 2]);
    assert!(wait_until(Duration::from_secs(2), || sink.stats[2].spans() > 0), "a joining backend gets traffic");
    publish(&dns, &sink.addrs, &[1, 2]);
    let quiet = |ms| {
        let before = sink.stats[0].spans();
        std::thread::sleep(Duration::from_millis(ms));
        sink.stats[0].spans() == before
    };
    assert!(wait_until(Duration::from_secs(5), || quiet(200)), "a backend that left stops getting traffic");
    let left = sink.stats[0].spans();
    assert!(quiet(400), "a backend that left gets nothing new");
    publish(&dns, &sink.addrs, &[0, 2]);
    let report = load.join().unwrap().unwrap();
    gw.shutdown();
    let per_sink: Vec<u64> = sink.stats.iter().map(|s| s.spans()).collect();
    eprintln!(
        "membership: acked {} received {} (probes {probes}) per sink {per_sink:?} failed requests {} p99 {} us",
        report.spans_ok,
        sink.total_spans(),
        report.requests_failed,
        report.latencies_us.get(report.latencies_us.len() * 99 / 100).copied().unwrap_or(0)
    );
    assert!(report.spans_ok > 1000, "load ran: {}", report.spans_ok);
    assert_eq!(report.requests_failed, 0, "{:?}", report.errors);
    assert_eq!(sink.total_spans(), probes + report.spans_ok, "every acknowledged span arrived exactly once");
    assert!(sink.stats[0].spans() > left, "a replaced-in backend gets traffic again");
    // Membership changes move keys, but a request's traces move whole and nothing is sent twice.
    assert_eq!(TraceTally::of(&[&sink]).split_or_repeated(5), 0, "each trace whole on one backend, once");
    sink.stop();
}
