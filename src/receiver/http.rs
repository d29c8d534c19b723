//! The OTLP/HTTP receiver: hyper serves HTTP/1.1 (keep-alive, chunked bodies) and h2c (prior
//! knowledge) on each accepted connection; every request is decoded (Content-Encoding, then
//! protobuf or JSON) into the framed protobuf message the gRPC receiver would have read and
//! handed to the same service, so both protocols share one split path.
//!
//! Answers follow the OTLP/HTTP spec: the response is in the request's content type and
//! carries partial success; errors are `google.rpc.Status` bodies, with `Retry-After` only on
//! the codes where a retry can succeed (429, 503).

use std::cell::RefCell;
use std::convert::Infallible;
use std::rc::Rc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_lite::future;
use glommio::net::{TcpListener, TcpStream};
use glommio::sync::Gate;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::server::conn::auto;

use super::budget::{ByteBudget, Held};
use super::grpc::{ConnOptions, GrpcService};
use super::h2guard::Guarded;
use super::http_json;
use super::lifecycle::{Leave, leave};
use super::limits::{Activity, DEFAULT_GOAWAY_GRACE, within_grace};
use super::linger::Linger;
use super::window::ConnWindow;
use crate::compression::{DecodeError, Encoding};
use crate::config::Signal;
use crate::grpc::{Code, Status, export_path};
use crate::runtime::io::TokioIo;
use crate::runtime::shutdown::Shutdown;
use crate::wire::GRPC_PREFIX;

/// Seconds a client is told to wait before retrying a 429 or 503.
/// `Retry-After` when the failure carries no retry delay of its own (seconds).
const DEFAULT_RETRY_AFTER_SECS: u64 = 1;
/// The content encodings a request body may have.
const ACCEPT_ENCODING: &str = "gzip, deflate, zstd, identity";

type Reply = Response<Full<Bytes>>;

/// The body formats of OTLP/HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Protobuf,
    Json,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Format::Protobuf => "application/x-protobuf",
            Format::Json => "application/json",
        }
    }

    /// The format a `Content-Type` names (parameters such as `charset` are ignored).
    pub fn of(content_type: &[u8]) -> Option<Format> {
        let media = content_type.split(|&b| b == b';').next().unwrap_or_default().trim_ascii();
        let is = |name: &str| media.eq_ignore_ascii_case(name.as_bytes());
        if is("application/x-protobuf") {
            Some(Format::Protobuf)
        } else if is("application/json") {
            Some(Format::Json)
        } else {
            None
        }
    }
}

/// Why a request was not answered OK: an HTTP-level refusal or the pipeline's status.
#[derive(Debug)]
struct Failure {
    http: StatusCode,
    status: Status,
}

impl Failure {
    fn new(http: StatusCode, code: Code, message: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        Failure { http, status: Status::new(code, message) }
    }
}

impl From<Status> for Failure {
    fn from(status: Status) -> Self {
        Failure { http: http_status(status.code), status }
    }
}

/// The HTTP status for a gRPC code, as the collector's OTLP receiver maps them: the retryable
/// codes become 503 (429 for RESOURCE_EXHAUSTED), the rest the client's or our fault.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => StatusCode::SERVICE_UNAVAILABLE,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::InvalidArgument => StatusCode::BAD_REQUEST,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unimplemented | Code::NotFound => StatusCode::NOT_FOUND,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Runs hyper's tasks (HTTP/2 streams) on the current glommio core.
#[derive(Clone, Copy)]
struct LocalExec;

impl<F: Future + 'static> hyper::rt::Executor<F> for LocalExec {
    fn execute(&self, fut: F) {
        glommio::spawn_local(fut).detach();
    }
}

/// What bounds one listener's connections.
#[derive(Debug, Clone)]
pub struct Limits {
    /// HTTP/2 streams per connection, idle timeout and the core's connection slots.
    pub conn: ConnOptions,
    /// How long an HTTP/1.1 connection may take to send a request's headers, counted from when
    /// it starts waiting for them: also the idle timeout of keep-alive connections.
    pub header_timeout: Duration,
}

/// hyper's timer, on glommio's timers.
#[derive(Clone, Copy)]
struct LocalTimer;

/// A glommio timer as hyper's `Sleep`, which must be `Send + Sync`.
struct LocalSleep(glommio::timer::Timer);

// SAFETY: hyper creates, polls and drops a sleep only inside the connection that asked for it,
// and every connection (and each of its HTTP/2 streams, through `LocalExec`) is a glommio task
// that stays on the thread that spawned it; a `LocalSleep` therefore never crosses threads.
unsafe impl Send for LocalSleep {}
// SAFETY: as above: never shared with another thread.
unsafe impl Sync for LocalSleep {}

impl Future for LocalSleep {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        std::pin::Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

impl hyper::rt::Sleep for LocalSleep {}

impl hyper::rt::Timer for LocalTimer {
    fn sleep(&self, duration: Duration) -> std::pin::Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(LocalSleep(glommio::timer::Timer::new(duration)))
    }

    fn sleep_until(&self, deadline: std::time::Instant) -> std::pin::Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep(deadline.saturating_duration_since(std::time::Instant::now()))
    }
}

/// Accepts connections until shutdown; each connection runs as a task under `gate`.
pub async fn serve<S: GrpcService>(
    listener: TcpListener,
    service: Rc<S>,
    limits: Limits,
    shutdown: Shutdown,
    gate: Rc<Gate>,
) {
    let slots = limits.conn.slots.clone();
    super::grpc::accept_loop(listener, shutdown, gate, slots, move |tcp, shutdown| {
        serve_connection(tcp, service.clone(), limits.clone(), shutdown)
    })
    .await
}

/// hyper takes h2c's windows only when a connection starts: `window`'s, which stays the
/// connection's for its life (it does not grow, unlike the gRPC receiver's).
fn builder(limits: &Limits, window: &ConnWindow) -> auto::Builder<LocalExec> {
    let mut b = auto::Builder::new(LocalExec);
    // The body deadline is ours (`read_timeout`); the header deadline is hyper's.
    b.http1().keep_alive(true).timer(LocalTimer).header_read_timeout(limits.header_timeout);
    let h2 = &limits.conn.limits;
    b.http2()
        .max_concurrent_streams(limits.conn.max_streams)
        .initial_stream_window_size(window.stream_size())
        .initial_connection_window_size(window.size())
        .max_frame_size(h2.max_frame_size)
        .max_header_list_size(h2.max_header_list_size)
        .max_pending_accept_reset_streams(h2.max_pending_reset_streams)
        .max_local_error_reset_streams(h2.max_local_reset_streams);
    b
}

/// Serves one connection until the peer leaves, or shutdown or its idle timeout has drained it;
/// then lingers (`linger.rs`) so that an answer sent before the whole body was read arrives.
async fn serve_connection<S: GrpcService>(tcp: TcpStream, service: Rc<S>, limits: Limits, shutdown: Shutdown) {
    let _live = crate::telemetry::Live::connection();
    let _ = tcp.set_nodelay(true);
    let linger = Linger::keep(&tcp);
    serve_hyper(tcp, service, limits, &shutdown).await;
    linger.close(shutdown.wait()).await;
}

/// hyper on one connection (TLS first, if configured); `tcp` is closed on return.
async fn serve_hyper<S: GrpcService>(tcp: TcpStream, service: Rc<S>, limits: Limits, shutdown: &Shutdown) {
    let tls = service.tls();
    let h2 = limits.conn.limits;
    let Some(io) = crate::tls::accept_within(TokioIo::new(tcp), tls, h2.handshake_timeout).await else { return };
    // With TLS, hyper sees HTTP/2 by its preface, as ALPN `h2` promised; else HTTP/1.1.
    // The flood guard reads the plaintext, under TLS.
    let io = hyper_util::rt::TokioIo::new(Guarded::new(io, h2.max_control_frames));
    let activity = Activity::new();
    let busy = activity.clone();
    // hyper tells HTTP/1.1 from h2c only by the first bytes, so every connection takes a
    // window; an HTTP/1.1 one gives it back to the pool with its first request.
    let window = limits.conn.windows.open();
    let builder = builder(&limits, &window);
    let window = RefCell::new(Some(window));
    let handler = hyper::service::service_fn(move |req| {
        if req.version() != http::Version::HTTP_2 {
            drop(window.borrow_mut().take());
        }
        let (service, busy) = (service.clone(), busy.busy());
        async move {
            let reply = handle(req, &*service, h2.read_timeout).await;
            drop(busy);
            Ok::<_, Infallible>(reply)
        }
    });
    let conn = builder.serve_connection(io, handler);
    let mut conn = std::pin::pin!(conn);
    let stop = async { Some(leave(shutdown, &activity, limits.conn.timeouts).await) };
    let serve = async {
        let _ = conn.as_mut().await;
        None
    };
    if let Some(why) = future::or(serve, stop).await {
        conn.as_mut().graceful_shutdown();
        let grace = limits.conn.timeouts.age_grace.unwrap_or(DEFAULT_GOAWAY_GRACE);
        let grace = if why == Leave::Expired { Some(grace) } else { None };
        within_grace(grace, conn).await;
    }
}

/// `read`: how long the body may take to arrive (`read_timeout`).
async fn handle<S: GrpcService>(req: Request<Incoming>, service: &S, read: Duration) -> Reply {
    let _live = crate::telemetry::Live::stream();
    let format = req.headers().get(header::CONTENT_TYPE).and_then(|v| Format::of(v.as_bytes()));
    let signal = signal_of(req.uri().path());
    match call(req, service, (signal, format), read).await {
        Ok(body) => ok_reply(format.unwrap_or(Format::Protobuf), signal, body),
        Err(failure) => error_reply(format.unwrap_or(Format::Protobuf), &failure),
    }
}

/// The signal an OTLP/HTTP path names.
pub fn signal_of(path: &str) -> Option<Signal> {
    match path {
        "/v1/traces" => Some(Signal::Traces),
        "/v1/metrics" => Some(Signal::Metrics),
        "/v1/logs" => Some(Signal::Logs),
        _ => None,
    }
}

async fn call<S: GrpcService>(
    req: Request<Incoming>,
    service: &S,
    (signal, format): (Option<Signal>, Option<Format>),
    read_timeout: Duration,
) -> Result<Bytes, Failure> {
    let limit = service.max_recv();
    let head = service.authenticate(req.headers()).map_err(Failure::from);
    let head = head.and_then(|()| check_head(&req, service, signal)).and_then(|found| {
        let format = format.ok_or_else(unsupported_media_type)?;
        Ok((found, format, content_encoding(req.headers())?))
    });
    let ((signal, method), format, encoding) = match head {
        Ok(head) => head,
        Err(failure) => {
            drain(req.into_body(), limit, read_timeout).await;
            return Err(failure);
        }
    };
    let mut held = service.budget().hold();
    let read = async { Ok(read_body(req.into_body(), limit, service.budget(), &mut held).await) };
    let body = match glommio::timer::timeout(read_timeout, read).await {
        Ok(body) => body?,
        Err(_) => return Err(Failure::new(StatusCode::REQUEST_TIMEOUT, Code::DeadlineExceeded, "body too slow")),
    };
    let framed = to_framed(signal, format, encoding, &body, limit)?;
    drop(body);
    if !service.budget().take(&mut held, framed.len()) {
        return Err(over_budget(service.budget()));
    }
    let response = service.call(method, Bytes::from(framed)).await?;
    Ok(response.slice(GRPC_PREFIX.min(response.len())..))
}

/// Reads and drops the body of a refused request (up to `limit` bytes, within the read
/// deadline) so that an HTTP/1.1 connection stays usable; past that hyper closes it.
async fn drain(mut body: Incoming, limit: usize, within: Duration) {
    let read = async {
        let mut seen = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, |d| d.len());
            if seen > limit {
                break;
            }
        }
        Ok(())
    };
    let _ = glommio::timer::timeout(within, read).await;
}

/// The path's signal and the service's method for it; 404 or 405 otherwise.
fn check_head<S: GrpcService>(
    req: &Request<Incoming>,
    service: &S,
    signal: Option<Signal>,
) -> Result<(Signal, S::Method), Failure> {
    let path = req.uri().path();
    let found = signal.and_then(|s| Some((s, service.route(export_path(s))?)));
    let Some(found) = found else {
        let message = format!("no OTLP/HTTP endpoint at {}", path.escape_debug());
        return Err(Failure::new(StatusCode::NOT_FOUND, Code::Unimplemented, message));
    };
    if req.method() != Method::POST {
        return Err(Failure::new(StatusCode::METHOD_NOT_ALLOWED, Code::Unimplemented, "only POST is allowed"));
    }
    Ok(found)
}

fn unsupported_media_type() -> Failure {
    let message = "Content-Type must be application/x-protobuf or application/json";
    Failure::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, Code::InvalidArgument, message)
}

/// The body's `Content-Encoding`: identity, gzip, deflate or zstd (415 otherwise).
fn content_encoding(headers: &HeaderMap) -> Result<Encoding, Failure> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else { return Ok(Encoding::Identity) };
    match Encoding::from_token(value.as_bytes()) {
        Some(e @ (Encoding::Identity | Encoding::Gzip | Encoding::Deflate | Encoding::Zstd)) => Ok(e),
        _ => {
            let message = format!("unsupported Content-Encoding; this server accepts {ACCEPT_ENCODING}");
            Err(Failure::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, Code::InvalidArgument, message))
        }
    }
}

/// Reads the whole body, refusing it (413) once it passes `limit` or the core's budget (429).
async fn read_body(
    mut body: Incoming,
    limit: usize,
    budget: &ByteBudget,
    held: &mut Held<'_>,
) -> Result<Bytes, Failure> {
    let declared = hyper::body::Body::size_hint(&body).exact();
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Failure::new(StatusCode::BAD_REQUEST, Code::InvalidArgument, e.to_string()))?;
        let Ok(data) = frame.into_data() else { continue };
        if buf.len() + data.len() > limit {
            return Err(too_large(limit));
        }
        if !budget.take(held, data.len()) {
            return Err(over_budget(budget));
        }
        buf.extend_from_slice(&data);
    }
    Ok(buf.freeze())
}

/// The body decoded and, for JSON, transcoded: one framed protobuf message.
fn to_framed(
    signal: Signal,
    format: Format,
    encoding: Encoding,
    body: &[u8],
    limit: usize,
) -> Result<Vec<u8>, Failure> {
    let decoded;
    let raw = if encoding == Encoding::Identity {
        body
    } else {
        decoded = encoding.decode(body, limit).map_err(|e| decode_failure(encoding, e, limit))?;
        &decoded[..]
    };
    match format {
        Format::Json => http_json::request_to_framed(signal, raw)
            .map_err(|e| Failure::new(StatusCode::BAD_REQUEST, Code::InvalidArgument, e.to_string())),
        Format::Protobuf => Ok(frame(raw)),
    }
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(GRPC_PREFIX + payload.len());
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.push(0);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn decode_failure(encoding: Encoding, e: DecodeError, limit: usize) -> Failure {
    match e {
        DecodeError::TooLarge { .. } => too_large(limit),
        DecodeError::Corrupt(_) => {
            let message = format!("body is not valid {} data", encoding.name());
            Failure::new(StatusCode::BAD_REQUEST, Code::InvalidArgument, message)
        }
    }
}

fn too_large(limit: usize) -> Failure {
    let message = format!("request body is larger than max_request_body_size ({limit} bytes)");
    Failure::new(StatusCode::PAYLOAD_TOO_LARGE, Code::ResourceExhausted, message)
}

fn over_budget(budget: &ByteBudget) -> Failure {
    let mib = budget.limit() >> 20;
    let message = format!("this core holds {mib} MiB of requests in flight; retry later");
    Failure::new(StatusCode::TOO_MANY_REQUESTS, Code::ResourceExhausted, message)
}

fn ok_reply(format: Format, signal: Option<Signal>, proto: Bytes) -> Reply {
    let body = match (format, signal) {
        (Format::Json, Some(signal)) => Bytes::from(http_json::response_to_json(signal, &proto)),
        _ => proto,
    };
    reply(StatusCode::OK, format, body)
}

fn error_reply(format: Format, failure: &Failure) -> Reply {
    let body = status_body(format, &failure.status);
    let mut response = reply(failure.http, format, body);
    let headers = response.headers_mut();
    match failure.http {
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
            headers.insert(header::RETRY_AFTER, header::HeaderValue::from(retry_after_secs(&failure.status)));
        }
        StatusCode::METHOD_NOT_ALLOWED => drop(headers.insert(header::ALLOW, header::HeaderValue::from_static("POST"))),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            headers.insert(header::ACCEPT_ENCODING, header::HeaderValue::from_static(ACCEPT_ENCODING));
        }
        StatusCode::UNAUTHORIZED => {
            drop(headers.insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer")))
        }
        _ => {}
    }
    response
}

/// Whole seconds a client should wait: the status's retry delay (a full retry queue asks for
/// one retry interval) rounded up, at least 1.
fn retry_after_secs(status: &Status) -> u64 {
    let delay = status.retry_delay.map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0));
    delay.unwrap_or(DEFAULT_RETRY_AFTER_SECS).max(1)
}

fn reply(code: StatusCode, format: Format, body: Bytes) -> Reply {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = code;
    let content_type = header::HeaderValue::from_static(format.content_type());
    response.headers_mut().insert(header::CONTENT_TYPE, content_type);
    response
}

/// A `google.rpc.Status` with `code` and `message` (no details), in `format`.
pub fn status_body(format: Format, status: &Status) -> Bytes {
    match format {
        Format::Json => {
            let message = status.message.to_string().into();
            let json = super::http_json::object([("code", (status.code as i32).into()), ("message", message)]);
            Bytes::from(json.to_string())
        }
        Format::Protobuf => {
            let mut out = Vec::new();
            prost::encoding::int32::encode(1, &(status.code as i32), &mut out);
            prost::encoding::string::encode(2, &status.message.to_string(), &mut out);
            Bytes::from(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_are_matched_without_parameters_or_case() {
        assert_eq!(Format::of(b"application/x-protobuf"), Some(Format::Protobuf));
        assert_eq!(Format::of(b"Application/JSON; charset=utf-8"), Some(Format::Json));
        assert_eq!(Format::of(b"text/plain"), None);
        assert_eq!(Format::of(b""), None);
    }

    #[test]
    fn retryable_codes_map_to_429_and_503() {
        assert_eq!(http_status(Code::Unavailable), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(http_status(Code::DeadlineExceeded), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(http_status(Code::ResourceExhausted), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(http_status(Code::InvalidArgument), StatusCode::BAD_REQUEST);
        assert_eq!(http_status(Code::Internal), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn retry_after_is_the_status_retry_delay_rounded_up() {
        let status = |ms| Status::new(Code::ResourceExhausted, "full").with_retry_delay(Duration::from_millis(ms));
        assert_eq!(retry_after_secs(&status(5000)), 5);
        assert_eq!(retry_after_secs(&status(2500)), 3);
        assert_eq!(retry_after_secs(&status(10)), 1);
        assert_eq!(retry_after_secs(&Status::new(Code::Unavailable, "down")), 1);
    }

    #[test]
    fn status_bodies_decode_as_google_rpc_status() {
        let status = Status::new(Code::InvalidArgument, "bad");
        let proto = status_body(Format::Protobuf, &status);
        assert_eq!(&proto[..], b"\x08\x03\x12\x03bad");
        let json: serde_json::Value = serde_json::from_slice(&status_body(Format::Json, &status)).unwrap();
        assert_eq!(json, serde_json::json!({"code": 3, "message": "bad"}));
    }
}
