//! The floor middleware for poem: the least work that does what our defaults promise
//! (see `correlation_bench_support::floor`), written by hand with tokio's task-local.
//! Shared by the bench and the allocation test.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use correlation_bench_support::floor::{self, CURRENT_ID, HEADER_NAME};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use pin_project_lite::pin_project;
use poem::http::HeaderValue;
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};
use tokio::task::futures::TaskLocalFuture;

/// The floor, added with `.with(Floor)`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Floor;

impl<E: Endpoint> Middleware<E> for Floor {
    type Output = FloorEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        FloorEndpoint { inner }
    }
}

/// The floor's endpoint.
#[derive(Debug)]
pub(crate) struct FloorEndpoint<E> {
    inner: E,
}

impl<E: Endpoint> Endpoint for FloorEndpoint<E> {
    type Output = Response;

    fn call(&self, mut request: Request) -> impl Future<Output = Result<Response>> + Send {
        let id = floor::request_id(request.headers_mut());
        let future = CURRENT_ID.sync_scope(id.clone(), || self.inner.call(request));
        FloorFuture {
            future: CURRENT_ID.scope(id, future),
        }
    }
}

pin_project! {
    /// The inner future in the scope; then the echo, and the body in the scope.
    struct FloorFuture<F> {
        #[pin]
        future: TaskLocalFuture<HeaderValue, F>,
    }
}

impl<F, T> Future for FloorFuture<F>
where
    F: Future<Output = Result<T>>,
    T: IntoResponse,
{
    type Output = Result<Response>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut future = self.project().future;
        let output = std::task::ready!(future.as_mut().poll(cx));
        let id = future.take_value().expect("the scope's value, once");
        let mut response = match output {
            Ok(output) => output.into_response(),
            Err(err) => err.into_response(),
        };
        response.headers_mut().insert(HEADER_NAME, id.clone());
        let body: BoxBody<Bytes, io::Error> = response.take_body().into();
        if body.is_end_stream() {
            response.set_body(body);
        } else {
            response.set_body(BoxBody::new(FloorBody { body, id }));
        }
        Poll::Ready(Ok(response))
    }
}

/// A response body polled inside the scope.
struct FloorBody {
    body: BoxBody<Bytes, io::Error>,
    id: HeaderValue,
}

impl HttpBody for FloorBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        CURRENT_ID.sync_scope(this.id.clone(), || Pin::new(&mut this.body).poll_frame(cx))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
