//! The one adapter between glommio's sockets and h2, which speaks tokio's I/O traits.
//!
//! Two things h2 cannot get from a bare glommio stream, both about syscalls per request:
//! - reads go through a 64 KiB read-ahead buffer, so a 35 KB request is one `recv`, not one
//!   per 8 KiB of h2's own buffer (and h2's buffer is never zero-filled for us). A connection
//!   holds the buffer only while it has unread bytes in it, then gives it back to its thread's
//!   spares: a thousand connections waiting for their next bytes hold no read-ahead at all;
//! - writes are vectored: a frame header and its payload (and several frames) leave in one
//!   `sendmsg` instead of one `send` each.

use std::cell::RefCell;
use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::{AsyncRead, AsyncWrite};
use tokio::io::ReadBuf;

/// Read-ahead size: larger than a typical OTLP request, small enough to stay in L2.
const READ_AHEAD: usize = 64 * 1024;

/// Read-ahead buffers a thread keeps for its next reads (1 MiB): one is in use at a time on a
/// thread, unless a reader stops before taking all its bytes.
const SPARES_KEPT: usize = 16;

thread_local! {
    static SPARES: RefCell<Vec<Box<[u8]>>> = const { RefCell::new(Vec::new()) };
}

fn take_spare() -> Box<[u8]> {
    let spare = SPARES.with(|s| s.borrow_mut().pop());
    spare.unwrap_or_else(|| vec![0; READ_AHEAD].into_boxed_slice())
}

fn give_back(buf: Box<[u8]>) {
    SPARES.with(|s| {
        let mut spares = s.borrow_mut();
        if spares.len() < SPARES_KEPT {
            spares.push(buf);
        }
    });
}

/// Wraps a glommio stream as a tokio one.
pub struct TokioIo<T> {
    inner: T,
    /// Held only while `rpos < rend` (glommio reads into it synchronously, never after a
    /// `Pending`).
    rbuf: Option<Box<[u8]>>,
    rpos: usize,
    rend: usize,
}

impl<T> TokioIo<T> {
    pub fn new(inner: T) -> Self {
        TokioIo { inner, rbuf: None, rpos: 0, rend: 0 }
    }

    /// Gives the read-ahead back once it holds no unread bytes.
    fn release_if_drained(&mut self) {
        if self.rpos == self.rend
            && let Some(buf) = self.rbuf.take()
        {
            give_back(buf);
        }
    }
}

impl<T: AsyncRead + Unpin> tokio::io::AsyncRead for TokioIo<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.rpos == this.rend {
            let rbuf = this.rbuf.get_or_insert_with(take_spare);
            let read = Pin::new(&mut this.inner).poll_read(cx, rbuf);
            (this.rpos, this.rend) = (0, 0);
            match read {
                Poll::Ready(Ok(n)) => this.rend = n,
                other => {
                    this.release_if_drained();
                    return other.map(|r| r.map(drop));
                }
            }
        }
        let n = (this.rend - this.rpos).min(buf.remaining());
        let rbuf = this.rbuf.as_deref().unwrap_or_default();
        buf.put_slice(rbuf.get(this.rpos..this.rpos + n).unwrap_or_default());
        this.rpos += n;
        this.release_if_drained();
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + AsRawFd + Unpin> tokio::io::AsyncWrite for TokioIo<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // SAFETY: the fd belongs to `inner`, which outlives this borrow.
        let fd = unsafe { BorrowedFd::borrow_raw(self.inner.as_raw_fd()) };
        match socket2::SockRef::from(&fd).send_vectored_with_flags(bufs, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // The socket is full: let glommio wait for room (io_uring) with the first slice.
                let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| &b[..]);
                Pin::new(&mut self.inner).poll_write(cx, first)
            }
            other => Poll::Ready(other),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}
