//! A receiver server's protocol limits (ours): `handshake_timeout`, `read_timeout` and `http2`,
//! beside the collector's keys under `protocols.grpc` and `protocols.http`.

use super::errors::Errors;
use super::parse::{Field, Fields};
use crate::receiver::limits::ProtocolLimits;

/// RFC 9113 §6.5.2: SETTINGS_MAX_FRAME_SIZE lies in 2^14 ..= 2^24 - 1.
const FRAME_SIZE: (u64, u64) = (1 << 14, (1 << 24) - 1);
/// 1 KiB holds any OTLP client's headers; past 1 MiB a header list is an attack.
const HEADER_LIST: (u64, u64) = (1 << 10, 1 << 20);
/// Counts of streams or frames: at least one, and a typo guard above.
const COUNT: (u64, u64) = (1, 1 << 20);

/// Takes the limits' keys from a server's `fields`; absent keys keep their defaults.
pub(crate) fn protocol_limits(fields: &mut Fields<'_>, errs: &mut Errors) -> ProtocolLimits {
    let mut limits = ProtocolLimits::default();
    if let Some(d) = fields.take("handshake_timeout").and_then(|d| d.duration(errs)) {
        limits.handshake_timeout = d;
    }
    if let Some(d) = fields.take("read_timeout").and_then(|d| d.duration(errs)) {
        limits.read_timeout = d;
    }
    if let Some(h2) = fields.take("http2") {
        http2(&h2, errs, &mut limits);
    }
    limits
}

/// `http2:` `max_header_list_size`, `max_frame_size`, `max_pending_reset_streams`,
/// `max_local_reset_streams` and `max_control_frames`.
fn http2(field: &Field<'_>, errs: &mut Errors, limits: &mut ProtocolLimits) {
    let mut fields = field.fields(errs);
    let mut take = |key: &str, (min, max): (u64, u64)| fields.take(key).and_then(|v| v.uint(errs, min, max));
    let header_list = take("max_header_list_size", HEADER_LIST);
    let frame = take("max_frame_size", FRAME_SIZE);
    let pending = take("max_pending_reset_streams", COUNT);
    let local = take("max_local_reset_streams", COUNT);
    let control = take("max_control_frames", COUNT);
    fields.finish(errs);
    set_u32(&mut limits.max_header_list_size, header_list);
    set_u32(&mut limits.max_frame_size, frame);
    set_usize(&mut limits.max_pending_reset_streams, pending);
    set_usize(&mut limits.max_local_reset_streams, local);
    set_u32(&mut limits.max_control_frames, control);
}

/// Values were range-checked to fit; a value that somehow does not is left at its default.
fn set_u32(slot: &mut u32, value: Option<u64>) {
    if let Some(v) = value.and_then(|v| u32::try_from(v).ok()) {
        *slot = v;
    }
}

fn set_usize(slot: &mut usize, value: Option<u64>) {
    if let Some(v) = value.and_then(|v| usize::try_from(v).ok()) {
        *slot = v;
    }
}
