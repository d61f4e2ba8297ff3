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
/// Only bodies that may run code while polled are wrapped: a body whose exact size is
/// known (strings, bytes, JSON, empty bodies, which poem keeps in memory) is returned
/// as is, without the one allocation the wrapper costs.
pub(crate) fn scoped(body: Body, context: CorrelationContext) -> Body {
    let inner: BoxBody<Bytes, io::Error> = body.into();
    if inner.size_hint().exact().is_some() {
        return inner.into();
    }
    BoxBody::new(ScopedBody { inner, context }).into()
}

/// A streaming body polled inside its request's context.
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

    #[tokio::test]
    async fn in_memory_bodies_are_not_wrapped_and_streams_are() {
        let context = CorrelationContext::new(CorrelationId::from_static("body-test"));
        // In-memory bodies keep their exact size: nothing to scope.
        let body = scoped(Body::from("hello"), context.clone());
        assert_eq!(BoxBody::from(body).size_hint().exact(), Some(5));

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
