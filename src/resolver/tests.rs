//! The resolver against a real DNS server on loopback (`tools::dnsserver`): real queries over
//! UDP, short intervals, every wait bounded.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{ResolverHandle, Stats, lookup, spawn};
use crate::config::{DnsRecordType, DnsResolver};
use crate::tools::dnsserver::{DnsServer, Mode};

const NAME: &str = "collectors.test";
const INTERVAL: Duration = Duration::from_millis(50);
/// Longest wait for something that should happen within an interval or two.
const PATIENCE: Duration = Duration::from_secs(5);

fn cfg(dns: &DnsServer, hostname: &str, record_type: DnsRecordType) -> DnsResolver {
    DnsResolver {
        hostname: hostname.into(),
        port: 4317,
        interval: INTERVAL,
        timeout: Duration::from_millis(200),
        nameserver: Some(dns.addr()),
        record_type,
    }
}

fn addrs(list: &[&str]) -> Vec<SocketAddr> {
    list.iter().map(|a| a.parse().unwrap()).collect()
}

fn ips(list: &[&str]) -> Vec<std::net::IpAddr> {
    list.iter().map(|a| a.parse().unwrap()).collect()
}

/// A running resolver and the updates it delivered.
struct Watch {
    updates: mpsc::Receiver<Vec<SocketAddr>>,
    handle: ResolverHandle,
}

impl Watch {
    fn start(cfg: &DnsResolver) -> Watch {
        let (tx, updates) = mpsc::channel();
        let handle = spawn(cfg, move |list| {
            let _ = tx.send(list);
        })
        .unwrap();
        Watch { updates, handle }
    }

    fn next(&self) -> Vec<SocketAddr> {
        self.updates.recv_timeout(PATIENCE).expect("an update within 5 s")
    }

    /// Waits until `done(stats)` holds (bounded), then checks no update came meanwhile.
    fn quiet_until(&self, done: impl Fn(Stats) -> bool) {
        wait_for(|| done(self.handle.stats()));
        assert_eq!(self.updates.try_recv().ok(), None, "unexpected update");
    }

    /// Lets `n` more refreshes finish; none may deliver an update.
    fn quiet_for(&self, n: u64) {
        let start = self.handle.stats().resolutions;
        self.quiet_until(|s| s.resolutions >= start + n);
    }
}

fn wait_for(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "condition not met within 5 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `ips` at port 4317, sorted: what the resolver reports for them.
fn at_4317(list: &[&str]) -> Vec<SocketAddr> {
    let mut want: Vec<SocketAddr> = ips(list).into_iter().map(|ip| SocketAddr::new(ip, 4317)).collect();
    want.sort_unstable();
    want
}

/// A server where `NAME` has `list`, and a resolver that has delivered that list.
fn resolving(list: &[&str]) -> (DnsServer, Watch) {
    let dns = DnsServer::start().unwrap();
    dns.set_ips(NAME, &ips(list));
    let watch = Watch::start(&cfg(&dns, NAME, DnsRecordType::Ip));
    assert_eq!(watch.next(), at_4317(list));
    (dns, watch)
}

const SRV: &str = "_otlp._tcp.collectors.test";

/// A server with an SRV record per `(port, target, ips)` (no `ips`: the target does not exist),
/// and a resolver asking for SRV.
fn srv_resolving(targets: &[(u16, &str, &[&str])]) -> (DnsServer, Watch) {
    let dns = DnsServer::start().unwrap();
    let records: Vec<(u16, &str)> = targets.iter().map(|(port, target, _)| (*port, *target)).collect();
    dns.set_srv(SRV, &records);
    for (_, target, list) in targets.iter().filter(|(_, _, list)| !list.is_empty()) {
        dns.set_ips(target, &ips(list));
    }
    let watch = Watch::start(&cfg(&dns, SRV, DnsRecordType::Srv));
    (dns, watch)
}

#[test]
fn initial_resolution_reads_a_and_aaaa() {
    let (_dns, watch) = resolving(&["127.0.0.3", "::1", "127.0.0.2"]);
    watch.quiet_for(3);
    let stats = watch.handle.stats();
    assert_eq!((stats.updates, stats.failures), (1, 0));
}

#[test]
fn added_removed_and_replaced_records_give_one_update_each() {
    let (dns, watch) = resolving(&["127.0.0.2"]);
    let steps: [&[&str]; 3] = [&["127.0.0.2", "127.0.0.3"], &["127.0.0.3"], &["127.0.0.4"]];
    for step in steps {
        dns.set_ips(NAME, &ips(step));
        assert_eq!(watch.next(), at_4317(step), "{step:?}");
        watch.quiet_for(3);
    }
    assert_eq!(watch.handle.stats().updates, 4);
}

#[test]
fn reordered_answers_are_not_an_update() {
    let (dns, watch) = resolving(&["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
    dns.set_ips(NAME, &ips(&["127.0.0.4", "127.0.0.2", "127.0.0.3", "127.0.0.2"]));
    watch.quiet_for(4);
}

#[test]
fn servfail_keeps_the_last_good_list() {
    let (dns, watch) = resolving(&["127.0.0.2"]);
    dns.set_mode(Mode::ServFail);
    watch.quiet_until(|s| s.failures >= 3);
    dns.set_ips(NAME, &ips(&["127.0.0.3"]));
    dns.set_mode(Mode::Answer);
    assert_eq!(watch.next(), addrs(&["127.0.0.3:4317"]));
}

#[test]
fn timeout_keeps_the_last_good_list() {
    let (dns, watch) = resolving(&["127.0.0.2"]);
    dns.set_mode(Mode::Drop);
    watch.quiet_until(|s| s.failures >= 2);
    dns.set_mode(Mode::Answer);
    watch.quiet_for(2);
    dns.set_ips(NAME, &ips(&["127.0.0.3"]));
    assert_eq!(watch.next(), addrs(&["127.0.0.3:4317"]));
}

#[test]
fn no_such_name_or_no_records_keeps_the_last_good_list() {
    let (dns, watch) = resolving(&["127.0.0.2"]);
    dns.remove(NAME);
    watch.quiet_until(|s| s.failures >= 2);
    dns.set_ips(NAME, &[]);
    watch.quiet_until(|s| s.failures >= 4);
    dns.set_ips(NAME, &ips(&["127.0.0.2"]));
    watch.quiet_for(2);
}

#[test]
fn first_resolution_fails_then_succeeds() {
    let dns = DnsServer::start().unwrap();
    dns.set_mode(Mode::ServFail);
    let started = Instant::now();
    let watch = Watch::start(&cfg(&dns, NAME, DnsRecordType::Ip));
    assert!(started.elapsed() < Duration::from_millis(500), "spawn must not wait for DNS");
    watch.quiet_until(|s| s.failures >= 2);
    dns.set_ips(NAME, &ips(&["127.0.0.2"]));
    dns.set_mode(Mode::Answer);
    assert_eq!(watch.next(), addrs(&["127.0.0.2:4317"]));
}

#[test]
fn srv_records_give_each_backend_its_port() {
    let a: (u16, &str, &[&str]) = (4317, "a.collectors.test", &["127.0.0.2"]);
    let (dns, watch) =
        srv_resolving(&[a, (5317, "b.collectors.test", &["127.0.0.3", "::1"]), (6317, "gone.collectors.test", &[])]);
    assert_eq!(watch.next(), addrs(&["127.0.0.2:4317", "127.0.0.3:5317", "[::1]:5317"]));
    dns.set_srv(SRV, &[(4318, "a.collectors.test")]);
    assert_eq!(watch.next(), addrs(&["127.0.0.2:4318"]));
    watch.quiet_for(2);
}

#[test]
fn srv_target_failure_keeps_the_last_good_list() {
    let a: (u16, &str, &[&str]) = (4317, "a.collectors.test", &["127.0.0.2"]);
    let (dns, watch) = srv_resolving(&[a, (5317, "b.collectors.test", &["127.0.0.3"])]);
    assert_eq!(watch.next(), addrs(&["127.0.0.2:4317", "127.0.0.3:5317"]));
    for mode in [Mode::ServFail, Mode::Drop] {
        dns.set_name_mode("b.collectors.test", Some(mode));
        let failures = watch.handle.stats().failures;
        watch.quiet_until(|s| s.failures >= failures + 2);
    }
    dns.set_name_mode("b.collectors.test", None);
    dns.remove("b.collectors.test");
    assert_eq!(watch.next(), addrs(&["127.0.0.2:4317"]), "a target that does not exist is gone");
}

#[test]
fn srv_with_no_usable_target_keeps_the_last_good_list() {
    let (dns, watch) = srv_resolving(&[(4317, "a.collectors.test", &["127.0.0.2"])]);
    watch.next();
    dns.remove("a.collectors.test");
    watch.quiet_until(|s| s.failures >= 2);
    dns.set_srv(SRV, &[(4317, ".")]);
    watch.quiet_until(|s| s.failures >= 4);
}

#[test]
fn nameserver_option_queries_only_that_server() {
    let dns = DnsServer::start().unwrap();
    let (config, opts) = lookup::settings(&cfg(&dns, NAME, DnsRecordType::Ip)).unwrap();
    assert!(config.name_servers().iter().all(|ns| ns.socket_addr == dns.addr()));
    assert!(config.search().is_empty() && config.domain().is_none());
    assert_eq!((opts.timeout, opts.attempts, opts.cache_size), (Duration::from_millis(200), 1, 0));
    dns.set_ips(NAME, &ips(&["127.0.0.2"]));
    let before = dns.queries();
    Watch::start(&cfg(&dns, NAME, DnsRecordType::Ip)).next();
    assert!(dns.queries() >= before + 2, "A and AAAA went to the configured server");
}

#[test]
fn without_nameserver_the_system_configuration_is_used() {
    // Only reads /etc/resolv.conf: no query leaves this machine.
    let Ok((system, _)) = hickory_resolver::system_conf::read_system_conf() else { return };
    let dns = DnsServer::start().unwrap();
    let cfg = DnsResolver { nameserver: None, ..cfg(&dns, NAME, DnsRecordType::Ip) };
    let (config, opts) = lookup::settings(&cfg).unwrap();
    let servers = |c: &hickory_resolver::config::ResolverConfig| -> Vec<SocketAddr> {
        c.name_servers().iter().map(|ns| ns.socket_addr).collect()
    };
    assert_eq!(servers(&config), servers(&system));
    assert_eq!((opts.timeout, opts.cache_size), (Duration::from_millis(200), 0));
}

#[test]
fn stop_is_prompt_even_during_a_refresh() {
    let dns = DnsServer::start().unwrap();
    dns.set_mode(Mode::Drop);
    let slow = DnsResolver { timeout: Duration::from_secs(30), ..cfg(&dns, NAME, DnsRecordType::Ip) };
    let watch = Watch::start(&slow);
    wait_for(|| dns.queries() >= 1);
    let started = Instant::now();
    watch.handle.stop();
    assert!(started.elapsed() < Duration::from_millis(500), "stop took {:?}", started.elapsed());
}

#[test]
fn dropping_the_handle_stops_the_queries() {
    let (dns, watch) = resolving(&["127.0.0.2"]);
    drop(watch);
    let after = dns.queries();
    std::thread::sleep(INTERVAL * 4);
    assert_eq!(dns.queries(), after);
}
