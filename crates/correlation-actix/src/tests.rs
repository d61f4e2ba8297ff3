// Tests start tasks outside any request on purpose.
#![allow(clippy::disallowed_methods)]

//! Unit tests with actix-web's own harness (`test::init_service`).

use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::HeaderValue;
use actix_web::middleware::Logger;
use actix_web::test::{self, TestRequest};
use actix_web::{App, Error, HttpRequest, HttpResponse, web};
use actix_web_lab::middleware::CatchPanic;
use correlation_core::test_util::LogCapture;
use correlation_core::{CorrelationFutureExt, current};
use futures_util::StreamExt;
use futures_util::future::join_all;

use crate::{CorrelatedError, Correlation, CorrelationConfig, CorrelationId, OnInvalid};

const VALID: &str = "3758c31e11774540ba330109c405579a";
const HEADER: &str = "x-request-id";

fn is_hex32(value: &str) -> bool {
    value.len() == 32 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The one correlation header of a response, failing if there are zero or several.
fn only_header<B>(response: &ServiceResponse<B>) -> String {
    only_value(response.headers().get_all(HEADER))
}

fn only_value<'a>(values: impl Iterator<Item = &'a HeaderValue>) -> String {
    let values: Vec<_> = values.collect();
    assert_eq!(values.len(), 1, "expected exactly one correlation header");
    values[0].to_str().unwrap().to_owned()
}

/// The request header as the handler receives it, each value on its own line.
async fn echo_request_header(req: HttpRequest) -> String {
    req.headers()
        .get_all(HEADER)
        .map(|value| value.to_str().unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

async fn id_handler(id: CorrelationId) -> String {
    log::info!("handling /id");
    id.to_string()
}

fn app(
    config: CorrelationConfig,
) -> App<
    impl actix_web::dev::ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = Error,
        InitError = (),
    >,
> {
    App::new()
        .route("/id", web::get().to(id_handler))
        .route("/header", web::get().to(echo_request_header))
        .route(
            "/error",
            web::get().to(|| async {
                Err::<String, _>(actix_web::error::ErrorInternalServerError("broken"))
            }),
        )
        .route(
            "/panic",
            web::get().to(|| async {
                if true {
                    panic!("handler panicked on purpose");
                }
                "unreachable"
            }),
        )
        .route(
            "/own-header",
            web::get().to(|| async {
                HttpResponse::Ok()
                    .append_header((HEADER, "from-handler"))
                    .append_header(("set-cookie", "a=1"))
                    .append_header(("set-cookie", "b=2"))
                    .finish()
            }),
        )
        .wrap(CatchPanic::default())
        .wrap(Correlation::with_config(config))
}

fn get(uri: &str) -> TestRequest {
    TestRequest::get().uri(uri)
}

#[actix_web::test]
async fn a_valid_incoming_id_is_kept_seen_by_the_handler_and_echoed() {
    let app = test::init_service(app(CorrelationConfig::default())).await;
    for (path, value) in [
        ("/id", VALID.to_owned()),
        ("/header", VALID.to_owned()),
        ("/id", VALID.to_uppercase()),
        ("/id", "3758c31e-1177-4540-ba33-0109c405579a".to_owned()),
    ] {
        let response = test::call_service(
            &app,
            get(path)
                .insert_header((HEADER, value.as_str()))
                .to_request(),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(only_header(&response), value);
        assert_eq!(test::read_body(response).await, value.as_bytes());
    }
}

#[actix_web::test]
async fn a_missing_or_empty_header_gets_a_fresh_id_the_handler_sees() {
    let app = test::init_service(app(CorrelationConfig::default())).await;
    for request in [get("/header"), get("/header").insert_header((HEADER, ""))] {
        let response = test::call_service(&app, request.to_request()).await;
        let echoed = only_header(&response);
        assert!(is_hex32(&echoed), "{echoed}");
        assert_eq!(test::read_body(response).await, echoed.as_bytes());
    }
}

#[actix_web::test]
async fn an_invalid_id_is_replaced_with_one_warning_that_never_names_it() {
    let logs = LogCapture::install();
    let app = test::init_service(app(CorrelationConfig::default())).await;
    let hostile = "bad-uuid-from-actix-test";
    let response = test::call_service(
        &app,
        get("/header").insert_header((HEADER, hostile)).to_request(),
    )
    .await;
    let echoed = only_header(&response);
    assert!(is_hex32(&echoed));
    assert_eq!(test::read_body(response).await, echoed.as_bytes());
    let warnings = logs.filtered(|r| r.level == log::Level::Warn && r.message.contains(&echoed));
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].correlation_id.as_deref(), Some(echoed.as_str()));
    assert!(logs.records_containing(hostile).is_empty());
}

#[actix_web::test]
async fn of_two_incoming_headers_the_first_counts_and_the_handler_sees_one() {
    let app = test::init_service(app(CorrelationConfig::default())).await;
    let other = "9e6454c421d54e4aa66ab28f15576414";
    let request = get("/header")
        .append_header((HEADER, VALID))
        .append_header((HEADER, other))
        .to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(only_header(&response), VALID);
    assert_eq!(test::read_body(response).await, VALID);
}

#[actix_web::test]
async fn several_incoming_names_leave_the_handler_one_header() {
    let config = CorrelationConfig::builder()
        .incoming_header_names(["x-correlation-id", HEADER])
        .build()
        .unwrap();
    let app = test::init_service(
        App::new()
            .route(
                "/",
                web::get().to(|req: HttpRequest| async move {
                    let first = only_value(req.headers().get_all("x-correlation-id"));
                    assert!(req.headers().get(HEADER).is_none());
                    first
                }),
            )
            .wrap(Correlation::with_config(config)),
    )
    .await;
    let response =
        test::call_service(&app, get("/").insert_header((HEADER, VALID)).to_request()).await;
    assert_eq!(
        only_value(response.headers().get_all("x-correlation-id")),
        VALID
    );
    assert_eq!(test::read_body(response).await, VALID);
}

#[actix_web::test]
async fn sequential_calls_are_not_sticky() {
    let app = test::init_service(app(CorrelationConfig::default())).await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..20 {
        let response = test::call_service(&app, get("/id").to_request()).await;
        let echoed = only_header(&response);
        assert_eq!(test::read_body(response).await, echoed.as_bytes());
        assert!(seen.insert(echoed), "an ID was reused");
        assert_eq!(current(), None);
    }
}

#[actix_web::test]
async fn concurrent_requests_each_see_only_their_own_id_in_middleware_and_handler() {
    let app = test::init_service(
        App::new()
            .route(
                "/",
                web::get().to(|req: HttpRequest, id: CorrelationId| async move {
                    for _ in 0..5 {
                        actix_web::rt::time::sleep(Duration::from_millis(1)).await;
                        assert_eq!(current().as_ref(), Some(&id.0));
                    }
                    assert_eq!(req.headers().get(HEADER).unwrap(), id.as_str());
                    id.to_string()
                }),
            )
            // An inner middleware: records the ID it sees in `call` and after the handler.
            .wrap_fn(|req, service| {
                let in_call = current();
                let future = service.call(req);
                async move {
                    let mut response = future.await?;
                    let after = current();
                    assert_eq!(in_call, after);
                    let seen = HeaderValue::from_str(in_call.unwrap().as_str()).unwrap();
                    response
                        .headers_mut()
                        .insert("x-seen".parse().unwrap(), seen);
                    Ok(response)
                }
            })
            .wrap(Correlation::default()),
    )
    .await;
    let ids: Vec<String> = (0..16)
        .map(|n| format!("{n:08x}1177454{}ba330109c405579a", n % 10))
        .collect();
    let responses = join_all(ids.iter().map(|id| {
        test::call_service(
            &app,
            get("/").insert_header((HEADER, id.as_str())).to_request(),
        )
    }))
    .await;
    for (id, response) in ids.iter().zip(responses) {
        assert_eq!(&only_header(&response), id);
        assert_eq!(response.headers().get("x-seen").unwrap(), id.as_str());
        assert_eq!(test::read_body(response).await, id.as_bytes());
    }
}

#[actix_web::test]
async fn the_scope_holds_on_actix_current_thread_runtime_across_await_and_spawn_local() {
    let app = test::init_service(
        App::new()
            .route(
                "/",
                web::get().to(|id: CorrelationId| async move {
                    // actix serves on a current-thread runtime inside a `LocalSet`.
                    assert_eq!(
                        tokio::runtime::Handle::current().runtime_flavor(),
                        tokio::runtime::RuntimeFlavor::CurrentThread
                    );
                    tokio::task::yield_now().await;
                    actix_web::rt::time::sleep(Duration::from_millis(2)).await;
                    let after_await = current();
                    let ours = correlation_core::spawn_local(async {
                        tokio::task::yield_now().await;
                        current()
                    });
                    let attached = actix_web::rt::spawn(
                        async { current() }.with_correlation_id(id.clone().into_inner()),
                    );
                    // A plain spawn starts a task of its own, without the ID.
                    let plain = actix_web::rt::spawn(async { current() });
                    let seen = [
                        after_await,
                        ours.await.unwrap(),
                        attached.await.unwrap(),
                        plain.await.unwrap(),
                    ];
                    let seen: Vec<String> = seen
                        .iter()
                        .map(|id| id.as_ref().map_or("-", |id| id.as_str()).to_owned())
                        .collect();
                    seen.join(" ")
                }),
            )
            .wrap(Correlation::default()),
    )
    .await;
    let response =
        test::call_service(&app, get("/").insert_header((HEADER, VALID)).to_request()).await;
    assert_eq!(
        test::read_body(response).await,
        format!("{VALID} {VALID} {VALID} -")
    );
}

#[actix_web::test]
async fn the_default_service_404_carries_one_header() {
    let app = test::init_service(app(CorrelationConfig::default())).await;
    let response = test::call_service(
        &app,
        get("/missing").insert_header((HEADER, VALID)).to_request(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(only_header(&response), VALID);
}

#[actix_web::test]
async fn a_handler_error_500_carries_one_header() {
    let app = test::init_service(app(CorrelationConfig::default())).await;
    let response = test::call_service(
        &app,
        get("/error").insert_header((HEADER, VALID)).to_request(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(only_header(&response), VALID);
}

#[actix_web::test]
async fn a_panic_caught_by_catch_panic_inside_carries_one_header() {
    let app = test::init_service(app(CorrelationConfig::default())).await;
    let error = test::try_call_service(
        &app,
        get("/panic").insert_header((HEADER, VALID)).to_request(),
    )
    .await
    .err()
    .expect("CatchPanic reports a panic as an error");
    // The response actix-web's dispatcher makes from the error.
    let response = error.error_response();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(only_value(response.headers().get_all(HEADER)), VALID);
    let wrapped = error.as_error::<CorrelatedError>().unwrap();
    assert_eq!(wrapped.id(), VALID);
    // The app goes on serving.
    let response =
        test::call_service(&app, get("/id").insert_header((HEADER, VALID)).to_request()).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[actix_web::test]
async fn an_err_from_inner_middleware_keeps_its_status_and_gets_one_header() {
    let app = test::init_service(
        App::new()
            .route("/", web::get().to(|| async { "unreachable" }))
            .wrap_fn(|_req, _service| async {
                Err::<ServiceResponse, _>(actix_web::error::ErrorForbidden("no entry"))
            })
            .wrap(Correlation::default()),
    )
    .await;
    let error = test::try_call_service(&app, get("/").insert_header((HEADER, VALID)).to_request())
        .await
        .err()
        .unwrap();
    assert_eq!(
        error.as_response_error().status_code(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(error.to_string(), "no entry");
    let response = error.error_response();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(only_value(response.headers().get_all(HEADER)), VALID);
    let inner = error.as_error::<CorrelatedError>().unwrap().inner();
    assert_eq!(inner.to_string(), "no entry");
}

#[actix_web::test]
async fn a_correlation_header_set_by_the_handler_is_replaced_others_are_kept() {
    let app = test::init_service(app(CorrelationConfig::default())).await;
    let response = test::call_service(
        &app,
        get("/own-header")
            .insert_header((HEADER, VALID))
            .to_request(),
    )
    .await;
    assert_eq!(only_header(&response), VALID);
    let cookies: Vec<_> = response.headers().get_all("set-cookie").collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
}

#[actix_web::test]
async fn logs_written_while_a_streaming_body_is_produced_carry_the_id() {
    let logs = LogCapture::install();
    let id = "aaaabbbbcccc4ddd8eeeffff00001111";
    let app = test::init_service(
        App::new()
            .route(
                "/stream",
                web::get().to(|| async {
                    let chunks = futures_util::stream::iter(0..3).then(|n| async move {
                        actix_web::rt::time::sleep(Duration::from_millis(1)).await;
                        log::info!("unit streaming chunk {n}");
                        Ok::<_, Error>(web::Bytes::from(format!("chunk {n}\n")))
                    });
                    HttpResponse::Ok().streaming(chunks)
                }),
            )
            .wrap(Correlation::default()),
    )
    .await;
    let response = test::call_service(
        &app,
        get("/stream").insert_header((HEADER, id)).to_request(),
    )
    .await;
    // Nothing is produced before the body is polled, outside the middleware's future.
    assert!(logs.records_containing("unit streaming chunk").is_empty());
    assert_eq!(
        test::read_body(response).await,
        "chunk 0\nchunk 1\nchunk 2\n"
    );
    let lines = logs.records_containing("unit streaming chunk");
    assert_eq!(lines.len(), 3);
    assert!(
        lines
            .iter()
            .all(|r| r.correlation_id.as_deref() == Some(id))
    );
}

#[actix_web::test]
async fn body_sizes_are_kept_no_body_sized_and_streamed() {
    use actix_web::body::BodySize;
    let app = test::init_service(
        App::new()
            .route(
                "/none",
                web::get()
                    .to(|| async { HttpResponse::NoContent().body(actix_web::body::None::new()) }),
            )
            .route("/sized", web::get().to(|| async { "five!" }))
            .route(
                "/stream",
                web::get().to(|| async {
                    HttpResponse::Ok().streaming(futures_util::stream::once(async {
                        Ok::<_, Error>(web::Bytes::from_static(b"streamed"))
                    }))
                }),
            )
            .wrap(Correlation::default()),
    )
    .await;
    for (path, size, body) in [
        ("/none", BodySize::None, ""),
        ("/sized", BodySize::Sized(5), "five!"),
        ("/stream", BodySize::Stream, "streamed"),
    ] {
        let response = test::call_service(&app, get(path).to_request()).await;
        assert_eq!(response.response().body().size(), size, "{path}");
        assert!(is_hex32(&only_header(&response)));
        assert_eq!(test::read_body(response).await, body, "{path}");
    }
}

#[actix_web::test]
async fn actix_logger_inside_logs_its_line_under_the_id() {
    let logs = LogCapture::install();
    let id = "0123456789ab4def8123456789abcdef";
    let app = test::init_service(
        App::new()
            .route("/logged", web::get().to(|| async { "logged" }))
            .wrap(Logger::new(
                "logger-test %s in=%{x-request-id}i out=%{x-request-id}o",
            ))
            .wrap(Correlation::default()),
    )
    .await;
    let response = test::call_service(
        &app,
        get("/logged").insert_header((HEADER, id)).to_request(),
    )
    .await;
    assert_eq!(only_header(&response), id);
    assert_eq!(test::read_body(response).await, "logged");
    let lines = logs.records_containing("logger-test");
    let lines: Vec<_> = lines.iter().filter(|r| r.message.contains(id)).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    // The request header carries the ID; the response header is added outside Logger.
    assert_eq!(lines[0].message, format!("logger-test 200 in={id} out=-"));
    assert_eq!(lines[0].correlation_id.as_deref(), Some(id));
    assert!(lines[0].rendered.contains(&format!("[{id}]")));
}

#[actix_web::test]
async fn actix_logger_outside_sees_the_response_header_but_logs_without_the_id() {
    let logs = LogCapture::install();
    let id = "11112222333344448555666677778888";
    let app = test::init_service(
        App::new()
            .route("/outside", web::get().to(|| async { "outside" }))
            .wrap(Correlation::default())
            .wrap(Logger::new("outside-logger-test out=%{x-request-id}o")),
    )
    .await;
    let response = test::call_service(
        &app,
        get("/outside").insert_header((HEADER, id)).to_request(),
    )
    .await;
    assert_eq!(test::read_body(response).await, "outside");
    let lines = logs.records_containing(&format!("outside-logger-test out={id}"));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0].correlation_id, None);
}

#[actix_web::test]
async fn the_extractor_without_the_middleware_fails_with_500_naming_it() {
    let app = test::init_service(App::new().route("/id", web::get().to(id_handler))).await;
    let response = test::call_service(&app, get("/id").to_request()).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = test::read_body(response).await;
    let body = std::str::from_utf8(&body).unwrap();
    assert!(body.contains("correlation_actix::Correlation"), "{body}");
}

#[actix_web::test]
async fn reject_mode_answers_400_with_a_fresh_id_without_calling_the_handler() {
    let config = CorrelationConfig::builder()
        .on_invalid(OnInvalid::Reject)
        .build()
        .unwrap();
    let app = test::init_service(
        App::new()
            .route(
                "/",
                web::get().to(|| async {
                    if true {
                        panic!("the handler must not run");
                    }
                    "unreachable"
                }),
            )
            .wrap(Correlation::with_config(config)),
    )
    .await;
    let response = test::call_service(
        &app,
        get("/").insert_header((HEADER, "not-a-uuid")).to_request(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(is_hex32(&only_header(&response)));
    assert_eq!(
        response.headers().get("content-type").unwrap(),
        "text/plain; charset=utf-8"
    );
    assert_eq!(test::read_body(response).await, "invalid correlation id");
}

#[actix_web::test]
async fn skipped_paths_get_no_id_and_no_header() {
    let config = CorrelationConfig::builder()
        .skip_paths(["/health"])
        .build()
        .unwrap();
    let app = test::init_service(
        App::new()
            .route(
                "/health",
                web::get()
                    .to(|id: Option<CorrelationId>| async move { format!("{}", id.is_some()) }),
            )
            .wrap(Correlation::with_config(config)),
    )
    .await;
    let response = test::call_service(
        &app,
        get("/health").insert_header((HEADER, VALID)).to_request(),
    )
    .await;
    assert!(response.headers().get(HEADER).is_none());
    assert_eq!(test::read_body(response).await, "false");
}

#[actix_web::test]
async fn echo_and_request_update_can_be_turned_off() {
    let config = CorrelationConfig::builder()
        .echo_response_header(false)
        .update_request_header(false)
        .build()
        .unwrap();
    let app = test::init_service(app(config)).await;
    let response = test::call_service(&app, get("/header").to_request()).await;
    assert!(response.headers().get(HEADER).is_none());
    assert_eq!(test::read_body(response).await, "");
    let response = test::call_service(&app, get("/id").to_request()).await;
    assert!(is_hex32(
        std::str::from_utf8(&test::read_body(response).await).unwrap()
    ));
}

#[actix_web::test]
async fn a_websocket_upgrade_101_carries_one_header() {
    let app = test::init_service(
        App::new()
            .route(
                "/ws",
                web::get().to(|req: HttpRequest, body: web::Payload| async move {
                    let (response, _session, _messages) = actix_ws::handle(&req, body)?;
                    Ok::<_, Error>(response)
                }),
            )
            .wrap(Correlation::default()),
    )
    .await;
    let request = get("/ws")
        .insert_header(("upgrade", "websocket"))
        .insert_header(("connection", "upgrade"))
        .insert_header(("sec-websocket-version", "13"))
        .insert_header(("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="))
        .insert_header((HEADER, VALID))
        .to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(only_header(&response), VALID);
}

#[actix_web::test]
#[should_panic]
async fn keeping_a_request_clone_across_routing_panics_so_errors_are_wrapped_instead() {
    // Why `CorrelatedError` exists: actix's router needs sole ownership of the request,
    // so a middleware cannot keep a clone to build a response from an `Err` later.
    let app = test::init_service(
        App::new()
            .route("/", web::get().to(|| async { "ok" }))
            .wrap_fn(|req, service| {
                let kept = req.request().clone();
                let future = service.call(req);
                async move {
                    drop(kept);
                    future.await
                }
            }),
    )
    .await;
    let _ = test::call_service(&app, get("/").to_request()).await;
}

#[test]
fn the_middleware_value_is_send_sync_and_clone() {
    fn assert_send_sync_clone<T: Send + Sync + Clone + Default + 'static>() {}
    assert_send_sync_clone::<Correlation>();
    let correlation = Correlation::from(CorrelationConfig::default());
    assert_eq!(correlation.config().response_header_name().as_str(), HEADER);
    assert!(format!("{:?}", Correlation::new()).contains("CorrelationConfig"));
}
