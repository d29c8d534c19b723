//! Measurements: loadgen runs (parsed from its summary) and a process's CPU time and memory
//! from /proc, which do not depend on what else the machine runs.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Field `n` (1-based, as in proc(5)) of /proc/PID/stat; fields counted after the command name.
pub fn stat_field(pid: u32, n: usize) -> Option<u64> {
    stat_field_of(&format!("/proc/{pid}/stat"), n)
}

fn stat_field_of<T: std::str::FromStr>(path: &str, n: usize) -> Option<T> {
    let text = std::fs::read_to_string(path).ok()?;
    let after_name = &text[text.rfind(')')? + 2..];
    after_name.split_whitespace().nth(n - 3)?.parse().ok()
}

/// This process's nice value (field 19).
pub fn own_nice() -> i64 {
    stat_field_of("/proc/self/stat", 19).unwrap_or(0)
}

/// User + system CPU seconds of `pid` so far (utime + stime of /proc/PID/stat: every thread,
/// including threads that have exited).
pub fn cpu_seconds(pid: u32) -> f64 {
    let ticks = stat_field(pid, 14).unwrap_or(0) + stat_field(pid, 15).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    ticks as f64 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// A `/proc/PID/status` line in KiB (`VmRSS`, `VmHWM`).
pub fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(key) && l[key.len()..].starts_with(':'))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// (busy, total) ticks of every CPU from /proc/stat (busy: all but idle and iowait).
fn cpu_ticks() -> Vec<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let per_cpu = text.lines().filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "));
    let ticks = |l: &str| -> Vec<u64> { l.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect() };
    per_cpu
        .map(ticks)
        .map(|t| (t.iter().sum::<u64>() - t.get(3).unwrap_or(&0) - t.get(4).unwrap_or(&0), t.iter().sum()))
        .collect()
}

/// Busy fraction of every CPU between two [`cpu_ticks`] snapshots.
fn busy(before: &[(u64, u64)], after: &[(u64, u64)]) -> Vec<f64> {
    let frac = |(b, a): (&(u64, u64), &(u64, u64))| (a.0 - b.0) as f64 / (a.1 - b.1).max(1) as f64;
    before.iter().zip(after).map(frac).collect()
}

/// What one loadgen run reported, with the proxy's cost during it.
#[derive(Debug, Clone, Default)]
pub struct Run {
    pub spans_per_s: f64,
    pub spans_ok: u64,
    pub failed: u64,
    pub bytes_ok: u64,
    pub secs: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// loadgen's `error xN: reason` lines.
    pub errors: Vec<String>,
    /// CPU seconds the proxy spent during the run.
    pub proxy_cpu_s: Option<f64>,
    /// The proxy's resident set halfway through the run.
    pub proxy_rss_kib: Option<u64>,
    /// Busy fraction of each CPU of the machine over the run.
    pub cpu_busy: Vec<f64>,
}

impl Run {
    /// Proxy CPU per acknowledged span, in µs.
    pub fn us_per_span(&self) -> Option<f64> {
        Some(self.proxy_cpu_s? * 1e6 / self.spans_ok.max(1) as f64)
    }
}

/// One loadgen invocation.
#[derive(Debug, Clone)]
pub struct Load {
    pub port: u16,
    pub rate: Option<u64>,
    pub secs: f64,
    pub connections: usize,
    pub streams: usize,
    /// Extra flags (`--protocol`, `--compression`).
    pub extra: Vec<String>,
}

impl Load {
    pub fn new(port: u16, secs: f64) -> Load {
        Load { port, rate: None, secs, connections: 4, streams: 16, extra: Vec::new() }
    }

    pub fn rate(mut self, rate: Option<u64>) -> Load {
        self.rate = rate;
        self
    }

    pub fn flags(mut self, flags: &[&str]) -> Load {
        self.extra = flags.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn conns(mut self, connections: usize, streams: usize) -> Load {
        (self.connections, self.streams) = (connections, streams);
        self
    }

    fn command(&self, bin: &Path, cpu: usize) -> Command {
        let mut cmd = Command::new(bin);
        cmd.args(["loadgen", "--target", &format!("127.0.0.1:{}", self.port), "--cpu", &cpu.to_string()]);
        cmd.args(["--duration", &self.secs.to_string()]);
        cmd.args(["--connections", &self.connections.to_string(), "--streams", &self.streams.to_string()]);
        if let Some(r) = self.rate {
            cmd.args(["--rate", &r.to_string()]);
        }
        cmd.args(&self.extra);
        cmd
    }

    /// Runs loadgen on `cpu`, measuring `proxy` (a pid) meanwhile.
    pub fn run(&self, bin: &Path, cpu: usize, proxy: Option<u32>) -> Result<Run> {
        self.run_with(bin, cpu, proxy, || {})
    }

    /// [`run`](Self::run), calling `mid` halfway through.
    pub fn run_with(&self, bin: &Path, cpu: usize, proxy: Option<u32>, mid: impl FnOnce()) -> Result<Run> {
        let (cpu0, ticks0) = (proxy.map(cpu_seconds), cpu_ticks());
        let mut cmd = self.command(bin, cpu);
        crate::procs::pin(&mut cmd, &[cpu]);
        cmd.stdin(Stdio::null()).stderr(Stdio::null()).stdout(Stdio::piped());
        let child = crate::procs::die_with_parent(&mut cmd).spawn().context("starting loadgen")?;
        std::thread::sleep(Duration::from_secs_f64(self.secs / 2.0));
        let rss = proxy.and_then(|p| status_kib(p, "VmRSS"));
        mid();
        let text = bounded_output(child, Duration::from_secs_f64(self.secs + 30.0))?;
        let mut run = parse(&text).with_context(|| format!("loadgen printed no summary: {text}"))?;
        run.proxy_cpu_s = proxy.zip(cpu0).map(|(p, c0)| cpu_seconds(p) - c0);
        run.proxy_rss_kib = rss;
        run.cpu_busy = busy(&ticks0, &cpu_ticks());
        Ok(run)
    }
}

/// The child's stdout once it exits; killed if it outlives `limit`.
fn bounded_output(mut child: Child, limit: Duration) -> Result<String> {
    let deadline = Instant::now() + limit;
    while child.try_wait()?.is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if child.try_wait()?.is_none() {
        let _ = child.kill();
        let _ = child.wait();
        bail!("loadgen still running after {limit:?}: killed");
    }
    Ok(String::from_utf8_lossy(&child.wait_with_output()?.stdout).into_owned())
}

/// Parses loadgen's summary.
pub fn parse(text: &str) -> Option<Run> {
    let mut run = Run::default();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["spans/s:", v] => run.spans_per_s = v.parse().ok()?,
            ["spans", "ok:", n, _, _, _, _, _, f] => (run.spans_ok, run.failed) = (n.parse().ok()?, f.parse().ok()?),
            ["latency", "p50", p50, "p90", _, "p99", p99, ..] => (run.p50_ms, run.p99_ms) = (ms(p50)?, ms(p99)?),
            ["bytes", "ok:", n] => run.bytes_ok = n.parse().ok()?,
            _ if line.starts_with("error x") => run.errors.push(line["error ".len()..].to_owned()),
            _ => {}
        }
    }
    run.secs = run.spans_ok as f64 / run.spans_per_s.max(1e-9);
    (run.spans_ok > 0).then_some(run)
}

/// A Rust `Duration` debug string (`384µs`, `1.006ms`, `2.5s`, `0ns`) in milliseconds.
fn ms(text: &str) -> Option<f64> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (value, unit) = text.split_at(split);
    let scale = match unit {
        "ns" => 1e-6,
        "µs" => 1e-3,
        "ms" => 1.0,
        "s" => 1e3,
        _ => return None,
    };
    Some(value.parse::<f64>().ok()? * scale)
}

/// The first Prometheus sample values of `metric`, by their `core` label.
pub fn per_core(metrics: &str, metric: &str) -> Vec<(String, f64)> {
    let prefix = format!("{metric}{{");
    let sample = |l: &str| {
        let rest = l.strip_prefix(&prefix)?;
        let core = rest.split("core=\"").nth(1)?.split('"').next()?.to_owned();
        Some((core, rest.rsplit(' ').next()?.parse().ok()?))
    };
    metrics.lines().filter_map(sample).collect()
}

/// GET /metrics from the gateway's telemetry endpoint.
pub fn scrape(port: u16) -> Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    Ok(text)
}
