//! The splitter and every routing key on peer bytes: never panics; a request prost accepts is
//! split, and every part is again a request prost accepts, with the same number of items.
#![no_main]

use bytes::{BufMut, Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use otlp_gateway::config::{RoutingKey, Signal};
use otlp_gateway::routing::RouteKey;
use otlp_gateway::wire::{Route, Splitter, WireError};
use prost::Message;

fn key(b: u8) -> (Signal, RoutingKey) {
    let attrs = || RoutingKey::Attributes(vec!["a".into(), "service.name".into()]);
    match b % 11 {
        0 => (Signal::Traces, RoutingKey::TraceId),
        1 => (Signal::Traces, RoutingKey::Service),
        2 => (Signal::Traces, attrs()),
        3 => (Signal::Logs, RoutingKey::TraceId),
        4 => (Signal::Logs, RoutingKey::Resource),
        5 => (Signal::Logs, attrs()),
        6 => (Signal::Metrics, RoutingKey::Service),
        7 => (Signal::Metrics, RoutingKey::Metric),
        8 => (Signal::Metrics, RoutingKey::StreamId),
        9 => (Signal::Metrics, attrs()),
        _ => (Signal::Metrics, RoutingKey::Resource),
    }
}

/// Whether prost accepts `body` as `signal`'s request.
fn decodes(signal: Signal, body: &[u8]) -> bool {
    match signal {
        Signal::Traces => ExportTraceServiceRequest::decode(body).is_ok(),
        Signal::Metrics => ExportMetricsServiceRequest::decode(body).is_ok(),
        Signal::Logs => ExportLogsServiceRequest::decode(body).is_ok(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let (signal, routing_key) = key(selector);
    let mut framed = BytesMut::with_capacity(body.len() + 5);
    framed.put_u8(0);
    framed.put_u32(body.len() as u32);
    framed.put_slice(body);
    let framed: Bytes = framed.freeze();
    let backends = usize::from(selector / 11 % 4) + 1;
    let owner = |h: u64| (h % backends as u64) as usize;
    let route = Route { owner: &owner, backends };
    let mut parts = Vec::new();
    let result = Splitter::new().split(&framed, &mut RouteKey::new(signal, &routing_key), &route, &mut parts);
    let valid = decodes(signal, body);
    match result {
        // Deep groups: prost allows more nesting than the walker; both are hostile.
        Err(WireError::TooDeep(_)) => {}
        Err(e) => assert!(!valid, "prost accepts what the splitter refused: {e}"),
        Ok(()) if valid => {
            for p in &parts {
                assert!(decodes(signal, &p.framed[5..]), "a part of a valid request does not decode");
                assert!(p.backend < backends);
            }
        }
        Ok(()) => {}
    }
});
