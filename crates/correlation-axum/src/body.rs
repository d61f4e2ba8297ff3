//! The response body wrapper that polls the inner body inside the request's scope.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use correlation_core::CorrelationContext;
use correlation_core::adapter::Rejection;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

pin_project! {
    /// A response body whose frames are produced with the request's correlation ID as the
    /// current one, so logs written while streaming (SSE, downloads) carry it.
    pub struct CorrelationBody<B> {
        #[pin]
        kind: BodyKind<B>,
    }
}

pin_project! {
    #[project = BodyKindProj]
    enum BodyKind<B> {
        Scoped {
            #[pin]
            body: B,
            context: CorrelationContext,
        },
        Plain {
            #[pin]
            body: B,
        },
        Message {
            message: Option<Bytes>,
        },
    }
}

impl<B> CorrelationBody<B> {
    pub(crate) fn scoped(body: B, context: CorrelationContext) -> Self {
        Self {
            kind: BodyKind::Scoped { body, context },
        }
    }

    pub(crate) fn plain(body: B) -> Self {
        Self {
            kind: BodyKind::Plain { body },
        }
    }

    /// The body of `rejection`'s response.
    pub(crate) fn rejection(rejection: Rejection) -> Self {
        let body = rejection.body();
        Self {
            kind: BodyKind::Message {
                message: (!body.is_empty()).then(|| Bytes::from_static(body.as_bytes())),
            },
        }
    }
}

impl<B> fmt::Debug for CorrelationBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CorrelationBody")
            .field("body", &std::any::type_name::<B>())
            .finish_non_exhaustive()
    }
}

impl<B> Body for CorrelationBody<B>
where
    B: Body,
    B::Data: From<Bytes>,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.project().kind.project() {
            BodyKindProj::Scoped { body, context } => context.run(|| body.poll_frame(cx)),
            BodyKindProj::Plain { body } => body.poll_frame(cx),
            BodyKindProj::Message { message } => {
                Poll::Ready(message.take().map(|data| Ok(Frame::data(data.into()))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            BodyKind::Scoped { body, .. } | BodyKind::Plain { body } => body.is_end_stream(),
            BodyKind::Message { message } => message.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            BodyKind::Scoped { body, .. } | BodyKind::Plain { body } => body.size_hint(),
            BodyKind::Message { message } => {
                SizeHint::with_exact(message.as_ref().map_or(0, |m| m.len() as u64))
            }
        }
    }
}
