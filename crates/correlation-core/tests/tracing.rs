//! With the `tracing` feature, every `tracing` event of a request — and every `log` record
//! bridged by `tracing-log` — carries `correlation_id` from the request span, in nested
//! calls, spawned tasks and blocking closures alike.
#![cfg(feature = "tracing")]
// Tests start tasks and threads outside any request on purpose.
#![allow(clippy::disallowed_methods)]

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use correlation_core::{CorrelationConfig, CorrelationId, spawn, spawn_blocking};
use serde_json::Value;
use tracing_subscriber::fmt::MakeWriter;

/// An in-memory writer for tracing-subscriber's JSON output.
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

fn install() -> &'static Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        let captured = Captured::default();
        tracing_log::LogTracer::init().unwrap();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_writer(captured.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        captured
    })
}

fn events() -> Vec<Value> {
    let bytes = install().0.lock().unwrap().clone();
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn events_with_message(prefix: &str) -> Vec<Value> {
    events()
        .into_iter()
        .filter(|event| {
            event["fields"]["message"]
                .as_str()
                .is_some_and(|message| message.starts_with(prefix))
        })
        .collect()
}

fn nested_function() {
    tracing::info!("nested call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_of_a_request_carries_the_correlation_id() {
    install();
    let config = CorrelationConfig::default();
    let requests = (0..4).map(|n| {
        let id = CorrelationId::new(&format!("trace-{n}")).unwrap();
        let context = config.request_context(id);
        context.wrap(async move {
            tracing::info!("handler {n}");
            log::info!("bridged {n}");
            nested_function();
            spawn(async move { tracing::info!("spawned {n}") })
                .await
                .unwrap();
            spawn_blocking(move || tracing::info!("blocking {n}"))
                .await
                .unwrap();
        })
    });
    let handles: Vec<_> = requests.map(tokio::spawn).collect();
    for handle in handles {
        handle.await.unwrap();
    }
    for n in 0..4 {
        for prefix in ["handler", "bridged", "spawned", "blocking"] {
            let found = events_with_message(&format!("{prefix} {n}"));
            assert_eq!(found.len(), 1, "{prefix} {n}");
            assert_eq!(found[0]["span"]["correlation_id"], format!("trace-{n}"));
            assert_eq!(found[0]["span"]["name"], "request");
        }
    }
    let nested = events_with_message("nested call");
    assert_eq!(nested.len(), 4);
    let mut ids: Vec<_> = nested
        .iter()
        .map(|event| event["span"]["correlation_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    assert_eq!(ids, ["trace-0", "trace-1", "trace-2", "trace-3"]);
}

#[tokio::test]
async fn events_outside_a_request_have_no_request_span() {
    install();
    tracing::info!("outside marker");
    let found = events_with_message("outside marker");
    assert_eq!(found.len(), 1);
    assert!(found[0].get("span").is_none());
}
