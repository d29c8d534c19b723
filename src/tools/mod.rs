//! The tools that ship in the binary: a counting sink, a load generator, the demo, and the
//! realistic span generator they share with tests and benches.

pub mod demo;
pub mod dnsserver;
pub mod loadgen;
pub mod record;
pub mod signalgen;
pub mod sink;
pub mod spangen;
pub mod throttle;
