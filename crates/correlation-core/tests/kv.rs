//! With the `kv` feature, `CorrelationLogger` adds `correlation_id` to every `log` record of
//! a request, end to end with real backends: a JSON backend (structured-logger) installed
//! as the global logger, and env_logger's key-value output.
#![cfg(feature = "kv")]
// Tests start tasks and threads outside any request on purpose.
#![allow(clippy::disallowed_methods)]

use correlation_core::{CorrelationConfig, CorrelationId, CorrelationLogger, spawn, sync_scope};
use log::Log;
use serde_json::Value;

#[path = "support/buffer.rs"]
mod buffer;

use buffer::Buffer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_backend_records_carry_correlation_id() {
    let buffer = Buffer::default();
    let json = structured_logger::Builder::with_level("info")
        .with_default_writer(structured_logger::json::new_writer(buffer.clone()))
        .build();
    CorrelationLogger::new(json)
        .init(log::LevelFilter::Info)
        .unwrap();

    log::info!("outside any request");
    let config = CorrelationConfig::default();
    let requests: Vec<_> = ["json-req-1", "json-req-2"]
        .into_iter()
        .map(|id| {
            let context = correlation_core::adapter::request_context(
                &config,
                CorrelationId::from_static(id).into(),
            );
            tokio::spawn(context.wrap(async move {
                log::info!(user = 42; "handling {id}");
                spawn(async move { log::warn!("spawned work for {id}") })
                    .await
                    .unwrap();
            }))
        })
        .collect();
    for request in requests {
        request.await.unwrap();
    }
    log::logger().flush();

    // Only this test's own records: with tracing's `log` feature on (workspace feature
    // unification), the request span's creation is logged too, under target `correlation`.
    let records: Vec<Value> = buffer
        .take_text()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|record| record["target"] == "kv")
        .collect();
    assert_eq!(records.len(), 5, "{records:?}");
    for record in &records {
        let message = record["message"].as_str().unwrap();
        match message.rsplit_once(' ') {
            Some((_, id)) if id.starts_with("json-req-") => {
                assert_eq!(record["correlation_id"], id, "{record}");
            }
            _ => {
                assert_eq!(message, "outside any request");
                assert!(record.get("correlation_id").is_none());
            }
        }
    }
    let handling: Vec<_> = records
        .iter()
        .filter(|r| r["message"].as_str().unwrap().starts_with("handling"))
        .collect();
    assert!(
        handling.iter().all(|r| r["user"] == 42),
        "the record's own pairs stay"
    );
}

#[test]
fn env_logger_key_value_output_shows_correlation_id() {
    let buffer = Buffer::default();
    let logger = CorrelationLogger::new(
        env_logger::Builder::new()
            .parse_filters("info")
            .target(env_logger::Target::Pipe(Box::new(buffer.clone())))
            .build(),
    );
    let record = |message: &str| {
        logger.log(
            &log::Record::builder()
                .level(log::Level::Info)
                .target("kv_test")
                .args(format_args!("{message}"))
                .build(),
        );
    };
    record("no request");
    sync_scope(CorrelationId::from_static("kv-env-1"), || {
        record("in a request")
    });
    logger.flush();
    let text = buffer.take_text();
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(!lines[0].contains("correlation_id"), "{}", lines[0]);
    assert!(lines[1].contains("in a request"), "{}", lines[1]);
    assert!(lines[1].contains("correlation_id=kv-env-1"), "{}", lines[1]);
}
