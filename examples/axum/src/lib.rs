//! The axum demo app of the demo contract, shared by `cargo run --example axum` and the
//! conformance suite.
//!
//! Routes: `/`, `/id`, `/header`, `/spawn`, `/blocking`, `/error`, `/panic`, `/ws`,
//! `/stream`, `/download`, `/cookies`; CORS open to any origin with the correlation header allowed and exposed.
//! Every route logs at `DEBUG` before it answers: those lines are written when the
//! request fails (`/error`, `/panic`), or when a caller on 127.0.0.1 sends
//! `X-Debug-Log: debug`, and dropped otherwise.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use correlation_axum::correlation_core::request_log::LogBuffer;
use correlation_axum::correlation_core::{CorrelationFutureExt, Fields, current};
use correlation_axum::{CorrelationConfig, CorrelationId, CorrelationLayer, IdSource, TrustPolicy};
use futures_util::StreamExt;
use http::Method;
use http_body::{Frame, SizeHint};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::cors::{Any, CorsLayer};
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};

/// The demo's configuration: the ID from `X-Request-ID`, else from the caller's W3C
/// `traceparent` (so logs join the caller's trace), else generated. A caller on
/// 127.0.0.1 may raise one request's level with `X-Debug-Log: debug` (or `trace`) and
/// send W3C `baggage` whose `tenant` and `user` become fields on every line of the
/// request; each request keeps its `DEBUG` lines until it fails.
pub fn config() -> CorrelationConfig {
    let operators = TrustPolicy::from_peers(["127.0.0.1/32"]).expect("a valid network");
    CorrelationConfig::builder()
        .sources([IdSource::header("X-Request-ID"), IdSource::traceparent()])
        .log_level_header("X-Debug-Log", operators.clone())
        .baggage_keys(["tenant", "user"])
        .baggage_from(operators)
        .log_buffer(LogBuffer::new())
        .build()
        .expect("the demo configuration is valid")
}

/// The demo router with `config`: ours outermost, then tower-http's access log
/// (`TraceLayer`, whose lines carry the ID because it runs inside our layer), then CORS
/// (inside the log, so preflights are logged too; `CorsLayer` also needs a body type
/// with a default, which `TraceLayer`'s is not), then panic catching. One
/// `ServiceBuilder` in one `Router::layer` call, as axum recommends for several layers:
/// each `Router::layer` call boxes every route once more, and clones one more box per
/// request.
pub fn app(config: CorrelationConfig) -> Router {
    let cors = cors(&config);
    routes(&config).layer(
        ServiceBuilder::new()
            .layer(CorrelationLayer::with_config(config))
            .layer(access_log())
            .layer(cors)
            .layer(catch_panic()),
    )
}

/// The same router without our layer: the baseline of `cargo xtask load`
/// (`CORRELATION_DEMO_BARE=1 cargo run --example axum`). `/id` and `/ws` answer 500
/// there, since their extractor needs the layer.
pub fn bare_app(config: &CorrelationConfig) -> Router {
    routes(config).layer(
        ServiceBuilder::new()
            .layer(access_log())
            .layer(cors(config))
            .layer(catch_panic()),
    )
}

/// What [`catch_panic`] answers a panic with.
type PanicResponse = fn(Box<dyn std::any::Any + Send + 'static>) -> Response<Body>;

/// Turns a handler's panic into a 500. The panic itself is logged by
/// `correlation_core::install_panic_hook` (installed in `main`), with its location, under
/// the request's ID; tower-http's default response would log it a second time.
fn catch_panic() -> CatchPanicLayer<PanicResponse> {
    CatchPanicLayer::custom(|_panic| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the server failed to answer\n",
        )
            .into_response()
    })
}

/// Any origin may call; browsers may send the correlation header and read it back.
fn cors(config: &CorrelationConfig) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([config.request_header_name().clone()])
        .expose_headers([config.response_header_name().clone()])
}

/// The demo's routes, before any layer.
fn routes(config: &CorrelationConfig) -> Router {
    let request_header = config.request_header_name().clone();
    Router::new()
        .route("/", get(index))
        .route(
            "/header",
            get(move |headers: HeaderMap| async move {
                log::debug!("reading the {request_header} request header");
                request_header_value(&headers, &request_header)
            }),
        )
        .route(
            "/id",
            get(|id: CorrelationId| async move {
                log::debug!("reading the ID from the extractor");
                id.to_string()
            }),
        )
        .route("/spawn", get(spawned))
        .route("/blocking", get(blocking))
        .route("/error", get(error))
        .route("/panic", get(panics))
        .route("/ws", get(websocket))
        .route("/stream", get(stream))
        .route(
            "/download",
            get(download).layer(axum::middleware::map_response(log_sent_bytes)),
        )
        .route("/cookies", get(cookies))
}

/// tower-http's request log: an INFO line with method and URI when a request arrives, and
/// one with status and latency when its response leaves.
fn access_log() -> TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    DefaultMakeSpan,
    impl Fn(&http::Request<Body>, &tracing::Span) + Clone,
> {
    TraceLayer::new_for_http()
        .on_request(|request: &http::Request<Body>, _: &tracing::Span| {
            tracing::info!("{} {}", request.method(), request.uri());
        })
        .on_response(DefaultOnResponse::new().level(tracing::Level::INFO))
}

async fn index() -> &'static str {
    log::info!("handling the index");
    log::debug!("the index takes no input");
    nested_work();
    "hello from the axum demo\n"
}

/// A plain function that is not given the ID: its log line carries it anyway.
fn nested_work() {
    log::info!("nested function doing some work");
}

fn request_header_value(headers: &HeaderMap, name: &http::HeaderName) -> String {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

async fn spawned() -> Result<String, StatusCode> {
    log::info!("starting a task");
    // From here on, every line of this request carries `work=spawned`, the task's too.
    Fields::insert("work", "spawned");
    log::debug!("spawning with core's helper, which carries the ID");
    let task = correlation_axum::correlation_core::spawn(async {
        log::info!("inside the spawned task");
        log::debug!("reading the ID in the spawned task");
        current()
    });
    id_or_500(task.await)
}

async fn blocking() -> Result<String, StatusCode> {
    log::info!("starting blocking work");
    log::debug!("spawning on the blocking pool with core's helper, which carries the ID");
    let work = correlation_axum::correlation_core::spawn_blocking(|| {
        log::info!("inside the blocking closure");
        log::debug!("reading the ID in the blocking closure");
        current()
    });
    id_or_500(work.await)
}

fn id_or_500<E>(
    joined: Result<Option<correlation_axum::correlation_core::CorrelationId>, E>,
) -> Result<String, StatusCode> {
    match joined {
        Ok(Some(id)) => Ok(id.to_string()),
        _ => Err(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// The idiomatic axum error path: a handler error type that becomes a 500.
#[derive(Debug)]
struct DemoError;

impl IntoResponse for DemoError {
    fn into_response(self) -> Response {
        log::error!("the demo error route failed on purpose");
        (StatusCode::INTERNAL_SERVER_ERROR, "something went wrong\n").into_response()
    }
}

async fn error() -> Result<&'static str, DemoError> {
    log_error_steps();
    Err(DemoError)
}

/// The `DEBUG` lines of the error route: what a failed request's buffer brings with it.
fn log_error_steps() {
    for step in 1..=ERROR_STEPS {
        log::debug!("preparing to fail: step {step} of {ERROR_STEPS}");
    }
}

/// How many `DEBUG` lines the error route logs before its `ERROR` line.
const ERROR_STEPS: usize = 3;

async fn panics() -> &'static str {
    log::debug!("about to panic on purpose");
    panic!("the demo panic route panicked on purpose")
}

async fn websocket(upgrade: WebSocketUpgrade, id: CorrelationId) -> Response {
    log::info!("upgrading to a WebSocket");
    log::debug!("the echo runs in a task of its own, under the request's ID");
    // The upgrade callback runs in a task of its own: attach the request's ID to it.
    upgrade.on_upgrade(move |socket| echo(socket).with_correlation_id(id.into_inner()))
}

async fn echo(mut socket: WebSocket) {
    while let Some(Ok(message)) = socket.recv().await {
        match message {
            Message::Text(text) => {
                // The client's text, logged as it came: the log format escapes it, so it stays
                // one line under this connection's ID.
                log::info!("websocket received: {}", text.as_str());
                if socket.send(Message::Text(text)).await.is_err() {
                    break;
                }
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
    log::info!("websocket closed");
}

/// Headers of its own, repeated ones included, and a correlation header the layer replaces.
async fn cookies() -> impl IntoResponse {
    log::debug!("setting two cookies, a header of the demo's own and a correlation header");
    (
        AppendHeaders([
            (http::header::SET_COOKIE, "a=1"),
            (http::header::SET_COOKIE, "b=2"),
            (http::HeaderName::from_static("x-demo"), "kept"),
            (
                http::HeaderName::from_static("x-request-id"),
                "from-handler",
            ),
        ]),
        "cookies",
    )
}

async fn stream() -> Body {
    log::debug!("streaming 3 chunks");
    let chunks = futures_util::stream::iter(0..3).then(|n| async move {
        tokio::time::sleep(Duration::from_millis(1)).await;
        log::info!("streaming chunk {n}");
        Ok::<_, Infallible>(Bytes::from(format!("chunk {n}\n")))
    });
    Body::from_stream(chunks)
}

/// A response of known size, read after the handler has returned.
async fn download() -> &'static str {
    log::debug!("answering a body of known size");
    "downloaded\n"
}

/// A middleware of the application's, inside ours, that logs as the body is sent.
async fn log_sent_bytes(response: Response) -> Response {
    response.map(|body| Body::new(SentBytesLog { body }))
}

/// A body that logs each chunk it hands on, keeping the size of the body it wraps.
struct SentBytesLog {
    body: Body,
}

impl HttpBody for SentBytesLog {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                log::info!("download body: sent {} bytes", data.len());
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
