//! The scenario table. Every scenario takes a starter (one adapter's
//! `servers::<fw>::start`), starts the demo app with the configuration it needs, talks
//! to it over real HTTP and asserts on the responses and on the captured log lines.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use correlation_core::strategy::{IdValidator, StrictUuidV4};
use correlation_core::test_util::{CapturedRecord, LogCapture};
use correlation_core::{
    CorrelationConfig, CorrelationId, IdSource, LogFormat, OnInvalid, PANIC_LOG_TARGET,
    TrustPolicy, sync_scope,
};
use futures_util::{SinkExt, StreamExt};
use log::Level;
use reqwest::header::{HeaderMap, HeaderValue};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};
use uuid::Uuid;

use crate::TestServer;
use crate::client::{RawConnection, RawResponse};

/// Starts one adapter's demo app with a configuration.
pub type Starter = dyn Fn(CorrelationConfig) -> Pin<Box<dyn Future<Output = TestServer>>>;

/// One adapter's `start` function as a [`Starter`].
pub fn starter<F, Fut>(
    start: F,
) -> impl Fn(CorrelationConfig) -> Pin<Box<dyn Future<Output = TestServer>>>
where
    F: Fn(CorrelationConfig) -> Fut,
    Fut: Future<Output = TestServer> + 'static,
{
    move |config| Box::pin(start(config))
}

/// Expands to one `#[tokio::test]` per scenario, run against the adapter started by
/// `$start`; the scenarios about the demo's own configuration get it from `$demo_config`.
#[macro_export]
macro_rules! conformance_suite {
    ($start:path, $demo_config:path) => {
        $crate::conformance_suite!(@demo_tests $start, $demo_config;
            a_valid_traceparent_alone_is_the_id,
            the_request_id_wins_over_traceparent,
            malformed_traceparent_is_replaced_with_one_warning,
        );
        $crate::conformance_suite!(@fields_tests $start, $demo_config;
            trusted_baggage_puts_fields_on_every_line_of_its_request,
            baggage_from_an_untrusted_peer_sets_nothing,
            baggage_keys_not_allowed_are_never_logged,
            hostile_baggage_leaves_the_request_served_and_lines_whole,
            a_field_set_in_a_handler_reaches_its_spawned_task,
        );
        $crate::conformance_suite!(@tests $start;
            valid_ids_are_echoed_verbatim,
            missing_or_empty_header_gets_a_fresh_hex_v4,
            invalid_ids_are_replaced_with_one_warning,
            handler_sees_the_final_id_in_the_request_header,
            first_of_two_incoming_headers_counts,
            spawned_and_blocking_work_see_the_id,
            not_found_errors_and_panics_carry_the_header,
            keep_alive_requests_each_get_their_own_id,
            concurrent_requests_each_get_their_own_id,
            other_response_headers_are_untouched,
            every_response_has_exactly_one_correlation_header,
            hostile_headers_are_replaced_and_never_logged_raw,
            websocket_upgrade_carries_the_id_and_messages_log_under_it,
            websocket_messages_cannot_forge_log_lines,
            panics_are_logged_once_under_the_requests_id,
            requests_the_http_server_refuses_carry_no_id,
            streamed_body_logs_carry_the_id,
            known_size_body_logs_carry_the_id,
            rejecting_configuration_answers_400,
            custom_header_names_are_honoured,
            skipped_paths_are_left_alone,
            access_log_lines_carry_the_id,
            hostile_header_table,
            stress_ten_thousand_requests_without_cross_talk,
            disconnecting_clients_break_nothing,
            only_trusted_peers_set_the_id,
            per_hop_ids_are_echoed_beside_the_correlation_id,
        );
    };
    (@demo_tests $start:path, $demo_config:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                $crate::scenarios::logs();
                let start = $crate::scenarios::starter($start);
                $crate::scenarios::$name(&start, $demo_config()).await;
            }
        )*
    };
    (@fields_tests $start:path, $demo_config:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                $crate::scenarios::logs();
                let start = $crate::scenarios::starter($start);
                $crate::fields::$name(&start, $demo_config()).await;
            }
        )*
    };
    (@tests $start:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                // Installed before the server starts, so no line of the scenario is lost.
                $crate::scenarios::logs();
                let start = $crate::scenarios::starter($start);
                $crate::scenarios::$name(&start).await;
            }
        )*
    };
}

/// The process-wide log capture the scenarios assert on.
pub fn logs() -> &'static LogCapture {
    LogCapture::install()
}

/// A fresh UUID v4 as 32 hex characters.
pub fn fresh_hex() -> String {
    Uuid::new_v4().simple().to_string()
}

/// Whether `id` looks like one of our generated IDs: a UUID v4 as 32 lowercase hex.
pub fn is_generated(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && StrictUuidV4.is_valid(id)
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Every `x-request-id` value.
    pub ids: Vec<String>,
    /// All headers.
    pub headers: HeaderMap,
    /// The body as text.
    pub body: String,
}

impl Reply {
    /// Reads `response` whole; `id_header` names the correlation header.
    async fn read(response: reqwest::Response, id_header: &str) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap_or_default();
        Self {
            status,
            ids: values(&headers, id_header),
            headers,
            body,
        }
    }

    /// The single correlation ID of the response; fails the test unless there is exactly one.
    pub fn id(&self) -> &str {
        assert_eq!(
            self.ids.len(),
            1,
            "exactly one correlation header: {:?}",
            self.ids
        );
        &self.ids[0]
    }
}

fn values(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect()
}

/// `GET path` with the given request headers.
pub async fn get_with(server: &TestServer, path: &str, headers: HeaderMap) -> Reply {
    get_named(server, path, headers, "x-request-id").await
}

async fn get_named(server: &TestServer, path: &str, headers: HeaderMap, id_header: &str) -> Reply {
    let response = client()
        .get(server.url(path))
        .headers(headers)
        .send()
        .await
        .unwrap_or_else(|err| panic!("GET {path}: {err}"));
    Reply::read(response, id_header).await
}

/// `GET path`, with `x-request-id: id` when given.
pub async fn get(server: &TestServer, path: &str, id: Option<&str>) -> Reply {
    let mut headers = HeaderMap::new();
    if let Some(id) = id {
        headers.insert("x-request-id", HeaderValue::from_str(id).unwrap());
    }
    get_with(server, path, headers).await
}

fn client() -> reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap()
        })
        .clone()
}

fn warnings_for(id: &str) -> Vec<CapturedRecord> {
    logs()
        .records_for(id)
        .into_iter()
        .filter(|r| r.level == Level::Warn)
        .collect()
}

/// How long a scenario waits for log lines written after the response has left (some
/// adapters log from other threads then): generous, because a loaded machine delays them,
/// and spent only when something is wrong.
pub const LATE_LINES: Duration = Duration::from_secs(15);

/// Polls `check` until it is satisfied, or [`LATE_LINES`] has passed: returns its last
/// answer either way, for the caller to assert on.
pub async fn eventually<T>(mut check: impl FnMut() -> (bool, T)) -> T {
    let deadline = tokio::time::Instant::now() + LATE_LINES;
    loop {
        let (done, answer) = check();
        if done || tokio::time::Instant::now() >= deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `id` has at least `count` log records, or [`LATE_LINES`] has passed.
async fn records_eventually(id: &str, count: usize) -> Vec<CapturedRecord> {
    eventually(|| {
        let records = logs().records_for(id);
        (records.len() >= count, records)
    })
    .await
}

/// Asserts that every one of `ids` ends up owning the same number of log lines, at least
/// two (the handler's and its spawned task's): a line logged under the wrong ID leaves one
/// ID short and another over, for good. Lines written after the response only raise
/// counts, so this waits until they are all equal.
async fn assert_equal_line_counts(ids: &[String]) {
    let (fewest, most) = eventually(|| {
        let mut counts = std::collections::HashMap::new();
        for record in logs().records() {
            if let Some(id) = record.correlation_id {
                *counts.entry(id).or_insert(0usize) += 1;
            }
        }
        let per_id = ids.iter().map(|id| counts.get(id).copied().unwrap_or(0));
        let (fewest, most) = per_id.fold((usize::MAX, 0), |(fewest, most), count| {
            (fewest.min(count), most.max(count))
        });
        (fewest == most && fewest >= 2, (fewest, most))
    })
    .await;
    assert!(
        fewest == most && fewest >= 2,
        "every request should own the same number of lines (at least 2): between {fewest} and {most}"
    );
}

fn assert_never_logged(raw: &str) {
    let leaked = logs().records_containing(raw);
    assert!(
        leaked.is_empty(),
        "rejected value reached a log line: {leaked:?}"
    );
}

/// Valid hex and hyphenated v4 IDs, in lower and upper case, are echoed verbatim and
/// reach the handler unchanged, without a warning.
pub async fn valid_ids_are_echoed_verbatim(start: &Starter) {
    let server = start(CorrelationConfig::default()).await;
    let hex = fresh_hex();
    let hyphenated = Uuid::new_v4().hyphenated().to_string();
    for id in [
        hex.clone(),
        hex.to_uppercase(),
        hyphenated.clone(),
        hyphenated.to_uppercase(),
    ] {
        let reply = get(&server, "/id", Some(&id)).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.id(), id);
        assert_eq!(reply.body, id);
        assert!(warnings_for(&id).is_empty());
    }
}

/// No header, or an empty one, gets a fresh 32-hex UUID v4 and no warning.
pub async fn missing_or_empty_header_gets_a_fresh_hex_v4(start: &Starter) {
    let server = start(CorrelationConfig::default()).await;
    let absent = get(&server, "/id", None).await;
    let mut empty_header = HeaderMap::new();
    empty_header.insert("x-request-id", HeaderValue::from_static(""));
    let empty = get_with(&server, "/id", empty_header).await;
    for reply in [&absent, &empty] {
        assert_eq!(reply.status, 200);
        assert!(is_generated(reply.id()), "{reply:?}");
        assert_eq!(reply.body, reply.id());
        assert!(warnings_for(reply.id()).is_empty());
    }
    assert_ne!(absent.id(), empty.id());
}

/// Every invalid value is replaced by a fresh ID, and exactly one WARN names the new ID
/// and never the old value.
pub async fn invalid_ids_are_replaced_with_one_warning(start: &Starter) {
    let server = start(CorrelationConfig::default()).await;
    let mut hex_ending_in_x = fresh_hex();
    hex_ending_in_x.replace_range(31.., "x");
    // A random 32-hex ID as nginx's `$request_id` makes: no UUID version 4 nibble.
    let mut nginx = fresh_hex();
    nginx.replace_range(12..13, "0");
    let invalid = [
        "test".to_owned(),
        "bad-uuid".to_owned(),
        "1x".repeat(16),
        hex_ending_in_x,
        "0".repeat(32),
        Uuid::now_v1(&[1, 2, 3, 4, 5, 6]).to_string(),
        nginx,
    ];
    for value in &invalid {
        let reply = get(&server, "/id", Some(value)).await;
        assert_eq!(reply.status, 200, "{value}");
        let new = reply.id();
        assert!(is_generated(new), "{value} was not replaced: {new}");
        assert_ne!(new, value);
        assert_eq!(reply.body, new);
        let warnings = warnings_for(new);
        assert_eq!(warnings.len(), 1, "{value}: {warnings:?}");
        assert_eq!(warnings[0].target, "correlation");
        assert_eq!(
            warnings[0].message,
            format!(
                "Generated new request ID ({new}), since request header value failed validation"
            )
        );
        assert!(
            logs()
                .records_for(new)
                .iter()
                .all(|r| !r.rendered.contains(value.as_str())),
            "{value} was logged"
        );
        if value.len() >= 16 {
            assert_never_logged(value);
        }
    }
}

/// The handler reads the final ID from the request header.
pub async fn handler_sees_the_final_id_in_the_request_header(start: &Starter) {
    let server = start(CorrelationConfig::default()).await;
    let valid = fresh_hex();
    let reply = get(&server, "/header", Some(&valid)).await;
    assert_eq!(reply.body, valid);
    let reply = get(&server, "/header", None).await;
    assert_eq!(reply.body, reply.id());
    let reply = get(&server, "/header", Some("invalid")).await;
    assert_eq!(reply.body, reply.id());
    assert!(is_generated(&reply.body));
}

/// With the header twice, the first value counts, and the handler sees one value.
pub async fn first_of_two_incoming_headers_counts(start: &Starter) {
    let server = start(CorrelationConfig::default()).await;
    let (first, second) = (fresh_hex(), fresh_hex());
    let mut headers = HeaderMap::new();
    headers.append("x-request-id", HeaderValue::from_str(&first).unwrap());
    headers.append("x-request-id", HeaderValue::from_str(&second).unwrap());
    let reply = get_with(&server, "/header", headers).await;
    assert_eq!(reply.id(), first);
    assert_eq!(reply.body, first);

    let mut headers = HeaderMap::new();
    headers.append("x-request-id", HeaderValue::from_static("invalid-first"));
    headers.append("x-request-id", HeaderValue::from_str(&second).unwrap());
    let reply = get_with(&server, "/header", headers).await;
    assert!(is_generated(reply.id()));
    assert_ne!(reply.id(), second);
    assert_eq!(reply.body, reply.id());
}

/// Work started with core's spawn and blocking helpers sees the request's ID.
pub async fn spawned_and_blocking_work_see_the_id(start: &Starter) {
    let server = start(CorrelationConfig::default()).await;
    for path in ["/spawn", "/blocking"] {
        let id = fresh_hex();
        let reply = get(&server, path, Some(&id)).await;
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.body, id, "{path}");
        let records = records_eventually(&id, 2).await;
        assert!(
            records.len() >= 2,
            "{path}: the handler and the task each log: {records:?}"
        );
    }
}

/// 404s, handler errors and panics carry the header; the server keeps serving.
pub async fn not_found_errors_and_panics_carry_the_header(start: &Starter) {
    let server = start(CorrelationConfig::default()).await;
    for (path, status) in [
        ("/missing", 404),
        ("/error", 500),
        ("/panic", 500),
        ("/", 200),
    ] {
        let id = fresh_hex();
        let reply = get(&server, path, Some(&id)).await;
        assert_eq!(reply.status, status, "{path}");
        assert_eq!(reply.id(), id, "{path}");
    }
    let reply = get(&server, "/panic", None).await;
    assert_eq!(reply.status, 500);
    assert!(is_generated(reply.id()));
    assert_eq!(get(&server, "/", None).await.status, 200);
}

/// Requests on one keep-alive connection each get their own ID.
pub async fn keep_alive_requests_each_get_their_own_id(start: &Starter) {
    let server = start(CorrelationConfig::default()).await;
    let mut connection = RawConnection::connect(server.addr).await.unwrap();
    let given = fresh_hex();
    let mut seen = Vec::new();
    for n in 0..6 {
        let headers: &[(&[u8], &[u8])] = if n == 2 {
            &[(b"x-request-id", given.as_bytes())]
        } else {
            &[]
        };
        let response = connection.get("/id", headers).await.unwrap();
        let ids = response.header_values("x-request-id");
        assert_eq!(ids.len(), 1);
        assert_eq!(String::from_utf8_lossy(&response.body), ids[0]);
        seen.push(ids[0].clone());
    }
    assert_eq!(seen[2], given);
    let mut distinct = seen.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        seen.len(),
        "an ID stuck to the connection: {seen:?}"
    );
}

/// 500 concurrent requests with distinct IDs each get back their own, in the header, the
/// body and the log lines.
pub async fn concurrent_requests_each_get_their_own_id(start: &Starter) {
    let server = start(CorrelationConfig::default()).await;
    let ids: Vec<String> = (0..500).map(|_| fresh_hex()).collect();
    let url = server.url("/spawn");
    let requests = ids.iter().map(|id| {
        let request = client().get(&url).header("x-request-id", id);
        async move {
            let response = request.send().await.unwrap();
            let echoed = values(response.headers(), "x-request-id");
            (echoed, response.text().await.unwrap())
        }
    });
    let replies = futures_util::stream::iter(requests)
        .buffered(500)
        .collect::<Vec<_>>()
        .await;
    for (id, (echoed, body)) in ids.iter().zip(&replies) {
        assert_eq!(echoed, std::slice::from_ref(id));
        assert_eq!(body, id);
    }
    assert_equal_line_counts(&ids).await;
}

/// Other response headers, repeated ones included, are left as the handler set them.
pub async fn other_response_headers_are_untouched(start: &Starter) {
    let server = start(CorrelationConfig::default()).await;
    let id = fresh_hex();
    let reply = get(&server, "/cookies", Some(&id)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "cookies");
    assert_eq!(values(&reply.headers, "set-cookie"), ["a=1", "b=2"]);
    assert_eq!(values(&reply.headers, "x-demo"), ["kept"]);
    assert_eq!(reply.id(), id, "the handler's own x-request-id is replaced");
}

/// Whatever the route and whatever the request the HTTP server hands to the app, exactly
/// one correlation header leaves (for requests it refuses itself, see
/// [`requests_the_http_server_refuses_carry_no_id`]).
pub async fn every_response_has_exactly_one_correlation_header(start: &Starter) {
    let server = start(CorrelationConfig::default()).await;
    let routes = [
        "/",
        "/id",
        "/header",
        "/spawn",
        "/blocking",
        "/error",
        "/panic",
        "/missing",
        "/cookies",
        "/stream",
    ];
    for path in routes {
        for id in [Some(fresh_hex()), None, Some("bad value".to_owned())] {
            let reply = get(&server, path, id.as_deref()).await;
            assert_eq!(reply.ids.len(), 1, "{path} with {id:?}: {:?}", reply.ids);
        }
    }
}

/// Hostile header values (8 KB, bytes above 0x7F, tabs, many duplicates) are replaced,
/// never echoed, never logged raw, and never crash the server.
pub async fn hostile_headers_are_replaced_and_never_logged_raw(start: &Starter) {
    let server = start(CorrelationConfig::default()).await;
    let marker = fresh_hex();
    let huge = format!("huge{marker}{}", "a".repeat(8 * 1024));
    let high_bytes = [b"caf\xc3\xa9-".as_slice(), marker.as_bytes(), b"-\xff\xfe"].concat();
    let tabs = format!("tab\t{marker}\tvalue");
    let hostile: [&[u8]; 3] = [huge.as_bytes(), &high_bytes, tabs.as_bytes()];
    let mut connection = RawConnection::connect(server.addr).await.unwrap();
    for value in hostile {
        let response: RawResponse = connection
            .get("/header", &[(b"x-request-id", value)])
            .await
            .unwrap();
        assert_eq!(response.status, 200);
        let ids = response.header_values("x-request-id");
        assert_eq!(ids.len(), 1);
        assert!(is_generated(&ids[0]), "{:?}", ids[0]);
        assert_eq!(String::from_utf8_lossy(&response.body), ids[0]);
        assert_eq!(warnings_for(&ids[0]).len(), 1);
    }
    assert_never_logged(&marker);
    // Many duplicates: the first counts, exactly one leaves.
    let first = fresh_hex();
    let others: Vec<String> = (0..50).map(|_| fresh_hex()).collect();
    let duplicates: Vec<(&[u8], &[u8])> = std::iter::once(first.as_bytes())
        .chain(others.iter().map(String::as_bytes))
        .map(|value| (b"x-request-id".as_slice(), value))
        .collect();
    let response = connection.get("/id", &duplicates).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header_values("x-request-id"),
        std::slice::from_ref(&first)
    );
    assert_eq!(String::from_utf8_lossy(&response.body), first);
    assert_eq!(get(&server, "/", None).await.status, 200);
}

/// The WebSocket upgrade's 101 carries the ID and every message is logged under it.
pub async fn websocket_upgrade_carries_the_id_and_messages_log_under_it(start: &Starter) {
    let server = start(CorrelationConfig::default()).await;
    let id = fresh_hex();
    let mut request = server.ws_url("/ws").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("x-request-id", HeaderValue::from_str(&id).unwrap());
    let (mut socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.status().as_u16(), 101);
    assert_eq!(
        values(response.headers(), "x-request-id"),
        std::slice::from_ref(&id)
    );
    for n in 0..3 {
        let text = format!("hello {n} {}", fresh_hex());
        socket.send(Message::text(text.clone())).await.unwrap();
        let echoed = socket.next().await.unwrap().unwrap();
        assert_eq!(echoed.into_text().unwrap().as_str(), text);
        let found = eventually(|| {
            let found = logs()
                .records_for(&id)
                .iter()
                .any(|r| r.message.contains(&text) && r.level == Level::Info);
            (found, found)
        })
        .await;
        assert!(found, "message {text:?} not logged under {id}");
    }
    socket.close(None).await.ok();
}

/// A WebSocket message is text the client controls, and the demos log it. One holding a
/// line break followed by a complete log line under another ID, and terminal escape
/// sequences, is still one line under the connection's ID, with the escapes visible:
/// no line is forged and nothing reaches the terminal raw.
pub async fn websocket_messages_cannot_forge_log_lines(start: &Starter) {
    let server = start(CorrelationConfig::default()).await;
    let (id, victim, marker) = (fresh_hex(), fresh_hex(), fresh_hex());
    let mut request = server.ws_url("/ws").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("x-request-id", HeaderValue::from_str(&id).unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let forged =
        format!("{marker}\nINFO  [{victim}] app: forged\r\n\u{1b}[2K\u{1b}[31mred\u{202e}\u{85}");
    socket.send(Message::text(forged.clone())).await.unwrap();
    let echoed = socket.next().await.unwrap().unwrap();
    assert_eq!(echoed.into_text().unwrap().as_str(), forged);
    socket.close(None).await.ok();

    // tungstenite logs the frames too, at TRACE: those lines are checked below.
    let logged = eventually(|| {
        let logged =
            logs().filtered(|r| r.message.contains(&format!("websocket received: {marker}")));
        (!logged.is_empty(), logged)
    })
    .await;
    assert_eq!(logged.len(), 1, "the message is one record: {logged:?}");
    let record = &logged[0];
    assert_eq!(record.correlation_id.as_deref(), Some(id.as_str()));
    // The handler logs the text as it came; the format is what keeps it on one line.
    assert!(record.message.contains(&forged), "{record:?}");
    let escaped = format!(
        r"{marker}\nINFO  [{victim}] app: forged\r\n\u{{1b}}[2K\u{{1b}}[31mred\u{{202e}}\u{{85}}"
    );
    // `rendered` is written by the same code as `correlation_core::format`; the line is
    // also written here through `LogFormat` itself, as the env_logger of the demos would.
    let mut written = Vec::new();
    sync_scope(CorrelationId::new(&id).unwrap(), || {
        LogFormat::new().write(
            &mut written,
            &log::Record::builder()
                .level(record.level)
                .target(&record.target)
                .args(format_args!("{}", record.message))
                .build(),
        )
    })
    .unwrap();
    let written = String::from_utf8(written).unwrap();
    // The demos' lines start with the time, which the capture leaves out.
    let (time, written) = written.split_once(' ').unwrap();
    assert!(time.len() == 20 && time.ends_with('Z'), "{time:?}");
    for line in [format!("{}\n", record.rendered), written.to_owned()] {
        assert_eq!(line.lines().count(), 1, "{line:?}");
        assert!(line.starts_with(&format!("INFO  [{id}] ")), "{line:?}");
        assert!(line.trim_end().ends_with(&escaped), "{line:?}");
        assert!(
            !line.trim_end().contains(|c: char| c.is_control()),
            "a control character reached the line: {line:?}"
        );
    }
    for other in logs().records_containing(&marker) {
        assert!(!other.rendered.contains('\n'), "{other:?}");
    }
    assert!(
        logs().records_for(&victim).is_empty(),
        "a line appeared under the victim's ID"
    );
    let forged_lines: Vec<_> = logs()
        .records()
        .into_iter()
        .flat_map(|r| r.rendered.lines().map(str::to_owned).collect::<Vec<_>>())
        .filter(|line| line.starts_with(&format!("INFO  [{victim}]")))
        .collect();
    assert!(forged_lines.is_empty(), "forged: {forged_lines:?}");
}

/// A handler's panic is answered 500 with the request's ID, and logged once, at ERROR, on
/// one line under that ID, naming the panic and where it happened (the demos install
/// `correlation_core::install_panic_hook`).
pub async fn panics_are_logged_once_under_the_requests_id(start: &Starter) {
    let server = start(CorrelationConfig::default()).await;
    for given in [Some(fresh_hex()), None] {
        let reply = get(&server, "/panic", given.as_deref()).await;
        assert_eq!(reply.status, 500);
        let id = reply.id().to_owned();
        if let Some(given) = &given {
            assert_eq!(&id, given);
        }
        let panics: Vec<_> = eventually(|| {
            let panics: Vec<_> = logs()
                .records_for(&id)
                .into_iter()
                .filter(|r| r.target == PANIC_LOG_TARGET)
                .collect();
            (!panics.is_empty(), panics)
        })
        .await;
        assert_eq!(panics.len(), 1, "one panic line under {id}: {panics:?}");
        let line = &panics[0];
        assert_eq!(line.level, Level::Error);
        assert!(
            line.message
                .contains("the demo panic route panicked on purpose")
                && line.message.starts_with("panicked at examples/"),
            "{line:?}"
        );
        assert!(
            line.rendered
                .starts_with(&format!("ERROR [{id}] panic: panicked at examples/")),
            "{line:?}"
        );
        assert!(!line.rendered.contains('\n'), "{line:?}");
        let naming: Vec<_> = logs()
            .records_for(&id)
            .into_iter()
            .filter(|r| r.level == Level::Error && r.message.contains("panicked on purpose"))
            .collect();
        assert_eq!(naming.len(), 1, "the panic is named once: {naming:?}");
    }
    assert_eq!(get(&server, "/", None).await.status, 200);
}

/// Raw header lines, `(name, value)`.
type RawHeaders = Vec<(Vec<u8>, Vec<u8>)>;

/// Some requests are answered by the HTTP server itself, before any middleware runs:
/// malformed heads get 400, too many or too large headers 431. Those answers cannot carry
/// a correlation ID (no framework offers a hook for them), the value that was refused
/// reaches no log line, and the server keeps serving.
pub async fn requests_the_http_server_refuses_carry_no_id(start: &Starter) {
    let server = start(CorrelationConfig::default()).await;
    let marker = fresh_hex();
    let header = |value: &[u8]| vec![(b"x-request-id".to_vec(), value.to_vec())];
    let with_marker = |before: &[u8], after: &[u8]| [before, marker.as_bytes(), after].concat();
    // (case, raw header lines, the server's status)
    let cases: Vec<(&str, RawHeaders, u16)> = vec![
        (
            "raw ESC",
            header(&with_marker(b"\x1b[31m", b"\x1b[0m")),
            400,
        ),
        ("raw NUL", header(&with_marker(b"", b"\x00")), 400),
        ("raw CR", header(&with_marker(b"", b"\rINFO forged")), 400),
        ("raw DEL", header(&with_marker(b"", b"\x7f")), 400),
        ("obs-fold", header(&with_marker(b"", b"\r\n folded")), 400),
        (
            "invalid header name",
            vec![(b"x request(id)".to_vec(), marker.as_bytes().to_vec())],
            400,
        ),
        (
            "1,000 headers",
            (0..1_000)
                .map(|n| {
                    (
                        format!("x-filler-{n}").into_bytes(),
                        marker.as_bytes().to_vec(),
                    )
                })
                .collect(),
            431,
        ),
        (
            "1 MB header",
            header(&with_marker(b"", &[b'a'; 1 << 20])),
            431,
        ),
    ];
    for (name, headers, status) in &cases {
        let raw: Vec<(&[u8], &[u8])> = headers
            .iter()
            .map(|(name, value)| (name.as_slice(), value.as_slice()))
            .collect();
        let mut connection = RawConnection::connect(server.addr).await.unwrap();
        let response = connection
            .get("/id", &raw)
            .await
            .unwrap_or_else(|err| panic!("{name}: the server did not answer: {err}"));
        assert_eq!(response.status, *status, "{name}");
        assert!(
            response.header_values("x-request-id").is_empty(),
            "{name}: the server's own answer carries an ID after all; update the README: {:?}",
            response.headers
        );
    }
    assert_never_logged(&marker);
    let reply = get(&server, "/id", None).await;
    assert_eq!(reply.status, 200, "the server still serves");
    assert!(is_generated(reply.id()));
}

/// Log lines written while a streaming body is produced carry the ID.
pub async fn streamed_body_logs_carry_the_id(start: &Starter) {
    let server = start(CorrelationConfig::default()).await;
    let id = fresh_hex();
    let reply = get(&server, "/stream", Some(&id)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.id(), id);
    let records = records_eventually(&id, 3).await;
    for n in 0..3 {
        let chunk = format!("streaming chunk {n}");
        assert!(
            records.iter().any(|r| r.message.contains(&chunk)),
            "{chunk} not logged under {id}: {records:?}"
        );
    }
}

/// A middleware inside ours that logs while a body of known size is read logs under the
/// request's ID: once wrapped by that middleware, the body is no longer bytes in memory,
/// so ours polls it inside the request's scope.
pub async fn known_size_body_logs_carry_the_id(start: &Starter) {
    let server = start(CorrelationConfig::default()).await;
    let id = fresh_hex();
    let reply = get(&server, "/download", Some(&id)).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "downloaded\n"));
    assert_eq!(reply.id(), id);
    assert_eq!(
        reply
            .headers
            .get("content-length")
            .map(HeaderValue::as_bytes),
        Some(&b"11"[..]),
        "the body's size is known: {:?}",
        reply.headers
    );
    let records = eventually(|| {
        let records = logs().records_for(&id);
        let sent = records
            .iter()
            .any(|r| r.message.contains("download body: sent 11 bytes"));
        (sent, records)
    })
    .await;
    assert!(
        records
            .iter()
            .any(|r| r.message.contains("download body: sent 11 bytes")),
        "the middleware's line while the body was read is not logged under {id}: {records:?}"
    );
}

/// With `OnInvalid::Reject`, an invalid ID gets a 400 carrying a fresh ID.
pub async fn rejecting_configuration_answers_400(start: &Starter) {
    let config = CorrelationConfig::builder()
        .on_invalid(OnInvalid::Reject)
        .build()
        .unwrap();
    let server = start(config).await;
    let reply = get(&server, "/id", Some("not-a-uuid-rejected")).await;
    assert_eq!(reply.status, 400);
    assert!(is_generated(reply.id()));
    assert_never_logged("not-a-uuid-rejected");
    let id = fresh_hex();
    let reply = get(&server, "/id", Some(&id)).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, id.as_str()));
}

/// Several incoming names in priority order; the response uses the first.
pub async fn custom_header_names_are_honoured(start: &Starter) {
    let config = CorrelationConfig::builder()
        .incoming_header_names(["X-Correlation-ID", "X-Request-ID"])
        .build()
        .unwrap();
    let server = start(config).await;
    let (preferred, fallback) = (fresh_hex(), fresh_hex());
    let mut headers = HeaderMap::new();
    headers.insert("x-request-id", HeaderValue::from_str(&fallback).unwrap());
    let reply = get_named(&server, "/header", headers.clone(), "x-correlation-id").await;
    assert_eq!(reply.id(), fallback);
    assert_eq!(reply.body, fallback);
    headers.insert(
        "x-correlation-id",
        HeaderValue::from_str(&preferred).unwrap(),
    );
    let reply = get_named(&server, "/header", headers, "x-correlation-id").await;
    assert_eq!(reply.id(), preferred);
    assert_eq!(reply.body, preferred);
}

/// Skipped paths get no ID and no header.
pub async fn skipped_paths_are_left_alone(start: &Starter) {
    let config = CorrelationConfig::builder()
        .skip_paths(["/"])
        .build()
        .unwrap();
    let server = start(config).await;
    let reply = get(&server, "/", Some(&fresh_hex())).await;
    assert_eq!(reply.status, 200);
    assert!(reply.ids.is_empty(), "{:?}", reply.ids);
    let reply = get(&server, "/id", None).await;
    assert!(is_generated(reply.id()));
}

/// The loggers of each framework's own request log, as the demos place them inside ours.
pub const ACCESS_LOG_TARGETS: &[&str] = &[
    "tower_http::trace::on_response",
    "actix_web::middleware::logger",
    "poem::middleware::tracing_mw",
];

/// The framework's own access-log line for a request carries the request's ID.
pub async fn access_log_lines_carry_the_id(start: &Starter) {
    let server = start(CorrelationConfig::default()).await;
    for (path, status) in [("/", "200"), ("/missing", "404")] {
        let id = fresh_hex();
        let reply = get(&server, path, Some(&id)).await;
        assert_eq!(reply.id(), id);
        let access: Vec<_> = eventually(|| {
            let access: Vec<_> = logs()
                .records_for(&id)
                .into_iter()
                .filter(|r| ACCESS_LOG_TARGETS.iter().any(|t| r.target.starts_with(t)))
                .collect();
            (access.iter().any(|r| r.message.contains(status)), access)
        })
        .await;
        assert!(
            access.iter().any(|r| r.message.contains(status)),
            "no access-log line with {status} under {id}: {:?}",
            logs().records_for(&id)
        );
    }
}

/// What a hostile case expects of the ID that leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A freshly generated ID replaces the value.
    Replaced,
    /// The value is safe and valid: it is kept.
    Kept,
}

/// One row of the hostile-header table: a name, the raw header lines to send (`{m}` in a
/// value is replaced by a unique marker), and what should leave.
struct HostileCase {
    name: &'static str,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    expect: Expect,
}

fn case(name: &'static str, value: &[u8], expect: Expect) -> HostileCase {
    HostileCase {
        name,
        headers: vec![(b"x-request-id".to_vec(), value.to_vec())],
        expect,
    }
}

fn hostile_cases(marker: &str) -> Vec<HostileCase> {
    let m = marker.as_bytes();
    let with = |parts: &[&[u8]]| parts.concat();
    vec![
        case("empty", b"", Expect::Replaced),
        case("whitespace only", b"    ", Expect::Replaced),
        case("8 KB", &with(&[m, &[b'a'; 8 * 1024]]), Expect::Replaced),
        case("64 KB", &with(&[m, &[b'b'; 64 * 1024]]), Expect::Replaced),
        case(
            "UTF-8 above 0x7F",
            &with(&[b"caf\xc3\xa9-", m]),
            Expect::Replaced,
        ),
        case(
            "raw 0xFF bytes",
            &with(&[m, b"\xff\xfe\xfd"]),
            Expect::Replaced,
        ),
        case(
            "right-to-left override",
            &with(&[m, b"\xe2\x80\xae-gnp.exe"]),
            Expect::Replaced,
        ),
        case("tabs", &with(&[b"tab\t", m, b"\tvalue"]), Expect::Replaced),
        case(
            "encoded CRLF",
            &with(&[m, b"%0d%0aX-Injected:%20yes"]),
            Expect::Replaced,
        ),
        case(
            "encoded LF and null",
            &with(&[m, b"%0a%00"]),
            Expect::Replaced,
        ),
        case(
            "ANSI escape",
            &with(&[b"\x1b[31m", m, b"\x1b[0m"]),
            Expect::Replaced,
        ),
        case(
            "JSON metacharacters",
            &with(&[b"{\"id\":\"", m, b"\",\"admin\":true}"]),
            Expect::Replaced,
        ),
        case(
            "log-format metacharacters",
            &with(&[b"] [", m, b"] INFO forged: line"]),
            Expect::Replaced,
        ),
        case(
            "HTML",
            &with(&[b"<script>", m, b"</script>"]),
            Expect::Replaced,
        ),
        case(
            "SQL",
            &with(&[b"'; DROP TABLE logs; --", m]),
            Expect::Replaced,
        ),
        case(
            "shell",
            &with(&[b"$(rm -rf /)`", m, b"`"]),
            Expect::Replaced,
        ),
        case(
            "format string",
            &with(&[b"%s%s%n{}{0}", m]),
            Expect::Replaced,
        ),
        case(
            "UUID plus suffix",
            &with(&[b"3758c31e-1177-4540-ba33-0109c405579a-", m]),
            Expect::Replaced,
        ),
        case(
            "dashes only",
            b"------------------------------------",
            Expect::Replaced,
        ),
        case("129 characters", &with(&[m, &[b'c'; 97]]), Expect::Replaced),
        HostileCase {
            name: "100 duplicate headers, first invalid",
            headers: std::iter::once((b"x-request-id".to_vec(), with(&[b"dup-", m])))
                .chain((0..99).map(|_| (b"x-request-id".to_vec(), fresh_hex().into_bytes())))
                .collect(),
            expect: Expect::Replaced,
        },
        HostileCase {
            name: "header name in odd case, invalid value",
            headers: vec![(b"X-ReQuEsT-iD".to_vec(), with(&[b"odd-case-", m]))],
            expect: Expect::Replaced,
        },
        HostileCase {
            name: "header name in odd case, valid value",
            headers: vec![(b"x-REQUEST-id".to_vec(), m.to_vec())],
            expect: Expect::Kept,
        },
    ]
}

/// At least 25 hostile inputs (headers, and callbacks in the configuration): the server
/// answers, the ID that leaves is safe, and the rejected value never reaches a log line.
pub async fn hostile_header_table(start: &Starter) {
    let server = start(CorrelationConfig::default()).await;
    let mut checked = 0;
    for index in 0..hostile_cases("").len() {
        // A marker of its own per case, so a leak names the case.
        let marker = fresh_hex();
        let case = hostile_cases(&marker).swap_remove(index);
        let raw: Vec<(&[u8], &[u8])> = case
            .headers
            .iter()
            .map(|(name, value)| (name.as_slice(), value.as_slice()))
            .collect();
        // A fresh connection per case: a parser that rejects the request may close it.
        let mut connection = RawConnection::connect(server.addr).await.unwrap();
        match connection.get("/header", &raw).await {
            Ok(response) if response.status < 400 => {
                let ids = response.header_values("x-request-id");
                assert_eq!(ids.len(), 1, "{}: {ids:?}", case.name);
                assert_eq!(
                    String::from_utf8_lossy(&response.body),
                    ids[0],
                    "{}",
                    case.name
                );
                match case.expect {
                    Expect::Replaced => assert!(is_generated(&ids[0]), "{}: {}", case.name, ids[0]),
                    Expect::Kept => assert_eq!(ids[0], marker, "{}", case.name),
                }
            }
            // The HTTP layer itself may refuse a malformed request (400, 431): that is an
            // answer too, as long as nothing hostile leaves or gets logged.
            Ok(response) => {
                let ids = response.header_values("x-request-id");
                assert!(
                    ids.iter().all(|id| is_generated(id)),
                    "{}: {ids:?}",
                    case.name
                );
            }
            Err(err) => panic!("{}: the server did not answer: {err}", case.name),
        }
        if case.expect == Expect::Replaced {
            assert_never_logged(&marker);
        }
        checked += 1;
    }
    assert_eq!(
        get(&server, "/", None).await.status,
        200,
        "the server still serves"
    );

    // Hostile configurations: callbacks that panic or return hostile output.
    let marker = fresh_hex();
    let panicking_validator = CorrelationConfig::builder()
        .validator(|_: &str| -> bool { panic!("validator bug") })
        .build()
        .unwrap();
    let hostile_transformer = CorrelationConfig::builder()
        .transformer(|id: &str| format!("{id}\r\nSet-Cookie: session=stolen"))
        .build()
        .unwrap();
    let flaky_generator = {
        let calls = std::sync::atomic::AtomicUsize::new(0);
        CorrelationConfig::builder()
            .generator(move || {
                if calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 2 == 1 {
                    panic!("generator bug");
                }
                fresh_hex()
            })
            .build()
            .unwrap()
    };
    for (name, config) in [
        ("validator that panics", panicking_validator),
        ("transformer returning hostile output", hostile_transformer),
        ("generator that panics now and then", flaky_generator),
    ] {
        let server = start(config).await;
        for _ in 0..3 {
            let reply = get(&server, "/header", Some(&marker)).await;
            assert_eq!(reply.status, 200, "{name}");
            assert!(is_generated(reply.id()), "{name}: {}", reply.id());
            assert_eq!(reply.body, reply.id(), "{name}");
            assert!(reply.headers.get("set-cookie").is_none(), "{name}");
        }
        checked += 1;
    }
    // A generator that can never make a usable ID is a start-up error, not a per-request one.
    let always_panics = CorrelationConfig::builder()
        .generator(|| -> String { panic!("generator bug") })
        .build();
    assert!(always_panics.is_err());
    let hostile_output = CorrelationConfig::builder()
        .generator(|| "evil\nid")
        .build();
    assert!(hostile_output.is_err());
    checked += 2;
    assert!(checked >= 25, "the table has {checked} cases");
}

/// 10,000 requests with distinct IDs, up to 1,000 in flight at once (the limit of open
/// sockets on a CI machine), against a multi-worker server: every response header, every
/// ID the handler and its spawned task saw, and every log line belongs to its own request.
pub async fn stress_ten_thousand_requests_without_cross_talk(start: &Starter) {
    const REQUESTS: usize = 10_000;
    let server = start(CorrelationConfig::default()).await;
    let ids: Vec<String> = (0..REQUESTS).map(|_| fresh_hex()).collect();
    let url = server.url("/spawn");
    let requests = ids.iter().map(|id| {
        let request = client().get(&url).header("x-request-id", id);
        async move {
            let response = request.send().await.unwrap();
            let echoed = values(response.headers(), "x-request-id");
            (echoed, response.text().await.unwrap())
        }
    });
    let replies: Vec<_> = futures_util::stream::iter(requests)
        .buffered(1_000)
        .collect()
        .await;
    for (id, (echoed, body)) in ids.iter().zip(&replies) {
        assert_eq!(echoed, std::slice::from_ref(id));
        assert_eq!(body, id);
    }
    assert_equal_line_counts(&ids).await;
}

/// Clients that hang up mid-request — before the response, or halfway through a streamed
/// body — cause no panic, and the requests after them are served as usual.
pub async fn disconnecting_clients_break_nothing(start: &Starter) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = start(CorrelationConfig::default()).await;
    let mut dropped = Vec::new();
    for n in 0..100 {
        let id = fresh_hex();
        let path = ["/stream", "/spawn", "/blocking", "/ws"][n % 4];
        let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let request =
            format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nx-request-id: {id}\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        if n % 2 == 0 {
            // Hang up halfway: after the first bytes of the response.
            let mut first = [0u8; 16];
            let _ = stream.read(&mut first).await;
        }
        drop(stream);
        dropped.push(id);
    }
    for _ in 0..10 {
        let reply = get(&server, "/id", None).await;
        assert_eq!(reply.status, 200);
        assert!(is_generated(reply.id()));
        assert!(
            !dropped.iter().any(|id| id == reply.id()),
            "a dropped request's ID stuck"
        );
        assert_eq!(reply.body, reply.id());
    }
    let reply = get(&server, "/stream", None).await;
    assert_eq!(reply.status, 200);
    let errors: Vec<_> = dropped
        .iter()
        .flat_map(|id| logs().records_for(id))
        .filter(|r| r.level == Level::Error)
        .collect();
    assert!(
        errors.is_empty(),
        "errors logged for dropped requests: {errors:?}"
    );
}

/// A W3C `traceparent` value with `trace_id`.
fn traceparent(trace_id: &str) -> String {
    format!("00-{trace_id}-00f067aa0ba902b7-01")
}

fn traceparent_headers(value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("traceparent", HeaderValue::from_str(value).unwrap());
    headers
}

/// A valid `traceparent` and no `X-Request-ID`: its trace ID is the request's ID in the
/// response header, the handler's request header and the logs.
pub async fn a_valid_traceparent_alone_is_the_id(start: &Starter, demo: CorrelationConfig) {
    let server = start(demo).await;
    let trace_id = fresh_hex();
    let reply = get_with(&server, "/id", traceparent_headers(&traceparent(&trace_id))).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.id(), trace_id);
    assert_eq!(reply.body, trace_id);
    let reply = get_with(
        &server,
        "/header",
        traceparent_headers(&traceparent(&trace_id)),
    )
    .await;
    assert_eq!(
        reply.body, trace_id,
        "the handler sees it under X-Request-ID"
    );
    assert!(!records_eventually(&trace_id, 1).await.is_empty());
    assert!(warnings_for(&trace_id).is_empty());
}

/// Both headers: `X-Request-ID` comes first among the sources, so it wins.
pub async fn the_request_id_wins_over_traceparent(start: &Starter, demo: CorrelationConfig) {
    let server = start(demo).await;
    let (id, trace_id) = (fresh_hex(), fresh_hex());
    let mut headers = traceparent_headers(&traceparent(&trace_id));
    headers.insert("x-request-id", HeaderValue::from_str(&id).unwrap());
    let reply = get_with(&server, "/header", headers).await;
    assert_eq!(reply.id(), id);
    assert_eq!(reply.body, id);
    assert!(logs().records_for(&trace_id).is_empty());
}

/// Malformed `traceparent` values are replaced by a fresh ID with one warning that
/// never contains the value.
pub async fn malformed_traceparent_is_replaced_with_one_warning(
    start: &Starter,
    demo: CorrelationConfig,
) {
    let server = start(demo).await;
    let trace_id = fresh_hex();
    let malformed = [
        // All-zero trace ID.
        traceparent(&"0".repeat(32)),
        // Version ff.
        format!("ff-{trace_id}-00f067aa0ba902b7-01"),
        // Upper-case hex.
        traceparent(&trace_id.to_uppercase()),
        // Wrong lengths.
        traceparent(&trace_id[..31]),
        format!("00-{trace_id}-00f067aa0ba902b-01"),
        format!("0-{trace_id}-00f067aa0ba902b7-01"),
        // Extra fields after version 00.
        format!("{}-extra", traceparent(&trace_id)),
    ];
    for value in &malformed {
        let reply = get_with(&server, "/header", traceparent_headers(value)).await;
        assert_eq!(reply.status, 200, "{value}");
        let new = reply.id();
        assert!(is_generated(new), "{value} was not replaced: {new}");
        assert_eq!(reply.body, new, "{value}");
        let warnings = warnings_for(new);
        assert_eq!(warnings.len(), 1, "{value}: {warnings:?}");
        assert_eq!(
            warnings[0].message,
            format!(
                "Generated new request ID ({new}), since the traceparent header value failed validation"
            )
        );
    }
    assert_never_logged(&trace_id[..24]);
    assert_never_logged(&trace_id[..24].to_uppercase());
}

/// `GET path` from a client bound to `local` (a loopback address, so the server sees
/// that peer), with `headers`.
pub async fn get_from(
    server: &TestServer,
    local: [u8; 4],
    path: &str,
    headers: HeaderMap,
) -> Reply {
    let client = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(local))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let response = client
        .get(server.url(path))
        .headers(headers)
        .send()
        .await
        .unwrap_or_else(|err| panic!("GET {path} from {local:?}: {err}"));
    Reply::read(response, "x-request-id").await
}

/// Trust policy `FromPeers(127.0.0.1/32)`: a client connecting from 127.0.0.2 has its ID
/// (or trace context) ignored, with a DEBUG line and no warning; one from 127.0.0.1 has
/// it honoured.
pub async fn only_trusted_peers_set_the_id(start: &Starter) {
    let config = CorrelationConfig::builder()
        .sources([IdSource::header("X-Request-ID"), IdSource::traceparent()])
        .trust(TrustPolicy::from_peers(["127.0.0.1/32"]).unwrap())
        .build()
        .unwrap();
    let server = start(config).await;
    let (id, trace_id) = (fresh_hex(), fresh_hex());
    let mut with_id = HeaderMap::new();
    with_id.insert("x-request-id", HeaderValue::from_str(&id).unwrap());
    let with_trace = traceparent_headers(&traceparent(&trace_id));

    for (headers, sent) in [(&with_id, &id), (&with_trace, &trace_id)] {
        let untrusted = get_from(&server, [127, 0, 0, 2], "/id", headers.clone()).await;
        assert_eq!(untrusted.status, 200);
        let new = untrusted.id();
        assert!(
            is_generated(new),
            "{sent} from an untrusted peer was honoured: {new}"
        );
        assert_eq!(untrusted.body, new);
        let records = logs().records_for(new);
        let ignored: Vec<_> = records
            .iter()
            .filter(|r| r.level == Level::Debug && r.target == "correlation")
            .collect();
        assert_eq!(ignored.len(), 1, "{records:?}");
        assert_eq!(
            ignored[0].message,
            format!(
                "Generated new request ID ({new}), ignoring the incoming one from untrusted peer 127.0.0.2"
            )
        );
        assert!(warnings_for(new).is_empty());
        assert!(logs().records_for(sent).is_empty());

        let trusted = get_from(&server, [127, 0, 0, 1], "/id", headers.clone()).await;
        assert_eq!(trusted.id(), sent.as_str());
        assert_eq!(trusted.body, sent.as_str());
    }
}

/// With `hop_id_header("X-Request-ID")` beside `header_name("X-Correlation-ID")`, a
/// caller's valid ID stays the correlation ID and each request gets a fresh hop ID of its
/// own: both are echoed, each under its header, and every line of the request carries
/// both. Without an incoming ID both are made, and differ; without the option, no hop
/// header is written.
pub async fn per_hop_ids_are_echoed_beside_the_correlation_id(start: &Starter) {
    let config = CorrelationConfig::builder()
        .header_name("X-Correlation-ID")
        .hop_id_header("X-Request-ID")
        .build()
        .unwrap();
    let server = start(config).await;
    let operation = fresh_hex();
    let mut hops = Vec::new();
    for incoming in [Some(operation.as_str()), Some(operation.as_str()), None] {
        let mut headers = HeaderMap::new();
        if let Some(id) = incoming {
            headers.insert("x-correlation-id", HeaderValue::from_str(id).unwrap());
        }
        let reply = get_named(&server, "/spawn", headers, "x-correlation-id").await;
        assert_eq!(reply.status, 200);
        let id = reply.id().to_owned();
        if let Some(sent) = incoming {
            assert_eq!(id, sent, "the caller's ID is the correlation ID");
        }
        assert_eq!(reply.body, id, "the handler runs under the correlation ID");
        let hop = values(&reply.headers, "x-request-id");
        assert_eq!(hop.len(), 1, "exactly one hop header: {hop:?}");
        let hop = hop[0].clone();
        assert!(is_generated(&hop), "{hop}");
        assert_ne!(hop, id);
        let records = eventually(|| {
            let records = logs().filtered(|r| r.hop_id.as_deref() == Some(hop.as_str()));
            let spawned = records
                .iter()
                .any(|r| r.message == "inside the spawned task");
            (spawned, records)
        })
        .await;
        assert!(
            records
                .iter()
                .any(|r| r.message == "inside the spawned task"),
            "no line of the spawned task under hop {hop}: {records:?}"
        );
        for record in &records {
            assert_eq!(
                record.correlation_id.as_deref(),
                Some(id.as_str()),
                "{record:?}"
            );
        }
        hops.push(hop);
    }
    assert_ne!(hops[0], hops[1], "each request has its own hop ID");

    let without = CorrelationConfig::builder()
        .header_name("X-Correlation-ID")
        .build()
        .unwrap();
    let server = start(without).await;
    let reply = get_named(&server, "/", HeaderMap::new(), "x-correlation-id").await;
    assert_eq!(reply.ids.len(), 1);
    assert!(values(&reply.headers, "x-request-id").is_empty());
}
