//! Convenience lookups over a loaded `Config`.

use super::model::{Config, Exporter, HostPort, OtlpReceiver, Resolver, Signal};

impl Config {
    /// The traces pipeline's (first) receiver and exporter, if a traces pipeline exists.
    /// With several traces pipelines, the first in the file wins.
    pub fn traces_route(&self) -> Option<(&OtlpReceiver, &Exporter)> {
        let pipeline = self.pipelines.iter().find(|p| p.signal == Signal::Traces)?;
        let receiver = self.receivers.get(pipeline.receivers.first()?)?;
        let exporter = self.exporters.get(pipeline.exporters.first()?)?;
        Some((receiver, exporter))
    }

    /// The largest request any receiver accepts (`max_recv_msg_size`, `max_request_body_size`).
    pub fn largest_request(&self) -> usize {
        let sizes = self.receivers.values().flat_map(|r| {
            [r.grpc.as_ref().map(|g| g.max_recv_msg_size), r.http.as_ref().map(|h| h.max_request_body_size)]
        });
        sizes.flatten().max().unwrap_or(0)
    }

    /// Request bytes each core may hold: `service.runtime.request_memory_mib`, or by default
    /// 256 MiB, or 4 × the largest request if that is more.
    pub fn request_memory(&self) -> usize {
        let default = || DEFAULT_REQUEST_MEMORY.max(self.largest_request().saturating_mul(4));
        self.runtime.request_memory.unwrap_or_else(default)
    }
}

/// Default per-core request memory when no receiver accepts more than 64 MiB.
pub const DEFAULT_REQUEST_MEMORY: usize = 256 << 20;

impl Exporter {
    /// Backends for an exporter with a static resolver or the `otlp` exporter's endpoint;
    /// `None` for DNS.
    pub fn static_backends(&self) -> Option<Vec<HostPort>> {
        match self {
            Exporter::LoadBalancing(lb) => match &lb.resolver {
                Resolver::Static { hostnames } => Some(hostnames.clone()),
                Resolver::Dns { .. } => None,
            },
            Exporter::Otlp(otlp) => otlp.endpoint.clone().map(|e| vec![e]),
        }
    }
}
