//! The NATS integration against the local NATS server (core NATS and JetStream): a
//! message published inside a request is handled, in another task, under the request's
//! ID; a message without the header gets a fresh ID; a hostile value is replaced with one
//! warning that never shows it.

mod support;

use std::time::Duration;

use async_nats::jetstream;
use correlation_core::propagation::{inject_current, message_context};
use correlation_core::test_util::LogCapture;
use correlation_core::{CorrelationConfig, JobCarrier, current_job_id, scope};
use correlation_test_services::{Service, unique_name};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::time::timeout;

use support::{assert_carried_fresh_and_replaced, assert_handled_as_a_job_of, handled, request_id};

const WAIT: Duration = Duration::from_secs(10);

async fn connect(nats: Service) -> async_nats::Client {
    async_nats::connect(nats.url())
        .await
        .unwrap_or_else(|err| panic!("cannot connect to NATS at {}: {err}", nats.url()))
}

/// Subscribes to a fresh subject and handles each message in another task, in the
/// context it carries: the handler logs `handled <payload>`, and the task reports each
/// payload once handled.
async fn consumer(client: &async_nats::Client) -> (String, mpsc::UnboundedReceiver<String>) {
    let subject = unique_name("correlation.nats");
    let mut messages = client.subscribe(subject.clone()).await.unwrap();
    // Flushing makes the server know the subscription before anything is published.
    client.flush().await.unwrap();
    let (handled, reports) = mpsc::unbounded_channel();
    let config = support::baggage_config();
    #[allow(clippy::disallowed_methods)] // the consumer starts without any context
    tokio::spawn(async move {
        while let Some(message) = messages.next().await {
            let payload = String::from_utf8(message.payload.to_vec()).unwrap();
            message_context(&config, &message)
                .wrap(async { log::info!("handled {payload}") })
                .await;
            if handled.send(payload).is_err() {
                break;
            }
        }
    });
    (subject, reports)
}

async fn wait_for(reports: &mut mpsc::UnboundedReceiver<String>, payload: &str) {
    let seen = timeout(WAIT, reports.recv())
        .await
        .unwrap_or_else(|_| panic!("the consumer did not handle {payload} within {WAIT:?}"));
    assert_eq!(seen.as_deref(), Some(payload));
}

#[tokio::test]
async fn a_message_published_in_a_request_is_handled_under_its_id() {
    let Some(nats) = Service::Nats.require() else {
        return;
    };
    let logs = LogCapture::install();
    let client = connect(nats).await;
    let (subject, mut reports) = consumer(&client).await;
    let config = CorrelationConfig::default();

    let from_request = unique_name("from-request");
    scope(request_id(), async {
        let mut headers = async_nats::HeaderMap::new();
        inject_current(&config, &mut headers);
        client
            .publish_with_headers(subject.clone(), headers, from_request.clone().into())
            .await
    })
    .await
    .unwrap();
    wait_for(&mut reports, &from_request).await;
    assert_handled_as_a_job_of(logs, &from_request, None);

    // Published from a job: the handler's parent job is the publishing job.
    let from_job = unique_name("from-job");
    let publisher = JobCarrier::new(Some(request_id()), None)
        .into_context()
        .wrap(async {
            let mut headers = async_nats::HeaderMap::new();
            inject_current(&config, &mut headers);
            client
                .publish_with_headers(subject.clone(), headers, from_job.clone().into())
                .await
                .unwrap();
            current_job_id().unwrap()
        })
        .await;
    wait_for(&mut reports, &from_job).await;
    assert_handled_as_a_job_of(logs, &from_job, Some(publisher.as_str()));
}

#[tokio::test]
async fn a_message_without_the_header_gets_a_fresh_id_and_a_hostile_one_is_replaced() {
    let Some(nats) = Service::Nats.require() else {
        return;
    };
    let logs = LogCapture::install();
    let client = connect(nats).await;
    let (subject, mut reports) = consumer(&client).await;

    let carried = unique_name("carried");
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("x-request-id", request_id().as_str());
    client
        .publish_with_headers(subject.clone(), headers, carried.clone().into())
        .await
        .unwrap();
    let bare = unique_name("bare");
    client
        .publish(subject.clone(), bare.clone().into())
        .await
        .unwrap();
    let hostile_value = format!("{}\u{1b}[2J<script>", unique_name("hostile-value"));
    let hostile = unique_name("hostile");
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("x-request-id", hostile_value.as_str());
    client
        .publish_with_headers(subject.clone(), headers, hostile.clone().into())
        .await
        .unwrap();
    for payload in [&carried, &bare, &hostile] {
        wait_for(&mut reports, payload).await;
    }

    assert_carried_fresh_and_replaced(logs, [&carried, &bare, &hostile], "async_nats");
}

#[tokio::test]
async fn a_jetstream_message_is_handled_under_the_id_it_was_published_with() {
    let Some(nats) = Service::Nats.require() else {
        return;
    };
    let logs = LogCapture::install();
    let jetstream = jetstream::new(connect(nats).await);
    let name = unique_name("correlation_js");
    let subject = format!("{name}.orders");
    let stream = jetstream
        .create_stream(jetstream::stream::Config {
            name: name.clone(),
            subjects: vec![subject.clone()],
            ..Default::default()
        })
        .await
        .unwrap();
    let config = CorrelationConfig::default();

    let payload = unique_name("jetstream");
    scope(request_id(), async {
        let mut headers = async_nats::HeaderMap::new();
        inject_current(&config, &mut headers);
        jetstream
            .publish_with_headers(subject.clone(), headers, payload.clone().into())
            .await?
            .await
    })
    .await
    .unwrap();

    let consumer = stream
        .create_consumer(jetstream::consumer::pull::Config {
            durable_name: Some("worker".to_owned()),
            ..Default::default()
        })
        .await
        .unwrap();
    #[allow(clippy::disallowed_methods)] // the worker starts without any context
    let worker = tokio::spawn(async move {
        let mut messages = consumer.messages().await.unwrap();
        let message = messages.next().await.unwrap().unwrap();
        let payload = String::from_utf8(message.payload.to_vec()).unwrap();
        message_context(&config, &message.message)
            .wrap(async { log::info!("handled {payload}") })
            .await;
        message.ack().await.unwrap();
        payload
    });
    let handled_payload = timeout(WAIT, worker).await;
    // Deleted before the assertions, so a failing run leaves no stream behind.
    jetstream.delete_stream(&name).await.unwrap();
    let handled_payload = handled_payload
        .unwrap_or_else(|_| panic!("the JetStream worker got no message within {WAIT:?}"))
        .unwrap();
    assert_eq!(handled_payload, payload);
    let record = handled(logs, &payload);
    assert_eq!(
        record.correlation_id.as_deref(),
        Some(request_id().as_str())
    );
}

#[tokio::test]
async fn a_message_carries_the_baggage_keys_fields_to_its_handler() {
    let Some(nats) = Service::Nats.require() else {
        return;
    };
    let logs = LogCapture::install();
    let client = connect(nats).await;
    let (subject, mut reports) = consumer(&client).await;
    let config = support::baggage_config();

    let payload = unique_name("with-baggage");
    let sent = scope(request_id(), async {
        support::set_baggage_fields();
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("baggage", "region=eu");
        inject_current(&config, &mut headers);
        let sent = headers.get("baggage").unwrap().as_str().to_owned();
        client
            .publish_with_headers(subject.clone(), headers, payload.clone().into())
            .await
            .unwrap();
        sent
    })
    .await;
    assert_eq!(sent, "region=eu,tenant=acme%20corp,user=alice");
    wait_for(&mut reports, &payload).await;
    support::assert_handled_with_baggage(logs, &payload);
}
