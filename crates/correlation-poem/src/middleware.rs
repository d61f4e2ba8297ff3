//! The poem [`Middleware`] and the [`Endpoint`] it wraps around the application.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use correlation_core::{CorrelationConfig, CorrelationContext, Decision, Outcome};
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

    fn call(&self, mut request: Request) -> impl Future<Output = Result<Response>> + Send {
        let config = &self.config;
        let make = |request| self.inner.call(request);
        if config.is_skipped(request.uri().path()) {
            return ResponseFuture {
                state: State::Skipped {
                    future: make(request),
                },
                context: None,
                config,
            };
        }
        let Decision { id, outcome } = config.decide(request.headers());
        if outcome == Outcome::Rejected {
            let mut response = Response::builder()
                .status(StatusCode::BAD_REQUEST)
                .content_type("text/plain; charset=utf-8")
                .body(REJECTION_MESSAGE);
            config.echo_response_headers(response.headers_mut(), &id);
            return ResponseFuture {
                state: State::Rejected { response },
                context: None,
                config,
            };
        }
        config.update_request_headers(request.headers_mut(), &id);
        let context = config.request_context(id);
        // The inner endpoint is called in the first poll, inside the scope: work it does
        // in `call`, before returning its future, sees the ID. Its future (which holds
        // the whole `Request` until polled) shares its space with the pending request.
        ResponseFuture {
            state: State::Start { make, request },
            context: Some(context),
            config,
        }
    }
}

pin_project! {
    /// The future of [`CorrelationEndpoint::call`]. `context` (the request's ID, and
    /// its span and Sentry hub with those features) is `None` for skipped and rejected
    /// requests.
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
                context.run(|| state.set(State::Done));
            }
        }
    }
}

pin_project! {
    #[project = StateProj]
    #[project_replace = StateReplace]
    enum State<C, F> {
        // Not called yet: `make` calls the inner endpoint.
        Start { make: C, request: Request },
        Running { #[pin] future: F },
        Skipped { #[pin] future: F },
        Rejected { response: Response },
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
        let Some(context) = this.context.as_ref() else {
            if let StateProj::Skipped { future } = state.as_mut().project() {
                return future
                    .poll(cx)
                    .map(|result| result.map(IntoResponse::into_response));
            }
            return match state.project_replace(State::Done) {
                StateReplace::Rejected { response } => Poll::Ready(Ok(response)),
                _ => panic!("`CorrelationEndpoint` future polled after completion"),
            };
        };
        // Calling the inner endpoint, polling its future, turning its output or error
        // into a response (which may run user code) and dropping it: all with the ID.
        let mut response = ready!(context.run(|| {
            if let StateProj::Start { .. } = state.as_mut().project() {
                if let StateReplace::Start { make, request } =
                    state.as_mut().project_replace(State::Done)
                {
                    state.set(State::Running {
                        future: make(request),
                    });
                }
            }
            let StateProj::Running { future } = state.as_mut().project() else {
                panic!("`CorrelationEndpoint` future polled after completion");
            };
            let output = ready!(future.poll(cx));
            state.set(State::Done);
            Poll::Ready(match output {
                Ok(output) => output.into_response(),
                Err(err) => err.into_response(),
            })
        }));
        if let Some(id) = context.id() {
            this.config
                .echo_response_headers(response.headers_mut(), id);
        }
        let streamed = body::scoped(response.take_body(), context);
        response.set_body(streamed);
        Poll::Ready(Ok(response))
    }
}
