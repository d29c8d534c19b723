//! HTTP/2 settings for OTLP traffic, in one place for both ends.
//!
//! OTLP requests are large (100 spans ≈ 35 KB, batches of 1 MB are common), so the protocol's
//! 64 KiB default windows would stall a stream for a round trip every 64 KiB. Windows are sized
//! for several max-size requests in flight per connection.

/// Per-stream receive window: one 4 MiB request fits without waiting for WINDOW_UPDATE.
pub const STREAM_WINDOW: u32 = 4 << 20;
/// Per-connection receive window: several large requests in flight at once. A receiver
/// connection gets at most this, from its core's window pool (`receiver/window.rs`).
pub const CONN_WINDOW: u32 = 16 << 20;
/// Largest frame we accept; larger frames mean fewer frame headers and wakeups per request.
pub const MAX_FRAME: u32 = 256 << 10;
/// Header lists larger than this are refused (gRPC headers are a few hundred bytes).
pub const MAX_HEADER_LIST: u32 = 16 << 10;

/// The receivers' HTTP/2 settings. `window` and `stream_window` come from the core's window
/// pool (`receiver/window.rs`): at most `CONN_WINDOW` and `STREAM_WINDOW`.
pub fn h2_server(max_concurrent_streams: u32, window: u32, stream_window: u32) -> h2::server::Builder {
    let mut b = h2::server::Builder::new();
    b.initial_window_size(stream_window)
        .initial_connection_window_size(window)
        .max_frame_size(MAX_FRAME)
        .max_header_list_size(MAX_HEADER_LIST)
        .max_concurrent_streams(max_concurrent_streams)
        .max_send_buffer_size(1 << 20)
        // Rapid reset (CVE-2023-44487): a peer that resets streams faster than we accept them,
        // or provokes more than this many local resets, gets GOAWAY.
        .max_pending_accept_reset_streams(MAX_PENDING_RESETS)
        .max_local_error_reset_streams(Some(MAX_LOCAL_RESETS));
    b
}

/// Streams a client may open and reset before we accept them (h2's default, made explicit).
pub const MAX_PENDING_RESETS: usize = 20;
/// Streams we may reset for a peer's protocol errors before closing its connection.
pub const MAX_LOCAL_RESETS: usize = 1024;

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

/// A connection that has not finished the HTTP/2 preface by then is dropped.
pub const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// A request whose body has not fully arrived by then gets DEADLINE_EXCEEDED (slow senders
/// must not pin memory). 30 s covers a 4 MiB request at about 1 Mbit/s.
pub const REQUEST_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
