//! `install_panic_hook`: a panic is logged once, at ERROR, on one line, under the ID of
//! the request or job it happened in, wherever that work runs; the hook installed before
//! it still runs.
// Tests start tasks outside any request on purpose.
#![allow(clippy::disallowed_methods)]

use std::sync::{Mutex, Once};

use correlation_core::test_util::{CapturedRecord, LogCapture};
use correlation_core::{
    CorrelationId, JobCarrier, PANIC_LOG_TARGET, install_panic_hook, scope, spawn, spawn_blocking,
    sync_scope,
};
use log::Level;

/// The messages the hook installed before ours saw.
static PREVIOUS_HOOK_SAW: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Installs the capture, a hook standing for Sentry's or the default one, then ours,
/// twice, as an application calling it from two places would.
fn setup() -> &'static LogCapture {
    static SETUP: Once = Once::new();
    let logs = LogCapture::install();
    SETUP.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PREVIOUS_HOOK_SAW.lock().unwrap().push(info.to_string());
            default(info);
        }));
        install_panic_hook();
        install_panic_hook();
    });
    logs
}

fn fresh_id() -> CorrelationId {
    CorrelationId::new(&uuid::Uuid::new_v4().simple().to_string()).unwrap()
}

/// The panic lines naming `marker`, which must be exactly one, under `id`.
fn the_panic_line(logs: &LogCapture, marker: &str, id: Option<&CorrelationId>) -> CapturedRecord {
    let lines: Vec<_> = logs
        .records_containing(marker)
        .into_iter()
        .filter(|r| r.target == PANIC_LOG_TARGET)
        .collect();
    assert_eq!(lines.len(), 1, "exactly one line for {marker}: {lines:?}");
    let line = lines.into_iter().next().unwrap();
    assert_eq!(line.level, Level::Error);
    assert_eq!(
        line.correlation_id.as_deref(),
        id.map(CorrelationId::as_str)
    );
    assert!(
        line.message.contains(&format!("panicked at {}:", file!())),
        "names the location: {}",
        line.message
    );
    assert!(!line.rendered.contains('\n'), "{}", line.rendered);
    let previous = PREVIOUS_HOOK_SAW.lock().unwrap();
    let seen = previous.iter().filter(|m| m.contains(marker)).count();
    assert_eq!(seen, 1, "the previous hook runs once too: {previous:?}");
    line
}

#[test]
fn a_panic_in_a_scope_is_logged_under_its_id() {
    let logs = setup();
    let id = fresh_id();
    let marker = uuid::Uuid::new_v4().to_string();
    let caught = std::panic::catch_unwind(|| sync_scope(id.clone(), || panic!("boom {marker}")));
    assert!(caught.is_err());
    let line = the_panic_line(logs, &marker, Some(&id));
    assert!(
        line.message.ends_with(&format!(": boom {marker}")),
        "{}",
        line.message
    );
    assert!(
        line.rendered
            .starts_with(&format!("ERROR [{id}] panic: panicked at "))
    );
}

#[test]
fn a_multi_line_or_hostile_message_stays_on_one_line() {
    let logs = setup();
    let id = fresh_id();
    let marker = uuid::Uuid::new_v4().to_string();
    let forged = format!("{marker}\nINFO  [{}] app: forged\u{1b}[2K", fresh_id());
    let caught = std::panic::catch_unwind(|| sync_scope(id.clone(), || panic!("{forged}")));
    assert!(caught.is_err());
    let line = the_panic_line(logs, &marker, Some(&id));
    assert!(
        line.message.ends_with(r"app: forged\u{1b}[2K") && line.message.contains(r"\nINFO  ["),
        "{}",
        line.message
    );
}

#[test]
fn a_payload_that_is_not_text_is_named_as_such() {
    let logs = setup();
    let id = fresh_id();
    let caught = std::panic::catch_unwind(|| sync_scope(id.clone(), || std::panic::panic_any(42)));
    assert!(caught.is_err());
    let lines = logs.records_for(id.as_str());
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].message.ends_with(": Box<dyn Any>"),
        "{}",
        lines[0].message
    );
}

#[test]
fn a_panic_outside_any_context_is_logged_without_an_id() {
    let logs = setup();
    let marker = uuid::Uuid::new_v4().to_string();
    let caught = std::panic::catch_unwind(|| panic!("outside {marker}"));
    assert!(caught.is_err());
    let line = the_panic_line(logs, &marker, None);
    assert!(
        line.rendered.starts_with("ERROR [-] panic: panicked at "),
        "{}",
        line.rendered
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_a_request_future_is_logged_under_its_id() {
    let logs = setup();
    let id = fresh_id();
    let marker = uuid::Uuid::new_v4().to_string();
    let in_request = marker.clone();
    let task = tokio::spawn(scope(id.clone(), async move {
        tokio::task::yield_now().await;
        panic!("request {in_request}");
    }));
    assert!(task.await.unwrap_err().is_panic());
    the_panic_line(logs, &marker, Some(&id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_a_spawned_task_is_logged_under_the_requests_id() {
    let logs = setup();
    let id = fresh_id();
    let marker = uuid::Uuid::new_v4().to_string();
    let in_request = marker.clone();
    let joined = scope(id.clone(), async move {
        spawn(async move { panic!("spawned {in_request}") }).await
    })
    .await;
    assert!(joined.unwrap_err().is_panic());
    the_panic_line(logs, &marker, Some(&id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_a_blocking_closure_is_logged_under_the_requests_id() {
    let logs = setup();
    let id = fresh_id();
    let marker = uuid::Uuid::new_v4().to_string();
    let in_request = marker.clone();
    let joined = scope(id.clone(), async move {
        spawn_blocking(move || panic!("blocking {in_request}")).await
    })
    .await;
    assert!(joined.unwrap_err().is_panic());
    the_panic_line(logs, &marker, Some(&id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_a_job_is_logged_under_the_requests_and_the_jobs_id() {
    let logs = setup();
    let id = fresh_id();
    let marker = uuid::Uuid::new_v4().to_string();
    let carrier = JobCarrier::new(Some(id.clone()), None);
    let in_job = marker.clone();
    let job = tokio::spawn(carrier.into_context().wrap(async move {
        tokio::task::yield_now().await;
        panic!("job {in_job}");
    }));
    assert!(job.await.unwrap_err().is_panic());
    let line = the_panic_line(logs, &marker, Some(&id));
    assert!(line.job_id.is_some(), "{line:?}");

    // A job context entered synchronously, as a worker without our layer would.
    let marker = uuid::Uuid::new_v4().to_string();
    let context = JobCarrier::new(Some(id.clone()), None).into_context();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        context.run(|| panic!("sync job {marker}"))
    }));
    assert!(caught.is_err());
    let line = the_panic_line(logs, &marker, Some(&id));
    assert_eq!(
        line.job_id.as_deref(),
        context.job_id().map(|job| job.as_str())
    );
}
