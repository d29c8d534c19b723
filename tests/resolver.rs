//! The DNS resolver from outside the crate, as the control plane will use it: the in-process DNS
//! server (`tools::dnsserver`) changes records, and each update becomes a new ring.
#![allow(clippy::disallowed_methods)] // tests may unwrap (clippy.toml)

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

use otlp_gateway::config::{DnsRecordType, DnsResolver};
use otlp_gateway::resolver::{self, backend_names};
use otlp_gateway::routing::Ring;
use otlp_gateway::tools::dnsserver::{DnsServer, Mode};

fn next(updates: &mpsc::Receiver<Vec<SocketAddr>>) -> Ring {
    let list = updates.recv_timeout(Duration::from_secs(5)).expect("an update within 5 s");
    Ring::new(&backend_names(&list)).expect("updates are never empty")
}

#[test]
fn records_changing_under_the_resolver_become_new_rings() {
    let dns = DnsServer::start().unwrap();
    dns.set_ips("collectors.test", &["127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap()]);
    let cfg = DnsResolver {
        hostname: "collectors.test".into(),
        port: 4317,
        interval: Duration::from_millis(50),
        timeout: Duration::from_millis(200),
        nameserver: Some(dns.addr()),
        record_type: DnsRecordType::Ip,
    };
    let (tx, updates) = mpsc::channel();
    let handle = resolver::spawn(&cfg, move |list| {
        let _ = tx.send(list);
    })
    .unwrap();
    assert_eq!(next(&updates).backends(), ["127.0.0.2:4317", "127.0.0.3:4317"]);
    dns.set_mode(Mode::ServFail);
    dns.set_ips("collectors.test", &["127.0.0.4".parse().unwrap()]);
    assert!(updates.recv_timeout(Duration::from_millis(300)).is_err(), "a failing server changes nothing");
    dns.set_mode(Mode::Answer);
    assert_eq!(next(&updates).backends(), ["127.0.0.4:4317"]);
    let stats = handle.stats();
    assert!(stats.failures >= 1 && stats.updates == 2, "{stats:?}");
    handle.stop();
}
