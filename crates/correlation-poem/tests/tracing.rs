//! With the `tracing` feature, every `tracing` event of a request carries
//! `correlation_id` (from the `request` span core opens for it): in the handler, nested
//! calls, spawned work, the streamed body and poem's `Tracing` access log placed inside
//! `Correlation`, with `tracing-subscriber`'s JSON output; `log` records bridged by
//! `tracing-log` too.
#![cfg(feature = "tracing")]

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use correlation_poem::{Correlation, CorrelationId};
use futures_util::StreamExt;
use poem::middleware::Tracing;
use poem::{Body, Endpoint, EndpointExt, Request, Route, get, handler};
use serde_json::Value;
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn captured() -> &'static Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        let captured = Captured::default();
        tracing_log::LogTracer::init().unwrap();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_span_list(true)
            .with_max_level(tracing::Level::INFO)
            .with_writer(captured.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        captured
    })
}

/// The JSON events' messages, with the `correlation_id` of the span that recorded one.
fn events() -> Vec<(String, Option<String>)> {
    let bytes = captured().0.lock().unwrap().clone();
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|line| {
            let event: Value = serde_json::from_str(line).unwrap();
            let id = event["spans"].as_array().and_then(|spans| {
                spans
                    .iter()
                    .find_map(|span| span["correlation_id"].as_str().map(str::to_owned))
            });
            let message = event["fields"]["message"].as_str().unwrap_or_default();
            (message.to_owned(), id)
        })
        .collect()
}

fn nested() {
    tracing::info!("nested call");
}

#[handler]
async fn index(id: CorrelationId) -> String {
    tracing::info!("handler event");
    log::info!("bridged log record");
    nested();
    correlation_poem::core::spawn(async { tracing::info!("spawned event") })
        .await
        .unwrap();
    id.to_string()
}

#[handler]
fn streaming() -> Body {
    Body::from_bytes_stream(futures_util::stream::iter(0..2).map(|n| {
        tracing::info!("streamed chunk {n}");
        Ok::<_, std::io::Error>("x")
    }))
}

fn app() -> impl Endpoint {
    Route::new()
        .at("/", get(index))
        .at("/stream", get(streaming))
        .with(Tracing)
        .with(Correlation::default())
}

async fn call(path: &str) -> String {
    let response = app()
        .get_response(Request::builder().uri_str(path).finish())
        .await;
    let id = response.header("x-request-id").unwrap().to_owned();
    response.into_body().into_bytes().await.unwrap();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_of_a_request_carries_the_correlation_id() {
    captured();
    let (first, second) = tokio::join!(call("/"), call("/"));
    let stream = call("/stream").await;
    let events = events();
    for id in [&first, &second] {
        let mine: Vec<_> = events
            .iter()
            .filter(|(_, event_id)| event_id.as_deref() == Some(id.as_str()))
            .map(|(message, _)| message.as_str())
            .collect();
        for expected in [
            "handler event",
            "bridged log record",
            "nested call",
            "spawned event",
            // poem's `Tracing` access log, inside ours.
            "response",
        ] {
            assert_eq!(
                mine.iter().filter(|m| **m == expected).count(),
                1,
                "{expected:?} under {id}: {mine:?}"
            );
        }
    }
    let streamed: Vec<_> = events
        .iter()
        .filter(|(message, _)| message.starts_with("streamed chunk"))
        .collect();
    assert_eq!(streamed.len(), 2);
    assert!(
        streamed
            .iter()
            .all(|(_, id)| id.as_deref() == Some(stream.as_str()))
    );
}
