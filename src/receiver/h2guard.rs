//! HTTP/2 flood guard: a sans-IO reader of the frame headers a client sends, and
//! [`Guarded`], the thin read wrapper that feeds it on every connection.
//!
//! h2 already bounds what these frames make it hold (one pending PONG or SETTINGS ACK at a
//! time, 100 empty DATA frames, CONTINUATION frames per header block, reset streams), but not
//! the CPU a peer burns by sending nothing else: a PING, SETTINGS, WINDOW_UPDATE, PRIORITY,
//! unknown-type or empty frame costs the sender 9 bytes and us a wakeup and a write. Such
//! "cheap" frames draw from a per-connection bucket that useful work refills: past it, the
//! connection is dropped.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The client preface of HTTP/2 (RFC 9113 §3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADER_LEN: usize = 9;

/// Default cheap frames a connection may send in a burst (`http2.max_control_frames`). A gRPC
/// client sends a few per request (WINDOW_UPDATE, BDP PING).
pub const CHEAP_FRAME_BURST: u32 = 1000;
/// Cheap frames each request (a HEADERS frame that opens a stream) earns back.
pub const CHEAP_FRAMES_PER_REQUEST: u32 = 4;
/// Payload bytes of DATA that earn back one cheap frame.
pub const DATA_BYTES_PER_CHEAP_FRAME: u32 = 1024;

/// Frame types (RFC 9113 §6).
mod kind {
    pub const DATA: u8 = 0;
    pub const HEADERS: u8 = 1;
    pub const RST_STREAM: u8 = 3;
    pub const CONTINUATION: u8 = 9;
}
const END_STREAM: u8 = 0x1;

/// What the guard has seen so far on one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Matched this many bytes of the preface.
    Preface(usize),
    /// Not HTTP/2 (HTTP/1.1 on the HTTP receiver): nothing to count.
    Passive,
    /// Reading a frame header: this many of its 9 bytes are in `header`.
    Header(usize),
    /// Skipping this many payload bytes.
    Payload(u32),
    /// Over budget: the connection is to be dropped.
    Tripped,
}

/// Why a connection was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("HTTP/2 flood: too many control or empty frames")]
pub struct Flood;

/// Counts a client's cheap frames across reads cut anywhere.
#[derive(Debug, Clone)]
pub struct FrameGuard {
    state: State,
    header: [u8; HEADER_LEN],
    /// Cheap frames left, capped at `burst`.
    credit: u32,
    burst: u32,
    /// DATA bytes not yet turned into credit.
    data_bytes: u32,
    /// Frames seen, for tests and figures.
    pub frames: u64,
}

impl Default for FrameGuard {
    fn default() -> Self {
        FrameGuard::new(CHEAP_FRAME_BURST)
    }
}

impl FrameGuard {
    pub fn new(burst: u32) -> Self {
        FrameGuard { state: State::Preface(0), header: [0; HEADER_LEN], credit: burst, burst, data_bytes: 0, frames: 0 }
    }

    /// Feeds the next bytes the client sent.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), Flood> {
        while !bytes.is_empty() {
            let used = match self.state {
                State::Passive => return Ok(()),
                State::Tripped => return Err(Flood),
                State::Preface(n) => self.preface(n, bytes),
                State::Header(n) => self.header(n, bytes),
                State::Payload(left) => self.payload(left, bytes),
            };
            bytes = bytes.get(used..).unwrap_or_default();
        }
        if self.state == State::Tripped { Err(Flood) } else { Ok(()) }
    }

    fn preface(&mut self, n: usize, bytes: &[u8]) -> usize {
        let take = (PREFACE.len() - n).min(bytes.len());
        self.state = if bytes[..take] != PREFACE[n..n + take] {
            State::Passive
        } else if n + take == PREFACE.len() {
            State::Header(0)
        } else {
            State::Preface(n + take)
        };
        take
    }

    fn header(&mut self, n: usize, bytes: &[u8]) -> usize {
        let take = (HEADER_LEN - n).min(bytes.len());
        self.header[n..n + take].copy_from_slice(&bytes[..take]);
        if n + take < HEADER_LEN {
            self.state = State::Header(n + take);
            return take;
        }
        self.frames += 1;
        let len = u32::from_be_bytes([0, self.header[0], self.header[1], self.header[2]]);
        self.count(self.header[3], self.header[4], len);
        if self.state != State::Tripped {
            self.state = if len == 0 { State::Header(0) } else { State::Payload(len) };
        }
        take
    }

    fn payload(&mut self, left: u32, bytes: &[u8]) -> usize {
        let take = usize::try_from(left).unwrap_or(usize::MAX).min(bytes.len());
        let rest = left - u32::try_from(take).unwrap_or(left);
        self.state = if rest == 0 { State::Header(0) } else { State::Payload(rest) };
        take
    }

    /// Charges or credits one frame by its type, flags and payload length.
    fn count(&mut self, kind: u8, flags: u8, len: u32) {
        match kind {
            kind::DATA if len > 0 || flags & END_STREAM != 0 => self.earn_data(len),
            kind::HEADERS if len > 0 => self.earn(CHEAP_FRAMES_PER_REQUEST),
            kind::CONTINUATION if len > 0 => {}
            // A reset takes back what its request earned (rapid reset, CVE-2023-44487).
            kind::RST_STREAM => (0..=CHEAP_FRAMES_PER_REQUEST).for_each(|_| self.spend()),
            // Everything else is cheap: empty DATA/HEADERS/CONTINUATION, PING, SETTINGS,
            // WINDOW_UPDATE, PRIORITY, RST_STREAM, GOAWAY and unknown types.
            _ => self.spend(),
        }
    }

    fn earn_data(&mut self, len: u32) {
        self.data_bytes = self.data_bytes.saturating_add(len);
        let earned = self.data_bytes / DATA_BYTES_PER_CHEAP_FRAME;
        self.data_bytes %= DATA_BYTES_PER_CHEAP_FRAME;
        self.earn(earned);
    }

    fn earn(&mut self, n: u32) {
        self.credit = self.credit.saturating_add(n).min(self.burst);
    }

    fn spend(&mut self) {
        match self.credit.checked_sub(1) {
            Some(left) => self.credit = left,
            None => self.state = State::Tripped,
        }
    }
}

/// A connection stream whose reads pass through a [`FrameGuard`]: once the guard trips, reads
/// fail and h2 (or hyper) drops the connection.
pub struct Guarded<S> {
    inner: S,
    guard: FrameGuard,
}

impl<S> Guarded<S> {
    /// `burst`: the connection's `max_control_frames`.
    pub fn new(inner: S, burst: u32) -> Self {
        Guarded { inner, guard: FrameGuard::new(burst) }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled
            && let Err(flood) = this.guard.feed(buf.filled().get(before..).unwrap_or_default())
        {
            crate::telemetry::Refused::H2Flood.note();
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::ConnectionAborted, flood)));
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[path = "h2guard_tests.rs"]
mod tests;
