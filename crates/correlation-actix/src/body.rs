//! The response body wrapper that produces and drops the inner body inside the request's scope.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, MessageBody};
use bytes::Bytes;
use correlation_core::CorrelationContext;
use correlation_core::adapter::Rejection;
use pin_project_lite::pin_project;

pin_project! {
    /// A response body whose chunks are produced with the request's correlation ID as the
    /// current one, so logs written while streaming (SSE, downloads) carry it.
    ///
    /// The inner body is also dropped inside the scope: actix-web's `Logger` writes its
    /// access-log line when the body is dropped, so a `Logger` placed inside
    /// [`Correlation`](crate::Correlation) logs under the request's ID.
    ///
    /// A body that is already complete in memory (one that hands its bytes over through
    /// [`MessageBody::try_into_bytes`], like a handler's `String`) is taken as bytes up
    /// front: producing it cannot log, so it costs no scope per chunk.
    pub struct CorrelationBody<B> {
        #[pin]
        kind: BodyKind<B>,
    }

    impl<B> PinnedDrop for CorrelationBody<B> {
        fn drop(this: Pin<&mut Self>) {
            // Bodies without drop glue log nothing when dropped.
            if std::mem::needs_drop::<B>() && matches!(this.kind, BodyKind::Scoped { .. }) {
                this.drop_in_scope();
            }
        }
    }
}

impl<B> CorrelationBody<B> {
    /// Drops the inner body inside the request's scope; during a panic, entering the
    /// scope is not worth the risk of a second panic.
    fn drop_in_scope(self: Pin<&mut Self>) {
        let mut kind = self.project().kind;
        if let BodyKindProj::Scoped { context, .. } = kind.as_mut().project() {
            if std::thread::panicking() {
                return;
            }
            let context = std::mem::take(context);
            context.run(|| kind.set(BodyKind::Done));
        }
    }
}

pin_project! {
    #[project = BodyKindProj]
    enum BodyKind<B> {
        // Produced and dropped inside the request's scope.
        Scoped {
            #[pin]
            body: B,
            context: CorrelationContext,
        },
        // A skipped request's body: no scope.
        Plain {
            #[pin]
            body: B,
        },
        // Bytes already in memory: nothing can log while they are sent.
        Message {
            message: Option<Bytes>,
        },
        // No body at all (`BodySize::None`).
        Empty,
        Done,
    }
}

impl<B: MessageBody> CorrelationBody<B> {
    /// Wraps `body` to be produced and dropped inside the context `take_context` gives;
    /// a body that is already complete in memory is taken as bytes instead, which costs
    /// no scope per chunk and leaves the context where it is.
    pub(crate) fn scoped(body: B, take_context: impl FnOnce() -> CorrelationContext) -> Self {
        let size = body.size();
        if size == BodySize::Stream {
            return Self::in_scope(body, take_context());
        }
        match body.try_into_bytes() {
            Ok(bytes) if size == BodySize::None && bytes.is_empty() => Self {
                kind: BodyKind::Empty,
            },
            Ok(bytes) => Self {
                kind: BodyKind::Message {
                    message: Some(bytes),
                },
            },
            Err(body) => Self::in_scope(body, take_context()),
        }
    }
}

impl<B> CorrelationBody<B> {
    fn in_scope(body: B, context: CorrelationContext) -> Self {
        Self {
            kind: BodyKind::Scoped { body, context },
        }
    }

    pub(crate) fn plain(body: B) -> Self {
        Self {
            kind: BodyKind::Plain { body },
        }
    }

    pub(crate) fn empty() -> Self {
        Self {
            kind: BodyKind::Message { message: None },
        }
    }

    pub(crate) fn rejection() -> Self {
        Self {
            kind: BodyKind::Message {
                message: Some(Bytes::from_static(Rejection::InvalidId.body().as_bytes())),
            },
        }
    }
}

impl<B> fmt::Debug for CorrelationBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CorrelationBody")
            .field("body", &std::any::type_name::<B>())
            .field(
                "context",
                &match &self.kind {
                    BodyKind::Scoped { context, .. } => Some(context),
                    _ => None,
                },
            )
            .finish()
    }
}

impl<B: MessageBody> MessageBody for CorrelationBody<B> {
    type Error = B::Error;

    #[inline]
    fn size(&self) -> BodySize {
        match &self.kind {
            BodyKind::Scoped { body, .. } | BodyKind::Plain { body } => body.size(),
            BodyKind::Message { message } => {
                BodySize::Sized(message.as_ref().map_or(0, |m| m.len() as u64))
            }
            BodyKind::Empty => BodySize::None,
            BodyKind::Done => BodySize::Sized(0),
        }
    }

    #[inline]
    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        match self.project().kind.project() {
            BodyKindProj::Scoped { body, context } => context.run(|| body.poll_next(cx)),
            BodyKindProj::Plain { body } => body.poll_next(cx),
            BodyKindProj::Message { message } => Poll::Ready(message.take().map(Ok)),
            BodyKindProj::Empty | BodyKindProj::Done => Poll::Ready(None),
        }
    }

    fn try_into_bytes(mut self) -> Result<Bytes, Self> {
        // A body that is already complete in memory is never polled: hand its bytes over.
        match std::mem::replace(&mut self.kind, BodyKind::Done) {
            BodyKind::Scoped { body, context } => body.try_into_bytes().map_err(|body| {
                self.kind = BodyKind::Scoped { body, context };
                self
            }),
            BodyKind::Plain { body } => body.try_into_bytes().map_err(|body| {
                self.kind = BodyKind::Plain { body };
                self
            }),
            BodyKind::Message { message } => Ok(message.unwrap_or_default()),
            BodyKind::Empty | BodyKind::Done => Ok(Bytes::new()),
        }
    }
}
