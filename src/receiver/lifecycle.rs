//! How a receiver connection ends: on shutdown (GOAWAY, then drain under the core's drain
//! deadline), or when idle or too old (GOAWAY, then drain for `max_connection_age_grace`).

use bytes::Bytes;
use futures_lite::future;
use h2::RecvStream;
use h2::server::{Connection, SendResponse};
use http::Request;
use tokio::io::{AsyncRead, AsyncWrite};

use super::limits::{Activity, Busy, ConnTimeouts, DEFAULT_GOAWAY_GRACE, within_grace};
use super::window::ConnWindow;
use crate::runtime::shutdown::Shutdown;

/// Why a connection was asked to leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leave {
    Shutdown,
    /// Idle or too old: draining is bounded by `max_connection_age_grace`.
    Expired,
}

/// Resolves when the connection should send GOAWAY.
pub async fn leave(shutdown: &Shutdown, activity: &Activity, timeouts: ConnTimeouts) -> Leave {
    let stop = async {
        shutdown.wait().await;
        Leave::Shutdown
    };
    let expired = async {
        activity.expired(timeouts).await;
        Leave::Expired
    };
    future::or(stop, expired).await
}

/// Serves an HTTP/2 connection: every stream goes to `on_stream` with its [`Busy`] mark,
/// until the peer leaves or [`leave`] says so and the connection has drained. `window` is the
/// connection's share of its core's window pool, held until the connection ends; between
/// streams it is rebalanced to the core's fair share.
pub async fn drive_h2<T, F>(
    mut conn: Connection<T, Bytes>,
    mut window: ConnWindow,
    shutdown: Shutdown,
    timeouts: ConnTimeouts,
    on_stream: F,
) where
    T: AsyncRead + AsyncWrite + Unpin,
    F: Fn(Request<RecvStream>, SendResponse<Bytes>, Busy),
{
    let activity = Activity::new();
    let serve = async {
        let mut stream_window = window.stream_size();
        while let Some(Ok((req, respond))) = conn.accept().await {
            on_stream(req, respond, activity.busy());
            rebalance(&mut conn, &mut window, &mut stream_window);
        }
        None
    };
    let why = future::or(serve, async { Some(leave(&shutdown, &activity, timeouts).await) }).await;
    let Some(why) = why else { return };
    conn.graceful_shutdown();
    let drain = async {
        while let Some(Ok((req, respond))) = conn.accept().await {
            on_stream(req, respond, activity.busy());
        }
    };
    let grace = if why == Leave::Expired { Some(timeouts.age_grace.unwrap_or(DEFAULT_GOAWAY_GRACE)) } else { None };
    within_grace(grace, drain).await;
}

/// Applies a rebalanced `window` to `conn`: its connection window at once (raised: h2 sends a
/// WINDOW_UPDATE; lowered: h2 withholds them until the peer's credit is below it), a raised
/// stream window once the peer has acknowledged the previous SETTINGS (`stream_window` is the
/// one last sent). What a peer may buffer is bounded by the connection window either way.
fn rebalance<T, B>(conn: &mut Connection<T, B>, window: &mut ConnWindow, stream_window: &mut u32)
where
    T: AsyncRead + AsyncWrite + Unpin,
    B: bytes::Buf,
{
    if let Some(size) = window.rebalance() {
        conn.set_target_window_size(size);
    }
    // Stream windows are only raised: lowering them with SETTINGS can leave a stream whose
    // peer has no credit left and no WINDOW_UPDATE coming (h2 schedules none for it).
    if window.stream_size() > *stream_window && conn.set_initial_window_size(window.stream_size()).is_ok() {
        *stream_window = window.stream_size();
    }
}
