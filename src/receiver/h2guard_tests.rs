use super::*;

fn frame(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u32).to_be_bytes();
    let mut out = vec![len[1], len[2], len[3], kind, flags, 0, 0, 0, 1];
    out.extend_from_slice(payload);
    out
}

fn ping() -> Vec<u8> {
    frame(6, 0, &[0; 8])
}

/// The preface, then `frames`, as one byte stream.
fn stream(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = PREFACE.to_vec();
    frames.iter().for_each(|f| out.extend_from_slice(f));
    out
}

/// Feeds `bytes` in chunks of `step`; the first error, if any.
fn feed_in(guard: &mut FrameGuard, bytes: &[u8], step: usize) -> Result<(), Flood> {
    bytes.chunks(step).try_for_each(|c| guard.feed(c))
}

#[test]
fn frames_are_counted_across_reads_cut_anywhere() {
    let frames = vec![frame(4, 0, &[0; 6]), frame(1, 4, b"abc"), frame(0, 1, &[7; 100]), ping()];
    let bytes = stream(&frames);
    for step in 1..=bytes.len() {
        let mut guard = FrameGuard::new(10);
        feed_in(&mut guard, &bytes, step).unwrap();
        assert_eq!(guard.frames, 4, "step {step}");
    }
}

#[test]
fn a_ping_flood_trips_the_guard_whatever_the_read_sizes() {
    let pings: Vec<_> = (0..11).map(|_| ping()).collect();
    let bytes = stream(&pings);
    for step in [1, 5, 9, 17, 64, bytes.len()] {
        let mut guard = FrameGuard::new(10);
        assert_eq!(feed_in(&mut guard, &bytes, step), Err(Flood), "step {step}");
        assert_eq!(guard.feed(&ping()), Err(Flood), "stays tripped");
    }
}

#[test]
fn empty_data_headers_and_continuation_frames_are_cheap() {
    for kind in [0u8, 1, 9] {
        let empties: Vec<_> = (0..3).map(|_| frame(kind, 0, &[])).collect();
        let mut guard = FrameGuard::new(2);
        assert_eq!(guard.feed(&stream(&empties)), Err(Flood), "type {kind}");
    }
    let mut guard = FrameGuard::new(2);
    let ends: Vec<_> = (0..5).map(|_| frame(0, 1, &[])).collect();
    guard.feed(&stream(&ends)).unwrap();
}

#[test]
fn requests_and_data_earn_credit_back() {
    let mut guard = FrameGuard::new(4);
    let mut frames = Vec::new();
    for _ in 0..100 {
        frames.extend([frame(1, 4, b"h"), ping(), frame(8, 0, &[0, 0, 0, 1]), ping(), ping()]);
    }
    guard.feed(&stream(&frames)).unwrap();
    let mut guard = FrameGuard::new(1);
    let mut frames = Vec::new();
    for _ in 0..50 {
        frames.extend([frame(0, 0, &[1; 1024]), ping()]);
    }
    guard.feed(&stream(&frames)).unwrap();
}

#[test]
fn http1_is_not_inspected() {
    let mut guard = FrameGuard::new(0);
    let request = b"POST /v1/traces HTTP/1.1\r\nhost: x\r\n\r\n";
    for _ in 0..100 {
        guard.feed(request).unwrap();
        guard.feed(&ping()).unwrap();
    }
}

#[test]
fn a_large_frame_length_is_skipped_not_held() {
    let mut guard = FrameGuard::new(1);
    let mut bytes = PREFACE.to_vec();
    bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 1]);
    guard.feed(&bytes).unwrap();
    for _ in 0..(0xff_ffff / 4096) {
        guard.feed(&[0; 4096]).unwrap();
    }
    guard.feed(&[0; 4095]).unwrap();
    guard.feed(&ping()).unwrap();
    assert_eq!(guard.feed(&ping()), Err(Flood));
}
