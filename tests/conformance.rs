//! Conformance with real clients: the official OpenTelemetry Python SDK exporters (pinned in
//! tests/python/requirements.txt, installed by .ci/run into .ci/.venv) send traces, metrics and
//! logs over OTLP/gRPC (plain and gzip) and OTLP/HTTP protobuf (plain and gzip) through the
//! gateway to in-process sinks; every item must arrive once, with its name and attributes.
//!
//! The interpreter is `$OTLP_GATEWAY_PYTHON`, else `.ci/.venv/bin/python`, else `python3`. A
//! missing interpreter or package fails the test: it never skips.

mod common;

use std::collections::BTreeMap;
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
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/otlp_clients.py");
    let python = python();
    let out = Command::new(&python)
        .args([script, mode, &endpoint.to_string(), tag])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e} (run .ci/run, or set OTLP_GATEWAY_PYTHON)", python.display()));
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
    let gw = ConfigBuilder::new(&sink.addrs).pipelines(&[("traces", ""), ("metrics", ""), ("logs", "")]).http().start();
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
