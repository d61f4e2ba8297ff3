//! The demo over real gRPC on 127.0.0.1: the server takes the ID from `x-request-id`
//! metadata, logs under it and echoes it, error statuses included; a hostile value is
//! replaced; the client's calls carry the current ID.

use std::net::SocketAddr;

use correlation_core::strategy::{IdValidator, StrictUuidV4};
use correlation_core::test_util::{CapturedRecord, LogCapture};
use correlation_core::{CorrelationConfig, CorrelationId, scope};
use example_grpc::{KNOWN_SERVICE, connect, serve};
use tonic::Code;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

async fn start_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    correlation_core::spawn(serve(listener, CorrelationConfig::default()));
    addr
}

/// A client without propagation: what a caller using no correlation crate sends.
async fn plain_client(addr: SocketAddr) -> HealthClient<Channel> {
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    HealthClient::new(channel)
}

fn check(service: &str, request_id: Option<&str>) -> tonic::Request<HealthCheckRequest> {
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: service.to_owned(),
    });
    if let Some(id) = request_id {
        let value: MetadataValue<_> = id.parse().unwrap();
        request.metadata_mut().insert("x-request-id", value);
    }
    request
}

fn echoed(metadata: &MetadataMap) -> String {
    let value = metadata.get("x-request-id").expect("x-request-id echoed");
    value.to_str().unwrap().to_owned()
}

fn server_lines(logs: &LogCapture, id: &str) -> Vec<CapturedRecord> {
    logs.filtered(|record| {
        record.target == "example_grpc" && record.correlation_id.as_deref() == Some(id)
    })
}

fn is_v4_hex(id: &str) -> bool {
    id.len() == 32 && StrictUuidV4.is_valid(id)
}

#[tokio::test]
async fn the_id_in_metadata_is_logged_under_and_echoed_also_on_an_error_status() {
    let logs = LogCapture::install();
    let mut client = plain_client(start_server().await).await;

    let id = "0a1b2c3d4e5f4a6b8c7d9e0f1a2b3c4d";
    let response = client.check(check(KNOWN_SERVICE, Some(id))).await.unwrap();
    assert_eq!(response.get_ref().status(), ServingStatus::Serving);
    assert_eq!(echoed(response.metadata()), id);
    let lines = server_lines(logs, id);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0].message, "health check for \"orders\": serving");

    let id = "1b2c3d4e5f6a4b7c8d9e0f1a2b3c4d5e";
    let status = client.check(check("billing", Some(id))).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(echoed(status.metadata()), id);
    let lines = server_lines(logs, id);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0].level, log::Level::Warn);
}

#[tokio::test]
async fn a_hostile_id_in_metadata_is_replaced_with_one_warning_that_never_shows_it() {
    let logs = LogCapture::install();
    let mut client = plain_client(start_server().await).await;

    let hostile = "hostile-value' OR 1=1 <script>";
    let response = client.check(check("", Some(hostile))).await.unwrap();
    let replaced = echoed(response.metadata());
    assert!(is_v4_hex(&replaced), "{replaced}");
    assert_eq!(server_lines(logs, &replaced).len(), 1);
    let warnings = logs.filtered(|record| {
        record.level == log::Level::Warn && record.correlation_id.as_deref() == Some(&replaced)
    });
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].target, "correlation");
    assert!(logs.records_containing("hostile-value").is_empty());
}

#[tokio::test]
async fn the_clients_calls_carry_the_current_id_and_none_outside_a_request() {
    let logs = LogCapture::install();
    let mut client = connect(start_server().await, CorrelationConfig::default())
        .await
        .unwrap();

    let id = CorrelationId::from_static("2c3d4e5f6a7b4c8d9e0f1a2b3c4d5e6f");
    let (response, status) = scope(id.clone(), async {
        let response = client.check(check(KNOWN_SERVICE, None)).await.unwrap();
        let status = client.check(check("billing", None)).await.unwrap_err();
        (response, status)
    })
    .await;
    assert_eq!(echoed(response.metadata()), id.as_str());
    assert_eq!(echoed(status.metadata()), id.as_str());
    assert_eq!(server_lines(logs, id.as_str()).len(), 2);

    // Outside a request the call carries nothing, and the server makes its own ID.
    let response = client.check(check("", None)).await.unwrap();
    let generated = echoed(response.metadata());
    assert!(is_v4_hex(&generated), "{generated}");
    assert_ne!(generated, id.as_str());
    assert_eq!(server_lines(logs, &generated).len(), 1);
}
