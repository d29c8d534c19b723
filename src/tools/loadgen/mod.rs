//! The load generator: realistic ExportTraceServiceRequests with distinct trace ids over
//! C HTTP/2 connections × S concurrent streams, closed-loop or at a fixed span rate; over
//! OTLP/gRPC or OTLP/HTTP (protobuf or JSON), compressed or not.

mod bodies;
mod target;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::Placement;

use self::bodies::Bodies;
pub use self::bodies::Protocol;
use self::target::Target;
use super::spangen::Template;
use crate::compression::Encoding;

/// What to send.
#[derive(Debug, Clone)]
pub struct LoadgenOpts {
    pub target: SocketAddr,
    /// Spans per second in total; `None` sends as fast as answers come back.
    pub rate: Option<u64>,
    pub duration: Duration,
    pub spans_per_request: usize,
    /// Consecutive spans sharing a trace id.
    pub spans_per_trace: usize,
    pub connections: usize,
    /// Concurrent requests per connection.
    pub streams: usize,
    /// Print a live progress line to stderr every second.
    pub progress: bool,
    pub placement: Placement,
    pub protocol: Protocol,
    /// Body compression (`grpc-encoding` or `Content-Encoding`).
    pub compression: Encoding,
    /// TLS to the target (`--tls-ca`); `None`: plaintext h2c.
    pub tls: Option<crate::tls::BackendTls>,
}

impl Default for LoadgenOpts {
    fn default() -> Self {
        LoadgenOpts {
            target: SocketAddr::from(([127, 0, 0, 1], 4317)),
            rate: None,
            duration: Duration::from_secs(10),
            spans_per_request: 100,
            spans_per_trace: 1,
            connections: 4,
            streams: 16,
            progress: false,
            placement: Placement::Unbound,
            protocol: Protocol::Grpc,
            compression: Encoding::Identity,
            tls: None,
        }
    }
}

/// What happened.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub elapsed: Duration,
    pub requests_ok: u64,
    pub spans_ok: u64,
    pub traces_ok: u64,
    pub requests_failed: u64,
    /// Body bytes of successful requests as sent (compressed, if compressing).
    pub bytes_ok: u64,
    /// Failures by reason (gRPC status or transport error).
    pub errors: BTreeMap<String, u64>,
    /// Latency of successful requests in microseconds, sorted.
    pub latencies_us: Vec<u32>,
}

impl Report {
    pub fn spans_per_sec(&self) -> f64 {
        self.spans_ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `p`-th percentile (0..=100) of successful request latency.
    pub fn percentile(&self, p: f64) -> Duration {
        let Some(last) = self.latencies_us.len().checked_sub(1) else {
            return Duration::ZERO;
        };
        let i = ((p / 100.0) * last as f64).round() as usize;
        Duration::from_micros(u64::from(self.latencies_us[i.min(last)]))
    }

    /// The final lines the CLI prints.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "spans/s: {:.0}\nspans ok: {}  requests ok: {}  requests failed: {}\nlatency p50 {:?}  p90 {:?}  p99 {:?}  max {:?}\n",
            self.spans_per_sec(),
            self.spans_ok,
            self.requests_ok,
            self.requests_failed,
            self.percentile(50.0),
            self.percentile(90.0),
            self.percentile(99.0),
            self.percentile(100.0),
        );
        s.push_str(&format!("bytes ok: {}\n", self.bytes_ok));
        for (reason, n) in &self.errors {
            s.push_str(&format!("error x{n}: {reason}\n"));
        }
        s
    }
}

/// Runs the load on its own executor thread and returns the report.
pub fn run(opts: LoadgenOpts) -> anyhow::Result<Report> {
    let placement = opts.placement.clone();
    let handle = crate::runtime::executor(placement)
        .name("otlp-loadgen")
        .spawn(move || drive(opts))
        .map_err(|e| anyhow::anyhow!("loadgen executor: {e}"))?;
    handle.join().map_err(|e| anyhow::anyhow!("loadgen executor: {e}"))?
}

async fn drive(opts: LoadgenOpts) -> anyhow::Result<Report> {
    let template = Template::new("loadgen", opts.spans_per_request, opts.spans_per_trace);
    let bodies = Rc::new(Bodies::new(template, opts.protocol, opts.compression)?);
    let report = Rc::new(RefCell::new(Report::default()));
    let workers = opts.connections.max(1) * opts.streams.max(1);
    let interval =
        opts.rate.map(|r| Duration::from_secs_f64(workers as f64 * opts.spans_per_request as f64 / r.max(1) as f64));
    let start = Instant::now();
    let deadline = start + opts.duration;
    let mut tasks = Vec::new();
    for c in 0..opts.connections.max(1) {
        // One target per connection: it reconnects after the peer closes (nginx sends
        // GOAWAY every 1000 requests by default) and backs off while the target is down.
        let conn = Rc::new(Target::new(opts.target, opts.protocol, opts.compression, opts.tls.clone()));
        for s in 0..opts.streams.max(1) {
            let w = Worker { conn: conn.clone(), bodies: bodies.clone(), report: report.clone() };
            let seed = (c * 1000 + s) as u64 ^ start.elapsed().as_nanos() as u64;
            let offset = interval.map(|i| i.mul_f64((c * opts.streams + s) as f64 / workers as f64));
            tasks.push(glommio::spawn_local(w.run(seed, deadline, interval, offset, opts.spans_per_trace)));
        }
    }
    let progress = opts.progress.then(|| glommio::spawn_local(show_progress(report.clone(), start, deadline)));
    for t in tasks {
        t.await;
    }
    if let Some(p) = progress {
        p.cancel().await;
        eprintln!();
    }
    let mut r = report.take();
    r.elapsed = start.elapsed();
    r.latencies_us.sort_unstable();
    Ok(r)
}

struct Worker {
    conn: Rc<Target>,
    bodies: Rc<Bodies>,
    report: Rc<RefCell<Report>>,
}

impl Worker {
    async fn run(
        self,
        seed: u64,
        deadline: Instant,
        interval: Option<Duration>,
        offset: Option<Duration>,
        per_trace: usize,
    ) {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut next = Instant::now() + offset.unwrap_or_default();
        while Instant::now() < deadline {
            if let Some(i) = interval {
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    glommio::timer::sleep(wait).await;
                }
                next += i;
            }
            self.once(&mut rng, per_trace).await;
        }
    }

    async fn once(&self, rng: &mut fastrand::Rng, per_trace: usize) {
        let body = self.bodies.next(rng);
        let len = body.len() as u64;
        let t0 = Instant::now();
        let result = self.conn.send(body).await;
        if let Err(Some(pause)) = result.as_ref().map_err(|f| f.pause) {
            // Don't spin on a target that is down: wait out its backoff.
            glommio::timer::sleep(pause.clamp(Duration::from_millis(1), Duration::from_secs(1))).await;
        }
        let mut r = self.report.borrow_mut();
        match result {
            Ok(()) => {
                let spans = self.bodies.spans();
                r.requests_ok += 1;
                r.bytes_ok += len;
                r.spans_ok += spans as u64;
                r.traces_ok += spans.div_ceil(per_trace.max(1)) as u64;
                r.latencies_us.push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
            }
            Err(f) => {
                r.requests_failed += 1;
                *r.errors.entry(f.reason).or_default() += 1;
            }
        }
    }
}

async fn show_progress(report: Rc<RefCell<Report>>, start: Instant, deadline: Instant) {
    let mut last = (0u64, Instant::now());
    while Instant::now() < deadline {
        glommio::timer::sleep(Duration::from_secs(1)).await;
        let r = report.borrow();
        let rate = (r.spans_ok - last.0) as f64 / last.1.elapsed().as_secs_f64();
        last = (r.spans_ok, Instant::now());
        eprint!(
            "\r[{:>4}s] {:>10.0} spans/s  ok {:>10}  failed {:>6}   ",
            start.elapsed().as_secs(),
            rate,
            r.spans_ok,
            r.requests_failed
        );
        let _ = std::io::stderr().flush();
    }
}
