//! Fan-out: send a request's parts to their backends in parallel and fold the answers into
//! one answer for the client. The client hears OK only when every part was accepted by its
//! backend or, after a retryable failure, queued for retry on it (`deliver.rs`).

use std::rc::Rc;

use bytes::Bytes;

use super::backend::Backend;
use super::deliver::deliver;
use super::error::worst;
use super::retry::{NewPart, QueueFull, Reservation};
use crate::grpc::Status;
use crate::wire::Part;
use crate::wire::partial::PartialSuccess;

/// Forwards every part; returns the framed response for the client, or the status of the
/// most important failure. `exporter` (an index) labels the parts in telemetry.
pub async fn forward(
    backends: &[Rc<Backend>],
    path: &'static str,
    parts: Vec<Part>,
    exporter: usize,
) -> Result<Bytes, Status> {
    let signal = crate::grpc::signal_of(path).unwrap_or(crate::config::Signal::Traces);
    let reservations = reserve(backends, &parts)?;
    let items: i64 = parts.iter().map(|p| i64::from(p.items)).sum();
    let tasks: Vec<_> = parts
        .into_iter()
        .zip(reservations)
        .map(|(p, reserved)| {
            let backend = backends[p.backend].clone();
            let part = NewPart { framed: p.framed, path, signal, items: p.items, exporter };
            glommio::spawn_local(async move { deliver(&backend, part, reserved).await })
        })
        .collect();
    let mut merged = PartialSuccess::default();
    let mut failures = Vec::new();
    for task in tasks {
        match task.await {
            Ok(response) => merged.add_framed(&response),
            Err(status) => failures.push(status),
        }
    }
    // A coalesced call's partial success covers its whole batch: it cannot be attributed,
    // so each request hears its message and at most its own item count.
    merged.rejected = merged.rejected.min(items);
    match worst(failures) {
        Some(status) => Err(status),
        None => Ok(merged.to_framed()),
    }
}

/// Room in the retry queue of every failing backend the request has a part for, or
/// `RESOURCE_EXHAUSTED` (with a retry delay) when one has none: the whole request is then
/// refused before any part is sent, and the reservations taken so far are released.
fn reserve(backends: &[Rc<Backend>], parts: &[Part]) -> Result<Vec<Option<Reservation>>, Status> {
    let reserve = |p: &Part| {
        let b = &backends[p.backend];
        b.reserve_if_failing(p.framed.len()).map_err(|full| backed_up(b, full))
    };
    parts.iter().map(reserve).collect()
}

fn backed_up(b: &Backend, full: QueueFull) -> Status {
    let delay = b.settings().retry.as_ref().map_or(std::time::Duration::from_secs(1), |r| r.initial);
    let msg = format!("backend {} is failing and {full}; retry later", b.name);
    Status::new(crate::grpc::Code::ResourceExhausted, msg).with_retry_delay(delay)
}
