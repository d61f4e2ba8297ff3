//! `RequestLogger` as the global logger: what the `log` macros, the panic hook and the
//! adapters' status step do with a request's raised level and buffer.

use std::sync::OnceLock;

use correlation_core::adapter;
use correlation_core::request_log::{LogBuffer, RequestLogger};
use correlation_core::test_util::LogCapture;
use correlation_core::{CorrelationConfig, CorrelationContext, CorrelationId, install_panic_hook};
use log::Level;

/// The configuration every test uses, with the global logger installed for it: output
/// at `INFO`, buffers at `DEBUG`, the backend a capture.
fn setup() -> (&'static CorrelationConfig, &'static LogCapture) {
    static SETUP: OnceLock<(CorrelationConfig, &'static LogCapture)> = OnceLock::new();
    let (config, capture) = SETUP.get_or_init(|| {
        let config = CorrelationConfig::builder()
            .log_buffer(LogBuffer::new())
            .build()
            .unwrap();
        let capture: &'static LogCapture = Box::leak(Box::default());
        RequestLogger::new(capture)
            .parse_filters("info")
            .init(&config)
            .unwrap();
        install_panic_hook();
        (config, capture)
    });
    (config, capture)
}

fn request(config: &CorrelationConfig, id: &'static str) -> CorrelationContext {
    adapter::request_context(config, CorrelationId::from_static(id).into())
}

fn messages(capture: &LogCapture, id: &str) -> Vec<(Level, String)> {
    capture
        .records_for(id)
        .into_iter()
        .map(|record| (record.level, record.message))
        .collect()
}

#[test]
fn the_log_macros_keep_debug_lines_until_an_error() {
    let (config, capture) = setup();
    assert_eq!(log::max_level(), log::LevelFilter::Debug);
    let context = request(config, "macro-req");
    context.run(|| {
        log::debug!("looking up the order");
        log::info!("order found");
    });
    assert_eq!(
        messages(capture, "macro-req"),
        [(Level::Info, "order found".to_owned())]
    );
    context.run(|| log::error!("payment failed"));
    assert_eq!(
        messages(capture, "macro-req"),
        [
            (Level::Info, "order found".to_owned()),
            (Level::Debug, "looking up the order".to_owned()),
            (Level::Error, "payment failed".to_owned()),
        ]
    );
    // Outside any request, the output filter alone.
    log::debug!("outside-marker");
    assert!(capture.records_containing("outside-marker").is_empty());
}

#[test]
fn a_panic_under_the_id_writes_the_buffer_before_the_panic_line() {
    let (config, capture) = setup();
    let context = request(config, "panic-req");
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        context.run(|| {
            log::debug!("about to divide");
            panic!("division by zero");
        });
    }));
    assert!(caught.is_err());
    let lines = messages(capture, "panic-req");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0], (Level::Debug, "about to divide".to_owned()));
    assert_eq!(lines[1].0, Level::Error);
    assert!(lines[1].1.ends_with("division by zero"));
}

#[test]
fn a_5xx_writes_the_buffer_and_a_2xx_drops_it() {
    let (config, capture) = setup();
    let failed = request(config, "status-503");
    failed.run(|| log::debug!("upstream timed out"));
    adapter::response_status(&failed, 503);
    assert_eq!(
        messages(capture, "status-503"),
        [(Level::Debug, "upstream timed out".to_owned())]
    );
    // Later records of the failed request are written at once.
    failed.run(|| log::debug!("body aborted"));
    assert_eq!(messages(capture, "status-503").len(), 2);

    let ok = request(config, "status-200");
    ok.run(|| log::debug!("cache hit"));
    adapter::response_status(&ok, 200);
    drop(ok);
    assert!(messages(capture, "status-200").is_empty());
}
