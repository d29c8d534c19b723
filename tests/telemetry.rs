//! Self-telemetry end to end: /metrics counts exactly what the sinks got, refusals are
//! counted, and the health check flips to 503 when no backend is reachable and while draining.
#![allow(clippy::disallowed_methods)] // tests may unwrap (clippy.toml)

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::Bytes;
use common::{ConfigBuilder, connect, export, export_logs, export_metrics, on_client, sinks, wait_until};
use otlp_gateway::config::Signal;
use otlp_gateway::grpc::Code;
use otlp_gateway::tools::signalgen::{logs_request, metrics_request};
use otlp_gateway::tools::spangen::{self, grpc_frame};
use prost::Message;

fn frame(m: &impl Message) -> Bytes {
    grpc_frame(&m.encode_to_vec())
}

/// One HTTP/1.1 GET with a bounded wait: (status, body).
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).expect("response");
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("status line");
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// The value of the sample whose name and labels are exactly `series`.
fn value(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

fn metric(metrics: &str, series: &str) -> f64 {
    value(metrics, series).unwrap_or_else(|| panic!("no `{series}` in\n{metrics}"))
}

#[test]
fn metrics_count_exactly_what_the_sinks_received() {
    let sink = sinks(2);
    let pipelines = [("traces", ""), ("metrics", ""), ("logs", "")];
    let gw = ConfigBuilder::new(&sink.addrs).pipelines(&pipelines).start();
    let (addr, metrics_addr) = (gw.grpc_addr, gw.metrics_addr.expect("metrics endpoint"));
    on_client(move || async move {
        let conn = connect(addr).await;
        for i in 0..10u64 {
            export(&conn, addr, frame(&spangen::request("svc", 30, 3, i))).await.expect("traces");
            export_metrics(&conn, addr, frame(&metrics_request(&format!("svc-{i}"), 2, 5))).await.expect("metrics");
            export_logs(&conn, addr, frame(&logs_request(&format!("svc-{i}"), 7, i))).await.expect("logs");
        }
    });
    let (_, text) = get(metrics_addr, "/metrics");
    let got = |s: Signal| sink.stats.iter().map(|st| st.items(s)).sum::<u64>() as f64;
    assert_eq!(got(Signal::Traces), 300.0);
    assert_eq!(got(Signal::Logs), 70.0);
    let rx = "{receiver=\"otlp\",transport=\"grpc\"}";
    assert_eq!(metric(&text, &format!("otelcol_receiver_accepted_spans_total{rx}")), 300.0);
    assert_eq!(metric(&text, &format!("otelcol_receiver_accepted_metric_points_total{rx}")), got(Signal::Metrics));
    assert_eq!(metric(&text, &format!("otelcol_receiver_accepted_log_records_total{rx}")), 70.0);
    assert_eq!(metric(&text, &format!("otelcol_receiver_refused_spans_total{rx}")), 0.0);
    let ex = "{exporter=\"loadbalancing/traces\"}";
    assert_eq!(metric(&text, &format!("otelcol_exporter_sent_spans_total{ex}")), 300.0);
    let mx = "{exporter=\"loadbalancing/metrics\"}";
    assert_eq!(metric(&text, &format!("otelcol_exporter_sent_metric_points_total{mx}")), got(Signal::Metrics));
    assert_eq!(
        metric(&text, "otelcol_loadbalancer_num_backends{resolver=\"static\"}"),
        6.0,
        "2 backends × 3 exporters"
    );
    let b0 = sink.addrs[0];
    let calls =
        metric(&text, &format!("otelcol_loadbalancer_backend_outcome_total{{endpoint=\"{b0}\",success=\"true\"}}"));
    assert!(calls >= 1.0, "{text}");
    let count = metric(&text, &format!("otelcol_loadbalancer_backend_latency_milliseconds_count{{endpoint=\"{b0}\"}}"));
    assert_eq!(count, calls);
    assert_eq!(metric(&text, "otlp_gateway_core_queue_depth{core=\"0\"}"), 0.0);
    assert!(value(&text, "otlp_gateway_core_connections{core=\"0\"}").is_some(), "{text}");
    gw.shutdown();
    sink.stop();
}

#[test]
fn refusals_are_counted_when_a_backend_fails() {
    let sink = sinks(1);
    let gw = ConfigBuilder::new(&sink.addrs).start();
    let (addr, metrics_addr) = (gw.grpc_addr, gw.metrics_addr.expect("metrics endpoint"));
    sink.stats[0].set_failure(Some(Code::InvalidArgument));
    on_client(move || async move {
        let conn = connect(addr).await;
        export(&conn, addr, frame(&spangen::request("svc", 25, 5, 1))).await.expect_err("sink refuses");
    });
    let (_, text) = get(metrics_addr, "/metrics");
    let rx = "{receiver=\"otlp\",transport=\"grpc\"}";
    assert_eq!(metric(&text, &format!("otelcol_receiver_refused_spans_total{rx}")), 25.0);
    assert_eq!(metric(&text, &format!("otelcol_receiver_accepted_spans_total{rx}")), 0.0);
    let ex = "{exporter=\"loadbalancing/traces\"}";
    assert_eq!(metric(&text, &format!("otelcol_exporter_send_failed_spans_total{ex}")), 25.0);
    let b = sink.addrs[0];
    assert_eq!(
        metric(&text, &format!("otelcol_loadbalancer_backend_outcome_total{{endpoint=\"{b}\",success=\"false\"}}")),
        1.0
    );
    let (status, page) = get(metrics_addr, "/");
    assert_eq!(status, 200);
    assert!(page.contains(&b.to_string()) && page.contains("sink told to fail"), "{page}");
    gw.shutdown();
    sink.stop();
}

#[test]
fn health_is_503_when_no_backend_is_reachable() {
    let sink = sinks(1);
    let gw = ConfigBuilder::new(&sink.addrs).no_retry().health_check().start();
    let (addr, health) = (gw.grpc_addr, gw.health_addr.expect("health endpoint"));
    let (status, body) = get(health, "/");
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("{\"status\":\"Server available\",\"upSince\":\""), "{body}");
    assert_eq!(get(health, "/other").0, 404);
    sink.stop();
    on_client(move || async move {
        let conn = connect(addr).await;
        export(&conn, addr, frame(&spangen::request("svc", 5, 5, 2))).await.expect_err("backend is gone");
    });
    let (status, body) = get(health, "/");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("Server not available"), "{body}");
    gw.shutdown();
}

#[test]
fn health_is_503_while_draining() {
    let sink = sinks(1);
    let gw = ConfigBuilder::new(&sink.addrs).health_check().start();
    let (addr, health, page) = (gw.grpc_addr, gw.health_addr.expect("health endpoint"), gw.metrics_addr.unwrap());
    assert_eq!(get(health, "/").0, 200);
    on_client(move || async move {
        let conn = connect(addr).await;
        export(&conn, addr, frame(&spangen::request("svc", 9, 3, 4))).await.expect("accepted before the drain");
    });
    let accepted = "otelcol_receiver_accepted_spans_total{receiver=\"otlp\",transport=\"grpc\"}";
    assert_eq!(metric(&get(page, "/metrics").1, accepted), 9.0);
    sink.shared.set_delay(Duration::from_millis(1500));
    let client = std::thread::spawn(move || {
        on_client(move || async move {
            let conn = connect(addr).await;
            export(&conn, addr, frame(&spangen::request("svc", 5, 5, 3))).await.is_ok()
        })
    });
    let depth = || value(&get(page, "/metrics").1, "otlp_gateway_core_queue_depth{core=\"0\"}");
    assert!(wait_until(Duration::from_secs(5), || depth() == Some(1.0)), "one part waits on the slow sink");
    assert_eq!(value(&get(page, "/metrics").1, "otlp_gateway_core_streams{core=\"0\"}"), Some(1.0));
    gw.stop_flag().store(true, std::sync::atomic::Ordering::SeqCst);
    let (status, body) = get(health, "/");
    assert_eq!(status, 503, "{body}");
    assert_eq!(metric(&get(page, "/metrics").1, accepted), 9.0, "counters do not reset while draining");
    gw.wait();
    assert!(client.join().unwrap(), "the in-flight request finished during the drain");
    sink.stop();
}

#[test]
fn metrics_level_none_serves_nothing() {
    let sink = sinks(1);
    let gw = ConfigBuilder::new(&sink.addrs).telemetry("    metrics:\n      level: none\n").start();
    assert_eq!(gw.metrics_addr, None);
    gw.shutdown();
    sink.stop();
}

/// Runs headless Chromium on `args` with a 60 s bound; its stdout.
fn chromium(args: &[&str]) -> String {
    use std::process::{Command, Stdio};
    let bin = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|b| Command::new(b).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok());
    let bin = bin.expect("headless Chromium is needed for the status page test: apt-get install chromium");
    let mut child = Command::new(bin)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let t0 = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("chromium did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    out
}

#[test]
fn status_page_shows_backends_and_rates_in_headless_chromium() {
    let sink = sinks(2);
    let gw = ConfigBuilder::new(&sink.addrs).start();
    let (addr, page) = (gw.grpc_addr, gw.metrics_addr.expect("metrics endpoint"));
    let load = std::thread::spawn(move || {
        on_client(move || async move {
            let conn = connect(addr).await;
            let t0 = std::time::Instant::now();
            for i in 0..2_000u64 {
                if t0.elapsed() > Duration::from_secs(3) {
                    break;
                }
                export(&conn, addr, frame(&spangen::request("svc", 50, 5, i))).await.expect("traces");
                glommio::timer::sleep(Duration::from_millis(5)).await;
            }
        })
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(get(page, "/").0, 200, "first load starts the rate window");
    std::thread::sleep(Duration::from_millis(1000));
    let url = format!("http://{page}/");
    let dom = chromium(&["--dump-dom", &url]);
    let shot = format!("{}/status-page.png", env!("CARGO_TARGET_TMPDIR"));
    chromium(&[&format!("--screenshot={shot}"), "--window-size=1100,800", &url]);
    load.join().unwrap();
    for b in &sink.addrs {
        let row = dom.split("<tr class=\"backend\">").find(|r| r.contains(&b.to_string()));
        let row = row.unwrap_or_else(|| panic!("backend {b} not on the page:\n{dom}"));
        assert!(row.contains("reachable"), "{row}");
        let rate: f64 = row.split("class=\"rate\">").nth(1).and_then(|r| r.split('<').next()?.parse().ok()).unwrap();
        assert!(rate > 0.0, "spans/s for {b}: {row}");
    }
    assert!(dom.contains("<tr class=\"core\"><td>0</td>"), "core 0 row:\n{dom}");
    assert!(std::fs::metadata(&shot).map(|m| m.len() > 1000).unwrap_or(false), "screenshot at {shot}");
    gw.shutdown();
    sink.stop();
}

#[test]
fn dns_without_answers_is_not_ready_then_resolutions_and_backends_are_counted() {
    use otlp_gateway::tools::dnsserver::DnsServer;
    const SRV: &str = "_otlp._tcp.telemetry.test";
    let sink = sinks(1);
    let dns = DnsServer::start().unwrap();
    let gw = ConfigBuilder::new(&[]).dns(dns.addr(), SRV, "50ms").health_check().start();
    let (addr, health, page) = (gw.grpc_addr, gw.health_addr.unwrap(), gw.metrics_addr.unwrap());
    let (status, body) = get(health, "/");
    assert_eq!(status, 503, "no backends resolved yet: {body}");
    on_client(move || async move {
        let conn = connect(addr).await;
        export(&conn, addr, frame(&spangen::request("svc", 12, 4, 7))).await.expect_err("no backends");
    });
    let text = get(page, "/metrics").1;
    assert_eq!(metric(&text, "otelcol_receiver_refused_spans_total{receiver=\"otlp\",transport=\"grpc\"}"), 12.0);
    assert_eq!(metric(&text, "otelcol_loadbalancer_num_backends{resolver=\"dns\"}"), 0.0);
    dns.set_ips("s0.telemetry.test", &[[127, 0, 0, 1].into()]);
    dns.set_srv(SRV, &[(sink.addrs[0].port(), "s0.telemetry.test")]);
    assert!(wait_until(Duration::from_secs(5), || get(health, "/").0 == 200), "ready once DNS answers");
    let text = get(page, "/metrics").1;
    assert_eq!(metric(&text, "otelcol_loadbalancer_num_backends{resolver=\"dns\"}"), 1.0);
    assert!(metric(&text, "otelcol_loadbalancer_num_resolutions_total{resolver=\"dns\",success=\"true\"}") >= 1.0);
    assert!(metric(&text, "otelcol_loadbalancer_num_backend_updates_total{resolver=\"dns\"}") >= 1.0);
    gw.shutdown();
    sink.stop();
}

#[test]
fn scrapes_during_a_load_run_grow_and_end_at_what_the_sinks_received() {
    use otlp_gateway::tools::loadgen::{self, LoadgenOpts};
    let sink = sinks(2);
    let gw = ConfigBuilder::new(&sink.addrs).start();
    let page = gw.metrics_addr.expect("metrics endpoint");
    let opts = LoadgenOpts {
        target: gw.grpc_addr,
        duration: Duration::from_millis(1500),
        connections: 2,
        streams: 4,
        ..Default::default()
    };
    let load = std::thread::spawn(move || loadgen::run(opts));
    let accepted = "otelcol_receiver_accepted_spans_total{receiver=\"otlp\",transport=\"grpc\"}";
    let mut seen = Vec::new();
    for _ in 0..40 {
        if load.is_finished() {
            break;
        }
        seen.push(metric(&get(page, "/metrics").1, accepted));
        std::thread::sleep(Duration::from_millis(50));
    }
    let report = load.join().unwrap().unwrap();
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "counters never go down: {seen:?}");
    assert!(seen.iter().any(|&v| v > 0.0), "scrapes during the run saw traffic: {seen:?}");
    let text = get(page, "/metrics").1;
    assert_eq!(report.requests_failed, 0, "{:?}", report.errors);
    assert_eq!(metric(&text, accepted), report.spans_ok as f64);
    assert_eq!(metric(&text, accepted), sink.total_spans() as f64);
    let sent = metric(&text, "otelcol_exporter_sent_spans_total{exporter=\"loadbalancing/traces\"}");
    assert_eq!(sent, sink.total_spans() as f64);
    for (b, st) in sink.addrs.iter().zip(&sink.stats) {
        let calls =
            metric(&text, &format!("otelcol_loadbalancer_backend_outcome_total{{endpoint=\"{b}\",success=\"true\"}}"));
        assert_eq!(calls, st.requests.load(std::sync::atomic::Ordering::Relaxed) as f64, "calls to {b}");
    }
    gw.shutdown();
    sink.stop();
}

#[test]
fn http_requests_count_under_their_receiver_with_transport_http() {
    let sink = sinks(1);
    let gw = ConfigBuilder::new(&sink.addrs).http().start();
    let (addr, metrics_addr) = (gw.grpc_addr, gw.metrics_addr.expect("metrics endpoint"));
    let body = spangen::request("svc", 7, 1, 1).encode_to_vec();
    let mut http = common::http1::Http1::connect(gw.http_addrs[0].1);
    assert_eq!(http.post("/v1/traces", &["Content-Type: application/x-protobuf"], &body).status, 200);
    on_client(
        move || async move { export(&connect(addr).await, addr, frame(&spangen::request("svc", 3, 1, 2))).await },
    )
    .expect("grpc accepted");
    let (_, text) = get(metrics_addr, "/metrics");
    gw.shutdown();
    sink.stop();
    let series = |t: &str| format!("otelcol_receiver_accepted_spans_total{{receiver=\"otlp\",transport=\"{t}\"}}");
    assert_eq!(metric(&text, &series("http")), 7.0, "{text}");
    assert_eq!(metric(&text, &series("grpc")), 3.0, "{text}");
}
