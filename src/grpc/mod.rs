//! gRPC over HTTP/2, the parts both ends share: status codes and trailers, and reading one
//! length-prefixed message from a stream of DATA chunks with a size limit.

pub mod details;
pub mod message;
pub mod status;

pub use message::UnaryReader;
pub use status::{Code, Status};

/// Paths of the OTLP/gRPC services.
pub const TRACE_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
pub const METRICS_EXPORT: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
pub const LOGS_EXPORT: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

use crate::config::Signal;

/// The OTLP/gRPC export path of `signal`.
pub fn export_path(signal: Signal) -> &'static str {
    match signal {
        Signal::Traces => TRACE_EXPORT,
        Signal::Metrics => METRICS_EXPORT,
        Signal::Logs => LOGS_EXPORT,
    }
}

/// The signal an OTLP/gRPC export path names.
pub fn signal_of(path: &str) -> Option<Signal> {
    Signal::ALL.into_iter().find(|&s| export_path(s) == path)
}
