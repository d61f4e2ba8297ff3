//! The strategies as a configuration holds them: the built-in defaults, which the builder
//! starts with, or the application's own, boxed.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::constants::LOG_TARGET;
use crate::id::{CorrelationId, InvalidCorrelationId, check_safe};
use crate::strategy::{IdGenerator, IdValidator, StrictUuidV4, UuidV4};

/// The validator as configured: the default one checks the header's bytes directly;
/// one the application sets is called on its text, guarded against panics.
pub(crate) enum Validator {
    StrictUuidV4,
    Custom(Box<dyn IdValidator>),
}

impl Validator {
    /// Whether `value` passes the safety rules within `max` bytes and this validator; a
    /// validator that panics rejects it.
    pub(crate) fn accepts(&self, value: &[u8], max: usize) -> bool {
        match self {
            // A UUID is visible ASCII, so passing the check also passes the safety rules.
            Self::StrictUuidV4 => value.len() <= max && StrictUuidV4::accepts(value),
            Self::Custom(validator) => {
                // Visible ASCII is UTF-8.
                let text = match check_safe(value, max).map(|()| std::str::from_utf8(value)) {
                    Ok(Ok(text)) => text,
                    _ => return false,
                };
                matches!(
                    catch_unwind(AssertUnwindSafe(|| validator.is_valid(text))),
                    Ok(true)
                )
            }
        }
    }

    pub(crate) fn new<V: IdValidator>(validator: V) -> Self {
        Self::Custom(Box::new(validator))
    }
}

/// The generator as configured: the default one cannot fail and makes the ID in itself;
/// one the application sets is guarded against failures and panics.
pub(crate) enum Generator {
    UuidV4,
    Custom(Box<dyn IdGenerator>),
}

impl Generator {
    pub(crate) fn new<G: IdGenerator>(generator: G) -> Self {
        Self::Custom(Box::new(generator))
    }

    /// A new ID of at most `max` bytes; a generator that fails or panics is replaced by
    /// a UUID v4 for this ID and a warning is logged.
    pub(crate) fn generate_within(&self, max: usize) -> CorrelationId {
        let generator = match self {
            // Cannot fail, and `build` checked its length against `max`.
            Self::UuidV4 => return UuidV4::new_inline_id(),
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
