//! Run with
//!
//! ```sh
//! cargo run --example grpc
//! ```
//!
//! The demo starts a tonic health server behind the correlation layer on a free local
//! port and calls it three times with a client that sends the current ID, logging both
//! sides: a call inside a request's scope (the server logs under the request's ID and
//! echoes it), a call outside any request (the server generates an ID), and a call that
//! fails with `NOT_FOUND` (the error status carries the ID too). `RUST_LOG` sets the
//! level (default `info`).

use correlation_core::{CorrelationConfig, CorrelationId, scope};
use example_grpc::{KNOWN_SERVICE, connect, serve};
use tonic_health::pb::HealthCheckRequest;

/// The ID a client-side request would have: here, a fixed one to look for in the logs.
const REQUEST_ID: &str = "3f2a6c8e1b4d4f7a9c0e2b5d8a1c3e6f";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::new()
        .format(correlation_core::format)
        .parse_filters(&std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned()))
        .init();
    let config = CorrelationConfig::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    log::info!("gRPC health server listening on {addr}");
    // Started outside any request, so the server task carries no ID of its own.
    let server = correlation_core::spawn(serve(listener, config.clone()));
    let mut client = connect(addr, config).await?;

    let check = |service: &str| {
        tonic::Request::new(HealthCheckRequest {
            service: service.to_owned(),
        })
    };
    let id = CorrelationId::from_static(REQUEST_ID);
    scope(id, async {
        let response = client.check(check(KNOWN_SERVICE)).await?;
        log::info!(
            "client: {KNOWN_SERVICE:?} is {:?}, answered under {:?}",
            response.get_ref().status(),
            response.metadata().get("x-request-id")
        );
        let status = client.check(check("billing")).await.unwrap_err();
        log::info!(
            "client: {:?} ({}), answered under {:?}",
            status.code(),
            status.message(),
            status.metadata().get("x-request-id")
        );
        Ok::<_, tonic::Status>(())
    })
    .await?;

    let response = client.check(check("")).await?;
    log::info!(
        "client, outside any request: answered under the server's own {:?}",
        response.metadata().get("x-request-id")
    );
    server.abort();
    Ok(())
}
