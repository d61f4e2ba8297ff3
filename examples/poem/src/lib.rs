//! The poem demo app of the demo contract, shared by `cargo run --example poem` and the
//! conformance suite.
//!
//! Routes: `/`, `/id`, `/header`, `/spawn`, `/blocking`, `/error`, `/panic`, `/ws`,
//! `/stream`, `/download`, `/cookies`; CORS open to any origin with the correlation header allowed
//! and exposed. Every route logs at `DEBUG` before it answers: those lines are written when
//! the request fails (`/error`, `/panic`), or when a caller on 127.0.0.1 sends
//! `X-Debug-Log: debug`, and dropped otherwise.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;

use correlation_poem::correlation_core::request_log::LogBuffer;
use correlation_poem::correlation_core::{CorrelationFutureExt, Fields, current};
use correlation_poem::{Correlation, CorrelationConfig, CorrelationId, IdSource, TrustPolicy};
use futures_util::{SinkExt, StreamExt};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use poem::error::ResponseError;
use poem::http::{HeaderName, Method, StatusCode};
use poem::middleware::{CatchPanic, Cors, Tracing};
use poem::web::websocket::{Message, WebSocket, WebSocketStream};
use poem::{Body, Endpoint, EndpointExt, IntoResponse, Request, Response, Route, get, handler};

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

/// The demo app with `config`. In poem the last `.with` is the outermost middleware:
/// ours, then CORS, then poem's access log (`Tracing`, whose lines carry the ID because it
/// runs inside ours), then `CatchPanic` innermost, so panics become 500s that still leave
/// with the correlation header. Errors become responses before `Tracing`, so its line
/// shows their status (`404`) rather than only the error's text.
pub fn app(config: CorrelationConfig) -> impl Endpoint<Output = Response> {
    let request_header = config.request_header_name().clone();
    let cors = Cors::new()
        .allow_methods([Method::GET, Method::POST])
        .allow_header(request_header.clone())
        .expose_header(config.response_header_name().clone());
    Route::new()
        .at("/", get(index))
        .at(
            "/header",
            get(poem::endpoint::make_sync(move |request: Request| {
                log::debug!("reading the {request_header} request header");
                request_header_value(&request, &request_header)
            })),
        )
        .at("/id", get(show_id))
        .at("/spawn", get(spawned))
        .at("/blocking", get(blocking))
        .at("/error", get(error))
        .at("/panic", get(panics))
        .at("/ws", get(websocket))
        .at("/stream", get(stream))
        .at("/download", get(download).after(log_sent_bytes))
        .at("/cookies", get(cookies))
        .with(CatchPanic::new())
        .catch_all_error(|err| async move { err.into_response() })
        .with(Tracing)
        .with(cors)
        .with(Correlation::with_config(config))
}

#[handler]
fn index() -> &'static str {
    log::info!("handling the index");
    log::debug!("the index takes no input");
    nested_work();
    "hello from the poem demo\n"
}

/// A plain function that is not given the ID: its log line carries it anyway.
fn nested_work() {
    log::info!("nested function doing some work");
}

#[handler]
fn show_id(id: CorrelationId) -> String {
    log::debug!("reading the ID from the extractor");
    id.to_string()
}

fn request_header_value(request: &Request, name: &HeaderName) -> String {
    request
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[handler]
async fn spawned() -> poem::Result<String> {
    log::info!("starting a task");
    // From here on, every line of this request carries `work=spawned`, the task's too.
    Fields::insert("work", "spawned");
    log::debug!("spawning with core's helper, which carries the ID");
    let task = correlation_poem::correlation_core::spawn(async {
        log::info!("inside the spawned task");
        log::debug!("reading the ID in the spawned task");
        current()
    });
    id_or_500(task.await)
}

#[handler]
async fn blocking() -> poem::Result<String> {
    log::info!("starting blocking work");
    log::debug!("spawning on the blocking pool with core's helper, which carries the ID");
    let work = correlation_poem::correlation_core::spawn_blocking(|| {
        log::info!("inside the blocking closure");
        log::debug!("reading the ID in the blocking closure");
        current()
    });
    id_or_500(work.await)
}

fn id_or_500<E>(
    joined: Result<Option<correlation_poem::correlation_core::CorrelationId>, E>,
) -> poem::Result<String> {
    match joined {
        Ok(Some(id)) => Ok(id.to_string()),
        _ => Err(poem::Error::from_status(StatusCode::INTERNAL_SERVER_ERROR)),
    }
}

/// The idiomatic poem error path: an error type with a status, returned as `Err`.
#[derive(Debug)]
struct DemoError;

impl fmt::Display for DemoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("something went wrong\n")
    }
}

impl std::error::Error for DemoError {}

impl ResponseError for DemoError {
    fn status(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

#[handler]
fn error() -> Result<&'static str, DemoError> {
    log_error_steps();
    log::error!("the demo error route failed on purpose");
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

#[handler]
fn panics() -> &'static str {
    log::debug!("about to panic on purpose");
    panic!("the demo panic route panicked on purpose")
}

#[handler]
fn websocket(upgrade: WebSocket, id: CorrelationId) -> impl IntoResponse {
    log::info!("upgrading to a WebSocket");
    log::debug!("the echo runs in a task of its own, under the request's ID");
    // poem runs the upgrade callback in a task of its own: attach the request's ID to it.
    upgrade.on_upgrade(move |socket| echo(socket).with_correlation_id(id.into_inner()))
}

async fn echo(mut socket: WebSocketStream) {
    while let Some(Ok(message)) = socket.next().await {
        match message {
            Message::Text(text) => {
                // The client's text, logged as it came: the log format escapes it, so it stays
                // one line under this connection's ID.
                log::info!("websocket received: {text}");
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

/// Headers of its own, repeated ones included, and a correlation header the middleware
/// replaces.
#[handler]
fn cookies() -> Response {
    log::debug!("setting two cookies, a header of the demo's own and a correlation header");
    Response::builder()
        .header("set-cookie", "a=1")
        .header("set-cookie", "b=2")
        .header("x-demo", "kept")
        .header("x-request-id", "from-handler")
        .body("cookies")
}

/// Three chunks, each logged while it is produced: after the handler has returned,
/// while poem writes the body.
#[handler]
fn stream() -> Body {
    log::debug!("streaming 3 chunks");
    let chunks = futures_util::stream::iter(0..3).then(|n| async move {
        tokio::time::sleep(Duration::from_millis(1)).await;
        log::info!("streaming chunk {n}");
        Ok::<_, std::io::Error>(format!("chunk {n}\n"))
    });
    Body::from_bytes_stream(chunks)
}

/// A response of known size, read after the handler has returned.
#[handler]
fn download() -> &'static str {
    log::debug!("answering a body of known size");
    "downloaded\n"
}

/// A middleware of the application's, inside ours, that logs as the body is sent.
async fn log_sent_bytes(response: poem::Result<Response>) -> poem::Result<Response> {
    let mut response = response?;
    let body = BoxBody::new(SentBytesLog {
        body: response.take_body().into(),
    });
    response.set_body(body);
    Ok(response)
}

/// A body that logs each chunk it hands on, keeping the size of the body it wraps.
struct SentBytesLog {
    body: BoxBody<Bytes, io::Error>,
}

impl HttpBody for SentBytesLog {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
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
