//! Run with
//!
//! ```sh
//! cargo run --example axum
//! ```
//!
//! then `curl -i localhost:8080/` and watch every log line of the request carry its ID.
//! `PORT` sets the port (default 8080) and `RUST_LOG` the level (default `info`).
//! `CORRELATION_DEMO_BARE=1` serves the same routes without the correlation layer: the
//! baseline of `cargo xtask load`.

use std::net::SocketAddr;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    env_logger::Builder::new()
        .format(correlation_core::format)
        .parse_filters(&std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned()))
        .init();
    // Every panic logged on one line under its request's ID (the panic-catching
    // middleware then answers 500).
    correlation_core::install_panic_hook();
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".to_owned());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    let config = example_axum::config();
    let router = if std::env::var_os("CORRELATION_DEMO_BARE").is_some_and(|bare| bare == "1") {
        log::info!("bare: serving without the correlation layer");
        example_axum::bare_app(&config)
    } else {
        example_axum::app(config)
    };
    log::info!("axum demo listening on http://{}", listener.local_addr()?);
    // With each connection's peer address, which a `TrustPolicy::FromPeers` needs.
    let app = router.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}
