//! The OTLP/gRPC server side of HTTP/2: one task per connection drives h2, one task per
//! stream reads the request message, calls the service and answers with a gRPC status.
//! A bad request ends its own stream with a status; the connection and other streams live on.

use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use futures_lite::future;
use std::time::Duration;

use glommio::net::{TcpListener, TcpStream};
use glommio::sync::Gate;
use h2::RecvStream;
use h2::server::SendResponse;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};

use super::budget::{ByteBudget, Held};
use super::h2guard::Guarded;
use super::lifecycle::drive_h2;
use super::limits::{ConnSlots, ConnTimeouts, ProtocolLimits};
use super::window::{Consumed, WindowShare};
use crate::compression::{DecodeError, Encoding};
use crate::grpc::{Code, Status, UnaryReader};
use crate::runtime::io::TokioIo;
use crate::runtime::shutdown::Shutdown;
use crate::runtime::tuning;
use crate::wire::GRPC_PREFIX;

/// The request encodings this server decodes, as advertised in `grpc-accept-encoding`.
pub const ACCEPT_ENCODING: &str = "gzip, zstd, snappy, identity";

/// A unary gRPC service: the gateway pipeline, or the test sink.
pub trait GrpcService: 'static {
    /// Which of the service's methods a path names.
    type Method: Copy + 'static;
    fn route(&self, path: &str) -> Option<Self::Method>;
    /// Largest request message accepted.
    fn max_recv(&self) -> usize;
    /// The core's budget for request bytes held in memory.
    fn budget(&self) -> &ByteBudget;
    /// Handles one framed request message; returns the framed response message.
    fn call(&self, method: Self::Method, framed: Bytes) -> impl Future<Output = Result<Bytes, Status>>;
    /// The TLS config for the next connection (`None`: plaintext). Asked per connection, so
    /// certificates a reload brought apply to new connections only.
    fn tls(&self) -> Option<Arc<crate::tls::ServerConfig>> {
        None
    }

    /// Checks the request's credentials (`UNAUTHENTICATED` when they are missing or wrong),
    /// before anything of its body is read.
    fn authenticate(&self, _headers: &HeaderMap) -> Result<(), Status> {
        Ok(())
    }
}

/// How a stream ends when it does not reach the service.
enum Refusal {
    Grpc(Status),
    Http(StatusCode),
}

impl From<Status> for Refusal {
    fn from(s: Status) -> Self {
        Refusal::Grpc(s)
    }
}

/// What every connection of one listener gets: its core's slots and its timeouts.
#[derive(Debug, Clone)]
pub struct ConnOptions {
    /// HTTP/2 streams per connection.
    pub max_streams: u32,
    pub timeouts: ConnTimeouts,
    /// The core's connection slots, shared by all its listeners.
    pub slots: Rc<ConnSlots>,
    /// Handshake and body deadlines, HTTP/2 limits.
    pub limits: ProtocolLimits,
    /// The core's HTTP/2 receive windows, shared by all its listeners.
    pub windows: Rc<WindowShare>,
}

impl ConnOptions {
    /// Options with no idle or age limit, default protocol limits, and full windows on every
    /// connection (no pool).
    pub fn new(max_streams: u32, slots: Rc<ConnSlots>) -> Self {
        let (limits, windows) = (ProtocolLimits::default(), WindowShare::new(usize::MAX));
        ConnOptions { max_streams, timeouts: ConnTimeouts::default(), slots, limits, windows }
    }
}

/// Accepts connections until shutdown; each connection runs as a task under `gate`, so
/// shutdown can wait for in-flight requests.
pub async fn serve<S: GrpcService>(
    listener: TcpListener,
    service: Rc<S>,
    opts: ConnOptions,
    shutdown: Shutdown,
    gate: Rc<Gate>,
) {
    let slots = opts.slots.clone();
    accept_loop(listener, shutdown, gate, slots, move |tcp, shutdown| {
        serve_connection(tcp, service.clone(), opts.clone(), shutdown)
    })
    .await
}

/// Accepts connections until shutdown and runs `connection` for each as a task under `gate`
/// (both receivers share it). A connection past the core's `slots` is closed at once: the
/// client sees it and retries (its next connection may land on another core), where not
/// accepting would leave it waiting in this core's backlog.
pub(crate) async fn accept_loop<F, Fut>(
    listener: TcpListener,
    shutdown: Shutdown,
    gate: Rc<Gate>,
    slots: Rc<ConnSlots>,
    connection: F,
) where
    F: Fn(TcpStream, Shutdown) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    let mut stop_signal = shutdown.wait();
    loop {
        let accept = async { Some(listener.accept().await) };
        let stop = async {
            (&mut stop_signal).await;
            None
        };
        match future::or(accept, stop).await {
            Some(Ok(tcp)) => {
                let Some(slot) = slots.take() else {
                    crate::telemetry::Refused::ConnectionLimit.note();
                    continue;
                };
                let connection = connection(tcp, shutdown.clone());
                match gate.spawn(async move { (connection.await, drop(slot)) }) {
                    Ok(task) => drop(task.detach()),
                    Err(_) => return,
                }
            }
            // Accept errors (EMFILE, aborted handshakes) must not stop the listener.
            Some(Err(_)) => glommio::timer::sleep(Duration::from_millis(5)).await,
            None => return,
        }
    }
}

/// Serves one accepted connection until the peer leaves or shutdown has drained it.
pub async fn serve_connection<S: GrpcService>(tcp: TcpStream, service: Rc<S>, opts: ConnOptions, shutdown: Shutdown) {
    let _live = crate::telemetry::Live::connection();
    let _ = tcp.set_nodelay(true);
    let (tls, limits) = (service.tls(), opts.limits);
    let window = opts.windows.open();
    let h2 = tuning::h2_server(opts.max_streams, &limits, window.size(), window.stream_size());
    let handshake = async {
        let Ok(io) = crate::tls::accept(TokioIo::new(tcp), tls).await else { return Ok(None) };
        Ok(h2.handshake::<_, Bytes>(Guarded::new(io, limits.max_control_frames)).await.ok())
    };
    // The TLS handshake and the HTTP/2 preface share one deadline.
    let Ok(Some(conn)) = glommio::timer::timeout(limits.handshake_timeout, handshake).await else {
        return;
    };
    let consumed = window.consumed();
    drive_h2(conn, window, shutdown, opts.timeouts, move |req, respond, busy| {
        let (service, consumed) = (service.clone(), consumed.clone());
        let stream = async move {
            handle(req, respond, &*service, limits.read_timeout, &consumed).await;
            drop(busy);
        };
        glommio::spawn_local(stream).detach();
    })
    .await
}

/// Serves one stream within `read` for its body; the body bytes it reads are added to its
/// connection's `consumed`.
async fn handle<S: GrpcService>(
    req: Request<RecvStream>,
    respond: SendResponse<Bytes>,
    service: &S,
    read: Duration,
    consumed: &Consumed,
) {
    let _live = crate::telemetry::Live::stream();
    match call(req, service, read, consumed).await {
        Ok(body) => send_ok(respond, body),
        Err(Refusal::Grpc(status)) => send_status(respond, &status),
        Err(Refusal::Http(code)) => send_http(respond, code),
    }
}

/// `read_timeout`: how long the body may take to arrive.
async fn call<S: GrpcService>(
    req: Request<RecvStream>,
    service: &S,
    read_timeout: Duration,
    consumed: &Consumed,
) -> Result<Bytes, Refusal> {
    let (method, encoding) = check_head(&req, service)?;
    let mut held = service.budget().hold();
    let body = (req.into_body(), consumed);
    let read = async { Ok(read_message(body, service.max_recv(), service.budget(), &mut held).await) };
    let framed = match glommio::timer::timeout(read_timeout, read).await {
        Ok(framed) => framed?,
        Err(_) => return Err(Status::new(Code::DeadlineExceeded, "request body did not arrive in time").into()),
    };
    let framed = inflate(framed, encoding, service.max_recv())?;
    if !service.budget().take(&mut held, framed.len()) {
        return Err(over_budget(service.budget()).into());
    }
    // `held` lives until the answer: the request's bytes (and the parts made from them) are
    // in memory until then.
    Ok(service.call(method, framed).await?)
}

fn check_head<S: GrpcService>(req: &Request<RecvStream>, service: &S) -> Result<(S::Method, Encoding), Refusal> {
    service.authenticate(req.headers())?;
    if req.method() != http::Method::POST {
        return Err(Refusal::Http(StatusCode::METHOD_NOT_ALLOWED));
    }
    let grpc_type = req.headers().get("content-type").is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    if !grpc_type {
        return Err(Refusal::Http(StatusCode::UNSUPPORTED_MEDIA_TYPE));
    }
    let encoding = request_encoding(req.headers())?;
    let path = req.uri().path();
    let method = service.route(path);
    let method =
        method.ok_or_else(|| Status::new(Code::Unimplemented, format!("unknown method {}", path.escape_debug())))?;
    Ok((method, encoding))
}

/// The request's `grpc-encoding`: identity, gzip, zstd or snappy (framed, as the collector's
/// codec writes it).
fn request_encoding(headers: &HeaderMap) -> Result<Encoding, Status> {
    let Some(value) = headers.get("grpc-encoding") else { return Ok(Encoding::Identity) };
    match Encoding::from_token(value.as_bytes()) {
        Some(e @ (Encoding::Identity | Encoding::Gzip | Encoding::Zstd | Encoding::Snappy)) => Ok(e),
        _ => Err(Status::new(
            Code::Unimplemented,
            format!("unsupported grpc-encoding; this server accepts {ACCEPT_ENCODING}"),
        )),
    }
}

/// The message with its compressed flag cleared, decoded per `encoding` to at most `limit`
/// bytes (a compression bomb stops at the limit: `RESOURCE_EXHAUSTED`).
fn inflate(framed: Bytes, encoding: Encoding, limit: usize) -> Result<Bytes, Status> {
    if framed.first() != Some(&1) {
        return Ok(framed);
    }
    if encoding == Encoding::Identity {
        return Err(Status::new(Code::Internal, "compressed flag set but no grpc-encoding was declared"));
    }
    let mut out = vec![0; GRPC_PREFIX];
    encoding.decode_into(framed.get(GRPC_PREFIX..).unwrap_or_default(), limit, &mut out).map_err(|e| match e {
        DecodeError::TooLarge { .. } => Status::new(Code::ResourceExhausted, format!("grpc: {e}")),
        DecodeError::Corrupt(_) => Status::new(Code::Internal, format!("grpc: failed to decompress the message: {e}")),
    })?;
    let len = u32::try_from(out.len() - GRPC_PREFIX).unwrap_or(u32::MAX);
    out[1..GRPC_PREFIX].copy_from_slice(&len.to_be_bytes());
    Ok(Bytes::from(out))
}

/// Reads the request's one message, refusing it as soon as it is known to be too large or
/// the core's request memory is spent.
async fn read_message(
    (mut body, consumed): (RecvStream, &Consumed),
    limit: usize,
    budget: &ByteBudget,
    held: &mut Held<'_>,
) -> Result<Bytes, Status> {
    let mut reader = UnaryReader::new(limit);
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(|e| Status::new(Code::Cancelled, format!("request stream broke: {e}")))?;
        if !budget.take(held, chunk.len()) {
            return Err(over_budget(budget));
        }
        let _ = body.flow_control().release_capacity(chunk.len());
        consumed.add(chunk.len());
        reader.push(chunk)?;
    }
    reader.finish()
}

fn over_budget(budget: &ByteBudget) -> Status {
    let mib = budget.limit() >> 20;
    Status::new(Code::ResourceExhausted, format!("this core holds {mib} MiB of requests in flight; retry later"))
}

fn grpc_head() -> http::response::Builder {
    let builder = Response::builder().status(StatusCode::OK).header("content-type", "application/grpc");
    builder.header("grpc-accept-encoding", ACCEPT_ENCODING)
}

fn send_ok(mut respond: SendResponse<Bytes>, body: Bytes) {
    let Ok(head) = grpc_head().body(()) else { return };
    let Ok(mut stream) = respond.send_response(head, false) else { return };
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let _ = stream.send_data(body, false);
    let _ = stream.send_trailers(trailers);
}

/// A trailers-only response: the status travels in the only HEADERS frame.
fn send_status(mut respond: SendResponse<Bytes>, status: &Status) {
    let Ok(mut head) = grpc_head().body(()) else { return };
    status.write_to(head.headers_mut());
    let _ = respond.send_response(head, true);
}

fn send_http(mut respond: SendResponse<Bytes>, code: StatusCode) {
    if let Ok(head) = Response::builder().status(code).body(()) {
        let _ = respond.send_response(head, true);
    }
}
