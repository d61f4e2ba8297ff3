//! Escaping of text that may come from a client, so that one log record is one line and
//! nothing in it is interpreted by a terminal.

use std::fmt::{self, Write};

/// Whether `c` is written as a visible escape: every C0 control (line breaks, tab, ESC,
/// NUL...), DEL, every C1 control, the Unicode line and paragraph separators, and the
/// bidirectional embeddings, overrides and isolates ("Trojan Source").
const fn is_escaped(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{1f}'
            | '\u{7f}'..='\u{9f}'
            | '\u{2028}'..='\u{2029}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
    )
}

/// Whether `byte` may start an escaped character: an ASCII control or DEL, or the lead
/// byte of the UTF-8 encodings of U+0080–U+00BF (`0xC2`) and U+2000–U+203F /
/// U+2040–U+207F (`0xE2`). Lead bytes never occur inside another character's encoding,
/// so a position found this way is a character boundary.
const fn may_start_escaped(byte: u8) -> bool {
    byte < 0x20 || byte == 0x7f || byte == 0xc2 || byte == 0xe2
}

/// Whether any byte of `word` [may start an escaped character](may_start_escaped),
/// eight bytes at a time (the classic "has zero byte" / "has byte less than" bit tricks,
/// both exact for "any").
const fn word_may_start_escaped(word: u64) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    const fn has_zero(x: u64) -> bool {
        x.wrapping_sub(ONES) & !x & HIGHS != 0
    }
    const fn has_byte(x: u64, byte: u8) -> bool {
        has_zero(x ^ (ONES * byte as u64))
    }
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGHS != 0;
    below_space || has_byte(word, 0x7f) || has_byte(word, 0xc2) || has_byte(word, 0xe2)
}

/// The offset of the first byte of `bytes` that may start an escaped character.
fn first_suspect(bytes: &[u8]) -> Option<usize> {
    // Eight bytes at a time first: the common case (nothing to escape) ends here.
    let mut start = 0;
    for chunk in bytes.chunks_exact(8) {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        if word_may_start_escaped(u64::from_ne_bytes(word)) {
            break;
        }
        start += 8;
    }
    let offset = bytes[start..].iter().position(|&b| may_start_escaped(b))?;
    Some(start + offset)
}

/// The byte offset of the first character of `text` that is escaped, if any.
pub(crate) fn first_escaped(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(offset) = first_suspect(&bytes[from..]) {
        let at = from + offset;
        let c = text[at..].chars().next()?;
        if is_escaped(c) {
            return Some(at);
        }
        from = at + c.len_utf8();
    }
    None
}

/// Whether `text` holds anything that [`write_escaped`] would escape.
pub(crate) fn needs_escaping(text: &str) -> bool {
    first_escaped(text).is_some()
}

/// Writes `text` with every escaped character as `\n`, `\r`, `\t` or `\u{<hex>}`, and
/// everything else, non-ASCII letters included, as it is.
pub(crate) fn write_escaped(out: &mut (impl Write + ?Sized), text: &str) -> fmt::Result {
    let mut rest = text;
    while let Some(at) = first_escaped(rest) {
        out.write_str(&rest[..at])?;
        let c = rest[at..].chars().next().unwrap_or_default();
        match c {
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            _ => write_code_point(out, c)?,
        }
        rest = &rest[at + c.len_utf8()..];
    }
    out.write_str(rest)
}

/// Writes `c` as `\u{<lowercase hex>}`, as `char::escape_unicode` does, without going
/// through the formatting machinery.
fn write_code_point(out: &mut (impl Write + ?Sized), c: char) -> fmt::Result {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let code = u32::from(c);
    let digits = ((u32::BITS - code.leading_zeros()).div_ceil(4)).max(1) as usize;
    let mut text = *b"\\u{000000}";
    for (index, slot) in text[3..3 + digits].iter_mut().enumerate() {
        let shift = 4 * (digits - 1 - index);
        *slot = HEX[(code >> shift) as usize & 0xf];
    }
    text[3 + digits] = b'}';
    // Only ASCII was written.
    out.write_str(std::str::from_utf8(&text[..4 + digits]).map_err(|_| fmt::Error)?)
}

/// A [`fmt::Write`] that escapes everything written through it into `W`, piece by piece,
/// without buffering.
pub(crate) struct EscapingWriter<W>(pub(crate) W);

impl<W: Write> Write for EscapingWriter<W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        write_escaped(&mut self.0, text)
    }
}

/// A [`fmt::Write`] that only records whether anything written through it would be
/// escaped.
#[cfg(feature = "kv")]
#[derive(Default)]
pub(crate) struct EscapeDetector {
    pub(crate) found: bool,
}

#[cfg(feature = "kv")]
impl Write for EscapeDetector {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.found = self.found || needs_escaping(text);
        // Stop formatting as soon as the answer is known.
        if self.found { Err(fmt::Error) } else { Ok(()) }
    }
}

/// Displays a value with control characters and bidirectional overrides escaped, so it
/// stays on one line and cannot rewrite a terminal: for custom log formats that print
/// text a client may control.
///
/// CR, LF and tab become `\r`, `\n` and `\t`; every other C0 control, DEL, every C1
/// control (U+0080–U+009F), the line and paragraph separators (U+2028, U+2029) and the
/// bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069) become
/// `\u{<hex>}`. Everything else, non-ASCII letters included, is shown as it is, and
/// nothing is allocated. Backslashes are not doubled, so escaping twice changes nothing;
/// the escapes are for reading, not for decoding back.
///
/// The formats of this crate ([`format`](fn@crate::format), [`LogFormat`](crate::LogFormat))
/// and [`CorrelationLogger`](crate::CorrelationLogger) already escape the message, the
/// target and the key-values; use this when writing a format closure of your own.
///
/// ```
/// use correlation_core::Escaped;
///
/// let forged = "ok\nINFO  [0123] app: forged \u{1b}[2K";
/// assert_eq!(
///     Escaped(forged).to_string(),
///     r"ok\nINFO  [0123] app: forged \u{1b}[2K"
/// );
/// assert_eq!(Escaped("crème brûlée, 東京").to_string(), "crème brûlée, 東京");
/// assert_eq!(Escaped("\u{202e}exe.txt").to_string(), r"\u{202e}exe.txt");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Escaped<T>(pub T);

impl<T: fmt::Display> fmt::Display for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(EscapingWriter(f), "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(text: &str) -> String {
        Escaped(text).to_string()
    }

    #[test]
    fn line_breaks_and_tabs_have_short_escapes() {
        assert_eq!(escaped("a\nb\r\nc\td"), r"a\nb\r\nc\td");
    }

    #[test]
    fn every_other_c0_control_and_del_is_escaped_by_code_point() {
        assert_eq!(escaped("\u{0}"), r"\u{0}");
        assert_eq!(escaped("\u{1b}[2K\u{1b}[31mred"), r"\u{1b}[2K\u{1b}[31mred");
        assert_eq!(escaped("\u{7}\u{8}\u{b}\u{c}"), r"\u{7}\u{8}\u{b}\u{c}");
        assert_eq!(escaped("\u{1f}\u{7f}"), r"\u{1f}\u{7f}");
        for c in (0u8..0x20).chain([0x7f]).map(char::from) {
            assert!(!escaped(&c.to_string()).contains(c), "{c:?}");
        }
    }

    #[test]
    fn c1_controls_are_escaped() {
        assert_eq!(
            escaped("a\u{80}b\u{85}c\u{9b}d\u{9f}"),
            r"a\u{80}b\u{85}c\u{9b}d\u{9f}"
        );
    }

    #[test]
    fn bidi_overrides_isolates_and_line_separators_are_escaped() {
        let bidi = "\u{202a}\u{202b}\u{202c}\u{202d}\u{202e}\u{2066}\u{2067}\u{2068}\u{2069}";
        assert_eq!(
            escaped(bidi),
            r"\u{202a}\u{202b}\u{202c}\u{202d}\u{202e}\u{2066}\u{2067}\u{2068}\u{2069}"
        );
        assert_eq!(escaped("a\u{2028}b\u{2029}c"), r"a\u{2028}b\u{2029}c");
    }

    #[test]
    fn printable_text_is_untouched() {
        // Neighbours of the escaped ranges share their lead bytes (0xC2, 0xE2).
        for text in [
            "plain ASCII with \\ backslashes, {braces} and \"quotes\"",
            "\u{a0}\u{a9}\u{bf} non-breaking space, ©, ¿",
            "\u{2013}\u{2014}\u{2026}\u{2030}\u{20ac}\u{2122} – — … ‰ € ™",
            "\u{2027}\u{202f}\u{2065}\u{206a} neighbours of the ranges",
            "Grüße, Ελληνικά, русский, العربية, עברית, 日本語, 🦀",
        ] {
            assert_eq!(escaped(text), text);
            assert!(!needs_escaping(text), "{text}");
        }
    }

    #[test]
    fn the_word_scan_agrees_with_the_byte_scan() {
        for byte in 0..=u8::MAX {
            for position in 0..8 {
                let mut word = *b"abcdefgh";
                word[position] = byte;
                assert_eq!(
                    word_may_start_escaped(u64::from_ne_bytes(word)),
                    may_start_escaped(byte),
                    "{byte:#x} at {position}"
                );
            }
        }
        // Neighbours of the suspects, side by side.
        for word in [
            [0x20, 0x7e, 0x80, 0xc1, 0xc3, 0xe1, 0xe3, 0xff],
            [0x21; 8],
            [0x7e; 8],
        ] {
            assert!(
                !word_may_start_escaped(u64::from_ne_bytes(word)),
                "{word:x?}"
            );
        }
    }

    #[test]
    fn code_points_are_written_as_char_escape_unicode_does() {
        for c in [
            '\u{0}',
            '\u{1}',
            '\u{1b}',
            '\u{7f}',
            '\u{85}',
            '\u{202e}',
            '\u{2069}',
            '\u{10ffff}',
        ] {
            let mut text = String::new();
            write_code_point(&mut text, c).unwrap();
            assert_eq!(text, c.escape_unicode().to_string());
        }
    }

    #[test]
    fn escaping_twice_changes_nothing() {
        let once = escaped("a\n\u{1b}\u{85}\u{202e}z");
        assert_eq!(escaped(&once), once);
    }

    #[test]
    fn escapes_across_pieces_of_a_format() {
        let text = format!("{}", Escaped(format_args!("{}-{}\n{:>3}", "a\r", 7, "\t")));
        assert_eq!(text, r"a\r-7\n  \t");
    }
}
