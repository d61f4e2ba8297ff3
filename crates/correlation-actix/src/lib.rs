//! Correlation IDs for actix-web: a [`Correlation`] middleware that gives every request
//! an ID, runs the request with it as the current ID so every log line carries it, and
//! echoes it on the response; plus a [`CorrelationId`] extractor for handlers.
//!
//! Depend on this crate in an actix-web 4 application; the framework-agnostic parts
//! (configuration, context helpers, log formatting) come from [`correlation_core`],
//! re-exported under its own name.
//!
//! ```
//! use actix_web::{App, test, web};
//! use correlation_actix::{Correlation, CorrelationId};
//!
//! async fn handler(id: CorrelationId) -> String {
//!     log::info!("handling"); // with correlation_core::format: INFO  [<id>] app: handling
//!     id.to_string()
//! }
//!
//! # #[actix_web::main]
//! # async fn main() {
//! let app = App::new()
//!     .route("/", web::get().to(handler))
//!     .wrap(Correlation::default());
//! let app = test::init_service(app).await;
//!
//! // A valid incoming ID is kept and echoed.
//! let request = test::TestRequest::get()
//!     .uri("/")
//!     .insert_header(("x-request-id", "3758c31e-1177-4540-ba33-0109c405579a"))
//!     .to_request();
//! let response = test::call_service(&app, request).await;
//! assert_eq!(
//!     response.headers().get("x-request-id").unwrap(),
//!     "3758c31e-1177-4540-ba33-0109c405579a"
//! );
//!
//! // A hostile one is replaced by a fresh UUID v4 (32 hex) and never echoed.
//! let request = test::TestRequest::get()
//!     .uri("/")
//!     .insert_header(("x-request-id", "evil\tvalue"))
//!     .to_request();
//! let response = test::call_service(&app, request).await;
//! assert_eq!(response.headers().get("x-request-id").unwrap().len(), 32);
//! # }
//! ```
//!
//! # Usage
//!
//! Register the middleware with one call, with the defaults or with the configuration
//! every adapter shares:
//!
//! ```
//! use actix_web::{App, web};
//! use correlation_actix::{Correlation, CorrelationConfig};
//!
//! let config = CorrelationConfig::builder()
//!     .incoming_header_names(["X-Correlation-ID", "X-Request-ID"])
//!     .skip_paths(["/health"])
//!     .build()?;
//! let app = App::new()
//!     .route("/", web::get().to(|| async { "hello" }))
//!     .wrap(Correlation::with_config(config));
//! # Ok::<(), correlation_actix::correlation_core::ConfigError>(())
//! ```
//!
//! For every request the middleware asks core to accept, generate or replace the ID
//! ([`CorrelationConfig::decide`]), rewrites the request header so the handler sees
//! exactly one header with the final ID, runs the inner service (its `call`, where actix
//! starts extracting handler arguments, and its future), the response body's production
//! and the body's drop with the ID current, and puts exactly one correlation header on the
//! response, replacing any the handler set: on 2xx, 4xx, the default service's 404, 5xx,
//! errors returned by inner middleware, panics caught by actix-web-lab's `CatchPanic`
//! and the 101 of a WebSocket upgrade.
//!
//! In handlers, take [`CorrelationId`], or call [`correlation_core::current`] anywhere below.
//! Carry the ID into other work with [`correlation_core::spawn`], [`correlation_core::spawn_local`],
//! [`correlation_core::spawn_blocking`] and [`correlation_core::CorrelationFutureExt`]: `actix_web::rt::spawn`
//! and `tokio::spawn` start without it.
//!
//! # Ordering
//!
//! In actix-web, each `.wrap` wraps everything registered before it, so the **last**
//! `.wrap` is the outermost middleware and sees the request first. Register
//! `Correlation` last, so that everything inside it (CORS, `Logger`, `CatchPanic`, your
//! handlers) runs with the ID and every response they produce is echoed:
//!
//! ```
//! use actix_cors::Cors;
//! use actix_web::middleware::Logger;
//! use actix_web::{App, web};
//! use actix_web_lab::middleware::CatchPanic;
//! use correlation_actix::Correlation;
//!
//! let app = App::new()
//!     .route("/", web::get().to(|| async { "hello" }))
//!     // Innermost: turns a panic into a 500 that still gets our header.
//!     .wrap(CatchPanic::default())
//!     // Its access-log line is written under the request's ID (see below).
//!     .wrap(Logger::new(r#"%a "%r" %s %b %{x-request-id}i %T"#))
//!     // Browsers may send the header and read it from JavaScript.
//!     .wrap(
//!         Cors::default()
//!             .allow_any_origin()
//!             .allowed_methods(["GET", "POST"])
//!             .allowed_header("x-request-id")
//!             .expose_headers(["x-request-id"]),
//!     )
//!     // Outermost: runs first, echoes on every response above.
//!     .wrap(Correlation::default());
//! ```
//!
//! ## Access logs with actix-web's `Logger`
//!
//! Register `Logger` **inside** `Correlation` (before it, in `.wrap` order). `Logger`
//! writes its line when the response body is dropped, and this middleware drops the body
//! inside the request's scope, so with `correlation_core::format` (core feature
//! `env-logger`) as the `env_logger` format the line starts with `[<id>]`. To print the
//! ID in the line itself, use `%{x-request-id}i`: it reads the **request** header, which
//! this middleware has already set to the final ID.
//!
//! ```no_run
//! use actix_web::middleware::Logger;
//! use actix_web::{App, HttpServer, web};
//! use correlation_actix::Correlation;
//!
//! #[actix_web::main]
//! async fn main() -> std::io::Result<()> {
//!     env_logger::Builder::new()
//!         .format(correlation_actix::correlation_core::format)
//!         .parse_filters("info")
//!         .init();
//!     HttpServer::new(|| {
//!         App::new()
//!             .route("/", web::get().to(|| async { "hello" }))
//!             .wrap(Logger::new(r#"%a "%r" %s %{x-request-id}i"#)) // inside ours
//!             .wrap(Correlation::default()) // outermost
//!     })
//!     .bind(("127.0.0.1", 8080))?
//!     .run()
//!     .await
//! }
//! // prints: INFO  [<id>] actix_web::middleware::logger: 127.0.0.1 "GET / HTTP/1.1" 200 <id>
//! ```
//!
//! `%{x-request-id}o` (the response header) prints `-` there: the header is added when
//! the response passes this middleware, after `Logger` has rendered it. A `Logger`
//! registered outside `Correlation` sees the response header but logs outside the
//! request's scope (`[-]`). `Logger` writes no line for an `Err` from the services inside
//! it (such as a panic caught by `CatchPanic`).
//!
//! With `incoming_header_names` or `header_name`, the request header is the first
//! configured name, and `%{x-request-id}i` prints `-`. Build the format from the
//! configuration instead:
//!
//! ```
//! use actix_web::{App, middleware::Logger, web};
//! use correlation_actix::correlation_core::{self, ConfigError};
//! use correlation_actix::{Correlation, CorrelationConfig};
//!
//! fn main() -> Result<(), ConfigError> {
//!     env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
//!         .format(correlation_core::format)
//!         .init();
//!     let config = CorrelationConfig::builder()
//!         .incoming_header_names(["X-Correlation-ID", "X-Request-ID"])
//!         .build()?;
//!     // `%{x-correlation-id}i`: the request header our middleware writes
//!     let format = format!(r#"%a "%r" %s %{{{}}}i"#, config.request_header_name());
//!     let app = App::new()
//!         .route("/", web::get().to(|| async { "hello" }))
//!         .wrap(Logger::new(&format)) // inside ours
//!         .wrap(Correlation::with_config(config));
//!     // `GET /` prints: INFO  [<id>] actix_web::middleware::logger: ... "GET / HTTP/1.1" 200 <id>
//!     Ok(())
//! }
//! ```
//!
//! # WebSockets
//!
//! With `actix-ws`, the session runs in a task of its own that outlives the request's
//! scope. Take the ID with the extractor and attach it to the task's future:
//!
//! ```
//! use actix_web::{Error, HttpRequest, HttpResponse, rt, web};
//! use correlation_actix::CorrelationId;
//! use correlation_actix::correlation_core::CorrelationFutureExt;
//! use futures_util::StreamExt;
//!
//! async fn ws(req: HttpRequest, body: web::Payload, id: CorrelationId) -> Result<HttpResponse, Error> {
//!     let (response, mut session, mut messages) = actix_ws::handle(&req, body)?;
//!     let echo = async move {
//!         while let Some(Ok(actix_ws::Message::Text(text))) = messages.next().await {
//!             log::info!("received {text}"); // carries the connection's ID
//!             if session.text(text).await.is_err() {
//!                 break;
//!             }
//!         }
//!     };
//!     rt::spawn(echo.with_correlation_id(id.into_inner()));
//!     Ok(response)
//! }
//! ```
//!
//! # Whom to trust
//!
//! A [`TrustPolicy::FromPeers`] honours incoming IDs only from the listed networks, by the
//! connection's peer address (`HttpRequest::peer_addr`), which actix-web gives for every
//! TCP connection. An app on a Unix socket, or whose own middleware records the address,
//! tells the middleware where it is with [`Correlation::peer_address`]. A request without
//! one is answered `500` and an `ERROR` names the fix; it is never trusted silently.
//!
//! # Caveats
//!
//! - actix-web turns an `Err` from the service stack into a response after all
//!   middleware has returned. This middleware wraps such errors in [`CorrelatedError`],
//!   whose response is the original one plus the correlation header; middleware
//!   registered outside `Correlation` sees the wrapper.
//! - With [`OnInvalid::Reject`], an invalid ID gets `400 Bad Request` (with a fresh ID
//!   echoed) without reaching the inner service.
//! - actix-web 4 uses the `http` 0.2 header types while core uses `http` 1. An accepted
//!   incoming value stays in the request and is echoed as it is; the context's ID copies
//!   its bytes once (one allocation). A generated ID costs core's allocation plus one.
//!
//! ## Feature Flags
//!
//! | feature | enables |
//! |---|---|
//! | `env-logger` (default) | [`correlation_core::format`], [`correlation_core::LogFormat`]: `[<id>]` on every `env_logger` line |
//! | `kv` | [`correlation_core::CorrelationLogger`]: `correlation_id` as a key-value on every `log` record |
//! | `request-log` | [`correlation_core::request_log`]: a per-request log level from trusted callers, and each request's `DEBUG` lines kept and written only if it fails (a `5xx` response, a panic, an `ERROR`) |
//! | `serde` | `Serialize` / `Deserialize` for the ID, job IDs and the job carrier |
//! | `tracing` | each request runs in a `tracing` span recording `correlation_id`, entered in the handler, spawned work and while the body streams and drops (so `Logger`'s line is inside it) |
//! | `opentelemetry` | `correlation_core::strategy::OpenTelemetryTraceId`: the current OpenTelemetry trace ID as the generated ID |
//! | `sentry` | each request gets its own Sentry hub, tagged `transaction_id` with the ID (when a Sentry client is bound) |
//! | `reqwest` | `correlation_core::propagation::PropagateCorrelationMiddleware` for `reqwest-middleware` 0.4 and 0.5 clients |
//! | `tower` | `correlation_core::propagation::PropagateCorrelationLayer` for tower HTTP clients |
//! | `apalis` | `correlation_core::propagation::JobContextLayer`: apalis 1 jobs run in the context they were enqueued with |
//! | `nats` | `correlation_core::propagation::{inject_current, message_context}` for NATS message headers, on publish and on receipt |
//! | `lapin` | `correlation_core::propagation::{inject_current, message_context}` for the AMQP header table (RabbitMQ), on publish and on receipt |
//! | `mqtt` | `correlation_core::propagation::{inject_current, message_context}` for MQTT v5 user properties, on publish and on receipt |
//! | `tracing-actix-web` | [`CorrelationRootSpanBuilder`]: tracing-actix-web's root span with the correlation ID as `request_id` (add `tracing-actix-web = "0.7"` to your Cargo.toml beside it) |
//!
//! Only `env-logger` is on by default. Every feature of [`correlation_core`] is forwarded
//! under the same name, so this crate is the only dependency an application needs. The
//! versions each integration supports are listed in the README ("Versions").
//!
//! ## Supported Rust Versions
//!
//! The minimum supported Rust version is **1.85** (edition 2024). It may be raised in a
//! minor release, to a version at least six months old, and never in a patch release.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod body;
mod extract;
mod middleware;
#[cfg(feature = "tracing-actix-web")]
mod root_span;

pub use body::CorrelationBody;
pub use extract::{CorrelationId, MissingCorrelation};
pub use middleware::{
    CorrelatedError, Correlation, CorrelationMiddleware, PeerAddress, ResponseFuture,
};
#[cfg(feature = "tracing-actix-web")]
#[cfg_attr(docsrs, doc(cfg(feature = "tracing-actix-web")))]
pub use root_span::CorrelationRootSpanBuilder;

/// The core crate under its own name, so a dependency on this adapter alone is enough.
pub use correlation_core;
pub use correlation_core::{CorrelationConfig, IdSource, OnInvalid, Outcome, TrustPolicy};

#[cfg(test)]
mod tests;
