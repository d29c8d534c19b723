//! Lingering close, as nginx's `lingering_close` and Go's `closeWriteAndWait` do it.
//!
//! A server that answers before it has read the whole request (413 for an oversize
//! `Content-Length` or a body past the limit, 429 past the core's budget, 408 for a body too
//! slow) and then closes with the rest unread makes the kernel reset the connection. A client
//! still writing its body then meets the reset, and unless it reads the answer after a failed
//! write (urllib3 and Go's client do; a plain write-then-read client does not) it sees
//! "connection reset", which OTLP exporters retry, instead of the 413 they drop as permanent.
//! So when hyper is done with a connection, the gateway shuts its write side (a FIN after the
//! answer) and reads and drops what the client still sends until the client closes too, for at
//! most [`LINGER_TIME`] and [`LINGER_BYTES`]. A client that closed first costs one read.

use std::net::Shutdown;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
use std::time::Duration;

use futures_lite::{AsyncReadExt, future};
use glommio::net::TcpStream;

/// How long a closing connection may keep the gateway reading, in all (nginx allows 5 s between
/// reads and 30 s in all): long enough for a client on a slow link to finish a body of a few
/// MiB and read the answer, short enough that lingering connections hold few of
/// `max_connections_per_core`.
pub const LINGER_TIME: Duration = Duration::from_secs(5);

/// How many bytes a closing connection may still send: a few times the default body limit,
/// so that an oversize request up to about that size still gets its 413.
pub const LINGER_BYTES: usize = 64 << 20;

/// A second descriptor of a connection's socket, so that the socket outlives hyper's handle.
pub struct Linger(Option<OwnedFd>);

impl Linger {
    /// Duplicates `tcp`'s descriptor; without one (EMFILE) the connection closes as before.
    pub fn keep(tcp: &TcpStream) -> Linger {
        // SAFETY: the descriptor is `tcp`'s and open for the duration of this call.
        let fd = unsafe { BorrowedFd::borrow_raw(tcp.as_raw_fd()) };
        Linger(fd.try_clone_to_owned().ok())
    }

    /// Shuts the write side and drains until the client closes, [`LINGER_TIME`] passes,
    /// [`LINGER_BYTES`] have come, or `stop` (the gateway's shutdown) resolves.
    pub async fn close(self, stop: impl std::future::Future<Output = ()>) {
        let Some(fd) = self.0 else { return };
        // SAFETY: `fd` is a connected TCP socket's descriptor, owned and handed over whole.
        let mut tcp = unsafe { TcpStream::from_raw_fd(fd.into_raw_fd()) };
        if tcp.shutdown(Shutdown::Write).await.is_err() {
            return;
        }
        let drain = async {
            let _ = glommio::timer::timeout(LINGER_TIME, async {
                drain(&mut tcp).await;
                Ok(())
            })
            .await;
        };
        future::or(drain, stop).await;
    }
}

/// Reads and drops until EOF, an error or [`LINGER_BYTES`]. Most clients have closed already:
/// the first read is small and the buffer comes only after it. Reads that find data at once
/// do not yield by themselves, so the loop yields when the core has other work.
async fn drain(tcp: &mut TcpStream) {
    let mut first = [0u8; 64];
    let mut left = match tcp.read(&mut first).await {
        Ok(0) | Err(_) => return,
        Ok(n) => LINGER_BYTES.saturating_sub(n),
    };
    let mut scratch = vec![0u8; 16 << 10];
    while left > 0 {
        glommio::yield_if_needed().await;
        match tcp.read(&mut scratch).await {
            Ok(0) | Err(_) => return,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}
