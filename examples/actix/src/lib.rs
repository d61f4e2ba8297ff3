//! The actix demo app of the demo contract, shared by `cargo run --example actix` and the
//! conformance suite.
//!
//! Routes: `/`, `/id`, `/header`, `/spawn`, `/blocking`, `/error`, `/panic`, `/ws`,
//! `/stream`, `/download`, `/cookies`; CORS open to any origin with the correlation header allowed and
//! exposed; actix-web's `Logger` writing access-log lines under the request's ID. Every
//! route logs at `DEBUG` before it answers: those lines are written when the request fails
//! (`/error`, `/panic`), or when a caller on 127.0.0.1 sends `X-Debug-Log: debug`, and
//! dropped otherwise.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_cors::Cors;
use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{Logger, Next, from_fn};
use actix_web::{App, Error, HttpRequest, HttpResponse, ResponseError, web};
use actix_web_lab::middleware::CatchPanic;
use bytes::Bytes;
use correlation_actix::correlation_core::request_log::LogBuffer;
use correlation_actix::correlation_core::{CorrelationFutureExt, Fields, current};
use correlation_actix::{Correlation, CorrelationConfig, CorrelationId, IdSource, TrustPolicy};
use futures_util::StreamExt;

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

/// The demo app with `config`: ours outermost, then CORS, then actix-web's `Logger`,
/// then actix-web-lab's `CatchPanic` innermost (the last `.wrap` is the outermost).
pub fn app(
    config: CorrelationConfig,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = Error,
        InitError = (),
    >,
> {
    let request_header = config.request_header_name().as_str().to_owned();
    let cors = Cors::default()
        .allow_any_origin()
        .allowed_methods(["GET", "POST"])
        .allowed_header(request_header.as_str())
        .expose_headers([config.response_header_name().as_str()]);
    // `%{..}i` reads the request header, which our middleware has already set to the
    // final ID; the line itself is written inside the request's scope (`[<id>]`).
    let logger = Logger::new(&format!(
        r#"%a "%r" %s %b {request_header}=%{{{request_header}}}i %Dms"#
    ));
    App::new()
        .route("/", web::get().to(index))
        .route("/id", web::get().to(id))
        .route(
            "/header",
            web::get().to(move |req: HttpRequest| {
                log::debug!("reading the {request_header} request header");
                let value = request_header_value(&req, &request_header);
                async move { value }
            }),
        )
        .route("/spawn", web::get().to(spawned))
        .route("/blocking", web::get().to(blocking))
        .route("/error", web::get().to(error))
        .route("/panic", web::get().to(panics))
        .route("/ws", web::get().to(websocket))
        .route("/stream", web::get().to(stream))
        .service(
            web::resource("/download")
                .wrap(from_fn(log_sent_bytes))
                .route(web::get().to(download)),
        )
        .route("/cookies", web::get().to(cookies))
        .wrap(CatchPanic::default())
        .wrap(logger)
        .wrap(cors)
        .wrap(Correlation::with_config(config))
}

async fn index() -> &'static str {
    log::info!("handling the index");
    log::debug!("the index takes no input");
    nested_work();
    "hello from the actix demo\n"
}

/// A plain function that is not given the ID: its log line carries it anyway.
fn nested_work() {
    log::info!("nested function doing some work");
}

async fn id(id: CorrelationId) -> String {
    log::debug!("reading the ID from the extractor");
    id.to_string()
}

fn request_header_value(req: &HttpRequest, name: &str) -> String {
    req.headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

async fn spawned() -> Result<String, Error> {
    log::info!("starting a task");
    // From here on, every line of this request carries `work=spawned`, the task's too.
    Fields::insert("work", "spawned");
    // On actix's worker runtime.
    log::debug!("spawning with core's helper, which carries the ID");
    let task = correlation_actix::correlation_core::spawn(async {
        log::info!("inside the spawned task");
        log::debug!("reading the ID in the spawned task");
        current()
    });
    id_or_500(task.await)
}

async fn blocking() -> Result<String, Error> {
    log::info!("starting blocking work");
    log::debug!("spawning on the blocking pool with core's helper, which carries the ID");
    let work = correlation_actix::correlation_core::spawn_blocking(|| {
        log::info!("inside the blocking closure");
        log::debug!("reading the ID in the blocking closure");
        current()
    });
    id_or_500(work.await)
}

fn id_or_500<E>(
    joined: Result<Option<correlation_actix::correlation_core::CorrelationId>, E>,
) -> Result<String, Error> {
    match joined {
        Ok(Some(id)) => Ok(id.to_string()),
        _ => Err(actix_web::error::ErrorInternalServerError(
            "the task lost its ID",
        )),
    }
}

/// The idiomatic actix error path: a handler error type implementing `ResponseError`.
#[derive(Debug)]
struct DemoError;

impl std::fmt::Display for DemoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("something went wrong\n")
    }
}

impl ResponseError for DemoError {}

async fn error() -> Result<&'static str, DemoError> {
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

async fn panics() -> &'static str {
    log::debug!("about to panic on purpose");
    panic!("the demo panic route panicked on purpose")
}

async fn websocket(
    req: HttpRequest,
    body: web::Payload,
    id: CorrelationId,
) -> Result<HttpResponse, Error> {
    log::info!("upgrading to a WebSocket");
    log::debug!("the echo runs in a task of its own, under the request's ID");
    let (response, session, messages) = actix_ws::handle(&req, body)?;
    // The session runs in a task of its own, after the upgrade response has left:
    // attach the request's ID to it.
    actix_web::rt::spawn(echo(session, messages).with_correlation_id(id.into_inner()));
    Ok(response)
}

async fn echo(mut session: actix_ws::Session, mut messages: actix_ws::MessageStream) {
    while let Some(Ok(message)) = messages.next().await {
        let open = match message {
            actix_ws::Message::Text(text) => {
                // The client's text, logged as it came: the log format escapes it, so it stays
                // one line under this connection's ID.
                log::info!("websocket received: {text}");
                session.text(text).await.is_ok()
            }
            actix_ws::Message::Ping(bytes) => session.pong(&bytes).await.is_ok(),
            actix_ws::Message::Close(_) => false,
            _ => true,
        };
        if !open {
            break;
        }
    }
    let _ = session.close(None).await;
    log::info!("websocket closed");
}

/// Headers of its own, repeated ones included, and a correlation header the middleware
/// replaces.
async fn cookies() -> HttpResponse {
    log::debug!("setting two cookies, a header of the demo's own and a correlation header");
    HttpResponse::Ok()
        .append_header(("set-cookie", "a=1"))
        .append_header(("set-cookie", "b=2"))
        .append_header(("x-demo", "kept"))
        .append_header(("x-request-id", "from-handler"))
        .body("cookies")
}

async fn stream() -> HttpResponse {
    log::debug!("streaming 3 chunks");
    let chunks = futures_util::stream::iter(0..3).then(|n| async move {
        actix_web::rt::time::sleep(Duration::from_millis(1)).await;
        log::info!("streaming chunk {n}");
        Ok::<_, Error>(Bytes::from(format!("chunk {n}\n")))
    });
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .streaming(chunks)
}

/// A response of known size, read after the handler has returned.
async fn download() -> &'static str {
    log::debug!("answering a body of known size");
    "downloaded\n"
}

/// A middleware of the application's, inside ours, that logs as the body is sent.
async fn log_sent_bytes(
    request: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<SentBytesLog>, Error> {
    let response = next.call(request).await?;
    Ok(response.map_body(|_, body| SentBytesLog { body }))
}

/// A body that logs each chunk it hands on, keeping the size of the body it wraps.
struct SentBytesLog {
    body: BoxBody,
}

impl MessageBody for SentBytesLog {
    type Error = <BoxBody as MessageBody>::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let polled = Pin::new(&mut self.body).poll_next(cx);
        if let Poll::Ready(Some(Ok(data))) = &polled {
            log::info!("download body: sent {} bytes", data.len());
        }
        polled
    }
}
