//! The MQTT v5 integration against the local Mosquitto: a message published inside a
//! request is handled, in another task, under the request's ID; a message without the
//! user property gets a fresh ID; a hostile value is replaced with one warning that never
//! shows it. Each test uses its own topic and client IDs; nothing is retained.

mod support;

use std::time::Duration;

use correlation_core::propagation::{inject_current, message_context};
use correlation_core::test_util::LogCapture;
use correlation_core::{CorrelationConfig, JobCarrier, current_job_id, scope};
use correlation_test_services::{Service, unique_name};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::PublishProperties;
use rumqttc::v5::{AsyncClient, Event, EventLoop, Incoming, MqttOptions};
use tokio::sync::mpsc;
use tokio::time::timeout;

use support::{assert_carried_fresh_and_replaced, assert_handled_as_a_job_of, request_id};

const WAIT: Duration = Duration::from_secs(10);

fn client(mosquitto: Service) -> (AsyncClient, EventLoop) {
    let addr = mosquitto.addr();
    let options = MqttOptions::new(
        unique_name("correlation-mqtt"),
        addr.ip().to_string(),
        addr.port(),
    );
    AsyncClient::new(options, 16)
}

/// A subscriber on a fresh topic handling each message in another task, in the context
/// it carries: the handler logs `handled <payload>`, and the task reports each payload
/// once handled. Returns once the broker has acknowledged the subscription.
struct Topic {
    name: String,
    publisher: AsyncClient,
    reports: mpsc::UnboundedReceiver<String>,
}

impl Topic {
    async fn subscribe(mosquitto: Service) -> Self {
        let name = unique_name("correlation/mqtt");
        let (subscriber, mut events) = client(mosquitto);
        subscriber
            .subscribe(name.clone(), QoS::AtLeastOnce)
            .await
            .unwrap();
        let (handled, mut reports) = mpsc::unbounded_channel();
        let config = support::baggage_config();
        #[allow(clippy::disallowed_methods)] // the subscriber starts without any context
        tokio::spawn(async move {
            // Owned by the task, so the connection lives as long as it polls.
            let _subscriber = subscriber;
            loop {
                let event = match events.poll().await {
                    Ok(event) => event,
                    Err(err) => panic!("the subscriber lost Mosquitto: {err}"),
                };
                let report = match event {
                    Event::Incoming(Incoming::SubAck(_)) => String::new(),
                    Event::Incoming(Incoming::Publish(publish)) => {
                        let payload = String::from_utf8(publish.payload.to_vec()).unwrap();
                        message_context(&config, &publish)
                            .wrap(async { log::info!("handled {payload}") })
                            .await;
                        payload
                    }
                    _ => continue,
                };
                if handled.send(report).is_err() {
                    break;
                }
            }
        });
        let subscribed = timeout(WAIT, reports.recv()).await;
        assert_eq!(
            subscribed.expect("Mosquitto did not acknowledge the subscription in time"),
            Some(String::new())
        );

        let (publisher, mut events) = client(mosquitto);
        #[allow(clippy::disallowed_methods)] // drives the publisher's connection
        tokio::spawn(async move { while events.poll().await.is_ok() {} });
        Topic {
            name,
            publisher,
            reports,
        }
    }

    async fn publish(&self, payload: &str, properties: PublishProperties) {
        self.publisher
            .publish_with_properties(
                self.name.clone(),
                QoS::AtLeastOnce,
                false,
                payload.to_owned(),
                properties,
            )
            .await
            .unwrap();
    }

    async fn wait_for(&mut self, payload: &str) {
        let seen = timeout(WAIT, self.reports.recv())
            .await
            .unwrap_or_else(|_| panic!("the subscriber did not handle {payload} within {WAIT:?}"));
        assert_eq!(seen.as_deref(), Some(payload));
    }
}

fn with_property(value: &str) -> PublishProperties {
    PublishProperties {
        user_properties: vec![("x-request-id".to_owned(), value.to_owned())],
        ..Default::default()
    }
}

#[tokio::test]
async fn a_message_published_in_a_request_is_handled_under_its_id() {
    let Some(mosquitto) = Service::Mosquitto.require() else {
        return;
    };
    let logs = LogCapture::install();
    let mut topic = Topic::subscribe(mosquitto).await;
    let config = CorrelationConfig::default();

    let from_request = unique_name("from-request");
    scope(request_id(), async {
        let mut properties = PublishProperties::default();
        inject_current(&config, &mut properties);
        topic.publish(&from_request, properties).await;
    })
    .await;
    topic.wait_for(&from_request).await;
    assert_handled_as_a_job_of(logs, &from_request, None);

    // Published from a job: the handler's parent job is the publishing job.
    let from_job = unique_name("from-job");
    let publisher = JobCarrier::new(Some(request_id()), None)
        .into_context()
        .wrap(async {
            let mut properties = PublishProperties::default();
            inject_current(&config, &mut properties);
            topic.publish(&from_job, properties).await;
            current_job_id().unwrap()
        })
        .await;
    topic.wait_for(&from_job).await;
    assert_handled_as_a_job_of(logs, &from_job, Some(publisher.as_str()));
}

#[tokio::test]
async fn a_message_without_the_property_gets_a_fresh_id_and_a_hostile_one_is_replaced() {
    let Some(mosquitto) = Service::Mosquitto.require() else {
        return;
    };
    let logs = LogCapture::install();
    let mut topic = Topic::subscribe(mosquitto).await;

    let carried = unique_name("carried");
    topic
        .publish(&carried, with_property(request_id().as_str()))
        .await;
    let bare = unique_name("bare");
    topic.publish(&bare, PublishProperties::default()).await;
    // Mosquitto drops a client sending control characters in a property, so the hostile
    // value is one it forwards (the control-character case is a unit test of the core).
    let hostile_value = format!("{}' OR 1=1 <script>", unique_name("hostile-value"));
    let hostile = unique_name("hostile");
    topic.publish(&hostile, with_property(&hostile_value)).await;
    // Messages on one topic at QoS 1 from one client arrive in order.
    for payload in [&carried, &bare, &hostile] {
        topic.wait_for(payload).await;
    }

    assert_carried_fresh_and_replaced(logs, [&carried, &bare, &hostile], "rumqttc");
}

#[tokio::test]
async fn a_message_carries_the_baggage_keys_fields_to_its_handler() {
    let Some(mosquitto) = Service::Mosquitto.require() else {
        return;
    };
    let logs = LogCapture::install();
    let mut topic = Topic::subscribe(mosquitto).await;
    let config = support::baggage_config();

    let payload = unique_name("with-baggage");
    scope(request_id(), async {
        support::set_baggage_fields();
        let mut properties = PublishProperties::default();
        inject_current(&config, &mut properties);
        topic.publish(&payload, properties).await;
    })
    .await;
    topic.wait_for(&payload).await;
    support::assert_handled_with_baggage(logs, &payload);
}
