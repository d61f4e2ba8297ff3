//! One ID across five services, over real connections on 127.0.0.1 and the local NATS
//! and Redis:
//!
//! ```text
//! client ─HTTP─▶ axum ─reqwest─▶ poem ─NATS─▶ consumer ─apalis on Redis─▶ worker ─gRPC─▶ tonic
//! ```
//!
//! The client sends an ID to the axum service; every line each of the five places logs
//! for that request carries it, and none carries another. Run again with the tenant set
//! as a field at the start, carried on as W3C baggage, and a hop ID per service, every
//! line also shows the tenant, and each HTTP and gRPC service's lines their own hop ID.
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
use correlation_core::{CorrelationConfig, Fields, TrustPolicy, current};
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

/// The ID the client sends in the run with a field and hop IDs.
const OPERATION_ID: &str = "9b1d2e3f4a5b4c6d8e7f0a1b2c3d4e5f";

/// One run of the flow at a time, so that each run's records are its own.
static ONE_RUN_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The job the NATS consumer enqueues: ship the order in the message.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Shipment {
    order: String,
}

/// The tenant the axum service puts on the request as a field, in the second run.
const TENANT: &str = "acme";

/// How the services of one run are configured, all alike.
#[derive(Clone)]
struct Chain {
    config: CorrelationConfig,
    /// The ID the client sends.
    id: &'static str,
    /// Whether the axum service sets the tenant field when the checkout starts.
    sets_tenant: bool,
}

impl Chain {
    /// The default configuration, and no field.
    fn plain() -> Self {
        Self {
            config: CorrelationConfig::default(),
            id: REQUEST_ID,
            sets_tenant: false,
        }
    }

    /// The operation's ID under `X-Correlation-ID`, each service's own under
    /// `X-Request-ID`, and the `tenant` field carried as baggage between services that
    /// trust each other (all on 127.0.0.1 here).
    fn with_tenant_and_hops() -> Self {
        let config = CorrelationConfig::builder()
            .header_name("x-correlation-id")
            .hop_id_header("x-request-id")
            .baggage_keys(["tenant"])
            .baggage_from(TrustPolicy::from_peers(["127.0.0.1/32"]).unwrap())
            .build()
            .unwrap();
        Self {
            config,
            id: OPERATION_ID,
            sets_tenant: true,
        }
    }
}

/// The axum service: `POST /checkout` calls the poem service's `/orders` through a
/// client that propagates the ID, and answers with the ID it ran under.
async fn start_axum(orders: SocketAddr, chain: Chain) -> SocketAddr {
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(PropagateCorrelationMiddleware::with_config(
            chain.config.clone(),
        ))
        .build();
    let layer = correlation_axum::CorrelationLayer::with_config(chain.config.clone());
    let app = axum::Router::new()
        .route("/checkout", post(checkout))
        .with_state((client, orders, chain))
        .layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn checkout(
    State((client, orders, chain)): State<(ClientWithMiddleware, SocketAddr, Chain)>,
) -> String {
    if chain.sets_tenant {
        assert!(Fields::insert("tenant", TENANT));
    }
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
async fn start_poem(
    nats: async_nats::Client,
    subject: String,
    config: CorrelationConfig,
) -> SocketAddr {
    use poem::listener::{Acceptor, Listener, TcpListener};
    use poem::{EndpointExt, Route};

    let app = Route::new()
        .at("/orders", poem::post(place_order))
        .data((nats, subject, config.clone()))
        .with(correlation_poem::Correlation::with_config(config));
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
    poem::web::Data((nats, subject, config)): poem::web::Data<&(
        async_nats::Client,
        String,
        CorrelationConfig,
    )>,
) -> poem::Result<()> {
    let order = unique_name("order");
    log::info!("poem: publishing {order}");
    let mut headers = async_nats::HeaderMap::new();
    inject_current(config, &mut headers);
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
async fn start_consumer(
    nats: &async_nats::Client,
    subject: String,
    queue: RedisStorage<Shipment>,
    config: CorrelationConfig,
) {
    let mut messages = nats.subscribe(subject).await.unwrap();
    // Flushing makes the server know the subscription before anything is published.
    nats.flush().await.unwrap();
    tokio::spawn(async move {
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
fn logged_at<'r>(records: &'r [CapturedRecord], place: &str) -> Vec<&'r CapturedRecord> {
    let prefix = format!("{place}: ");
    records
        .iter()
        .filter(|record| match place {
            "tonic" => record.target == "example_grpc",
            _ => record.target == module_path!() && record.message.starts_with(&prefix),
        })
        .collect()
}

#[tokio::test]
async fn one_id_follows_a_request_through_http_nats_redis_jobs_and_grpc() {
    let Some(run) = run_chain(Chain::plain()).await else {
        return;
    };
    let records = &run.records;
    assert_eq!(run.status, 200);
    assert_eq!(run.headers["x-request-id"], REQUEST_ID);
    assert_eq!(run.answered_under, REQUEST_ID);
    let order = run.order;

    for place in PLACES {
        logged_under(records, place, REQUEST_ID);
    }
    // No record of the whole run, the libraries' included, carries another ID.
    let others: Vec<_> = records
        .iter()
        .filter(|record| {
            record
                .correlation_id
                .as_deref()
                .is_some_and(|id| id != REQUEST_ID)
        })
        .collect();
    assert!(others.is_empty(), "records under another ID: {others:?}");

    // The message's handler and the job it enqueued are a chain: the job's parent is the
    // consumer's job, and the worker shipped the order poem published.
    let consumed = logged_at(records, "consumer")[0];
    let consumer_job = consumed
        .job_id
        .as_deref()
        .expect("the consumer runs as a job");
    let worker_lines = logged_at(records, "worker");
    assert!(
        worker_lines
            .iter()
            .all(|line| line.parent_job_id.as_deref() == Some(consumer_job)),
        "{worker_lines:?}"
    );
    assert!(consumed.message.ends_with(&order), "{consumed:?}");
    assert_eq!(
        logged_at(records, "poem")[0].message,
        format!("poem: publishing {order}")
    );
}

#[tokio::test]
async fn a_field_set_at_the_start_reaches_every_service_and_each_hop_has_its_own_id() {
    let Some(run) = run_chain(Chain::with_tenant_and_hops()).await else {
        return;
    };
    let records = &run.records;
    assert_eq!(run.status, 200);
    // The operation's ID under its header, the axum service's own under the other.
    assert_eq!(run.headers["x-correlation-id"], OPERATION_ID);
    let axum_hop = run.headers["x-request-id"].to_str().unwrap();
    assert_ne!(axum_hop, OPERATION_ID);
    assert_eq!(run.answered_under, OPERATION_ID);

    let mut hops = Vec::new();
    for place in PLACES {
        let lines = logged_under(records, place, OPERATION_ID);
        let without_tenant: Vec<_> = lines
            .iter()
            .filter(|line| !line.rendered.contains(&format!(" tenant={TENANT} ")))
            .collect();
        assert!(
            without_tenant.is_empty(),
            "{place} logged without the tenant: {without_tenant:?}"
        );
        // Each service that serves a call has its hop ID on every line; the consumer and
        // the worker serve none, and their lines name their jobs instead.
        let hop = lines[0].hop_id.clone();
        assert!(
            lines.iter().all(|line| line.hop_id == hop),
            "{place} logged under more than one hop ID: {lines:?}"
        );
        match place {
            "consumer" | "worker" => {
                assert_eq!(hop, None, "{place}: {lines:?}");
                assert!(lines.iter().all(|line| line.job_id.is_some()), "{lines:?}");
            }
            _ => {
                let hop = hop.unwrap_or_else(|| panic!("{place} logged no hop ID: {lines:?}"));
                assert_ne!(hop, OPERATION_ID, "{place}");
                hops.push(hop);
            }
        }
    }
    assert_eq!(
        hops[0], axum_hop,
        "the axum service's lines show the hop it echoed"
    );
    assert!(
        hops[1] != hops[0] && hops[2] != hops[0] && hops[2] != hops[1],
        "each service makes its own hop ID: {hops:?}"
    );
}

/// What `place` logged, asserting that it logged something and all of it under `id`.
fn logged_under<'r>(
    records: &'r [CapturedRecord],
    place: &str,
    id: &str,
) -> Vec<&'r CapturedRecord> {
    let lines = logged_at(records, place);
    assert!(!lines.is_empty(), "{place} logged nothing: {records:?}");
    let stray: Vec<_> = lines
        .iter()
        .filter(|line| line.correlation_id.as_deref() != Some(id))
        .collect();
    assert!(
        stray.is_empty(),
        "{place} logged under another ID than {id}: {stray:?}"
    );
    lines
}

/// Where the flow's own code logs, in the order a request reaches them.
const PLACES: [&str; 5] = ["axum", "poem", "consumer", "worker", "tonic"];

/// What a run of the flow left: the status and headers of the axum service's answer, and
/// the ID its body says it ran under; the order the worker shipped; and every record
/// logged during the run.
struct Run {
    status: reqwest::StatusCode,
    headers: reqwest::header::HeaderMap,
    answered_under: String,
    order: String,
    records: Vec<CapturedRecord>,
}

/// Sends one checkout through the five places, each configured with `chain`'s
/// configuration, and waits until the worker has shipped the order; `None` when NATS or
/// Redis is not there (`Service::require` has said so).
async fn run_chain(chain: Chain) -> Option<Run> {
    let nats = Service::Nats.require()?;
    let redis = Service::Redis.require()?;
    let logs = LogCapture::install();
    let _alone = ONE_RUN_AT_A_TIME.lock().await;
    let earlier = logs.records().len();
    let config = chain.config.clone();
    let id = chain.id;

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
    start_consumer(&nats, subject.clone(), queue, config.clone()).await;
    let orders = start_poem(nats.clone(), subject, config.clone()).await;
    let shop = start_axum(orders, chain).await;

    // Sent as the ID of the whole operation: the header the services echo it under.
    let correlation_header = config.response_header_name().to_owned();
    let response = timeout(
        WAIT,
        reqwest::Client::new()
            .post(format!("http://{shop}/checkout"))
            .header(correlation_header, id)
            .send(),
    )
    .await
    .unwrap_or_else(|_| panic!("the axum service did not answer within {WAIT:?}"))
    .expect("the axum service answers");
    let (status, headers) = (response.status(), response.headers().clone());
    let answered_under = response.text().await.unwrap();

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

    let records = logs.records().split_off(earlier);
    Some(Run {
        status,
        headers,
        answered_under,
        order,
        records,
    })
}
