//! The RabbitMQ integration against the local RabbitMQ: a message published inside a
//! request is handled, in another task, under the request's ID; a message without the
//! header gets a fresh ID; a hostile value is replaced with one warning that never shows
//! it. Each test declares its own queue and deletes it. Names are passed with `.into()`,
//! which fits lapin 3 (`&str`) and lapin 4 (`ShortString`) alike.

mod support;

use std::time::Duration;

use correlation_core::propagation::{inject_current, message_context};
use correlation_core::test_util::LogCapture;
use correlation_core::{CorrelationConfig, JobCarrier, current_job_id, scope};
use correlation_test_services::{Service, unique_name};
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use tokio::sync::mpsc;
use tokio::time::timeout;

use support::{assert_carried_fresh_and_replaced, assert_handled_as_a_job_of, request_id};

const WAIT: Duration = Duration::from_secs(10);

/// A channel on a fresh queue (exclusive, so it also goes when the connection does),
/// and a task that handles each delivery in the context it carries: the handler logs
/// `handled <payload>` and the task reports each payload once handled.
struct Queue {
    name: String,
    channel: Channel,
    reports: mpsc::UnboundedReceiver<String>,
}

impl Queue {
    async fn declare(rabbitmq: Service) -> Self {
        let connection = Connection::connect(&rabbitmq.url(), ConnectionProperties::default())
            .await
            .unwrap_or_else(|err| {
                panic!("cannot connect to RabbitMQ at {}: {err}", rabbitmq.url())
            });
        let channel = connection.create_channel().await.unwrap();
        let name = unique_name("correlation.lapin");
        let options = QueueDeclareOptions {
            exclusive: true,
            ..Default::default()
        };
        channel
            .queue_declare(name.as_str().into(), options, FieldTable::default())
            .await
            .unwrap();
        let options = BasicConsumeOptions::default();
        let mut deliveries = channel
            .basic_consume(
                name.as_str().into(),
                "consumer".into(),
                options,
                FieldTable::default(),
            )
            .await
            .unwrap();
        let (handled, reports) = mpsc::unbounded_channel();
        let config = support::baggage_config();
        #[allow(clippy::disallowed_methods)] // the consumer starts without any context
        tokio::spawn(async move {
            // Keeps the connection open as long as the consumer runs.
            let _connection = connection;
            while let Some(Ok(delivery)) = deliveries.next().await {
                let payload = String::from_utf8(delivery.data.clone()).unwrap();
                message_context(&config, &delivery)
                    .wrap(async { log::info!("handled {payload}") })
                    .await;
                delivery.ack(BasicAckOptions::default()).await.unwrap();
                if handled.send(payload).is_err() {
                    break;
                }
            }
        });
        Queue {
            name,
            channel,
            reports,
        }
    }

    async fn publish(&self, payload: &str, properties: BasicProperties) {
        self.channel
            .basic_publish(
                "".into(),
                self.name.as_str().into(),
                BasicPublishOptions::default(),
                payload.as_bytes(),
                properties,
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }

    async fn wait_for(&mut self, payload: &str) {
        let seen = timeout(WAIT, self.reports.recv())
            .await
            .unwrap_or_else(|_| panic!("the consumer did not handle {payload} within {WAIT:?}"));
        assert_eq!(seen.as_deref(), Some(payload));
    }

    async fn delete(self) {
        self.channel
            .queue_delete(self.name.as_str().into(), QueueDeleteOptions::default())
            .await
            .unwrap();
    }
}

fn with_header(value: AMQPValue) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert("x-request-id".into(), value);
    BasicProperties::default().with_headers(headers)
}

#[tokio::test]
async fn a_message_published_in_a_request_is_handled_under_its_id() {
    let Some(rabbitmq) = Service::RabbitMq.require() else {
        return;
    };
    let logs = LogCapture::install();
    let mut queue = Queue::declare(rabbitmq).await;
    let config = CorrelationConfig::default();

    let from_request = unique_name("from-request");
    let mut properties = BasicProperties::default().with_content_type("text/plain".into());
    scope(request_id(), async {
        inject_current(&config, &mut properties);
        queue.publish(&from_request, properties).await;
    })
    .await;
    queue.wait_for(&from_request).await;
    assert_handled_as_a_job_of(logs, &from_request, None);

    // Published from a job: the handler's parent job is the publishing job.
    let from_job = unique_name("from-job");
    let publisher = JobCarrier::new(Some(request_id()), None)
        .into_context()
        .wrap(async {
            let mut properties = BasicProperties::default();
            inject_current(&config, &mut properties);
            queue.publish(&from_job, properties).await;
            current_job_id().unwrap()
        })
        .await;
    queue.wait_for(&from_job).await;
    assert_handled_as_a_job_of(logs, &from_job, Some(publisher.as_str()));

    queue.delete().await;
}

#[tokio::test]
async fn a_message_without_the_header_gets_a_fresh_id_and_a_hostile_one_is_replaced() {
    let Some(rabbitmq) = Service::RabbitMq.require() else {
        return;
    };
    let logs = LogCapture::install();
    let mut queue = Queue::declare(rabbitmq).await;

    let carried = unique_name("carried");
    let value = AMQPValue::LongString(request_id().as_str().into());
    queue.publish(&carried, with_header(value)).await;
    let bare = unique_name("bare");
    queue.publish(&bare, BasicProperties::default()).await;
    let hostile_value = format!("{}\r\n\u{1b}[2J<script>", unique_name("hostile-value"));
    let hostile = unique_name("hostile");
    let value = AMQPValue::LongString(hostile_value.as_str().into());
    queue.publish(&hostile, with_header(value)).await;
    let number = unique_name("number");
    queue
        .publish(&number, with_header(AMQPValue::LongLongInt(7)))
        .await;
    for payload in [&carried, &bare, &hostile, &number] {
        queue.wait_for(payload).await;
    }

    assert_carried_fresh_and_replaced(logs, [&carried, &bare, &hostile], "lapin");

    queue.delete().await;
}

#[tokio::test]
async fn a_message_carries_the_baggage_keys_fields_to_its_handler() {
    let Some(rabbitmq) = Service::RabbitMq.require() else {
        return;
    };
    let logs = LogCapture::install();
    let mut queue = Queue::declare(rabbitmq).await;
    let config = support::baggage_config();

    let payload = unique_name("with-baggage");
    scope(request_id(), async {
        support::set_baggage_fields();
        let mut properties = BasicProperties::default();
        inject_current(&config, &mut properties);
        assert_eq!(
            properties.headers().as_ref().unwrap().inner()["baggage"],
            AMQPValue::LongString("tenant=acme%20corp,user=alice".into())
        );
        queue.publish(&payload, properties).await;
    })
    .await;
    queue.wait_for(&payload).await;
    support::assert_handled_with_baggage(logs, &payload);
    queue.delete().await;
}
