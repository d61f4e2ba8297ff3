//! The fields rows: each demo takes W3C `baggage` from callers on 127.0.0.1 for the keys
//! `tenant` and `user`, and its `/spawn` route sets the field `work=spawned`; the log
//! format prints a request's fields after its ID.

use correlation_core::CorrelationConfig;
use correlation_core::test_util::CapturedRecord;
use reqwest::header::{HeaderMap, HeaderValue};

use crate::client::RawConnection;
use crate::scenarios::{ACCESS_LOG_TARGETS, Starter, eventually, fresh_hex, get_from, logs};

/// The demos' trusted callers.
const TRUSTED: [u8; 4] = [127, 0, 0, 1];

/// What was logged under `id` once the framework's access-log line with `status` is among
/// it: that line is the last one every framework writes for a request.
async fn logged_once_answered(id: &str, status: u16) -> Vec<CapturedRecord> {
    let status = status.to_string();
    let answered = |records: &[CapturedRecord]| {
        records.iter().any(|r| {
            ACCESS_LOG_TARGETS.iter().any(|t| r.target.starts_with(t))
                && r.message.contains(&status)
        })
    };
    let records = eventually(|| {
        let records = logs().records_for(id);
        (answered(&records), records)
    })
    .await;
    assert!(
        answered(&records),
        "no access-log line with {status} under {id}: {records:?}"
    );
    records
}

/// The request's own lines: the demo's and the framework's, not the middleware's
/// (`correlation`), some of which are written before the request's fields exist.
fn request_lines(records: &[CapturedRecord]) -> Vec<&CapturedRecord> {
    records
        .iter()
        .filter(|r| !r.target.starts_with("correlation"))
        .collect()
}

fn with_id(id: &str, baggage: Option<&str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("x-request-id", HeaderValue::from_str(id).unwrap());
    if let Some(baggage) = baggage {
        headers.insert("baggage", HeaderValue::from_str(baggage).unwrap());
    }
    headers
}

/// `baggage: tenant=acme,user=alice` from a trusted peer puts both fields on every line
/// of that request, the spawned task's and the access log's included, and on none of a
/// request served at the same time without it.
pub async fn trusted_baggage_puts_fields_on_every_line_of_its_request(
    start: &Starter,
    demo: CorrelationConfig,
) {
    let server = start(demo).await;
    let (with_baggage, without) = (fresh_hex(), fresh_hex());
    let (first, second) = tokio::join!(
        get_from(
            &server,
            TRUSTED,
            "/spawn",
            with_id(&with_baggage, Some("tenant=acme,user=alice"))
        ),
        get_from(&server, TRUSTED, "/spawn", with_id(&without, None)),
    );
    assert_eq!((first.status, second.status), (200, 200));

    let records = logged_once_answered(&with_baggage, 200).await;
    let lines = request_lines(&records);
    assert!(
        lines.len() >= 4,
        "the handler's, the task's and the access log's lines: {records:?}"
    );
    for line in &lines {
        assert!(
            line.rendered.contains(" tenant=acme user=alice "),
            "a line of the request without its fields: {line:?}"
        );
    }
    let records = logged_once_answered(&without, 200).await;
    for line in &records {
        assert!(
            !line.rendered.contains("acme") && !line.rendered.contains("alice"),
            "another request's field on {line:?}"
        );
    }
}

/// The same baggage from 127.0.0.2, which the demos do not trust, sets no field: the
/// request is served and none of its lines names the tenant or the user.
pub async fn baggage_from_an_untrusted_peer_sets_nothing(start: &Starter, demo: CorrelationConfig) {
    let server = start(demo).await;
    let id = fresh_hex();
    let reply = get_from(
        &server,
        [127, 0, 0, 2],
        "/",
        with_id(&id, Some("tenant=acme,user=alice")),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.id(), id);
    let records = logged_once_answered(&id, 200).await;
    for line in &records {
        assert!(
            !line.rendered.contains("acme") && !line.rendered.contains("alice"),
            "a field from an untrusted peer on {line:?}"
        );
    }
}

/// A key the configuration does not allow is never logged, neither as a field nor in a
/// warning; the allowed keys beside it still count.
pub async fn baggage_keys_not_allowed_are_never_logged(start: &Starter, demo: CorrelationConfig) {
    let server = start(demo).await;
    let id = fresh_hex();
    let secret = format!("secret{}", &fresh_hex()[..12]);
    let baggage = format!("session={secret},tenant=acme,role={secret}");
    let reply = get_from(&server, TRUSTED, "/", with_id(&id, Some(&baggage))).await;
    assert_eq!(reply.status, 200);
    let records = logged_once_answered(&id, 200).await;
    assert!(
        request_lines(&records)
            .iter()
            .all(|line| line.rendered.contains(" tenant=acme ")),
        "{records:?}"
    );
    let leaked = logs().records_containing(&secret);
    assert!(
        leaked.is_empty(),
        "a key not allowed was logged: {leaked:?}"
    );
    assert!(
        records.iter().all(|r| !r.rendered.contains("session")),
        "{records:?}"
    );
}

/// Malformed, oversized and hostile baggage (raw bytes above 0x7F, percent-encoded CR,
/// LF, ESC and a bidirectional override, a value over the limits, 200 members) leaves the
/// request served under its ID, and every record one line: nothing a client sent reaches
/// a log line raw, and no line repeats the header.
pub async fn hostile_baggage_leaves_the_request_served_and_lines_whole(
    start: &Starter,
    demo: CorrelationConfig,
) {
    let server = start(demo).await;
    // Not an ID another scenario sends as invalid: those must never reach a line, while
    // this text reaches one, escaped, as a trusted field's value.
    let forged = "INFO%20[baggage-forged-line]%20forged";
    let many_members = (0..200)
        .map(|n| format!("k{n}=v{n}"))
        .collect::<Vec<_>>()
        .join(",");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("no equals sign", b"tenant".to_vec()),
        ("empty key", b"=acme".to_vec()),
        ("space in a value", b"tenant=ac me".to_vec()),
        ("bad percent escape", b"tenant=%zz,user=%".to_vec()),
        ("invalid UTF-8", b"tenant=%FF%FE".to_vec()),
        ("raw bytes above 0x7F", b"tenant=\xff\xfe".to_vec()),
        ("encoded LF", format!("tenant=acme%0A{forged}").into_bytes()),
        (
            "encoded CR LF",
            format!("user=a%0D%0A{forged}").into_bytes(),
        ),
        ("encoded ESC", b"tenant=%1B[31mred%1B[0m".to_vec()),
        ("encoded bidi override", b"user=%E2%80%AEecila".to_vec()),
        (
            "a value over 8192 bytes",
            format!("tenant={}", "a".repeat(9000)).into_bytes(),
        ),
        ("200 members", many_members.into_bytes()),
        ("only commas", b",,,,".to_vec()),
    ];
    for (case, value) in cases {
        let id = fresh_hex();
        let mut connection = RawConnection::connect(server.addr)
            .await
            .unwrap_or_else(|err| panic!("{case}: connect: {err}"));
        let response = connection
            .get(
                "/",
                &[(b"x-request-id", id.as_bytes()), (b"baggage", &value)],
            )
            .await
            .unwrap_or_else(|err| panic!("{case}: GET /: {err}"));
        assert_eq!(response.status, 200, "{case}");
        assert_eq!(
            response.header_values("x-request-id"),
            [id.as_str()],
            "{case}"
        );

        let records = logged_once_answered(&id, 200).await;
        for record in &records {
            assert!(
                !record
                    .rendered
                    .chars()
                    .any(|c| c.is_control() || c == '\u{202e}'),
                "{case}: a record that is not one clean line: {record:?}"
            );
            assert!(
                !record.rendered.contains("forged")
                    || record.rendered.contains(r"\n")
                    || record.rendered.contains(r"\r"),
                "{case}: a forged line: {record:?}"
            );
        }
        let warnings = records
            .iter()
            .filter(|r| r.level == log::Level::Warn)
            .count();
        assert!(warnings <= 1, "{case}: at most one warning: {records:?}");
        // Raw bytes above 0x7F have no text of their own to look for.
        if let Ok(raw) = std::str::from_utf8(&value) {
            let echoed: Vec<_> = records
                .iter()
                .filter(|r| r.rendered.contains(raw))
                .collect();
            assert!(
                echoed.is_empty(),
                "{case}: the header was echoed: {echoed:?}"
            );
        }
    }
}

/// A field the handler sets (the demos' `/spawn` sets `work=spawned`) is on the lines of
/// the task it spawns.
pub async fn a_field_set_in_a_handler_reaches_its_spawned_task(
    start: &Starter,
    demo: CorrelationConfig,
) {
    let server = start(demo).await;
    let id = fresh_hex();
    let reply = get_from(&server, TRUSTED, "/spawn", with_id(&id, None)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, id);
    let records = logged_once_answered(&id, 200).await;
    let task_line = records
        .iter()
        .find(|r| r.message == "inside the spawned task")
        .unwrap_or_else(|| panic!("no line from the spawned task: {records:?}"));
    assert!(
        task_line.rendered.contains(" work=spawned "),
        "{task_line:?}"
    );
}
