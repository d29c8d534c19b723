//! The runs, in order: full load per path, the latency-versus-load sweep, CPU per span at a
//! fixed rate, the gateway's variants (gzip, OTLP/HTTP, JSON), 1 vs 2 cores, memory.

use std::cell::RefCell;

use anyhow::Result;

use crate::measure::{Load, Run, per_core, scrape, status_kib};
use crate::opts::Opts;
use crate::procs::{Collector, Gateway, Nginx, Sinks, Workdir};

/// The paths compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    Direct,
    Gateway,
    Nginx,
    Collector,
}

impl Path {
    pub const ALL: [Path; 4] = [Path::Direct, Path::Gateway, Path::Nginx, Path::Collector];
    /// The proxies (every path but direct).
    pub const PROXIES: [Path; 3] = [Path::Gateway, Path::Nginx, Path::Collector];

    pub fn label(self) -> &'static str {
        match self {
            Path::Direct => "loadgen → sink (direct)",
            Path::Gateway => "loadgen → otlp-gateway (1 core) → 3 sinks",
            Path::Nginx => "loadgen → nginx gRPC proxy (1 worker) → 3 sinks",
            Path::Collector => "loadgen → OTel Collector, loadbalancing exporter (1 CPU) → 3 sinks",
        }
    }

    pub fn short(self) -> &'static str {
        match self {
            Path::Direct => "direct",
            Path::Gateway => "otlp-gateway",
            Path::Nginx => "nginx",
            Path::Collector => "collector",
        }
    }
}

/// One gateway variant, at full load and at the fixed rate.
#[derive(Debug, Clone)]
pub struct Variant {
    pub name: &'static str,
    pub full: Run,
    pub fixed: Run,
}

/// 1 vs 2 gateway cores.
#[derive(Debug, Clone)]
pub struct CoreRun {
    pub cores: &'static str,
    pub connections: usize,
    pub run: Run,
    /// Client connections open on each core halfway through.
    pub per_core: Vec<(String, f64)>,
}

/// Everything a run measured.
#[derive(Debug, Clone, Default)]
pub struct Results {
    /// `date -u` and /proc/loadavg when the run started.
    pub started: String,
    pub load_avg: String,
    /// Repeated runs (`--reps`), interleaved across paths; tables quote the median.
    pub full: Vec<(Path, Vec<Run>)>,
    pub sweep: Vec<(Path, u64, Run)>,
    /// Direct and gateway at half the gateway's full load.
    pub half: Vec<(Path, Vec<Run>)>,
    pub fixed: Vec<(Path, Vec<Run>)>,
    pub variants: Vec<Variant>,
    pub cores: Vec<CoreRun>,
    /// (what, KiB)
    pub memory: Vec<(String, u64)>,
    /// The 1-core gateway's VmHWM after every run with it.
    pub gateway_peak_kib: Option<u64>,
    /// Why a part was skipped.
    pub notes: Vec<String>,
}

impl Results {
    /// The median full-load run by spans/s.
    pub fn full_of(&self, p: Path) -> Option<&Run> {
        median_by(samples(&self.full, p)?, |r| r.spans_per_s)
    }

    /// The median fixed-rate run by CPU per span.
    pub fn fixed_of(&self, p: Path) -> Option<&Run> {
        median_by(samples(&self.fixed, p)?, |r| r.us_per_span().unwrap_or(0.0))
    }

    /// The median half-load run by p99.
    pub fn half_of(&self, p: Path) -> Option<&Run> {
        median_by(samples(&self.half, p)?, |r| r.p99_ms)
    }
}

pub fn samples(runs: &[(Path, Vec<Run>)], p: Path) -> Option<&[Run]> {
    runs.iter().find(|(q, _)| *q == p).map(|(_, v)| v.as_slice())
}

/// The run whose `key` is the median (the lower middle one for an even count).
pub fn median_by(runs: &[Run], key: impl Fn(&Run) -> f64) -> Option<&Run> {
    let mut sorted: Vec<&Run> = runs.iter().collect();
    sorted.sort_by(|a, b| key(a).total_cmp(&key(b)));
    sorted.get(sorted.len().saturating_sub(1) / 2).copied()
}

/// Appends `run` to `p`'s samples.
fn push(runs: &mut Vec<(Path, Vec<Run>)>, p: Path, run: Run) {
    match runs.iter_mut().find(|(q, _)| *q == p) {
        Some((_, v)) => v.push(run),
        None => runs.push((p, vec![run])),
    }
}

/// The processes every phase but the last shares.
struct Bench<'a> {
    opts: &'a Opts,
    sinks: Sinks,
    gateway: Gateway,
    nginx: Option<Nginx>,
    collector: Option<Collector>,
}

impl Bench<'_> {
    fn port(&self, p: Path) -> Option<u16> {
        match p {
            Path::Direct => Some(self.sinks.ports[0]),
            Path::Gateway => Some(self.gateway.grpc),
            Path::Nginx => self.nginx.as_ref().map(|n| n.port),
            Path::Collector => self.collector.as_ref().map(|c| c.port),
        }
    }

    fn pid(&self, p: Path) -> Option<u32> {
        match p {
            Path::Direct => None,
            Path::Gateway => Some(self.gateway.proc.pid()),
            Path::Nginx => self.nginx.as_ref().map(|n| n.worker),
            Path::Collector => self.collector.as_ref().map(|c| c.proc.pid()),
        }
    }

    fn run(&self, p: Path, rate: Option<u64>) -> Result<Option<Run>> {
        let Some(port) = self.port(p) else { return Ok(None) };
        eprintln!("e2e: {} at {}", p.short(), rate.map_or("full load".into(), |r| format!("{r} spans/s")));
        let run = Load::new(port, self.opts.secs).rate(rate).run(&self.opts.bin, self.opts.load_cpu, self.pid(p))?;
        eprintln!(
            "e2e:   {:.0} spans/s, p99 {:.2} ms, {} failed {:?}",
            run.spans_per_s, run.p99_ms, run.failed, run.errors
        );
        Ok(Some(run))
    }
}

pub fn run_all(opts: &Opts) -> Result<Results> {
    let mut work = Workdir::new()?;
    let mut r = Results { started: date(), load_avg: load_avg(), ..Results::default() };
    eprintln!("e2e: started {}, load average {}", r.started, r.load_avg);
    let bench = Bench::start(opts, &work.path, &mut r)?;
    warm_up(&bench)?;
    full_and_sweep(&bench, &mut r)?;
    fixed(&bench, &mut r)?;
    variants(&bench, &work.path, &mut r)?;
    peaks(&bench, &mut r);
    multi_core(&bench, &work.path, &mut r)?;
    drop(bench);
    memory(opts, &work.path, &mut r)?;
    work.keep = false;
    Ok(r)
}

fn date() -> String {
    crate::report::sh("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
}

fn load_avg() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

impl<'a> Bench<'a> {
    fn start(opts: &'a Opts, work: &std::path::Path, r: &mut Results) -> Result<Bench<'a>> {
        let sinks = Sinks::start(&opts.bin, work, opts.sinks_cpu(), 0)?;
        let gateway = Gateway::start(&opts.bin, work, &sinks, &opts.proxy_cpu.to_string(), "none")?;
        let nginx = Nginx::start(&opts.nginx, work, &sinks, opts.proxy_cpu)
            .map_err(|e| r.notes.push(format!("nginx not measured: {e:#}")))
            .ok();
        let collector = Collector::start(&opts.collector, work, &sinks, opts.proxy_cpu)
            .map_err(|e| r.notes.push(format!("the Collector not measured: {e:#}")))
            .ok();
        Ok(Bench { opts, sinks, gateway, nginx, collector })
    }
}

fn peaks(b: &Bench, r: &mut Results) {
    r.gateway_peak_kib = Some(hwm(b.gateway.proc.pid()));
    r.memory.push(("gateway peak (VmHWM) after the runs above".into(), hwm(b.gateway.proc.pid())));
    if let Some(n) = &b.nginx {
        r.memory.push(("nginx worker peak (VmHWM) after the runs above".into(), hwm(n.worker)));
    }
    if let Some(c) = &b.collector {
        r.memory.push(("Collector peak (VmHWM) after the runs above".into(), hwm(c.proc.pid())));
    }
}

fn hwm(pid: u32) -> u64 {
    status_kib(pid, "VmHWM").unwrap_or(0)
}

fn warm_up(b: &Bench) -> Result<()> {
    for p in Path::PROXIES {
        if let Some(port) = b.port(p) {
            Load::new(port, 1.0).run(&b.opts.bin, b.opts.load_cpu, None)?;
        }
    }
    Ok(())
}

fn full_and_sweep(b: &Bench, r: &mut Results) -> Result<()> {
    repeat(b, &Path::ALL, |_| None, &mut r.full)?;
    let direct = r.full_of(Path::Direct).map_or(1e6, |d| d.spans_per_s);
    for rate in b.opts.sweep(direct) {
        for p in Path::ALL {
            if !worth_offering(r, p, rate) {
                continue;
            }
            if let Some(run) = b.run(p, Some(rate))? {
                r.sweep.push((p, rate, run));
            }
        }
    }
    let half = r.full_of(Path::Gateway).map_or(1e5, |g| g.spans_per_s / 2.0).round() as u64;
    repeat(b, &[Path::Direct, Path::Gateway], |_| Some(half), &mut r.half)
}

/// A rate up to twice a path's full-load median: one point past saturation shows the knee;
/// more would only spend time on queues that grow without bound.
fn worth_offering(r: &Results, p: Path, rate: u64) -> bool {
    r.full_of(p).is_none_or(|run| rate as f64 <= 2.0 * run.spans_per_s)
}

/// `--reps` rounds over `paths`, interleaved so drift hits every path alike.
fn repeat(
    b: &Bench,
    paths: &[Path],
    rate: impl Fn(Path) -> Option<u64>,
    out: &mut Vec<(Path, Vec<Run>)>,
) -> Result<()> {
    for _ in 0..b.opts.reps {
        for &p in paths {
            if let Some(run) = b.run(p, rate(p))? {
                push(out, p, run);
            }
        }
    }
    Ok(())
}

fn fixed(b: &Bench, r: &mut Results) -> Result<()> {
    repeat(b, &Path::PROXIES, |_| Some(b.opts.rate), &mut r.fixed)
}

/// The gateway's receive variants on the same gateway, and the Collector's default export
/// compression (gzip) on a second one.
fn variants(b: &Bench, work: &std::path::Path, r: &mut Results) -> Result<()> {
    let (bin, cpu, secs, rate) = (&b.opts.bin, b.opts.load_cpu, b.opts.secs, Some(b.opts.rate));
    let g = &b.gateway;
    let cases: [(&'static str, u16, &[&str]); 4] = [
        ("gRPC, gzip request bodies", g.grpc, &["--compression", "gzip"]),
        ("gRPC, zstd request bodies", g.grpc, &["--compression", "zstd"]),
        ("OTLP/HTTP protobuf (h2c)", g.http, &["--protocol", "http/protobuf"]),
        ("OTLP/HTTP JSON (h2c)", g.http, &["--protocol", "http/json"]),
    ];
    let pid = Some(g.proc.pid());
    for (name, port, flags) in cases {
        eprintln!("e2e: variant {name}");
        let load = Load::new(port, secs).flags(flags);
        let full = load.clone().run(bin, cpu, pid)?;
        let fixed = load.rate(rate).run(bin, cpu, pid)?;
        r.variants.push(Variant { name, full, fixed });
    }
    let gz = Gateway::start(bin, work, &b.sinks, &b.opts.proxy_cpu.to_string(), "gzip")?;
    eprintln!("e2e: variant gzip export");
    let (load, pid) = (Load::new(gz.grpc, secs), Some(gz.proc.pid()));
    let full = load.clone().run(bin, cpu, pid)?;
    let fixed = load.rate(rate).run(bin, cpu, pid)?;
    r.variants.push(Variant { name: "gRPC, gzip export (the Collector's default)", full, fixed });
    drop(gz);
    let off = "    coalesce:\n      max_in_flight: 0\n";
    let alone = Gateway::start_with(bin, work, &b.sinks, &b.opts.proxy_cpu.to_string(), "none", off)?;
    eprintln!("e2e: variant coalescing off");
    let (load, pid) = (Load::new(alone.grpc, secs), Some(alone.proc.pid()));
    let full = load.clone().run(bin, cpu, pid)?;
    let fixed = load.rate(rate).run(bin, cpu, pid)?;
    r.variants.push(Variant { name: "gRPC, coalescing off (`coalesce.max_in_flight: 0`)", full, fixed });
    Ok(())
}

/// 1 vs 2 gateway cores, with 4 and 16 client connections; connections per core from the
/// gateway's own gauge, scraped halfway through.
fn multi_core(b: &Bench, work: &std::path::Path, r: &mut Results) -> Result<()> {
    let two = format!("{},{}", b.opts.proxy_cpu, b.opts.load_cpu);
    let one = Gateway::start(&b.opts.bin, work, &b.sinks, &b.opts.proxy_cpu.to_string(), "none")?;
    let both = Gateway::start(&b.opts.bin, work, &b.sinks, &two, "none")?;
    for (cores, g) in [("1 core", &one), ("2 cores", &both)] {
        for conns in [4, 16] {
            eprintln!("e2e: {cores}, {conns} connections");
            let per_core = RefCell::new(Vec::new());
            let load = Load::new(g.grpc, b.opts.secs).conns(conns, 64 / conns.min(64));
            let mid = || *per_core.borrow_mut() = connections(g.metrics);
            let run = load.run_with(&b.opts.bin, b.opts.load_cpu, Some(g.proc.pid()), mid)?;
            r.cores.push(CoreRun { cores, connections: conns, run, per_core: per_core.take() });
        }
    }
    r.memory.push(("2-core gateway peak (VmHWM)".into(), hwm(both.proc.pid())));
    Ok(())
}

fn connections(metrics_port: u16) -> Vec<(String, f64)> {
    scrape(metrics_port).map(|m| per_core(&m, "otlp_gateway_core_connections")).unwrap_or_default()
}

/// 4 executors at full load (see [`four_executors`]), then overload: slow sinks (200 ms per
/// request) and 32 × 64 requests outstanding, far more than the sinks drain.
fn memory(opts: &Opts, work: &std::path::Path, r: &mut Results) -> Result<()> {
    four_executors(opts, work, r)?;
    let sinks = Sinks::start(&opts.bin, work, opts.sinks_cpu(), 200)?;
    let g = Gateway::start(&opts.bin, work, &sinks, &opts.proxy_cpu.to_string(), "none")?;
    eprintln!("e2e: overload");
    let run = Load::new(g.grpc, opts.secs).conns(32, 64).run(&opts.bin, opts.load_cpu, Some(g.proc.pid()))?;
    let what = format!(
        "overload: 2,048 requests outstanding, sinks hold each 200 ms ({:.0} spans/s, {} refused); peak (VmHWM)",
        run.spans_per_s, run.failed
    );
    r.memory.push((what, hwm(g.proc.pid())));
    Ok(())
}

/// Steady-state memory with 4 executors at full load, 16 connections (4 per executor on
/// average). With fewer than 4 CPUs the bench binary hosts them on the CPUs it has, two per
/// CPU (`host.rs`), and hosts 1 executor the same way, so the increment per executor comes
/// from one process image and one run.
fn four_executors(opts: &Opts, work: &std::path::Path, r: &mut Results) -> Result<()> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let sinks = Sinks::start(&opts.bin, work, opts.sinks_cpu(), 0)?;
    let load =
        |g: &Gateway| Load::new(g.grpc, opts.secs).conns(16, 4).run(&opts.bin, opts.load_cpu, Some(g.proc.pid()));
    if cpus >= 4 {
        let g = Gateway::start(&opts.bin, work, &sinks, "0-3", "none")?;
        let run = load(&g)?;
        r.memory.push(("4 cores, 16 connections, full load, VmRSS halfway".into(), run.proxy_rss_kib.unwrap_or(0)));
        r.memory.push(("4 cores, peak (VmHWM)".into(), hwm(g.proc.pid())));
        return Ok(());
    }
    let pair = [opts.proxy_cpu, opts.load_cpu];
    for executors in [vec![opts.proxy_cpu], (0..4).map(|i| pair[i % 2]).collect()] {
        eprintln!("e2e: memory, {} hosted executor(s)", executors.len());
        let g = Gateway::hosted(work, &sinks, &executors)?;
        let run = load(&g)?;
        let list = executors.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        let what = match executors.len() {
            1 => format!("1 executor on CPU {list}"),
            n => format!("{n} executors on CPUs {list}"),
        };
        let what = format!("{what}, 16 connections, {:.0} spans/s", run.spans_per_s);
        r.memory.push((format!("{what}, VmRSS halfway"), run.proxy_rss_kib.unwrap_or(0)));
        r.memory.push((format!("{what}, peak (VmHWM)"), hwm(g.proc.pid())));
    }
    r.notes.push(format!(
        "this machine has {cpus} CPUs: the 4-executor rows ran two executors per CPU, hosted by the bench binary \
         (`benches/e2e/host.rs`), as did the 1-executor row beside them"
    ));
    Ok(())
}
