//! `otlp-gateway-tune`: checks a host for the gateway and applies what can be applied without a
//! reboot (sysctls, IRQ affinity, RPS masks, irqbalance, memlock limits). Boot parameters and NIC
//! queue counts are printed for the operator.
// Tests, benches and binaries may unwrap: clippy.toml disallows it for the library.
#![allow(clippy::disallowed_methods)]

mod host;
mod irq;
mod limits;
mod plan;
mod report;
mod sysctl;
mod topology;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use host::Host;
use plan::Plan;
use report::{Finding, Status};

#[derive(Parser)]
#[command(name = "otlp-gateway-tune", version, about = "Check and tune a host for otlp-gateway")]
struct Cli {
    /// Root of the /proc, /sys and /etc trees read and written (a copy or fake tree in tests).
    #[arg(long, default_value = "/", global = true)]
    root: PathBuf,
    /// Gateway config: CPUs from service.runtime.cores, port from the OTLP/gRPC endpoint.
    /// Default: ROOT/etc/otlp-gateway/config.yaml.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Gateway CPUs, e.g. `2-7`; overrides the config.
    #[arg(long, global = true)]
    cores: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Report what is off and why; changes nothing. Exit 0 when nothing is off, 2 otherwise.
    Check,
    /// Write sysctl.d, irqbalance and limits.d files, set live values, print the operator's steps.
    Apply,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("otlp-gateway-tune: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let host = Host::new(&cli.root);
    let plan = Plan::load(&host, cli.config.as_deref(), cli.cores.as_deref())?;
    println!("{}", plan.describe());
    match cli.cmd {
        Cmd::Check => Ok(print_check(&check(&host, &plan))),
        Cmd::Apply => {
            let lines = apply(&host, &plan);
            for line in &lines {
                println!("{line}");
            }
            // Not root, or a read-only /etc: say so in the exit status too.
            Ok(if lines.iter().any(|l| l.contains("FAILED")) { ExitCode::FAILURE } else { ExitCode::SUCCESS })
        }
    }
}

/// Every finding, in the order the operator should read them.
pub fn check(host: &Host, plan: &Plan) -> Vec<Finding> {
    let mut all = sysctl::check(host, plan);
    all.extend(irq::check(host, plan));
    all.extend(limits::check(host));
    all.extend(topology::check(host, plan));
    all
}

/// Applies every fix it can; returns one line per action and the steps left to the operator.
pub fn apply(host: &Host, plan: &Plan) -> Vec<String> {
    let mut lines = sysctl::apply(host, plan);
    lines.extend(irq::apply(host, plan));
    lines.extend(limits::apply(host));
    lines.extend(topology::operator_steps(host, plan));
    lines
}

fn print_check(findings: &[Finding]) -> ExitCode {
    for f in findings {
        println!("{f}");
    }
    let off = findings.iter().filter(|f| f.status == Status::Off).count();
    println!("{off} setting(s) off");
    if off == 0 { ExitCode::SUCCESS } else { ExitCode::from(2) }
}
