//! A response body whose external call ends with it, shared by the `tower`
//! client layer and the `reqwest` middleware: the call's interval runs to
//! the body's last frame, an error, or the drop of a body left unread. The
//! call is in wake mode ([`crate::wake`]): each frame's wait from its
//! arrival to the handler's poll is the handler's backlog.

use crate::external::Call;
use crate::wake::Waking;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

/// The call a body carries: in wake mode, or measured where it is polled
/// (the `reqwest` middleware's `in_place`).
#[derive(Debug)]
pub(crate) enum BodyCall {
    Waking(Waking),
    // Held for its `Drop`, which ends the call.
    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))]
    Plain(#[allow(dead_code)] Call),
}

pin_project! {
    /// A response body whose external call ends with it: at its last frame,
    /// at an error, or when it is dropped unread.
    #[derive(Debug)]
    pub struct ExternalBody<B> {
        #[pin]
        inner: B,
        call: Option<BodyCall>,
    }
}

impl<B: Body> ExternalBody<B> {
    /// Wraps `inner`; a body already at its end ends `call` at once.
    pub(crate) fn new(inner: B, call: Option<BodyCall>) -> Self {
        let call = call.filter(|_| !inner.is_end_stream());
        Self { inner, call }
    }
}

impl<B: Body> Body for ExternalBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let polled = ready!(match &this.call {
            Some(BodyCall::Waking(call)) => call.poll(cx, |cx| this.inner.as_mut().poll_frame(cx)),
            Some(BodyCall::Plain(_)) | None => this.inner.as_mut().poll_frame(cx),
        });
        let ended = match &polled {
            None | Some(Err(_)) => true,
            Some(Ok(_)) => this.inner.is_end_stream(),
        };
        if ended {
            // Dropping the call ends it now.
            *this.call = None;
        }
        Poll::Ready(polled)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
