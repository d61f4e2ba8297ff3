//! Starts the axum demo app.

use std::net::SocketAddr;

use correlation_core::CorrelationConfig;

use crate::TestServer;

/// Serves `example_axum::app(config)` on `127.0.0.1:0` on the test's tokio runtime.
///
/// Installs `correlation_core::install_panic_hook`, as the demo's `main` does.
pub async fn start(config: CorrelationConfig) -> TestServer {
    correlation_core::install_panic_hook();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // The server task itself runs outside any request.
    #[allow(clippy::disallowed_methods)]
    let server = tokio::spawn(async move {
        // With the peer address, as the demo serves it, for the trust policy.
        axum::serve(
            listener,
            example_axum::app(config).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    TestServer::new(addr, move || server.abort())
}
