//! One connection's byte stream, plaintext or TLS, for h2 and hyper (tokio's I/O traits).

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::{TlsAcceptor, TlsConnector, TlsStream};

/// `IO` as it came, or inside a TLS session (boxed: the session is a few KiB).
pub enum MaybeTls<IO> {
    Plain(IO),
    Tls(Box<TlsStream<IO>>),
}

/// The server side of the handshake when `config` is set; plaintext otherwise.
pub async fn accept<IO>(io: IO, config: Option<Arc<ServerConfig>>) -> io::Result<MaybeTls<IO>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    match config {
        None => Ok(MaybeTls::Plain(io)),
        Some(config) => Ok(MaybeTls::Tls(Box::new(TlsAcceptor::from(config).accept(io).await?.into()))),
    }
}

/// [`accept`] bounded by `limit` (a handshake that stalls must not hold the connection).
pub async fn accept_within<IO>(io: IO, config: Option<Arc<ServerConfig>>, limit: Duration) -> Option<MaybeTls<IO>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let handshake = async { Ok(accept(io, config).await) };
    glommio::timer::timeout(limit, handshake).await.ok()?.ok()
}

/// The client side of the handshake, verifying the server as `name`, when `tls` is set.
pub async fn connect<IO>(io: IO, tls: Option<(Arc<ClientConfig>, ServerName<'static>)>) -> io::Result<MaybeTls<IO>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    match tls {
        None => Ok(MaybeTls::Plain(io)),
        Some((config, name)) => Ok(MaybeTls::Tls(Box::new(TlsConnector::from(config).connect(name, io).await?.into()))),
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for MaybeTls<IO> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(io) => Pin::new(io).poll_read(cx, buf),
            MaybeTls::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for MaybeTls<IO> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(io) => Pin::new(io).poll_write(cx, buf),
            MaybeTls::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            MaybeTls::Tls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            MaybeTls::Plain(io) => io.is_write_vectored(),
            MaybeTls::Tls(tls) => tls.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(io) => Pin::new(io).poll_flush(cx),
            MaybeTls::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(io) => Pin::new(io).poll_shutdown(cx),
            MaybeTls::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}
