//! Two real services in one process, over real HTTP: a caller service calls a demo
//! service through reqwest with `PropagateCorrelationMiddleware`. The callee accepts the caller's
//! ID, and both services' log lines for that call carry it.
//!
//! - an axum service calls the poem demo;
//! - an actix-web service calls the axum demo.
// Tests start tasks and threads outside any request on purpose.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread;

use correlation_conformance::TestServer;
use correlation_conformance::servers;
use correlation_core::propagation::PropagateCorrelationMiddleware;
use correlation_core::strategy::{IdValidator, StrictUuidV4};
use correlation_core::test_util::{CapturedRecord, LogCapture};
use correlation_core::{CorrelationConfig, current};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};

/// What a caller's `/call` handler does: logs, calls the callee's `/` (which logs two
/// lines) and `/id` (which answers with the ID it runs under) through the propagating
/// client, logs again, and answers with the callee's ID.
async fn call_callee(client: &ClientWithMiddleware, callee: SocketAddr) -> String {
    log::info!("caller: calling the callee");
    let index = client.get(format!("http://{callee}/")).send().await;
    assert_eq!(index.unwrap().status(), 200);
    let id = client
        .get(format!("http://{callee}/id"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    log::info!("caller: the callee ran under {id}");
    assert_eq!(current().map(|own| own.to_string()), Some(id.clone()));
    id
}

fn propagating_client() -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new())
        .with(PropagateCorrelationMiddleware::new())
        .build()
}

/// An axum service whose `GET /call` calls `callee`.
async fn start_axum_caller(callee: SocketAddr) -> TestServer {
    use axum::routing::get;

    let client = propagating_client();
    let app = axum::Router::new()
        .route(
            "/call",
            get(move || {
                let client = client.clone();
                async move { call_callee(&client, callee).await }
            }),
        )
        .layer(correlation_axum::CorrelationLayer::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    TestServer::new(addr, move || server.abort())
}

/// An actix-web service whose `GET /call` calls `callee`, on its own system and thread
/// (like the conformance suite's actix starter).
fn start_actix_caller(callee: SocketAddr) -> TestServer {
    use actix_web::{App, HttpServer, web};

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (handle_tx, handle_rx) = mpsc::channel();
    let thread = thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = HttpServer::new(move || {
                App::new()
                    .app_data(web::Data::new(propagating_client()))
                    .route(
                        "/call",
                        web::get().to(move |client: web::Data<ClientWithMiddleware>| async move {
                            call_callee(&client, callee).await
                        }),
                    )
                    .wrap(correlation_actix::Correlation::default())
            })
            .workers(2)
            .disable_signals()
            .shutdown_timeout(1)
            .listen(listener)?
            .run();
            let _ = handle_tx.send(server.handle());
            server.await
        })
    });
    let handle = handle_rx.recv().expect("the actix caller failed to start");
    TestServer::new(addr, move || {
        drop(handle.stop(false));
        let _ = thread.join();
    })
}

/// Calls `caller`'s `/call`, with `incoming` as the request's ID if given; returns the
/// ID the caller answered with (its own, as echoed in the response header) after
/// checking the callee ran under the same one.
async fn call(caller: &TestServer, incoming: Option<&str>) -> String {
    let mut request = reqwest::Client::new().get(caller.url("/call"));
    if let Some(id) = incoming {
        request = request.header("x-request-id", id);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let own = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let callee_id = response.text().await.unwrap();
    assert_eq!(callee_id, own, "the callee did not accept the caller's ID");
    if let Some(id) = incoming {
        assert_eq!(own, id);
    }
    assert!(StrictUuidV4.is_valid(&own), "{own}");
    own
}

/// The lines logged under `id` whose target starts with `target`.
fn lines(logs: &LogCapture, id: &str, target: &str) -> Vec<CapturedRecord> {
    logs.records_for(id)
        .into_iter()
        .filter(|record| record.target.starts_with(target))
        .collect()
}

/// Both services logged their lines for the call under `id`, and nothing else did.
fn assert_both_sides_logged(logs: &LogCapture, id: &str, caller: &str, callee: &str) {
    let messages = |target| -> Vec<String> {
        lines(logs, id, target)
            .into_iter()
            .map(|record| record.message)
            .collect()
    };
    let caller_lines = messages(caller);
    assert_eq!(
        caller_lines,
        [
            "caller: calling the callee".to_owned(),
            format!("caller: the callee ran under {id}")
        ],
        "caller {caller}"
    );
    let callee_lines = messages(callee);
    for expected in ["handling the index", "nested function doing some work"] {
        assert_eq!(
            callee_lines.iter().filter(|line| *line == expected).count(),
            1,
            "callee {callee}: {callee_lines:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_calls_poem_and_both_log_under_one_id() {
    let logs = LogCapture::install();
    let poem = servers::poem::start(CorrelationConfig::default()).await;
    let axum = start_axum_caller(poem.addr).await;

    // An incoming ID goes all the way through; a generated one too.
    let given = "4d2c6b8a0e1f4a3b9c5d7e9f1a2b3c4d";
    assert_eq!(call(&axum, Some(given)).await, given);
    assert_both_sides_logged(logs, given, "cross_service", "example_poem");
    let generated = call(&axum, None).await;
    assert_ne!(generated, given);
    assert_both_sides_logged(logs, &generated, "cross_service", "example_poem");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_calls_axum_and_both_log_under_one_id() {
    let logs = LogCapture::install();
    let axum = servers::axum::start(CorrelationConfig::default()).await;
    let actix = start_actix_caller(axum.addr);

    let given = "8f7e6d5c4b3a4921a0b1c2d3e4f5a6b7";
    assert_eq!(call(&actix, Some(given)).await, given);
    assert_both_sides_logged(logs, given, "cross_service", "example_axum");
    let generated = call(&actix, None).await;
    assert_ne!(generated, given);
    assert_both_sides_logged(logs, &generated, "cross_service", "example_axum");
}
