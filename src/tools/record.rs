//! What a recording sink keeps of each request, for tests to check where data went: trace
//! ids of spans and of log records, services per signal, and metric stream identities.
//! Decodes with prost: recording is for tests and demos, not for load runs.

use std::collections::HashMap;
use std::sync::Mutex;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{Metric, metric};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use crate::config::Signal;
use crate::wire::pb::Reader;
use crate::wire::{WireError, keys, walk};

type Counts<K> = Mutex<HashMap<K, u64>>;

/// Everything recorded by one sink listener.
#[derive(Debug, Default)]
pub struct Recorded {
    /// Spans per trace id.
    pub traces: Counts<Vec<u8>>,
    /// Log records per trace id (records without one are not counted here).
    pub log_traces: Counts<Vec<u8>>,
    /// Items (spans, data points, log records) per signal and `service.name` ("" if none).
    pub services: Counts<(Signal, String)>,
    /// Data points per stream: `service|scope|metric|sorted point attributes`.
    pub streams: Counts<String>,
}

fn bump<K: std::hash::Hash + Eq>(map: &Counts<K>, key: K, n: u64) {
    *map.lock().unwrap_or_else(|p| p.into_inner()).entry(key).or_default() += n;
}

/// A snapshot of a recorded map.
pub fn snapshot<K: Clone + std::hash::Hash + Eq>(map: &Counts<K>) -> HashMap<K, u64> {
    map.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

impl Recorded {
    /// Records one request body; an error says why it does not decode.
    pub fn take(&self, signal: Signal, body: &[u8]) -> Result<(), String> {
        let text = |e: &dyn std::fmt::Display| e.to_string();
        match signal {
            Signal::Traces => self.take_traces(body).map_err(|e| text(&e))?,
            Signal::Metrics => self.take_metrics(&ExportMetricsServiceRequest::decode(body).map_err(|e| text(&e))?),
            Signal::Logs => self.take_logs(&ExportLogsServiceRequest::decode(body).map_err(|e| text(&e))?),
        }
        Ok(())
    }

    /// Spans are recorded by walking the wire, not decoding: the demo records at full load.
    fn take_traces(&self, body: &[u8]) -> Result<(), WireError> {
        let mut top = Reader::new(body, 0..body.len());
        while let Some(f) = top.next_field()? {
            if f.number != 1 {
                continue;
            }
            let rs = f.len_payload()?;
            let name = keys::resource_service_name(body, rs.clone())?;
            let mut ids = Vec::new();
            walk::for_each_item(body, f.whole.clone(), |span| ids.push(keys::span_trace_id(body, span)))?;
            bump(&self.services, (Signal::Traces, String::from_utf8_lossy(&body[name]).into_owned()), ids.len() as u64);
            for id in ids {
                bump(&self.traces, body[id?].to_vec(), 1);
            }
        }
        Ok(())
    }

    fn take_logs(&self, req: &ExportLogsServiceRequest) {
        for rl in &req.resource_logs {
            let records = rl.scope_logs.iter().flat_map(|s| &s.log_records);
            for r in records.clone().filter(|r| !r.trace_id.is_empty()) {
                bump(&self.log_traces, r.trace_id.clone(), 1);
            }
            bump(&self.services, (Signal::Logs, service(&rl.resource)), records.count() as u64);
        }
    }

    fn take_metrics(&self, req: &ExportMetricsServiceRequest) {
        for rm in &req.resource_metrics {
            let svc = service(&rm.resource);
            for sm in &rm.scope_metrics {
                let scope = sm.scope.as_ref().map(|s| s.name.as_str()).unwrap_or_default();
                for m in &sm.metrics {
                    let points = point_attributes(m);
                    bump(&self.services, (Signal::Metrics, svc.clone()), points.len() as u64);
                    for attrs in points {
                        bump(&self.streams, format!("{svc}|{scope}|{}|{}", m.name, attrs_key(attrs)), 1);
                    }
                }
            }
        }
    }
}

/// `service.name`, or "" when absent.
pub fn service(r: &Option<Resource>) -> String {
    let attrs = r.as_ref().map(|r| r.attributes.as_slice()).unwrap_or_default();
    let kv = attrs.iter().find(|kv| kv.key == "service.name");
    match kv.and_then(|kv| kv.value.as_ref()).and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        _ => String::new(),
    }
}

/// The attributes of each data point of `m`.
pub fn point_attributes(m: &Metric) -> Vec<&[KeyValue]> {
    use metric::Data::*;
    match &m.data {
        Some(Gauge(g)) => g.data_points.iter().map(|p| p.attributes.as_slice()).collect(),
        Some(Sum(s)) => s.data_points.iter().map(|p| p.attributes.as_slice()).collect(),
        Some(Histogram(h)) => h.data_points.iter().map(|p| p.attributes.as_slice()).collect(),
        Some(ExponentialHistogram(h)) => h.data_points.iter().map(|p| p.attributes.as_slice()).collect(),
        Some(Summary(s)) => s.data_points.iter().map(|p| p.attributes.as_slice()).collect(),
        None => Vec::new(),
    }
}

fn attrs_key(attrs: &[KeyValue]) -> String {
    let mut parts: Vec<String> = attrs.iter().map(|kv| format!("{}={:?}", kv.key, kv.value)).collect();
    parts.sort();
    parts.join(",")
}
