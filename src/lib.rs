//! otlp-gateway: a thread-per-core OTLP gateway.
//!
//! The data path, in folder order: `receiver` (OTLP/gRPC server) → `wire` (zero-copy protobuf
//! walking and splitting) → `routing` (keys, consistent-hash ring) → `exporter` (per-core backend
//! pools). Beside it: `runtime` (glommio executors, the only place that knows about io_uring),
//! `config`, `grpc` (framing and status shared by both ends), `tls` (rustls configs and the
//! plaintext-or-TLS stream) and `tools` (sink, loadgen, demo).

// No panics on peer data: the library never unwraps (tests may).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
// clippy.toml's `disallowed-methods` names them too, with the reason; unit tests may unwrap.
#![cfg_attr(test, allow(clippy::disallowed_methods))]

pub mod compression;
pub mod config;
pub mod exporter;
pub mod grpc;
pub mod receiver;
pub mod resolver;
pub mod routing;
pub mod runtime;
pub mod telemetry;
pub mod tls;
pub mod tools;
pub mod wire;
pub use runtime::gateway::Gateway;
