//! OTLP/JSON ↔ protobuf for the HTTP receiver: a JSON request becomes the same framed protobuf
//! message a gRPC client would send, so it takes the same split path; a protobuf response
//! becomes JSON for the client.
//!
//! The mapping is the OTLP/JSON one (opentelemetry-proto's serde derive): hex trace and span
//! ids, lowerCamelCase keys, integer enums, 64-bit integers as strings or numbers, unknown
//! fields ignored. snake_case keys (the proto field names, which the spec allows receivers to
//! accept) are accepted too: such a request is rewritten key by key first, a slower path.

use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use prost::Message;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::Signal;
use crate::wire::GRPC_PREFIX;

/// Why a JSON body is not an OTLP request. The text goes back to the client in a 400.
#[derive(Debug, thiserror::Error)]
#[error("invalid OTLP/JSON {signal} request: {reason}")]
pub struct JsonError {
    signal: &'static str,
    reason: String,
}

/// The JSON `body` as one framed protobuf export request (gRPC prefix included).
pub fn request_to_framed(signal: Signal, body: &[u8]) -> Result<Vec<u8>, JsonError> {
    match signal {
        Signal::Traces => transcode::<ExportTraceServiceRequest>(signal, body, "resource_spans"),
        Signal::Metrics => transcode::<ExportMetricsServiceRequest>(signal, body, "resource_metrics"),
        Signal::Logs => transcode::<ExportLogsServiceRequest>(signal, body, "resource_logs"),
    }
}

fn transcode<M: Message + DeserializeOwned>(signal: Signal, body: &[u8], snake: &str) -> Result<Vec<u8>, JsonError> {
    let err = |e: serde_json::Error| JsonError { signal: signal.name(), reason: e.to_string() };
    // Serde would take an array as the message's fields in order; OTLP/JSON is an object.
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(JsonError { signal: signal.name(), reason: "the body is not a JSON object".into() });
    }
    let msg: M = if uses_snake_case(body, snake) {
        let mut value: Value = serde_json::from_slice(body).map_err(err)?;
        camel_case_keys(&mut value);
        serde_json::from_value(value).map_err(err)?
    } else {
        serde_json::from_slice(body).map_err(err)?
    };
    let mut out = Vec::with_capacity(GRPC_PREFIX + msg.encoded_len());
    out.extend_from_slice(&[0; GRPC_PREFIX]);
    // Writing to a Vec that has room cannot fail.
    let _ = msg.encode(&mut out);
    let len = u32::try_from(out.len() - GRPC_PREFIX).unwrap_or(u32::MAX);
    out[1..GRPC_PREFIX].copy_from_slice(&len.to_be_bytes());
    Ok(out)
}

/// Whether the request's first key is written in snake_case (`"resource_spans"`): an export
/// request has that one field, so only the start of the body is looked at.
fn uses_snake_case(body: &[u8], key: &str) -> bool {
    let Some(quote) = body.iter().position(|&b| b == b'"') else { return false };
    body[quote + 1..].starts_with(key.as_bytes())
}

/// Rewrites every object key from snake_case to lowerCamelCase. In OTLP/JSON every object key
/// is a field name (attribute keys are values), so this never touches data.
fn camel_case_keys(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let fields = std::mem::take(map);
            for (key, mut v) in fields {
                camel_case_keys(&mut v);
                map.insert(lower_camel(&key), v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(camel_case_keys),
        _ => {}
    }
}

fn lower_camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        match c {
            '_' => upper = true,
            c if upper => {
                out.extend(c.to_uppercase());
                upper = false;
            }
            c => out.push(c),
        }
    }
    out
}

/// The protobuf export response `proto` (no prefix) as OTLP/JSON: `{}`, or the partial
/// success with its count as a decimal string, as the spec writes 64-bit integers.
pub fn response_to_json(signal: Signal, proto: &[u8]) -> Vec<u8> {
    let partial = match signal {
        Signal::Traces => ExportTraceServiceResponse::decode(proto)
            .ok()
            .and_then(|r| r.partial_success)
            .map(|p| ("rejectedSpans", p.rejected_spans, p.error_message)),
        Signal::Metrics => ExportMetricsServiceResponse::decode(proto)
            .ok()
            .and_then(|r| r.partial_success)
            .map(|p| ("rejectedDataPoints", p.rejected_data_points, p.error_message)),
        Signal::Logs => ExportLogsServiceResponse::decode(proto)
            .ok()
            .and_then(|r| r.partial_success)
            .map(|p| ("rejectedLogRecords", p.rejected_log_records, p.error_message)),
    };
    // A response that does not decode is still a success (the backends took the data): `{}`.
    let json = match partial {
        Some((field, rejected, message)) => {
            let partial = object([(field, rejected.to_string().into()), ("errorMessage", message.into())]);
            object([("partialSuccess", partial)])
        }
        None => object([]),
    };
    json.to_string().into_bytes()
}

/// A JSON object of `pairs`, in order (`serde_json::json!` unwraps, which the data path denies).
pub fn object<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTracePartialSuccess;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn decode_trace(framed: &[u8]) -> ExportTraceServiceRequest {
        assert_eq!(framed[0], 0);
        let len = u32::from_be_bytes([framed[1], framed[2], framed[3], framed[4]]) as usize;
        assert_eq!(len, framed.len() - GRPC_PREFIX);
        ExportTraceServiceRequest::decode(&framed[GRPC_PREFIX..]).unwrap()
    }

    fn one_span(span: Span) -> ExportTraceServiceRequest {
        let scope_spans = vec![ScopeSpans { spans: vec![span], ..Default::default() }];
        ExportTraceServiceRequest { resource_spans: vec![ResourceSpans { scope_spans, ..Default::default() }] }
    }

    fn expected_span() -> Span {
        let attr = KeyValue {
            key: "n".into(),
            value: Some(AnyValue { value: Some(any_value::Value::IntValue(-7)) }),
            ..Default::default()
        };
        Span {
            trace_id: (1..=16).collect(),
            span_id: (1..=8).collect(),
            name: "op".into(),
            kind: 2,
            start_time_unix_nano: 1_700_000_000_000_000_001,
            attributes: vec![attr],
            ..Default::default()
        }
    }

    const CAMEL: &str = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{
        "traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","name":"op","kind":2,
        "startTimeUnixNano":"1700000000000000001","futureField":{"x":1},
        "attributes":[{"key":"n","value":{"intValue":"-7"}}]}]}]}]}"#;

    #[test]
    fn camel_case_json_matches_protobuf() {
        let framed = request_to_framed(Signal::Traces, CAMEL.as_bytes()).unwrap();
        assert_eq!(decode_trace(&framed), one_span(expected_span()));
    }

    #[test]
    fn snake_case_keys_are_accepted() {
        let snake = CAMEL
            .replace("resourceSpans", "resource_spans")
            .replace("scopeSpans", "scope_spans")
            .replace("traceId", "trace_id")
            .replace("spanId", "span_id")
            .replace("startTimeUnixNano", "start_time_unix_nano")
            .replace("intValue", "int_value");
        let framed = request_to_framed(Signal::Traces, snake.as_bytes()).unwrap();
        assert_eq!(decode_trace(&framed), one_span(expected_span()));
    }

    #[test]
    fn numbers_for_64_bit_fields_are_accepted_too() {
        let json = CAMEL.replace("\"1700000000000000001\"", "1700000000000000001").replace("\"-7\"", "-7");
        let framed = request_to_framed(Signal::Traces, json.as_bytes()).unwrap();
        assert_eq!(decode_trace(&framed), one_span(expected_span()));
    }

    #[test]
    fn bad_json_is_an_error() {
        let cases: [&[u8]; 5] = [
            b"{",
            b"[]",
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"xyz"}]}]}]}"#,
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":"SPAN_KIND_SERVER"}]}]}]}"#,
            b"{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":\"\xff\xfe\"}]}]}]}",
        ];
        for body in cases {
            assert!(request_to_framed(Signal::Traces, body).is_err(), "{}", String::from_utf8_lossy(body));
        }
    }

    fn string_attr(key: &str, value: &str) -> KeyValue {
        let value = Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) });
        KeyValue { key: key.into(), value, ..Default::default() }
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// The official example, built by hand field by field.
    #[test]
    fn the_official_trace_example_matches_its_protobuf() {
        use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
        use opentelemetry_proto::tonic::resource::v1::Resource;
        let json = include_bytes!("../../tests/data/otlp-examples/trace.json");
        let span = Span {
            trace_id: hex("5B8EFFF798038103D269B633813FC60C"),
            span_id: hex("EEE19B7EC3C1B174"),
            parent_span_id: hex("EEE19B7EC3C1B173"),
            name: "I'm a server span".into(),
            start_time_unix_nano: 1_544_712_660_000_000_000,
            end_time_unix_nano: 1_544_712_661_000_000_000,
            kind: 2,
            attributes: vec![string_attr("my.span.attr", "some value")],
            ..Default::default()
        };
        let scope = InstrumentationScope {
            name: "my.library".into(),
            version: "1.0.0".into(),
            attributes: vec![string_attr("my.scope.attribute", "some scope attribute")],
            ..Default::default()
        };
        let resource = Resource { attributes: vec![string_attr("service.name", "my.service")], ..Default::default() };
        let scope_spans = vec![ScopeSpans { scope: Some(scope), spans: vec![span], ..Default::default() }];
        let rs = ResourceSpans { resource: Some(resource), scope_spans, ..Default::default() };
        let want = ExportTraceServiceRequest { resource_spans: vec![rs] };
        assert_eq!(decode_trace(&request_to_framed(Signal::Traces, json).unwrap()), want);
    }

    #[test]
    fn the_official_log_and_event_examples_keep_every_field() {
        use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest as Logs;
        let decode = |json: &[u8]| {
            let framed = request_to_framed(Signal::Logs, json).unwrap();
            let logs = Logs::decode(&framed[GRPC_PREFIX..]).unwrap();
            logs.resource_logs[0].scope_logs[0].log_records[0].clone()
        };
        let log = decode(include_bytes!("../../tests/data/otlp-examples/logs.json"));
        assert_eq!((log.time_unix_nano, log.severity_number), (1_544_712_660_300_000_000, 10));
        assert_eq!(log.trace_id, hex("5B8EFFF798038103D269B633813FC60C"));
        assert_eq!(log.span_id, hex("EEE19B7EC3C1B174"));
        let body = log.body.and_then(|b| b.value);
        assert_eq!(body, Some(any_value::Value::StringValue("Example log record".into())));
        let int = log.attributes.iter().find(|a| a.key == "int.attribute").and_then(|a| a.value.clone());
        assert_eq!(int.and_then(|v| v.value), Some(any_value::Value::IntValue(10)));
        assert_eq!(log.attributes.len(), 6);
        let event = decode(include_bytes!("../../tests/data/otlp-examples/events.json"));
        assert_eq!(event.event_name, "browser.page_view");
        let Some(any_value::Value::KvlistValue(kv)) = event.body.and_then(|b| b.value) else { panic!("kvlist body") };
        assert_eq!(kv.values.len(), 4);
    }

    #[test]
    fn the_official_metrics_example_keeps_every_data_type() {
        use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest as Metrics;
        use opentelemetry_proto::tonic::metrics::v1::metric::Data;
        let json = include_bytes!("../../tests/data/otlp-examples/metrics.json");
        let framed = request_to_framed(Signal::Metrics, json).unwrap();
        let req = Metrics::decode(&framed[GRPC_PREFIX..]).unwrap();
        let metrics = &req.resource_metrics[0].scope_metrics[0].metrics;
        let names: Vec<&str> = metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["my.counter", "my.gauge", "my.histogram", "my.exponential.histogram"]);
        let Some(Data::Sum(sum)) = &metrics[0].data else { panic!("sum") };
        assert!(sum.is_monotonic && sum.aggregation_temporality == 1, "{sum:?}");
        let Some(Data::Histogram(h)) = &metrics[2].data else { panic!("histogram") };
        assert!(!h.data_points[0].bucket_counts.is_empty() && h.data_points[0].count > 0, "{h:?}");
        let Some(Data::ExponentialHistogram(e)) = &metrics[3].data else { panic!("exponential histogram") };
        assert!(e.data_points[0].positive.is_some(), "{e:?}");
    }

    #[test]
    fn partial_success_becomes_json() {
        let partial = ExportTracePartialSuccess { rejected_spans: 3, error_message: "bad spans".into() };
        let proto = ExportTraceServiceResponse { partial_success: Some(partial) }.encode_to_vec();
        let json: Value = serde_json::from_slice(&response_to_json(Signal::Traces, &proto)).unwrap();
        let p = &json["partialSuccess"];
        assert_eq!(p["errorMessage"], "bad spans");
        assert_eq!(p["rejectedSpans"], "3", "{json}");
        assert_eq!(response_to_json(Signal::Traces, &[]), b"{}");
        assert_eq!(response_to_json(Signal::Logs, b"\xff garbage"), b"{}");
    }
}
