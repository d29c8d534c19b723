//! Delivering one part to its backend, retrying only that part: the glommio edge of
//! `retry.rs`. A part whose attempt fails with a retryable error is either queued on its
//! backend (`sending_queue` enabled: the request is answered OK) or retried while the request
//! waits (queue disabled). Other backends' parts are never sent again.

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::backend::Backend;
use super::error::ExportError;
use super::health::Change;
use super::retry::{NewPart, QueueFull, QueuedPart, Reservation, RetryPolicy, is_retryable};
use crate::grpc::{Code, Status};
use crate::telemetry::PartMeter;

/// Sends `part` to `backend`; `Ok` with the backend's framed response (empty when the part
/// was queued for retry), or the status the client should get.
pub async fn deliver(backend: &Rc<Backend>, part: NewPart, reserved: Option<Reservation>) -> Result<Bytes, Status> {
    let e = match skip_while_ejected(backend) {
        Some(e) => e,
        None => match attempt(backend, &part).await {
            Ok(response) => return Ok(response),
            Err(e) => e,
        },
    };
    match backend.settings().retry.clone() {
        Some(policy) if is_retryable(&e) => retry(backend, part, &policy, reserved).await,
        _ => Err(e.to_status(&backend.name)),
    }
}

/// Delivers a part that was already acknowledged (routed again after its backend was ejected
/// or removed): a failure that cannot be queued drops it, counted and logged.
pub async fn deliver_acked(backend: &Rc<Backend>, part: NewPart) {
    let items = part.items;
    if let Err(status) = deliver(backend, part, None).await {
        super::retry::count_dropped(u64::from(items));
        let msg = || format!("backend {}: dropped a rerouted part ({items} items): {status}", backend.name);
        crate::telemetry::logging::limited(log::Level::Error, &backend.name, msg);
    }
}

/// While this core has the backend ejected, no new attempt is made: the part goes straight
/// to the retry path (the probe and the queue's own attempts find out when it is back).
fn skip_while_ejected(backend: &Backend) -> Option<ExportError> {
    let retry_in = backend.health.borrow().probe_in(Instant::now())?;
    Some(ExportError::Unreachable { retry_in })
}

/// One attempt, counted in telemetry and in the backend's health.
async fn attempt(backend: &Rc<Backend>, part: &NewPart) -> Result<Bytes, ExportError> {
    let meter = PartMeter::start(part.exporter, part.signal, part.items);
    let (result, own_call) = backend.send_part(part.path, part.framed.clone()).await;
    meter.finish_part(&backend.name, &result, own_call);
    // Health counts calls: a failed batch is one failure, not one per part in it.
    if own_call {
        record(backend, result.as_ref().map(|_| ()));
    }
    result
}

/// Feeds a call's outcome to the backend's health; ejection starts the probe and, in failover
/// mode, routes its queued parts again.
fn record(backend: &Rc<Backend>, result: Result<(), &ExportError>) {
    let change = backend.health.borrow_mut().record(result, Instant::now());
    backend.ejected.set(backend.health.borrow().is_ejected());
    match change {
        Change::Ejected => on_ejected(backend),
        Change::Restored => log::info!("backend {}: back in routing on this core (probe succeeded)", backend.name),
        Change::None => {}
    }
}

fn on_ejected(backend: &Rc<Backend>) {
    let s = backend.settings();
    let then = if s.failover { "its keys go to the next owner" } else { "its parts wait in its queue" };
    let msg = || format!("backend {}: ejected after {} consecutive failures; {then}", backend.name, s.eject_after);
    crate::telemetry::logging::limited(log::Level::Warn, &backend.name, msg);
    start_probing(backend);
    if s.failover {
        backend.reroute_queue();
    }
}

fn start_probing(backend: &Rc<Backend>) {
    if !backend.probing.replace(true) {
        glommio::spawn_local(probe(backend.clone())).detach();
    }
}

/// Probes an ejected backend with an empty export every `probe_interval` until it answers.
async fn probe(backend: Rc<Backend>) {
    loop {
        let wait = backend.health.borrow().probe_in(Instant::now());
        let Some(wait) = wait else { break };
        glommio::timer::sleep(wait).await;
        let empty = Bytes::from_static(&[0, 0, 0, 0, 0]);
        backend.allow_connect_now();
        let result = backend.export(crate::grpc::TRACE_EXPORT, empty).await;
        record(&backend, super::health::probe_outcome(result.as_ref().map(|_| ())));
    }
    backend.probing.set(false);
}

/// A retryable failure: queue the part, or retry it while the request waits.
async fn retry(
    backend: &Rc<Backend>,
    part: NewPart,
    policy: &RetryPolicy,
    reserved: Option<Reservation>,
) -> Result<Bytes, Status> {
    if backend.settings().queue.is_none() {
        return retry_inline(backend, part, policy).await;
    }
    let now = Instant::now();
    let pushed = backend.queue.borrow_mut().push(part, now, policy.delay(1, fastrand::f64()), reserved);
    match pushed {
        Ok(()) => {
            start_draining(backend, policy);
            Ok(Bytes::new())
        }
        Err(full) => Err(full_status(&backend.name, full, policy)),
    }
}

/// `RESOURCE_EXHAUSTED`: the client should come back after about one retry interval.
fn full_status(backend: &str, full: QueueFull, policy: &RetryPolicy) -> Status {
    let msg = format!("backend {backend} is failing and {full}; retry later");
    Status::new(Code::ResourceExhausted, msg).with_retry_delay(policy.initial)
}

/// Retries `part` while the request waits, until accepted or `max_elapsed_time` runs out.
async fn retry_inline(backend: &Rc<Backend>, part: NewPart, policy: &RetryPolicy) -> Result<Bytes, Status> {
    let first = Instant::now();
    for failures in 1.. {
        let wait = policy.delay(failures, fastrand::f64());
        if !policy.alive(first, Instant::now() + wait) {
            break;
        }
        glommio::timer::sleep(wait).await;
        match attempt(backend, &part).await {
            Ok(response) => return Ok(response),
            Err(e) if is_retryable(&e) => continue,
            Err(e) => return Err(e.to_status(&backend.name)),
        }
    }
    let msg = format!("backend {}: no success within max_elapsed_time {:?}", backend.name, policy.max_elapsed);
    Err(Status::new(Code::Unavailable, msg))
}

/// Starts the backend's drain task unless one runs.
fn start_draining(backend: &Rc<Backend>, policy: &RetryPolicy) {
    if backend.draining.replace(true) {
        return;
    }
    glommio::spawn_local(drain(backend.clone(), policy.clone())).detach();
}

/// Sends the backend's queued parts as its queue allows, until the queue is empty.
async fn drain(backend: Rc<Backend>, policy: RetryPolicy) {
    loop {
        // A separate statement: a borrow in `while let` would live through the body.
        let wait = backend.queue.borrow().wait(Instant::now());
        let Some(wait) = wait else { break };
        if !wait.is_zero() {
            glommio::timer::sleep(wait.min(Duration::from_millis(100))).await;
            continue;
        }
        let mut expired = Vec::new();
        let batch = backend.queue.borrow_mut().take_due(Instant::now(), &policy, &mut expired);
        drop_parts(&backend, &expired, "retried for max_elapsed_time without success");
        resend_all(&backend, batch, &policy).await;
        if backend.settings().failover && backend.is_ejected() {
            backend.reroute_queue();
        }
    }
    backend.draining.set(false);
}

/// Sends a batch in parallel and puts each outcome back into the queue.
async fn resend_all(backend: &Rc<Backend>, batch: Vec<QueuedPart>, policy: &RetryPolicy) {
    let tasks: Vec<_> = batch.into_iter().map(|p| glommio::spawn_local(resend(backend.clone(), p))).collect();
    for task in tasks {
        let (part, result) = task.await;
        let now = Instant::now();
        match result {
            Ok(_) => backend.queue.borrow_mut().on_success(now),
            Err(e) if is_retryable(&e) => backend.queue.borrow_mut().on_failure(part, now, policy, fastrand::f64()),
            Err(e) => {
                backend.queue.borrow_mut().on_dropped();
                drop_parts(backend, &[part], &e.to_string());
            }
        }
    }
}

async fn resend(backend: Rc<Backend>, part: QueuedPart) -> (QueuedPart, Result<Bytes, ExportError>) {
    let meter = PartMeter::start(part.exporter, part.signal, part.items);
    let result = backend.export(part.path, part.framed.clone()).await;
    meter.finish(&backend.name, &result);
    record(&backend, result.as_ref().map(|_| ()));
    (part, result)
}

/// Acknowledged data that will not be delivered: counted and logged, never silent.
fn drop_parts(backend: &Backend, parts: &[QueuedPart], why: &str) {
    let items: u64 = parts.iter().map(|p| u64::from(p.items)).sum();
    if parts.is_empty() {
        return;
    }
    super::retry::count_dropped(items);
    let msg = || format!("backend {}: dropped {} queued parts ({items} items): {why}", backend.name, parts.len());
    crate::telemetry::logging::limited(log::Level::Error, &backend.name, msg);
}
