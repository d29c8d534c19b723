//! One loadgen connection: OTLP/gRPC through the exporter's `Backend` (it reconnects after a
//! peer's GOAWAY), or OTLP/HTTP over h2c by prior knowledge (the gateway's HTTP receiver
//! speaks it; only the gateway serves OTLP/HTTP in load runs).

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use http::{HeaderMap, HeaderValue, Request};

use super::bodies::Protocol;
use crate::compression::Encoding;
use crate::exporter::call::{self, CallOptions};
use crate::exporter::single_flight::SingleFlight;
use crate::exporter::{Backend, BackendSettings, ExportError};
use crate::grpc::TRACE_EXPORT;
use crate::tls::BackendTls;

/// Per-request deadline.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Why a request failed, and how long to pause before the next (a target that is down).
pub struct Failure {
    pub reason: String,
    pub pause: Option<Duration>,
}

impl Failure {
    fn new(reason: impl ToString) -> Self {
        Failure { reason: reason.to_string(), pause: None }
    }
}

/// Where a connection's requests go.
pub enum Target {
    Grpc(Rc<Backend>),
    Http(HttpConn),
}

impl Target {
    /// `tls` applies to gRPC; OTLP/HTTP is sent over h2c.
    pub fn new(addr: SocketAddr, protocol: Protocol, compression: Encoding, tls: Option<BackendTls>) -> Target {
        let mut headers = HeaderMap::new();
        if compression != Encoding::Identity {
            let name = if protocol == Protocol::Grpc { "grpc-encoding" } else { "content-encoding" };
            headers.insert(name, HeaderValue::from_static(compression.name()));
        }
        if protocol != Protocol::Grpc {
            headers.insert("content-type", HeaderValue::from_static(protocol.content_type()));
            return Target::Http(HttpConn {
                addr,
                send: RefCell::new(None),
                headers,
                connecting: SingleFlight::default(),
            });
        }
        // Bodies arrive compressed already: the call only adds the header.
        let call = CallOptions { compression: Encoding::Identity, headers };
        let settings = BackendSettings { timeout: TIMEOUT, call, tls, ..Default::default() };
        Target::Grpc(Backend::new(addr.to_string(), addr, settings))
    }

    /// Sends one request body and waits for an OK answer.
    pub async fn send(&self, body: Bytes) -> Result<(), Failure> {
        match self {
            Target::Grpc(backend) => backend.export(TRACE_EXPORT, body).await.map(drop).map_err(grpc_failure),
            Target::Http(conn) => conn.send(body).await,
        }
    }
}

fn grpc_failure(e: ExportError) -> Failure {
    let pause = match &e {
        ExportError::Unreachable { retry_in } => Some(*retry_in),
        _ => None,
    };
    Failure { reason: e.to_string(), pause }
}

/// An h2c connection for OTLP/HTTP, dialled on first use and again after it broke.
pub struct HttpConn {
    addr: SocketAddr,
    send: RefCell<Option<SendRequest<Bytes>>>,
    headers: HeaderMap,
    /// One dial at a time: the streams that find no connection wait for it (as the exporter's
    /// `Backend` does), instead of each dialling its own.
    connecting: SingleFlight,
}

impl HttpConn {
    async fn send(&self, body: Bytes) -> Result<(), Failure> {
        let send = self.sender().await?;
        let result = glommio::timer::timeout(TIMEOUT, async { Ok(self.post(send, body).await) }).await;
        let result = result.unwrap_or_else(|_| Err(Failure::new("timeout")));
        if result.is_err() {
            self.send.borrow_mut().take();
        }
        result
    }

    async fn sender(&self) -> Result<SendRequest<Bytes>, Failure> {
        loop {
            if let Some(s) = self.send.borrow().clone() {
                return Ok(s);
            }
            let Some(_turn) = self.connecting.try_begin() else {
                // Someone dials: use their connection, or dial again if theirs failed.
                self.connecting.wait_idle().await;
                continue;
            };
            return match call::connect(self.addr, Duration::from_secs(1), || {}).await {
                Ok(s) => Ok(self.send.borrow_mut().insert(s).clone()),
                Err(e) => Err(Failure { reason: e, pause: Some(Duration::from_millis(100)) }),
            };
        }
    }

    async fn post(&self, send: SendRequest<Bytes>, body: Bytes) -> Result<(), Failure> {
        let mut send = send.ready().await.map_err(Failure::new)?;
        let uri = format!("http://{}/v1/traces", self.addr);
        let mut req = Request::post(uri).body(()).map_err(Failure::new)?;
        req.headers_mut().extend(self.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
        let (response, mut stream) = send.send_request(req, false).map_err(Failure::new)?;
        stream.send_data(body, true).map_err(Failure::new)?;
        let (head, mut body) = response.await.map_err(Failure::new)?.into_parts();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(Failure::new)?;
            let _ = body.flow_control().release_capacity(chunk.len());
        }
        if head.status != http::StatusCode::OK {
            return Err(Failure::new(format!("HTTP {}", head.status)));
        }
        Ok(())
    }
}
