//! Response bodies that are polled inside the request's scope.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use correlation_core::CorrelationContext;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use poem::Body;

/// Makes `body` produce its frames inside `context` (the request's ID, and its span and
/// Sentry hub with those features).
///
/// Every body with something left to read is wrapped. Bytes in memory would not need
/// the scope, but a poem body does not say whether it holds them: every body is the same
/// boxed type, and a middleware's wrapper that logs as it is read keeps the exact size
/// of what it wraps. Only a body already at its end, which the server never polls, is
/// returned as is.
pub(crate) fn scoped(body: Body, context: CorrelationContext) -> Body {
    let inner: BoxBody<Bytes, io::Error> = body.into();
    if inner.is_end_stream() {
        return inner.into();
    }
    BoxBody::new(ScopedBody { inner, context }).into()
}

/// A body polled inside its request's context.
struct ScopedBody {
    inner: BoxBody<Bytes, io::Error>,
    context: CorrelationContext,
}

impl HttpBody for ScopedBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        this.context
            .run(|| Pin::new(&mut this.inner).poll_frame(cx))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use correlation_core::{CorrelationId, current};
    use futures_util::StreamExt;

    /// A body of exact size that records the current ID when it is read, as a
    /// middleware's logging wrapper does.
    struct SizedProbe(Option<Bytes>);

    impl HttpBody for SizedProbe {
        type Data = Bytes;
        type Error = io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
            Poll::Ready(self.0.take().map(|data| {
                let seen = current().map(|id| id.to_string()).unwrap_or_default();
                Ok(Frame::data(Bytes::from(format!("{}:{seen}", data.len()))))
            }))
        }

        fn is_end_stream(&self) -> bool {
            self.0.is_none()
        }

        fn size_hint(&self) -> SizeHint {
            SizeHint::with_exact(self.0.as_ref().map_or(0, |data| data.len() as u64))
        }
    }

    #[tokio::test]
    async fn bodies_of_known_size_and_streams_are_read_in_scope() {
        let context = CorrelationContext::new(CorrelationId::from_static("body-test"));
        let sized = Body::from(BoxBody::new(SizedProbe(Some(Bytes::from_static(b"hi")))));
        let body = scoped(sized, context.clone());
        assert_eq!(current(), None);
        assert_eq!(body.into_string().await.unwrap(), "2:body-test");

        let body = scoped(Body::from("hello"), context.clone());
        let body = BoxBody::from(body);
        assert_eq!(body.size_hint().exact(), Some(5), "the size is kept");
        assert_eq!(Body::from(body).into_string().await.unwrap(), "hello");

        let stream = futures_util::stream::iter([1, 2]).map(|n| {
            let seen = current().map(|id| id.to_string()).unwrap_or_default();
            Ok::<_, io::Error>(format!("{n}:{seen};"))
        });
        let body = scoped(Body::from_bytes_stream(stream), context);
        assert_eq!(current(), None);
        assert_eq!(
            body.into_string().await.unwrap(),
            "1:body-test;2:body-test;"
        );
    }
}
