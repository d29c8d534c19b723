//! One backend as seen from one core: a shared HTTP/2 connection (many concurrent streams),
//! reconnected on demand with backoff. Single-threaded: `Rc`/`RefCell`, no locks.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::client::SendRequest;
use http::Uri;

use super::backoff::Backoff;
use super::call;
use super::coalesce::{CoalesceLimits, Coalescer};
use super::error::ExportError;
use super::health::Health;
use super::merge::Waiter;
use super::retry::{QueueFull, QueueLimits, QueuedPart, Reservation, RetryPolicy, RetryQueue};
use super::single_flight::SingleFlight;

/// Connection settings shared by a core's backends.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendSettings {
    /// Per-call deadline (the exporter's `timeout`).
    pub timeout: Duration,
    /// TCP connect + HTTP/2 handshake deadline. 1 s: backends are on the same network.
    pub connect_timeout: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// `retry_on_failure`; `None` when disabled (a failed part fails its request).
    pub retry: Option<RetryPolicy>,
    /// `sending_queue`; `None` when disabled (the request waits while its part is retried).
    pub queue: Option<QueueLimits>,
    /// Consecutive "down" failures that eject the backend on this core (0: never).
    pub eject_after: u32,
    /// How often an ejected backend is probed.
    pub probe_interval: Duration,
    /// While ejected, its keys go to the next owner (`true`) or wait in its queue (`false`).
    pub failover: bool,
    /// The exporter's `compression` and `headers`.
    pub call: call::CallOptions,
    /// The exporter's `tls`; `None`: plaintext h2c.
    pub tls: Option<crate::tls::BackendTls>,
    /// When parts for this backend are sent together (`merge.rs`).
    pub coalesce: CoalesceLimits,
}

impl Default for BackendSettings {
    fn default() -> Self {
        BackendSettings {
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(1),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            retry: None,
            queue: None,
            eject_after: 0,
            probe_interval: Duration::from_secs(1),
            failover: false,
            call: Default::default(),
            tls: None,
            coalesce: CoalesceLimits::default(),
        }
    }
}

/// A backend on one core.
pub struct Backend {
    pub name: String,
    addr: SocketAddr,
    settings: BackendSettings,
    conn: RefCell<Option<(u64, SendRequest<Bytes>)>>,
    generation: Cell<u64>,
    connecting: SingleFlight,
    backoff: RefCell<Backoff>,
    uris: RefCell<Vec<(&'static str, Uri)>>,
    /// Parts waiting for another attempt, and whether a task is draining them.
    pub(super) queue: RefCell<RetryQueue>,
    pub(super) draining: Cell<bool>,
    pub(super) health: RefCell<Health>,
    /// `health.is_ejected()`, mirrored for the routing fast path (one `Cell` read per key).
    pub(super) ejected: Cell<bool>,
    pub(super) probing: Cell<bool>,
    /// Where this backend's queued parts go when it is ejected (failover) or removed: the
    /// pipelines of its exporter, which route them again.
    rerouter: RefCell<Option<Rerouter>>,
    /// Calls in flight and parts waiting, per path.
    coalescers: RefCell<Vec<(&'static str, Coalescer<Waiter>)>>,
}

/// Routes an already acknowledged part again (see [`Backend::reroute_queue`]).
pub type Rerouter = Rc<dyn Fn(QueuedPart)>;

impl Backend {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn settings(&self) -> &BackendSettings {
        &self.settings
    }

    pub fn new(name: String, addr: SocketAddr, settings: BackendSettings) -> Rc<Self> {
        let backoff = Backoff::new(settings.backoff_initial, settings.backoff_max);
        let limits = settings.queue.unwrap_or(QueueLimits { parts: 0, bytes: 0, consumers: 1 });
        Rc::new(Backend {
            name,
            addr,
            conn: RefCell::new(None),
            generation: Cell::new(0),
            connecting: SingleFlight::default(),
            backoff: RefCell::new(backoff),
            uris: RefCell::new(Vec::new()),
            queue: RefCell::new(RetryQueue::new(limits)),
            draining: Cell::new(false),
            health: RefCell::new(Health::new(settings.eject_after, settings.probe_interval)),
            settings,
            ejected: Cell::new(false),
            probing: Cell::new(false),
            rerouter: RefCell::new(None),
            coalescers: RefCell::new(Vec::new()),
        })
    }

    /// Forwards one framed request on `path`; returns the framed response message.
    pub async fn export(self: &Rc<Self>, path: &'static str, framed: Bytes) -> Result<Bytes, ExportError> {
        let (generation, send) = self.sender().await?;
        let uri = self.uri(path)?;
        let result = call::export(send, uri, framed, self.settings.timeout, &self.settings.call).await;
        self.after_call(generation, result)
    }

    /// [`Self::export`] of one message given as `chunks` (prefix first): sent without a copy,
    /// or joined first when the exporter compresses.
    pub async fn export_chunks(self: &Rc<Self>, path: &'static str, chunks: Vec<Bytes>) -> Result<Bytes, ExportError> {
        if self.settings.call.compression != crate::compression::Encoding::Identity {
            return self.export(path, Bytes::from(chunks.concat())).await;
        }
        let (generation, send) = self.sender().await?;
        let uri = self.uri(path)?;
        let (timeout, headers) = (self.settings.timeout, &self.settings.call.headers);
        let result = call::unary_chunks(send, uri, chunks, timeout, headers).await;
        self.after_call(generation, result)
    }

    /// A timed-out connection may be black-holed (no RST, no FIN): the next request dials
    /// afresh, while streams still running on the old one finish on it.
    fn after_call(&self, generation: u64, result: Result<Bytes, ExportError>) -> Result<Bytes, ExportError> {
        if matches!(result, Err(ExportError::ConnectionLost(_) | ExportError::Timeout(_))) {
            self.forget(generation);
        }
        result
    }

    /// Runs `f` on the coalescer of `path`, made on first use.
    pub(super) fn coalescer<R>(&self, path: &'static str, f: impl FnOnce(&mut Coalescer<Waiter>) -> R) -> R {
        let mut all = self.coalescers.borrow_mut();
        let at = match all.iter().position(|(p, _)| *p == path) {
            Some(at) => at,
            None => {
                all.push((path, Coalescer::new(self.settings.coalesce)));
                all.len() - 1
            }
        };
        f(&mut all[at].1)
    }

    /// The request URI for `path`, built once per path (a clone is a refcount bump).
    fn uri(&self, path: &'static str) -> Result<Uri, ExportError> {
        if let Some((_, uri)) = self.uris.borrow().iter().find(|(p, _)| *p == path) {
            return Ok(uri.clone());
        }
        let uri = self.build_uri(path)?;
        self.uris.borrow_mut().push((path, uri.clone()));
        Ok(uri)
    }

    fn build_uri(&self, path: &'static str) -> Result<Uri, ExportError> {
        Uri::builder()
            .scheme(if self.settings.tls.is_some() { "https" } else { "http" })
            .authority(self.name.as_str())
            .path_and_query(path)
            .build()
            .map_err(|_| ExportError::BadResponse("backend name is not a valid authority"))
    }

    /// The live connection, connecting first if there is none and backoff allows.
    async fn sender(self: &Rc<Self>) -> Result<(u64, SendRequest<Bytes>), ExportError> {
        if let Some((g, s)) = &*self.conn.borrow() {
            return Ok((*g, s.clone()));
        }
        loop {
            self.refuse_if_backing_off()?;
            if let Some(_turn) = self.connecting.try_begin() {
                return self.connect().await;
            }
            self.connecting.wait_idle().await;
            if let Some((g, s)) = &*self.conn.borrow() {
                return Ok((*g, s.clone()));
            }
        }
    }

    fn refuse_if_backing_off(&self) -> Result<(), ExportError> {
        match self.backoff.borrow().blocked(Instant::now()) {
            Some(retry_in) => Err(ExportError::Unreachable { retry_in }),
            None => Ok(()),
        }
    }

    async fn connect(self: &Rc<Self>) -> Result<(u64, SendRequest<Bytes>), ExportError> {
        let generation = self.generation.get() + 1;
        self.generation.set(generation);
        let weak: Weak<Self> = Rc::downgrade(self);
        let on_close = move || {
            if let Some(b) = weak.upgrade() {
                b.forget(generation);
            }
        };
        let tls = self.tls_for_dial().map_err(|reason| self.connect_failed(reason))?;
        match call::connect_tls(self.addr, tls, self.settings.connect_timeout, on_close).await {
            Ok(send) => {
                self.backoff.borrow_mut().on_success();
                *self.conn.borrow_mut() = Some((generation, send.clone()));
                Ok((generation, send))
            }
            Err(reason) => Err(self.connect_failed(reason)),
        }
    }

    /// Backs off after a failed dial; the error says why it failed.
    fn connect_failed(&self, reason: String) -> ExportError {
        let mut backoff = self.backoff.borrow_mut();
        backoff.on_failure(Instant::now(), fastrand::f64());
        let retry_in = backoff.blocked(Instant::now()).unwrap_or_default();
        ExportError::Connect { reason, retry_in }
    }

    /// The client config and the name to verify this backend by, when its exporter uses TLS.
    fn tls_for_dial(&self) -> Result<Option<call::Tls>, String> {
        let Some(tls) = &self.settings.tls else { return Ok(None) };
        let host = self.name.rsplit_once(':').map_or(self.name.as_str(), |(host, _)| host);
        let name = tls.server_name(host).ok_or_else(|| format!("`{host}` is not a valid TLS server name"))?;
        Ok(Some((tls.config.config.clone(), name)))
    }

    /// Drops connection `generation` if it is still the current one.
    fn forget(&self, generation: u64) {
        let mut conn = self.conn.borrow_mut();
        if conn.as_ref().is_some_and(|(g, _)| *g == generation) {
            *conn = None;
        }
    }

    /// Lets the next call dial at once, whatever the reconnect backoff says: a probe is
    /// already paced by `probe_interval`.
    pub fn allow_connect_now(&self) {
        self.backoff.borrow_mut().on_success();
    }

    /// Before a request is fanned out: room in this backend's queue for a part of `bytes` when
    /// the backend is failing (ejected, or parts already wait in its queue), `None` when it is
    /// not (or has no queue), and an error when it is failing and its queue is full. A request
    /// refused here delivered nothing anywhere, so the client's retry duplicates nothing.
    pub fn reserve_if_failing(&self, bytes: usize) -> Result<Option<Reservation>, QueueFull> {
        let queue = self.queue.borrow();
        let failing = self.is_ejected() || queue.busy();
        if !failing || self.settings.queue.is_none() || self.settings.retry.is_none() {
            return Ok(None);
        }
        queue.reserve(bytes).map(Some)
    }

    /// Brings its queue's next retry forward (shutdown drains within a deadline).
    pub fn hurry_retries(&self) {
        self.queue.borrow_mut().hurry(Instant::now());
    }

    /// Whether this core took the backend out of routing after consecutive failures.
    pub fn is_ejected(&self) -> bool {
        self.ejected.get()
    }

    /// Sets where queued parts go when the backend is ejected or removed.
    pub fn set_rerouter(&self, rerouter: Rerouter) {
        *self.rerouter.borrow_mut() = Some(rerouter);
    }

    /// Hands every queued part to the rerouter (they were acknowledged: they must not be
    /// dropped); without one they stay queued here.
    pub fn reroute_queue(&self) {
        let Some(rerouter) = self.rerouter.borrow().clone() else { return };
        let parts = self.queue.borrow_mut().take_all();
        for part in parts {
            rerouter(part);
        }
    }

    /// Whether a connection is up (for status and tests).
    pub fn is_connected(&self) -> bool {
        self.conn.borrow().is_some()
    }
}
