//! HTTP/2 settings for OTLP traffic, in one place for both ends.
//!
//! OTLP requests are large (100 spans ≈ 35 KB, batches of 1 MB are common), so the protocol's
//! 64 KiB default windows would stall a stream for a round trip every 64 KiB. Windows are sized
//! for several max-size requests in flight per connection.

use crate::receiver::limits::ProtocolLimits;

/// Per-stream receive window: one 4 MiB request fits without waiting for WINDOW_UPDATE.
pub const STREAM_WINDOW: u32 = 4 << 20;
/// Per-connection receive window: several large requests in flight at once. A receiver
/// connection gets at most this, from its core's window pool (`receiver/window.rs`).
pub const CONN_WINDOW: u32 = 16 << 20;
/// Largest frame the exporter accepts from backends (receivers: `http2.max_frame_size`);
/// larger frames mean fewer frame headers and wakeups per request.
pub const MAX_FRAME: u32 = 256 << 10;
/// Header lists from backends larger than this are refused (gRPC headers are a few hundred
/// bytes; receivers: `http2.max_header_list_size`).
pub const MAX_HEADER_LIST: u32 = 16 << 10;

/// The receivers' HTTP/2 server, with a listener's configured limits. `window` and
/// `stream_window` come from the core's window pool (`receiver/window.rs`): at most
/// `CONN_WINDOW` and `STREAM_WINDOW`.
pub fn h2_server(
    max_concurrent_streams: u32,
    limits: &ProtocolLimits,
    window: u32,
    stream_window: u32,
) -> h2::server::Builder {
    let mut b = h2::server::Builder::new();
    b.initial_window_size(stream_window)
        .initial_connection_window_size(window)
        .max_frame_size(limits.max_frame_size)
        .max_header_list_size(limits.max_header_list_size)
        .max_concurrent_streams(max_concurrent_streams)
        .max_send_buffer_size(1 << 20)
        // Rapid reset (CVE-2023-44487): a peer that resets streams faster than we accept them,
        // or provokes more than this many local resets, gets GOAWAY.
        .max_pending_accept_reset_streams(limits.max_pending_reset_streams)
        .max_local_error_reset_streams(Some(limits.max_local_reset_streams));
    b
}

pub fn h2_client() -> h2::client::Builder {
    let mut b = h2::client::Builder::new();
    b.initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONN_WINDOW)
        .max_frame_size(MAX_FRAME)
        .max_header_list_size(MAX_HEADER_LIST)
        .max_send_buffer_size(4 << 20)
        .enable_push(false);
    b
}
