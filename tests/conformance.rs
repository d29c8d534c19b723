//! Conformance with real clients: the official OpenTelemetry Python SDK exporters (pinned in
//! tests/python/requirements.txt, installed by .ci/run into .ci/.venv) send traces, metrics and
//! logs over OTLP/gRPC (plain and gzip) and OTLP/HTTP protobuf (plain and gzip) through the
//! gateway to in-process sinks; every item must arrive once, with its name and attributes.
//!
//! The interpreter is `$OTLP_GATEWAY_PYTHON`, else `.ci/.venv/bin/python`, else `python3`. A
//! missing interpreter or package fails the test: it never skips. The same SDK runs through
//! NGINX in front of two gateways, and the collector project's `telemetrygen` (Go) sends
//! over both protocols.
#![allow(clippy::disallowed_methods)] // tests may unwrap (clippy.toml)

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;

use common::{ConfigBuilder, sinks};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use otlp_gateway::config::Signal;
use prost::Message;

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("OTLP_GATEWAY_PYTHON") {
        return p.into();
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".ci/.venv/bin/python");
    if venv.exists() { venv } else { "python3".into() }
}

/// Runs the client script; what it says it sent.
fn run_client(mode: &str, endpoint: std::net::SocketAddr, tag: &str) -> serde_json::Value {
    run_client_with(mode, endpoint, tag, &[])
}

/// [`run_client`] with more arguments (the CA file of the `-tls` modes).
fn run_client_with(mode: &str, endpoint: std::net::SocketAddr, tag: &str, extra: &[&str]) -> serde_json::Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/otlp_clients.py");
    let python = python();
    let out =
        // requests lets these variables override the exporter's own `certificate_file`.
        Command::new(&python)
            .args([script, mode, &endpoint.to_string(), tag])
            .args(extra)
            .env_remove("REQUESTS_CA_BUNDLE")
            .env_remove("CURL_CA_BUNDLE")
            .output()
            .unwrap_or_else(
            |e| panic!("cannot run {}: {e} (run .ci/run, or set OTLP_GATEWAY_PYTHON)", python.display()),
        );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{mode}: the client failed ({}):\n{stderr}", out.status);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{mode}: bad output {e}: {stderr}"))
}

/// What the sinks received, by item: span names with their `i`, log bodies with their `i`,
/// metric names with their point count.
#[derive(Default, Debug)]
struct Arrived {
    spans: BTreeMap<String, Vec<i64>>,
    logs: BTreeMap<String, Vec<i64>>,
    points: BTreeMap<String, usize>,
}

fn int_attr(attrs: &[KeyValue], key: &str) -> i64 {
    let value = attrs.iter().find(|a| a.key == key).and_then(|a| a.value.as_ref()).and_then(|v| v.value.as_ref());
    match value {
        Some(Value::IntValue(i)) => *i,
        other => panic!("attribute {key}: {other:?}"),
    }
}

fn text(v: &Option<AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        other => format!("{other:?}"),
    }
}

impl Arrived {
    fn take(&mut self, signal: Signal, body: &[u8]) {
        match signal {
            Signal::Traces => {
                let req = ExportTraceServiceRequest::decode(body).unwrap();
                let spans = req.resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans);
                spans.for_each(|s| self.spans.entry(s.name.clone()).or_default().push(int_attr(&s.attributes, "i")));
            }
            Signal::Logs => {
                let req = ExportLogsServiceRequest::decode(body).unwrap();
                let logs = req.resource_logs.iter().flat_map(|r| &r.scope_logs).flat_map(|s| &s.log_records);
                logs.for_each(|l| self.logs.entry(text(&l.body)).or_default().push(int_attr(&l.attributes, "i")));
            }
            Signal::Metrics => {
                let req = ExportMetricsServiceRequest::decode(body).unwrap();
                let metrics = req.resource_metrics.iter().flat_map(|r| &r.scope_metrics).flat_map(|s| &s.metrics);
                for m in metrics {
                    let Some(Data::Sum(sum)) = &m.data else { panic!("{}: not a sum", m.name) };
                    *self.points.entry(m.name.clone()).or_default() += sum.data_points.len();
                }
            }
        }
    }
}

/// Checks that everything `sent` (the script's report for `tag`) arrived exactly once.
fn check(arrived: &Arrived, sent: &serde_json::Value, tag: &str) {
    let names = |key: &str| -> Vec<String> {
        sent[key].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
    };
    for (i, name) in names("spans").iter().enumerate() {
        assert_eq!(arrived.spans.get(name), Some(&vec![i as i64]), "{tag}: span {name}");
    }
    for (i, body) in names("logs").iter().enumerate() {
        assert_eq!(arrived.logs.get(body), Some(&vec![i as i64]), "{tag}: log {body}");
    }
    let metric = sent["metric"].as_str().unwrap();
    assert_eq!(arrived.points.get(metric).copied(), sent["points"].as_u64().map(|n| n as usize), "{tag}: {metric}");
}

#[test]
fn python_sdk_exporters_over_grpc_and_http_arrive_intact() {
    let sink = sinks(2);
    sink.stats.iter().for_each(|s| s.keep_bodies());
    let gw = ConfigBuilder::new(&sink.addrs)
        .pipelines(&[("traces", ""), ("metrics", ""), ("logs", "")])
        .http()
        .default_compression()
        .start();
    let (grpc, http) = (gw.grpc_addr, gw.http_addrs[0].1);
    let runs = [("grpc", grpc, "g"), ("grpc-gzip", grpc, "gz"), ("http", http, "h"), ("http-gzip", http, "hz")];
    let sent: Vec<_> = runs.iter().map(|(mode, addr, tag)| (*tag, run_client(mode, *addr, tag))).collect();
    gw.shutdown();
    let mut arrived = Arrived::default();
    for stats in &sink.stats {
        stats.bodies().iter().for_each(|(signal, body)| arrived.take(*signal, body));
    }
    sink.stop();
    for (tag, sent) in &sent {
        check(&arrived, sent, tag);
    }
    assert_eq!(arrived.spans.len(), 100);
    assert_eq!(arrived.logs.len(), 60);
}

#[test]
fn python_sdk_exporters_over_tls_arrive_intact() {
    let pki = common::certs::Pki::new("conformance-tls");
    let sink = sinks(1);
    sink.stats.iter().for_each(|s| s.keep_bodies());
    let tls = pki.server_tls("");
    let builder = ConfigBuilder::new(&sink.addrs).pipelines(&[("traces", ""), ("metrics", ""), ("logs", "")]);
    let yaml = common::certs::with_grpc_tls(&builder.http().http_setting(&format!("tls: {tls}")).yaml(), &tls);
    let gw = otlp_gateway::Gateway::start(&otlp_gateway::config::parse_str(&yaml).unwrap(), Some(vec![0])).unwrap();
    let (grpc, http, ca) = (gw.grpc_addr, gw.http_addrs[0].1, pki.path("ca.pem"));
    let runs = [("grpc-tls", grpc, "gt"), ("http-tls", http, "ht")];
    let sent: Vec<_> = runs.iter().map(|(mode, addr, tag)| (*tag, run_client_with(mode, *addr, tag, &[&ca]))).collect();
    gw.shutdown();
    let mut arrived = Arrived::default();
    sink.stats[0].bodies().iter().for_each(|(signal, body)| arrived.take(*signal, body));
    sink.stop();
    for (tag, sent) in &sent {
        check(&arrived, sent, tag);
    }
    assert_eq!(arrived.spans.len(), 50);
}

/// The NGINX example of docs/operations.md with its listen ports and upstream servers swapped
/// for ours, inside a minimal `http` block that keeps NGINX's files in `dir`.
fn nginx_conf(dir: &std::path::Path, listen: [u16; 2], gateways: [(SocketAddr, SocketAddr); 2]) -> String {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operations.md")).unwrap();
    let block = doc.split("```nginx\n").nth(1).and_then(|rest| rest.split("```").next()).expect("NGINX example");
    let mut block = block.replace("listen 4317 http2;", &format!("listen 127.0.0.1:{} http2;", listen[0]));
    block = block.replace("listen 4318;", &format!("listen 127.0.0.1:{};", listen[1]));
    for (i, (grpc, http)) in gateways.iter().enumerate() {
        block = block.replace(&format!("gateway{}:4317", i + 1), &grpc.to_string());
        block = block.replace(&format!("gateway{}:4318", i + 1), &http.to_string());
    }
    let d = dir.display();
    format!(
        "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 256; }}\nhttp {{\n    access_log off;\n    client_body_temp_path {d}/body;\n\
         proxy_temp_path {d}/proxy;\n    client_max_body_size 20m;\n    client_body_buffer_size 1m;\n{block}}}\n"
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// NGINX (Debian's nginx-light, installed by .ci/run) running `conf` until dropped.
struct Nginx(std::process::Child);

impl Nginx {
    fn start(dir: &std::path::Path, conf: &str, port: u16) -> Nginx {
        let path = dir.join("nginx.conf");
        std::fs::write(&path, conf).unwrap();
        let child = Command::new("nginx")
            .args(["-p", dir.to_str().unwrap(), "-c", path.to_str().unwrap()])
            .spawn()
            .expect("nginx is not installed (apt-get install nginx-light; .ci/run does)");
        let nginx = Nginx(child);
        let up = common::wait_until(std::time::Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(up, "nginx did not listen: {}", std::fs::read_to_string(dir.join("error.log")).unwrap_or_default());
        nginx
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGQUIT: the master stops its workers, then exits.
        let _ = Command::new("kill").args(["-QUIT", &self.0.id().to_string()]).status();
        let _ = self.0.wait();
    }
}

#[test]
fn python_sdk_through_nginx_to_two_gateways_arrives_intact() {
    let sink = sinks(2);
    sink.stats.iter().for_each(|s| s.keep_bodies());
    let builder = ConfigBuilder::new(&sink.addrs)
        .pipelines(&[("traces", ""), ("metrics", ""), ("logs", "")])
        .http()
        .default_compression();
    let (gw1, gw2) = (builder.start(), builder.start());
    let dir = std::env::temp_dir().join(format!("otlp-gw-nginx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Workers run as an unprivileged user and write request bodies here.
    Command::new("chmod").args(["777", dir.to_str().unwrap()]).status().unwrap();
    let listen = [free_port(), free_port()];
    let gateways = [(gw1.grpc_addr, gw1.http_addrs[0].1), (gw2.grpc_addr, gw2.http_addrs[0].1)];
    let nginx = Nginx::start(&dir, &nginx_conf(&dir, listen, gateways), listen[1]);
    let grpc = SocketAddr::from(([127, 0, 0, 1], listen[0]));
    let http = SocketAddr::from(([127, 0, 0, 1], listen[1]));
    let runs = [("grpc", grpc, "ng"), ("grpc-gzip", grpc, "ngz"), ("http", http, "nh"), ("http-gzip", http, "nhz")];
    let sent: Vec<_> = runs.iter().map(|(mode, addr, tag)| (*tag, run_client(mode, *addr, tag))).collect();
    drop(nginx);
    gw1.shutdown();
    gw2.shutdown();
    let mut arrived = Arrived::default();
    for stats in &sink.stats {
        stats.bodies().iter().for_each(|(signal, body)| arrived.take(*signal, body));
    }
    sink.stop();
    for (tag, sent) in &sent {
        check(&arrived, sent, tag);
    }
    assert_eq!(arrived.spans.len(), 100);
}

/// The collector project's `telemetrygen` (Go), built by .ci/run into .ci/bin; or
/// `$OTLP_GATEWAY_TELEMETRYGEN`. Missing, the test fails.
fn telemetrygen() -> PathBuf {
    std::env::var_os("OTLP_GATEWAY_TELEMETRYGEN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".ci/bin/telemetrygen"))
}

/// Runs `telemetrygen <signal> --<signal> <n>` against `endpoint` (over HTTP when `http`).
fn run_telemetrygen(signal: &str, n: u32, endpoint: SocketAddr, http: bool) {
    let bin = telemetrygen();
    let mut cmd = Command::new(&bin);
    cmd.args([signal, &format!("--{signal}"), &n.to_string(), "--rate", "0", "--otlp-insecure"]);
    cmd.args(["--otlp-endpoint", &endpoint.to_string(), "--service", &format!("tgen-{signal}")]);
    if http {
        cmd.arg("--otlp-http");
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {} ({e}); .ci/run builds it", bin.display()));
    assert!(out.status.success(), "telemetrygen {signal}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn telemetrygen_over_grpc_and_http_arrives_complete() {
    let sink = sinks(2);
    let gw = ConfigBuilder::new(&sink.addrs)
        .pipelines(&[("traces", ""), ("metrics", ""), ("logs", "")])
        .http()
        .default_compression()
        .start();
    let (grpc, http) = (gw.grpc_addr, gw.http_addrs[0].1);
    for (endpoint, over_http) in [(grpc, false), (http, true)] {
        run_telemetrygen("traces", 40, endpoint, over_http);
        run_telemetrygen("metrics", 30, endpoint, over_http);
        run_telemetrygen("logs", 25, endpoint, over_http);
    }
    let total = |signal| sink.stats.iter().map(|s| s.items(signal)).sum::<u64>();
    let done = common::wait_until(std::time::Duration::from_secs(5), || total(Signal::Logs) == 50);
    gw.shutdown();
    let (spans, points, logs) = (total(Signal::Traces), total(Signal::Metrics), total(Signal::Logs));
    sink.stop();
    assert!(done, "logs: {logs}");
    // Each trace is a parent and one child span.
    assert_eq!((spans, points, logs), (2 * 2 * 40, 2 * 30, 2 * 25));
}
