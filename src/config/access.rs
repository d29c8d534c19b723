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
}

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
