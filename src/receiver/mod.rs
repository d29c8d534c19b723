//! Receivers: OTLP/gRPC over HTTP/2 (h2c) and OTLP/HTTP (HTTP/1.1 and h2c), each served on
//! every core from its own listener.

pub mod auth;
pub mod budget;
pub mod grpc;
pub mod h2guard;
pub mod http;
pub mod http_json;
pub mod lifecycle;
pub mod limits;
pub mod linger;
pub mod pipeline;
pub mod window;

pub use pipeline::{Pipeline, Topology};
