//! `e2e --serve-gateway CONFIG CPUS`: this bench binary hosting the gateway library with one
//! executor per entry of `CPUS`, where a CPU may repeat. The memory phase uses it to run 4
//! executors on a machine with fewer CPUs: what an executor holds (its listeners, connections,
//! windows, ring copy and request buffers) does not depend on whether it shares its CPU.
//! `otlp-gateway run` takes each CPU once (`--cores 0,0` is CPU 0), rightly: a repeated CPU
//! only makes sense for this measurement. The hosted gateway's per-core metrics repeat a CPU.

use std::path::Path;

use anyhow::{Result, anyhow, bail};
use otlp_gateway::Gateway;

/// The first argument that asks for this mode.
pub const FLAG: &str = "--serve-gateway";

/// Serves (until killed) when the command line asks for it; `None` otherwise.
pub fn serve_if_asked() -> Option<Result<()>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    (args.first().map(String::as_str) == Some(FLAG)).then(|| serve(&args[1..]))
}

fn serve(args: &[String]) -> Result<()> {
    let [config, cpus] = args else {
        bail!("usage: {FLAG} CONFIG CPU[,CPU...]");
    };
    let cfg = otlp_gateway::config::load_file(Path::new(config))
        .map_err(|e| anyhow!("{config}: {}", e.0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")))?;
    let cpus = cpus.split(',').map(str::parse).collect::<Result<Vec<usize>, _>>()?;
    let _gateway = Gateway::start(&cfg, Some(cpus))?;
    // The harness's `Proc` ends this process (SIGTERM, then SIGKILL), and PDEATHSIG covers a
    // harness that dies first.
    loop {
        std::thread::park();
    }
}
