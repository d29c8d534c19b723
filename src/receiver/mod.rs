//! Receivers: OTLP/gRPC over HTTP/2 (h2c), served on every core from its own listener.

pub mod budget;
pub mod grpc;
pub mod pipeline;

pub use pipeline::{Pipeline, Topology};
