//! The [`CorrelationId`] type and the safety rules every ID obeys.

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use http::HeaderValue;

/// A correlation ID that is safe to log and to echo in a response header.
///
/// A value of this type can only exist if it is 1 to [`CorrelationId::MAX_LEN`] bytes of
/// visible ASCII (`0x21` to `0x7E`): no spaces, tabs, control characters, newlines or
/// bytes above `0x7F`. Every constructor checks this, so an ID from a hostile header,
/// a buggy generator or a transformer can never break a log line or a response.
///
/// Cloning is cheap: the bytes live in a reference-counted [`HeaderValue`], so an
/// accepted incoming header value reaches the task-local context and the response
/// header without being copied; an ID copied from a header value of another type (an
/// `http` 0.2 one in actix-web 4) holds a UUID's length in itself, without an allocation.
///
/// ```
/// use correlation_core::CorrelationId;
///
/// let id: CorrelationId = "3758c31e-1177-4540-ba33-0109c405579a".parse()?;
/// assert_eq!(id, "3758c31e-1177-4540-ba33-0109c405579a");
/// assert_eq!(id.to_string().len(), 36);
///
/// assert!("has space".parse::<CorrelationId>().is_err());
/// assert!("".parse::<CorrelationId>().is_err());
/// # Ok::<(), correlation_core::InvalidCorrelationId>(())
/// ```
#[derive(Clone)]
pub struct CorrelationId(Repr);

/// Where an ID's bytes live.
#[derive(Clone)]
enum Repr {
    /// Shared with header values: an accepted `http` 1 value, a generated ID.
    Shared(HeaderValue),
    /// Held in the ID itself: a short ID copied from a header value of another type.
    Inline(Inline),
}

/// Up to [`Inline::CAPACITY`] bytes, enough for a hyphenated UUID.
#[derive(Clone, Copy)]
struct Inline {
    len: u8,
    bytes: [u8; Inline::CAPACITY],
}

impl Inline {
    const CAPACITY: usize = 39;

    fn new(bytes: &[u8]) -> Option<Self> {
        let mut inline = Self {
            len: u8::try_from(bytes.len()).ok()?,
            bytes: [0; Self::CAPACITY],
        };
        inline.bytes.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(inline)
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// Why a value cannot be a [`CorrelationId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidCorrelationId {
    /// The value is empty.
    #[error("correlation id is empty")]
    Empty,
    /// The value is longer than the limit.
    #[error("correlation id is {len} bytes long, the limit is {max}")]
    TooLong {
        /// Length of the rejected value in bytes.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// The value holds a byte outside visible ASCII (`0x21` to `0x7E`).
    #[error("correlation id has a byte outside visible ASCII at position {position}")]
    InvalidByte {
        /// Zero-based index of the first offending byte.
        position: usize,
    },
}

/// Checks the safety rules against `bytes` with a length limit of `max` (at most
/// [`CorrelationId::MAX_LEN`]).
pub(crate) fn check_safe(bytes: &[u8], max: usize) -> Result<(), InvalidCorrelationId> {
    if bytes.is_empty() {
        return Err(InvalidCorrelationId::Empty);
    }
    let max = max.min(CorrelationId::MAX_LEN);
    if bytes.len() > max {
        return Err(InvalidCorrelationId::TooLong {
            len: bytes.len(),
            max,
        });
    }
    match bytes.iter().position(|b| !matches!(b, 0x21..=0x7E)) {
        Some(position) => Err(InvalidCorrelationId::InvalidByte { position }),
        None => Ok(()),
    }
}

impl CorrelationId {
    /// The absolute upper bound on an ID's length, in bytes.
    pub const MAX_LEN: usize = 128;

    /// Copies `value` into a new ID after checking the safety rules.
    pub fn new(value: &str) -> Result<Self, InvalidCorrelationId> {
        Self::from_bytes(Bytes::copy_from_slice(value.as_bytes()))
    }

    /// Takes `bytes` without copying them, after checking the safety rules.
    pub fn from_bytes(bytes: Bytes) -> Result<Self, InvalidCorrelationId> {
        check_safe(&bytes, Self::MAX_LEN)?;
        // The safety rules are a subset of what `HeaderValue` accepts, so this cannot fail;
        // the error arm keeps the function total without a panic.
        HeaderValue::from_maybe_shared(bytes)
            .map(Self::shared)
            .map_err(|_| InvalidCorrelationId::InvalidByte { position: 0 })
    }

    fn shared(value: HeaderValue) -> Self {
        Self(Repr::Shared(value))
    }

    /// Builds an ID from the text of a UUID (hex digits and hyphens, which always pass
    /// the safety rules) with a single allocation that every clone shares.
    pub(crate) fn from_uuid_text<const N: usize>(
        buf: [u8; N],
    ) -> Result<Self, InvalidCorrelationId> {
        debug_assert!(check_safe(&buf, Self::MAX_LEN).is_ok());
        // `HeaderValue` checks the bytes again; the error arm keeps this total.
        HeaderValue::from_maybe_shared(Bytes::from_owner(buf))
            .map(Self::shared)
            .map_err(|_| InvalidCorrelationId::InvalidByte { position: 0 })
    }

    /// Shares the bytes of `value` (no copy) after checking the safety rules.
    pub fn from_header_value(value: &HeaderValue) -> Result<Self, InvalidCorrelationId> {
        check_safe(value.as_bytes(), Self::MAX_LEN)?;
        Ok(Self::from_checked_header_value(value))
    }

    /// Copies `bytes`, which the caller has already found to be visible ASCII within the
    /// length limit: for header values of other `http` versions, whose bytes cannot be
    /// shared. A short ID is held in the ID itself, a longer one in one allocation.
    pub(crate) fn from_checked_bytes(bytes: &[u8]) -> Self {
        debug_assert!(check_safe(bytes, Self::MAX_LEN).is_ok());
        match Inline::new(bytes) {
            Some(inline) => Self(Repr::Inline(inline)),
            None => Self::shared(shared_value(bytes)),
        }
    }

    /// Shares the bytes of `value`, which the caller has already found to be visible ASCII
    /// within the length limit.
    pub(crate) fn from_checked_header_value(value: &HeaderValue) -> Self {
        debug_assert!(check_safe(value.as_bytes(), Self::MAX_LEN).is_ok());
        let mut value = value.clone();
        value.set_sensitive(false);
        Self::shared(value)
    }

    /// Makes an ID from a string literal.
    ///
    /// # Panics
    ///
    /// Panics if `value` breaks the safety rules. Meant for constants in tests and
    /// examples; use [`CorrelationId::new`] for anything that comes from outside.
    #[must_use]
    pub fn from_static(value: &'static str) -> Self {
        match check_safe(value.as_bytes(), Self::MAX_LEN) {
            Ok(()) => Self::shared(HeaderValue::from_static(value)),
            Err(err) => panic!("invalid static correlation id {value:?}: {err}"),
        }
    }

    /// The ID as a string slice.
    pub fn as_str(&self) -> &str {
        // Visible ASCII is always UTF-8, so the fallback is never taken.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// The ID as bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Shared(value) => value.as_bytes(),
            Repr::Inline(inline) => inline.as_bytes(),
        }
    }

    /// Length of the ID in bytes (always at least 1).
    #[allow(clippy::len_without_is_empty)] // an ID is never empty
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// The ID's bytes as [`Bytes`], for a header type other than `http` 1's (another
    /// `http` version, a message broker's headers), in one allocation: an ID whose bytes
    /// are shared keeps sharing them, an ID held inline is copied into it.
    ///
    /// ```
    /// use correlation_core::CorrelationId;
    ///
    /// let id = CorrelationId::new("req-7").unwrap();
    /// assert_eq!(id.to_bytes(), "req-7".as_bytes());
    /// ```
    #[must_use]
    #[inline]
    pub fn to_bytes(&self) -> Bytes {
        match &self.0 {
            Repr::Shared(value) => Bytes::from_owner(value.clone()),
            Repr::Inline(inline) => Bytes::from_owner(*inline),
        }
    }

    /// The ID as a header value: it shares the ID's bytes (no copy and no re-validation),
    /// except for an ID copied from a header value of another type, whose bytes are
    /// copied once more.
    pub fn to_header_value(&self) -> HeaderValue {
        match &self.0 {
            Repr::Shared(value) => value.clone(),
            Repr::Inline(inline) => shared_value(inline.as_bytes()),
        }
    }
}

/// `bytes` (visible ASCII within the length limit) copied into one allocation that every
/// clone of the header value shares.
fn shared_value(bytes: &[u8]) -> HeaderValue {
    let shared = if bytes.len() <= 64 {
        Bytes::from_owner(IdBuf::<64>::new(bytes))
    } else {
        Bytes::from_owner(IdBuf::<{ CorrelationId::MAX_LEN }>::new(bytes))
    };
    // `HeaderValue` checks the bytes again; the fallback keeps this total.
    HeaderValue::from_maybe_shared(shared).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

impl PartialEq for CorrelationId {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for CorrelationId {}

impl std::hash::Hash for CorrelationId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl PartialOrd for CorrelationId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for CorrelationId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

/// Up to `N` bytes held inline, so that sharing them costs one allocation (a `Vec` made
/// into `Bytes` costs a second one when first cloned).
struct IdBuf<const N: usize> {
    len: usize,
    buf: [u8; N],
}

impl<const N: usize> IdBuf<N> {
    fn new(bytes: &[u8]) -> Self {
        let mut buf = [0; N];
        buf[..bytes.len()].copy_from_slice(bytes);
        Self {
            len: bytes.len(),
            buf,
        }
    }
}

/// For [`Bytes::from_owner`].
impl AsRef<[u8]> for Inline {
    #[inline]
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl<const N: usize> AsRef<[u8]> for IdBuf<N> {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl fmt::Debug for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CorrelationId")
            .field(&self.as_str())
            .finish()
    }
}

impl AsRef<str> for CorrelationId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<[u8]> for CorrelationId {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl PartialEq<str> for CorrelationId {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for CorrelationId {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<String> for CorrelationId {
    fn eq(&self, other: &String) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<CorrelationId> for str {
    fn eq(&self, other: &CorrelationId) -> bool {
        other == self
    }
}

impl PartialEq<CorrelationId> for &str {
    fn eq(&self, other: &CorrelationId) -> bool {
        other == *self
    }
}

impl FromStr for CorrelationId {
    type Err = InvalidCorrelationId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<&str> for CorrelationId {
    type Error = InvalidCorrelationId;

    fn try_from(value: &str) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl TryFrom<String> for CorrelationId {
    type Error = InvalidCorrelationId;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::from_bytes(Bytes::from(value))
    }
}

impl TryFrom<&HeaderValue> for CorrelationId {
    type Error = InvalidCorrelationId;

    fn try_from(value: &HeaderValue) -> Result<Self, Self::Error> {
        Self::from_header_value(value)
    }
}

impl TryFrom<HeaderValue> for CorrelationId {
    type Error = InvalidCorrelationId;

    fn try_from(value: HeaderValue) -> Result<Self, Self::Error> {
        Self::from_header_value(&value)
    }
}

impl From<CorrelationId> for HeaderValue {
    fn from(id: CorrelationId) -> Self {
        match id.0 {
            Repr::Shared(value) => value,
            Repr::Inline(inline) => shared_value(inline.as_bytes()),
        }
    }
}

impl From<&CorrelationId> for HeaderValue {
    fn from(id: &CorrelationId) -> Self {
        id.to_header_value()
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for CorrelationId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for CorrelationId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = CorrelationId;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("1 to 128 bytes of visible ASCII")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<CorrelationId, E> {
                CorrelationId::new(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn an_id_copied_from_other_bytes_holds_a_uuid_without_allocating() {
        let hyphenated = "3758c31e-1177-4540-ba33-0109c405579a";
        let mut copied = None;
        let allocations = allocation_counter::measure(|| {
            copied = Some(CorrelationId::from_checked_bytes(hyphenated.as_bytes()));
        });
        let copied = copied.unwrap();
        assert_eq!(allocations.count_total, 0);
        // It is the same ID as one sharing a header value's bytes, wherever it is compared.
        let shared = CorrelationId::from_static(hyphenated);
        assert_eq!(copied, shared);
        assert_eq!(copied.cmp(&shared), std::cmp::Ordering::Equal);
        let state = std::hash::RandomState::new();
        assert_eq!(state.hash_one(&copied), state.hash_one(&shared));
        assert_eq!(copied.to_header_value(), hyphenated);
        assert_eq!(HeaderValue::from(copied.clone()), hyphenated);
        assert_eq!(format!("{copied:?}"), format!("{shared:?}"));

        // A longer one is copied once, into bytes its clones share.
        let long = "a".repeat(100);
        let mut copied = None;
        let allocations = allocation_counter::measure(|| {
            copied = Some(CorrelationId::from_checked_bytes(long.as_bytes()));
        });
        assert_eq!(allocations.count_total, 1);
        assert_eq!(copied.unwrap().as_str(), long);
    }

    #[test]
    fn an_id_copied_from_other_bytes_keeps_them_at_every_length() {
        let text: String = (b'!'..=b'~').map(char::from).cycle().take(40).collect();
        for len in 1..=text.len() {
            let bytes = &text.as_bytes()[text.len() - len..];
            let mut copied = None;
            let allocations = allocation_counter::measure(|| {
                copied = Some(CorrelationId::from_checked_bytes(bytes));
            });
            let copied = copied.unwrap();
            assert_eq!(copied.as_bytes(), bytes, "length {len}");
            let expected = if len <= Inline::CAPACITY { 0 } else { 1 };
            assert_eq!(allocations.count_total, expected, "length {len}");
        }
    }

    #[test]
    fn the_ids_bytes_take_one_allocation_whatever_holds_them() {
        const UUID: &str = "3758c31e-1177-4540-ba33-0109c405579a";
        let shared = CorrelationId::from_static(UUID);
        let inline = CorrelationId::from_checked_bytes(UUID.as_bytes());
        let long = CorrelationId::from_checked_bytes(&[b'x'; 100]);
        for (id, expected) in [(shared, UUID.as_bytes()), (inline, UUID.as_bytes())]
            .into_iter()
            .chain([(long, &[b'x'; 100][..])])
        {
            let mut bytes = None;
            let allocations = allocation_counter::measure(|| bytes = Some(id.to_bytes()));
            assert_eq!(bytes.unwrap(), expected);
            assert_eq!(allocations.count_total, 1);
        }
    }

    #[test]
    fn accepts_visible_ascii_only() {
        assert!(CorrelationId::new("abc-DEF_123.~!").is_ok());
        assert_eq!(CorrelationId::new(""), Err(InvalidCorrelationId::Empty));
        assert_eq!(
            CorrelationId::new("a b"),
            Err(InvalidCorrelationId::InvalidByte { position: 1 })
        );
        assert_eq!(
            CorrelationId::new("ab\t"),
            Err(InvalidCorrelationId::InvalidByte { position: 2 })
        );
        assert!(CorrelationId::new("é").is_err());
        assert!(CorrelationId::new("a\r\nb").is_err());
        assert!(CorrelationId::new("\x1b[31m").is_err());
        assert!(CorrelationId::new("\x7f").is_err());
    }

    #[test]
    fn length_limit_is_128_bytes() {
        assert!(CorrelationId::new(&"a".repeat(128)).is_ok());
        assert_eq!(
            CorrelationId::new(&"a".repeat(129)),
            Err(InvalidCorrelationId::TooLong { len: 129, max: 128 })
        );
    }

    #[test]
    fn header_value_is_shared_not_copied() {
        let header = HeaderValue::from_maybe_shared(Bytes::from_static(b"static-id")).unwrap();
        let id = CorrelationId::from_header_value(&header).unwrap();
        assert_eq!(id.as_bytes().as_ptr(), header.as_bytes().as_ptr());
        assert_eq!(
            id.to_header_value().as_bytes().as_ptr(),
            header.as_bytes().as_ptr()
        );
    }

    #[test]
    fn header_value_with_obs_text_is_rejected() {
        let header = HeaderValue::from_bytes(b"abc\xffdef").unwrap();
        assert_eq!(
            CorrelationId::from_header_value(&header),
            Err(InvalidCorrelationId::InvalidByte { position: 3 })
        );
    }

    #[test]
    fn compares_with_strings() {
        let id = CorrelationId::from_static("abc");
        assert_eq!(id, "abc");
        assert_eq!("abc", id);
        assert_eq!(id, String::from("abc"));
        assert_eq!(format!("[{id:>5}]"), "[  abc]");
        assert_eq!(format!("{id:?}"), "CorrelationId(\"abc\")");
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_round_trip_validates() {
        let id = CorrelationId::from_static("abc");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"abc\"");
        let back: CorrelationId = serde_json::from_str("\"abc\"").unwrap();
        assert_eq!(back, id);
        assert!(serde_json::from_str::<CorrelationId>("\"a b\"").is_err());
    }
}
