//! Routing keys of every signal, checked against the oracle: split, decode every part, and
//! the parts must be a partition of the input in which every entry sits with its key's owner.
//! Entries are flattened to the finest unit (span, log record, data point), so a metric cut
//! across backends is checked point by point.

use std::fmt::Debug;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use proptest::prelude::*;
use prost::Message;
use xxhash_rust::xxh3::xxh3_64;

use super::{RouteKey, oracle};
use crate::config::{RoutingKey, Signal};
use crate::tools::spangen::grpc_frame;
use crate::wire::{Part, Route, Splitter};

pub(super) fn owner_mod(n: usize) -> impl Fn(u64) -> usize {
    move |h: u64| (h % n as u64) as usize
}

pub(super) fn split_bytes(signal: Signal, key: &RoutingKey, body: &[u8], n: usize) -> Vec<Part> {
    let owner = owner_mod(n);
    let route = Route { owner: &owner, backends: n };
    let mut out = vec![];
    let mut key = RouteKey::new(signal, key);
    Splitter::new().split(&grpc_frame(body), &mut key, &route, &mut out).expect("split");
    out
}

/// The invariant, for any signal: part b holds exactly the input entries whose key b owns,
/// in input order, and every entry lands once.
fn check_partition<E: PartialEq + Debug>(
    parts: &[Part],
    input: &[E],
    flatten: impl Fn(&[u8]) -> Vec<E>,
    owner: impl Fn(&E) -> usize,
) {
    let mut seen = 0;
    for p in parts {
        let len = u32::from_be_bytes([p.framed[1], p.framed[2], p.framed[3], p.framed[4]]) as usize;
        assert_eq!(len + 5, p.framed.len(), "gRPC length prefix");
        let got = flatten(&p.framed[5..]);
        let want: Vec<&E> = input.iter().filter(|e| owner(e) == p.backend).collect();
        assert_eq!(got.iter().collect::<Vec<_>>(), want, "backend {}", p.backend);
        seen += got.len();
    }
    assert_eq!(seen, input.len(), "every entry lands exactly once");
    let mut backends: Vec<_> = parts.iter().map(|p| p.backend).collect();
    backends.dedup();
    assert_eq!(backends.len(), parts.len(), "one part per backend");
}

// ---- metrics -----------------------------------------------------------------------------

/// (resource, scope, metric without points, point as one-point data).
type MetricEntry = (ResourceMetrics, Option<ScopeMetrics>, Option<(Metric, Option<Metric>)>);

/// The metric with its points removed, and one metric per point holding only that point.
fn points_of(m: &Metric) -> (Metric, Vec<Metric>) {
    use metric::Data::*;
    let one = |d: metric::Data| Metric { data: Some(d), ..m.clone() };
    let (bare, points) = match m.data.clone() {
        Some(Gauge(g)) => (
            Gauge(self::Gauge { data_points: vec![] }),
            per(g.data_points, |p| Gauge(self::Gauge { data_points: vec![p] })),
        ),
        Some(Sum(s)) => (
            Sum(self::Sum { data_points: vec![], ..s.clone() }),
            per(s.data_points.clone(), |p| Sum(self::Sum { data_points: vec![p], ..s.clone() })),
        ),
        Some(Histogram(h)) => (
            Histogram(self::Histogram { data_points: vec![], ..h.clone() }),
            per(h.data_points.clone(), |p| Histogram(self::Histogram { data_points: vec![p], ..h.clone() })),
        ),
        Some(ExponentialHistogram(h)) => (
            ExponentialHistogram(self::ExponentialHistogram { data_points: vec![], ..h.clone() }),
            per(h.data_points.clone(), |p| {
                ExponentialHistogram(self::ExponentialHistogram { data_points: vec![p], ..h.clone() })
            }),
        ),
        Some(Summary(s)) => (
            Summary(self::Summary { data_points: vec![] }),
            per(s.data_points, |p| Summary(self::Summary { data_points: vec![p] })),
        ),
        None => return (m.clone(), vec![]),
    };
    (one(bare), points.into_iter().map(one).collect())
}

fn per<P>(points: Vec<P>, wrap: impl Fn(P) -> metric::Data) -> Vec<metric::Data> {
    points.into_iter().map(wrap).collect()
}

fn flatten_metrics(body: &[u8]) -> Vec<MetricEntry> {
    let req = ExportMetricsServiceRequest::decode(body).expect("part decodes");
    let mut out = vec![];
    for rm in &req.resource_metrics {
        let bare = ResourceMetrics { scope_metrics: vec![], ..rm.clone() };
        if rm.scope_metrics.is_empty() {
            out.push((bare.clone(), None, None));
        }
        for sm in &rm.scope_metrics {
            let bare_scope = ScopeMetrics { metrics: vec![], ..sm.clone() };
            if sm.metrics.is_empty() {
                out.push((bare.clone(), Some(bare_scope.clone()), None));
            }
            for m in &sm.metrics {
                let (bare_metric, points) = points_of(m);
                if points.is_empty() {
                    out.push((bare.clone(), Some(bare_scope.clone()), Some((bare_metric.clone(), None))));
                }
                for p in points {
                    out.push((bare.clone(), Some(bare_scope.clone()), Some((bare_metric.clone(), Some(p)))));
                }
            }
        }
    }
    out
}

fn point_attributes(m: &Metric) -> Vec<KeyValue> {
    use metric::Data::*;
    match &m.data {
        Some(Gauge(g)) => g.data_points[0].attributes.clone(),
        Some(Sum(s)) => s.data_points[0].attributes.clone(),
        Some(Histogram(h)) => h.data_points[0].attributes.clone(),
        Some(ExponentialHistogram(h)) => h.data_points[0].attributes.clone(),
        Some(Summary(s)) => s.data_points[0].attributes.clone(),
        None => vec![],
    }
}

fn metric_hash(e: &MetricEntry, key: &RoutingKey) -> u64 {
    let res = &e.0.resource;
    let Some((m, point)) = &e.2 else {
        return if *key == RoutingKey::Resource { oracle::identity(res) } else { oracle::service(res) };
    };
    let scope = e.1.as_ref().and_then(|s| s.scope.clone());
    match (key, point) {
        (RoutingKey::Service, _) => oracle::service(res),
        (RoutingKey::Resource, _) => oracle::identity(res),
        (RoutingKey::Metric, _) => xxh3_64(m.name.as_bytes()),
        (RoutingKey::StreamId, None) => oracle::metric_stream(res, &scope, m),
        (RoutingKey::StreamId, Some(p)) => {
            oracle::canonical(oracle::metric_stream(res, &scope, m), &point_attributes(p))
        }
        (RoutingKey::Attributes(_), None) => oracle::service(res),
        (RoutingKey::Attributes(names), Some(p)) => {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            oracle::attributes(&names, &point_attributes(p), res)
        }
        (RoutingKey::TraceId, _) => unreachable!("traceID does not apply to metrics"),
    }
}

fn check_metrics(req: &ExportMetricsServiceRequest, key: &RoutingKey, n: usize) {
    let body = req.encode_to_vec();
    let parts = split_bytes(Signal::Metrics, key, &body, n);
    let owner = owner_mod(n);
    check_partition(&parts, &flatten_metrics(&body), flatten_metrics, |e| owner(metric_hash(e, key)));
}

// ---- generators --------------------------------------------------------------------------

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

/// Attributes from a small pool, so keys collide often; values are strings or ints, and
/// the order varies.
fn arb_attrs() -> impl Strategy<Value = Vec<KeyValue>> {
    let value = prop_oneof![
        3 => "[xy]{0,2}".prop_map(any_value::Value::StringValue),
        1 => (0i64..3).prop_map(any_value::Value::IntValue),
    ];
    let one = (prop_oneof![Just("a"), Just("b"), Just("c")], value).prop_map(|(k, v)| kv(k, v));
    proptest::collection::vec(one, 0..4).prop_map(|mut v| {
        v.dedup_by(|x, y| x.key == y.key);
        v
    })
}

fn arb_resource() -> impl Strategy<Value = Option<Resource>> {
    let service = proptest::option::of(prop_oneof![Just("svc-a"), Just("svc-b"), Just("")]);
    let r = (service, arb_attrs(), any::<bool>()).prop_map(|(svc, mut attributes, first)| {
        if let Some(s) = svc {
            let at = if first { 0 } else { attributes.len() };
            attributes.insert(at, kv("service.name", any_value::Value::StringValue(s.into())));
        }
        Resource { attributes, ..Default::default() }
    });
    proptest::option::of(r)
}

fn arb_scope() -> impl Strategy<Value = Option<InstrumentationScope>> {
    proptest::option::of("[pq]{0,2}".prop_map(|name| InstrumentationScope { name, ..Default::default() }))
}

fn arb_number_point() -> impl Strategy<Value = NumberDataPoint> {
    (arb_attrs(), 0u64..4, any::<i64>()).prop_map(|(attributes, t, v)| NumberDataPoint {
        attributes,
        time_unix_nano: t,
        value: Some(number_data_point::Value::AsInt(v)),
        ..Default::default()
    })
}

fn arb_data() -> impl Strategy<Value = Option<metric::Data>> {
    let points = || proptest::collection::vec(arb_number_point(), 0..6);
    let attrs_points = |n| proptest::collection::vec(arb_attrs(), 0..n);
    prop_oneof![
        1 => Just(None),
        2 => points().prop_map(|data_points| Some(metric::Data::Gauge(Gauge { data_points }))),
        3 => (points(), 0i32..3, any::<bool>()).prop_map(|(data_points, t, m)| Some(metric::Data::Sum(Sum {
            data_points, aggregation_temporality: t, is_monotonic: m
        }))),
        2 => (attrs_points(5), 0i32..3).prop_map(|(a, t)| Some(metric::Data::Histogram(Histogram {
            data_points: a.into_iter().map(|attributes| HistogramDataPoint { attributes, count: 3, bucket_counts: vec![1, 2], explicit_bounds: vec![1.5], ..Default::default() }).collect(),
            aggregation_temporality: t,
        }))),
        1 => attrs_points(5).prop_map(|a| Some(metric::Data::ExponentialHistogram(ExponentialHistogram {
            data_points: a.into_iter().map(|attributes| ExponentialHistogramDataPoint { attributes, count: 1, scale: 2, ..Default::default() }).collect(),
            aggregation_temporality: 1,
        }))),
        1 => attrs_points(5).prop_map(|a| Some(metric::Data::Summary(Summary {
            data_points: a.into_iter().map(|attributes| SummaryDataPoint { attributes, count: 2, sum: 1.0, ..Default::default() }).collect(),
        }))),
    ]
}

fn arb_metric() -> impl Strategy<Value = Metric> {
    (prop_oneof![Just("m1"), Just("m2"), Just("")], prop_oneof![Just(""), Just("s")], arb_data())
        .prop_map(|(name, unit, data)| Metric { name: name.into(), unit: unit.into(), data, ..Default::default() })
}

fn arb_metrics_request() -> impl Strategy<Value = ExportMetricsServiceRequest> {
    let sm = (arb_scope(), proptest::collection::vec(arb_metric(), 0..5)).prop_map(|(scope, metrics)| ScopeMetrics {
        scope,
        metrics,
        ..Default::default()
    });
    let rm = (arb_resource(), proptest::collection::vec(sm, 0..3))
        .prop_map(|(resource, scope_metrics)| ResourceMetrics { resource, scope_metrics, ..Default::default() });
    proptest::collection::vec(rm, 0..4).prop_map(|resource_metrics| ExportMetricsServiceRequest { resource_metrics })
}

fn arb_trace_id() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => (1u8..8).prop_map(|t| vec![t; 16]),
        1 => Just(vec![]),
        1 => Just(vec![0; 16]),
        1 => proptest::collection::vec(any::<u8>(), 0..20),
    ]
}

fn arb_logs_request() -> impl Strategy<Value = ExportLogsServiceRequest> {
    let record = (arb_trace_id(), arb_attrs(), 0u64..5).prop_map(|(trace_id, attributes, t)| LogRecord {
        trace_id,
        attributes,
        time_unix_nano: t,
        ..Default::default()
    });
    let sl = (arb_scope(), proptest::collection::vec(record, 0..6)).prop_map(|(scope, log_records)| ScopeLogs {
        scope,
        log_records,
        ..Default::default()
    });
    let rl = (arb_resource(), proptest::collection::vec(sl, 0..3)).prop_map(|(resource, scope_logs)| ResourceLogs {
        resource,
        scope_logs,
        ..Default::default()
    });
    proptest::collection::vec(rl, 0..4).prop_map(|resource_logs| ExportLogsServiceRequest { resource_logs })
}

fn arb_traces_request() -> impl Strategy<Value = ExportTraceServiceRequest> {
    let span = (arb_trace_id(), arb_attrs()).prop_map(|(trace_id, attributes)| Span {
        trace_id,
        attributes,
        name: "s".into(),
        ..Default::default()
    });
    let ss = (arb_scope(), proptest::collection::vec(span, 0..6)).prop_map(|(scope, spans)| ScopeSpans {
        scope,
        spans,
        ..Default::default()
    });
    let rs = (arb_resource(), proptest::collection::vec(ss, 0..3)).prop_map(|(resource, scope_spans)| ResourceSpans {
        resource,
        scope_spans,
        ..Default::default()
    });
    proptest::collection::vec(rs, 0..4).prop_map(|resource_spans| ExportTraceServiceRequest { resource_spans })
}

// ---- logs and traces ---------------------------------------------------------------------

type LogEntry = (ResourceLogs, Option<ScopeLogs>, Option<LogRecord>);

fn flatten_logs(body: &[u8]) -> Vec<LogEntry> {
    let req = ExportLogsServiceRequest::decode(body).expect("part decodes");
    let mut out = vec![];
    for rl in &req.resource_logs {
        let bare = ResourceLogs { scope_logs: vec![], ..rl.clone() };
        if rl.scope_logs.is_empty() {
            out.push((bare.clone(), None, None));
        }
        for sl in &rl.scope_logs {
            let bare_scope = ScopeLogs { log_records: vec![], ..sl.clone() };
            if sl.log_records.is_empty() {
                out.push((bare.clone(), Some(bare_scope.clone()), None));
            }
            for r in &sl.log_records {
                out.push((bare.clone(), Some(bare_scope.clone()), Some(r.clone())));
            }
        }
    }
    out
}

/// The oracle's hash of an item (span or log record) with `trace_id` and `attrs`.
fn item_hash(key: &RoutingKey, res: &Option<Resource>, item: Option<(&[u8], &[KeyValue])>) -> u64 {
    match (key, item) {
        (RoutingKey::Resource, _) => oracle::identity(res),
        (RoutingKey::TraceId, Some((id, _))) => oracle::trace_id(id, res),
        (RoutingKey::Attributes(names), Some((_, attrs))) => {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            oracle::attributes(&names, attrs, res)
        }
        _ => oracle::service(res),
    }
}

fn check_logs(req: &ExportLogsServiceRequest, key: &RoutingKey, n: usize) {
    let body = req.encode_to_vec();
    let parts = split_bytes(Signal::Logs, key, &body, n);
    let owner = owner_mod(n);
    let hash = |e: &LogEntry| item_hash(key, &e.0.resource, e.2.as_ref().map(|r| (&r.trace_id[..], &r.attributes[..])));
    check_partition(&parts, &flatten_logs(&body), flatten_logs, |e| owner(hash(e)));
}

type SpanEntry = (ResourceSpans, Option<ScopeSpans>, Option<Span>);

fn flatten_spans(body: &[u8]) -> Vec<SpanEntry> {
    let req = ExportTraceServiceRequest::decode(body).expect("part decodes");
    let mut out = vec![];
    for rs in &req.resource_spans {
        let bare = ResourceSpans { scope_spans: vec![], ..rs.clone() };
        if rs.scope_spans.is_empty() {
            out.push((bare.clone(), None, None));
        }
        for ss in &rs.scope_spans {
            let bare_scope = ScopeSpans { spans: vec![], ..ss.clone() };
            if ss.spans.is_empty() {
                out.push((bare.clone(), Some(bare_scope.clone()), None));
            }
            for s in &ss.spans {
                out.push((bare.clone(), Some(bare_scope.clone()), Some(s.clone())));
            }
        }
    }
    out
}

fn check_traces(req: &ExportTraceServiceRequest, key: &RoutingKey, n: usize) {
    let body = req.encode_to_vec();
    let parts = split_bytes(Signal::Traces, key, &body, n);
    let owner = owner_mod(n);
    let hash =
        |e: &SpanEntry| item_hash(key, &e.0.resource, e.2.as_ref().map(|s| (&s.trace_id[..], &s.attributes[..])));
    check_partition(&parts, &flatten_spans(&body), flatten_spans, |e| owner(hash(e)));
}

fn attributes_key() -> RoutingKey {
    RoutingKey::Attributes(vec!["b".into(), "service.name".into(), "a".into()])
}

fn metric_keys() -> impl Strategy<Value = RoutingKey> {
    prop_oneof![
        Just(RoutingKey::Service),
        Just(RoutingKey::Resource),
        Just(RoutingKey::Metric),
        Just(RoutingKey::StreamId),
        Just(attributes_key()),
    ]
}

fn log_keys() -> impl Strategy<Value = RoutingKey> {
    prop_oneof![
        Just(RoutingKey::Service),
        Just(RoutingKey::TraceId),
        Just(RoutingKey::Resource),
        Just(attributes_key())
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn metrics_split_is_a_partition_for_every_key(req in arb_metrics_request(), key in metric_keys(), n in 1usize..6) {
        check_metrics(&req, &key, n);
    }

    #[test]
    fn logs_split_is_a_partition_for_every_key(req in arb_logs_request(), key in log_keys(), n in 1usize..6) {
        check_logs(&req, &key, n);
    }

    #[test]
    fn traces_split_is_a_partition_for_every_key(req in arb_traces_request(), key in log_keys(), n in 1usize..6) {
        check_traces(&req, &key, n);
    }

    #[test]
    fn garbage_never_panics_any_key(bytes in proptest::collection::vec(any::<u8>(), 0..300), key in metric_keys(), n in 1usize..4) {
        let owner = owner_mod(n);
        let route = Route { owner: &owner, backends: n };
        for signal in [Signal::Metrics, Signal::Logs] {
            let mut key = RouteKey::new(signal, &key);
            let _ = Splitter::new().split(&grpc_frame(&bytes), &mut key, &route, &mut vec![]);
        }
    }
}
