//! The configuration every adapter shares, and the accept / generate / replace decision.

use std::any::Any;
use std::borrow::Cow;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use http::header::Entry;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::context::{CorrelationContext, sync_scope};
use crate::id::{CorrelationId, InvalidCorrelationId};
use crate::strategy::{IdGenerator, IdTransformer, IdValidator, StrictUuidV4, UuidV4};

/// The log target of every message this crate family emits.
pub const LOG_TARGET: &str = "correlation";

/// The default header name, as in asgi-correlation-id and tower-http.
pub const DEFAULT_HEADER_NAME: &str = "x-request-id";

/// The default Sentry tag name holding the correlation ID (asgi-correlation-id's name).
pub const DEFAULT_SENTRY_TAG: &str = "transaction_id";

/// Header names that must never carry a correlation ID: rewriting them would break
/// framing, routing, authentication or cookies.
const FORBIDDEN_HEADER_NAMES: &[&str] = &[
    "authorization",
    "connection",
    "content-length",
    "content-type",
    "cookie",
    "host",
    "proxy-authorization",
    "set-cookie",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// A user predicate on the request path.
type SkipPredicate = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// What happens to a request whose incoming ID fails validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnInvalid {
    /// Replace it with a generated ID and log a warning (the default, never rejects).
    #[default]
    Replace,
    /// Answer `400 Bad Request` (still carrying a generated ID) without calling the handler.
    Reject,
}

/// A configuration error, reported when the configuration is built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A header name is not a valid HTTP header name.
    #[error("invalid correlation header name {name:?}: {source}")]
    InvalidHeaderName {
        /// The rejected name.
        name: String,
        /// Why `http` rejected it.
        source: http::header::InvalidHeaderName,
    },
    /// A header name is reserved for framing, routing, authentication or cookies.
    #[error("header {name:?} cannot carry a correlation id")]
    ForbiddenHeaderName {
        /// The rejected name.
        name: String,
    },
    /// The list of incoming header names is empty.
    #[error("at least one incoming correlation header name is required")]
    NoHeaderName,
    /// The maximum ID length is zero.
    #[error("the maximum correlation id length must be at least 1")]
    ZeroMaxLength,
    /// The maximum ID length is above the absolute limit.
    #[error("the maximum correlation id length is {max}, the limit is 128")]
    MaxLengthTooLarge {
        /// The rejected maximum.
        max: usize,
    },
    /// The generator failed when probed at start-up.
    #[error("the id generator made an unusable id: {0}")]
    GeneratorOutputInvalid(InvalidCorrelationId),
    /// The generator panicked when probed at start-up.
    #[error("the id generator panicked")]
    GeneratorPanicked,
}

/// What the decision did with the incoming header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The incoming ID passed validation and is used as is (or as transformed).
    Accepted,
    /// No incoming ID, or an empty one: a new ID was generated without a warning.
    Generated,
    /// The incoming ID failed validation: a new ID replaced it and a warning was logged.
    Replaced,
    /// The incoming ID failed validation and the configuration rejects such requests:
    /// the adapter answers `400 Bad Request` carrying the new ID.
    Rejected,
}

/// The result of [`CorrelationConfig::decide`]: the request's final ID and how it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The ID the request runs under.
    pub id: CorrelationId,
    /// How the ID was arrived at.
    pub outcome: Outcome,
}

/// Configuration shared by every adapter: header names, strategies and behaviour.
///
/// Build it with [`CorrelationConfig::builder`]; [`CorrelationConfig::default`] is the
/// same as `builder().build()` with no changes.
///
/// Cheap to clone: the default configuration is a `static`, so its clones are plain
/// copies; a built one is shared behind one reference count. A middleware may clone its
/// configuration for every request (axum clones the layered service per request), and
/// on a multi-threaded server every core then writes that one count: measured, a few
/// hundred nanoseconds per request on two cores. Call [`leak`](Self::leak) on a
/// configuration built once at start-up to make its clones plain copies too.
///
/// ```
/// use correlation_core::{AnyUuid, CorrelationConfig, Outcome};
/// use http::HeaderMap;
///
/// let config = CorrelationConfig::builder()
///     .incoming_header_names(["X-Correlation-ID", "X-Request-ID"])
///     .validator(AnyUuid)
///     .skip_paths(["/health"])
///     .build()?;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("x-request-id", "c232ab00-9414-11ec-b3c8-9f6bdeced846".parse()?);
/// let decision = config.decide(&headers);
/// assert_eq!(decision.outcome, Outcome::Accepted);
/// assert_eq!(decision.id, "c232ab00-9414-11ec-b3c8-9f6bdeced846");
/// assert_eq!(config.response_header_name(), "x-correlation-id");
/// assert!(config.is_skipped("/health"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct CorrelationConfig {
    inner: Handle,
}

/// Where the configuration lives: for the whole process (clones copy a pointer) or
/// shared until its last clone goes (clones count references).
#[derive(Clone)]
enum Handle {
    Static(&'static Inner),
    Shared(Arc<Inner>),
}

impl std::ops::Deref for Handle {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        match self {
            Self::Static(inner) => inner,
            Self::Shared(inner) => inner,
        }
    }
}

struct Inner {
    incoming: Box<[HeaderName]>,
    response: HeaderName,
    generator: Generator,
    validator: Validator,
    transformer: Option<Box<dyn IdTransformer>>,
    update_request_header: bool,
    echo_response_header: bool,
    on_invalid: OnInvalid,
    skip_paths: Box<[String]>,
    skip: Option<SkipPredicate>,
    max_length: usize,
    sentry_tag: Cow<'static, str>,
}

impl fmt::Debug for CorrelationConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        f.debug_struct("CorrelationConfig")
            .field("incoming_header_names", &inner.incoming)
            .field("response_header_name", &inner.response)
            .field("transformer", &inner.transformer.is_some())
            .field("update_request_header", &inner.update_request_header)
            .field("echo_response_header", &inner.echo_response_header)
            .field("on_invalid", &inner.on_invalid)
            .field("skip_paths", &inner.skip_paths)
            .field("skip", &inner.skip.is_some())
            .field("max_length", &inner.max_length)
            .finish_non_exhaustive()
    }
}

impl Default for CorrelationConfig {
    fn default() -> Self {
        static DEFAULT: OnceLock<Inner> = OnceLock::new();
        // One definition of the defaults: the builder's.
        let inner = DEFAULT.get_or_init(|| match CorrelationConfigBuilder::default().check() {
            Ok(inner) => inner,
            Err(err) => unreachable!("the default configuration fails its own checks: {err}"),
        });
        Self {
            inner: Handle::Static(inner),
        }
    }
}

impl CorrelationConfig {
    /// Starts a builder with the defaults: header `X-Request-ID`, UUID v4 generator
    /// (32 hex), strict UUID v4 validator, no transformer, request header updated,
    /// response header echoed, invalid IDs replaced, nothing skipped.
    pub fn builder() -> CorrelationConfigBuilder {
        CorrelationConfigBuilder::default()
    }

    /// This configuration, kept for the rest of the process: its clones are then plain
    /// copies, with no reference count for every core to write on every request. For a
    /// configuration built once at start-up, which is the usual case; each call on a
    /// configuration that is not already static keeps one more for good (a few hundred
    /// bytes). The default configuration is static already.
    ///
    /// ```
    /// use correlation_core::CorrelationConfig;
    ///
    /// let config = CorrelationConfig::builder()
    ///     .incoming_header_names(["X-Correlation-ID"])
    ///     .build()?
    ///     .leak();
    /// assert_eq!(config.clone().request_header_name(), "x-correlation-id");
    /// # Ok::<(), correlation_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn leak(self) -> Self {
        match self.inner {
            Handle::Static(_) => self,
            Handle::Shared(shared) => {
                let kept: &'static Arc<Inner> = Box::leak(Box::new(shared));
                Self {
                    inner: Handle::Static(kept),
                }
            }
        }
    }

    /// The incoming header names, in priority order.
    pub fn incoming_header_names(&self) -> &[HeaderName] {
        &self.inner.incoming
    }

    /// The header name written on responses, on the updated request and on outgoing calls.
    pub fn response_header_name(&self) -> &HeaderName {
        &self.inner.response
    }

    /// The header name under which the handler finds the final ID: the first incoming name.
    pub fn request_header_name(&self) -> &HeaderName {
        &self.inner.incoming[0]
    }

    /// Whether the request header is rewritten to carry the final ID.
    pub fn update_request_header(&self) -> bool {
        self.inner.update_request_header
    }

    /// Whether responses carry the final ID.
    pub fn echo_response_header(&self) -> bool {
        self.inner.echo_response_header
    }

    /// What happens when the incoming ID fails validation.
    pub fn on_invalid(&self) -> OnInvalid {
        self.inner.on_invalid
    }

    /// The Sentry tag that carries the ID (default `transaction_id`).
    pub fn sentry_tag(&self) -> &str {
        &self.inner.sentry_tag
    }

    /// The maximum ID length in bytes.
    pub fn max_length(&self) -> usize {
        self.inner.max_length
    }

    /// Whether requests to `path` are left alone (no ID, no header, no scope).
    pub fn is_skipped(&self, path: &str) -> bool {
        let inner = &*self.inner;
        inner.skip_paths.iter().any(|skipped| skipped == path)
            || inner.skip.as_ref().is_some_and(|skip| skip(path))
    }

    /// Decides the request's ID from its headers: the first incoming header name present
    /// decides, and of its values the first one counts.
    ///
    /// An absent or empty value yields [`Outcome::Generated`] silently. A value that
    /// breaks the safety rules or fails the validator yields [`Outcome::Replaced`] (or
    /// [`Outcome::Rejected`]) and one `WARN` under the `correlation` target that names
    /// the new ID and never the rejected value.
    pub fn decide(&self, headers: &HeaderMap) -> Decision {
        self.decide_with(|name| headers.get(name))
    }

    /// Like [`decide`](Self::decide) for frameworks with their own header map:
    /// `first_value` returns the first value of a header name, if any.
    pub fn decide_with<'a>(
        &self,
        mut first_value: impl FnMut(&HeaderName) -> Option<&'a HeaderValue>,
    ) -> Decision {
        let incoming = self.inner.incoming.iter().find_map(&mut first_value);
        self.decide_value(incoming)
    }

    /// Decides from one incoming value (`None` when the header is absent).
    pub fn decide_value(&self, incoming: Option<&HeaderValue>) -> Decision {
        let decision = match incoming {
            None => self.generated(),
            Some(value) if value.is_empty() => self.generated(),
            Some(value) => match self.accept(value) {
                Some(id) => Decision {
                    id,
                    outcome: Outcome::Accepted,
                },
                None => return self.invalid(),
            },
        };
        self.transformed(decision)
    }

    /// What an adapter does with a request's headers: [`decide`](Self::decide), then
    /// [`update_request_headers`](Self::update_request_headers) unless the request is
    /// rejected. The write is skipped when the request already holds exactly the final
    /// ID once under the only incoming name, which is the common case of an accepted ID.
    ///
    /// ```
    /// use correlation_core::{CorrelationConfig, Outcome};
    /// use correlation_core::http::{HeaderMap, HeaderValue};
    ///
    /// let config = CorrelationConfig::default();
    /// let mut headers = HeaderMap::new();
    /// headers.append("x-request-id", HeaderValue::from_static("not a uuid"));
    /// let decision = config.decide_and_update(&mut headers);
    /// assert_eq!(decision.outcome, Outcome::Replaced);
    /// assert_eq!(headers["x-request-id"], decision.id.as_str());
    /// ```
    pub fn decide_and_update(&self, headers: &mut HeaderMap) -> Decision {
        if let ([name], true) = (&*self.inner.incoming, self.inner.update_request_header) {
            return self.decide_and_update_one(headers, name);
        }
        // Several names (the others are removed, so there is always a write), or
        // updates turned off (`update_request_headers` does nothing).
        let decision = self.decide(headers);
        if decision.outcome != Outcome::Rejected {
            self.update_request_headers(headers, &decision.id);
        }
        decision
    }

    /// [`decide_and_update`](Self::decide_and_update) for the common configuration, one
    /// incoming name whose header is updated: one lookup finds the value and the place
    /// the final ID goes.
    fn decide_and_update_one(&self, headers: &mut HeaderMap, name: &HeaderName) -> Decision {
        match headers.entry(name) {
            Entry::Vacant(vacant) => {
                let decision = self.decide_value(None);
                vacant.insert(decision.id.to_header_value());
                decision
            }
            Entry::Occupied(mut occupied) => {
                let mut values = occupied.iter();
                let decision = self.decide_value(values.next());
                let single = values.next().is_none();
                // Accepted without a transformer means the ID is that very value.
                let in_place = single
                    && decision.outcome == Outcome::Accepted
                    && self.inner.transformer.is_none();
                if decision.outcome != Outcome::Rejected && !in_place {
                    occupied.insert(decision.id.to_header_value());
                }
                decision
            }
        }
    }

    /// Reads an ID from `headers` through the same validation as incoming requests,
    /// without generating one: for consumers of propagated IDs (jobs, messages).
    pub fn extract(&self, headers: &HeaderMap) -> Option<CorrelationId> {
        let value = self
            .inner
            .incoming
            .iter()
            .find_map(|name| headers.get(name))?;
        let id = self.accept(value)?;
        match &self.inner.transformer {
            None => Some(id),
            Some(_) => self.apply_transformer(id),
        }
    }

    /// Writes the current correlation ID (if any) into outgoing `headers` under the
    /// response header name, replacing any value there. Returns whether one was written.
    pub fn inject_current(&self, headers: &mut HeaderMap) -> bool {
        match crate::current() {
            Some(id) => {
                headers.insert(self.inner.response.clone(), id.into());
                true
            }
            None => false,
        }
    }

    /// Makes the request headers carry exactly one header with the final ID: the first
    /// incoming name is set to `id` and the other incoming names are removed.
    /// Does nothing when request updates are turned off.
    pub fn update_request_headers(&self, headers: &mut HeaderMap, id: &CorrelationId) {
        if !self.inner.update_request_header {
            return;
        }
        // The builder guarantees at least one name.
        let Some((first, others)) = self.inner.incoming.split_first() else {
            return;
        };
        for name in others {
            headers.remove(name);
        }
        headers.insert(first.clone(), id.to_header_value());
    }

    /// Makes the response headers carry exactly one header with the final ID, replacing
    /// any the handler set. Does nothing when echo is turned off.
    pub fn echo_response_headers(&self, headers: &mut HeaderMap, id: &CorrelationId) {
        if self.inner.echo_response_header {
            headers.insert(self.inner.response.clone(), id.to_header_value());
        }
    }

    /// The context a request with `id` runs in: the ID, and with the `tracing` feature a
    /// `request` span recording `correlation_id`, and with the `sentry` feature a Sentry
    /// hub of its own tagged with the ID (tag name from
    /// [`sentry_tag`](CorrelationConfigBuilder::sentry_tag)).
    pub fn request_context(&self, id: CorrelationId) -> CorrelationContext {
        CorrelationContext::for_request(id, &self.inner.sentry_tag)
    }

    /// A new ID from the configured generator; a generator that fails or panics is
    /// replaced by a UUID v4 for this ID and a warning is logged.
    pub fn generate(&self) -> CorrelationId {
        let max = self.inner.max_length;
        let generator = match &self.inner.generator {
            // Cannot fail, and `build` checked its length against `max`.
            Generator::UuidV4 => return UuidV4::new_id(),
            Generator::Custom(generator) => generator,
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

    fn generated(&self) -> Decision {
        Decision {
            id: self.generate(),
            outcome: Outcome::Generated,
        }
    }

    fn accept(&self, value: &HeaderValue) -> Option<CorrelationId> {
        match &self.inner.validator {
            Validator::StrictUuidV4 => {
                let bytes = value.as_bytes();
                // A UUID is visible ASCII, so passing the check also passes the safety rules.
                (bytes.len() <= self.inner.max_length && StrictUuidV4::accepts(bytes))
                    .then(|| CorrelationId::from_checked_header_value(value))
            }
            Validator::Custom(validator) => {
                let id = CorrelationId::from_header_value_with_limit(value, self.inner.max_length)
                    .ok()?;
                let valid = catch_unwind(AssertUnwindSafe(|| validator.is_valid(id.as_str())));
                matches!(valid, Ok(true)).then_some(id)
            }
        }
    }

    fn invalid(&self) -> Decision {
        let id = self.generate();
        let outcome = match self.inner.on_invalid {
            OnInvalid::Replace => Outcome::Replaced,
            OnInvalid::Reject => Outcome::Rejected,
        };
        // Logged inside the new ID's scope so the line carries `[<new id>]` too.
        sync_scope(id.clone(), || match outcome {
            Outcome::Rejected => log::warn!(
                target: LOG_TARGET,
                "Rejected request with ID ({id}), since request header value failed validation"
            ),
            _ => log::warn!(
                target: LOG_TARGET,
                "Generated new request ID ({id}), since request header value failed validation"
            ),
        });
        Decision { id, outcome }
    }

    fn transformed(&self, decision: Decision) -> Decision {
        if self.inner.transformer.is_none() {
            return decision;
        }
        match self.apply_transformer(decision.id) {
            Some(id) => Decision {
                id,
                outcome: decision.outcome,
            },
            None => {
                let id = self.generate();
                sync_scope(id.clone(), || {
                    log::warn!(
                        target: LOG_TARGET,
                        "Generated new request ID ({id}), since the transformed ID failed the safety rules"
                    );
                });
                Decision {
                    id,
                    outcome: Outcome::Replaced,
                }
            }
        }
    }

    fn apply_transformer(&self, id: CorrelationId) -> Option<CorrelationId> {
        let transformer = self.inner.transformer.as_ref()?;
        let output = catch_unwind(AssertUnwindSafe(|| transformer.transform(id.as_str()))).ok()?;
        if output.as_bytes() == id.as_bytes() {
            return Some(id);
        }
        let transformed = CorrelationId::try_from(output).ok()?;
        (transformed.len() <= self.inner.max_length).then_some(transformed)
    }
}

/// The validator as configured. The default one is recognised so that the per-request
/// check runs on the header's bytes, without a dynamic call, UTF-8 check or unwind guard.
enum Validator {
    StrictUuidV4,
    Custom(Box<dyn IdValidator>),
}

impl Validator {
    fn new<V: IdValidator>(validator: V) -> Self {
        if (&validator as &dyn Any).is::<StrictUuidV4>() {
            Self::StrictUuidV4
        } else {
            Self::Custom(Box::new(validator))
        }
    }
}

/// The generator as configured. The default one is recognised so that generating an ID
/// is a direct call, without a dynamic call or unwind guard.
enum Generator {
    UuidV4,
    Custom(Box<dyn IdGenerator>),
}

impl Generator {
    fn new<G: IdGenerator>(generator: G) -> Self {
        if (&generator as &dyn Any).is::<UuidV4>() {
            Self::UuidV4
        } else {
            Self::Custom(Box::new(generator))
        }
    }

    fn generate(&self) -> Result<CorrelationId, InvalidCorrelationId> {
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

/// Builds a [`CorrelationConfig`]; every check runs in [`build`](Self::build).
#[must_use]
pub struct CorrelationConfigBuilder {
    incoming: Vec<String>,
    response: Option<String>,
    generator: Generator,
    validator: Validator,
    transformer: Option<Box<dyn IdTransformer>>,
    update_request_header: bool,
    echo_response_header: bool,
    on_invalid: OnInvalid,
    skip_paths: Vec<String>,
    skip: Option<SkipPredicate>,
    max_length: usize,
    sentry_tag: Cow<'static, str>,
}

impl Default for CorrelationConfigBuilder {
    fn default() -> Self {
        Self {
            incoming: vec![DEFAULT_HEADER_NAME.to_owned()],
            response: None,
            generator: Generator::UuidV4,
            validator: Validator::StrictUuidV4,
            transformer: None,
            update_request_header: true,
            echo_response_header: true,
            on_invalid: OnInvalid::Replace,
            skip_paths: Vec::new(),
            skip: None,
            max_length: CorrelationId::MAX_LEN,
            sentry_tag: Cow::Borrowed(DEFAULT_SENTRY_TAG),
        }
    }
}

impl fmt::Debug for CorrelationConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CorrelationConfigBuilder")
            .field("incoming_header_names", &self.incoming)
            .field("response_header_name", &self.response)
            .field("max_length", &self.max_length)
            .finish_non_exhaustive()
    }
}

impl CorrelationConfigBuilder {
    /// Uses one header name for requests and responses (default `X-Request-ID`).
    pub fn header_name(mut self, name: impl Into<String>) -> Self {
        self.incoming = vec![name.into()];
        self
    }

    /// Reads the ID from several headers in priority order, e.g.
    /// `["X-Correlation-ID", "X-Request-ID"]`. The response uses the first name unless
    /// [`response_header_name`](Self::response_header_name) is set.
    pub fn incoming_header_names<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.incoming = names.into_iter().map(Into::into).collect();
        self
    }

    /// Writes the ID on responses (and outgoing calls) under this name.
    pub fn response_header_name(mut self, name: impl Into<String>) -> Self {
        self.response = Some(name.into());
        self
    }

    /// Sets how new IDs are made (default [`UuidV4`]).
    pub fn generator(mut self, generator: impl IdGenerator) -> Self {
        self.generator = Generator::new(generator);
        self
    }

    /// Sets which incoming IDs are accepted (default [`StrictUuidV4`]).
    pub fn validator(mut self, validator: impl IdValidator) -> Self {
        self.validator = Validator::new(validator);
        self
    }

    /// Rewrites incoming and generated IDs alike (default: none).
    pub fn transformer(mut self, transformer: impl IdTransformer) -> Self {
        self.transformer = Some(Box::new(transformer));
        self
    }

    /// Whether the handler sees the final ID in the request header (default `true`).
    pub fn update_request_header(mut self, update: bool) -> Self {
        self.update_request_header = update;
        self
    }

    /// Whether responses carry the final ID (default `true`).
    pub fn echo_response_header(mut self, echo: bool) -> Self {
        self.echo_response_header = echo;
        self
    }

    /// What to do when the incoming ID fails validation (default [`OnInvalid::Replace`]).
    pub fn on_invalid(mut self, on_invalid: OnInvalid) -> Self {
        self.on_invalid = on_invalid;
        self
    }

    /// Leaves requests to these exact paths alone, e.g. health checks.
    pub fn skip_paths<I, S>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.skip_paths.extend(paths.into_iter().map(Into::into));
        self
    }

    /// Leaves requests alone whose path matches `predicate`.
    pub fn skip(mut self, predicate: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        self.skip = Some(Box::new(predicate));
        self
    }

    /// Lowers the maximum ID length (1 to 128 bytes, default 128).
    pub fn max_length(mut self, max: usize) -> Self {
        self.max_length = max;
        self
    }

    /// The Sentry tag that carries the ID on every event of a request (default
    /// `transaction_id`, as in asgi-correlation-id). Used with the `sentry` feature.
    pub fn sentry_tag(mut self, tag: impl Into<Cow<'static, str>>) -> Self {
        self.sentry_tag = tag.into();
        self
    }

    /// Checks everything and builds the configuration. The generator is called once
    /// here, so a generator that cannot make a usable ID fails at start-up.
    pub fn build(self) -> Result<CorrelationConfig, ConfigError> {
        Ok(CorrelationConfig {
            inner: Handle::Shared(Arc::new(self.check()?)),
        })
    }

    fn check(self) -> Result<Inner, ConfigError> {
        if self.max_length == 0 {
            return Err(ConfigError::ZeroMaxLength);
        }
        if self.max_length > CorrelationId::MAX_LEN {
            return Err(ConfigError::MaxLengthTooLarge {
                max: self.max_length,
            });
        }
        let incoming = self
            .incoming
            .iter()
            .map(|name| parse_header_name(name))
            .collect::<Result<Box<[_]>, _>>()?;
        let first = incoming.first().ok_or(ConfigError::NoHeaderName)?.clone();
        let response = match &self.response {
            Some(name) => parse_header_name(name)?,
            None => first,
        };
        match catch_unwind(AssertUnwindSafe(|| self.generator.generate())) {
            Ok(Ok(id)) if id.len() > self.max_length => {
                return Err(ConfigError::GeneratorOutputInvalid(
                    InvalidCorrelationId::TooLong {
                        len: id.len(),
                        max: self.max_length,
                    },
                ));
            }
            Ok(Ok(_)) => {}
            Ok(Err(err)) => return Err(ConfigError::GeneratorOutputInvalid(err)),
            Err(_) => return Err(ConfigError::GeneratorPanicked),
        }
        Ok(Inner {
            incoming,
            response,
            generator: self.generator,
            validator: self.validator,
            transformer: self.transformer,
            update_request_header: self.update_request_header,
            echo_response_header: self.echo_response_header,
            on_invalid: self.on_invalid,
            skip_paths: self.skip_paths.into_boxed_slice(),
            skip: self.skip,
            max_length: self.max_length,
            sentry_tag: self.sentry_tag,
        })
    }
}

fn parse_header_name(name: &str) -> Result<HeaderName, ConfigError> {
    let parsed = HeaderName::from_bytes(name.as_bytes()).map_err(|source| {
        ConfigError::InvalidHeaderName {
            name: name.to_owned(),
            source,
        }
    })?;
    if FORBIDDEN_HEADER_NAMES.contains(&parsed.as_str()) {
        return Err(ConfigError::ForbiddenHeaderName {
            name: name.to_owned(),
        });
    }
    Ok(interned(&parsed))
}

/// The same name over a `'static` string, which has no reference count: the clone for
/// every header write is then a plain copy, not a count that every core writes. Each
/// distinct name is kept once for the process: a handful of short strings.
fn interned(name: &HeaderName) -> HeaderName {
    static NAMES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut names = NAMES.lock().unwrap_or_else(PoisonError::into_inner);
    let text = match names.iter().find(|known| **known == name.as_str()) {
        Some(known) => known,
        None => {
            let kept: &'static str = Box::leak(name.as_str().into());
            names.push(kept);
            kept
        }
    };
    // A parsed name's text is a valid lowercase name, which `from_static` accepts.
    HeaderName::from_static(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::{AnySafe, AnyUuid};
    use crate::test_util::LogCapture;

    const VALID: &str = "3758c31e-1177-4540-ba33-0109c405579a";

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn is_default_generated(id: &CorrelationId) -> bool {
        id.len() == 32 && StrictUuidV4.is_valid(id.as_str())
    }

    #[test]
    fn valid_incoming_id_is_accepted_without_copying() {
        let config = CorrelationConfig::default();
        let map = headers(&[("x-request-id", VALID)]);
        let decision = config.decide(&map);
        assert_eq!(decision.outcome, Outcome::Accepted);
        assert_eq!(decision.id, VALID);
        assert_eq!(
            decision.id.as_bytes().as_ptr(),
            map["x-request-id"].as_bytes().as_ptr()
        );
    }

    #[test]
    fn absent_or_empty_header_generates_silently() {
        let logs = LogCapture::install();
        let config = CorrelationConfig::default();
        for map in [headers(&[]), headers(&[("x-request-id", "")])] {
            let decision = config.decide(&map);
            assert_eq!(decision.outcome, Outcome::Generated);
            assert!(is_default_generated(&decision.id));
            assert!(logs.records_containing(decision.id.as_str()).is_empty());
        }
    }

    #[test]
    fn invalid_id_is_replaced_with_one_warning_naming_only_the_new_id() {
        let logs = LogCapture::install();
        let config = CorrelationConfig::default();
        let hostile = "hostile-value-7f3a\tinjected";
        let decision = config.decide(&headers(&[("x-request-id", hostile)]));
        assert_eq!(decision.outcome, Outcome::Replaced);
        assert!(is_default_generated(&decision.id));
        let lines = logs.records_for(decision.id.as_str());
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].level, log::Level::Warn);
        assert_eq!(lines[0].target, LOG_TARGET);
        assert_eq!(
            lines[0].message,
            format!(
                "Generated new request ID ({}), since request header value failed validation",
                decision.id
            )
        );
        assert!(logs.records_containing("hostile-value-7f3a").is_empty());
    }

    #[test]
    fn first_value_and_first_present_name_count() {
        let config = CorrelationConfig::default();
        let decision = config.decide(&headers(&[
            ("x-request-id", "bad"),
            ("x-request-id", VALID),
        ]));
        assert_eq!(decision.outcome, Outcome::Replaced);

        let config = CorrelationConfig::builder()
            .incoming_header_names(["X-Correlation-ID", "X-Request-ID"])
            .build()
            .unwrap();
        let other = "9e6454c421d54e4aa66ab28f15576414";
        let both = headers(&[("x-request-id", VALID), ("x-correlation-id", other)]);
        assert_eq!(config.decide(&both).id, other);
        assert_eq!(
            config.decide(&headers(&[("x-request-id", VALID)])).id,
            VALID
        );
        assert_eq!(config.response_header_name(), "x-correlation-id");
    }

    #[test]
    fn request_headers_end_up_with_exactly_one_final_id() {
        let config = CorrelationConfig::builder()
            .incoming_header_names(["X-Correlation-ID", "X-Request-ID"])
            .build()
            .unwrap();
        let mut map = headers(&[
            ("x-correlation-id", "a"),
            ("x-correlation-id", "b"),
            ("x-request-id", "c"),
        ]);
        let id = CorrelationId::from_static("final");
        config.update_request_headers(&mut map, &id);
        assert_eq!(map.get_all("x-correlation-id").iter().count(), 1);
        assert_eq!(map["x-correlation-id"], "final");
        assert!(!map.contains_key("x-request-id"));

        let off = CorrelationConfig::builder()
            .update_request_header(false)
            .build()
            .unwrap();
        let mut map = headers(&[("x-request-id", "c")]);
        off.update_request_headers(&mut map, &id);
        assert_eq!(map["x-request-id"], "c");
    }

    #[test]
    fn a_leaked_configuration_behaves_like_the_one_it_came_from() {
        let built = CorrelationConfig::builder()
            .incoming_header_names(["X-Trace-Token", "X-Request-ID"])
            .response_header_name("X-Trace-Token")
            .validator(|id: &str| id.starts_with("t-"))
            .skip_paths(["/health"])
            .build()
            .unwrap();
        let leaked = built.clone().leak();
        for config in [&built, &leaked, &leaked.clone().leak()] {
            let names: Vec<_> = config
                .incoming_header_names()
                .iter()
                .map(HeaderName::as_str)
                .collect();
            assert_eq!(names, ["x-trace-token", "x-request-id"]);
            assert_eq!(config.response_header_name(), "x-trace-token");
            assert!(config.is_skipped("/health"));
            let decision = config.decide(&headers(&[("x-request-id", "t-1")]));
            assert_eq!(
                (decision.id.as_str(), decision.outcome),
                ("t-1", Outcome::Accepted)
            );
            let decision = config.decide(&headers(&[("x-trace-token", "u-1")]));
            assert_eq!(decision.outcome, Outcome::Replaced);
            let mut response = HeaderMap::new();
            config.echo_response_headers(&mut response, &decision.id);
            assert_eq!(response["x-trace-token"], decision.id.as_str());
        }
        // The default configuration is static already: leaking it changes nothing.
        let default = CorrelationConfig::default().leak();
        assert_eq!(default.request_header_name(), DEFAULT_HEADER_NAME);
    }

    #[test]
    fn decide_and_update_leaves_each_request_with_exactly_its_final_id() {
        const OTHER: &str = "9e6454c4-21d5-4e4a-a66a-b28f15576414";
        let default = CorrelationConfig::default();
        let two_names = CorrelationConfig::builder()
            .incoming_header_names(["X-Correlation-ID", "X-Request-ID"])
            .build()
            .unwrap();
        let transformed = CorrelationConfig::builder()
            .transformer(|id: &str| id.to_uppercase())
            .build()
            .unwrap();
        let reject = CorrelationConfig::builder()
            .on_invalid(OnInvalid::Reject)
            .build()
            .unwrap();
        type Case<'a> = (
            &'a CorrelationConfig,
            &'a [(&'a str, &'a str)],
            Outcome,
            &'a str,
        );
        let cases: [Case<'_>; 8] = [
            (
                &default,
                &[("x-request-id", VALID)],
                Outcome::Accepted,
                "x-request-id",
            ),
            (
                &default,
                &[("x-request-id", "")],
                Outcome::Generated,
                "x-request-id",
            ),
            (
                &default,
                &[("x-request-id", VALID), ("x-request-id", OTHER)],
                Outcome::Accepted,
                "x-request-id",
            ),
            (&default, &[], Outcome::Generated, "x-request-id"),
            (
                &default,
                &[("x-request-id", "bad")],
                Outcome::Replaced,
                "x-request-id",
            ),
            (
                &two_names,
                &[("x-correlation-id", VALID), ("x-request-id", OTHER)],
                Outcome::Accepted,
                "x-correlation-id",
            ),
            (
                &two_names,
                &[("x-request-id", VALID)],
                Outcome::Accepted,
                "x-correlation-id",
            ),
            (
                &transformed,
                &[("x-request-id", VALID)],
                Outcome::Accepted,
                "x-request-id",
            ),
        ];
        for (config, pairs, outcome, name) in cases {
            let mut map = headers(pairs);
            let decision = config.decide_and_update(&mut map);
            assert_eq!(decision.outcome, outcome, "{pairs:?}");
            let values: Vec<_> = config
                .incoming_header_names()
                .iter()
                .flat_map(|name| map.get_all(name))
                .collect();
            assert_eq!(values, [decision.id.as_header_value()], "{pairs:?}");
            assert_eq!(map[name], decision.id.as_str(), "{pairs:?}");
        }

        // A rejected request is answered without reaching the handler: left untouched.
        let mut map = headers(&[("x-request-id", "bad")]);
        let decision = reject.decide_and_update(&mut map);
        assert_eq!(decision.outcome, Outcome::Rejected);
        assert_eq!(map["x-request-id"], "bad");

        // With request updates off, the headers stay as they came.
        let untouched = CorrelationConfig::builder()
            .update_request_header(false)
            .build()
            .unwrap();
        let mut map = headers(&[("x-request-id", "bad")]);
        let decision = untouched.decide_and_update(&mut map);
        assert_eq!(decision.outcome, Outcome::Replaced);
        assert_eq!(map["x-request-id"], "bad");
        let mut map = headers(&[]);
        assert_eq!(
            untouched.decide_and_update(&mut map).outcome,
            Outcome::Generated
        );
        assert!(map.is_empty());
    }

    #[test]
    fn an_explicit_built_in_generator_makes_the_same_ids_as_the_default() {
        let explicit = CorrelationConfig::builder()
            .generator(UuidV4)
            .build()
            .unwrap();
        assert!(is_default_generated(&explicit.generate()));
        let hyphenated = CorrelationConfig::builder()
            .generator(crate::HyphenatedUuidV4)
            .build()
            .unwrap();
        let id = hyphenated.generate();
        assert_eq!((id.len(), id.as_str().matches('-').count()), (36, 4));
    }

    #[test]
    fn echo_replaces_the_handlers_header_unless_turned_off() {
        let id = CorrelationId::from_static("final");
        let mut map = headers(&[("x-request-id", "from-handler"), ("x-request-id", "twice")]);
        CorrelationConfig::default().echo_response_headers(&mut map, &id);
        assert_eq!(
            map.get_all("x-request-id").iter().collect::<Vec<_>>(),
            ["final"]
        );

        let off = CorrelationConfig::builder()
            .echo_response_header(false)
            .build()
            .unwrap();
        let mut map = HeaderMap::new();
        off.echo_response_headers(&mut map, &id);
        assert!(map.is_empty());
    }

    #[test]
    fn validators_choose_what_is_accepted() {
        let v1 = "c232ab00-9414-11ec-b3c8-9f6bdeced846";
        let any_uuid = CorrelationConfig::builder()
            .validator(AnyUuid)
            .build()
            .unwrap();
        assert_eq!(
            any_uuid.decide(&headers(&[("x-request-id", v1)])).outcome,
            Outcome::Accepted
        );
        let any_safe = CorrelationConfig::builder()
            .validator(AnySafe)
            .build()
            .unwrap();
        let decision = any_safe.decide(&headers(&[("x-request-id", "order-42")]));
        assert_eq!(
            (decision.outcome, decision.id.as_str()),
            (Outcome::Accepted, "order-42")
        );
        let closure = CorrelationConfig::builder()
            .validator(|id: &str| id.starts_with("req-"))
            .build()
            .unwrap();
        assert_eq!(
            closure
                .decide(&headers(&[("x-request-id", "req-1")]))
                .outcome,
            Outcome::Accepted
        );
        assert_eq!(
            closure
                .decide(&headers(&[("x-request-id", "job-1")]))
                .outcome,
            Outcome::Replaced
        );
    }

    #[test]
    fn any_safe_still_enforces_the_safety_rules_and_max_length() {
        let config = CorrelationConfig::builder()
            .validator(AnySafe)
            .max_length(8)
            .generator(|| "gen")
            .build()
            .unwrap();
        assert_eq!(
            config.decide(&headers(&[("x-request-id", "12345678")])).id,
            "12345678"
        );
        let too_long = config.decide(&headers(&[("x-request-id", "123456789")]));
        assert_eq!(
            (too_long.outcome, too_long.id.as_str()),
            (Outcome::Replaced, "gen")
        );
        let mut map = HeaderMap::new();
        map.insert(
            "x-request-id",
            HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
        );
        assert_eq!(config.decide(&map).outcome, Outcome::Replaced);
    }

    #[test]
    fn transformer_applies_to_incoming_and_generated_ids() {
        let config = CorrelationConfig::builder()
            .validator(AnySafe)
            .generator(|| "gen")
            .transformer(|id: &str| format!("svc-{id}"))
            .build()
            .unwrap();
        assert_eq!(
            config.decide(&headers(&[("x-request-id", "abc")])).id,
            "svc-abc"
        );
        assert_eq!(config.decide(&headers(&[])).id, "svc-gen");
    }

    #[test]
    fn unsafe_or_panicking_transformer_output_falls_back_to_a_generated_id() {
        let logs = LogCapture::install();
        let unsafe_output = CorrelationConfig::builder()
            .validator(AnySafe)
            .transformer(|id: &str| format!("{id}\r\nX-Injected: 1"))
            .build()
            .unwrap();
        let decision = unsafe_output.decide(&headers(&[("x-request-id", "abc-transform")]));
        assert_eq!(decision.outcome, Outcome::Replaced);
        assert!(is_default_generated(&decision.id));
        assert_eq!(logs.records_for(decision.id.as_str()).len(), 1);

        let panicking = CorrelationConfig::builder()
            .transformer(|_: &str| -> String { panic!("transformer bug") })
            .build()
            .unwrap();
        let decision = panicking.decide(&headers(&[("x-request-id", VALID)]));
        assert!(is_default_generated(&decision.id));
    }

    #[test]
    fn panicking_validator_replaces_the_id() {
        let config = CorrelationConfig::builder()
            .validator(|_: &str| -> bool { panic!("validator bug") })
            .build()
            .unwrap();
        let decision = config.decide(&headers(&[("x-request-id", VALID)]));
        assert_eq!(decision.outcome, Outcome::Replaced);
        assert!(is_default_generated(&decision.id));
    }

    #[test]
    fn generator_failing_at_request_time_falls_back_to_uuid_v4() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let calls = AtomicUsize::new(0);
        // Usable when probed at build time, broken afterwards.
        let config = CorrelationConfig::builder()
            .generator(move || {
                if calls.fetch_add(1, Ordering::Relaxed) == 0 {
                    "probe-ok".to_owned()
                } else {
                    "broken id".to_owned()
                }
            })
            .build()
            .unwrap();
        assert!(is_default_generated(&config.generate()));
    }

    #[test]
    fn reject_mode_reports_rejected_with_a_fresh_id() {
        let config = CorrelationConfig::builder()
            .on_invalid(OnInvalid::Reject)
            .build()
            .unwrap();
        let decision = config.decide(&headers(&[("x-request-id", "nope")]));
        assert_eq!(decision.outcome, Outcome::Rejected);
        assert!(is_default_generated(&decision.id));
        assert_eq!(config.decide(&headers(&[])).outcome, Outcome::Generated);
    }

    #[test]
    fn skip_matches_exact_paths_and_predicates() {
        let config = CorrelationConfig::builder()
            .skip_paths(["/health"])
            .skip(|path| path.starts_with("/metrics"))
            .build()
            .unwrap();
        assert!(config.is_skipped("/health"));
        assert!(config.is_skipped("/metrics/prometheus"));
        assert!(!config.is_skipped("/health/deep"));
        assert!(!CorrelationConfig::default().is_skipped("/health"));
    }

    #[test]
    fn misconfiguration_fails_at_build_with_a_clear_message() {
        let err = |builder: CorrelationConfigBuilder| builder.build().unwrap_err().to_string();
        assert_eq!(
            err(CorrelationConfig::builder().header_name("bad name")),
            "invalid correlation header name \"bad name\": invalid HTTP header name"
        );
        assert_eq!(
            err(CorrelationConfig::builder().header_name("Content-Length")),
            "header \"Content-Length\" cannot carry a correlation id"
        );
        assert_eq!(
            err(CorrelationConfig::builder().incoming_header_names(Vec::<String>::new())),
            "at least one incoming correlation header name is required"
        );
        assert_eq!(
            err(CorrelationConfig::builder().max_length(0)),
            "the maximum correlation id length must be at least 1"
        );
        assert_eq!(
            err(CorrelationConfig::builder().max_length(129)),
            "the maximum correlation id length is 129, the limit is 128"
        );
        assert_eq!(
            err(CorrelationConfig::builder().generator(|| "has space")),
            "the id generator made an unusable id: correlation id has a byte outside visible ASCII at position 3"
        );
        assert_eq!(
            err(CorrelationConfig::builder().max_length(16)),
            "the id generator made an unusable id: correlation id is 32 bytes long, the limit is 16"
        );
        assert_eq!(
            err(CorrelationConfig::builder().generator(|| -> String { panic!("generator bug") })),
            "the id generator panicked"
        );
        assert_eq!(
            err(CorrelationConfig::builder().response_header_name("x\nbad")),
            "invalid correlation header name \"x\\nbad\": invalid HTTP header name"
        );
    }

    #[test]
    fn inject_and_extract_round_trip_through_validation() {
        let config = CorrelationConfig::default();
        let mut outgoing = HeaderMap::new();
        assert!(!config.inject_current(&mut outgoing));
        assert!(outgoing.is_empty());
        let id = CorrelationId::from_static(VALID);
        assert!(sync_scope(id.clone(), || config.inject_current(&mut outgoing)));
        assert_eq!(outgoing["x-request-id"], VALID);
        assert_eq!(config.extract(&outgoing), Some(id));
        assert_eq!(
            config.extract(&headers(&[("x-request-id", "not-valid")])),
            None
        );
        assert_eq!(config.extract(&HeaderMap::new()), None);
    }
}
