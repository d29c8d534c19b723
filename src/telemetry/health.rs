//! The health check's answer, in the collector's `health_check` extension shape: 200 with
//! `{"status":"Server available",...}` when ready, 503 with `Server not available` otherwise.
//!
//! Ready means: started, not draining, and at least one backend reachable. A backend is
//! reachable when it is on some exporter's ring and no core's last attempt to reach it failed
//! to connect, lost its connection or timed out (a backend that answers with an error status
//! is reachable). A backend nobody has called yet counts as reachable, so an idle gateway is
//! ready; an empty ring (static list empty, DNS not answered yet) is not.

use std::time::{Duration, SystemTime};

use super::CoreSnapshot;

/// Where the gateway is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Starting,
    Ready,
    Draining,
}

/// Why the gateway is not ready, for the status page and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ready,
    Starting,
    Draining,
    NoBackends,
    NoneReachable,
}

impl Verdict {
    pub fn is_ready(self) -> bool {
        self == Verdict::Ready
    }

    pub fn describe(self) -> &'static str {
        match self {
            Verdict::Ready => "ready",
            Verdict::Starting => "starting",
            Verdict::Draining => "draining",
            Verdict::NoBackends => "no backends on any ring",
            Verdict::NoneReachable => "no backend reachable",
        }
    }
}

/// Decides readiness from the phase and the cores' snapshots.
pub fn verdict(phase: Phase, cores: &[CoreSnapshot]) -> Verdict {
    match phase {
        Phase::Starting => return Verdict::Starting,
        Phase::Draining => return Verdict::Draining,
        Phase::Ready => {}
    }
    let mut on_ring = cores.iter().flat_map(|c| c.rings.iter().flatten()).flat_map(|r| r.backends.iter());
    let Some(_) = on_ring.clone().next() else { return Verdict::NoBackends };
    if on_ring.any(|name| reachable(cores, name)) { Verdict::Ready } else { Verdict::NoneReachable }
}

/// Whether no core has called `name` yet, or some core's last attempt reached it.
fn reachable(cores: &[CoreSnapshot], name: &str) -> bool {
    let views = cores.iter().flat_map(|c| c.counters.backends.iter().flatten()).filter(|(n, _)| n == name);
    let mut views = views.peekable();
    views.peek().is_none() || views.any(|(_, b)| b.reachable())
}

/// The collector's body: `status`, `upSince` (RFC 3339), `uptime` (Go duration).
pub fn body(ready: bool, up_since: SystemTime) -> String {
    if !ready {
        return r#"{"status":"Server not available","upSince":"0001-01-01T00:00:00Z","uptime":""}"#.to_string();
    }
    let since = httpdate_rfc3339(up_since);
    let uptime = SystemTime::now().duration_since(up_since).unwrap_or_default();
    format!(r#"{{"status":"Server available","upSince":"{since}","uptime":"{}"}}"#, go_duration(uptime))
}

/// `1h2m3.5s` style, as Go prints durations.
fn go_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m) = (secs / 3600, secs / 60 % 60);
    let s = (secs % 60) as f64 + f64::from(d.subsec_millis()) / 1000.0;
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

/// `2026-12-02T01:31:29Z`.
pub fn httpdate_rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, mo, d) = civil_from_days(days as i64);
    format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem / 60 % 60, rem % 60)
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exporter::ExportError;
    use crate::telemetry::{PartMeter, RingView, counters};

    fn core_with_ring(backends: &[&str]) -> CoreSnapshot {
        let ring = RingView { backends: backends.iter().map(|s| s.to_string()).collect(), shares: vec![] };
        CoreSnapshot { rings: vec![Some(ring)], ..Default::default() }
    }

    #[test]
    fn phases_and_empty_rings_are_not_ready() {
        let cores = [core_with_ring(&["a:1"])];
        assert_eq!(verdict(Phase::Starting, &cores), Verdict::Starting);
        assert_eq!(verdict(Phase::Draining, &cores), Verdict::Draining);
        assert_eq!(verdict(Phase::Ready, &cores), Verdict::Ready, "uncalled backends count as reachable");
        assert_eq!(verdict(Phase::Ready, &[core_with_ring(&[])]), Verdict::NoBackends);
        assert_eq!(verdict(Phase::Ready, &[]), Verdict::NoBackends);
    }

    #[test]
    fn all_backends_unreachable_is_not_ready() {
        PartMeter::start(0, crate::config::Signal::Traces, 1).finish("a:1", &Err::<(), _>(ExportError::NoBackends));
        let mut core = core_with_ring(&["a:1"]);
        core.counters = counters::with(counters::CoreStats::snapshot);
        assert_eq!(verdict(Phase::Ready, std::slice::from_ref(&core)), Verdict::NoneReachable);
        PartMeter::start(0, crate::config::Signal::Traces, 1).finish("a:1", &Ok::<(), ExportError>(()));
        core.counters = counters::with(counters::CoreStats::snapshot);
        assert_eq!(verdict(Phase::Ready, &[core]), Verdict::Ready);
    }

    #[test]
    fn bodies_match_the_collector() {
        assert!(body(false, SystemTime::now()).contains(r#""status":"Server not available""#));
        let up = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_639_089);
        let ok = body(true, up);
        assert!(ok.starts_with(r#"{"status":"Server available","upSince":"2025-12-02T01:31:29Z","uptime":""#), "{ok}");
        assert_eq!(go_duration(Duration::from_millis(3_723_500)), "1h2m3.5s");
    }
}
