//! Realistic metrics and logs payloads, as an instrumented HTTP service emits them: the
//! counterparts of `spangen` for the other two signals.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric,
    number_data_point,
};

use super::spangen::{attr, resource, trace_id};

const ROUTES: [&str; 4] = ["/api/v1/users/{id}", "/api/v1/orders", "/api/v1/cart", "/healthz"];
const CODES: [&str; 3] = ["200", "404", "500"];
const T0: u64 = 1_700_000_000_000_000_000;

fn scope(name: &str) -> Option<InstrumentationScope> {
    Some(InstrumentationScope { name: name.into(), version: "1.31.0".into(), ..Default::default() })
}

/// The point attributes of stream `i`: route × status code × method.
fn stream_attrs(i: usize) -> Vec<opentelemetry_proto::tonic::common::v1::KeyValue> {
    vec![
        attr("http.request.method", if i % 2 == 0 { "GET" } else { "POST" }),
        attr("http.route", ROUTES[i / 2 % ROUTES.len()]),
        attr("http.response.status_code", CODES[i / 8 % CODES.len()]),
    ]
}

fn number_point(i: usize, value: i64) -> NumberDataPoint {
    NumberDataPoint {
        attributes: stream_attrs(i),
        start_time_unix_nano: T0,
        time_unix_nano: T0 + 10_000_000_000,
        value: Some(number_data_point::Value::AsInt(value)),
        ..Default::default()
    }
}

fn histogram_point(i: usize) -> HistogramDataPoint {
    HistogramDataPoint {
        attributes: stream_attrs(i),
        start_time_unix_nano: T0,
        time_unix_nano: T0 + 10_000_000_000,
        count: 120,
        sum: Some(3.75),
        bucket_counts: vec![10, 40, 50, 15, 4, 1, 0, 0],
        explicit_bounds: vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5],
        min: Some(0.001),
        max: Some(0.3),
        ..Default::default()
    }
}

/// One metric of each common shape, each with `streams` data points (one per stream).
pub fn metrics(streams: usize) -> Vec<Metric> {
    let sum = Sum {
        data_points: (0..streams).map(|i| number_point(i, 1000 + i as i64)).collect(),
        aggregation_temporality: 2,
        is_monotonic: true,
    };
    let hist = Histogram { data_points: (0..streams).map(histogram_point).collect(), aggregation_temporality: 2 };
    let gauge = Gauge { data_points: (0..streams).map(|i| number_point(i, 7)).collect() };
    vec![
        metric("http.server.request.count", "{request}", metric::Data::Sum(sum)),
        metric("http.server.request.duration", "s", metric::Data::Histogram(hist)),
        metric("http.server.active_requests", "{request}", metric::Data::Gauge(gauge)),
    ]
}

fn metric(name: &str, unit: &str, data: metric::Data) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        description: format!("{name} of the server"),
        data: Some(data),
        ..Default::default()
    }
}

/// A metrics request from `service`: `sets` × 3 metrics of `streams` points each.
pub fn metrics_request(service: &str, sets: usize, streams: usize) -> ExportMetricsServiceRequest {
    let metrics = (0..sets).flat_map(|_| metrics(streams)).collect();
    let sm = ScopeMetrics { scope: scope("io.opentelemetry.http"), metrics, ..Default::default() };
    let rm = ResourceMetrics { resource: Some(resource(service)), scope_metrics: vec![sm], ..Default::default() };
    ExportMetricsServiceRequest { resource_metrics: vec![rm] }
}

/// One log record of about 300 bytes; every other one carries a trace id.
pub fn log_record(seq: u64, trace_seed: u64) -> LogRecord {
    let traced = seq % 2 == 0;
    LogRecord {
        time_unix_nano: T0 + seq * 1_000,
        observed_time_unix_nano: T0 + seq * 1_000 + 500,
        severity_number: 9,
        severity_text: "INFO".into(),
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(format!(
                "GET /api/v1/users/{seq} completed with 200 in 1.25ms for client 10.12.34.56 (okhttp/4.12.0)"
            ))),
        }),
        attributes: vec![attr("http.route", ROUTES[seq as usize % ROUTES.len()]), attr("thread.name", "worker-3")],
        trace_id: if traced { trace_id(trace_seed, seq).to_vec() } else { Vec::new() },
        span_id: if traced { (seq + 1).to_be_bytes().to_vec() } else { Vec::new() },
        ..Default::default()
    }
}

/// A logs request from `service` with `records` log records.
pub fn logs_request(service: &str, records: usize, trace_seed: u64) -> ExportLogsServiceRequest {
    let log_records = (0..records as u64).map(|i| log_record(i, trace_seed)).collect();
    let sl = ScopeLogs { scope: scope("io.opentelemetry.logback"), log_records, ..Default::default() };
    let rl = ResourceLogs { resource: Some(resource(service)), scope_logs: vec![sl], ..Default::default() };
    ExportLogsServiceRequest { resource_logs: vec![rl] }
}

/// Writes the fuzz targets' seed corpus (tests/fuzz/corpus/): realistic requests of every
/// signal for `split` (first byte: signal and key selector), framed messages for `grpc_frame`,
/// and the config fixtures for `config`.
#[cfg(test)]
mod seeds {
    use std::path::Path;

    use prost::Message;

    use super::{logs_request, metrics_request};
    use crate::compression::Encoding;
    use crate::tools::spangen::{self, grpc_frame};

    fn write(target: &str, name: &str, bytes: &[u8]) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }

    #[test]
    #[ignore = "writes the fuzz seed corpus; run with --ignored when the generators change"]
    fn write_fuzz_seeds() {
        let traces = spangen::request("checkout", 8, 2, 1).encode_to_vec();
        let metrics = metrics_request("checkout", 1, 3).encode_to_vec();
        let logs = logs_request("checkout", 6, 1).encode_to_vec();
        // Selectors (see tests/fuzz/fuzz_targets/split.rs): 0-2 traces, 3-5 logs, 6-10 metrics.
        for (selector, body) in [(0u8, &traces), (2, &traces), (3, &logs), (5, &logs), (8, &metrics), (9, &metrics)] {
            write("split", &format!("seed-{selector}"), &[&[selector][..], body].concat());
        }
        write("grpc_frame", "traces", &[&[3u8][..], &grpc_frame(&traces)].concat());
        // Selectors (json.rs): signal = byte % 3; (decompress.rs): encoding = byte & 7, limit = 1 << (byte >> 4).
        for (selector, name, body) in [
            (0u8, "traces", serde_json::to_vec(&spangen::request("checkout", 4, 2, 1)).unwrap()),
            (1, "metrics", serde_json::to_vec(&metrics_request("checkout", 1, 2)).unwrap()),
            (2, "logs", serde_json::to_vec(&logs_request("checkout", 3, 1)).unwrap()),
        ] {
            write("json", name, &[&[selector][..], &body].concat());
        }
        for (selector, encoding) in
            [(0xf0u8, Encoding::Gzip), (0xf1, Encoding::Deflate), (0xf2, Encoding::Zstd), (0xf3, Encoding::Snappy)]
        {
            write("decompress", encoding.name(), &[&[selector][..], &encoding.encode(&traces).unwrap()].concat());
        }
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config");
        for entry in std::fs::read_dir(fixtures).unwrap() {
            let path = entry.unwrap().path();
            write("config", &path.file_name().unwrap().to_string_lossy(), &std::fs::read(&path).unwrap());
        }
    }
}
