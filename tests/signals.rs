//! Traces, metrics and logs end to end, each routed by its own pipeline's key.
#![allow(clippy::disallowed_methods)] // tests may unwrap (clippy.toml)

mod common;

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use common::{ConfigBuilder, connect, export, export_logs, export_metrics, on_client, sinks, unary_on};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use otlp_gateway::config::Signal;
use otlp_gateway::exporter::ExportError;
use otlp_gateway::grpc::{Code, METRICS_EXPORT};
use otlp_gateway::routing::Ring;
use otlp_gateway::tools::record::snapshot;
use otlp_gateway::tools::signalgen::{logs_request, metrics_request};
use otlp_gateway::tools::sink::Sink;
use otlp_gateway::tools::spangen::{self, grpc_frame};
use prost::Message;

fn frame(m: &impl Message) -> Bytes {
    grpc_frame(&m.encode_to_vec())
}

/// The sinks' ring and names, indexed like the sinks.
struct Sinks {
    ring: Ring,
    names: Vec<String>,
}

impl Sinks {
    fn of(sink: &Sink) -> Self {
        let names: Vec<String> = sink.addrs.iter().map(|a| a.to_string()).collect();
        Sinks { ring: Ring::new(&names).expect("ring"), names }
    }
}

/// The sink index that owns `service` on the ring, as the `service` key documents it.
fn owner_of(sinks: &Sinks, service: &str) -> usize {
    let name = &sinks.ring.backends()[sinks.ring.lookup(xxhash_rust::xxh3::xxh3_64(service.as_bytes()))];
    sinks.names.iter().position(|b| b == name).expect("owner is a sink")
}

/// Six service names that land on at least two of the sinks (the ports, hence the ring,
/// change from run to run).
fn six_services(ring: &Sinks) -> Vec<String> {
    let names: Vec<String> = (0..100).map(|i| format!("svc-{i}")).collect();
    let first = owner_of(ring, &names[0]);
    let other = names.iter().find(|n| owner_of(ring, n) != first).cloned().expect("two owners among 100");
    let mut six: Vec<String> = names.into_iter().filter(|n| *n != other).take(5).collect();
    six.push(other);
    six
}

/// Sink index → items of `signal` it got from `service`.
fn where_service(sink: &Sink, signal: Signal, service: &str) -> Vec<(usize, u64)> {
    let got = |(i, s): (usize, &std::sync::Arc<otlp_gateway::tools::sink::SinkStats>)| {
        let n = snapshot(&s.recorded.services).get(&(signal, service.to_string())).copied().unwrap_or(0);
        (n > 0).then_some((i, n))
    };
    sink.stats.iter().enumerate().filter_map(got).collect()
}

#[test]
fn six_services_keep_all_their_signals_on_one_backend() {
    let sink = sinks(3);
    let ring = Sinks::of(&sink);
    let services = six_services(&ring);
    let pipelines = [("traces", "service"), ("metrics", "service"), ("logs", "")];
    let gw = ConfigBuilder::new(&sink.addrs).pipelines(&pipelines).start();
    let addr = gw.grpc_addr;
    let sent = services.clone();
    on_client(move || async move {
        let conn = connect(addr).await;
        for (i, svc) in sent.iter().enumerate() {
            export(&conn, addr, frame(&spangen::request(svc, 40, 4, i as u64))).await.expect("traces accepted");
            export_metrics(&conn, addr, frame(&metrics_request(svc, 2, 6))).await.expect("metrics accepted");
            export_logs(&conn, addr, frame(&logs_request(svc, 30, i as u64))).await.expect("logs accepted");
        }
    });
    gw.shutdown();
    let mut used = HashSet::new();
    for svc in &services {
        let want = owner_of(&ring, svc);
        for (signal, items) in [(Signal::Traces, 40), (Signal::Metrics, 2 * 3 * 6), (Signal::Logs, 30)] {
            assert_eq!(where_service(&sink, signal, svc), [(want, items)], "{svc} {signal:?}");
        }
        used.insert(want);
    }
    assert!(used.len() > 1, "more than one backend used");
    sink.stop();
}

/// Logs carrying the trace ids of `spans`' traces, and as many without a trace id.
fn logs_for(spans: &[[u8; 16]]) -> ExportLogsServiceRequest {
    let mut req = logs_request("shop", spans.len() * 2, 0);
    let records = &mut req.resource_logs[0].scope_logs[0].log_records;
    for (i, r) in records.iter_mut().enumerate() {
        r.trace_id = if i % 2 == 0 { spans[i / 2].to_vec() } else { Vec::new() };
    }
    req
}

#[test]
fn logs_meet_the_spans_of_their_trace() {
    let sink = sinks(3);
    let gw = ConfigBuilder::new(&sink.addrs).pipelines(&[("traces", "traceID"), ("logs", "traceID")]).start();
    let addr = gw.grpc_addr;
    let ids: Vec<[u8; 16]> = (0..60).map(|i| spangen::trace_id(7, i)).collect();
    let logs = logs_for(&ids);
    on_client(move || async move {
        let conn = connect(addr).await;
        export(&conn, addr, frame(&spangen::request("shop", 180, 3, 7))).await.expect("traces accepted");
        export_logs(&conn, addr, frame(&logs)).await.expect("logs accepted");
    });
    gw.shutdown();
    let total_logs: u64 = sink.stats.iter().map(|s| s.items(Signal::Logs)).sum();
    assert_eq!(total_logs, 120, "logs with and without a trace id all arrive");
    for (i, s) in sink.stats.iter().enumerate() {
        let spans: HashSet<Vec<u8>> = s.traces().into_keys().collect();
        let logs = snapshot(&s.recorded.log_traces);
        assert!(logs.keys().all(|id| spans.contains(id)), "sink {i} got logs of a trace it has no spans of");
    }
    let with_logs: usize = sink.stats.iter().filter(|s| !snapshot(&s.recorded.log_traces).is_empty()).count();
    assert!(with_logs > 1, "trace-id routing of logs spreads them");
    sink.stop();
}

#[test]
fn every_metric_stream_has_one_writer() {
    let sink = sinks(3);
    let gw = ConfigBuilder::new(&sink.addrs).pipelines(&[("metrics", "streamID")]).start();
    let addr = gw.grpc_addr;
    on_client(move || async move {
        let conn = connect(addr).await;
        for round in 0..5 {
            for svc in ["cart", "checkout"] {
                let r = export_metrics(&conn, addr, frame(&metrics_request(svc, 1, 24))).await;
                r.unwrap_or_else(|e| panic!("round {round}: {e}"));
            }
        }
    });
    gw.shutdown();
    let mut writers: HashMap<String, Vec<(usize, u64)>> = HashMap::new();
    for (i, s) in sink.stats.iter().enumerate() {
        for (stream, n) in snapshot(&s.recorded.streams) {
            writers.entry(stream).or_default().push((i, n));
        }
    }
    assert_eq!(writers.len(), 2 * 3 * 24, "every stream arrived");
    for (stream, w) in &writers {
        assert_eq!(w.len(), 1, "{stream} has {} writers", w.len());
        assert_eq!(w[0].1, 5, "{stream}: every round's point arrived once");
    }
    let metric_sinks =
        |name: &str| writers.iter().filter(|(s, _)| s.contains(name)).map(|(_, w)| w[0].0).collect::<HashSet<_>>();
    assert!(metric_sinks("|http.server.request.duration|").len() > 1, "one metric's streams were spread");
    sink.stop();
}

#[test]
fn a_signal_without_a_pipeline_is_unimplemented() {
    let sink = sinks(1);
    let gw = ConfigBuilder::new(&sink.addrs).start();
    let addr = gw.grpc_addr;
    let code = on_client(move || async move {
        let conn = connect(addr).await;
        let r = unary_on(&conn, addr, METRICS_EXPORT, frame(&metrics_request("a", 1, 1))).await;
        let ok = export(&conn, addr, frame(&spangen::request("a", 3, 1, 1))).await;
        assert!(ok.is_ok(), "the connection still serves traces");
        match r {
            Err(ExportError::Rejected(s)) => s.code,
            other => panic!("expected a gRPC status, got {other:?}"),
        }
    });
    gw.shutdown();
    assert_eq!(code, Code::Unimplemented);
    assert_eq!(sink.stats[0].items(Signal::Metrics), 0);
    sink.stop();
}
