//! Correlation IDs for axum, and for any tower HTTP service (hyper, tonic): a
//! [`CorrelationLayer`] that gives every request an ID, runs the request with it as the
//! current ID so every log line carries it, and echoes it on the response; plus a
//! [`CorrelationId`] extractor for handlers.
//!
//! Depend on this crate in an axum or tower-based service; the framework-agnostic parts
//! (configuration, context helpers, log formatting) come from [`correlation_core`],
//! re-exported under its own name.
//!
//! ```
//! use axum::{Router, body::Body, routing::get};
//! use correlation_axum::{CorrelationId, CorrelationLayer};
//! use http::Request;
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! async fn handler(id: CorrelationId) -> String {
//!     log::info!("handling"); // with correlation_core::format: INFO  [<id>] app: handling
//!     id.to_string()
//! }
//!
//! let app = Router::new().route("/", get(handler)).layer(CorrelationLayer::new());
//!
//! // A valid incoming ID is kept and echoed.
//! let request = Request::get("/")
//!     .header("x-request-id", "3758c31e-1177-4540-ba33-0109c405579a")
//!     .body(Body::empty())
//!     .unwrap();
//! let response = app.clone().oneshot(request).await.unwrap();
//! assert_eq!(response.headers()["x-request-id"], "3758c31e-1177-4540-ba33-0109c405579a");
//!
//! // A hostile one is replaced by a fresh UUID v4 (32 hex) and never echoed.
//! let request = Request::get("/")
//!     .header("x-request-id", "evil\tvalue")
//!     .body(Body::empty())
//!     .unwrap();
//! let response = app.oneshot(request).await.unwrap();
//! assert_eq!(response.headers()["x-request-id"].len(), 32);
//! # }
//! ```
//!
//! # Usage
//!
//! Register the layer with one call, with the defaults or with the configuration every
//! adapter shares:
//!
//! ```
//! use axum::{Router, routing::get};
//! use correlation_axum::{CorrelationConfig, CorrelationLayer};
//!
//! let config = CorrelationConfig::builder()
//!     .incoming_header_names(["X-Correlation-ID", "X-Request-ID"])
//!     .skip_paths(["/health"])
//!     .build()?;
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "hello" }))
//!     .layer(CorrelationLayer::with_config(config));
//! # Ok::<(), correlation_axum::correlation_core::ConfigError>(())
//! ```
//!
//! For every request the layer asks core to accept, generate or replace the ID
//! ([`CorrelationConfig::decide`]), rewrites the request header so the handler sees
//! exactly one header with the final ID, runs the inner service (its `call` and its
//! future) and the response body with the ID current, and puts exactly one correlation
//! header on the response, replacing any the handler set: on 2xx, 4xx, the router's 404
//! fallback, 5xx, panics turned into 500s and the 101 of a WebSocket upgrade.
//!
//! In handlers, take [`CorrelationId`], or call [`correlation_core::current`] anywhere below.
//! Carry the ID into other work with [`correlation_core::spawn`], [`correlation_core::spawn_blocking`] and
//! [`correlation_core::CorrelationFutureExt`]: a plain `tokio::spawn` starts without it.
//!
//! # Ordering
//!
//! In axum, `.layer` calls wrap what is above them, so the **last** `.layer` is the
//! outermost and runs first. Put `CorrelationLayer` last, so that everything inside it
//! (tower-http's `TraceLayer`, `CorsLayer`, `CatchPanicLayer`, your handlers) runs with
//! the ID and every response it produces is echoed. With `tower::ServiceBuilder`, layers
//! run top-down: put `CorrelationLayer` first.
//!
//! ```
//! use axum::{Router, routing::get};
//! use correlation_axum::CorrelationLayer;
//! use http::{HeaderName, Method};
//! use tower_http::{catch_panic::CatchPanicLayer, cors::{Any, CorsLayer}};
//!
//! let header = HeaderName::from_static("x-request-id");
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "hello" }))
//!     // Innermost: turns a panic into a 500 that still gets our header.
//!     .layer(CatchPanicLayer::new())
//!     // Browsers may send the header and read it from JavaScript.
//!     .layer(
//!         CorsLayer::new()
//!             .allow_origin(Any)
//!             .allow_methods([Method::GET, Method::POST])
//!             .allow_headers([header.clone()])
//!             .expose_headers([header]),
//!     )
//!     // Outermost: runs first, echoes on every response above.
//!     .layer(CorrelationLayer::new());
//! ```
//!
//! Each `Router::layer` call boxes every route once more, and axum clones one more box
//! per request; with several layers, one `ServiceBuilder` in one call is cheaper (the
//! demo does this; measured in `BENCHMARKS.md`). Keep `CorsLayer` inside `TraceLayer`
//! there, since `CorsLayer` needs an inner body type with a default:
//!
//! ```
//! use axum::{Router, routing::get};
//! use correlation_axum::CorrelationLayer;
//! use tower::ServiceBuilder;
//! use tower_http::{catch_panic::CatchPanicLayer, cors::CorsLayer, trace::TraceLayer};
//!
//! let app: Router = Router::new().route("/", get(|| async { "hello" })).layer(
//!     ServiceBuilder::new() // top-down: the first layer is the outermost
//!         .layer(CorrelationLayer::new())
//!         .layer(TraceLayer::new_for_http())
//!         .layer(CorsLayer::permissive())
//!         .layer(CatchPanicLayer::new()),
//! );
//! ```
//!
//! # WebSockets
//!
//! axum runs the callback given to `WebSocketUpgrade::on_upgrade` in a task of its own,
//! after the upgrade response has left, so the request's scope is gone there. Take the
//! ID with the extractor and attach it to the callback's future:
//!
//! ```
//! use axum::extract::ws::{WebSocket, WebSocketUpgrade};
//! use axum::response::Response;
//! use correlation_axum::CorrelationId;
//! use correlation_axum::correlation_core::CorrelationFutureExt;
//!
//! async fn ws(upgrade: WebSocketUpgrade, id: CorrelationId) -> Response {
//!     upgrade.on_upgrade(move |socket| session(socket).with_correlation_id(id.into_inner()))
//! }
//!
//! async fn session(mut socket: WebSocket) {
//!     while let Some(Ok(message)) = socket.recv().await {
//!         log::info!("received {message:?}"); // carries the connection's ID
//!     }
//! }
//! ```
//!
//! # Whom to trust
//!
//! A [`TrustPolicy::FromPeers`] honours incoming IDs only from the listed networks, by the
//! connection's peer address, which the layer reads from axum's `ConnectInfo<SocketAddr>`:
//! serve the app with `into_make_service_with_connect_info::<SocketAddr>()`, or tell the
//! layer where your stack records the address with [`CorrelationLayer::peer_address`].
//! Without it, such a request is answered `500` and an `ERROR` names the fix; it is never
//! trusted silently.
//!
//! ```no_run
//! use std::net::SocketAddr;
//! use axum::{Router, routing::get};
//! use correlation_axum::{CorrelationConfig, CorrelationLayer, IdSource, TrustPolicy};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = CorrelationConfig::builder()
//!     .sources([IdSource::header("X-Request-ID"), IdSource::traceparent()])
//!     .trust(TrustPolicy::from_peers(["10.0.0.0/8"])?)
//!     .build()?;
//! let app = Router::new()
//!     .route("/", get(|| async { "hello" }))
//!     .layer(CorrelationLayer::with_config(config));
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
//! axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Caveats
//!
//! - An error returned by the inner service (rather than a response) has no headers to
//!   echo on; axum's services never return one, and other tower stacks usually turn
//!   errors into responses with `HandleErrorLayer` placed inside this layer.
//! - With [`OnInvalid::Reject`], an invalid ID gets `400 Bad Request` (with a fresh ID
//!   echoed) without reaching the inner service.
//!
//! ## Feature Flags
//!
//! | feature | enables |
//! |---|---|
//! | `env-logger` (default) | [`correlation_core::format`], [`correlation_core::LogFormat`]: `[<id>]` on every `env_logger` line |
//! | `kv` | [`correlation_core::CorrelationLogger`]: `correlation_id` as a key-value on every `log` record |
//! | `request-log` | [`correlation_core::request_log`]: a per-request log level from trusted callers, and each request's `DEBUG` lines kept and written only if it fails (a `5xx` response, a panic, an `ERROR`) |
//! | `serde` | `Serialize` / `Deserialize` for the ID, job IDs and the job carrier |
//! | `tracing` | each request runs in a `tracing` span recording `correlation_id`, entered in the handler, spawned work and while the body streams |
//! | `opentelemetry` | `correlation_core::strategy::OpenTelemetryTraceId`: the current OpenTelemetry trace ID as the generated ID |
//! | `sentry` | each request gets its own Sentry hub, tagged `transaction_id` with the ID |
//! | `reqwest` | `correlation_core::propagation::PropagateCorrelationMiddleware` for `reqwest-middleware` 0.4 and 0.5 clients |
//! | `tower` | `correlation_core::propagation::PropagateCorrelationLayer` for tower HTTP clients |
//! | `apalis` | `correlation_core::propagation::JobContextLayer`: apalis 1 jobs run in the context they were enqueued with |
//! | `nats` | `correlation_core::propagation::{inject_current, message_context}` for NATS message headers, on publish and on receipt |
//! | `lapin` | `correlation_core::propagation::{inject_current, message_context}` for the AMQP header table (RabbitMQ), on publish and on receipt |
//! | `mqtt` | `correlation_core::propagation::{inject_current, message_context}` for MQTT v5 user properties, on publish and on receipt |
//! | `tower-http` | the ID also in request extensions as tower-http's `RequestId` (tower-http 0.6 and 0.7), for `TraceLayer::make_span_with` |
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

pub use body::CorrelationBody;
pub use extract::{CorrelationId, MissingCorrelation};
pub use middleware::{CorrelationLayer, CorrelationService, PeerAddress, ResponseFuture};

/// The core crate under its own name, so a dependency on this adapter alone is enough.
pub use correlation_core;
pub use correlation_core::{CorrelationConfig, IdSource, OnInvalid, Outcome, TrustPolicy};

#[cfg(test)]
mod tests;
