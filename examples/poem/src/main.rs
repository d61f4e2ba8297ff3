//! Run with
//!
//! ```sh
//! cargo run --example poem
//! ```
//!
//! then `curl -i localhost:8080/` and watch every log line of the request carry its ID.
//! `PORT` sets the port (default 8080) and `RUST_LOG` the level (default `info`).
//! `curl localhost:8080/error` also writes the DEBUG lines the failed request kept, and
//! `curl -H 'X-Debug-Log: debug' localhost:8080/` writes those of a request that succeeds;
//! `curl -H 'baggage: tenant=acme' localhost:8080/` puts `tenant=acme` on its lines.

use correlation_core::request_log::RequestLogger;
use poem::Server;
use poem::listener::{Acceptor, Listener, TcpListener};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let config = example_poem::config();
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
    let acceptor = TcpListener::bind(format!("127.0.0.1:{port}"))
        .into_acceptor()
        .await?;
    if let Some(addr) = acceptor
        .local_addr()
        .first()
        .and_then(|addr| addr.as_socket_addr())
    {
        log::info!("poem demo listening on http://{addr}");
    }
    Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(
            example_poem::app(config),
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
            None,
        )
        .await
}
