//! Unit tests over poem's own harness (`TestClient`), plus one real socket for the
//! WebSocket upgrade, which `TestClient` cannot perform.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use correlation_core::test_util::LogCapture;
use correlation_core::{CorrelationFutureExt, current};
use futures_util::StreamExt;
use poem::http::{HeaderMap, StatusCode};
use poem::middleware::{CatchPanic, RequestId, ReuseId, Tracing};
use poem::test::{TestClient, TestResponse};
use poem::web::websocket::{Message, WebSocket};
use poem::{Body, Endpoint, EndpointExt, IntoResponse, Request, Response, Route, get, handler};

use crate::{Correlation, CorrelationConfig, CorrelationEndpoint, CorrelationId, OnInvalid};

const VALID: &str = "9e6454c421d54e4aa66ab28f15576414";
const HEADER: &str = "x-request-id";

/// The correlation headers of a response: there must be exactly one.
fn ids(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(HEADER)
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .collect()
}

fn the_id(response: &TestResponse) -> String {
    let ids = ids(response.0.headers());
    assert_eq!(ids.len(), 1, "exactly one correlation header: {ids:?}");
    ids.into_iter().next().unwrap()
}

fn is_32_hex(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

fn current_string() -> String {
    current().map(|id| id.to_string()).unwrap_or_default()
}

#[handler]
fn show_id(id: CorrelationId) -> String {
    id.to_string()
}

#[handler]
fn show_header(request: &Request) -> String {
    let values: Vec<_> = request.headers().get_all(HEADER).iter().collect();
    assert_eq!(values.len(), 1, "the handler sees exactly one header");
    values[0].to_str().unwrap().to_owned()
}

#[handler]
fn optional_id(id: Option<CorrelationId>) -> String {
    id.map_or_else(|| "none".to_owned(), |id| id.to_string())
}

#[handler]
fn teapot() -> poem::Result<&'static str> {
    Err(poem::Error::from_string(
        "short and stout",
        StatusCode::IM_A_TEAPOT,
    ))
}

#[handler]
fn boom() -> &'static str {
    panic!("boom")
}

#[handler]
fn sets_headers() -> Response {
    Response::builder()
        .header(HEADER, "handler-set")
        .header(HEADER, "handler-set-twice")
        .header("set-cookie", "a=1")
        .header("set-cookie", "b=2")
        .body("ok")
}

#[handler]
fn streaming() -> Body {
    let chunks = futures_util::stream::iter(1..=3).then(|n| async move {
        tokio::task::yield_now().await;
        log::info!("streaming chunk {n}");
        Ok::<_, std::io::Error>(format!("{n}:{};", current_string()))
    });
    Body::from_bytes_stream(chunks)
}

fn app() -> impl Endpoint<Output = Response> {
    Route::new()
        .at("/id", get(show_id))
        .at("/header", get(show_header))
        .at("/optional", get(optional_id))
        .at("/teapot", get(teapot))
        .at("/panic", get(boom))
        .at("/headers", get(sets_headers))
        .at("/stream", get(streaming))
        .with(CatchPanic::new())
        .with(Correlation::default())
}

#[tokio::test]
async fn a_valid_id_is_kept_seen_by_the_handler_and_echoed() {
    let client = TestClient::new(app());
    for valid in [
        VALID,
        "9E6454C421D54E4AA66AB28F15576414",
        "3758c31e-1177-4540-ba33-0109c405579a",
    ] {
        let response = client.get("/id").header(HEADER, valid).send().await;
        response.assert_status_is_ok();
        assert_eq!(the_id(&response), valid);
        response.assert_text(valid).await;
    }
}

#[tokio::test]
async fn no_or_empty_header_gets_a_fresh_id() {
    let client = TestClient::new(app());
    for response in [
        client.get("/id").send().await,
        client.get("/id").header(HEADER, "").send().await,
    ] {
        let id = the_id(&response);
        assert!(is_32_hex(&id), "{id}");
        response.assert_text(id).await;
    }
}

#[tokio::test]
async fn an_invalid_id_is_replaced_with_one_warning_naming_only_the_new_id() {
    let logs = LogCapture::install();
    let client = TestClient::new(app());
    let old = "bad-uuid-from-the-poem-unit-test";
    let response = client.get("/header").header(HEADER, old).send().await;
    let id = the_id(&response);
    assert!(is_32_hex(&id));
    // The handler sees the final ID in the request header.
    response.assert_text(&id).await;
    let warnings = logs.filtered(|r| r.level == log::Level::Warn && r.message.contains(&id));
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].correlation_id.as_deref(), Some(id.as_str()));
    assert!(logs.records_containing(old).is_empty());
}

#[tokio::test]
async fn the_first_of_two_incoming_headers_counts() {
    let client = TestClient::new(app());
    let other = "3758c31e11774540ba330109c405579a";
    let response = client
        .get("/header")
        .header(HEADER, VALID)
        .header(HEADER, other)
        .send()
        .await;
    assert_eq!(the_id(&response), VALID);
    response.assert_text(VALID).await;
}

#[tokio::test]
async fn sequential_calls_are_not_sticky() {
    let client = TestClient::new(app());
    let mut seen = Vec::new();
    for _ in 0..10 {
        let response = client.get("/id").send().await;
        let id = the_id(&response);
        response.assert_text(&id).await;
        assert_eq!(current(), None, "nothing leaks out of the scope");
        assert!(!seen.contains(&id), "{id} was reused");
        seen.push(id);
    }
    // An accepted ID does not stick either.
    let response = client.get("/id").header(HEADER, VALID).send().await;
    assert_eq!(the_id(&response), VALID);
    let response = client.get("/id").send().await;
    assert_ne!(the_id(&response), VALID);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_each_see_only_their_own_id_in_middleware_and_handler() {
    #[handler]
    async fn slow(request: &Request) -> String {
        let header = request.header(HEADER).unwrap_or_default().to_owned();
        for _ in 0..5 {
            assert_eq!(current_string(), header, "handler");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        current_string()
    }

    let app = Route::new()
        .at("/", get(slow))
        // A middleware inside ours sees the request's ID before and after the handler.
        .around(|next, request| async move {
            let expected = request.header(HEADER).unwrap_or_default().to_owned();
            assert_eq!(current_string(), expected, "middleware, before");
            tokio::task::yield_now().await;
            let response = next.call(request).await?.into_response();
            assert_eq!(current_string(), expected, "middleware, after");
            Ok(response.with_header("x-seen-by-middleware", expected))
        })
        .with(Correlation::default());
    let client = std::sync::Arc::new(TestClient::new(app));

    let tasks: Vec<_> = (0..16)
        .map(|n| {
            let client = client.clone();
            // Strict UUID v4: `4` at index 12, `8` at index 16.
            let id = format!("{n:012x}4000800000000000{n:04x}");
            correlation_core::spawn(async move {
                let response = client.get("/").header(HEADER, &id).send().await;
                assert_eq!(the_id(&response), id);
                response.assert_header("x-seen-by-middleware", &id);
                response.assert_text(&id).await;
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test]
async fn not_found_carries_exactly_one_header() {
    let client = TestClient::new(app());
    let response = client.get("/nowhere").header(HEADER, VALID).send().await;
    response.assert_status(StatusCode::NOT_FOUND);
    assert_eq!(the_id(&response), VALID);
}

#[tokio::test]
async fn an_error_returned_by_the_endpoint_leaves_as_a_response_with_the_header() {
    let app = app();
    // Called directly: the middleware answers `Ok`, poem's error already converted.
    let response = app
        .call(
            Request::builder()
                .uri_str("/teapot")
                .header(HEADER, VALID)
                .finish(),
        )
        .await
        .expect("errors become responses");
    assert_eq!(response.status(), StatusCode::IM_A_TEAPOT);
    assert_eq!(ids(response.headers()), [VALID]);
    assert_eq!(
        response.into_body().into_string().await.unwrap(),
        "short and stout"
    );
}

#[tokio::test]
async fn a_panic_caught_inside_is_a_500_with_the_header() {
    let client = TestClient::new(app());
    let response = client.get("/panic").header(HEADER, VALID).send().await;
    response.assert_status(StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(the_id(&response), VALID);
    // The app goes on serving.
    client.get("/id").send().await.assert_status_is_ok();
}

#[tokio::test]
async fn a_panic_caught_outside_leaves_no_header_which_is_why_catch_panic_goes_inside() {
    let wrong_order = Route::new()
        .at("/panic", get(boom))
        .with(Correlation::default())
        .with(CatchPanic::new());
    let response = TestClient::new(wrong_order).get("/panic").send().await;
    response.assert_status(StatusCode::INTERNAL_SERVER_ERROR);
    assert!(ids(response.0.headers()).is_empty());
}

#[tokio::test]
async fn a_header_the_handler_set_is_replaced_and_other_headers_are_untouched() {
    let client = TestClient::new(app());
    let response = client.get("/headers").header(HEADER, VALID).send().await;
    assert_eq!(the_id(&response), VALID);
    let cookies: Vec<_> = response.0.headers().get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
}

#[tokio::test]
async fn a_streaming_body_is_produced_inside_the_scope() {
    let logs = LogCapture::install();
    let client = TestClient::new(app());
    let id = "6c1b7e3a2f9d4c8e9b0a1d2e3f4a5b6c";
    let response = client.get("/stream").header(HEADER, id).send().await;
    assert_eq!(the_id(&response), id);
    // The body is read here, after the middleware returned: each chunk still sees the ID.
    response.assert_text(format!("1:{id};2:{id};3:{id};")).await;
    let lines: Vec<_> = logs
        .records_for(id)
        .into_iter()
        .map(|record| record.message)
        .filter(|message| message.starts_with("streaming chunk"))
        .collect();
    assert_eq!(
        lines,
        [
            "streaming chunk 1",
            "streaming chunk 2",
            "streaming chunk 3"
        ]
    );
}

#[tokio::test]
async fn the_endpoints_call_itself_runs_in_the_scope() {
    /// An endpoint that does its work in `call`, before any future is polled.
    struct Eager;

    impl Endpoint for Eager {
        type Output = String;

        fn call(&self, _request: Request) -> impl Future<Output = poem::Result<String>> + Send {
            std::future::ready(Ok(current_string()))
        }
    }

    let client = TestClient::new(Eager.with(Correlation::default()));
    client
        .get("/")
        .header(HEADER, VALID)
        .send()
        .await
        .assert_text(VALID)
        .await;
}

#[tokio::test]
async fn errors_are_turned_into_responses_inside_the_scope() {
    #[derive(Debug)]
    struct LoudError;

    impl std::fmt::Display for LoudError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("loud")
        }
    }

    impl std::error::Error for LoudError {}

    impl poem::error::ResponseError for LoudError {
        fn status(&self) -> StatusCode {
            StatusCode::CONFLICT
        }

        fn as_response(&self) -> Response {
            log::info!("converting a loud error");
            StatusCode::CONFLICT.into_response()
        }
    }

    #[handler]
    fn fails() -> Result<&'static str, LoudError> {
        Err(LoudError)
    }

    let logs = LogCapture::install();
    let id = "4c2a9e7b1d3f4a5c8e6b0d2f4a6c8e0b";
    let app = Route::new()
        .at("/", get(fails))
        .with(Correlation::default());
    let response = TestClient::new(app)
        .get("/")
        .header(HEADER, id)
        .send()
        .await;
    response.assert_status(StatusCode::CONFLICT);
    assert_eq!(the_id(&response), id);
    assert!(
        logs.records_for(id)
            .iter()
            .any(|r| r.message == "converting a loud error")
    );
}

#[tokio::test]
async fn a_request_dropped_before_completion_drops_the_endpoint_inside_the_scope() {
    /// Logs when dropped, as request guards and spans do.
    struct Guard;

    impl Drop for Guard {
        fn drop(&mut self) {
            log::info!("guard dropped");
        }
    }

    #[handler]
    async fn never() -> &'static str {
        let _guard = Guard;
        std::future::pending::<()>().await;
        "unreachable"
    }

    let logs = LogCapture::install();
    let id = "5d3b0f8c2e4a4b6d9f7c1e3a5b7d9f1c";
    let app = Route::new()
        .at("/", get(never))
        .with(Correlation::default());
    let request = Request::builder().uri_str("/").header(HEADER, id).finish();
    let timed_out = tokio::time::timeout(Duration::from_millis(20), app.call(request)).await;
    assert!(timed_out.is_err());
    assert!(
        logs.records_for(id)
            .iter()
            .any(|r| r.message == "guard dropped")
    );
}

#[tokio::test]
async fn the_extractor_fails_with_a_500_naming_the_middleware_without_it() {
    let client = TestClient::new(
        Route::new()
            .at("/", get(show_id))
            .at("/opt", get(optional_id)),
    );
    let response = client.get("/").send().await;
    response.assert_status(StatusCode::INTERNAL_SERVER_ERROR);
    response
        .assert_text(
            "missing correlation id: is `correlation_poem::Correlation` installed around this endpoint?",
        )
        .await;
    client.get("/opt").send().await.assert_text("none").await;
}

#[tokio::test]
async fn skipped_paths_pass_through_untouched() {
    let config = CorrelationConfig::builder()
        .skip_paths(["/optional"])
        .build()
        .unwrap();
    let app = Route::new()
        .at("/optional", get(optional_id))
        .with(Correlation::with_config(config));
    let client = TestClient::new(app);
    let response = client.get("/optional").header(HEADER, VALID).send().await;
    assert!(ids(response.0.headers()).is_empty());
    response.assert_text("none").await;
}

#[tokio::test]
async fn a_rejected_id_gets_400_with_a_fresh_id_and_never_reaches_the_endpoint() {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let config = CorrelationConfig::builder()
        .on_invalid(OnInvalid::Reject)
        .build()
        .unwrap();
    let app = Route::new()
        .at(
            "/",
            get(poem::endpoint::make_sync(|_| {
                CALLS.fetch_add(1, Ordering::SeqCst);
                "called"
            })),
        )
        .with(Correlation::with_config(config));
    let client = TestClient::new(app);
    let response = client.get("/").header(HEADER, "test").send().await;
    response.assert_status(StatusCode::BAD_REQUEST);
    response.assert_content_type("text/plain; charset=utf-8");
    assert!(is_32_hex(&the_id(&response)));
    response.assert_text("invalid correlation id").await;
    assert_eq!(CALLS.load(Ordering::SeqCst), 0);
    // A valid ID still goes through.
    client
        .get("/")
        .header(HEADER, VALID)
        .send()
        .await
        .assert_text("called")
        .await;
    assert_eq!(CALLS.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn poems_tracing_inside_ours_logs_under_the_id_and_outside_it_does_not() {
    let logs = LogCapture::install();
    let from_tracing = |record: &correlation_core::test_util::CapturedRecord| {
        record.target.starts_with("poem::middleware::tracing")
    };

    let inside = Route::new()
        .at("/", get(show_id))
        .with(Tracing)
        .with(Correlation::default());
    let id = "0f7c2b4e9a1d4e6f8b3c5d7e9f1a2b3c";
    TestClient::new(inside)
        .get("/")
        .header(HEADER, id)
        .send()
        .await
        .assert_status_is_ok();
    let lines: Vec<_> =
        logs.filtered(|r| from_tracing(r) && r.correlation_id.as_deref() == Some(id));
    assert!(
        lines
            .iter()
            .any(|r| r.message.contains("response") && r.message.contains("200")),
        "{lines:?}"
    );

    let outside = Route::new()
        .at("/", get(show_id))
        .with(Correlation::default())
        .with(Tracing);
    let id = "1a8d3c5f0b2e4f7a9c4d6e8f0a2b3c4d";
    TestClient::new(outside)
        .get("/")
        .header(HEADER, id)
        .send()
        .await
        .assert_status_is_ok();
    assert!(
        logs.filtered(|r| from_tracing(r) && r.correlation_id.as_deref() == Some(id))
            .is_empty()
    );
    assert!(
        !logs
            .filtered(|r| from_tracing(r) && r.correlation_id.is_none())
            .is_empty()
    );
}

#[tokio::test]
async fn poems_request_id_ignores_or_trusts_the_incoming_id_as_the_docs_say() {
    let with = |middleware: RequestId| {
        TestClient::new(
            Route::new()
                .at("/", get(poem::endpoint::make_sync(|_| "ok")))
                .with(middleware),
        )
    };
    // Default: the incoming ID is ignored.
    let response = with(RequestId::default())
        .get("/")
        .header(HEADER, VALID)
        .send()
        .await;
    assert_ne!(response.0.header(HEADER), Some(VALID));
    // `ReuseId::Use`: any value is trusted, including ones ours replaces.
    let response = with(RequestId::default().reuse_id(ReuseId::Use))
        .get("/")
        .header(HEADER, "test")
        .send()
        .await;
    assert_eq!(response.0.header(HEADER), Some("test"));
    // And errors (here the 404) leave without the header.
    let response = with(RequestId::default()).get("/nowhere").send().await;
    response.assert_status(StatusCode::NOT_FOUND);
    assert_eq!(response.0.header(HEADER), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_upgrade_is_a_101_with_the_header_and_the_socket_keeps_the_id() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[handler]
    fn echo(upgrade: WebSocket, id: CorrelationId) -> impl IntoResponse {
        upgrade.on_upgrade(move |socket| {
            async move {
                let (mut sink, mut stream) = socket.split();
                while let Some(Ok(Message::Text(text))) = stream.next().await {
                    log::info!("websocket received {text}");
                    let reply = format!("{text} from {}", current_string());
                    if futures_util::SinkExt::send(&mut sink, Message::Text(reply))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            }
            .with_correlation_id(id.into_inner())
        })
    }

    let logs = LogCapture::install();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Route::new()
        .at("/ws", get(echo))
        .with(Correlation::default());
    let server = correlation_core::spawn(async move {
        let acceptor = poem::listener::TcpAcceptor::from_tokio(listener).unwrap();
        poem::Server::new_with_acceptor(acceptor).run(app).await
    });

    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let id = "2b9e4d6f1c3a4b5d8e7f9a0b1c2d3e4f";
    let handshake = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         {HEADER}: {id}\r\n\r\n"
    );
    socket.write_all(handshake.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(socket.read_u8().await.unwrap());
    }
    let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert_eq!(
        head.matches(&format!("{HEADER}: {id}\r\n")).count(),
        1,
        "{head}"
    );
    assert_eq!(head.matches(HEADER).count(), 1, "{head}");

    // One masked client text frame, then the server's unmasked echo.
    let text = b"hello poem";
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x80 | text.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(text.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    socket.write_all(&frame).await.unwrap();
    let mut header = [0u8; 2];
    socket.read_exact(&mut header).await.unwrap();
    assert_eq!(header[0], 0x81);
    let mut reply = vec![0u8; usize::from(header[1])];
    socket.read_exact(&mut reply).await.unwrap();
    assert_eq!(
        String::from_utf8(reply).unwrap(),
        format!("hello poem from {id}")
    );
    assert!(
        logs.records_for(id)
            .iter()
            .any(|r| r.message == "websocket received hello poem"),
        "{:?}",
        logs.records_for(id)
    );
    server.abort();
}

#[test]
fn the_middleware_and_endpoint_are_send_sync_and_debug() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Correlation>();
    assert_send_sync::<CorrelationEndpoint<Route>>();
    assert_send_sync::<CorrelationId>();

    let endpoint = poem::Middleware::transform(&Correlation::new(), Route::new());
    let debug = format!("{endpoint:?}");
    assert!(
        debug.starts_with("CorrelationEndpoint { inner: \"poem::"),
        "{debug}"
    );
    assert_eq!(endpoint.config().request_header_name(), HEADER);
}
