//! One unary gRPC call over an HTTP/2 client connection, and opening such connections.
//! Shared by the exporter and the load generator.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use glommio::net::TcpStream;
use h2::client::SendRequest;
use http::{HeaderMap, Request, Uri};

use super::error::ExportError;
use crate::compression::Encoding;
use crate::grpc::{Status, UnaryReader};
use crate::runtime::io::TokioIo;
use crate::runtime::tuning;
use crate::wire::GRPC_PREFIX;

/// How export calls are sent: the exporter's `compression` and `headers`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallOptions {
    pub compression: Encoding,
    /// The configured `headers`, plus `grpc-encoding` when compressing.
    pub headers: HeaderMap,
}

impl CallOptions {
    pub fn new(compression: Encoding, mut headers: HeaderMap) -> Self {
        if compression != Encoding::Identity {
            headers.insert("grpc-encoding", http::HeaderValue::from_static(compression.name()));
        }
        CallOptions { compression, headers }
    }

    /// `framed` compressed per the options (flag set); as it came if identity, or in the
    /// impossible case that encoding into memory fails (flag 0 is valid with any encoding).
    pub fn encode(&self, framed: Bytes) -> Bytes {
        if self.compression == Encoding::Identity || framed.len() < GRPC_PREFIX {
            return framed;
        }
        let Ok(packed) = self.compression.encode(&framed[GRPC_PREFIX..]) else { return framed };
        let mut out = Vec::with_capacity(GRPC_PREFIX + packed.len());
        out.push(1);
        out.extend_from_slice(&u32::try_from(packed.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(&packed);
        Bytes::from(out)
    }
}

/// [`unary_with`] under `options`: the message compressed, the headers sent.
pub async fn export(
    send: SendRequest<Bytes>,
    uri: Uri,
    framed: Bytes,
    timeout: Duration,
    options: &CallOptions,
) -> Result<Bytes, ExportError> {
    unary_with(send, uri, options.encode(framed), timeout, &options.headers).await
}

/// Largest response we read from a backend: OTLP responses are tiny (partial success).
const MAX_RESPONSE: usize = 64 * 1024;

/// What a TLS dial needs: the exporter's client config and the name to verify the backend by.
pub type Tls = (Arc<crate::tls::ClientConfig>, crate::tls::ServerName<'static>);

/// Opens an h2c connection and spawns its driver on this core. `on_close` runs when the
/// connection ends, so the pool can forget it.
pub async fn connect(
    addr: SocketAddr,
    timeout: Duration,
    on_close: impl FnOnce() + 'static,
) -> Result<SendRequest<Bytes>, String> {
    connect_tls(addr, None, timeout, on_close).await
}

/// [`connect`], over TLS (ALPN `h2`) when `tls` is set. `timeout` bounds the TCP connect and
/// the TLS handshake together.
pub async fn connect_tls(
    addr: SocketAddr,
    tls: Option<Tls>,
    timeout: Duration,
    on_close: impl FnOnce() + 'static,
) -> Result<SendRequest<Bytes>, String> {
    let dial = async {
        let tcp = TcpStream::connect(addr).await?;
        let _ = tcp.set_nodelay(true);
        let tls_handshake = crate::tls::connect(TokioIo::new(tcp), tls).await;
        Ok(tls_handshake.map_err(|e| format!("TLS handshake with {addr}: {e}")))
    };
    let io = glommio::timer::timeout(timeout, dial).await.map_err(|e| format!("connect {addr}: {e}"))??;
    let (send, conn) =
        tuning::h2_client().handshake::<_, Bytes>(io).await.map_err(|e| format!("handshake {addr}: {e}"))?;
    glommio::spawn_local(async move {
        let _ = conn.await;
        on_close();
    })
    .detach();
    Ok(send)
}

/// Sends `framed` (one gRPC message, prefix included) to `uri` and returns the response
/// message (prefix included) once the backend answered OK.
pub async fn unary(send: SendRequest<Bytes>, uri: Uri, framed: Bytes, timeout: Duration) -> Result<Bytes, ExportError> {
    unary_with(send, uri, framed, timeout, &HeaderMap::new()).await
}

/// [`unary`] with `headers` added to the request (`grpc-encoding` when `framed` is
/// compressed, the exporter's configured `headers`).
pub async fn unary_with(
    send: SendRequest<Bytes>,
    uri: Uri,
    framed: Bytes,
    timeout: Duration,
    headers: &HeaderMap,
) -> Result<Bytes, ExportError> {
    timed_call(send, uri, [framed], timeout, headers).await
}

/// [`unary_with`] with the message in `chunks` (a prefix, then the pieces of the message),
/// sent as they are: no copy.
pub async fn unary_chunks(
    send: SendRequest<Bytes>,
    uri: Uri,
    chunks: Vec<Bytes>,
    timeout: Duration,
    headers: &HeaderMap,
) -> Result<Bytes, ExportError> {
    timed_call(send, uri, chunks, timeout, headers).await
}

async fn timed_call(
    send: SendRequest<Bytes>,
    uri: Uri,
    body: impl IntoIterator<Item = Bytes>,
    timeout: Duration,
    headers: &HeaderMap,
) -> Result<Bytes, ExportError> {
    match glommio::timer::timeout(timeout, async { Ok(call(send, uri, body, headers).await) }).await {
        Ok(result) => result,
        Err(_) => Err(ExportError::Timeout(timeout)),
    }
}

async fn call(
    send: SendRequest<Bytes>,
    uri: Uri,
    body: impl IntoIterator<Item = Bytes>,
    headers: &HeaderMap,
) -> Result<Bytes, ExportError> {
    let mut send = send.ready().await.map_err(lost)?;
    let mut req = Request::post(uri)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .map_err(|_| ExportError::BadResponse("invalid request URI"))?;
    req.headers_mut().extend(headers.iter().map(|(k, v)| (k.clone(), v.clone())));
    let (response, mut stream) = send.send_request(req, false).map_err(lost)?;
    let mut chunks = body.into_iter().peekable();
    while let Some(chunk) = chunks.next() {
        stream.send_data(chunk, chunks.peek().is_none()).map_err(lost)?;
    }
    let response = response.await.map_err(lost)?;
    read_response(response).await
}

async fn read_response(response: http::Response<h2::RecvStream>) -> Result<Bytes, ExportError> {
    let (head, mut body) = response.into_parts();
    if head.status != http::StatusCode::OK {
        return Err(ExportError::BadResponse("HTTP status other than 200"));
    }
    if let Some(status) = Status::from_headers(&head.headers) {
        return outcome(status, Bytes::new());
    }
    let mut reader = Some(UnaryReader::new(MAX_RESPONSE));
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(lost)?;
        let _ = body.flow_control().release_capacity(chunk.len());
        // An oversize or odd response message is dropped, not fatal: the trailers decide
        // whether the data was accepted, and calling it a failure would make clients resend
        // data the backend already took.
        if reader.as_mut().is_some_and(|r| r.push(chunk).is_err()) {
            reader = None;
        }
    }
    let trailers = body.trailers().await.map_err(lost)?.unwrap_or_default();
    let status = Status::from_headers(&trailers).ok_or(ExportError::BadResponse("no grpc-status"))?;
    let message = reader.and_then(|r| r.finish().ok()).unwrap_or_default();
    outcome(status, message)
}

/// OK with the message, or the backend's rejection.
fn outcome(status: Status, message: Bytes) -> Result<Bytes, ExportError> {
    if status.code == crate::grpc::Code::Ok { Ok(message) } else { Err(ExportError::Rejected(status)) }
}

/// A reset of our stream leaves the connection usable; anything else loses it.
fn lost(e: h2::Error) -> ExportError {
    if e.is_reset() && !e.is_go_away() {
        ExportError::StreamReset(e.to_string())
    } else {
        ExportError::ConnectionLost(e.to_string())
    }
}
