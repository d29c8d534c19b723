//! Passive health of one backend on one core, sans-IO: ejected after `eject_after`
//! consecutive failures that say "down" (cannot connect, connection lost, timeout,
//! `UNAVAILABLE`), probed every `probe_interval` while out, back on the first success.

use std::time::{Duration, Instant};

use super::error::ExportError;
use crate::grpc::Code;

/// Whether a failure counts towards ejection: the backend is down or overloaded, not merely
/// disagreeing with the data.
pub fn is_down(e: &ExportError) -> bool {
    match e {
        ExportError::Unreachable { .. }
        | ExportError::Connect { .. }
        | ExportError::ConnectionLost(_)
        | ExportError::Timeout(_)
        | ExportError::StreamReset(_) => true,
        ExportError::Rejected(status) => status.code == Code::Unavailable,
        ExportError::BadResponse(_) | ExportError::NoBackends => false,
    }
}

/// A probe succeeds when the backend answers at all, but `UNAVAILABLE`: a collector without a
/// traces pipeline answers the (traces) probe `UNIMPLEMENTED`, and is up.
pub fn probe_outcome(result: Result<(), &ExportError>) -> Result<(), &ExportError> {
    match result {
        Err(ExportError::Rejected(s)) if s.code != Code::Unavailable => Ok(()),
        other => other,
    }
}

/// What a result changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    None,
    Ejected,
    Restored,
}

/// One backend's health on one core.
#[derive(Debug, Clone)]
pub struct Health {
    eject_after: u32,
    probe_interval: Duration,
    failures: u32,
    next_probe: Option<Instant>,
}

impl Health {
    /// `eject_after` 0 never ejects.
    pub fn new(eject_after: u32, probe_interval: Duration) -> Self {
        Health { eject_after, probe_interval, failures: 0, next_probe: None }
    }

    pub fn is_ejected(&self) -> bool {
        self.next_probe.is_some()
    }

    /// Records the outcome of a call (or probe) at `now`.
    pub fn record(&mut self, result: Result<(), &ExportError>, now: Instant) -> Change {
        match result {
            Ok(()) => self.on_success(),
            Err(e) if is_down(e) => self.on_down(now),
            Err(_) => Change::None,
        }
    }

    fn on_success(&mut self) -> Change {
        self.failures = 0;
        match self.next_probe.take() {
            Some(_) => Change::Restored,
            None => Change::None,
        }
    }

    fn on_down(&mut self, now: Instant) -> Change {
        self.failures = self.failures.saturating_add(1);
        if self.is_ejected() {
            self.next_probe = Some(now + self.probe_interval);
            return Change::None;
        }
        if self.eject_after == 0 || self.failures < self.eject_after {
            return Change::None;
        }
        self.next_probe = Some(now + self.probe_interval);
        Change::Ejected
    }

    /// How long until the next probe is due (`None` unless ejected).
    pub fn probe_in(&self, now: Instant) -> Option<Duration> {
        self.next_probe.map(|t| t.saturating_duration_since(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc::Status;

    const DOWN: ExportError = ExportError::Timeout(Duration::from_secs(1));

    #[test]
    fn ejected_after_consecutive_down_failures_and_restored_by_a_success() {
        let (t0, mut h) = (Instant::now(), Health::new(3, Duration::from_millis(500)));
        assert_eq!(h.record(Err(&DOWN), t0), Change::None);
        assert_eq!(h.record(Ok(()), t0), Change::None, "a success resets the count");
        assert_eq!(h.record(Err(&DOWN), t0), Change::None);
        assert_eq!(h.record(Err(&DOWN), t0), Change::None);
        assert_eq!(h.record(Err(&DOWN), t0), Change::Ejected);
        assert_eq!(h.probe_in(t0), Some(Duration::from_millis(500)));
        assert_eq!(h.record(Err(&DOWN), t0 + Duration::from_millis(500)), Change::None, "a failed probe");
        assert_eq!(h.probe_in(t0 + Duration::from_millis(600)), Some(Duration::from_millis(400)));
        assert_eq!(h.record(Ok(()), t0), Change::Restored);
        assert!(!h.is_ejected());
    }

    #[test]
    fn a_probe_answered_with_any_status_but_unavailable_is_a_success() {
        let unimplemented = ExportError::Rejected(Status::new(Code::Unimplemented, "no traces pipeline"));
        let unavailable = ExportError::Rejected(Status::new(Code::Unavailable, "x"));
        assert_eq!(probe_outcome(Err(&unimplemented)), Ok(()));
        assert_eq!(probe_outcome(Err(&unavailable)), Err(&unavailable));
        assert_eq!(probe_outcome(Err(&DOWN)), Err(&DOWN));
    }

    #[test]
    fn data_errors_do_not_eject_and_zero_never_ejects() {
        let t0 = Instant::now();
        let mut h = Health::new(1, Duration::from_secs(1));
        let invalid = ExportError::Rejected(Status::new(Code::InvalidArgument, "x"));
        assert_eq!(h.record(Err(&invalid), t0), Change::None);
        let unavailable = ExportError::Rejected(Status::new(Code::Unavailable, "x"));
        assert_eq!(h.record(Err(&unavailable), t0), Change::Ejected);
        let mut never = Health::new(0, Duration::from_secs(1));
        for _ in 0..100 {
            assert_eq!(never.record(Err(&DOWN), t0), Change::None);
        }
    }
}
