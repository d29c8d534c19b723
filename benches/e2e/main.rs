//! End-to-end benchmark: loadgen → {nothing | otlp-gateway | nginx gRPC proxy | the Collector's
//! loadbalancing exporter} → 3 sinks, all in one run on this machine. Writes a markdown section
//! into docs/benchmarks.md and SVG plots into docs/bench/.
//!
//!   cargo bench --bench e2e [-- --quick] [--secs S] [--reps N] [--rate N] [--bin PATH]
//!                           [--nginx PATH] [--collector PATH] [--proxy-cpu 0] [--load-cpu 1]
//!                           [--sink-cpu N] [--out DIR]
//!
//! The proxy under test gets `--proxy-cpu`; loadgen and the sinks share `--load-cpu`, unless
//! `--sink-cpu` gives the sinks their own. Quick mode (short runs, fewer points) writes under
//! target/e2e-quick unless `--out` is given.

mod host;
mod measure;
mod opts;
mod phases;
mod plot;
mod procs;
mod report;

use anyhow::Result;

fn main() -> Result<()> {
    if let Some(served) = host::serve_if_asked() {
        return served;
    }
    let opts = opts::Opts::parse()?;
    eprintln!("e2e: {}", opts.describe());
    let results = phases::run_all(&opts)?;
    let markdown = report::render(&opts, &results);
    println!("{markdown}");
    report::write(&opts, &markdown)?;
    plot::draw_all(&opts.out.join("bench"), &results, &report::stamp(&opts, &results))?;
    eprintln!("e2e: wrote {} and {}", opts.doc().display(), opts.out.join("bench").display());
    Ok(())
}
