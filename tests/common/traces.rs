//! What the sinks received of each trace, for the tests that count loss and duplicates.

use std::collections::HashMap;

use otlp_gateway::tools::sink::Sink;

/// Per trace id: its spans over every listener of the sinks given, and on how many listeners
/// it landed.
pub struct TraceTally(HashMap<Vec<u8>, (u64, u32)>);

impl TraceTally {
    pub fn of(sinks: &[&Sink]) -> TraceTally {
        let mut seen: HashMap<Vec<u8>, (u64, u32)> = HashMap::new();
        for (trace, n) in sinks.iter().flat_map(|s| s.stats.iter()).flat_map(|s| s.traces()) {
            let e = seen.entry(trace).or_default();
            *e = (e.0 + n, e.1 + 1);
        }
        TraceTally(seen)
    }

    /// Traces split over several listeners, or holding more than `per_trace` spans.
    pub fn split_or_repeated(&self, per_trace: u64) -> usize {
        self.0.values().filter(|(n, listeners)| *listeners > 1 || *n > per_trace).count()
    }

    /// Spans, counting at most `per_trace` of each trace (what arrived, duplicates aside).
    pub fn unique_spans(&self, per_trace: u64) -> u64 {
        self.0.values().map(|(n, _)| (*n).min(per_trace)).sum()
    }

    /// Traces holding more than `per_trace` spans, and their spans beyond it.
    pub fn repeated(&self, per_trace: u64) -> (usize, u64) {
        let over: Vec<u64> = self.0.values().map(|(n, _)| *n).filter(|&n| n > per_trace).collect();
        (over.len(), over.iter().map(|n| n - per_trace).sum())
    }
}
