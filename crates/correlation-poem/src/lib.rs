//! Correlation IDs for [poem]: a [`Correlation`] middleware that gives every request an
//! ID, runs the request (and its streaming response body) with it as the current ID so
//! every log line carries it, and echoes it on the response; plus a [`CorrelationId`]
//! extractor for handlers.
//!
//! Depend on this crate in a poem application; the framework-agnostic parts
//! (configuration, context helpers, log formatting) come from [`correlation_core`],
//! re-exported under its own name.
//!
//! [poem]: https://docs.rs/poem
//!
//! ```
//! use correlation_poem::{Correlation, CorrelationId};
//! use poem::{EndpointExt, Route, get, handler, test::TestClient};
//!
//! #[handler]
//! fn index(id: CorrelationId) -> String {
//!     log::info!("handling"); // with correlation_core::format: INFO  [<id>] app: handling
//!     id.to_string()
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let app = Route::new().at("/", get(index)).with(Correlation::default());
//! let client = TestClient::new(app);
//!
//! // A valid incoming ID is kept, seen by the handler and echoed.
//! let response = client
//!     .get("/")
//!     .header("x-request-id", "3758c31e-1177-4540-ba33-0109c405579a")
//!     .send()
//!     .await;
//! response.assert_header("x-request-id", "3758c31e-1177-4540-ba33-0109c405579a");
//! response.assert_text("3758c31e-1177-4540-ba33-0109c405579a").await;
//!
//! // A hostile one is replaced by a fresh UUID v4 (32 hex) and never echoed.
//! let response = client.get("/").header("x-request-id", "evil\tvalue").send().await;
//! let id = response.0.header("x-request-id").unwrap().to_owned();
//! assert_eq!(id.len(), 32);
//! response.assert_text(id).await;
//! # }
//! ```
//!
//! # Usage
//!
//! Register the middleware with one call, with the defaults or with the configuration
//! every adapter shares:
//!
//! ```
//! use correlation_poem::{Correlation, CorrelationConfig};
//! use poem::{EndpointExt, Route, get, handler};
//!
//! #[handler]
//! fn index() -> &'static str {
//!     "hello"
//! }
//!
//! let config = CorrelationConfig::builder()
//!     .incoming_header_names(["X-Correlation-ID", "X-Request-ID"])
//!     .skip_paths(["/health"])
//!     .build()?;
//! let app = Route::new().at("/", get(index)).with(Correlation::with_config(config));
//! # let _ = app;
//! # Ok::<(), correlation_poem::correlation_core::ConfigError>(())
//! ```
//!
//! For every request the middleware asks core to accept, generate or replace the ID
//! ([`CorrelationConfig::decide`]), rewrites the request header so the handler sees
//! exactly one header with the final ID, and calls the inner endpoint with the ID
//! current: its `call`, every poll of the future it returns, and the drop of that future
//! (also when the client goes away mid-request). It then puts exactly one
//! correlation header on the response, replacing any the handler set: on successes,
//! on the `404` of a `Route`, on every `poem::Error` the inner endpoint returns (turned
//! into its response here, inside the scope, so it leaves with the header), on the `500`
//! that poem's `CatchPanic` makes from a panic, and on the `101` of a WebSocket upgrade.
//! With [`OnInvalid::Reject`], an invalid ID is answered with `400 Bad Request` (body
//! `invalid correlation id`, a fresh ID echoed) without calling the endpoint.
//!
//! In handlers, take [`CorrelationId`], or call [`correlation_core::current`] anywhere below.
//! Carry the ID into other work with [`correlation_core::spawn`], [`correlation_core::spawn_blocking`] and
//! [`correlation_core::CorrelationFutureExt`]: a plain `tokio::spawn` starts without it.
//!
//! # Ordering
//!
//! In poem, `ep.with(m)` wraps everything written before it, so the **last** `.with` is
//! the outermost middleware and runs first. Put `Correlation` last, so that everything
//! inside it (`Cors`, `Tracing`, `CatchPanic`, your endpoints) runs with the ID and every
//! response it produces is echoed. `CatchPanic` in particular must be inside: a panic
//! that unwinds through `Correlation` leaves no response for it to echo on.
//!
//! ```
//! use correlation_poem::Correlation;
//! use poem::middleware::{CatchPanic, Cors};
//! use poem::{EndpointExt, Route, get, handler, http::StatusCode, test::TestClient};
//!
//! #[handler]
//! fn boom() -> &'static str {
//!     panic!("boom")
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let app = Route::new()
//!     .at("/panic", get(boom))
//!     // Innermost: turns a panic into a 500 that still gets our header.
//!     .with(CatchPanic::new())
//!     // Browsers may send the header and read it from JavaScript.
//!     .with(Cors::new().allow_header("x-request-id").expose_header("x-request-id"))
//!     // Outermost: runs first, echoes on every response above.
//!     .with(Correlation::default());
//!
//! let response = TestClient::new(app).get("/panic").send().await;
//! response.assert_status(StatusCode::INTERNAL_SERVER_ERROR);
//! assert_eq!(response.0.headers().get_all("x-request-id").iter().count(), 1);
//! # }
//! ```
//!
//! # Streaming bodies
//!
//! A streaming response body (`Body::from_bytes_stream`, `Body::from_async_read`, SSE)
//! is produced after the endpoint has returned. The middleware wraps every body with
//! something left to read, so that each poll runs with the ID current and log lines
//! written while producing it carry the ID, including those of a middleware inside ours
//! that logs as a body of known size is read. A poem body does not say whether it is
//! already bytes in memory, so such bodies are wrapped too (one allocation per
//! response); an empty body is left as it is.
//!
//! # WebSockets
//!
//! poem runs the callback given to `WebSocket::on_upgrade` in a task of its own, after
//! the `101` has left, so the request's scope is gone there. Take the ID with the
//! extractor and attach it to the callback's future:
//!
//! ```
//! use correlation_poem::CorrelationId;
//! use correlation_poem::correlation_core::CorrelationFutureExt;
//! use futures_util::{SinkExt, StreamExt};
//! use poem::web::websocket::{Message, WebSocket};
//! use poem::{IntoResponse, handler};
//!
//! #[handler]
//! fn ws(upgrade: WebSocket, id: CorrelationId) -> impl IntoResponse {
//!     upgrade.on_upgrade(move |mut socket| {
//!         async move {
//!             while let Some(Ok(Message::Text(text))) = socket.next().await {
//!                 log::info!("received {text}"); // carries the connection's ID
//!                 if socket.send(Message::Text(text)).await.is_err() {
//!                     break;
//!                 }
//!             }
//!         }
//!         .with_correlation_id(id.into_inner())
//!     })
//! }
//! ```
//!
//! # Migrating from poem's `RequestId`
//!
//! poem's `RequestId` middleware (feature `requestid`) by default **ignores** the
//! incoming ID (`ReuseId::Ignore`) and generates a hyphenated UUID v4; with
//! `ReuseId::Use` it reuses any incoming value without validating it, so a client
//! chooses what your logs and responses carry. It exposes the ID through its `ReqId`
//! extractor and a `tracing` span around the endpoint, and echoes it only on successful
//! responses: an `Err` (such as a `Route`'s 404) leaves without it. `Correlation` reuses a valid
//! incoming ID, replaces an invalid one (with one `WARN`), rewrites the request header,
//! keeps the ID in a task-local that [`correlation_core::current`], log formatters, spawned tasks
//! and streaming bodies see, and echoes it on every response, errors included.
//!
//! | poem | correlation-poem |
//! |---|---|
//! | `.with(RequestId::default())` | `.with(Correlation::with_config(config))` where `config` has `.validator(\|_: &str\| false)` (never reuse) |
//! | `.with(RequestId::default().reuse_id(ReuseId::Use))` | `.with(Correlation::default())`: reuse, only if it is a UUID v4 |
//! | `RequestId::with_header_name("x-trace")` | `CorrelationConfig::builder().header_name("x-trace")` |
//! | hyphenated UUIDs | `.generator(HyphenatedUuidV4)` (default: 32 hex digits) |
//! | any incoming value | `.validator(AnySafe)`: any value of 1 to 128 visible ASCII bytes |
//! | `req_id: ReqId` | `id: CorrelationId` (or [`correlation_core::current`] anywhere) |
//!
//! The closest drop-in for `RequestId::default().reuse_id(ReuseId::Use)`, keeping its
//! ID format and its trust in any (safe) incoming value:
//!
//! ```
//! use correlation_poem::correlation_core::strategy::{AnySafe, HyphenatedUuidV4};
//! use correlation_poem::{Correlation, CorrelationConfig, CorrelationId};
//! use poem::{EndpointExt, Route, get, handler, test::TestClient};
//!
//! #[handler]
//! fn index(id: CorrelationId) -> String {
//!     id.to_string()
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = CorrelationConfig::builder()
//!     .generator(HyphenatedUuidV4)
//!     .validator(AnySafe)
//!     .build()?;
//! let client = TestClient::new(Route::new().at("/", get(index)).with(Correlation::from(config)));
//!
//! let response = client.get("/").header("x-request-id", "foobar").send().await;
//! response.assert_header("x-request-id", "foobar");
//!
//! let response = client.get("/").send().await;
//! assert_eq!(response.0.header("x-request-id").unwrap().len(), 36);
//! # Ok(())
//! # }
//! ```
//!
//! poem's `Tracing` middleware logs one `tracing` event per response (`response` with
//! the status and duration, or `error`). Place it **inside** `Correlation`, i.e. write
//! `.with(Tracing)` before `.with(Correlation::...)`: its events are then emitted while
//! the ID is current, so a formatter that reads [`correlation_core::current`] shows it (through
//! tracing's `log` feature, `correlation_core::format` prints `[<id>]` on them). Placed
//! outside, its events come after the scope has ended and carry no ID. `Tracing` logs an
//! `Err` returned from inside it (such as a `Route`'s 404) by its message only; to see
//! the status, turn errors into responses inside it:
//!
//! ```
//! use correlation_poem::Correlation;
//! use poem::middleware::{CatchPanic, Tracing};
//! use poem::{EndpointExt, Route};
//!
//! // Cargo.toml: `tracing = { version = "0.1", features = ["log"] }`, so `Tracing`'s events
//! // reach env_logger.
//! env_logger::Builder::new()
//!     .filter_level(log::LevelFilter::Info)
//!     .format(correlation_poem::correlation_core::format)
//!     .init();
//! let app = Route::new()
//!     .with(CatchPanic::new())
//!     .catch_all_error(|err| async move { err.into_response() })
//!     .with(Tracing) // inside ours
//!     .with(Correlation::default());
//! // `GET /` prints: INFO  [<id>] poem::middleware::tracing_mw: response status=404 Not Found ...
//! ```
//!
//! # Whom to trust
//!
//! A [`TrustPolicy::FromPeers`] honours incoming IDs only from the listed networks, by the
//! connection's peer address (`Request::remote_addr`), a socket address for poem's TCP
//! listeners. An app on a Unix socket, or whose own middleware records the address, tells
//! the middleware where it is with [`Correlation::peer_address`]. A request without one (a
//! request made in memory, too) is answered `500` and an `ERROR` names the fix; it is
//! never trusted silently.
//!
//! # Caveats
//!
//! - Requests to paths the configuration skips pass through untouched: no ID, no
//!   header, errors returned as errors.
//! - An error turned into a response here no longer reaches middlewares outside
//!   `Correlation` as an `Err`; that is one more reason to keep it outermost.
//!
//! ## Feature Flags
//!
//! | feature | enables |
//! |---|---|
//! | `env-logger` (default) | [`correlation_core::format`], [`correlation_core::LogFormat`]: `[<id>]` on every `env_logger` line |
//! | `kv` | [`correlation_core::CorrelationLogger`]: `correlation_id` as a key-value on every `log` record |
//! | `request-log` | [`correlation_core::request_log`]: a per-request log level from trusted callers, and each request's `DEBUG` lines kept and written only if it fails (a `5xx` response, a panic, an `ERROR`) |
//! | `serde` | `Serialize` / `Deserialize` for the ID, job IDs and the job carrier |
//! | `tracing` | each request runs in a `tracing` span `correlation` recording `correlation_id`, entered for the endpoint, its future and every poll of a streamed body |
//! | `opentelemetry` | `correlation_core::strategy::OpenTelemetryTraceId`: the current OpenTelemetry trace ID as the generated ID |
//! | `sentry` | each request gets its own Sentry hub, tagged `transaction_id` (see `sentry_tag`) with the ID |
//! | `reqwest` | `correlation_core::propagation::PropagateCorrelationMiddleware` for `reqwest-middleware` 0.4 and 0.5 clients |
//! | `tower` | `correlation_core::propagation::PropagateCorrelationLayer` for tower HTTP clients |
//! | `apalis` | `correlation_core::propagation::JobContextLayer`: apalis 1 jobs run in the context they were enqueued with |
//! | `nats` | `correlation_core::propagation::{inject_current, message_context}` for NATS message headers, on publish and on receipt |
//! | `lapin` | `correlation_core::propagation::{inject_current, message_context}` for the AMQP header table (RabbitMQ), on publish and on receipt |
//! | `mqtt` | `correlation_core::propagation::{inject_current, message_context}` for MQTT v5 user properties, on publish and on receipt |
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

pub use extract::{CorrelationId, MissingCorrelation};
pub use middleware::{Correlation, CorrelationEndpoint, PeerAddress};

/// The core crate under its own name, so a dependency on this adapter alone is enough.
pub use correlation_core;
pub use correlation_core::{CorrelationConfig, IdSource, OnInvalid, Outcome, TrustPolicy};

#[cfg(test)]
mod tests;
