//! Golden cases for every key of every signal: the rules in `key.rs` stated one by one, and
//! pinned hashes that guard the routing contract (a change would move every trace, stream
//! and service to a new backend on upgrade).

use std::cell::RefCell;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use xxhash_rust::xxh3::xxh3_64;

use super::RouteKey;
use crate::config::{RoutingKey, Signal};
use crate::tools::spangen::{self, attr, grpc_frame};
use crate::wire::{Route, Splitter};

/// Every hash the splitter asks the ring about, in order.
fn hashes(signal: Signal, key: &RoutingKey, body: &[u8]) -> Vec<u64> {
    let seen = RefCell::new(Vec::new());
    let owner = |h: u64| {
        seen.borrow_mut().push(h);
        0
    };
    let route = Route { owner: &owner, backends: 1 };
    let mut key = RouteKey::new(signal, key);
    Splitter::new().split(&grpc_frame(body), &mut key, &route, &mut vec![]).expect("split");
    seen.into_inner()
}

fn int(key: &str, v: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::IntValue(v)) }),
        ..Default::default()
    }
}

fn resource(attrs: Vec<KeyValue>) -> Option<Resource> {
    Some(Resource { attributes: attrs, ..Default::default() })
}

fn log(trace_id: Vec<u8>, attrs: Vec<KeyValue>) -> LogRecord {
    LogRecord { trace_id, attributes: attrs, ..Default::default() }
}

fn logs(res: Option<Resource>, records: Vec<LogRecord>) -> Vec<u8> {
    let sl = ScopeLogs { log_records: records, ..Default::default() };
    let rl = ResourceLogs { resource: res, scope_logs: vec![sl], ..Default::default() };
    ExportLogsServiceRequest { resource_logs: vec![rl] }.encode_to_vec()
}

fn log_hashes(key: &RoutingKey, res: Option<Resource>, records: Vec<LogRecord>) -> Vec<u64> {
    hashes(Signal::Logs, key, &logs(res, records))
}

fn attributes(names: &[&str]) -> RoutingKey {
    RoutingKey::Attributes(names.iter().map(|s| s.to_string()).collect())
}

#[test]
fn trace_id_hashes_the_raw_id_for_spans_and_logs_alike() {
    let id = spangen::trace_id(1, 2);
    let spans = spangen::request("checkout", 1, 1, 0);
    let mut spans = spans;
    spans.resource_spans[0].scope_spans[0].spans[0].trace_id = id.to_vec();
    let span_hash = hashes(Signal::Traces, &RoutingKey::TraceId, &spans.encode_to_vec());
    let log_hash =
        log_hashes(&RoutingKey::TraceId, resource(vec![attr("service.name", "other")]), vec![log(id.to_vec(), vec![])]);
    assert_eq!(span_hash, [xxh3_64(&id)]);
    assert_eq!(log_hash, span_hash, "a log record meets its trace's spans");
}

#[test]
fn items_without_a_valid_trace_id_fall_back_to_the_service_then_the_resource() {
    let svc = resource(vec![attr("service.name", "checkout")]);
    let bad_ids = vec![log(vec![], vec![]), log(vec![0; 16], vec![]), log(vec![7; 8], vec![])];
    assert_eq!(log_hashes(&RoutingKey::TraceId, svc, bad_ids), [xxh3_64(b"checkout"); 3]);
    let anonymous = |attrs| log_hashes(&RoutingKey::TraceId, resource(attrs), vec![log(vec![], vec![])]);
    let a = anonymous(vec![attr("host.name", "h1"), attr("k8s.pod.name", "p")]);
    assert_eq!(
        a,
        anonymous(vec![attr("k8s.pod.name", "p"), attr("host.name", "h1")]),
        "attribute order is not identity"
    );
    assert_ne!(a, anonymous(vec![attr("host.name", "h2"), attr("k8s.pod.name", "p")]));
    assert_ne!(a, anonymous(vec![attr("host.name", "h1")]));
}

#[test]
fn service_is_the_same_key_for_every_signal() {
    let want = [xxh3_64(b"cart")];
    let traces = spangen::request("cart", 3, 1, 0).encode_to_vec();
    assert_eq!(hashes(Signal::Traces, &RoutingKey::Service, &traces), want);
    let metrics = crate::tools::signalgen::metrics_request("cart", 1, 2).encode_to_vec();
    assert_eq!(hashes(Signal::Metrics, &RoutingKey::Service, &metrics), want);
    let res = resource(vec![attr("service.name", "cart")]);
    assert_eq!(log_hashes(&RoutingKey::Service, res, vec![log(vec![], vec![])]), want);
}

#[test]
fn resource_identity_tells_value_types_apart() {
    let h = |attrs| log_hashes(&RoutingKey::Resource, resource(attrs), vec![log(vec![], vec![])]);
    assert_ne!(h(vec![attr("shard", "1")]), h(vec![int("shard", 1)]), "string \"1\" is not int 1");
    assert_eq!(h(vec![attr("a", "x"), int("b", 2)]), h(vec![int("b", 2), attr("a", "x")]));
    assert_ne!(h(vec![attr("ab", "c")]), h(vec![attr("a", "bc")]), "key and value boundaries count");
}

#[test]
fn attribute_keys_never_collide_and_missing_is_part_of_the_key() {
    let key = attributes(&["a", "b"]);
    let h = |attrs| log_hashes(&key, resource(vec![]), vec![log(vec![], attrs)])[0];
    let (foo_bar, foob_ar) = (h(vec![attr("a", "foo"), attr("b", "bar")]), h(vec![attr("a", "foob"), attr("b", "ar")]));
    assert_ne!(foo_bar, foob_ar);
    assert_ne!(h(vec![attr("a", "x")]), h(vec![attr("a", "x"), attr("b", "")]), "missing is not empty");
    assert_ne!(h(vec![attr("a", "x")]), h(vec![attr("b", "x")]), "which attribute is missing counts");
    assert_eq!(h(vec![attr("b", "bar"), attr("a", "foo"), attr("c", "z")]), foo_bar, "others and order do not count");
}

#[test]
fn attributes_are_looked_up_on_the_item_then_on_the_resource() {
    let key = attributes(&["tenant"]);
    let res = || resource(vec![attr("tenant", "acme")]);
    let on_item = log_hashes(&key, res(), vec![log(vec![], vec![attr("tenant", "globex")])]);
    let from_res = log_hashes(&key, res(), vec![log(vec![], vec![])]);
    let elsewhere = log_hashes(&key, resource(vec![]), vec![log(vec![], vec![attr("tenant", "acme")])]);
    assert_ne!(on_item, from_res, "the item's own value wins");
    assert_eq!(from_res, elsewhere, "the resource's value stands in for a missing one");
    let spans = spangen::request("s", 1, 1, 0).encode_to_vec();
    let route = hashes(Signal::Traces, &attributes(&["http.route"]), &spans);
    let value = AnyValue { value: Some(any_value::Value::StringValue("/api/v1/users/{id}".into())) }.encode_to_vec();
    let mut want = vec![1u8];
    want.extend_from_slice(&(value.len() as u32).to_le_bytes());
    want.extend_from_slice(&value);
    assert_eq!(route, [xxh3_64(&want)], "spans route by their own attributes");
}

fn point(attrs: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint { attributes: attrs, value: Some(number_data_point::Value::AsInt(1)), ..Default::default() }
}

fn one_metric(name: &str, unit: &str, data: metric::Data) -> Vec<u8> {
    let m = Metric { name: name.into(), unit: unit.into(), data: Some(data), ..Default::default() };
    let sm = ScopeMetrics { metrics: vec![m], ..Default::default() };
    let rm = ResourceMetrics {
        resource: resource(vec![attr("service.name", "s")]),
        scope_metrics: vec![sm],
        ..Default::default()
    };
    ExportMetricsServiceRequest { resource_metrics: vec![rm] }.encode_to_vec()
}

fn sum(points: Vec<NumberDataPoint>, temporality: i32) -> metric::Data {
    metric::Data::Sum(Sum { data_points: points, aggregation_temporality: temporality, is_monotonic: true })
}

/// Stream hashes of a metric's points (the first hash asked is the metric's own).
fn stream(body: &[u8]) -> Vec<u64> {
    hashes(Signal::Metrics, &RoutingKey::StreamId, body)[1..].to_vec()
}

#[test]
fn stream_id_is_resource_scope_metric_and_point_attributes() {
    let base = stream(&one_metric("m", "s", sum(vec![point(vec![attr("a", "1"), attr("b", "2")])], 2)));
    let reordered = stream(&one_metric("m", "s", sum(vec![point(vec![attr("b", "2"), attr("a", "1")])], 2)));
    assert_eq!(base, reordered, "point attribute order is not identity");
    for other in [
        one_metric("m2", "s", sum(vec![point(vec![attr("a", "1"), attr("b", "2")])], 2)),
        one_metric("m", "ms", sum(vec![point(vec![attr("a", "1"), attr("b", "2")])], 2)),
        one_metric("m", "s", sum(vec![point(vec![attr("a", "1"), attr("b", "2")])], 1)),
        one_metric("m", "s", sum(vec![point(vec![attr("a", "1")])], 2)),
        one_metric(
            "m",
            "s",
            metric::Data::Gauge(Gauge { data_points: vec![point(vec![attr("a", "1"), attr("b", "2")])] }),
        ),
    ] {
        assert_ne!(stream(&other), base);
    }
}

#[test]
fn metric_key_is_the_name_alone() {
    let a = one_metric("http.requests", "1", sum(vec![point(vec![attr("x", "1")]), point(vec![])], 2));
    assert_eq!(hashes(Signal::Metrics, &RoutingKey::Metric, &a), [xxh3_64(b"http.requests")]);
}

/// Pinned: the hash each key gives a fixed input. If one of these changes, every deployment
/// moves its data to new backends on upgrade; change them only on purpose, and say so in the
/// release notes.
#[test]
fn pinned_hashes() {
    let res = resource(vec![attr("service.name", "checkout"), attr("host.name", "web-1")]);
    let rec = log(vec![0xab; 16], vec![attr("tenant", "acme")]);
    let got = |key: RoutingKey| log_hashes(&key, res.clone(), vec![rec.clone()])[0];
    let metrics = one_metric("m", "s", sum(vec![point(vec![attr("a", "1")])], 2));
    let pinned = [
        ("logs traceID", got(RoutingKey::TraceId), xxh3_64(&[0xab; 16])),
        ("logs traceID (pinned)", got(RoutingKey::TraceId), PINNED[0]),
        ("logs service", got(RoutingKey::Service), PINNED[1]),
        ("logs resource", got(RoutingKey::Resource), PINNED[2]),
        ("logs attributes", got(attributes(&["tenant", "region"])), PINNED[3]),
        ("metrics streamID", stream(&metrics)[0], PINNED[4]),
    ];
    for (what, got, want) in pinned {
        assert_eq!(got, want, "{what}: {got:#x}");
    }
}

const PINNED: [u64; 5] =
    [0x743e6e03428e75f1, 0xc9597d5de43833cc, 0x4c6e6302fd5edd66, 0x9aeb9a7eb65ef0f8, 0xe2eb88381aaecf7f];
