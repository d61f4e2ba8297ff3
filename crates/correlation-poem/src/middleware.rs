//! The poem [`Middleware`] and the [`Endpoint`] it wraps around the application.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use correlation_core::{CorrelationConfig, CorrelationContext, CorrelationId, Decision, Outcome};
use pin_project_lite::pin_project;
use poem::http::StatusCode;
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};

use crate::body;

/// The body of a rejected request (`OnInvalid::Reject`).
const REJECTION_MESSAGE: &str = "invalid correlation id";

/// Gives every request a correlation ID and runs the inner endpoint with it as the
/// current one; see the [crate docs](crate).
///
/// Register it with `.with(Correlation::default())` as the **last** `.with` call, so
/// that it is the outermost middleware.
///
/// ```
/// use correlation_poem::{Correlation, CorrelationConfig};
/// use poem::{EndpointExt, Route, get, handler};
///
/// #[handler]
/// fn index() -> &'static str {
///     "hello"
/// }
///
/// let config = CorrelationConfig::builder().header_name("X-Correlation-ID").build()?;
/// let app = Route::new().at("/", get(index)).with(Correlation::with_config(config));
/// # let _ = app;
/// # Ok::<(), correlation_poem::core::ConfigError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Correlation {
    config: CorrelationConfig,
}

impl Correlation {
    /// The middleware with the default configuration: `X-Request-ID`, UUID v4, strict
    /// validation, request header updated, response header echoed.
    pub fn new() -> Self {
        Self::default()
    }

    /// The middleware with `config`, the configuration every adapter shares.
    pub fn with_config(config: CorrelationConfig) -> Self {
        Self { config }
    }

    /// The configuration in use.
    pub fn config(&self) -> &CorrelationConfig {
        &self.config
    }
}

impl From<CorrelationConfig> for Correlation {
    fn from(config: CorrelationConfig) -> Self {
        Self::with_config(config)
    }
}

impl<E: Endpoint> Middleware<E> for Correlation {
    type Output = CorrelationEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        CorrelationEndpoint::new(inner, self.config.clone())
    }
}

/// The endpoint made by [`Correlation`]: wraps the application's endpoint.
#[derive(Clone)]
pub struct CorrelationEndpoint<E> {
    inner: E,
    config: CorrelationConfig,
}

impl<E> CorrelationEndpoint<E> {
    /// Wraps `inner` with `config`; usually made by `.with(Correlation::...)`.
    pub fn new(inner: E, config: CorrelationConfig) -> Self {
        Self { inner, config }
    }

    /// The configuration in use.
    pub fn config(&self) -> &CorrelationConfig {
        &self.config
    }

    /// The inner endpoint.
    pub fn get_ref(&self) -> &E {
        &self.inner
    }

    /// The inner endpoint, mutably.
    pub fn get_mut(&mut self) -> &mut E {
        &mut self.inner
    }

    /// Unwraps the inner endpoint.
    pub fn into_inner(self) -> E {
        self.inner
    }
}

impl<E> fmt::Debug for CorrelationEndpoint<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CorrelationEndpoint")
            .field("inner", &std::any::type_name::<E>())
            .field("config", &self.config)
            .finish()
    }
}

impl<E: Endpoint> Endpoint for CorrelationEndpoint<E> {
    type Output = Response;

    fn call(&self, request: Request) -> impl Future<Output = Result<Response>> + Send {
        // Everything happens in the first poll: this future is then built in place by
        // whoever awaits it, and the inner endpoint's future (which holds the whole
        // `Request` until polled) is written once, into the space the pending request
        // leaves, instead of being moved through several frames.
        ResponseFuture {
            state: State::Start {
                make: Some(|request| self.inner.call(request)),
                request: Some(request),
            },
            context: None,
            config: &self.config,
        }
    }
}

pin_project! {
    /// The future of [`CorrelationEndpoint::call`]. `context` (the request's ID, and
    /// its span and Sentry hub with those features) is set in the first poll, unless
    /// the path is skipped.
    struct ResponseFuture<'a, C, F> {
        #[pin]
        state: State<C, F>,
        context: Option<CorrelationContext>,
        config: &'a CorrelationConfig,
    }

    impl<C, F> PinnedDrop for ResponseFuture<'_, C, F> {
        // A request dropped before completion (the client went away) drops the inner
        // future inside the scope, so what its destructors log carries the ID.
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            let mut state = this.state;
            if let (Some(context), StateProj::Running { .. }) =
                (this.context, state.as_mut().project())
            {
                context.run_mut(|| state.set(State::Done));
            }
        }
    }
}

pin_project! {
    #[project = StateProj]
    enum State<C, F> {
        // Not polled yet: `make` calls the inner endpoint. Both are taken in the first
        // poll, which leaves the variant's space to the inner future.
        Start { make: Option<C>, request: Option<Request> },
        Running { #[pin] future: F },
        Skipped { #[pin] future: F },
        Done,
    }
}

impl<C, F, T> Future for ResponseFuture<'_, C, F>
where
    C: FnOnce(Request) -> F,
    F: Future<Output = Result<T>>,
    T: IntoResponse,
{
    type Output = Result<Response>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut state = this.state;
        let config = *this.config;
        let mut start = None;
        if let StateProj::Start { make, request } = state.as_mut().project() {
            let (Some(make), Some(mut request)) = (make.take(), request.take()) else {
                panic!("`CorrelationEndpoint` future polled after completion");
            };
            if config.is_skipped(request.uri().path()) {
                state.set(State::Skipped {
                    future: make(request),
                });
            } else {
                let Decision { id, outcome } = config.decide_and_update(request.headers_mut());
                if outcome == Outcome::Rejected {
                    state.set(State::Done);
                    return Poll::Ready(Ok(rejection(config, &id)));
                }
                *this.context = Some(config.request_context(id));
                start = Some((make, request));
            }
        }
        let Some(context) = this.context.as_mut() else {
            let StateProj::Skipped { future } = state.as_mut().project() else {
                panic!("`CorrelationEndpoint` future polled after completion");
            };
            return future
                .poll(cx)
                .map(|result| result.map(IntoResponse::into_response));
        };
        // Calling the inner endpoint (work it does before returning its future sees the
        // ID), polling its future and turning its output or error into a response
        // (which may run user code): all with the ID, in one scope per poll.
        let response = context.run_mut(|| {
            if let Some((make, request)) = start {
                state.set(State::Running {
                    future: make(request),
                });
            }
            let StateProj::Running { future } = state.as_mut().project() else {
                panic!("`CorrelationEndpoint` future polled after completion");
            };
            future.poll(cx).map(|output| match output {
                Ok(output) => output.into_response(),
                Err(err) => err.into_response(),
            })
        });
        let Poll::Ready(mut response) = response else {
            return Poll::Pending;
        };
        // The inner future has finished (its locals were dropped inside the scope): the
        // context moves on to the body, and dropping this future needs no scope.
        if let Some(context) = this.context.take() {
            if let Some(id) = context.id() {
                config.echo_response_headers(response.headers_mut(), id);
            }
            let streamed = body::scoped(response.take_body(), context);
            response.set_body(streamed);
        }
        Poll::Ready(Ok(response))
    }
}

/// The `400 Bad Request` of a rejected ID, carrying the new one.
fn rejection(config: &CorrelationConfig, id: &CorrelationId) -> Response {
    let mut response = Response::builder()
        .status(StatusCode::BAD_REQUEST)
        .content_type("text/plain; charset=utf-8")
        .body(REJECTION_MESSAGE);
    config.echo_response_headers(response.headers_mut(), id);
    response
}
