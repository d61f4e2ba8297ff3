//! One ID across five services, over real connections on 127.0.0.1 and the local NATS
//! and Redis:
//!
//! ```text
//! client ─HTTP─▶ axum ─reqwest─▶ poem ─NATS─▶ consumer ─apalis on Redis─▶ worker ─gRPC─▶ tonic
//! ```
//!
//! The client sends an ID to the axum service; every line each of the five places logs
//! for that request carries it, and none carries another.
// Servers, the consumer and the worker start outside any request on purpose.
#![allow(clippy::disallowed_methods)]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use apalis::prelude::{BoxDynError, Data, PollWith, TaskSink, WorkerBuilder};
use apalis_redis::RedisStorage;
use axum::extract::State;
use axum::routing::post;
use correlation_core::propagation::{
    JobContextLayer, PropagateCorrelationMiddleware, correlated_task,
};
use correlation_core::propagation::{inject_current, message_context};
use correlation_core::test_util::{CapturedRecord, LogCapture};
use correlation_core::{CorrelationConfig, current};
use correlation_test_services::{Service, unique_name};
use example_grpc::KNOWN_SERVICE;
use futures_util::StreamExt;
use reqwest_middleware::ClientWithMiddleware;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;
use tonic_health::pb::HealthCheckRequest;

use support::QueueCleanup;

/// How long the whole flow may take, from the request to the worker's gRPC answer.
const WAIT: Duration = Duration::from_secs(30);

/// The ID the client sends to the axum service.
const REQUEST_ID: &str = "3f2a9c1e7b5d4e6f8a0b1c2d3e4f5a6b";

/// The job the NATS consumer enqueues: ship the order in the message.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Shipment {
    order: String,
}

/// The axum service: `POST /checkout` calls the poem service's `/orders` through a
/// client that propagates the ID, and answers with the ID it ran under.
async fn start_axum(orders: SocketAddr) -> SocketAddr {
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(PropagateCorrelationMiddleware::new())
        .build();
    let app = axum::Router::new()
        .route("/checkout", post(checkout))
        .with_state((client, orders))
        .layer(correlation_axum::CorrelationLayer::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn checkout(State((client, orders)): State<(ClientWithMiddleware, SocketAddr)>) -> String {
    log::info!("axum: calling the orders service");
    let response = client
        .post(format!("http://{orders}/orders"))
        .send()
        .await
        .and_then(|response| Ok(response.error_for_status()?));
    match response {
        Ok(_) => log::info!("axum: order placed"),
        Err(err) => log::error!("axum: the orders service failed: {err}"),
    }
    current().map(|id| id.to_string()).unwrap_or_default()
}

/// The poem service: `POST /orders` publishes the order on `subject`, the message
/// carrying the request's ID in its headers.
async fn start_poem(nats: async_nats::Client, subject: String) -> SocketAddr {
    use poem::listener::{Acceptor, Listener, TcpListener};
    use poem::{EndpointExt, Route};

    let app = Route::new()
        .at("/orders", poem::post(place_order))
        .data((nats, subject))
        .with(correlation_poem::Correlation::new());
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let addr = *acceptor.local_addr()[0]
        .as_socket_addr()
        .expect("a TCP listener has a socket address");
    tokio::spawn(async move {
        poem::Server::new_with_acceptor(acceptor)
            .run(app)
            .await
            .unwrap();
    });
    addr
}

#[poem::handler]
async fn place_order(
    poem::web::Data((nats, subject)): poem::web::Data<&(async_nats::Client, String)>,
) -> poem::Result<()> {
    let order = unique_name("order");
    log::info!("poem: publishing {order}");
    let mut headers = async_nats::HeaderMap::new();
    inject_current(&CorrelationConfig::default(), &mut headers);
    nats.publish_with_headers(subject.clone(), headers, order.into())
        .await
        .map_err(poem::error::InternalServerError)?;
    // Flushed before answering: once the caller hears back, the order is on its way.
    nats.flush()
        .await
        .map_err(poem::error::InternalServerError)?;
    Ok(())
}

/// The NATS consumer, in a task of its own: each order message is handled in the context
/// it carries, and enqueues a shipment job that carries that context in turn.
async fn start_consumer(nats: &async_nats::Client, subject: String, queue: RedisStorage<Shipment>) {
    let mut messages = nats.subscribe(subject).await.unwrap();
    // Flushing makes the server know the subscription before anything is published.
    nats.flush().await.unwrap();
    tokio::spawn(async move {
        let config = CorrelationConfig::default();
        while let Some(message) = messages.next().await {
            let order = String::from_utf8_lossy(&message.payload).into_owned();
            let mut queue = queue.clone();
            message_context(&config, &message)
                .wrap(async move {
                    log::info!("consumer: enqueueing the shipment of {order}");
                    if let Err(err) = queue.push_task(correlated_task(Shipment { order })).await {
                        log::error!("consumer: could not enqueue: {err}");
                    }
                })
                .await;
        }
    });
}

/// What the worker's job needs: a gRPC client whose calls carry the job's ID, and where
/// to report the shipment done.
#[derive(Clone)]
struct WorkerDeps {
    grpc: example_grpc::Client,
    shipped: mpsc::UnboundedSender<String>,
}

/// The apalis job: checks over gRPC that the shipping service is up.
async fn ship(shipment: Shipment, deps: Data<WorkerDeps>) -> Result<(), BoxDynError> {
    log::info!("worker: shipping {}", shipment.order);
    let mut grpc = deps.grpc.clone();
    let request = HealthCheckRequest {
        service: KNOWN_SERVICE.to_owned(),
    };
    let status = grpc.check(request).await?.into_inner().status();
    log::info!("worker: the shipping service is {status:?}");
    let _ = deps.shipped.send(shipment.order);
    Ok(())
}

/// The records the flow's own code logged at `place`: the gRPC server's (its crate's
/// target), or the test's lines starting with `place:`.
fn logged_at(logs: &LogCapture, place: &str) -> Vec<CapturedRecord> {
    let prefix = format!("{place}: ");
    logs.filtered(|record| match place {
        "tonic" => record.target == "example_grpc",
        _ => record.target == module_path!() && record.message.starts_with(&prefix),
    })
}

#[tokio::test]
async fn one_id_follows_a_request_through_http_nats_redis_jobs_and_grpc() {
    let Some(nats) = Service::Nats.require() else {
        return;
    };
    let Some(redis) = Service::Redis.require() else {
        return;
    };
    let logs = LogCapture::install();
    let config = CorrelationConfig::default();

    // The gRPC server, behind the correlation tower layer.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc_addr = listener.local_addr().unwrap();
    tokio::spawn(example_grpc::serve(listener, config.clone()));
    let grpc = example_grpc::connect(grpc_addr, config.clone())
        .await
        .expect("connect to the gRPC server");

    // The apalis queue on Redis, and its worker.
    let queue_name = unique_name("across_services");
    let _cleanup = QueueCleanup {
        broker: redis,
        queue: queue_name.clone(),
    };
    let connection = apalis_redis::connect(redis.url())
        .await
        .unwrap_or_else(|err| panic!("cannot connect to Redis at {}: {err}", redis.url()));
    let queue = RedisStorage::new(connection)
        .with_config(apalis_redis::Config::default().queue(&queue_name));
    let (shipped, mut shipments) = mpsc::unbounded_channel();
    let (stop_worker, worker_stopped) = oneshot::channel::<()>();
    let worker = tokio::spawn(
        WorkerBuilder::new(unique_name("across-worker"))
            .backend(PollWith::new(
                queue.clone(),
                example_jobs::EveryInterval::new(example_jobs::POLL_INTERVAL),
            ))
            .data(WorkerDeps { grpc, shipped })
            .layer(JobContextLayer::new())
            .build(ship)
            .run_until(async {
                let _ = worker_stopped.await;
                Ok::<(), std::io::Error>(())
            }),
    );

    // The NATS consumer and the two HTTP services.
    let nats = async_nats::connect(nats.url())
        .await
        .unwrap_or_else(|err| panic!("cannot connect to NATS at {}: {err}", nats.url()));
    let subject = unique_name("correlation.across");
    start_consumer(&nats, subject.clone(), queue).await;
    let orders = start_poem(nats.clone(), subject).await;
    let shop = start_axum(orders).await;

    let response = timeout(
        WAIT,
        reqwest::Client::new()
            .post(format!("http://{shop}/checkout"))
            .header("x-request-id", REQUEST_ID)
            .send(),
    )
    .await
    .unwrap_or_else(|_| panic!("the axum service did not answer within {WAIT:?}"))
    .expect("the axum service answers");
    assert_eq!(response.status(), 200);
    let echoed = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(echoed, REQUEST_ID);
    assert_eq!(response.text().await.unwrap(), REQUEST_ID);

    let order = timeout(WAIT, shipments.recv())
        .await
        .unwrap_or_else(|_| panic!("the worker did not ship the order within {WAIT:?}"))
        .expect("the worker reports each shipment");
    stop_worker.send(()).unwrap();
    timeout(WAIT, worker)
        .await
        .unwrap_or_else(|_| panic!("the worker did not stop within {WAIT:?}"))
        .unwrap()
        .expect("the worker stops cleanly");

    for place in ["axum", "poem", "consumer", "worker", "tonic"] {
        let lines = logged_at(logs, place);
        assert!(
            !lines.is_empty(),
            "{place} logged nothing: {:?}",
            logs.records()
        );
        let stray: Vec<_> = lines
            .iter()
            .filter(|line| line.correlation_id.as_deref() != Some(REQUEST_ID))
            .collect();
        assert!(
            stray.is_empty(),
            "{place} logged under another ID: {stray:?}"
        );
    }
    // No record of the whole run, the libraries' included, carries another ID.
    let others: Vec<_> = logs.filtered(|record| {
        record
            .correlation_id
            .as_deref()
            .is_some_and(|id| id != REQUEST_ID)
    });
    assert!(others.is_empty(), "records under another ID: {others:?}");

    // The message's handler and the job it enqueued are a chain: the job's parent is the
    // consumer's job, and the worker shipped the order poem published.
    let consumed = &logged_at(logs, "consumer")[0];
    let consumer_job = consumed
        .job_id
        .as_deref()
        .expect("the consumer runs as a job");
    let worker_lines = logged_at(logs, "worker");
    assert!(
        worker_lines
            .iter()
            .all(|line| line.parent_job_id.as_deref() == Some(consumer_job)),
        "{worker_lines:?}"
    );
    assert!(consumed.message.ends_with(&order), "{consumed:?}");
    assert_eq!(
        logged_at(logs, "poem")[0].message,
        format!("poem: publishing {order}")
    );
}
