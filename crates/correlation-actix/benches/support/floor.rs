//! The floor middleware for actix-web: the least work that does what our defaults
//! promise (see `correlation_bench_support::floor`), written by hand with tokio's
//! task-local over actix's own (`http` 0.2) header values. Shared by the bench and the
//! allocation test.

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::Error;
use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{HeaderName, HeaderValue};
use bytes::Bytes;
use correlation_bench_support::floor;
use pin_project_lite::pin_project;
use tokio::task::futures::TaskLocalFuture;

tokio::task_local! {
    /// The floor's current ID, kept as the value actix parsed.
    static CURRENT_ID: HeaderValue;
}

const HEADER_NAME: HeaderName = HeaderName::from_static(floor::HEADER);

/// The floor, registered with `.wrap(Floor)`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Floor;

impl<S, B> Transform<S, ServiceRequest> for Floor
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<FloorBody<B>>;
    type Error = Error;
    type Transform = FloorMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(FloorMiddleware { service }))
    }
}

/// The floor's service.
#[derive(Debug)]
pub(crate) struct FloorMiddleware<S> {
    service: S,
}

impl<S, B> Service<ServiceRequest> for FloorMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<FloorBody<B>>;
    type Error = Error;
    type Future = FloorFuture<S::Future>;

    forward_ready!(service);

    fn call(&self, mut request: ServiceRequest) -> Self::Future {
        // `floor::request_id`'s steps, over actix's own (`http` 0.2) header map.
        let mut values = request.headers().get_all(&HEADER_NAME);
        let kept = values
            .next()
            .filter(|first| floor::is_uuid_v4(first.as_bytes()))
            .map(|first| (first.clone(), values.next().is_none()));
        let id = match kept {
            Some((id, true)) => id,
            Some((id, false)) => {
                request.headers_mut().insert(HEADER_NAME, id.clone());
                id
            }
            None => {
                let id = HeaderValue::from_maybe_shared(floor::new_id_bytes())
                    .expect("hex digits are a valid header value");
                request.headers_mut().insert(HEADER_NAME, id.clone());
                id
            }
        };
        let future = CURRENT_ID.sync_scope(id.clone(), || self.service.call(request));
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

impl<F, B> Future for FloorFuture<F>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>>,
    B: MessageBody,
{
    type Output = Result<ServiceResponse<FloorBody<B>>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut future = self.project().future;
        let result = std::task::ready!(future.as_mut().poll(cx));
        let id = future.take_value().expect("the scope's value, once");
        Poll::Ready(result.map(|mut response| {
            response.headers_mut().insert(HEADER_NAME, id.clone());
            response.map_body(|_, body| FloorBody::new(body, id))
        }))
    }
}

pin_project! {
    /// A response body as ours handles it in actix: one already in memory is taken as
    /// bytes (nothing runs while they are sent); any other is polled and dropped inside
    /// the scope, since middleware inside (actix's `Logger`) logs when the body drops.
    pub(crate) struct FloorBody<B> {
        #[pin]
        body: BodyState<B>,
    }

    impl<B> PinnedDrop for FloorBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let mut body = this.project().body;
            if let BodyStateProj::InScope { id, .. } = body.as_mut().project() {
                let id = id.clone();
                CURRENT_ID.sync_scope(id, || body.set(BodyState::Dropped));
            }
        }
    }
}

pin_project! {
    #[project = BodyStateProj]
    enum BodyState<B> {
        InScope {
            #[pin]
            body: B,
            id: HeaderValue,
        },
        InMemory {
            bytes: Option<Bytes>,
            size: BodySize,
        },
        Dropped,
    }
}

impl<B: MessageBody> FloorBody<B> {
    fn new(body: B, id: HeaderValue) -> Self {
        let size = body.size();
        let in_memory = if size == BodySize::Stream {
            Err(body)
        } else {
            body.try_into_bytes()
        };
        match in_memory {
            Ok(bytes) => Self {
                body: BodyState::InMemory {
                    bytes: Some(bytes),
                    size,
                },
            },
            Err(body) => Self {
                body: BodyState::InScope { body, id },
            },
        }
    }
}

impl<B: MessageBody> MessageBody for FloorBody<B> {
    type Error = B::Error;

    #[inline]
    fn size(&self) -> BodySize {
        match &self.body {
            BodyState::InScope { body, .. } => body.size(),
            BodyState::InMemory { size, .. } => *size,
            BodyState::Dropped => BodySize::None,
        }
    }

    #[inline]
    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        match self.project().body.project() {
            BodyStateProj::InScope { body, id } => {
                CURRENT_ID.sync_scope(id.clone(), || body.poll_next(cx))
            }
            BodyStateProj::InMemory { bytes, .. } => Poll::Ready(bytes.take().map(Ok)),
            BodyStateProj::Dropped => Poll::Ready(None),
        }
    }
}
