// Tests start tasks outside any request on purpose.
#![allow(clippy::disallowed_methods)]

use std::convert::Infallible;

use axum::Router;
use axum::body::Body;
use axum::response::IntoResponse;
use axum::routing::get;
use bytes::Bytes;
use correlation_core::test_util::LogCapture;
use correlation_core::{CorrelationConfig, OnInvalid, current};
use futures_util::stream;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::BodyExt;
use tower::{ServiceBuilder, ServiceExt};
use tower_http::catch_panic::CatchPanicLayer;

use crate::{CorrelationId, CorrelationLayer, CorrelationService};

const VALID: &str = "3758c31e-1177-4540-ba33-0109c405579a";

fn app() -> Router {
    app_with(CorrelationConfig::default())
}

fn app_with(config: CorrelationConfig) -> Router {
    Router::new()
        .route(
            "/id",
            get(|id: CorrelationId| async move { id.to_string() }),
        )
        .route(
            "/header",
            get(|headers: HeaderMap| async move {
                let values: Vec<_> = headers
                    .get_all("x-request-id")
                    .iter()
                    .map(|v| v.to_str().unwrap().to_owned())
                    .collect();
                values.join(",")
            }),
        )
        .route(
            "/sets-own-header",
            get(|| async { ([("x-request-id", "from-handler")], "hi") }),
        )
        .route(
            "/optional",
            get(|id: Option<CorrelationId>| async move {
                id.map_or_else(|| "none".to_owned(), |id| id.to_string())
            }),
        )
        .route(
            "/panic",
            get(|| async {
                if true {
                    panic!("handler panicked");
                }
                "unreachable"
            }),
        )
        .route(
            "/stream",
            get(|| async {
                let chunks = stream::iter(0..3).map(|n| {
                    log::info!("streaming chunk {n}");
                    Ok::<_, Infallible>(Bytes::from(format!("{n};")))
                });
                Body::from_stream(chunks)
            }),
        )
        .layer(CatchPanicLayer::new())
        .layer(CorrelationLayer::with_config(config))
}

use futures_util::StreamExt as _;

fn get_request(path: &str, id: Option<&str>) -> Request<Body> {
    let mut builder = Request::get(path);
    if let Some(id) = id {
        builder = builder.header("x-request-id", id);
    }
    builder.body(Body::empty()).unwrap()
}

async fn call(app: &Router, request: Request<Body>) -> (Response<()>, String) {
    let response = app.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (
        Response::from_parts(parts, ()),
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

fn ids(response: &Response<()>) -> Vec<String> {
    response
        .headers()
        .get_all("x-request-id")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn valid_id_is_echoed_and_seen_by_the_handler() {
    let (response, body) = call(&app(), get_request("/id", Some(VALID))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(ids(&response), [VALID]);
    assert_eq!(body, VALID);
}

#[tokio::test]
async fn handler_sees_exactly_one_request_header_with_the_final_id() {
    let request = Request::get("/header")
        .header("x-request-id", "bad")
        .header("x-request-id", VALID)
        .body(Body::empty())
        .unwrap();
    let (response, body) = call(&app(), request).await;
    let final_id = ids(&response);
    assert_eq!(final_id.len(), 1);
    assert_ne!(
        final_id[0], VALID,
        "the first value counts, and it is invalid"
    );
    assert_eq!(body, final_id[0]);
}

#[tokio::test]
async fn sequential_calls_are_not_sticky() {
    let app = app();
    let mut seen = Vec::new();
    for _ in 0..10 {
        let (response, body) = call(&app, get_request("/id", None)).await;
        assert_eq!(ids(&response), std::slice::from_ref(&body));
        seen.push(body);
        assert_eq!(current(), None);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_each_see_only_their_own_id() {
    let logs = LogCapture::install();
    let app = Router::new()
        .route(
            "/",
            get(|id: CorrelationId| async move {
                log::info!("handler start {id}");
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                log::info!("handler end {id}");
                id.to_string()
            }),
        )
        .layer(CorrelationLayer::new());
    let sent: Vec<String> = (0..16)
        .map(|_| correlation_core::strategy::UuidV4::new_id().to_string())
        .collect();
    let tasks: Vec<_> = sent
        .iter()
        .map(|id| {
            let app = app.clone();
            let request = get_request("/", Some(id));
            tokio::spawn(async move { call(&app, request).await })
        })
        .collect();
    for (id, task) in sent.iter().zip(tasks) {
        let (response, body) = task.await.unwrap();
        assert_eq!(ids(&response), std::slice::from_ref(id));
        assert_eq!(&body, id);
        let lines = logs.records_for(id);
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().all(|line| line.message.ends_with(id.as_str())));
    }
}

#[tokio::test]
async fn not_found_panics_and_handler_headers_carry_exactly_one_id() {
    let app = app();
    let (response, _) = call(&app, get_request("/missing", Some(VALID))).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(ids(&response), [VALID]);

    let (response, _) = call(&app, get_request("/panic", Some(VALID))).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(ids(&response), [VALID]);

    let (response, _) = call(&app, get_request("/sets-own-header", Some(VALID))).await;
    assert_eq!(ids(&response), [VALID]);
}

#[tokio::test]
async fn streaming_body_is_produced_inside_the_scope() {
    let logs = LogCapture::install();
    let id = correlation_core::strategy::UuidV4::new_id().to_string();
    let (_, body) = call(&app(), get_request("/stream", Some(&id))).await;
    assert_eq!(body, "0;1;2;");
    let messages: Vec<_> = logs
        .records_for(&id)
        .into_iter()
        .map(|r| r.message)
        .collect();
    assert_eq!(
        messages,
        [
            "streaming chunk 0",
            "streaming chunk 1",
            "streaming chunk 2"
        ]
    );
}

#[tokio::test]
async fn extractor_without_the_layer_is_a_500_naming_the_layer() {
    let app: Router =
        Router::new().route("/", get(|id: CorrelationId| async move { id.to_string() }));
    let response = app.oneshot(get_request("/", Some(VALID))).await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("CorrelationLayer"));
}

#[tokio::test]
async fn reject_mode_answers_400_without_calling_the_handler() {
    let logs = LogCapture::install();
    let config = CorrelationConfig::builder()
        .on_invalid(OnInvalid::Reject)
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/",
            get(|| async {
                log::info!("reject-mode handler ran");
                "ran"
            }),
        )
        .layer(CorrelationLayer::with_config(config));
    let (response, body) = call(&app, get_request("/", Some("not-a-uuid"))).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body, "invalid correlation id");
    let id = ids(&response);
    assert_eq!(id.len(), 1);
    assert_eq!(id[0].len(), 32);
    assert!(
        logs.records_containing("reject-mode handler ran")
            .is_empty()
    );
    assert!(logs.records_containing("not-a-uuid").is_empty());
    let (response, body) = call(&app, get_request("/", Some(VALID))).await;
    assert_eq!((response.status(), body.as_str()), (StatusCode::OK, "ran"));
}

#[tokio::test]
async fn skipped_paths_get_no_id_and_no_header() {
    let config = CorrelationConfig::builder()
        .skip_paths(["/optional"])
        .build()
        .unwrap();
    let (response, body) = call(&app_with(config), get_request("/optional", Some(VALID))).await;
    assert!(ids(&response).is_empty());
    assert_eq!(body, "none");
}

#[tokio::test]
async fn works_around_any_tower_http_service() {
    let service = ServiceBuilder::new()
        .layer(CorrelationLayer::new())
        .service(tower::service_fn(|request: Request<()>| async move {
            let seen = request.headers()["x-request-id"].clone();
            assert_eq!(current().unwrap(), seen.to_str().unwrap());
            Ok::<_, Infallible>(Response::new(http_body_util::Full::new(Bytes::from("ok"))))
        }));
    let response = service
        .oneshot(Request::get("/").body(()).unwrap())
        .await
        .unwrap();
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(id.len(), 32);
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "ok"
    );
}

#[test]
fn layer_and_service_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<CorrelationLayer>();
    assert_send_sync::<CorrelationService<Router>>();
    fn assert_send<T: Send>() {}
    assert_send::<crate::CorrelationBody<Body>>();
}

#[tokio::test]
async fn handler_errors_carry_the_header() {
    let app = Router::new()
        .route(
            "/error",
            get(|| async {
                Err::<(), _>((StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response())
            }),
        )
        .layer(CorrelationLayer::new());
    let (response, _) = call(&app, get_request("/error", Some(VALID))).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(ids(&response), [VALID]);
}
