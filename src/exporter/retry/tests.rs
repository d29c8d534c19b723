use super::*;
use crate::grpc::{Code, Status};

const MS: Duration = Duration::from_millis(1);

fn policy() -> RetryPolicy {
    RetryPolicy {
        initial: 100 * MS,
        max_interval: 1000 * MS,
        max_elapsed: 5000 * MS,
        multiplier: 2.0,
        randomization: 0.5,
    }
}

fn limits(parts: usize, bytes: usize) -> QueueLimits {
    QueueLimits { parts, bytes, consumers: 3 }
}

fn part(len: usize) -> NewPart {
    NewPart { framed: Bytes::from(vec![0; len]), path: "/p", signal: Signal::Traces, items: 2, exporter: 0 }
}

#[test]
fn delays_grow_by_the_multiplier_up_to_the_cap() {
    let p = policy();
    let waits: Vec<u128> = (1..=6).map(|f| p.delay(f, 0.5).as_millis()).collect();
    assert_eq!(waits, vec![100, 200, 400, 800, 1000, 1000]);
}

#[test]
fn randomization_spreads_by_the_factor() {
    let p = policy();
    assert_eq!(p.delay(1, 0.0), 50 * MS);
    assert!(p.delay(1, 0.999) > 149 * MS && p.delay(1, 0.999) <= 150 * MS);
}

#[test]
fn collector_defaults_and_disabled() {
    let p = RetryPolicy::from_config(&RetryOnFailure::default()).unwrap();
    assert_eq!((p.delay(1, 0.5), p.delay(100, 0.5)), (Duration::from_secs(5), Duration::from_secs(30)));
    let off = RetryOnFailure { enabled: false, ..Default::default() };
    assert_eq!(RetryPolicy::from_config(&off), None);
}

#[test]
fn which_errors_are_retried() {
    let rejected = |c| ExportError::Rejected(Status::new(c, "x"));
    assert!(is_retryable(&ExportError::Unreachable { retry_in: MS }));
    assert!(is_retryable(&ExportError::Timeout(MS)));
    assert!(is_retryable(&ExportError::ConnectionLost("x".into())));
    assert!(is_retryable(&rejected(Code::Unavailable)));
    assert!(is_retryable(&rejected(Code::ResourceExhausted)));
    assert!(!is_retryable(&rejected(Code::InvalidArgument)));
    assert!(!is_retryable(&ExportError::BadResponse("x")));
}

#[test]
fn queue_is_bounded_by_parts_and_core_bytes_and_charges_return() {
    let t0 = Instant::now();
    let mut a = RetryQueue::new(limits(2, 250));
    let mut b = RetryQueue::new(limits(10, 250));
    assert_eq!(a.push(part(100), t0, MS, None), Ok(()));
    assert_eq!(a.push(part(100), t0, MS, None), Ok(()));
    assert_eq!(a.push(part(10), t0, MS, None), Err(QueueFull::Parts));
    assert_eq!(b.push(part(100), t0, MS, None), Err(QueueFull::Bytes), "bytes are per core, over queues");
    assert_eq!((queued_bytes(), queued_items()), (200, 4));
    drop(a.take_all());
    assert_eq!((queued_bytes(), queued_items()), (0, 0));
    assert_eq!(b.push(part(100), t0, MS, None), Ok(()));
}

#[test]
fn reservations_hold_room_and_are_used_or_released() {
    let t0 = Instant::now();
    let mut q = RetryQueue::new(limits(2, 1000));
    let r1 = q.reserve(100).unwrap();
    let r2 = q.reserve(100).unwrap();
    assert_eq!(q.reserve(1).unwrap_err(), QueueFull::Parts, "two slots held");
    assert_eq!(q.push(part(1), t0, MS, None), Err(QueueFull::Parts), "unreserved parts find no room");
    assert_eq!(q.push(part(100), t0, MS, Some(r1)), Ok(()), "a reserved part always fits");
    assert_eq!((queued_bytes(), queued_items(), q.len()), (200, 2, 1));
    drop(r2);
    assert_eq!(queued_bytes(), 100, "a released reservation returns its bytes");
    assert!(q.reserve(1).is_ok());
}

#[test]
fn one_probe_while_failing_then_consumers_at_once() {
    let (t0, p) = (Instant::now(), policy());
    let mut q = RetryQueue::new(limits(10, 1 << 20));
    for _ in 0..5 {
        q.push(part(1), t0, 100 * MS, None).unwrap();
    }
    let mut expired = Vec::new();
    assert!(q.take_due(t0, &p, &mut expired).is_empty(), "not before the first wait");
    assert_eq!(q.wait(t0), Some(100 * MS));
    let first = q.take_due(t0 + 100 * MS, &p, &mut expired);
    assert_eq!(first.len(), 3, "consumers at once on the first retry");
    let mut first = first.into_iter();
    q.on_failure(first.next().unwrap(), t0 + 100 * MS, &p, 0.5);
    assert_eq!(q.wait(t0 + 100 * MS), Some(200 * MS), "the second retry waits one more step");
    let probe = q.take_due(t0 + 300 * MS, &p, &mut expired);
    assert_eq!(probe.len(), 1, "one probe while failing");
    q.on_success(t0 + 310 * MS);
    assert_eq!(q.take_due(t0 + 310 * MS, &p, &mut expired).len(), 2, "the rest at once");
    assert!(expired.is_empty());
}

#[test]
fn hurry_caps_waits_for_shutdown() {
    let (t0, mut p) = (Instant::now(), policy());
    p.initial = Duration::from_secs(30);
    let mut q = RetryQueue::new(limits(10, 1 << 20));
    q.push(part(1), t0, Duration::from_secs(30), None).unwrap();
    q.hurry(t0);
    assert_eq!(q.wait(t0), Some(HURRIED_WAIT));
    set_hurry();
    let mut expired = Vec::new();
    let sent = q.take_due(t0 + HURRIED_WAIT, &p, &mut expired).pop().unwrap();
    q.on_failure(sent, t0 + HURRIED_WAIT, &p, 0.5);
    assert_eq!(q.wait(t0 + HURRIED_WAIT), Some(HURRIED_WAIT), "backoff capped while hurrying");
}

#[test]
fn parts_past_max_elapsed_are_expired_not_sent() {
    let (t0, p) = (Instant::now(), policy());
    let mut q = RetryQueue::new(limits(10, 1 << 20));
    q.push(part(1), t0, 100 * MS, None).unwrap();
    q.push(part(1), t0 + 3000 * MS, 100 * MS, None).unwrap();
    let mut expired = Vec::new();
    let sent = q.take_due(t0 + 5500 * MS, &p, &mut expired);
    assert_eq!((expired.len(), sent.len()), (1, 1));
}

#[test]
fn parts_being_resent_still_occupy_the_queue() {
    let (t0, p) = (Instant::now(), policy());
    let mut q = RetryQueue::new(limits(2, 1 << 20));
    q.push(part(1), t0, MS, None).unwrap();
    q.push(part(1), t0, MS, None).unwrap();
    let mut expired = Vec::new();
    let taken = q.take_due(t0 + MS, &p, &mut expired);
    assert_eq!((taken.len(), q.len()), (2, 0), "both out for a re-send");
    assert!(q.busy(), "a backend whose parts are out is still failing");
    assert_eq!(q.reserve(1).unwrap_err(), QueueFull::Parts, "no room while they are out");
    let mut taken = taken.into_iter();
    q.on_failure(taken.next().unwrap(), t0 + 2 * MS, &p, 0.5);
    q.on_dropped();
    drop(taken);
    assert!(q.reserve(1).is_ok(), "the dropped one's room is free again");
}
