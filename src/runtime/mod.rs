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

use glommio::{LocalExecutorBuilder, Placement};

/// glommio's storage-I/O pool per executor, registered with io_uring and so pinned and resident
/// from the start. The gateway reads and writes sockets only (their buffers come from the heap),
/// so it takes glommio's minimum (64 KiB); the default 10 MiB per executor was two thirds of an
/// idle one-core gateway's resident memory (control executor included).
const IO_MEMORY: usize = 64 << 10;

/// Every executor of this crate (cores, control plane, the tools) starts here.
pub fn executor(placement: Placement) -> LocalExecutorBuilder {
    LocalExecutorBuilder::new(placement).io_memory(IO_MEMORY)
}
