//! Zero-copy OTLP: walk the protobuf wire format only as deep as a routing key needs, and
//! splice byte ranges into per-backend requests.

pub mod keys;
pub mod partial;
pub mod pb;
pub mod points;
pub mod split;
pub mod walk;

pub use pb::WireError;
pub use points::MetricHead;
pub use split::{KeyLevel, Keyer, Part, Route, Splitter};

/// Bytes before a gRPC message: a compressed flag and a big-endian u32 length.
pub const GRPC_PREFIX: usize = 5;

#[cfg(test)]
mod split_tests;
