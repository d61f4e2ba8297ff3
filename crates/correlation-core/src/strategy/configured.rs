//! The strategies as a configuration holds them. The defaults are recognised so that the
//! per-request work runs without a dynamic call, UTF-8 check or unwind guard.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use http::HeaderValue;

use crate::constants::LOG_TARGET;
use crate::id::{CorrelationId, InvalidCorrelationId, check_safe};
use crate::strategy::{IdGenerator, IdValidator, StrictUuidV4, UuidV4};

/// An incoming value a validator checks: an `http` 1 header value, whose bytes an
/// accepted ID shares, or the bytes of another header type, which it copies.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Candidate<'a> {
    Shared(&'a HeaderValue),
    Borrowed(&'a [u8]),
}

impl<'a> Candidate<'a> {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.into_bytes()
    }

    pub(crate) fn into_bytes(self) -> &'a [u8] {
        match self {
            Self::Shared(value) => value.as_bytes(),
            Self::Borrowed(bytes) => bytes,
        }
    }

    /// The ID, once the bytes are known to pass the safety rules.
    fn into_checked_id(self) -> CorrelationId {
        match self {
            Self::Shared(value) => CorrelationId::from_checked_header_value(value),
            Self::Borrowed(bytes) => CorrelationId::from_checked_bytes(bytes),
        }
    }
}

/// The validator as configured. The default one is recognised so that the per-request
/// check runs on the header's bytes, without a dynamic call, UTF-8 check or unwind guard.
pub(crate) enum Validator {
    StrictUuidV4,
    Custom(Box<dyn IdValidator>),
}

impl Validator {
    /// `candidate` as an ID, if it passes the safety rules within `max` bytes and this
    /// validator; a validator that panics rejects it.
    // Inlined into the decision, where the default validator's case is a few moves.
    #[inline]
    pub(crate) fn accept(&self, candidate: Candidate<'_>, max: usize) -> Option<CorrelationId> {
        let bytes = candidate.as_bytes();
        match self {
            // A UUID is visible ASCII, so passing the check also passes the safety rules.
            Self::StrictUuidV4 => (bytes.len() <= max && StrictUuidV4::accepts(bytes))
                .then(|| candidate.into_checked_id()),
            Self::Custom(validator) => {
                check_safe(bytes, max).ok()?;
                // Visible ASCII is UTF-8.
                let text = std::str::from_utf8(bytes).ok()?;
                let valid = catch_unwind(AssertUnwindSafe(|| validator.is_valid(text)));
                matches!(valid, Ok(true)).then(|| candidate.into_checked_id())
            }
        }
    }

    pub(crate) fn new<V: IdValidator>(validator: V) -> Self {
        if (&validator as &dyn Any).is::<StrictUuidV4>() {
            Self::StrictUuidV4
        } else {
            Self::Custom(Box::new(validator))
        }
    }
}

/// The generator as configured. The default one is recognised so that generating an ID
/// is a direct call, without a dynamic call or unwind guard.
pub(crate) enum Generator {
    UuidV4,
    Custom(Box<dyn IdGenerator>),
}

impl Generator {
    pub(crate) fn new<G: IdGenerator>(generator: G) -> Self {
        if (&generator as &dyn Any).is::<UuidV4>() {
            Self::UuidV4
        } else {
            Self::Custom(Box::new(generator))
        }
    }

    /// A new ID of at most `max` bytes; a generator that fails or panics is replaced by
    /// a UUID v4 for this ID and a warning is logged.
    pub(crate) fn generate_within(&self, max: usize) -> CorrelationId {
        let generator = match self {
            // Cannot fail, and `build` checked its length against `max`.
            Self::UuidV4 => return UuidV4::new_id(),
            Self::Custom(generator) => generator,
        };
        match catch_unwind(AssertUnwindSafe(|| generator.generate())) {
            Ok(Ok(id)) if id.len() <= max => return id,
            Ok(Ok(_)) => {
                log::warn!(target: LOG_TARGET, "ID generator made an ID longer than {max} bytes; using a UUID v4")
            }
            Ok(Err(err)) => {
                log::warn!(target: LOG_TARGET, "ID generator made an unusable ID ({err}); using a UUID v4")
            }
            Err(_) => log::warn!(target: LOG_TARGET, "ID generator panicked; using a UUID v4"),
        }
        fallback_id(max)
    }

    /// Like [`generate_within`](Self::generate_within), the default generator's ID held in
    /// the ID itself rather than in a shared header value.
    pub(crate) fn generate_inline_within(&self, max: usize) -> CorrelationId {
        match self {
            Self::UuidV4 => UuidV4::new_inline_id(),
            Self::Custom(_) => self.generate_within(max),
        }
    }

    /// A new ID, or why the generator's candidate is unusable (a panic unwinds).
    pub(crate) fn generate(&self) -> Result<CorrelationId, InvalidCorrelationId> {
        match self {
            Self::UuidV4 => Ok(UuidV4::new_id()),
            Self::Custom(generator) => generator.generate(),
        }
    }
}

/// The generator of last resort: a UUID v4, shortened to `max` hex digits if needed.
fn fallback_id(max: usize) -> CorrelationId {
    let id = UuidV4::new_id();
    if id.len() <= max {
        return id;
    }
    CorrelationId::new(&id.as_str()[..max.max(1)]).unwrap_or(id)
}
