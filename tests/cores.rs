//! More than one core: the kernel's SO_REUSEPORT hashing spreads client connections over the
//! cores' listeners, and every core routes alike.

#![allow(clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use common::{ConfigBuilder, connect, export, metric, on_client, sinks};
use otlp_gateway::Gateway;
use otlp_gateway::tools::spangen::{self, grpc_frame};
use prost::Message;

const CONNECTIONS: usize = 64;

/// Open connections per core, read while the client holds `CONNECTIONS` of them open.
fn connections_per_core(gw: &Gateway) -> (Vec<u64>, u64) {
    let addr = gw.grpc_addr;
    let core = |c: usize| metric(gw, &format!("otlp_gateway_core_connections{{core=\"{c}\"}}")).unwrap_or(0);
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (opened_tx, opened_rx) = std::sync::mpsc::channel::<u64>();
    let client = std::thread::spawn(move || {
        on_client(move || async move {
            let mut held = Vec::new();
            let mut ok = 0;
            for i in 0..CONNECTIONS {
                let conn = connect(addr).await;
                let body = grpc_frame(&spangen::request("svc", 10, 5, i as u64).encode_to_vec());
                ok += u64::from(export(&conn, addr, body).await.is_ok());
                held.push(conn);
            }
            opened_tx.send(ok).expect("report");
            let _ = rx.recv_timeout(Duration::from_secs(20));
        })
    });
    let ok = opened_rx.recv_timeout(Duration::from_secs(30)).expect("client opened its connections");
    let per_core = vec![core(0), core(1)];
    tx.send(()).expect("release");
    client.join().expect("client");
    (per_core, ok)
}

#[test]
fn reuseport_spreads_connections_over_both_cores() {
    assert!(std::thread::available_parallelism().map_or(0, |n| n.get()) >= 2, "this test needs 2 CPUs");
    let sink = sinks(1);
    let gw = Gateway::start(&ConfigBuilder::new(&sink.addrs).build(), Some(vec![0, 1])).expect("gateway starts");
    let (per_core, ok) = connections_per_core(&gw);
    gw.shutdown();
    eprintln!("connections per core: {per_core:?}, requests ok {ok}");
    assert_eq!(ok, CONNECTIONS as u64, "every connection's request was served");
    assert_eq!(per_core.iter().sum::<u64>(), CONNECTIONS as u64, "{per_core:?}");
    // Binomial(64, 1/2): 16..=48 is eight standard deviations wide.
    assert!(per_core.iter().all(|&n| (16..=48).contains(&n)), "uneven spread: {per_core:?}");
    assert_eq!(sink.total_spans(), 10 * CONNECTIONS as u64);
}
