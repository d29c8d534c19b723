//! `retry_on_failure` and `sending_queue` of the load balancer (the collector's exporterhelper
//! keys, at the exporter's top level where the collector's `loadbalancing` exporter takes them).

use std::time::Duration;

use super::errors::Errors;
use super::parse::Field;

/// `retry_on_failure`: how a part that failed with a retryable error is re-sent to its backend.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryOnFailure {
    /// Default true. When false a failed part fails its request at once.
    pub enabled: bool,
    /// Default 5s: the wait after the first failure.
    pub initial_interval: Duration,
    /// Default 30s: the longest wait between two attempts.
    pub max_interval: Duration,
    /// Default 300s: how long a part is retried before it is dropped (and counted and logged).
    /// Size it to the longest backend outage you want to ride out without the client's help;
    /// with `sending_queue` enabled, the queue must hold that long's worth of parts.
    pub max_elapsed_time: Duration,
    /// Default 1.5: each wait is this many times the previous one.
    pub multiplier: f64,
    /// Default 0.5: each wait is randomized by ± this fraction, so cores and gateways spread out.
    pub randomization_factor: f64,
}

impl Default for RetryOnFailure {
    fn default() -> Self {
        RetryOnFailure {
            enabled: true,
            initial_interval: Duration::from_secs(5),
            max_interval: Duration::from_secs(30),
            max_elapsed_time: Duration::from_secs(300),
            multiplier: 1.5,
            randomization_factor: 0.5,
        }
    }
}

/// `sending_queue`: where parts wait for their retries, per backend on every core.
#[derive(Debug, Clone, PartialEq)]
pub struct SendingQueue {
    /// Default true. When true a request whose failed parts were all queued is answered OK
    /// (the data is in the gateway's memory, as with the collector's default queue); when false
    /// the request waits while its failed parts are retried, up to `max_elapsed_time`.
    pub enabled: bool,
    /// Default 1000: parts queued per backend per core. Size it to
    /// `outage seconds × requests per second per core` (each request puts at most one part in a
    /// backend's queue); past it, requests get `RESOURCE_EXHAUSTED` with a retry delay.
    pub queue_size: usize,
    /// Default 10: parts of one backend's queue re-sent at once per core.
    pub num_consumers: usize,
    /// Extension (default 64 MiB): bytes queued per core over all backends. Memory per core is
    /// bounded by this plus the receivers' request budget.
    pub max_bytes: usize,
}

impl Default for SendingQueue {
    fn default() -> Self {
        SendingQueue { enabled: true, queue_size: 1000, num_consumers: 10, max_bytes: 64 << 20 }
    }
}

/// `resilience` (our extension): what happens to a backend's keys while it is ejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResilienceMode {
    /// Its keys go to the next owner on the ring (the same one on every core and gateway), and
    /// its queued parts are routed again: data keeps flowing, affinity holds among survivors.
    #[default]
    Failover,
    /// Its keys stay with it; their parts queue (`sending_queue`) until it is back or
    /// `max_elapsed_time` runs out: affinity never breaks, but an outage longer than the queue
    /// turns into backpressure.
    Hold,
}

/// `resilience` (our extension): passive ejection, active probes, failover or hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Resilience {
    pub mode: ResilienceMode,
    /// Default 5: consecutive "down" failures (cannot connect, connection lost, timeout,
    /// `UNAVAILABLE`) on one core that eject a backend on that core; 0 never ejects. Lower
    /// fails over sooner, higher rides out blips.
    pub eject_after: u32,
    /// Default 1s: how often an ejected backend is probed (an empty export); the first success
    /// brings it back.
    pub probe_interval: Duration,
}

impl Default for Resilience {
    fn default() -> Self {
        Resilience { mode: ResilienceMode::Failover, eject_after: 5, probe_interval: Duration::from_secs(1) }
    }
}

/// `resilience` (absent: defaults).
pub(crate) fn resilience(field: &Field<'_>, errs: &mut Errors) -> Resilience {
    let d = Resilience::default();
    let mut fields = field.fields(errs);
    let mode = fields.take("mode").and_then(|f| f.parsed(errs, mode));
    let eject = fields.take("eject_after").and_then(|f| f.uint(errs, 0, 1000));
    let probe = fields.take("probe_interval").and_then(|f| f.duration(errs));
    fields.finish(errs);
    Resilience {
        mode: mode.unwrap_or(d.mode),
        eject_after: eject.and_then(|e| u32::try_from(e).ok()).unwrap_or(d.eject_after),
        probe_interval: probe.unwrap_or(d.probe_interval),
    }
}

fn mode(text: &str) -> Result<ResilienceMode, String> {
    match text {
        "failover" => Ok(ResilienceMode::Failover),
        "hold" => Ok(ResilienceMode::Hold),
        _ => Err(format!("unknown mode `{text}`; use `failover` or `hold`")),
    }
}

/// Collector queue keys we do not implement (a persistent queue, batching, blocking).
const QUEUE_UNSUPPORTED: &[&str] = &["storage", "blocking", "block_on_overflow", "sizer", "wait_for_result", "batch"];

/// `retry_on_failure` (absent: defaults).
pub(crate) fn retry_on_failure(field: &Field<'_>, errs: &mut Errors) -> RetryOnFailure {
    let d = RetryOnFailure::default();
    let mut fields = field.fields(errs);
    let enabled = fields.take("enabled").and_then(|f| f.boolean(errs));
    let initial = fields.take("initial_interval").and_then(|f| f.duration(errs));
    let max = fields.take("max_interval").and_then(|f| f.duration(errs));
    let elapsed = fields.take("max_elapsed_time").and_then(|f| f.duration(errs));
    let multiplier = fields.take("multiplier").and_then(|f| number(&f, errs, 1.0, 100.0));
    let random = fields.take("randomization_factor").and_then(|f| number(&f, errs, 0.0, 1.0));
    fields.finish(errs);
    RetryOnFailure {
        enabled: enabled.unwrap_or(d.enabled),
        initial_interval: initial.unwrap_or(d.initial_interval),
        max_interval: max.unwrap_or(d.max_interval),
        max_elapsed_time: elapsed.unwrap_or(d.max_elapsed_time),
        multiplier: multiplier.unwrap_or(d.multiplier),
        randomization_factor: random.unwrap_or(d.randomization_factor),
    }
}

/// `sending_queue` (absent: defaults).
pub(crate) fn sending_queue(field: &Field<'_>, errs: &mut Errors) -> SendingQueue {
    let d = SendingQueue::default();
    let mut fields = field.fields(errs);
    let enabled = fields.take("enabled").and_then(|f| f.boolean(errs));
    let queue_size = fields.take("queue_size").and_then(|f| f.uint(errs, 1, 1_000_000));
    let consumers = fields.take("num_consumers").and_then(|f| f.uint(errs, 1, 1000));
    let mib = fields.take("max_size_mib").and_then(|f| f.uint(errs, 1, 64 * 1024));
    fields.unsupported(QUEUE_UNSUPPORTED, errs);
    fields.finish(errs);
    let size = |v: Option<u64>, d: usize| v.and_then(|v| usize::try_from(v).ok()).unwrap_or(d);
    SendingQueue {
        enabled: enabled.unwrap_or(d.enabled),
        queue_size: size(queue_size, d.queue_size),
        num_consumers: size(consumers, d.num_consumers),
        max_bytes: size(mib.map(|m| m << 20), d.max_bytes),
    }
}

/// A number (integer or float) in `min..=max`.
fn number(field: &Field<'_>, errs: &mut Errors, min: f64, max: f64) -> Option<f64> {
    let value = match field.value {
        serde_yaml::Value::Number(n) => n.as_f64(),
        _ => None,
    };
    match value {
        Some(v) if (min..=max).contains(&v) => Some(v),
        _ => field.fail(errs, format!("expected a number from {min} to {max}")),
    }
}
