//! gRPC over HTTP/2, the parts both ends share: status codes and trailers, and reading one
//! length-prefixed message from a stream of DATA chunks with a size limit.

pub mod message;
pub mod status;

pub use message::UnaryReader;
pub use status::{Code, Status};

/// Paths of the OTLP/gRPC services.
pub const TRACE_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
