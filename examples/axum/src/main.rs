//! Run with
//!
//! ```sh
//! cargo run --example axum
//! ```
//!
//! then `curl -i localhost:8080/` and watch every log line of the request carry its ID.
//! `PORT` sets the port (default 8080) and `RUST_LOG` the level (default `info`).
//! `curl localhost:8080/error` also writes the DEBUG lines the failed request kept, and
//! `curl -H 'X-Debug-Log: debug' localhost:8080/` writes those of a request that succeeds;
//! `curl -H 'baggage: tenant=acme' localhost:8080/` puts `tenant=acme` on its lines.
//! `CORRELATION_DEMO_BARE=1` serves the same routes without the correlation layer: the
//! baseline of `cargo xtask load`.

use std::net::SocketAddr;

use correlation_core::request_log::RequestLogger;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let config = example_axum::config();
    // env_logger writes every record it is given, in our format; `RequestLogger` decides
    // which: INFO and above (or what `RUST_LOG` says), a request's DEBUG lines when it
    // fails, and everything of a request its caller raised.
    let backend = env_logger::Builder::new()
        .format(correlation_core::format)
        .filter_level(log::LevelFilter::Trace)
        .build();
    RequestLogger::new(backend)
        .parse_filters("info")
        .parse_env("RUST_LOG")
        .init(&config)
        .map_err(std::io::Error::other)?;
    // Every panic logged on one line under its request's ID (the panic-catching
    // middleware then answers 500).
    correlation_core::install_panic_hook();
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".to_owned());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
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
