//! The test side: runs each example that promises a line, in a process of its own (a
//! logger is global), and fails unless every promised line is printed.
//!
//! A promise is the text after `// prints:`, matched against a whole line of the
//! example's output (stdout or stderr, colours removed), where
//!
//! - `<id>` is a correlation ID: letters, digits, `-`, `_` and `…`, at least one letter or
//!   digit (so `[-]`, outside a request, is not one); every `<id>` of a line is the same ID;
//! - `my_app` is the example's own crate, the log target of what it logs itself;
//! - `...` is any text, or none.
//!
//! An example that serves (it binds port 8080, which the build script turned into port 0)
//! is sent one `GET /` at the first `127.0.0.1:<port>` or `0.0.0.0:<port>` it prints, and is
//! stopped once every promised line has appeared.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::{self, Scope};
use std::time::{Duration, Instant};

/// The variable that makes the test binary run one example instead of checking them all.
const SELECT: &str = "CORRELATION_DOCS_EXAMPLE";

/// How long an example may take to print what it promises.
const WAIT: Duration = Duration::from_secs(60);

/// How long the request to a serving example may take.
const REQUEST_WAIT: Duration = Duration::from_secs(20);

/// An example that promises lines, as the build script wrote it into the `promises` test.
#[derive(Debug)]
pub struct Snippet {
    /// Where it is written: `README.md:31`.
    pub source: &'static str,
    /// The log target of what it logs itself (`my_app` in a promise).
    pub target: &'static str,
    /// The lines it promises.
    pub promises: &'static [&'static str],
    /// It serves until stopped; it is sent one `GET /`.
    pub serves: bool,
    /// Its `main`.
    pub run: fn() -> ExitCode,
}

/// The `main` of a `promises` test: with `CORRELATION_DOCS_EXAMPLE` set to an example's
/// source, runs that one example; otherwise checks every example (or those whose source
/// contains the first argument) and fails if one does not print what it promises.
pub fn main(snippets: &[Snippet]) -> ExitCode {
    if let Ok(source) = std::env::var(SELECT) {
        return match snippets.iter().find(|snippet| snippet.source == source) {
            Some(snippet) => (snippet.run)(),
            None => {
                eprintln!("no example at {source}");
                ExitCode::FAILURE
            }
        };
    }
    let filter = std::env::args().skip(1).find(|arg| !arg.starts_with('-'));
    let selected: Vec<&Snippet> = snippets
        .iter()
        .filter(|snippet| {
            filter
                .as_ref()
                .is_none_or(|filter| snippet.source.contains(filter.as_str()))
        })
        .collect();
    let started = Instant::now();
    println!(
        "\nrunning {} examples that promise a log line",
        selected.len()
    );
    let mut failures = Vec::new();
    for snippet in selected {
        match check(snippet) {
            Ok(()) => println!("example {} ... ok", snippet.source),
            Err(problem) => {
                println!("example {} ... FAILED", snippet.source);
                failures.push(format!("---- {} ----\n{problem}", snippet.source));
            }
        }
    }
    if failures.is_empty() {
        println!("\nexamples ok in {:.1?}\n", started.elapsed());
        ExitCode::SUCCESS
    } else {
        println!("\nfailures:\n\n{}\n", failures.join("\n\n"));
        println!(
            "{} example(s) do not print what they promise\n",
            failures.len()
        );
        ExitCode::FAILURE
    }
}

/// What the threads watching an example report.
enum Event {
    Line(String),
    Closed,
    Response(Result<String, String>),
}

/// Runs `snippet` in a child process and waits for its promised lines.
fn check(snippet: &Snippet) -> Result<(), String> {
    let executable =
        std::env::current_exe().map_err(|err| format!("cannot find the test binary: {err}"))?;
    let mut child = Command::new(executable)
        .env(SELECT, snippet.source)
        // The example runs as written, with the defaults it states.
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| format!("cannot start the example: {err}"))?;
    let patterns: Vec<Pattern> = snippet
        .promises
        .iter()
        .map(|promise| Pattern::new(promise))
        .collect();
    thread::scope(|scope| {
        let result = watch(scope, snippet, &patterns, &mut child);
        // Stopped whatever happened, so no example outlives the check, and its output
        // closes for the threads reading it.
        let _ = child.kill();
        let _ = child.wait();
        result
    })
}

/// Reads the child's output until every promise is kept and the child has exited (or,
/// for a server, has been sent its request), or until [`WAIT`] has passed.
fn watch<'scope>(
    scope: &'scope Scope<'scope, '_>,
    snippet: &Snippet,
    patterns: &[Pattern],
    child: &mut Child,
) -> Result<(), String> {
    let (events, received) = mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        read_lines(scope, stdout, events.clone());
    }
    if let Some(stderr) = child.stderr.take() {
        read_lines(scope, stderr, events.clone());
    }
    let deadline = Instant::now() + WAIT;
    let mut output: Vec<String> = Vec::new();
    let mut kept = vec![false; patterns.len()];
    let mut open_streams = 2;
    let mut requested = false;
    while open_streams > 0 {
        if snippet.serves && kept.iter().all(|&kept| kept) {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match received.recv_timeout(left) {
            Ok(Event::Line(line)) => {
                let line = without_colours(&line);
                for (pattern, kept) in patterns.iter().zip(&mut kept) {
                    *kept = *kept || pattern.matches(&line, snippet.target);
                }
                if snippet.serves && !requested {
                    if let Some(port) = listening_port(&line) {
                        requested = true;
                        let events = events.clone();
                        scope.spawn(move || {
                            let _ = events.send(Event::Response(get(port)));
                        });
                    }
                }
                output.push(line);
            }
            Ok(Event::Closed) => open_streams -= 1,
            Ok(Event::Response(Ok(status))) => {
                output.push(format!("(the check's `GET /` was answered `{status}`)"))
            }
            Ok(Event::Response(Err(err))) => {
                return Err(format!(
                    "the check's `GET /` to the address it printed failed: {err}\n{}",
                    transcript(&output)
                ));
            }
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                let waiting_for = if snippet.serves && !requested {
                    "printed no `127.0.0.1:<port>` to send `GET /` to".to_owned()
                } else {
                    missing(patterns, &kept)
                };
                return Err(format!(
                    "still running after {WAIT:?}: {waiting_for}\n{}",
                    transcript(&output)
                ));
            }
        }
    }
    let status = child
        .wait()
        .map_err(|err| format!("cannot wait for the example: {err}"))?;
    if snippet.serves {
        return Err(format!(
            "stopped ({status}) before printing what it promises: {}\n{}",
            missing(patterns, &kept),
            transcript(&output)
        ));
    }
    if !status.success() {
        return Err(format!("failed ({status})\n{}", transcript(&output)));
    }
    if kept.iter().all(|&kept| kept) {
        Ok(())
    } else {
        Err(format!(
            "{}\n{}",
            missing(patterns, &kept),
            transcript(&output)
        ))
    }
}

/// Sends each line of `stream` as an event, then [`Event::Closed`].
fn read_lines<'scope>(
    scope: &'scope Scope<'scope, '_>,
    stream: impl Read + Send + 'scope,
    events: Sender<Event>,
) {
    scope.spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if events.send(Event::Line(line)).is_err() {
                return;
            }
        }
        let _ = events.send(Event::Closed);
    });
}

/// The promises not kept, one per line.
fn missing(patterns: &[Pattern], kept: &[bool]) -> String {
    patterns
        .iter()
        .zip(kept)
        .filter(|(_, kept)| !**kept)
        .map(|(pattern, _)| format!("printed no line matching `{}`", pattern.promise))
        .collect::<Vec<_>>()
        .join("\n")
}

fn transcript(output: &[String]) -> String {
    if output.is_empty() {
        return "it printed nothing".to_owned();
    }
    let lines: Vec<String> = output.iter().map(|line| format!("    {line}")).collect();
    format!("it printed:\n{}", lines.join("\n"))
}

/// The port of the first `127.0.0.1:<port>` or `0.0.0.0:<port>` in `line`, but port 0.
fn listening_port(line: &str) -> Option<u16> {
    ["127.0.0.1:", "0.0.0.0:"]
        .into_iter()
        .flat_map(|host| line.match_indices(host).map(move |(at, _)| at + host.len()))
        .find_map(|at| {
            let digits: String = line[at..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok().filter(|&port| port != 0)
        })
}

/// Sends `GET /` to `127.0.0.1:port`; the response's status line.
fn get(port: u16) -> Result<String, String> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&address, REQUEST_WAIT)
        .map_err(|err| format!("connecting to {address}: {err}"))?;
    stream
        .set_read_timeout(Some(REQUEST_WAIT))
        .map_err(|err| format!("setting a read timeout: {err}"))?;
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|err| format!("sending to {address}: {err}"))?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).map_err(|err| {
        format!("reading the response from {address} (waited at most {REQUEST_WAIT:?}): {err}")
    })?;
    let response = String::from_utf8_lossy(&response);
    Ok(response.lines().next().unwrap_or_default().to_owned())
}

/// `line` without ANSI escape sequences (tracing-subscriber colours its output).
fn without_colours(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A promised line, read into pieces.
#[derive(Debug)]
struct Pattern {
    promise: String,
    pieces: Vec<Piece>,
}

#[derive(Debug, PartialEq)]
enum Piece {
    Text(String),
    Id,
    Target,
    Any,
}

impl Pattern {
    fn new(promise: &str) -> Self {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut rest = promise;
        while !rest.is_empty() {
            let placeholder = [
                ("<id>", Piece::Id),
                ("my_app", Piece::Target),
                ("...", Piece::Any),
            ]
            .into_iter()
            .find_map(|(name, piece)| Some((piece, rest.strip_prefix(name)?)));
            if let Some((piece, after)) = placeholder {
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(piece);
                rest = after;
            } else {
                let mut chars = rest.chars();
                text.extend(chars.next());
                rest = chars.as_str();
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Self {
            promise: promise.to_owned(),
            pieces,
        }
    }

    /// Whether `line` is the promised line, after the timestamp it may start with.
    fn matches(&self, line: &str, target: &str) -> bool {
        matches(
            &self.pieces,
            without_timestamp(line.trim_end()),
            target,
            None,
        )
    }
}

/// `line` without the UTC RFC 3339 timestamp and the space it may start with
/// (`2026-12-05T13:05:39Z `, `2026-12-05T13:05:39.123Z `), as our `log` format and
/// tracing-subscriber's print one: a promise leaves it out.
pub(crate) fn without_timestamp(line: &str) -> &str {
    let Some((first, rest)) = line.split_once(' ') else {
        return line;
    };
    let Some((seconds, fraction)) =
        first
            .strip_suffix('Z')
            .map(|time| match time.split_once('.') {
                Some((seconds, fraction)) => (seconds, Some(fraction)),
                None => (time, None),
            })
    else {
        return line;
    };
    let shape = seconds.len() == "2026-12-05T13:05:39".len()
        && seconds
            .bytes()
            .zip("0000-00-00T00:00:00".bytes())
            .all(|(byte, shape)| match shape {
                b'0' => byte.is_ascii_digit(),
                _ => byte == shape,
            });
    let fraction = fraction.is_none_or(|digits| {
        (1..=9).contains(&digits.len()) && digits.bytes().all(|byte| byte.is_ascii_digit())
    });
    if shape && fraction { rest } else { line }
}

fn matches(pieces: &[Piece], text: &str, target: &str, id: Option<&str>) -> bool {
    let Some((piece, rest)) = pieces.split_first() else {
        return text.is_empty();
    };
    match piece {
        Piece::Text(expected) => text
            .strip_prefix(expected.as_str())
            .is_some_and(|text| matches(rest, text, target, id)),
        Piece::Target => text
            .strip_prefix(target)
            .is_some_and(|text| matches(rest, text, target, id)),
        Piece::Any => text
            .char_indices()
            .map(|(at, _)| at)
            .chain([text.len()])
            .any(|at| matches(rest, &text[at..], target, id)),
        Piece::Id => {
            let run: usize = text
                .chars()
                .take_while(|&c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '…'))
                .map(char::len_utf8)
                .sum();
            (1..=run)
                .rev()
                .filter(|&end| text.is_char_boundary(end))
                .any(|end| {
                    let candidate = &text[..end];
                    candidate.chars().any(|c| c.is_ascii_alphanumeric())
                        && id.is_none_or(|id| id == candidate)
                        && matches(rest, &text[end..], target, Some(candidate))
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Pattern, listening_port, without_colours, without_timestamp};

    const TARGET: &str = "promises::README_md_line_31";

    fn matches(promise: &str, line: &str) -> bool {
        Pattern::new(promise).matches(line, TARGET)
    }

    #[test]
    fn a_promise_matches_a_whole_line_with_its_placeholders() {
        let promise = "INFO  [<id>] my_app: handling";
        assert!(matches(
            promise,
            "INFO  [5694dd9812e44211b2d7e8cf762053bc] promises::README_md_line_31: handling"
        ));
        assert!(!matches(
            promise,
            "INFO  [-] promises::README_md_line_31: handling"
        ));
        assert!(!matches(promise, "INFO  [5694dd98] other: handling"));
        assert!(!matches(
            promise,
            "INFO  [5694dd98] promises::README_md_line_31: handling more"
        ));
        assert!(matches(
            "INFO  [5694dd98…] my_app: x",
            "INFO  [5694dd98…] promises::README_md_line_31: x"
        ));
    }

    #[test]
    fn a_promise_leaves_out_the_timestamp_a_line_starts_with() {
        let promise = "INFO  [<id>] my_app: handling";
        for time in [
            "2026-12-05T13:05:39Z",
            "2026-12-05T13:05:39.123Z",
            "2026-12-05T13:05:39.123456789Z",
        ] {
            assert!(matches(
                promise,
                &format!("{time} INFO  [5694dd98] promises::README_md_line_31: handling")
            ));
        }
        for not_a_time in [
            "2026-12-05 INFO  [5694dd98] promises::README_md_line_31: handling",
            "2026-12-05T13:05:39 INFO  [5694dd98] promises::README_md_line_31: handling",
            "2026-12-05T13:05:39.Z INFO  [5694dd98] promises::README_md_line_31: handling",
            "x INFO  [5694dd98] promises::README_md_line_31: handling",
        ] {
            assert!(!matches(promise, not_a_time), "{not_a_time}");
        }
        assert_eq!(
            without_timestamp("2026-12-05T13:05:39Z"),
            "2026-12-05T13:05:39Z"
        );
        assert_eq!(without_timestamp("INFO  [-] a: b"), "INFO  [-] a: b");
    }

    #[test]
    fn every_id_of_a_line_is_the_same_id() {
        let promise = r#"INFO  [<id>] logger: "GET / HTTP/1.1" 200 <id>"#;
        assert!(matches(
            promise,
            r#"INFO  [3758c31e] logger: "GET / HTTP/1.1" 200 3758c31e"#
        ));
        assert!(!matches(
            promise,
            r#"INFO  [3758c31e] logger: "GET / HTTP/1.1" 200 a1b2c3d4"#
        ));
        assert!(!matches(
            promise,
            r#"INFO  [3758c31e] logger: "GET / HTTP/1.1" 200 -"#
        ));
    }

    #[test]
    fn dots_stand_for_any_text() {
        let promise = r#"... request_id="<id>" correlation_id="<id>"}: my_app: handling"#;
        let line = "2026-01-01T00:00:00Z  INFO HTTP request{http.method=GET request_id=\"ab12\" \
                    correlation_id=\"ab12\"}: promises::README_md_line_31: handling";
        assert!(matches(promise, line));
        assert!(matches(
            "response status=404 ...",
            "response status=404 Not Found duration=1ms"
        ));
        assert!(!matches("response ...", "request"));
    }

    #[test]
    fn servers_are_found_by_the_address_they_print() {
        let line = r#"INFO  [-] actix_server::builder: starting service: "actix-web-service-127.0.0.1:0", workers: 2, listening on: 127.0.0.1:41234"#;
        assert_eq!(listening_port(line), Some(41234));
        assert_eq!(
            listening_port("listening on http://0.0.0.0:8081"),
            Some(8081)
        );
        assert_eq!(listening_port("nothing"), None);
    }

    #[test]
    fn colours_are_removed() {
        assert_eq!(without_colours("\u{1b}[32m INFO\u{1b}[0m x"), " INFO x");
    }
}
