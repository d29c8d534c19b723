//! The runtime edge: glommio executors pinned to cores, listeners, the control plane's
//! messages to cores, and the I/O adapter. Nothing outside this folder (and the thin socket
//! code of receiver and exporter) knows about io_uring.

mod control;
pub mod core;
pub mod gateway;
pub mod io;
mod plan;
mod pools;
pub mod shutdown;
pub mod tuning;
