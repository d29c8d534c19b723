//! The `otlp-gateway` command: run, validate, sink, loadgen, demo.
// Tests, benches and binaries may unwrap: clippy.toml disallows it for the library.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use glommio::Placement;
use otlp_gateway::Gateway;
use otlp_gateway::compression::Encoding;
use otlp_gateway::config::{self, EXIT_CONFIG};
use otlp_gateway::telemetry::logging;
use otlp_gateway::tls;
use otlp_gateway::tools::{demo, loadgen, sink::Sink};

#[derive(Parser)]
#[command(
    name = "otlp-gateway",
    version,
    about = "Thread-per-core OTLP gateway: splits OTLP by routing key and load-balances it over a collector tier"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the gateway.
    Run {
        #[arg(long)]
        config: PathBuf,
        /// CPUs to pin one executor each to, e.g. `1` or `0-3`; default all online CPUs.
        #[arg(long)]
        cores: Option<String>,
    },
    /// Check a configuration and report every error with its key path (exit 64 on errors).
    Validate {
        #[arg(long)]
        config: PathBuf,
    },
    /// Print the effective configuration: `${env:...}` expanded, every default filled in,
    /// secrets masked (exit 64 on errors).
    PrintConfig {
        #[arg(long)]
        config: PathBuf,
    },
    /// A counting OTLP/gRPC backend that prints spans/s for each listener.
    Sink {
        /// Comma-separated listen addresses.
        #[arg(long, value_delimiter = ',', required = true)]
        listen: Vec<SocketAddr>,
        /// Pin the sink to this CPU.
        #[arg(long)]
        cpu: Option<usize>,
        /// Serve at most this many items per second per listener, one request after another,
        /// like a collector of fixed capacity (overload runs); default unlimited.
        #[arg(long)]
        max_rate: Option<u64>,
        /// Serve TLS with this PEM certificate chain (needs `--tls-key`).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of `--tls-cert`.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Hold every request this many milliseconds before answering (a slow backend).
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
    },
    /// Send realistic ExportTraceServiceRequests with distinct trace ids.
    Loadgen {
        #[arg(long)]
        target: SocketAddr,
        /// Spans per second in total; omit to send as fast as answers return.
        #[arg(long)]
        rate: Option<u64>,
        /// Seconds to run.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        #[arg(long, default_value_t = 100)]
        spans_per_request: usize,
        /// Consecutive spans of a request that share a trace id (1: every span its own trace).
        /// SDK batches often carry several spans of one trace; the Collector's loadbalancing
        /// exporter sends one request per trace, so this sets its fan-out.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
        spans_per_trace: u16,
        #[arg(long, default_value_t = 4)]
        connections: usize,
        /// Concurrent requests per connection.
        #[arg(long, default_value_t = 16)]
        streams: usize,
        /// Pin the load generator to this CPU.
        #[arg(long)]
        cpu: Option<usize>,
        /// Connect with TLS, trusting the CAs in this PEM file (gRPC only).
        #[arg(long)]
        tls_ca: Option<PathBuf>,
        /// The name to verify the target's certificate by (default: the target's IP).
        #[arg(long, requires = "tls_ca")]
        tls_server_name: Option<String>,
        /// `grpc`, `http/protobuf` or `http/json` (OTLP/HTTP is sent over h2c).
        #[arg(long, default_value = "grpc", value_parser = loadgen::Protocol::parse)]
        protocol: loadgen::Protocol,
        /// Body compression: `none`, `gzip`, `zstd` or `snappy` (gRPC only).
        #[arg(long, default_value = "none", value_parser = parse_compression)]
        compression: Encoding,
    },
    /// Run the gateway, three sinks and loadgen on loopback from an embedded config.
    Demo {
        /// Seconds of load.
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
        /// Gateway CPUs (default: 0).
        #[arg(long)]
        cores: Option<String>,
    },
}

fn main() -> ExitCode {
    match dispatch(Cli::parse().cmd) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cmd: Cmd) -> anyhow::Result<ExitCode> {
    match cmd {
        Cmd::Run { config, cores } => run(&config, cores.as_deref()),
        Cmd::Validate { config } => Ok(validate(&config)),
        Cmd::PrintConfig { config } => Ok(print_config(&config)),
        Cmd::Sink { listen, cpu, max_rate, delay_ms, tls_cert, tls_key } => {
            let tls = tls_cert.zip(tls_key);
            sink(&listen, cpu, SinkLimits { max_rate, delay: Duration::from_millis(delay_ms) }, tls)
        }
        Cmd::Loadgen {
            target,
            rate,
            duration,
            spans_per_request,
            spans_per_trace,
            connections,
            streams,
            cpu,
            tls_ca,
            tls_server_name,
            protocol,
            compression,
        } => {
            anyhow::ensure!(tls_ca.is_none() || protocol == loadgen::Protocol::Grpc, "--tls-ca needs --protocol grpc");
            let opts = loadgen::LoadgenOpts {
                target,
                rate,
                duration: Duration::from_secs_f64(duration),
                spans_per_request,
                spans_per_trace: usize::from(spans_per_trace),
                connections,
                streams,
                progress: true,
                placement: placement(cpu),
                tls: tls_ca.map(|ca| client_tls(&ca, tls_server_name)).transpose()?,
                protocol,
                compression,
            };
            print!("{}", loadgen::run(opts)?.summary());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Demo { duration, cores } => run_demo(duration, cores.as_deref()),
    }
}

fn placement(cpu: Option<usize>) -> Placement {
    cpu.map_or(Placement::Unbound, Placement::Fixed)
}

fn parse_compression(s: &str) -> Result<Encoding, String> {
    let none = s == "none";
    let encoding = if none { Some(Encoding::Identity) } else { Encoding::from_token(s.as_bytes()) };
    encoding.ok_or_else(|| format!("unknown compression {s:?}"))
}

fn parse_cores(s: Option<&str>) -> anyhow::Result<Option<Vec<usize>>> {
    s.map(|s| config::parse_cores(s).map_err(|e| anyhow::anyhow!("--cores {s}: {e}"))).transpose()
}

fn load(path: &std::path::Path) -> Result<config::Config, ExitCode> {
    config::load_file(path).map_err(|errors| {
        eprintln!("{}: {} configuration error(s):", path.display(), errors.0.len());
        for e in &errors.0 {
            eprintln!("  {e}");
        }
        ExitCode::from(EXIT_CONFIG as u8)
    })
}

fn validate(path: &std::path::Path) -> ExitCode {
    match load(path) {
        Ok(_) => {
            println!("{}: configuration is valid", path.display());
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

fn print_config(path: &std::path::Path) -> ExitCode {
    match load(path) {
        Ok(cfg) => {
            print!("{}", config::effective_yaml(&cfg));
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

fn run(path: &std::path::Path, cores: Option<&str>) -> anyhow::Result<ExitCode> {
    let cfg = match load(path) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    logging::init(&cfg.telemetry.logs);
    let mut gateway = Gateway::start(&cfg, parse_cores(cores)?).context("starting the gateway")?;
    let stop = gateway.stop_flag();
    register_stop(&stop)?;
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())?;
    log::info!(
        "otlp-gateway: OTLP/gRPC on {} with {} core(s) {:?}",
        gateway.grpc_addr,
        gateway.cores.len(),
        gateway.cores
    );
    if let Some(addr) = gateway.metrics_addr {
        log::info!("otlp-gateway: metrics on http://{addr}/metrics, status page on http://{addr}/");
    }
    if let Some(addr) = gateway.health_addr {
        log::info!("otlp-gateway: health check on http://{addr}");
    }
    while !stop.load(Ordering::SeqCst) {
        if hup.swap(false, Ordering::SeqCst) {
            reload(&mut gateway, path);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    gateway.wait();
    log::info!("otlp-gateway: stopped");
    Ok(ExitCode::SUCCESS)
}

/// SIGHUP: reads the config again and applies it; a config that does not load, or that
/// changes what needs a restart, is logged and the running one stays.
fn reload(gateway: &mut Gateway, path: &std::path::Path) {
    let cfg = match config::load_file(path) {
        Ok(cfg) => cfg,
        Err(errors) => return log::error!("otlp-gateway: reload refused, the config has errors:\n{errors}"),
    };
    match gateway.reload(&cfg) {
        Ok(()) => log::info!("otlp-gateway: reloaded {}", path.display()),
        Err(e) => log::error!("otlp-gateway: reload refused: {e}"),
    }
}

fn register_stop(flag: &Arc<AtomicBool>) -> anyhow::Result<()> {
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, flag.clone())?;
    }
    Ok(())
}

/// Loadgen's TLS: trust `ca`, verify the target as `name` (else its IP).
fn client_tls(ca: &std::path::Path, name: Option<String>) -> anyhow::Result<tls::BackendTls> {
    let (min_version, max_version) = (tls::TlsVersion::V1_2, tls::TlsVersion::V1_3);
    let files =
        tls::ClientFiles { ca_file: Some(ca), identity: None, insecure_skip_verify: false, min_version, max_version };
    let config = tls::client_config(&files).map_err(tls_errors)?;
    let server_name = name.map(tls::ServerName::try_from).transpose().context("--tls-server-name")?;
    Ok(tls::BackendTls { config, server_name })
}

/// The sink's TLS config from `--tls-cert` and `--tls-key`.
fn server_tls((cert, key): (PathBuf, PathBuf)) -> anyhow::Result<Arc<tls::ServerConfig>> {
    let (min_version, max_version) = (tls::TlsVersion::V1_2, tls::TlsVersion::V1_3);
    let files = tls::ServerFiles {
        cert_file: &cert,
        key_file: &key,
        client_ca_file: None,
        min_version,
        max_version,
        alpn: tls::ALPN_GRPC,
    };
    Ok(tls::server_config(&files).map_err(tls_errors)?.config)
}

fn tls_errors(errors: Vec<tls::TlsError>) -> anyhow::Error {
    anyhow::anyhow!(errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
}

/// How a `sink` process plays a slow collector.
struct SinkLimits {
    max_rate: Option<u64>,
    delay: Duration,
}

fn sink(
    listen: &[SocketAddr],
    cpu: Option<usize>,
    limits: SinkLimits,
    tls: Option<(PathBuf, PathBuf)>,
) -> anyhow::Result<ExitCode> {
    let sink = Sink::start_tls(listen, placement(cpu), false, tls.map(server_tls).transpose()?)?;
    sink.stats.iter().for_each(|s| s.set_max_rate(limits.max_rate.unwrap_or(0)));
    sink.shared.set_delay(limits.delay);
    let stop = Arc::new(AtomicBool::new(false));
    register_stop(&stop)?;
    eprintln!("sink: listening on {:?}", sink.addrs);
    let mut last: Vec<(u64, u64)> = vec![(0, 0); sink.stats.len()];
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_secs(1));
        let line: Vec<String> = sink
            .stats
            .iter()
            .zip(&sink.addrs)
            .zip(last.iter_mut())
            .map(|((s, a), l)| {
                let now = (s.spans(), s.requests.load(Ordering::Relaxed));
                let (spans, requests) = (now.0 - l.0, now.1 - l.1);
                *l = now;
                format!("{a} {spans} spans/s {requests} requests/s")
            })
            .collect();
        println!("{}", line.join("  "));
    }
    sink.stop();
    Ok(ExitCode::SUCCESS)
}

fn run_demo(duration: f64, cores: Option<&str>) -> anyhow::Result<ExitCode> {
    println!("demo: embedded config\n{}", demo::DEMO_CONFIG);
    let result = demo::run(Duration::from_secs_f64(duration), parse_cores(cores)?)?;
    println!("{}", result.report.summary());
    println!("{}", result.render());
    Ok(if result.passed() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
