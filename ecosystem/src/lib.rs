//! A small application on the newest release of every framework and integration, with
//! every feature of our adapters on and only the adapters as dependencies — what a new
//! user's `Cargo.toml` looks like.
//!
//! Its tests (`tests/ecosystem.rs`, a step of `cargo xtask ci`) prove at run time what a
//! version split breaks silently: a Sentry event captured under each adapter carries the
//! correlation tag in the application's own Sentry client; a `reqwest-middleware` client
//! built the way the README says puts the header on a real outgoing call; tower-http's
//! `TraceLayer`, `CorsLayer` and `RequestId` work together with our layer. `cargo xtask
//! ecosystem` also fails when `cargo tree --duplicates` shows a crate of which our crates
//! pull in a second version.

use axum::Router;
use axum::routing::get;
use correlation_axum::correlation_core::CorrelationConfig;
use correlation_axum::correlation_core::propagation::PropagateCorrelationMiddleware;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};

/// The message of the Sentry event every app's `/capture` route sends.
pub const CAPTURED_MESSAGE: &str = "captured under a correlation ID";

/// The `reqwest-middleware` client of the README's "Outgoing HTTP" recipe.
pub fn outgoing_client(config: CorrelationConfig) -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new())
        .with(PropagateCorrelationMiddleware::with_config(config))
        .build()
}

/// axum: `/capture` sends a Sentry event; `/call` calls `downstream` with the README's
/// client and answers with what that service answered.
pub fn axum_app(downstream: String) -> Router {
    use correlation_axum::CorrelationLayer;

    let client = outgoing_client(CorrelationConfig::default());
    let call = move || {
        let (client, downstream) = (client.clone(), downstream.clone());
        async move {
            let response = client
                .get(downstream)
                .send()
                .await
                .expect("the downstream call");
            response.text().await.expect("the downstream body")
        }
    };
    Router::new()
        .route("/capture", get(capture_with_sentry))
        .route("/call", get(call))
        .layer(CorrelationLayer::new())
}

async fn capture_with_sentry() -> &'static str {
    sentry::capture_message(CAPTURED_MESSAGE, sentry::Level::Error);
    "captured"
}

/// actix-web: `/capture` sends a Sentry event.
pub fn actix_app() -> actix_web::App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    actix_web::App::new()
        .route("/capture", actix_web::web::get().to(capture_with_sentry))
        .wrap(correlation_actix::Correlation::default())
}

/// poem: `/capture` sends a Sentry event.
pub fn poem_app() -> impl poem::Endpoint {
    use poem::EndpointExt;

    #[poem::handler]
    fn capture() -> &'static str {
        sentry::capture_message(CAPTURED_MESSAGE, sentry::Level::Error);
        "captured"
    }

    poem::Route::new()
        .at("/capture", poem::get(capture))
        .with(correlation_poem::Correlation::default())
}
