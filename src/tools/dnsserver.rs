//! An in-process DNS server for tests: real DNS over UDP on loopback, answering A, AAAA and SRV
//! queries from a record table that tests change while the gateway runs.
//!
//! It binds `127.0.0.1:0`, so nothing leaves the machine. Messages are encoded and decoded by
//! hickory-proto. It can be told to answer `SERVFAIL` or to drop queries (the client times out).
//! A name not in the table is `NXDOMAIN`; a name with no records of the asked type is an empty
//! `NOERROR`. A single name can be made to fail or hang too. Answers carry a long TTL (1 h) so that a client that caches shows up as stale.
//! UDP only: keep answers under ~30 records (no truncation to TCP).
//!
//! ```ignore
//! let dns = DnsServer::start()?;
//! dns.set_ips("collectors.test", &["127.0.0.2".parse()?]);
//! // resolver.dns: { hostname: collectors.test, nameserver: <dns.addr()> }
//! ```

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// TTL of every answer: long, so that a resolver which trusts it would miss changes.
const TTL: u32 = 3600;

/// How often the server thread checks its stop flag; bounds `drop`.
const POLL: Duration = Duration::from_millis(20);

/// How the server treats queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Answer from the record table.
    Answer,
    /// Answer every query with `SERVFAIL`.
    ServFail,
    /// Read queries and never answer (the client's timeout fires).
    Drop,
}

/// One record of a name.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Ip(IpAddr),
    Srv { port: u16, target: String },
}

#[derive(Debug)]
struct State {
    names: BTreeMap<String, Vec<Entry>>,
    mode: Mode,
    /// Per-name modes, ahead of `mode` (e.g. make one SRV target hang).
    name_modes: BTreeMap<String, Mode>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    stop: AtomicBool,
    queries: AtomicU64,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running DNS server; stops (and joins its thread) when dropped.
#[derive(Debug)]
pub struct DnsServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl DnsServer {
    /// Binds `127.0.0.1:0` and serves on its own thread.
    pub fn start() -> io::Result<DnsServer> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_read_timeout(Some(POLL))?;
        let addr = socket.local_addr()?;
        let state = State { names: BTreeMap::new(), mode: Mode::Answer, name_modes: BTreeMap::new() };
        let shared =
            Arc::new(Shared { state: Mutex::new(state), stop: AtomicBool::new(false), queries: AtomicU64::new(0) });
        let serving = shared.clone();
        let thread = std::thread::Builder::new().name("test-dns".into()).spawn(move || serve(&socket, &serving))?;
        Ok(DnsServer { addr, shared, thread: Some(thread) })
    }

    /// Where to send queries: the `nameserver` of a test config.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces `name`'s A and AAAA records (its SRV records stay).
    pub fn set_ips(&self, name: &str, ips: &[IpAddr]) {
        self.replace(name, |e| matches!(e, Entry::Ip(_)), ips.iter().map(|ip| Entry::Ip(*ip)).collect());
    }

    /// Replaces `name`'s SRV records with `(port, target)` pairs (its A/AAAA records stay).
    pub fn set_srv(&self, name: &str, targets: &[(u16, &str)]) {
        let entries = targets.iter().map(|(port, t)| Entry::Srv { port: *port, target: canonical(t) }).collect();
        self.replace(name, |e| matches!(e, Entry::Srv { .. }), entries);
    }

    /// Removes `name`: queries for it get `NXDOMAIN`.
    pub fn remove(&self, name: &str) {
        self.shared.state().names.remove(&canonical(name));
    }

    /// Answer, fail (`SERVFAIL`) or stay silent from now on.
    pub fn set_mode(&self, mode: Mode) {
        self.shared.state().mode = mode;
    }

    /// Answer, fail or stay silent for queries about `name` only; `None` goes back to the
    /// server's mode.
    pub fn set_name_mode(&self, name: &str, mode: Option<Mode>) {
        let mut state = self.shared.state();
        match mode {
            Some(mode) => state.name_modes.insert(canonical(name), mode),
            None => state.name_modes.remove(&canonical(name)),
        };
    }

    /// Queries received so far (answered or not).
    pub fn queries(&self) -> u64 {
        self.shared.queries.load(Ordering::Relaxed)
    }

    fn replace(&self, name: &str, old: impl Fn(&Entry) -> bool, new: Vec<Entry>) {
        let mut state = self.shared.state();
        let entries = state.names.entry(canonical(name)).or_default();
        entries.retain(|e| !old(e));
        entries.extend(new);
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Lower case with a trailing dot, as names are compared in the table.
fn canonical(name: &str) -> String {
    let name = name.to_ascii_lowercase();
    if name.ends_with('.') { name } else { format!("{name}.") }
}

fn serve(socket: &UdpSocket, shared: &Shared) {
    let mut buf = [0u8; 4096];
    while !shared.stop.load(Ordering::Relaxed) {
        // Timeouts (WouldBlock/TimedOut) just bring us back to the stop check.
        let Ok((len, peer)) = socket.recv_from(&mut buf) else { continue };
        shared.queries.fetch_add(1, Ordering::Relaxed);
        if let Some(reply) = respond(shared, &buf[..len]) {
            let _ = socket.send_to(&reply, peer);
        }
    }
}

/// The encoded reply to one datagram, or `None` to stay silent.
fn respond(shared: &Shared, datagram: &[u8]) -> Option<Vec<u8>> {
    let request = Message::from_vec(datagram).ok()?;
    let state = shared.state();
    let reply = match mode(&state, &request) {
        Mode::Drop => return None,
        Mode::ServFail => Message::error_msg(request.id(), request.op_code(), ResponseCode::ServFail),
        Mode::Answer => answer(&state, &request),
    };
    reply.to_vec().ok()
}

/// The mode for this request: its name's own, or the server's.
fn mode(state: &State, request: &Message) -> Mode {
    let name = request.query().map(|q| canonical(&q.name().to_ascii()));
    name.and_then(|n| state.name_modes.get(&n).copied()).unwrap_or(state.mode)
}

fn answer(state: &State, request: &Message) -> Message {
    let mut reply = Message::error_msg(request.id(), OpCode::Query, ResponseCode::NoError);
    reply.set_message_type(MessageType::Response).set_authoritative(true);
    reply.set_recursion_desired(request.recursion_desired()).set_recursion_available(true);
    let Some(query) = request.query() else {
        reply.set_response_code(ResponseCode::FormErr);
        return reply;
    };
    reply.add_query(query.clone());
    match state.names.get(&canonical(&query.name().to_ascii())) {
        None => {
            reply.set_response_code(ResponseCode::NXDomain);
        }
        Some(entries) => reply.insert_answers(records(query, entries)),
    }
    reply
}

/// The records of `entries` that answer `query`, in table order.
fn records(query: &Query, entries: &[Entry]) -> Vec<Record> {
    let name = query.name().clone();
    let rdata = |entry: &Entry| match (entry, query.query_type()) {
        (Entry::Ip(IpAddr::V4(ip)), RecordType::A) => Some(RData::A(A(*ip))),
        (Entry::Ip(IpAddr::V6(ip)), RecordType::AAAA) => Some(RData::AAAA(AAAA(*ip))),
        (Entry::Srv { port, target }, RecordType::SRV) => {
            let target = Name::from_ascii(target).ok()?;
            Some(RData::SRV(SRV::new(0, 0, *port, target)))
        }
        _ => None,
    };
    entries.iter().filter_map(rdata).map(|r| Record::from_rdata(name.clone(), TTL, r)).collect()
}
