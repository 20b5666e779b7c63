//! Response bodies made of shared byte slices, so that a page of a large pre-serialised collection
//! is sent without copying it.

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

#[derive(Debug, Default)]
pub(crate) struct Chunks {
    chunks: VecDeque<Bytes>,
    remaining: u64,
    /// Stop with an error once this many more bytes have been sent (an answer cut off mid-body).
    cut_after: Option<u64>,
}

/// The error a cut-off body ends with; hyper then drops the connection.
#[derive(Debug)]
pub(crate) struct CutOff;

impl std::fmt::Display for CutOff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("body cut off by an injected fault")
    }
}

impl std::error::Error for CutOff {}

impl Chunks {
    pub(crate) fn push(&mut self, chunk: impl Into<Bytes>) {
        let chunk = chunk.into();
        if !chunk.is_empty() {
            self.remaining += chunk.len() as u64;
            self.chunks.push_back(chunk);
        }
    }

    /// Sends only the first `keep` bytes, then fails: the client sees the declared length (or the
    /// chunked encoding) unfinished.
    pub(crate) fn cut_after(&mut self, keep: u64) {
        self.cut_after = Some(keep);
    }
}

impl From<Bytes> for Chunks {
    fn from(bytes: Bytes) -> Chunks {
        let mut chunks = Chunks::default();
        chunks.push(bytes);
        chunks
    }
}

impl From<String> for Chunks {
    fn from(text: String) -> Chunks {
        Chunks::from(Bytes::from(text))
    }
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = CutOff;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, CutOff>>> {
        if self.cut_after == Some(0) {
            return Poll::Ready(Some(Err(CutOff)));
        }
        let Some(mut chunk) = self.chunks.pop_front() else { return Poll::Ready(None) };
        self.remaining -= chunk.len() as u64;
        if let Some(left) = self.cut_after {
            if (chunk.len() as u64) > left {
                chunk.truncate(left as usize);
            }
            self.cut_after = Some(left - chunk.len() as u64);
        }
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty() && self.cut_after != Some(0)
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}
