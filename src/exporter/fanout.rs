//! Fan-out: send a request's parts to their backends in parallel and fold the answers into
//! one answer for the client. The client hears OK only when every part was accepted by its
//! backend or, after a retryable failure, queued for retry on it (`deliver.rs`).

use std::rc::Rc;

use bytes::Bytes;

use super::backend::Backend;
use super::deliver::deliver;
use super::error::worst;
use super::retry::NewPart;
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
    if let Some(status) = backed_up(backends, &parts) {
        return Err(status);
    }
    let tasks: Vec<_> = parts
        .into_iter()
        .map(|p| {
            let backend = backends[p.backend].clone();
            let part = NewPart { framed: p.framed, path, signal, items: p.items, exporter };
            glommio::spawn_local(async move { deliver(&backend, part).await })
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
    match worst(failures) {
        Some(status) => Err(status),
        None => Ok(merged.to_framed()),
    }
}

/// `RESOURCE_EXHAUSTED` (with a retry delay) when a part's backend is failing and its queue is
/// full: the whole request is refused before any part is sent.
fn backed_up(backends: &[Rc<Backend>], parts: &[Part]) -> Option<Status> {
    let p = parts.iter().find(|p| backends[p.backend].is_backed_up(p.framed.len()))?;
    let b = &backends[p.backend];
    let delay = b.settings().retry.as_ref().map_or(std::time::Duration::from_secs(1), |r| r.initial);
    let msg = format!("backend {} is failing and its retry queue is full; retry later", b.name);
    Some(Status::new(crate::grpc::Code::ResourceExhausted, msg).with_retry_delay(delay))
}
