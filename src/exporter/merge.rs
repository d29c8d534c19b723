//! The glommio edge of `coalesce.rs`: a part either takes a free call slot and goes at once,
//! or waits for the call that carries it with the other parts that waited, as one message.
//! Each waiting part gets that call's outcome; a failure reaches every part of the batch, and
//! each is then retried on its own by `deliver.rs`.

use std::cell::RefCell;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

use bytes::Bytes;

use super::backend::Backend;
use super::error::ExportError;
use crate::wire::GRPC_PREFIX;

/// A part waiting for a call, and where its outcome goes.
pub(super) type Waiter = (Bytes, Rc<Reply>);

/// A call's outcome, and whether this part stands for the call (one part per call does, for
/// per-call telemetry and health).
pub type Carried = (Result<Bytes, ExportError>, bool);

/// Where a waiting part's outcome lands (a one-shot cell on one core).
#[derive(Default)]
pub(super) struct Reply {
    result: RefCell<Option<Carried>>,
    waker: RefCell<Option<Waker>>,
}

impl Reply {
    fn set(&self, result: Carried) {
        *self.result.borrow_mut() = Some(result);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    async fn get(&self) -> Carried {
        poll_fn(|cx| match self.result.borrow_mut().take() {
            Some(r) => Poll::Ready(r),
            None => {
                *self.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

/// Holds a call slot; giving it back starts the next batch, even if the call was cancelled.
struct Slot<'a> {
    backend: &'a Rc<Backend>,
    path: &'static str,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let batch = self.backend.coalescer(self.path, |c| c.next_batch());
        if !batch.is_empty() {
            glommio::spawn_local(run(self.backend.clone(), self.path, batch)).detach();
        }
    }
}

impl Backend {
    /// Sends one part (framed, uncompressed) on `path`, coalesced with others when this
    /// backend's call slots are busy; returns the framed response of the call that carried it,
    /// and whether this part stands for that call.
    pub async fn send_part(self: &Rc<Self>, path: &'static str, framed: Bytes) -> Carried {
        if self.coalescer(path, |c| c.begin()) {
            let _slot = Slot { backend: self, path };
            return (self.export(path, framed).await, true);
        }
        let reply = Rc::new(Reply::default());
        self.coalescer(path, |c| c.wait(framed.len(), (framed, reply.clone())));
        reply.get().await
    }
}

/// Sends batches on `path` while parts keep waiting; the task holds one call slot.
async fn run(backend: Rc<Backend>, path: &'static str, mut batch: Vec<Waiter>) {
    loop {
        let result = send_batch(&backend, path, &batch).await;
        batch.drain(..).enumerate().for_each(|(i, (_, reply))| reply.set((result.clone(), i == 0)));
        batch = backend.coalescer(path, |c| c.next_batch());
        if batch.is_empty() {
            return;
        }
    }
}

async fn send_batch(backend: &Rc<Backend>, path: &'static str, batch: &[Waiter]) -> Result<Bytes, ExportError> {
    match batch {
        [(framed, _)] => backend.export(path, framed.clone()).await,
        _ => backend.export_chunks(path, merged(batch)).await,
    }
}

/// One gRPC message made of every part's message: a new prefix, then each part without its
/// own (slices, no copy).
fn merged(batch: &[Waiter]) -> Vec<Bytes> {
    let messages = batch.iter().map(|(framed, _)| framed.slice(GRPC_PREFIX.min(framed.len())..));
    let mut chunks = vec![Bytes::new()];
    chunks.extend(messages);
    let len: usize = chunks.iter().map(Bytes::len).sum();
    let mut prefix = [0u8; GRPC_PREFIX];
    prefix[1..].copy_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    chunks[0] = Bytes::copy_from_slice(&prefix);
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::spangen;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;

    #[test]
    fn a_merged_message_is_the_union_of_its_parts() {
        let parts: Vec<_> = (0..3).map(|seed| spangen::request("svc", 4, 2, seed)).collect();
        let batch: Vec<Waiter> =
            parts.iter().map(|p| (spangen::grpc_frame(&p.encode_to_vec()), Rc::new(Reply::default()))).collect();
        let framed: Vec<u8> = merged(&batch).concat();
        assert_eq!(framed[0], 0, "uncompressed");
        let len = u32::from_be_bytes([framed[1], framed[2], framed[3], framed[4]]) as usize;
        assert_eq!(len, framed.len() - GRPC_PREFIX);
        let decoded = ExportTraceServiceRequest::decode(&framed[GRPC_PREFIX..]).unwrap();
        let expected: Vec<_> = parts.into_iter().flat_map(|p| p.resource_spans).collect();
        assert_eq!(decoded.resource_spans, expected);
    }
}
