//! The telemetry HTTP endpoints: `/metrics` and the status page `/` on the metrics address, and
//! the health check on its own address. Each runs on a plain thread (tiny_http's), never on a
//! data-plane core; a request costs one scrape message round to the cores.

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use tiny_http::{Header, Request, Response, Server};

use super::health::{self, Phase, Verdict};
use super::prometheus::{self, Names, Totals};
use super::status_page::{self, Rates};
use super::{CoreSnapshot, Scraper};
use crate::config::{HostPort, MetricsLevel, TelemetryConfig};
use crate::resolver::StatsHandle;

/// How long a request waits for the cores' snapshots. A core answers between two requests'
/// worth of work, in microseconds; past this it is stuck or stopping.
const SCRAPE_WAIT: Duration = Duration::from_secs(1);

/// How often the server threads look at the stop flag.
const POLL: Duration = Duration::from_millis(100);

/// Why the telemetry endpoints could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot listen on {what} endpoint {addr}: {reason}")]
    Bind { what: &'static str, addr: String, reason: String },
}

/// What the endpoints read: filled in by the gateway as it starts.
#[derive(Debug)]
pub struct Shared {
    phase: AtomicU8,
    up_since: SystemTime,
    draining: OnceLock<Arc<AtomicBool>>,
    scraper: OnceLock<Scraper>,
    /// Replaced on reload (`update`).
    names: Mutex<Names>,
    resolvers: Mutex<Vec<(&'static str, StatsHandle)>>,
    rates: Mutex<Rates>,
    /// Each core's last snapshot, standing in for a core that does not answer (the control
    /// plane stops relaying scrapes once draining starts): counters never appear to reset.
    last: Mutex<Vec<CoreSnapshot>>,
}

impl Shared {
    fn new() -> Self {
        Shared {
            phase: AtomicU8::new(Phase::Starting as u8),
            up_since: SystemTime::now(),
            draining: OnceLock::new(),
            scraper: OnceLock::new(),
            names: Mutex::new(Names::default()),
            resolvers: Mutex::new(Vec::new()),
            rates: Mutex::new(Rates::default()),
            last: Mutex::new(Vec::new()),
        }
    }

    /// Connects the endpoints to the running cores and marks the gateway started. `draining`
    /// is the gateway's stop flag: once set, health answers 503.
    pub fn attach(
        &self,
        scraper: Scraper,
        names: Names,
        resolvers: Vec<(&'static str, StatsHandle)>,
        draining: Arc<AtomicBool>,
    ) {
        let _ = self.scraper.set(scraper);
        self.update(names, resolvers);
        let _ = self.draining.set(draining);
        self.phase.store(Phase::Ready as u8, Ordering::SeqCst);
    }

    fn phase(&self) -> Phase {
        if self.draining.get().is_some_and(|d| d.load(Ordering::SeqCst)) {
            return Phase::Draining;
        }
        if self.phase.load(Ordering::SeqCst) == Phase::Ready as u8 { Phase::Ready } else { Phase::Starting }
    }

    fn scrape(&self) -> Vec<CoreSnapshot> {
        let fresh = self.scraper.get().map(|s| s.scrape(SCRAPE_WAIT)).unwrap_or_default();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        *last = with_stand_ins(fresh, &last);
        last.clone()
    }

    /// Readiness now.
    pub fn verdict(&self) -> Verdict {
        let phase = self.phase();
        let cores = if phase == Phase::Ready { self.scrape() } else { Vec::new() };
        health::verdict(phase, &cores)
    }

    /// New names and resolvers after a reload (exporter indexes stay stable across reloads;
    /// resolver counters restart with the new resolvers).
    pub fn update(&self, names: Names, resolvers: Vec<(&'static str, StatsHandle)>) {
        *self.names.lock().unwrap_or_else(|e| e.into_inner()) = names;
        // Replaced resolvers' handles stay (frozen): the counters keep counting up across reloads.
        self.resolvers.lock().unwrap_or_else(|e| e.into_inner()).extend(resolvers);
    }

    fn names(&self) -> Names {
        self.names.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn totals(&self, cores: &[CoreSnapshot]) -> Totals {
        let resolvers = self.resolvers.lock().unwrap_or_else(|e| e.into_inner());
        Totals::sum(&self.names(), cores, resolvers.iter().map(|(kind, h)| (*kind, h.stats())).collect())
    }

    fn metrics(&self) -> String {
        prometheus::render(self.totals(&self.scrape()))
    }

    fn status_page(&self) -> String {
        let phase = self.phase();
        let cores = self.scrape();
        let verdict = health::verdict(phase, &cores);
        let totals = self.totals(&cores);
        let mut rates = self.rates.lock().unwrap_or_else(|e| e.into_inner());
        rates.update(&totals, &cores);
        status_page::render(verdict, &totals, &cores, &rates, Some(&self.names()))
    }
}

/// `fresh` snapshots, plus the `last` one of every core missing from them, by CPU.
fn with_stand_ins(mut fresh: Vec<CoreSnapshot>, last: &[CoreSnapshot]) -> Vec<CoreSnapshot> {
    let missing: Vec<CoreSnapshot> = last.iter().filter(|l| !fresh.iter().any(|f| f.cpu == l.cpu)).cloned().collect();
    fresh.extend(missing);
    fresh.sort_by_key(|s| s.cpu);
    fresh
}

/// The running endpoints. Stopping (or dropping) closes them; they outlive the cores' drain so
/// that health reports 503 until the very end.
#[derive(Debug)]
pub struct Telemetry {
    pub shared: Arc<Shared>,
    /// Where `/metrics` and `/` listen (the real port when configured as 0); `None` with
    /// `level: none`.
    pub metrics_addr: Option<SocketAddr>,
    /// Where the health check listens, when the extension is enabled.
    pub health_addr: Option<SocketAddr>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Telemetry {
    /// Binds the configured endpoints and starts serving (health answers 503 until
    /// [`Shared::attach`]).
    pub fn start(cfg: &TelemetryConfig) -> Result<Telemetry, TelemetryError> {
        let shared = Arc::new(Shared::new());
        let stop = Arc::new(AtomicBool::new(false));
        let mut t = Telemetry { shared, metrics_addr: None, health_addr: None, stop, threads: Vec::new() };
        if cfg.metrics.level != MetricsLevel::None {
            t.metrics_addr = Some(t.serve("metrics", &cfg.metrics.endpoint, route_metrics)?);
        }
        if let Some(h) = &cfg.health_check {
            let path = h.path.clone();
            t.health_addr = Some(t.serve("health_check", &h.endpoint, move |s, r| route_health(s, r, &path))?);
        }
        Ok(t)
    }

    fn serve(
        &mut self,
        what: &'static str,
        endpoint: &HostPort,
        route: impl Fn(&Shared, Request) + Send + 'static,
    ) -> Result<SocketAddr, TelemetryError> {
        let (server, addr) = bind(what, endpoint)?;
        let (shared, stop) = (self.shared.clone(), self.stop.clone());
        let thread = std::thread::Builder::new().name(format!("otlp-{what}")).spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                if let Ok(Some(req)) = server.recv_timeout(POLL) {
                    route(&shared, req);
                }
            }
        });
        let thread = thread.map_err(|e| bind_error(what, endpoint, e))?;
        self.threads.push(thread);
        Ok(addr)
    }

    /// Stops serving and joins the server threads.
    pub fn stop(mut self) {
        self.stop_threads();
    }

    fn stop_threads(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        self.stop_threads();
    }
}

fn bind_error(what: &'static str, endpoint: &HostPort, e: impl ToString) -> TelemetryError {
    TelemetryError::Bind { what, addr: endpoint.to_string(), reason: e.to_string() }
}

fn bind(what: &'static str, endpoint: &HostPort) -> Result<(Server, SocketAddr), TelemetryError> {
    let err = |e: &dyn ToString| bind_error(what, endpoint, e.to_string());
    let mut addrs = endpoint.to_string().to_socket_addrs().map_err(|e| err(&e))?;
    let addr = addrs.next().ok_or_else(|| err(&"no addresses"))?;
    let listener = TcpListener::bind(addr).map_err(|e| err(&e))?;
    let bound = listener.local_addr().map_err(|e| err(&e))?;
    let server = Server::from_listener(listener, None).map_err(|e| err(&e))?;
    Ok((server, bound))
}

fn header(name: &str, value: &str) -> Option<Header> {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).ok()
}

fn respond(req: Request, status: u16, content_type: &str, body: String) {
    let mut response = Response::from_string(body).with_status_code(status);
    if let Some(h) = header("Content-Type", content_type) {
        response.add_header(h);
    }
    // The peer may have gone; nothing to do about it.
    let _ = req.respond(response);
}

fn route_metrics(shared: &Shared, req: Request) {
    let path = req.url().split('?').next().unwrap_or_default().to_string();
    match path.as_str() {
        "/metrics" => respond(req, 200, prometheus::CONTENT_TYPE, shared.metrics()),
        "/" => respond(req, 200, "text/html; charset=utf-8", shared.status_page()),
        _ => respond(req, 404, "text/plain", "not found; try /metrics or /\n".into()),
    }
}

fn route_health(shared: &Shared, req: Request, path: &str) {
    if req.url().split('?').next() != Some(path) {
        return respond(req, 404, "text/plain", "not found\n".into());
    }
    let ready = shared.verdict().is_ready();
    let code = if ready { 200 } else { 503 };
    respond(req, code, "application/json", health::body(ready, shared.up_since));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(cpu: usize, connections: u64) -> CoreSnapshot {
        let mut s = CoreSnapshot { cpu, ..Default::default() };
        s.counters.connections = connections;
        s
    }

    #[test]
    fn silent_cores_keep_their_last_snapshot() {
        let last = [snap(0, 1), snap(1, 2)];
        let merged = with_stand_ins(vec![snap(1, 5)], &last);
        let got: Vec<(usize, u64)> = merged.iter().map(|s| (s.cpu, s.counters.connections)).collect();
        assert_eq!(got, [(0, 1), (1, 5)]);
        assert!(with_stand_ins(Vec::new(), &[]).is_empty());
    }
}
