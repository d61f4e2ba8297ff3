//! What a version split between our crates and the application's breaks silently, proved
//! at run time on the newest releases.

use std::sync::Arc;

use axum::http::{HeaderMap, Request, StatusCode};
use axum::routing::get;
use correlation_axum::CorrelationLayer;
use correlation_ecosystem::{CAPTURED_MESSAGE, actix_app, axum_app, poem_app};
use tower::{ServiceBuilder, ServiceExt};
use tower_http::cors::CorsLayer;
use tower_http::request_id::RequestId;
use tower_http::trace::TraceLayer;

const ID: &str = "9e6454c421d54e4aa66ab28f15576414";

/// The Sentry tag our crates set on every request's hub (the default name).
const TAG: &str = "transaction_id";

/// One test for all three adapters: the application's Sentry client is global, so its
/// events are checked in one place.
#[test]
fn sentry_events_carry_the_tag_in_the_applications_own_client() {
    let transport = sentry::test::TestTransport::new();
    let mut options = sentry::ClientOptions::default();
    options.dsn = Some("https://public@sentry.invalid/1".parse().unwrap());
    options.transport = Some(Arc::new(transport.clone()));
    let _sentry = sentry::init(options);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let response = axum_app(String::new())
            .oneshot(
                Request::get("/capture")
                    .header("x-request-id", ID)
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);

        let client = poem::test::TestClient::new(poem_app());
        client
            .get("/capture")
            .header("x-request-id", ID.replace('9', "8"))
            .send()
            .await
            .assert_status_is_ok();
    });
    actix_web::rt::System::new().block_on(async {
        let app = actix_web::test::init_service(actix_app()).await;
        let request = actix_web::test::TestRequest::get()
            .uri("/capture")
            .insert_header(("x-request-id", ID.replace('9', "7")))
            .to_request();
        let response = actix_web::test::call_service(&app, request).await;
        assert!(response.status().is_success());
    });

    let tags: Vec<Option<String>> = transport
        .fetch_and_clear_events()
        .into_iter()
        .filter(|event| event.message.as_deref() == Some(CAPTURED_MESSAGE))
        .map(|event| event.tags.get(TAG).cloned())
        .collect();
    assert_eq!(
        tags,
        [ID.to_owned(), ID.replace('9', "8"), ID.replace('9', "7")].map(Some),
        "events captured under axum, poem and actix-web must carry the `{TAG}` tag in the \
         application's own Sentry client (empty tags: our sentry-core is another version \
         than the application's `sentry`)"
    );
}

/// The README's reqwest recipe, on a real outgoing call between two real servers.
#[tokio::test]
async fn the_readme_reqwest_client_carries_the_id_on_a_real_call() {
    let downstream = serve(axum::Router::new().route(
        "/",
        get(|headers: HeaderMap| async move {
            headers.get("x-request-id").map_or_else(
                || "none".to_owned(),
                |value| value.to_str().unwrap().to_owned(),
            )
        }),
    ))
    .await;
    let upstream = serve(axum_app(format!("http://{downstream}/"))).await;

    let response = reqwest::Client::new()
        .get(format!("http://{upstream}/call"))
        .header("x-request-id", ID)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], ID);
    assert_eq!(
        response.text().await.unwrap(),
        ID,
        "what the downstream service received"
    );
}

/// tower-http's `TraceLayer` (reading our ID from its `RequestId` extension for its span)
/// and `CorsLayer`, together with our layer in one `ServiceBuilder`, our layer first
/// (outermost) as the README says.
#[tokio::test]
async fn tower_http_trace_and_cors_layers_work_with_ours() {
    let spans = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = Arc::clone(&spans);
    let app = axum::Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(
            ServiceBuilder::new()
                .layer(CorrelationLayer::new())
                .layer(TraceLayer::new_for_http().make_span_with(
                    move |request: &Request<axum::body::Body>| {
                        let id = request
                            .extensions()
                            .get::<RequestId>()
                            .map(|id| id.header_value().to_str().unwrap().to_owned());
                        seen.lock().unwrap().push(id.clone().unwrap_or_default());
                        tracing::info_span!("http", request_id = id)
                    },
                ))
                // CORS needs an inner body with a `Default`, which TraceLayer's has not.
                .layer(
                    CorsLayer::new()
                        .allow_origin(tower_http::cors::Any)
                        .allow_headers([axum::http::HeaderName::from_static("x-request-id")])
                        .expose_headers([axum::http::HeaderName::from_static("x-request-id")]),
                ),
        );

    let preflight = app
        .clone()
        .oneshot(
            Request::options("/")
                .header("origin", "https://app.example")
                .header("access-control-request-method", "GET")
                .header("access-control-request-headers", "x-request-id")
                .header("x-request-id", ID)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(preflight.headers()["x-request-id"], ID);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");

    let response = app
        .oneshot(
            Request::get("/")
                .header("origin", "https://app.example")
                .header("x-request-id", ID)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], ID);
    assert_eq!(
        response.headers()["access-control-expose-headers"],
        "x-request-id"
    );
    assert_eq!(
        *spans.lock().unwrap(),
        [ID, ID],
        "TraceLayer's span reads our ID, for the preflight and the request"
    );
}

async fn serve(app: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // The test server starts without a correlation ID, on purpose.
    #[allow(clippy::disallowed_methods)]
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}
