//! Prometheus exposition of the summed per-core counters, with the collector's metric names and
//! labels (see docs/operations.md). Counters get `_total` and the latency histogram
//! `_milliseconds` from the client library, as the collector's Prometheus exporter writes them.

use std::collections::BTreeMap;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use super::CoreSnapshot;
use super::counters::{BackendStats, Histogram, ItemCounts, LATENCY_BOUNDS_MS, Refused};
use crate::config::Signal;
use crate::resolver::Stats;

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Names for the indexes the cores count by.
#[derive(Debug, Clone, Default)]
pub struct Names {
    /// Receiver id by listener index.
    pub receivers: Vec<String>,
    /// `grpc` or `http` by listener index (`grpc` when missing).
    pub transports: Vec<&'static str>,
    /// Exporter id by exporter index.
    pub exporters: Vec<String>,
    /// `static` or `dns`, by exporter index.
    pub resolvers: Vec<&'static str>,
}

impl Names {
    /// The transport label of listener `i`.
    pub fn transport(&self, i: usize) -> &'static str {
        self.transports.get(i).copied().unwrap_or("grpc")
    }
}

/// Everything one scrape shows, summed over cores.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    /// By receiver id and transport.
    pub receivers: BTreeMap<(String, &'static str), ItemCounts>,
    /// By exporter id.
    pub exporters: BTreeMap<String, ItemCounts>,
    /// By backend name (the `endpoint` label), over every exporter.
    pub backends: BTreeMap<String, BackendStats>,
    /// Backends on the ring, by resolver kind.
    pub num_backends: BTreeMap<&'static str, u64>,
    /// (resolver kind, stats) of each DNS resolver.
    pub resolutions: Vec<(&'static str, Stats)>,
    /// Per core: (cpu, connections, streams, queue depth, bytes in flight).
    pub cores: Vec<[u64; 6]>,
    /// Per core: (cpu, items queued for retry, bytes queued, items dropped after retries).
    pub retry: Vec<[u64; 4]>,
    /// Requests and connections refused before their data was read, by `Refused as usize`.
    pub refused: [u64; Refused::ALL.len()],
}

impl Totals {
    /// Sums the cores' snapshots.
    pub fn sum(names: &Names, cores: &[CoreSnapshot], resolutions: Vec<(&'static str, Stats)>) -> Totals {
        let mut t = Totals { resolutions: by_kind(resolutions), ..Default::default() };
        for (i, r) in names.receivers.iter().enumerate() {
            t.receivers.entry((r.clone(), names.transport(i))).or_default();
        }
        for e in &names.exporters {
            t.exporters.entry(e.clone()).or_default();
        }
        for core in cores {
            t.add_core(names, core);
        }
        t.count_backends(names, cores.first());
        t
    }

    fn add_core(&mut self, names: &Names, core: &CoreSnapshot) {
        let c = &core.counters;
        for (i, counts) in c.receivers.iter().enumerate() {
            let name = names.receivers.get(i).cloned().unwrap_or_else(|| format!("receiver{i}"));
            self.receivers.entry((name, names.transport(i))).or_default().merge(counts);
        }
        let exporter_name = |i: usize| names.exporters.get(i).cloned().unwrap_or_else(|| format!("exporter{i}"));
        for (i, retired) in c.retired.iter().enumerate() {
            self.exporters.entry(exporter_name(i)).or_default().merge(retired);
        }
        for (i, backends) in c.backends.iter().enumerate() {
            let exporter = self.exporters.entry(exporter_name(i)).or_default();
            backends.iter().for_each(|(_, b)| exporter.merge(&b.items));
            backends.iter().for_each(|(n, b)| self.backends.entry(n.clone()).or_default().merge(b));
        }
        let depth = c.parts_in_flight;
        self.cores.push([
            core.cpu as u64,
            c.connections,
            c.streams,
            depth,
            core.bytes_in_flight,
            core.bytes_in_flight_peak,
        ]);
        self.refused.iter_mut().zip(c.refused).for_each(|(sum, n)| *sum += n);
        let r = core.retry;
        self.retry.push([core.cpu as u64, r.queued_items, r.queued_bytes, r.dropped_items]);
    }

    fn count_backends(&mut self, names: &Names, core: Option<&CoreSnapshot>) {
        for r in &names.resolvers {
            self.num_backends.entry(r).or_default();
        }
        let rings = core.map(|c| c.rings.as_slice()).unwrap_or_default();
        for (i, ring) in rings.iter().enumerate() {
            let kind = names.resolvers.get(i).copied().unwrap_or("static");
            *self.num_backends.entry(kind).or_default() += ring.as_ref().map_or(0, |r| r.backends.len() as u64);
        }
    }
}

/// The OpenMetrics text of `totals`.
pub fn render(totals: Totals) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Exposition(totals)));
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

#[derive(Debug)]
struct Exposition(Totals);

/// The collector's item names per signal.
fn item(signal: Signal) -> &'static str {
    match signal {
        Signal::Traces => "spans",
        Signal::Metrics => "metric_points",
        Signal::Logs => "log_records",
    }
}

type Labels = Vec<(&'static str, String)>;

/// One counter family: name, help, and (labels, value) samples.
fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, samples: &[(Labels, u64)]) -> std::fmt::Result {
    let mut metric = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in samples {
        metric.encode_family(labels)?.encode_counter::<NoLabelSet, _, u64>(v, None)?;
    }
    Ok(())
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, samples: &[(Labels, u64)]) -> std::fmt::Result {
    let mut metric = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in samples {
        metric.encode_family(labels)?.encode_gauge(v)?;
    }
    Ok(())
}

impl Collector for Exposition {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        self.receivers(&mut e)?;
        self.exporters(&mut e)?;
        self.loadbalancer(&mut e)?;
        self.latency(&mut e)?;
        self.cores(&mut e)?;
        self.refused(&mut e)?;
        self.retry(&mut e)
    }
}

impl Exposition {
    fn receivers(&self, e: &mut DescriptorEncoder) -> std::fmt::Result {
        for signal in Signal::ALL {
            let s = signal as usize;
            let labels = |(r, t): &(String, &str)| vec![("receiver", r.clone()), ("transport", t.to_string())];
            let ok: Vec<_> = self.0.receivers.iter().map(|(r, c)| (labels(r), c.ok[s])).collect();
            let bad: Vec<_> = self.0.receivers.iter().map(|(r, c)| (labels(r), c.failed[s])).collect();
            let what = item(signal);
            let help = format!("Number of {what} successfully pushed into the pipeline.");
            counter(e, &format!("otelcol_receiver_accepted_{what}"), &help, &ok)?;
            let help = format!("Number of {what} that could not be pushed into the pipeline.");
            counter(e, &format!("otelcol_receiver_refused_{what}"), &help, &bad)?;
        }
        Ok(())
    }

    fn exporters(&self, e: &mut DescriptorEncoder) -> std::fmt::Result {
        for signal in Signal::ALL {
            let s = signal as usize;
            let labels = |x: &String| vec![("exporter", x.clone())];
            let ok: Vec<_> = self.0.exporters.iter().map(|(x, c)| (labels(x), c.ok[s])).collect();
            let bad: Vec<_> = self.0.exporters.iter().map(|(x, c)| (labels(x), c.failed[s])).collect();
            let what = item(signal);
            let help = format!("Number of {what} successfully sent to destination.");
            counter(e, &format!("otelcol_exporter_sent_{what}"), &help, &ok)?;
            let help = format!("Number of {what} in failed attempts to send to destination.");
            counter(e, &format!("otelcol_exporter_send_failed_{what}"), &help, &bad)?;
        }
        Ok(())
    }

    fn loadbalancer(&self, e: &mut DescriptorEncoder) -> std::fmt::Result {
        let t = &self.0;
        let backends: Vec<_> = t.num_backends.iter().map(|(r, n)| (vec![("resolver", r.to_string())], *n)).collect();
        gauge(e, "otelcol_loadbalancer_num_backends", "Current number of backends in use.", &backends)?;
        self.resolutions(e)?;
        self.outcomes(e)
    }

    fn resolutions(&self, e: &mut DescriptorEncoder) -> std::fmt::Result {
        let t = &self.0;
        let res = |r: &str, ok: bool, n: u64| (vec![("resolver", r.to_string()), ("success", ok.to_string())], n);
        let resolutions: Vec<_> = (t.resolutions.iter())
            .flat_map(|(r, s)| [res(r, true, s.resolutions.saturating_sub(s.failures)), res(r, false, s.failures)])
            .collect();
        let help = "Number of times the resolver has triggered new resolutions.";
        counter(e, "otelcol_loadbalancer_num_resolutions", help, &resolutions)?;
        let updates: Vec<_> =
            t.resolutions.iter().map(|(r, s)| (vec![("resolver", r.to_string())], s.updates)).collect();
        let help = "Number of times the list of backends was updated.";
        counter(e, "otelcol_loadbalancer_num_backend_updates", help, &updates)
    }

    fn outcomes(&self, e: &mut DescriptorEncoder) -> std::fmt::Result {
        let t = &self.0;
        let out = |n: &String, ok: bool, v: u64| (vec![("endpoint", n.clone()), ("success", ok.to_string())], v);
        let outcomes: Vec<_> =
            t.backends.iter().flat_map(|(n, b)| [out(n, true, b.calls_ok), out(n, false, b.calls_failed)]).collect();
        counter(
            e,
            "otelcol_loadbalancer_backend_outcome",
            "Number of successes and failures for each endpoint.",
            &outcomes,
        )
    }

    fn latency(&self, e: &mut DescriptorEncoder) -> std::fmt::Result {
        let unit = Unit::Other("milliseconds".into());
        let help = "Response latency in ms for the backends.";
        let mut metric =
            e.encode_descriptor("otelcol_loadbalancer_backend_latency", help, Some(&unit), MetricType::Histogram)?;
        for (name, b) in &self.0.backends {
            let labels = vec![("endpoint", name.clone())];
            let buckets = buckets(&b.latency);
            let mut family = metric.encode_family(&labels)?;
            family.encode_histogram::<NoLabelSet>(b.latency.sum, b.latency.count, &buckets, None)?;
        }
        Ok(())
    }

    fn cores(&self, e: &mut DescriptorEncoder) -> std::fmt::Result {
        let gauges = [
            ("otlp_gateway_core_connections", "Client connections open on the core."),
            ("otlp_gateway_core_streams", "Client requests (HTTP/2 streams) being served on the core."),
            ("otlp_gateway_core_queue_depth", "Parts sent to backends and not yet answered, on the core."),
            (
                "otlp_gateway_core_bytes_in_flight",
                "Request bytes the core holds in memory (its request budget in use).",
            ),
            (
                "otlp_gateway_core_bytes_in_flight_peak",
                "The most request bytes the core has held at once (its limit: service.runtime.request_memory_mib less the HTTP/2 window pool, a quarter).",
            ),
        ];
        for (i, (name, help)) in gauges.iter().enumerate() {
            let samples: Vec<_> = self.0.cores.iter().map(|c| (vec![("core", c[0].to_string())], c[i + 1])).collect();
            gauge(e, name, help, &samples)?;
        }
        Ok(())
    }
}

impl Exposition {
    fn refused(&self, e: &mut DescriptorEncoder) -> std::fmt::Result {
        let help = "Requests (unauthenticated) and connections (over the limit, HTTP/2 floods) the receivers refused before reading their data.";
        let sample = |r: Refused| (vec![("reason", r.label().to_string())], self.0.refused[r as usize]);
        let samples: Vec<_> = Refused::ALL.into_iter().map(sample).collect();
        counter(e, "otlp_gateway_receiver_refused", help, &samples)
    }

    fn retry(&self, e: &mut DescriptorEncoder) -> std::fmt::Result {
        let per_core = |i: usize| -> Vec<(Labels, u64)> {
            self.0.retry.iter().map(|r| (vec![("core", r[0].to_string())], r[i])).collect()
        };
        let help = "Items (spans, points, log records) acknowledged and queued for retry on the core.";
        gauge(e, "otlp_gateway_core_retry_queue_items", help, &per_core(1))?;
        gauge(e, "otlp_gateway_core_retry_queue_bytes", "Bytes queued for retry on the core.", &per_core(2))?;
        let help = "Items acknowledged and then dropped after retry_on_failure.max_elapsed_time.";
        counter(e, "otlp_gateway_core_retry_dropped_items", help, &per_core(3))
    }
}

fn buckets(h: &Histogram) -> Vec<(f64, u64)> {
    let bounds = LATENCY_BOUNDS_MS.iter().copied().chain([f64::INFINITY]);
    bounds.zip(h.buckets.iter().copied()).collect()
}

/// One sum per resolver kind: several resolvers of a kind are one series.
fn by_kind(resolutions: Vec<(&'static str, Stats)>) -> Vec<(&'static str, Stats)> {
    let mut out: Vec<(&'static str, Stats)> = Vec::new();
    for (kind, s) in resolutions {
        match out.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, t)) => {
                t.resolutions += s.resolutions;
                t.failures += s.failures;
                t.updates += s.updates;
            }
            None => out.push((kind, s)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::RingView;

    fn core(cpu: usize, accepted: u64) -> CoreSnapshot {
        let mut s = CoreSnapshot { cpu, ..Default::default() };
        s.counters.receivers = vec![ItemCounts { ok: [accepted, 0, 0], failed: [0, 0, 1] }];
        let backend = BackendStats {
            items: ItemCounts { ok: [accepted, 0, 0], failed: [0; 3] },
            calls_ok: 2,
            ..Default::default()
        };
        s.counters.backends = vec![vec![("10.0.0.1:4317".into(), backend)]];
        s.counters.connections = 3;
        s.rings = vec![Some(RingView { backends: vec!["10.0.0.1:4317".into()], shares: vec![1.0] })];
        s
    }

    fn names() -> Names {
        let receivers = vec!["otlp".into()];
        Names { receivers, transports: vec![], exporters: vec!["loadbalancing".into()], resolvers: vec!["dns"] }
    }

    #[test]
    fn sums_cores_under_the_collectors_names() {
        let stats = Stats { resolutions: 5, failures: 1, updates: 2 };
        let text = render(Totals::sum(&names(), &[core(0, 10), core(1, 5)], vec![("dns", stats)]));
        for line in [
            "otelcol_receiver_accepted_spans_total{receiver=\"otlp\",transport=\"grpc\"} 15",
            "otelcol_receiver_refused_log_records_total{receiver=\"otlp\",transport=\"grpc\"} 2",
            "otelcol_exporter_sent_spans_total{exporter=\"loadbalancing\"} 15",
            "otelcol_loadbalancer_num_backends{resolver=\"dns\"} 1",
            "otelcol_loadbalancer_num_resolutions_total{resolver=\"dns\",success=\"true\"} 4",
            "otelcol_loadbalancer_num_resolutions_total{resolver=\"dns\",success=\"false\"} 1",
            "otelcol_loadbalancer_num_backend_updates_total{resolver=\"dns\"} 2",
            "otelcol_loadbalancer_backend_outcome_total{endpoint=\"10.0.0.1:4317\",success=\"true\"} 4",
            "otlp_gateway_core_connections{core=\"1\"} 3",
            "# TYPE otelcol_loadbalancer_backend_latency_milliseconds histogram",
        ] {
            assert!(text.lines().any(|l| l == line), "missing `{line}` in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
