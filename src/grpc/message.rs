//! Reads exactly one gRPC message (a unary request or response) from DATA chunks.
//!
//! Sans-IO: feed chunks, then `finish`. The declared length is checked against the limit as
//! soon as the 5-byte prefix is in, so an oversize message is refused before it is buffered.

use bytes::{Bytes, BytesMut};

use super::{Code, Status};
use crate::wire::GRPC_PREFIX;

/// Accumulates one framed message, keeping the prefix so the message can be forwarded as is.
#[derive(Debug)]
pub struct UnaryReader {
    limit: usize,
    /// A message that arrived in one chunk is kept without copying.
    single: Option<Bytes>,
    buf: BytesMut,
}

impl UnaryReader {
    /// `limit` bounds the message (without its prefix), like `max_recv_msg_size_mib`.
    pub fn new(limit: usize) -> Self {
        UnaryReader { limit, single: None, buf: BytesMut::new() }
    }

    /// Takes the next DATA chunk.
    pub fn push(&mut self, chunk: Bytes) -> Result<(), Status> {
        if self.single.is_none() && self.buf.is_empty() {
            self.check_prefix(&chunk)?;
            self.single = Some(chunk);
            return Ok(());
        }
        if let Some(first) = self.single.take() {
            self.buf.extend_from_slice(&first);
        }
        let was = self.buf.len();
        self.buf.extend_from_slice(&chunk);
        if was < GRPC_PREFIX {
            self.check_prefix(&self.buf)?;
        }
        self.check_not_over()
    }

    /// The whole framed message, once the stream has ended.
    pub fn finish(self) -> Result<Bytes, Status> {
        let framed = match self.single {
            Some(b) => b,
            None => self.buf.freeze(),
        };
        let Some(len) = declared_len(&framed) else {
            return Err(Status::new(Code::Internal, "request ended before a complete gRPC message"));
        };
        if framed.len() != GRPC_PREFIX + len {
            return Err(Status::new(Code::Internal, frame_mismatch(framed.len() - GRPC_PREFIX, len)));
        }
        Ok(framed)
    }

    /// Whether the compressed flag of the message is set (valid once 5 bytes are in).
    pub fn compressed(&self) -> bool {
        let first = self.single.as_deref().unwrap_or(&self.buf);
        first.first().is_some_and(|&f| f != 0)
    }

    fn check_prefix(&self, head: &[u8]) -> Result<(), Status> {
        match (head.first(), declared_len(head)) {
            (Some(f), _) if *f > 1 => Err(Status::new(Code::Internal, format!("invalid gRPC compressed flag {f}"))),
            (_, Some(len)) if len > self.limit => Err(too_large(len, self.limit)),
            _ => Ok(()),
        }
    }

    fn check_not_over(&self) -> Result<(), Status> {
        let over = declared_len(&self.buf).is_some_and(|len| self.buf.len() > GRPC_PREFIX + len);
        if over {
            return Err(Status::new(Code::Unimplemented, "more than one message in a unary call"));
        }
        if self.buf.len() > GRPC_PREFIX + self.limit {
            return Err(too_large(self.buf.len() - GRPC_PREFIX, self.limit));
        }
        Ok(())
    }
}

fn declared_len(head: &[u8]) -> Option<usize> {
    let b = head.get(1..GRPC_PREFIX)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

fn too_large(len: usize, limit: usize) -> Status {
    Status::new(Code::ResourceExhausted, format!("grpc: received message larger than max ({len} vs. {limit})"))
}

fn frame_mismatch(got: usize, declared: usize) -> String {
    if got < declared {
        format!("gRPC message truncated: {got} of {declared} bytes")
    } else {
        format!("gRPC message has {} bytes after its end", got - declared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::spangen::grpc_frame;

    fn read(chunks: &[&[u8]], limit: usize) -> Result<Bytes, Status> {
        let mut r = UnaryReader::new(limit);
        for c in chunks {
            r.push(Bytes::copy_from_slice(c))?;
        }
        r.finish()
    }

    #[test]
    fn one_chunk_is_kept_without_copy() {
        let f = grpc_frame(b"hello");
        let mut r = UnaryReader::new(10);
        r.push(f.clone()).unwrap();
        assert_eq!(r.finish().unwrap().as_ptr(), f.as_ptr());
    }

    #[test]
    fn chunks_are_joined_even_inside_the_prefix() {
        let f = grpc_frame(b"hello world");
        assert_eq!(read(&[&f[..2], &f[2..7], &f[7..]], 100).unwrap(), f);
    }

    #[test]
    fn oversize_is_refused_from_the_prefix_alone() {
        let err = read(&[&[0, 0, 0x10, 0, 0]], 1024).unwrap_err();
        assert_eq!(err.code, Code::ResourceExhausted);
        let err = read(&[&[0, 0], &[0x10, 0, 0]], 1024).unwrap_err();
        assert_eq!(err.code, Code::ResourceExhausted);
    }

    #[test]
    fn truncated_and_extra_bytes_are_errors() {
        let f = grpc_frame(b"hello");
        assert_eq!(read(&[&f[..7]], 100).unwrap_err().code, Code::Internal);
        assert_eq!(read(&[&f, b"x"], 100).unwrap_err().code, Code::Unimplemented);
        assert_eq!(read(&[&f[..3]], 100).unwrap_err().code, Code::Internal);
        assert_eq!(read(&[], 100).unwrap_err().code, Code::Internal);
    }

    #[test]
    fn compressed_flag_is_seen() {
        let mut r = UnaryReader::new(100);
        r.push(Bytes::from_static(&[1, 0, 0, 0, 1, 9])).unwrap();
        assert!(r.compressed());
        assert_eq!(read(&[&[2, 0, 0, 0, 0]], 10).unwrap_err().code, Code::Internal);
    }
}
