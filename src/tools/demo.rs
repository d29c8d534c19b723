//! `otlp-gateway demo`: the gateway, three sinks and the load generator on loopback, from
//! an embedded config; prints each backend's share and checks trace affinity.

use std::collections::HashMap;
use std::fmt::Write;
use std::time::Duration;

use glommio::Placement;

use super::loadgen::{self, LoadgenOpts, Report};
use super::sink::Sink;
use crate::Gateway;
use crate::config::{self, Exporter};

/// The embedded configuration.
pub const DEMO_CONFIG: &str = include_str!("demo.yaml");

/// What the demo found.
#[derive(Debug)]
pub struct DemoResult {
    pub report: Report,
    /// Spans received per backend, in config order.
    pub spans: Vec<(String, u64)>,
    /// Traces seen on more than one backend (must be 0).
    pub split_traces: usize,
    pub traces_seen: usize,
}

impl DemoResult {
    /// Affinity held and nothing acknowledged was lost.
    pub fn passed(&self) -> bool {
        let received: u64 = self.spans.iter().map(|s| s.1).sum();
        self.split_traces == 0
            && received == self.report.spans_ok
            && self.traces_seen as u64 == self.report.traces_ok
            && received > 0
    }

    pub fn render(&self) -> String {
        let total: u64 = self.spans.iter().map(|s| s.1).sum::<u64>().max(1);
        let mut s = String::from("backend             spans      share\n");
        for (name, n) in &self.spans {
            let _ = writeln!(s, "{name:<18} {n:>10}  {:>6.2}%", 100.0 * *n as f64 / total as f64);
        }
        let _ = writeln!(
            s,
            "traces: {} sent and acknowledged, {} seen, {} on more than one backend",
            self.report.traces_ok, self.traces_seen, self.split_traces
        );
        let verdict =
            if self.passed() { "PASS: every trace landed on exactly one backend, nothing lost" } else { "FAIL" };
        s + verdict
    }
}

/// Runs the demo for `duration` of load.
pub fn run(duration: Duration, cores: Option<Vec<usize>>) -> anyhow::Result<DemoResult> {
    let cfg = config::parse_str(DEMO_CONFIG).map_err(|e| anyhow::anyhow!("embedded config: {e}"))?;
    let backends = demo_backends(&cfg)?;
    let sink = Sink::start(&backends, Placement::Unbound, true)?;
    let cores = cores.unwrap_or_else(|| vec![0]);
    let gateway = Gateway::start(&cfg, Some(cores))?;
    let opts =
        LoadgenOpts { target: gateway.grpc_addr, duration, spans_per_trace: 5, progress: true, ..Default::default() };
    let report = loadgen::run(opts)?;
    gateway.shutdown();
    let result = tally(&sink, report);
    sink.stop();
    Ok(result)
}

fn demo_backends(cfg: &config::Config) -> anyhow::Result<Vec<std::net::SocketAddr>> {
    let Some((_, exporter @ Exporter::LoadBalancing(_))) = cfg.traces_route() else {
        anyhow::bail!("embedded config has no load balancer");
    };
    let Some(hosts) = exporter.static_backends() else {
        anyhow::bail!("embedded config has no static backends");
    };
    Ok(hosts.iter().filter_map(|h| h.to_string().parse().ok()).collect())
}

fn tally(sink: &Sink, report: Report) -> DemoResult {
    let mut owners: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut spans = Vec::new();
    for (addr, stats) in sink.addrs.iter().zip(&sink.stats) {
        spans.push((addr.to_string(), stats.spans()));
        for id in stats.traces().keys() {
            *owners.entry(id.clone()).or_default() += 1;
        }
    }
    let split_traces = owners.values().filter(|&&n| n > 1).count();
    DemoResult { report, spans, split_traces, traces_seen: owners.len() }
}
