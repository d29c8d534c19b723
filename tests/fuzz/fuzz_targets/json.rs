//! The OTLP/JSON transcoder on any body: never panics, and what it accepts is one framed
//! protobuf message of the signal's export request. The response path (protobuf to JSON)
//! takes the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use otlp_gateway::config::Signal;
use otlp_gateway::receiver::http_json::{request_to_framed, response_to_json};
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let signal = Signal::ALL[usize::from(selector % 3)];
    let _ = response_to_json(signal, body);
    let Ok(framed) = request_to_framed(signal, body) else { return };
    assert_eq!(framed[0], 0, "never marked compressed");
    let len = u32::from_be_bytes([framed[1], framed[2], framed[3], framed[4]]) as usize;
    assert_eq!(len, framed.len() - 5, "the prefix tells the payload's length");
    let payload = &framed[5..];
    let decodes = match signal {
        Signal::Traces => ExportTraceServiceRequest::decode(payload).is_ok(),
        Signal::Metrics => ExportMetricsServiceRequest::decode(payload).is_ok(),
        Signal::Logs => ExportLogsServiceRequest::decode(payload).is_ok(),
    };
    assert!(decodes, "the output is the signal's export request");
});
