//! The floor middleware for tower and axum: the least work that does what our defaults
//! promise (see `correlation_bench_support::floor`), written by hand with tokio's
//! task-local. Shared by the bench and the allocation test.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use correlation_bench_support::floor::{self, CURRENT_ID, HEADER_NAME};
use http::{HeaderValue, Request, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::task::futures::TaskLocalFuture;
use tower::{Layer, Service};

/// Wraps a service in [`Floor`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FloorLayer;

impl<S> Layer<S> for FloorLayer {
    type Service = Floor<S>;

    fn layer(&self, inner: S) -> Floor<S> {
        Floor { inner }
    }
}

/// The floor service.
#[derive(Clone, Debug)]
pub(crate) struct Floor<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Floor<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body,
{
    type Response = Response<FloorBody<ResBody>>;
    type Error = S::Error;
    type Future = FloorFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let id = floor::request_id(request.headers_mut());
        let future = CURRENT_ID.sync_scope(id.clone(), || self.inner.call(request));
        FloorFuture {
            future: CURRENT_ID.scope(id, future),
        }
    }
}

pin_project! {
    /// The inner future in the scope; then the echo, and the body in the scope.
    pub(crate) struct FloorFuture<F> {
        #[pin]
        future: TaskLocalFuture<HeaderValue, F>,
    }
}

impl<F, B, E> Future for FloorFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
{
    type Output = Result<Response<FloorBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut future = self.project().future;
        let result = std::task::ready!(future.as_mut().poll(cx));
        let id = future.take_value().expect("the scope's value, once");
        Poll::Ready(result.map(|response| {
            let (mut parts, body) = response.into_parts();
            parts.headers.insert(HEADER_NAME, id.clone());
            Response::from_parts(parts, FloorBody::new(body, id))
        }))
    }
}

pin_project! {
    /// A response body polled inside the scope, unless it is already at its end.
    pub(crate) struct FloorBody<B> {
        #[pin]
        body: B,
        id: Option<HeaderValue>,
    }
}

impl<B: Body> FloorBody<B> {
    fn new(body: B, id: HeaderValue) -> Self {
        let id = (!body.is_end_stream()).then_some(id);
        Self { body, id }
    }
}

impl<B: Body> Body for FloorBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        match this.id {
            Some(id) => CURRENT_ID.sync_scope(id.clone(), || this.body.poll_frame(cx)),
            None => this.body.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
