//! Faults on loopback while load runs: a backend refuses, is killed and restarted, hangs; the
//! gateway is stopped. For each: spans sent, acknowledged and received; nothing acknowledged is
//! lost, and no healthy backend receives a span twice.
#![allow(clippy::disallowed_methods)] // tests may unwrap (clippy.toml)

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::traces::TraceTally;
use common::{ConfigBuilder, connect, export, metric, on_client, wait_until};
use glommio::Placement;
use otlp_gateway::grpc::Code;
use otlp_gateway::tools::loadgen::{self, LoadgenOpts, Report};
use otlp_gateway::tools::sink::Sink;
use otlp_gateway::tools::spangen::{self, grpc_frame};
use prost::Message;

const PER_TRACE: usize = 5;

/// One recording sink listener on `addr` (port 0 picks one), on its own executor so that it
/// can be stopped, restarted or slowed alone.
fn sink_at(addr: SocketAddr) -> Sink {
    Sink::start(&[addr], Placement::Unbound, true).expect("sink starts")
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Load for `ms` milliseconds against `target`, `PER_TRACE` spans per trace.
fn load(target: SocketAddr, ms: u64) -> std::thread::JoinHandle<Report> {
    let opts = LoadgenOpts {
        target,
        duration: Duration::from_millis(ms),
        spans_per_trace: PER_TRACE,
        connections: 2,
        streams: 4,
        ..Default::default()
    };
    std::thread::spawn(move || loadgen::run(opts).expect("loadgen runs"))
}

/// Traces received more than once per span (a span is duplicated when its trace has more than
/// `PER_TRACE` spans on one sink), as (traces, extra spans).
fn duplicates(sink: &Sink) -> (usize, u64) {
    TraceTally::of(&[sink]).repeated(PER_TRACE as u64)
}

/// The value of one series on the gateway's `/metrics`.
fn spans(sinks: &[&Sink]) -> u64 {
    sinks.iter().map(|s| s.total_spans()).sum()
}

#[test]
fn a_refusing_backend_gets_its_part_again_and_the_healthy_one_nothing_twice() {
    let (a, b) = (sink_at(loopback()), sink_at(loopback()));
    let gw = ConfigBuilder::new(&[a.addrs[0], b.addrs[0]]).retry("50ms", "10s").never_eject().start();
    b.stats[0].set_failure(Some(Code::Unavailable));
    let addr = gw.grpc_addr;
    let results = on_client(move || async move {
        let conn = connect(addr).await;
        let mut ok = 0;
        for seed in 0..20 {
            let body = grpc_frame(&spangen::request("svc", 100, PER_TRACE, seed * 1000).encode_to_vec());
            ok += u64::from(export(&conn, addr, body).await.is_ok());
        }
        ok
    });
    assert_eq!(results, 20, "queued parts are acknowledged");
    assert_eq!(b.total_spans(), 0, "the refusing backend took nothing yet");
    let queued = metric(&gw, "otlp_gateway_core_retry_queue_items{core=\"0\"}");
    let healthy = a.total_spans();
    b.stats[0].set_failure(None);
    assert!(wait_until(Duration::from_secs(10), || spans(&[&a, &b]) == 2000), "queued parts arrive");
    gw.shutdown();
    assert_eq!(a.total_spans(), healthy, "the healthy backend got nothing again");
    assert_eq!(queued, Some(b.total_spans()), "/metrics showed exactly what was queued");
    assert_eq!((duplicates(&a), duplicates(&b)), ((0, 0), (0, 0)));
    assert!(healthy > 0 && b.total_spans() > 0);
}

#[test]
fn a_killed_and_restarted_backend_loses_nothing_acknowledged() {
    let (a, b) = (sink_at(loopback()), sink_at(loopback()));
    let b_addr = b.addrs[0];
    let gw = ConfigBuilder::new(&[a.addrs[0], b_addr]).retry("100ms", "30s").queue(20_000).start();
    let run = load(gw.grpc_addr, 2500);
    std::thread::sleep(Duration::from_millis(600));
    let old = b.stats[0].clone();
    b.stop();
    let before = old.spans();
    let down = Instant::now();
    std::thread::sleep(Duration::from_millis(1000));
    let b = sink_at(b_addr);
    let report = run.join().expect("load thread");
    let all = |n| spans(&[&a, &b]) + before >= n;
    let arrived = wait_until(Duration::from_secs(15), || all(report.spans_ok));
    let got = spans(&[&a, &b]) + before;
    assert!(arrived, "queued parts arrive after the restart: {got} of {} ({report:?})", report.spans_ok);
    let recovered = down.elapsed();
    gw.shutdown();
    eprintln!(
        "kill/restart: acked {} failed requests {} received {} (before kill {before}) dup {:?}/{:?} recovered in {recovered:?}",
        report.spans_ok,
        report.requests_failed,
        spans(&[&a, &b]) + before,
        duplicates(&a),
        duplicates(&b)
    );
    assert!(report.spans_ok > 1000, "load ran: {}", report.spans_ok);
    assert_eq!(report.requests_failed, 0, "{:?}", report.errors);
    assert_eq!(spans(&[&a, &b]) + before, report.spans_ok, "every acknowledged span arrived exactly once");
    assert_eq!(duplicates(&a), (0, 0), "the healthy backend got no duplicates");
    let mut restarted = old.traces();
    for (trace, n) in b.stats[0].traces() {
        *restarted.entry(trace).or_insert(0) += n;
    }
    let twice = restarted.values().filter(|&&n| n > PER_TRACE as u64).count();
    assert_eq!(twice, 0, "no span reached the killed backend both before and after its restart");
}

/// Spans received, counting each trace at most `PER_TRACE` times (duplicates left out).
fn unique_spans(sinks: &[&Sink]) -> u64 {
    TraceTally::of(sinks).unique_spans(PER_TRACE as u64)
}

/// The process's peak resident memory (gateway, sinks and load generator together), in MiB.
fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap_or("VmHWM: 0 kB");
    line.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()).unwrap_or(0) / 1024
}

#[test]
fn a_hanging_backend_times_out_and_its_parts_arrive_when_it_answers_again() {
    let (a, b) = (sink_at(loopback()), sink_at(loopback()));
    let gw = ConfigBuilder::new(&[a.addrs[0], b.addrs[0]]).timeout("300ms").retry("100ms", "30s").queue(20_000).start();
    b.shared.set_delay(Duration::from_secs(3));
    let run = load(gw.grpc_addr, 2000);
    std::thread::sleep(Duration::from_millis(1500));
    b.shared.set_delay(Duration::ZERO);
    let report = run.join().expect("load thread");
    let arrived = wait_until(Duration::from_secs(20), || unique_spans(&[&a, &b]) >= report.spans_ok);
    gw.shutdown();
    eprintln!(
        "hang: acked {} failed requests {} received {} unique {} dup a {:?} b {:?} p99 {:?} peak rss {} MiB",
        report.spans_ok,
        report.requests_failed,
        spans(&[&a, &b]),
        unique_spans(&[&a, &b]),
        duplicates(&a),
        duplicates(&b),
        report.percentile(0.99),
        peak_rss_mib()
    );
    assert!(arrived, "every acknowledged span arrives once the backend answers again");
    assert!(report.spans_ok > 1000, "load ran: {}", report.spans_ok);
    assert_eq!(report.requests_failed, 0, "{:?}", report.errors);
    assert_eq!(unique_spans(&[&a, &b]), report.spans_ok, "nothing more than what was acknowledged");
    assert_eq!(duplicates(&a), (0, 0), "the healthy backend got no duplicates");
}

#[test]
fn sigterm_under_load_delivers_everything_acknowledged() {
    let (a, b) = (sink_at(loopback()), sink_at(loopback()));
    let gw = ConfigBuilder::new(&[a.addrs[0], b.addrs[0]]).retry("100ms", "30s").queue(20_000).start();
    b.stats[0].set_failure(Some(Code::Unavailable));
    let run = load(gw.grpc_addr, 2000);
    std::thread::sleep(Duration::from_millis(800));
    let recover = std::thread::spawn({
        let stats = b.stats[0].clone();
        move || {
            std::thread::sleep(Duration::from_millis(300));
            stats.set_failure(None);
        }
    });
    let t0 = Instant::now();
    gw.shutdown();
    let stopped = t0.elapsed();
    let report = run.join().expect("load thread");
    recover.join().expect("recover thread");
    eprintln!(
        "sigterm: acked {} failed requests {} received {} unique {} dup a {:?} b {:?} stop took {stopped:?} peak rss {} MiB",
        report.spans_ok,
        report.requests_failed,
        spans(&[&a, &b]),
        unique_spans(&[&a, &b]),
        duplicates(&a),
        duplicates(&b),
        peak_rss_mib()
    );
    assert!(report.spans_ok > 1000, "load ran: {}", report.spans_ok);
    assert!(report.requests_failed > 0, "the load outlived the gateway");
    assert!(unique_spans(&[&a, &b]) >= report.spans_ok, "everything acknowledged was delivered before exit");
    assert_eq!(spans(&[&a, &b]), unique_spans(&[&a, &b]), "no duplicates");
}

/// Whether every trace on `sinks[i]` for `i` in `check` is one it may hold on the ring of all
/// `sinks`: its owner's, or (`failover_from`, a ring index) the next owner up of that one's.
fn placed_by_ring(sinks: &[Sink], check: &[usize], failover_from: Option<usize>) -> bool {
    use otlp_gateway::routing::ring::hash_key;
    let names: Vec<String> = sinks.iter().map(|s| s.addrs[0].to_string()).collect();
    let ring = otlp_gateway::routing::Ring::new(&names).expect("ring");
    let allowed = |me: usize, h: u64| {
        let owner = ring.lookup(h);
        owner == me || failover_from == Some(owner) && ring.lookup_up(h, |i| i != owner) == Some(me)
    };
    let misplaced = |&i: &usize| {
        let me = ring.backends().iter().position(|n| *n == names[i]).expect("on the ring");
        let traces = sinks[i].stats[0].traces();
        let bad = traces.keys().filter(|t| !allowed(me, hash_key(t))).count();
        if bad > 0 {
            eprintln!("sink {i}: {bad} of {} traces misplaced", traces.len());
        }
        bad
    };
    check.iter().map(misplaced).sum::<usize>() == 0
}

const FAST_EJECT: &str = "    resilience:\n      mode: MODE\n      eject_after: 3\n      probe_interval: 100ms\n";

/// Kills the middle of three sinks under load and restarts it; returns the sinks and the report.
fn kill_and_restart_one_of_three(mode: &str) -> (Vec<Sink>, Vec<u64>, Report, Duration) {
    let sinks: Vec<Sink> = (0..3).map(|_| sink_at(loopback())).collect();
    let addrs: Vec<SocketAddr> = sinks.iter().map(|s| s.addrs[0]).collect();
    let resilience = FAST_EJECT.replace("MODE", mode);
    let gw = ConfigBuilder::new(&addrs).retry("100ms", "30s").queue(20_000).exporter_extra(&resilience).start();
    let run = load(gw.grpc_addr, 3000);
    let mut sinks = sinks;
    std::thread::sleep(Duration::from_millis(500));
    let old = sinks.remove(1);
    let old_stats = old.stats[0].clone();
    old.stop();
    std::thread::sleep(Duration::from_millis(1200));
    sinks.insert(1, sink_at(addrs[1]));
    let report = run.join().expect("load thread");
    let refs: Vec<&Sink> = sinks.iter().collect();
    let t0 = Instant::now();
    let all = |n| spans(&refs) + old_stats.spans() >= n;
    assert!(wait_until(Duration::from_secs(20), || all(report.spans_ok)), "acknowledged spans arrive");
    let settled = t0.elapsed();
    gw.shutdown();
    let before = vec![old_stats.spans()];
    (sinks, before, report, settled)
}

#[test]
fn a_dead_backend_fails_over_to_the_next_owner_and_comes_back() {
    let (sinks, before, report, settled) = kill_and_restart_one_of_three("failover");
    let refs: Vec<&Sink> = sinks.iter().collect();
    eprintln!(
        "failover: acked {} failed {} received {} dups {:?} restarted got {} settled {settled:?} peak rss {} MiB",
        report.spans_ok,
        report.requests_failed,
        spans(&refs) + before[0],
        refs.iter().map(|s| duplicates(s)).collect::<Vec<_>>(),
        sinks[1].total_spans(),
        peak_rss_mib()
    );
    assert_eq!(report.requests_failed, 0, "{:?}", report.errors);
    assert_eq!(spans(&refs) + before[0], report.spans_ok, "every acknowledged span arrived exactly once");
    assert!(refs.iter().all(|s| duplicates(s) == (0, 0)));
    assert!(sinks[1].total_spans() > 0, "the restarted backend is probed back into routing");
    let names: Vec<String> = sinks.iter().map(|s| s.addrs[0].to_string()).collect();
    let down = otlp_gateway::routing::Ring::new(&names).unwrap().backends().iter().position(|n| *n == names[1]);
    assert!(placed_by_ring(&sinks, &[0, 2], down), "its keys went to their next owner, nowhere else");
}

#[test]
fn hold_keeps_a_dead_backends_keys_until_it_is_back() {
    let (sinks, before, report, settled) = kill_and_restart_one_of_three("hold");
    let refs: Vec<&Sink> = sinks.iter().collect();
    eprintln!(
        "hold: acked {} failed {} received {} restarted got {} settled {settled:?}",
        report.spans_ok,
        report.requests_failed,
        spans(&refs) + before[0],
        sinks[1].total_spans()
    );
    assert_eq!(report.requests_failed, 0, "{:?}", report.errors);
    assert_eq!(spans(&refs) + before[0], report.spans_ok, "every acknowledged span arrived exactly once");
    assert!(placed_by_ring(&sinks, &[0, 1, 2], None), "every trace is on its own ring owner");
}

#[test]
fn a_full_queue_refuses_whole_requests_so_retries_duplicate_nothing() {
    let (a, b) = (sink_at(loopback()), sink_at(loopback()));
    // A long max_elapsed: on a loaded machine queued parts must not expire before the backend
    // is back (expiry is tested in tests/faults.rs's hang and SIGTERM cases, not here).
    let gw = ConfigBuilder::new(&[a.addrs[0], b.addrs[0]]).retry("50ms", "120s").queue(5).never_eject().start();
    b.stats[0].set_failure(Some(Code::Unavailable));
    let addr = gw.grpc_addr;
    let codes = on_client(move || async move {
        let conn = connect(addr).await;
        let mut codes = Vec::new();
        for seed in 0..20 {
            let body = grpc_frame(&spangen::request("svc", 100, PER_TRACE, seed * 1000).encode_to_vec());
            codes.push(match export(&conn, addr, body).await {
                Ok(_) => Code::Ok,
                Err(otlp_gateway::exporter::ExportError::Rejected(s)) => s.code,
                Err(e) => panic!("{e}"),
            });
        }
        codes
    });
    let refused = codes.iter().filter(|&&c| c == Code::ResourceExhausted).count();
    let acked = codes.iter().filter(|&&c| c == Code::Ok).count() as u64;
    assert_eq!(acked + refused as u64, 20, "{codes:?}");
    assert!(refused >= 10, "backpressure once five parts wait: {codes:?}");
    b.stats[0].set_failure(None);
    assert!(wait_until(Duration::from_secs(30), || spans(&[&a, &b]) >= acked * 100), "queued parts arrive");
    std::thread::sleep(Duration::from_millis(200));
    gw.shutdown();
    assert_eq!(spans(&[&a, &b]), acked * 100, "refused requests delivered nothing anywhere");
}

#[test]
fn a_removed_backends_queue_is_routed_to_the_new_owner() {
    let (a, b) = (sink_at(loopback()), sink_at(loopback()));
    let mut gw = ConfigBuilder::new(&[a.addrs[0], b.addrs[0]]).retry("50ms", "30s").never_eject().start();
    b.stats[0].set_failure(Some(Code::Unavailable));
    let addr = gw.grpc_addr;
    let acked = on_client(move || async move {
        let conn = connect(addr).await;
        let mut ok = 0;
        for seed in 0..10 {
            let body = grpc_frame(&spangen::request("svc", 100, PER_TRACE, seed * 1000).encode_to_vec());
            ok += u64::from(export(&conn, addr, body).await.is_ok());
        }
        ok
    });
    assert_eq!(acked, 10);
    gw.reload(&ConfigBuilder::new(&[a.addrs[0]]).retry("50ms", "30s").never_eject().build()).expect("reload");
    assert!(wait_until(Duration::from_secs(5), || a.total_spans() == 1000), "the new owner got the queued parts");
    gw.shutdown();
    assert_eq!((b.total_spans(), duplicates(&a)), (0, (0, 0)));
}

#[test]
fn sigterm_delivers_queued_parts_without_waiting_out_their_backoff() {
    let (a, b) = (sink_at(loopback()), sink_at(loopback()));
    // A 20 s retry interval, longer than the 3 s drain deadline: only hurrying delivers in time.
    let config = ConfigBuilder::new(&[a.addrs[0], b.addrs[0]]).retry("20000ms", "300s").never_eject();
    let gw = config.drain_timeout("3s").start();
    b.stats[0].set_failure(Some(Code::Unavailable));
    let addr = gw.grpc_addr;
    let acked = on_client(move || async move {
        let conn = connect(addr).await;
        let mut ok = 0;
        for seed in 0..10 {
            let body = grpc_frame(&spangen::request("svc", 100, PER_TRACE, seed * 1000).encode_to_vec());
            ok += u64::from(export(&conn, addr, body).await.is_ok());
        }
        ok
    });
    b.stats[0].set_failure(None);
    gw.shutdown();
    assert_eq!(acked, 10);
    assert_eq!(spans(&[&a, &b]), 1000, "everything acknowledged was delivered before the gateway exited");
    assert_eq!((duplicates(&a), duplicates(&b)), ((0, 0), (0, 0)));
}

#[test]
fn overload_against_a_refusing_backend_stays_within_the_queue_bound() {
    let (a, b) = (sink_at(loopback()), sink_at(loopback()));
    let queue = "    sending_queue:\n      queue_size: 100000\n      max_size_mib: 4\n";
    // Uncompressed parts (the builder's default), so that 2 s of load overfills the 4 MiB bound.
    // A generous `timeout`: on a starved CI machine the 4 MiB flush after recovery may take
    // seconds, and a part answered after its timeout is (rightly) sent again, a duplicate.
    let config = ConfigBuilder::new(&[a.addrs[0], b.addrs[0]]).retry("100ms", "30s").never_eject().timeout("30s");
    let gw = config.exporter_extra(queue).start();
    b.stats[0].set_failure(Some(Code::Unavailable));
    let opts = LoadgenOpts {
        target: gw.grpc_addr,
        duration: Duration::from_millis(2000),
        spans_per_trace: PER_TRACE,
        connections: 4,
        streams: 32,
        ..Default::default()
    };
    let run = std::thread::spawn(move || loadgen::run(opts).expect("loadgen runs"));
    let series = "otlp_gateway_core_retry_queue_bytes{core=\"0\"}";
    let mut peak = 0;
    for _ in 0..40 {
        peak = peak.max(metric(&gw, series).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(50));
    }
    let report = run.join().expect("load thread");
    let exhausted = report.errors.iter().filter(|(e, _)| e.contains("ResourceExhausted")).map(|(_, n)| n).sum::<u64>();
    b.stats[0].set_failure(None);
    let delivered = wait_until(Duration::from_secs(20), || unique_spans(&[&a, &b]) >= report.spans_ok);
    gw.shutdown();
    eprintln!(
        "overload: acked {} refused {exhausted} other errors {} peak queue {peak} bytes, received {} peak rss {} MiB",
        report.spans_ok,
        report.requests_failed - exhausted,
        spans(&[&a, &b]),
        peak_rss_mib()
    );
    assert!(peak > 0 && peak <= 4 << 20, "queue bytes stay within max_size_mib: {peak}");
    assert!(exhausted > 0, "clients are pushed back: {:?}", report.errors);
    assert_eq!(report.requests_failed, exhausted, "{:?}", report.errors);
    assert!(delivered, "everything acknowledged arrives once the backend is back");
    assert_eq!(unique_spans(&[&a, &b]), spans(&[&a, &b]), "no duplicates");
    assert_eq!(spans(&[&a, &b]), report.spans_ok, "refused requests delivered nothing anywhere");
}

/// Backends of fixed capacity, offered ten times that: the core's request memory stays within
/// `request_memory_mib`, clients are pushed back with RESOURCE_EXHAUSTED, and everything
/// acknowledged arrives once, after the backlog drains.
#[test]
fn ten_times_overload_stays_within_the_configured_request_memory() {
    const CAPACITY: u64 = 2_000; // spans/s per backend
    let sinks: Vec<Sink> = (0..3).map(|_| sink_at(loopback())).collect();
    sinks.iter().for_each(|s| s.stats[0].set_max_rate(CAPACITY));
    let addrs: Vec<SocketAddr> = sinks.iter().map(|s| s.addrs[0]).collect();
    let gw = ConfigBuilder::new(&addrs).request_memory_mib(8).timeout("20s").never_eject().start();
    let opts = LoadgenOpts {
        target: gw.grpc_addr,
        rate: Some(10 * 3 * CAPACITY),
        duration: Duration::from_millis(3000),
        spans_per_trace: PER_TRACE,
        connections: 8,
        streams: 64,
        ..Default::default()
    };
    let run = std::thread::spawn(move || loadgen::run(opts).expect("loadgen runs"));
    let report = run.join().expect("load thread");
    let refs: Vec<&Sink> = sinks.iter().collect();
    let delivered = wait_until(Duration::from_secs(30), || unique_spans(&refs) >= report.spans_ok);
    let peak = metric(&gw, "otlp_gateway_core_bytes_in_flight_peak{core=\"0\"}");
    gw.shutdown();
    let exhausted = report.errors.iter().filter(|(e, _)| e.contains("ResourceExhausted")).map(|(_, n)| n).sum::<u64>();
    eprintln!(
        "10x overload: requests {} acked spans {} refused {exhausted} other errors {} peak request bytes {peak:?} received {}",
        report.requests_ok + report.requests_failed,
        report.spans_ok,
        report.requests_failed - exhausted,
        spans(&refs)
    );
    let peak = peak.expect("the peak gauge is exported");
    assert!(peak > 4 << 20 && peak <= 8 << 20, "request memory reached, and held, its 8 MiB bound: {peak}");
    assert!(exhausted > 0, "clients are pushed back: {:?}", report.errors);
    assert_eq!(report.requests_failed, exhausted, "{:?}", report.errors);
    assert!(delivered, "everything acknowledged arrives");
    assert_eq!(unique_spans(&refs), spans(&refs), "no duplicates");
    assert_eq!(spans(&refs), report.spans_ok, "refused requests delivered nothing");
}
