//! Per-connection limits of both receivers: how many connections a core holds, how long one
//! may stay idle or open, and each listener's configured protocol limits ([`ProtocolLimits`]).
//! They are enforced beside what they bound: HTTP/2 settings in `runtime/tuning.rs`, floods in
//! `h2guard.rs`, request bytes in `budget.rs`.

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Default `service.runtime.max_connections_per_core`. An open connection costs about 100 KiB
/// (read-ahead buffer, h2 state, windows not yet used), so 4096 cost at most ~400 MiB a core;
/// size it to clients ÷ cores with room for reconnect storms.
pub const DEFAULT_MAX_CONNECTIONS_PER_CORE: usize = 4096;
/// Default gRPC `keepalive.server_parameters.max_connection_idle` (gRPC's own default is
/// forever): a connection with no request in flight for this long gets GOAWAY, so idle
/// clients cannot hold the connection slots. Clients reconnect on their next request.
pub const DEFAULT_MAX_CONNECTION_IDLE: Duration = Duration::from_secs(5 * 60);
/// Default HTTP `idle_timeout`, as in the collector.
pub const DEFAULT_HTTP_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a connection told to leave (idle or too old) may take to finish its requests when
/// `max_connection_age_grace` is not set (gRPC's default is forever). It also bounds a peer
/// that never answers the GOAWAY's PING, which would otherwise keep the connection.
pub const DEFAULT_GOAWAY_GRACE: Duration = Duration::from_secs(30);

/// A listener's protocol limits: `handshake_timeout`, `read_timeout` and `http2` under a
/// receiver's `protocols.grpc` or `protocols.http`. The defaults suit OTLP clients on a LAN or
/// the internet; lower the timeouts where clients are close and many, to free slots sooner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtocolLimits {
    /// TLS handshake plus HTTP/2 preface: past it the connection is closed. A client needs two
    /// round trips; 10 s covers a slow mobile link, and a slowloris peer is gone after it.
    pub handshake_timeout: Duration,
    /// A request's whole body must arrive within this, or it gets `DEADLINE_EXCEEDED` / 408
    /// (a slow sender must not pin memory). Size it to the largest request ÷ the slowest
    /// client's bandwidth: 30 s carries 4 MiB at about 1 Mbit/s.
    pub read_timeout: Duration,
    /// Largest HTTP/2 header list, in bytes (431 past it). OTLP headers are a few hundred bytes;
    /// raise it only for clients that send large custom headers.
    pub max_header_list_size: u32,
    /// Largest HTTP/2 frame a client may send (16 KiB to 16 MiB - 1). Larger frames mean fewer
    /// frame headers and wakeups per request; each connection may buffer one whole frame.
    pub max_frame_size: u32,
    /// Streams a client may open and reset before we accept them (rapid reset,
    /// CVE-2023-44487): past it, GOAWAY. A well-behaved client resets almost never.
    pub max_pending_reset_streams: usize,
    /// Streams we may reset for a client's protocol errors before closing its connection.
    pub max_local_reset_streams: usize,
    /// Control or empty frames (PING, SETTINGS, WINDOW_UPDATE, PRIORITY, unknown, empty DATA) a
    /// connection may send in a burst; requests and data earn it back. A gRPC client sends a
    /// few per request, so size it above what one connection sends between two requests.
    pub max_control_frames: u32,
}

/// Default `handshake_timeout`.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `read_timeout`.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for ProtocolLimits {
    fn default() -> Self {
        ProtocolLimits {
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            max_header_list_size: 16 << 10,
            max_frame_size: 256 << 10,
            max_pending_reset_streams: 20,
            max_local_reset_streams: 1024,
            max_control_frames: super::h2guard::CHEAP_FRAME_BURST,
        }
    }
}

/// When a connection is asked to leave: idle too long, or too old. `None` is never.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnTimeouts {
    /// No request in flight for this long: GOAWAY.
    pub idle: Option<Duration>,
    /// Open this long: GOAWAY (spreads long-lived clients over cores and gateways).
    pub max_age: Option<Duration>,
    /// After an idle or age GOAWAY, requests in flight get this long before the connection is
    /// closed (`None`: [`DEFAULT_GOAWAY_GRACE`]).
    pub age_grace: Option<Duration>,
}

/// The connections one core holds, over all its listeners.
#[derive(Debug)]
pub struct ConnSlots {
    open: Cell<usize>,
    limit: Cell<usize>,
}

/// One connection's place in [`ConnSlots`], given back when dropped.
#[derive(Debug)]
pub struct Slot(Rc<ConnSlots>);

impl ConnSlots {
    pub fn new(limit: usize) -> Rc<Self> {
        Rc::new(ConnSlots { open: Cell::new(0), limit: Cell::new(limit) })
    }

    /// A new limit (reload); connections above it stay until they close.
    pub fn set_limit(&self, limit: usize) {
        self.limit.set(limit);
    }

    /// A slot for a new connection, or `None` when the core is full.
    pub fn take(self: &Rc<Self>) -> Option<Slot> {
        let open = self.open.get();
        (open < self.limit.get()).then(|| {
            self.open.set(open + 1);
            Slot(self.clone())
        })
    }

    pub fn open(&self) -> usize {
        self.open.get()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.set(self.0.open.get().saturating_sub(1));
    }
}

/// Requests in flight on one connection, and since when it has had none.
#[derive(Debug)]
pub struct Activity {
    busy: Cell<usize>,
    quiet_since: Cell<Instant>,
    opened: Instant,
}

/// One request in flight, counted in its connection's [`Activity`] while it lives.
#[derive(Debug)]
pub struct Busy(Rc<Activity>);

impl Activity {
    pub fn new() -> Rc<Self> {
        let now = Instant::now();
        Rc::new(Activity { busy: Cell::new(0), quiet_since: Cell::new(now), opened: now })
    }

    pub fn busy(self: &Rc<Self>) -> Busy {
        self.busy.set(self.busy.get() + 1);
        Busy(self.clone())
    }

    /// When `timeouts` next ask the connection to leave, as of `now`: `Ok` if they already
    /// do, `Err(when to look again)` otherwise (`None`: never).
    fn due(&self, t: &ConnTimeouts, now: Instant) -> Result<(), Option<Instant>> {
        let age_at = t.max_age.map(|a| self.opened + a);
        let idle_at = t.idle.map(|i| if self.busy.get() == 0 { self.quiet_since.get() + i } else { now + i });
        match [age_at, idle_at].into_iter().flatten().min() {
            Some(at) if at <= now => Ok(()),
            next => Err(next),
        }
    }

    /// Resolves once the connection has been idle or open too long (never if neither is set).
    pub async fn expired(&self, t: ConnTimeouts) {
        loop {
            match self.due(&t, Instant::now()) {
                Ok(()) => return,
                Err(None) => return std::future::pending().await,
                Err(Some(at)) => glommio::timer::sleep(at.saturating_duration_since(Instant::now())).await,
            }
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let a = &self.0;
        a.busy.set(a.busy.get().saturating_sub(1));
        if a.busy.get() == 0 {
            a.quiet_since.set(Instant::now());
        }
    }
}

/// Runs `drain` (a connection finishing after GOAWAY) for at most `grace`, if set.
pub async fn within_grace<F: Future>(grace: Option<Duration>, drain: F) {
    // The drain either finishes or is dropped, with the connection, at the deadline.
    match grace {
        Some(g) => drop(glommio::timer::timeout(g, async { Ok(drain.await) }).await),
        None => drop(drain.await),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_refuse_past_the_limit_and_come_back() {
        let slots = ConnSlots::new(2);
        let (a, b) = (slots.take().unwrap(), slots.take().unwrap());
        assert!(slots.take().is_none());
        drop(a);
        assert!(slots.take().is_some());
        slots.set_limit(1);
        assert!(slots.take().is_none());
        drop(b);
        assert_eq!(slots.open(), 0);
    }

    #[test]
    fn idle_counts_only_while_no_request_is_in_flight() {
        let activity = Activity::new();
        let t = ConnTimeouts { idle: Some(Duration::from_secs(10)), ..Default::default() };
        let start = activity.opened;
        assert_eq!(activity.due(&t, start), Err(Some(start + Duration::from_secs(10))));
        assert_eq!(activity.due(&t, start + Duration::from_secs(10)), Ok(()));
        let busy = activity.busy();
        let later = start + Duration::from_secs(60);
        assert_eq!(activity.due(&t, later), Err(Some(later + Duration::from_secs(10))));
        drop(busy);
        assert!(activity.due(&t, Instant::now()).is_err(), "quiet again from now");
    }

    #[test]
    fn age_applies_busy_or_not_and_none_means_never() {
        let activity = Activity::new();
        let _busy = activity.busy();
        let t = ConnTimeouts { max_age: Some(Duration::from_secs(5)), ..Default::default() };
        assert_eq!(activity.due(&t, activity.opened + Duration::from_secs(5)), Ok(()));
        assert_eq!(activity.due(&ConnTimeouts::default(), activity.opened + Duration::from_secs(1 << 30)), Err(None));
    }
}
