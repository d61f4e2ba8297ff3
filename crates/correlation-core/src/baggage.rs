//! W3C baggage (<https://www.w3.org/TR/baggage/>): the `baggage` header's list of
//! `key=value;property` members, read into fields and written from them.
//!
//! The parser reads a list given in several pieces (several `baggage` headers are one
//! list) and never panics on any input. What it does with input it cannot use, as
//! OpenTelemetry's `BaggagePropagator` does:
//!
//! - a list longer than [`MAX_BYTES`] in all is ignored as a whole, unread;
//! - a member that breaks the grammar (no `=`, a key that is not a token, a value byte
//!   outside `baggage-octet`, a `%` not followed by two hex digits) or is longer than
//!   [`MAX_MEMBER_BYTES`] is dropped, and so is every member past the
//!   [`MAX_MEMBERS`]th; the members around it are kept;
//! - empty members (`a=1,,b=2`, as header folding makes) are skipped as nothing.
//!
//! Each of those but the last is reported, so the caller can log once that something
//! was left out. Values are percent-decoded; decoded bytes that are not UTF-8 become
//! U+FFFD, as the specification says. Properties are read past and not kept.

use std::fmt::Write as _;

use http::HeaderName;

/// The header's name.
pub(crate) static HEADER: HeaderName = HeaderName::from_static("baggage");

/// The most members read, as OpenTelemetry reads.
pub(crate) const MAX_MEMBERS: usize = 180;

/// The longest member read, in bytes.
pub(crate) const MAX_MEMBER_BYTES: usize = 4096;

/// The longest list read, in bytes, separators between pieces included.
pub(crate) const MAX_BYTES: usize = 8192;

/// Why part of a list was left out; never its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LeftOut {
    /// The list is longer than [`MAX_BYTES`]: none of it was read.
    TooLong,
    /// A member breaks the grammar or is longer than [`MAX_MEMBER_BYTES`].
    Malformed,
    /// Members past the [`MAX_MEMBERS`]th.
    TooManyMembers,
}

impl LeftOut {
    /// What the log line says.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::TooLong => "the baggage is longer than 8192 bytes",
            Self::Malformed => "a baggage member is malformed or longer than 4096 bytes",
            Self::TooManyMembers => "the baggage has more than 180 members",
        }
    }
}

/// Reads one list given in pieces, calling back with each usable member's key and
/// decoded value, and remembering what it left out first.
#[derive(Debug, Default)]
pub(crate) struct Parser {
    bytes: usize,
    members: usize,
    left_out: Option<LeftOut>,
}

impl Parser {
    /// Reads every piece, then returns the first reason something was left out.
    pub(crate) fn parse<'a>(
        pieces: impl IntoIterator<Item = &'a [u8]> + Clone,
        mut member: impl FnMut(&'a str, String),
    ) -> Option<LeftOut> {
        let total = pieces
            .clone()
            .into_iter()
            .map(|piece| piece.len() + 1)
            .sum::<usize>()
            .saturating_sub(1);
        if total > MAX_BYTES {
            return Some(LeftOut::TooLong);
        }
        let mut parser = Self::default();
        for piece in pieces {
            parser.piece(piece, &mut member);
        }
        parser.left_out
    }

    fn piece<'a>(&mut self, piece: &'a [u8], member: &mut impl FnMut(&'a str, String)) {
        self.bytes += piece.len();
        for text in piece.split(|byte| *byte == b',') {
            let text = trim_ows(text);
            if text.is_empty() {
                continue;
            }
            if self.members == MAX_MEMBERS {
                self.leave_out(LeftOut::TooManyMembers);
                return;
            }
            self.members += 1;
            match parse_member(text) {
                Some((key, value)) => member(key, value),
                None => self.leave_out(LeftOut::Malformed),
            }
        }
    }

    fn leave_out(&mut self, why: LeftOut) {
        self.left_out.get_or_insert(why);
    }
}

/// A member's key and decoded value; `None` when it breaks the grammar or the limit.
fn parse_member(text: &[u8]) -> Option<(&str, String)> {
    if text.len() > MAX_MEMBER_BYTES {
        return None;
    }
    let pair = text.split(|byte| *byte == b';').next().unwrap_or_default();
    let at = pair.iter().position(|byte| *byte == b'=')?;
    let key = trim_ows(&pair[..at]);
    let value = trim_ows(&pair[at + 1..]);
    if key.is_empty() || !key.iter().copied().all(is_tchar) {
        return None;
    }
    let key = std::str::from_utf8(key).ok()?;
    Some((key, decode(value)?))
}

/// `value` percent-decoded; `None` for a byte outside `baggage-octet` or a bad escape.
fn decode(value: &[u8]) -> Option<String> {
    let mut bytes = Vec::with_capacity(value.len());
    let mut rest = value;
    while let Some((&byte, tail)) = rest.split_first() {
        if !is_baggage_octet(byte) {
            return None;
        }
        if byte == b'%' {
            let (high, low) = (hex(*tail.first()?)?, hex(*tail.get(1)?)?);
            bytes.push(high << 4 | low);
            rest = &tail[2..];
        } else {
            bytes.push(byte);
            rest = tail;
        }
    }
    Some(match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(not_utf8) => String::from_utf8_lossy(not_utf8.as_bytes()).into_owned(),
    })
}

fn hex(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|value| u8::try_from(value).ok())
}

/// `text` without leading and trailing spaces and tabs.
fn trim_ows(text: &[u8]) -> &[u8] {
    let is_ows = |byte: &u8| matches!(byte, b' ' | b'\t');
    let start = text.iter().position(|b| !is_ows(b)).unwrap_or(text.len());
    let end = text
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |at| at + 1);
    &text[start..end]
}

/// RFC 7230's `tchar`, the bytes of a token.
fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// The bytes a value may hold as they are: visible ASCII but `"`, `,`, `;` and `\`.
fn is_baggage_octet(byte: u8) -> bool {
    matches!(byte, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
}

/// Appends the member `key=value` to the list in `out`, after a `,` unless `out` is
/// empty, the value percent-encoded: every byte outside `baggage-octet`, and `%`.
/// `key` is a field key, which is a token already.
pub(crate) fn push_member(out: &mut String, key: &str, value: &str) {
    if !out.is_empty() {
        out.push(',');
    }
    out.push_str(key);
    out.push('=');
    for byte in value.bytes() {
        if is_baggage_octet(byte) && byte != b'%' {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

/// The keys of the members of `list`, as far as they parse.
pub(crate) fn keys(list: &[u8]) -> impl Iterator<Item = &[u8]> {
    list.split(|byte| *byte == b',').filter_map(|member| {
        let pair = member.split(|byte| *byte == b';').next()?;
        let at = pair.iter().position(|byte| *byte == b'=')?;
        Some(trim_ows(&pair[..at]))
    })
}

/// `existing` (a list a caller set, or none) with the members `ours` adds for keys it
/// does not hold already, or `None` when there is nothing to add. The caller's members
/// are kept as they are; ours are added only while the list stays within
/// [`MAX_BYTES`] and [`MAX_MEMBERS`], since a receiver may ignore a longer one whole.
pub(crate) fn merged<'v>(
    existing: Option<&[u8]>,
    ours: impl IntoIterator<Item = (&'v str, &'v str)>,
) -> Option<String> {
    let existing = existing.unwrap_or_default();
    let mut members = keys(existing).filter(|key| !key.is_empty()).count();
    let mut list = String::from_utf8_lossy(existing).into_owned();
    let mut added = false;
    for (key, value) in ours {
        if keys(existing).any(|held| held == key.as_bytes()) || members >= MAX_MEMBERS {
            continue;
        }
        let before = list.len();
        push_member(&mut list, key, value);
        if list.len() > MAX_BYTES {
            list.truncate(before);
            continue;
        }
        members += 1;
        added = true;
    }
    added.then_some(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pieces: &[&str]) -> (Vec<(String, String)>, Option<LeftOut>) {
        let mut members = Vec::new();
        let left_out = Parser::parse(pieces.iter().map(|piece| piece.as_bytes()), |k, v| {
            members.push((k.to_owned(), v));
        });
        (members, left_out)
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn members_with_ows_properties_and_escapes_are_read() {
        let (members, left_out) = parse(&[
            " tenant = acme ;ttl=30;sensitive , user=Alice%20Smith%2C%20100%25",
            "city=K%C3%B6ln\t",
        ]);
        assert_eq!(
            members,
            pairs(&[
                ("tenant", "acme"),
                ("user", "Alice Smith, 100%"),
                ("city", "Köln")
            ])
        );
        assert_eq!(left_out, None);
    }

    #[test]
    fn malformed_members_are_dropped_and_the_rest_kept() {
        for bad in [
            "novalue",
            "=empty-key",
            "bad key=x",
            "quoted=\"x\"",
            "back=sla\\sh",
            "pct=%ZZ",
            "pct=%4",
            "ctl=a\x1bb",
            "high=\u{e9}",
        ] {
            let (members, left_out) = parse(&[&format!("a=1,{bad},b=2")]);
            assert_eq!(members, pairs(&[("a", "1"), ("b", "2")]), "{bad:?}");
            assert_eq!(left_out, Some(LeftOut::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn empty_members_and_empty_values_are_not_errors() {
        let (members, left_out) = parse(&[",a=1,, ,b=", ""]);
        assert_eq!(members, pairs(&[("a", "1"), ("b", "")]));
        assert_eq!(left_out, None);
    }

    #[test]
    fn escaped_control_bytes_decode_and_bad_utf8_becomes_the_replacement_character() {
        let (members, left_out) = parse(&["lf=a%0Ab,cr=%0D,esc=%1B[31m,ff=%FF,nul=%00"]);
        assert_eq!(
            members,
            pairs(&[
                ("lf", "a\nb"),
                ("cr", "\r"),
                ("esc", "\u{1b}[31m"),
                ("ff", "\u{fffd}"),
                ("nul", "\0"),
            ])
        );
        assert_eq!(left_out, None);
    }

    #[test]
    fn the_limits_hold() {
        let many: Vec<String> = (0..200).map(|n| format!("k{n}=v")).collect();
        let (members, left_out) = parse(&[&many.join(",")]);
        assert_eq!(members.len(), MAX_MEMBERS);
        assert_eq!(left_out, Some(LeftOut::TooManyMembers));

        let split: Vec<&str> = many.iter().map(String::as_str).collect();
        let (members, _) = parse(&split);
        assert_eq!(members.len(), MAX_MEMBERS, "several headers are one list");

        let long = format!("big={},small=1", "x".repeat(MAX_MEMBER_BYTES));
        let (members, left_out) = parse(&[&long]);
        assert_eq!(members, pairs(&[("small", "1")]));
        assert_eq!(left_out, Some(LeftOut::Malformed));

        // Two headers of 4095 bytes and the `,` joining them: 8191 bytes, read.
        let half = format!("a={}", "x".repeat(MAX_MEMBER_BYTES - 3));
        let pieces = [half.as_str(), half.as_str()];
        assert_eq!(parse(&pieces).0.len(), 2);
        let pieces = [half.as_str(), half.as_str(), "b=1"];
        assert_eq!(parse(&pieces), (Vec::new(), Some(LeftOut::TooLong)));
    }

    #[test]
    fn the_encoder_escapes_what_the_grammar_forbids_and_round_trips() {
        let mut list = String::new();
        push_member(&mut list, "user", "Alice \"A\" Smith, 100%;\\");
        push_member(&mut list, "line", "a\r\nb\u{1b}é");
        push_member(&mut list, "plain", "acme-1.2_x~!$&'()*+/:<=>?@[]^`{|}");
        assert_eq!(
            list,
            "user=Alice%20%22A%22%20Smith%2C%20100%25%3B%5C,line=a%0D%0Ab%1B%C3%A9,plain=acme-1.2_x~!$&'()*+/:<=>?@[]^`{|}"
        );
        let (members, left_out) = parse(&[&list]);
        assert_eq!(left_out, None);
        assert_eq!(
            members,
            pairs(&[
                ("user", "Alice \"A\" Smith, 100%;\\"),
                ("line", "a\r\nb\u{1b}é"),
                ("plain", "acme-1.2_x~!$&'()*+/:<=>?@[]^`{|}"),
            ])
        );
    }

    #[test]
    fn merging_keeps_the_callers_members_and_adds_only_new_keys() {
        let ours = [("tenant", "acme"), ("user", "alice")];
        assert_eq!(
            merged(None, ours).as_deref(),
            Some("tenant=acme,user=alice")
        );
        assert_eq!(
            merged(Some(b"user=bob;p=1, other=x"), ours).as_deref(),
            Some("user=bob;p=1, other=x,tenant=acme")
        );
        assert_eq!(merged(Some(b"tenant=t,user=u"), ours), None);
        assert_eq!(merged(Some(b"a=1"), []), None);
        let full = format!("a={}", "x".repeat(MAX_BYTES - 2));
        assert_eq!(merged(Some(full.as_bytes()), ours), None);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_without_panicking_into_tokens_and_text(
            pieces in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..600), 0..4),
        ) {
            let mut members = Vec::new();
            Parser::parse(pieces.iter().map(Vec::as_slice), |key, value| members.push((key, value)));
            for (key, _) in members {
                proptest::prop_assert!(!key.is_empty() && key.bytes().all(is_tchar));
            }
        }

        #[test]
        fn any_value_round_trips(key in "[a-z][a-z0-9_.-]{0,31}", value in proptest::prelude::any::<String>()) {
            let mut list = String::new();
            push_member(&mut list, &key, &value);
            proptest::prop_assert!(list.bytes().all(|byte| byte == b'=' || is_baggage_octet(byte)));
            let (members, left_out) = parse(&[&list]);
            if list.len() <= MAX_MEMBER_BYTES {
                proptest::prop_assert_eq!(left_out, None);
                proptest::prop_assert_eq!(members, vec![(key, value)]);
            }
        }
    }
}
