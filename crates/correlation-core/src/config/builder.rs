//! [`CorrelationConfigBuilder`] and the [`ConfigError`] its checks report.

use std::borrow::Cow;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use http::HeaderName;

use super::header_names::parse_header_name;
use super::sources::{IdSource, Source, SourceKind};
use super::{CorrelationConfig, Inner, OnInvalid, SkipPredicate};
use crate::constants::{DEFAULT_HEADER_NAME, DEFAULT_SENTRY_TAG};
use crate::fields::Fields;
use crate::id::{CorrelationId, InvalidCorrelationId};
#[cfg(feature = "request-log")]
use crate::request_log::LogBuffer;
use crate::strategy::configured::{Generator, Validator};
use crate::strategy::{IdGenerator, IdTransformer, IdValidator};
use crate::trust::TrustPolicy;

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
    /// No source is a correlation header (the list of incoming header names is empty).
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
    /// The log level header's name is not a valid HTTP header name, is reserved, or is a
    /// correlation header.
    #[cfg(feature = "request-log")]
    #[error("the log level header {name:?} {reason}")]
    InvalidLogLevelHeader {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The hop ID header's name is not a valid HTTP header name, is reserved, or is a
    /// correlation header.
    #[error("the hop id header {name:?} {reason}")]
    InvalidHopIdHeader {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The log buffer's level directives do not parse, or keep no record.
    #[cfg(feature = "request-log")]
    #[error("invalid log buffer level {directives:?}: {reason}")]
    InvalidLogBufferLevel {
        /// The rejected directives.
        directives: String,
        /// Why they were rejected.
        reason: String,
    },
    /// The log buffer's record or byte limit is zero.
    #[cfg(feature = "request-log")]
    #[error("the log buffer must keep at least one record and one byte")]
    ZeroLogBufferBound,
    /// A baggage key cannot be a field's key.
    #[error(
        "the baggage key {key:?} is not a field key: 1 to 32 ASCII letters, digits, `_`, `-` or `.`, and not reserved"
    )]
    InvalidBaggageKey {
        /// The rejected key.
        key: String,
    },
    /// More baggage keys than a request holds fields.
    #[error("{count} baggage keys, more than the 16 fields a request holds")]
    TooManyBaggageKeys {
        /// How many keys were given.
        count: usize,
    },
    /// Incoming baggage is trusted from some peers, but no key is allow-listed.
    #[error("baggage is read from trusted peers, but no baggage key is allow-listed")]
    BaggageTrustWithoutKeys,
}

/// Builds a [`CorrelationConfig`]; every check runs in [`build`](Self::build).
#[must_use]
pub struct CorrelationConfigBuilder {
    sources: Vec<IdSource>,
    trust: TrustPolicy,
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
    hop_id_header: Option<String>,
    #[cfg(feature = "request-log")]
    log_level_header: Option<(String, TrustPolicy)>,
    #[cfg(feature = "request-log")]
    log_buffer: Option<LogBuffer>,
    #[cfg(feature = "request-log")]
    log_level_into_jobs: bool,
    baggage_keys: Vec<String>,
    baggage_from: TrustPolicy,
}

impl Default for CorrelationConfigBuilder {
    fn default() -> Self {
        Self {
            sources: vec![IdSource::header(DEFAULT_HEADER_NAME)],
            trust: TrustPolicy::Always,
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
            hop_id_header: None,
            #[cfg(feature = "request-log")]
            log_level_header: None,
            #[cfg(feature = "request-log")]
            log_buffer: None,
            #[cfg(feature = "request-log")]
            log_level_into_jobs: false,
            baggage_keys: Vec::new(),
            baggage_from: TrustPolicy::Never,
        }
    }
}

impl fmt::Debug for CorrelationConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CorrelationConfigBuilder")
            .field("sources", &self.sources)
            .field("trust", &self.trust)
            .field("response_header_name", &self.response)
            .field("max_length", &self.max_length)
            .finish_non_exhaustive()
    }
}

impl CorrelationConfigBuilder {
    /// Uses one header name for requests and responses (default `X-Request-ID`).
    pub fn header_name(mut self, name: impl Into<String>) -> Self {
        self.sources = vec![IdSource::header(name)];
        self
    }

    /// Where the incoming ID may come from, tried in order: the first source a request
    /// carries decides (default: the `X-Request-ID` header alone). At least one source is
    /// a correlation header: the request carries the final ID under the first one, and
    /// the response too unless [`response_header_name`](Self::response_header_name) says
    /// otherwise. Replaces the names set by [`header_name`](Self::header_name) or
    /// [`incoming_header_names`](Self::incoming_header_names).
    ///
    /// ```
    /// use correlation_core::{CorrelationConfig, IdSource};
    ///
    /// // Honour the caller's trace when it sends no X-Request-ID.
    /// let config = CorrelationConfig::builder()
    ///     .sources([IdSource::header("X-Request-ID"), IdSource::traceparent()])
    ///     .build()?;
    /// assert_eq!(config.request_header_name(), "x-request-id");
    /// # Ok::<(), correlation_core::ConfigError>(())
    /// ```
    pub fn sources<I>(mut self, sources: I) -> Self
    where
        I: IntoIterator<Item = IdSource>,
    {
        self.sources = sources.into_iter().collect();
        self
    }

    /// Whose incoming IDs (and trace context) are honoured (default
    /// [`TrustPolicy::Always`]). Under [`TrustPolicy::FromPeers`] the adapters read the
    /// connection's peer address, and answer `500` with an error in the log when the
    /// framework cannot give it (the error names the fix).
    ///
    /// ```
    /// use correlation_core::{CorrelationConfig, TrustPolicy};
    ///
    /// // Only the load balancers may set the ID.
    /// let config = CorrelationConfig::builder()
    ///     .trust(TrustPolicy::from_peers(["10.0.0.0/8"])?)
    ///     .build()?;
    /// assert!(config.trust_policy().needs_peer_address());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn trust(mut self, policy: TrustPolicy) -> Self {
        self.trust = policy;
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
        self.sources = names.into_iter().map(IdSource::header).collect();
        self
    }

    /// Writes the ID on responses (and outgoing calls) under this name.
    pub fn response_header_name(mut self, name: impl Into<String>) -> Self {
        self.response = Some(name.into());
        self
    }

    /// Sets how new IDs are made (default [`UuidV4`](crate::strategy::UuidV4)).
    pub fn generator(mut self, generator: impl IdGenerator) -> Self {
        self.generator = Generator::new(generator);
        self
    }

    /// Sets which incoming IDs are accepted (default [`StrictUuidV4`](crate::strategy::StrictUuidV4)).
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

    /// Gives each request an ID of this service's own, its *hop ID*, beside the
    /// correlation ID, and echoes it on responses under `name` (off by default).
    ///
    /// Without it a service has one ID per request: the caller's, when valid, or a new
    /// one. With it the caller's valid ID stays the correlation ID of the whole operation
    /// (the request runs under it, outgoing calls, jobs and messages carry it, and the
    /// correlation header echoes it), while each request also gets a hop ID from the
    /// configured [generator](Self::generator), echoed under `name` on the same responses
    /// as the correlation header (not on skipped paths, not with
    /// [`echo_response_header(false)`](Self::echo_response_header)). The next service
    /// makes its own: the hop ID is never sent on. It is in the context
    /// ([`CorrelationContext::hop_id`](crate::CorrelationContext::hop_id)), printable
    /// ([`CurrentId::hop_id`](crate::CurrentId::hop_id), `LogFormat::with_hop_id`), a
    /// `hop_id` key-value of [`CorrelationLogger`](crate::CorrelationLogger), a `hop_id`
    /// field of the request's `tracing` span and a `hop_id` tag of its Sentry scope.
    ///
    /// `name` must be a valid header name, not reserved and not a correlation header
    /// (incoming or response), or [`build`](Self::build) fails.
    ///
    /// ```
    /// use correlation_core::{CorrelationConfig, adapter};
    /// use correlation_core::http::HeaderMap;
    ///
    /// let config = CorrelationConfig::builder()
    ///     .header_name("X-Correlation-ID")
    ///     .hop_id_header("X-Request-ID")
    ///     .build()?;
    /// let mut headers = HeaderMap::new();
    /// headers.insert("x-correlation-id", "9e6454c4-21d5-4e4a-a66a-b28f15576414".parse()?);
    /// let decision = adapter::decide_and_update(&config, &mut headers, || None)?;
    /// let context = adapter::request_context(&config, decision);
    /// assert_eq!(context.id().unwrap(), "9e6454c4-21d5-4e4a-a66a-b28f15576414");
    /// let hop = context.hop_id().unwrap();
    /// assert_ne!(hop, context.id().unwrap());
    ///
    /// let mut response = HeaderMap::new();
    /// adapter::echo_response_headers(&config, &mut response, context.id().unwrap(), Some(hop));
    /// assert_eq!(response["x-correlation-id"], "9e6454c4-21d5-4e4a-a66a-b28f15576414");
    /// assert_eq!(response["x-request-id"], hop.as_str());
    ///
    /// let clash = CorrelationConfig::builder().header_name("X-Request-ID").hop_id_header("X-Request-ID");
    /// assert_eq!(
    ///     clash.build().unwrap_err().to_string(),
    ///     "the hop id header \"X-Request-ID\" is a correlation header"
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn hop_id_header(mut self, name: impl Into<String>) -> Self {
        self.hop_id_header = Some(name.into());
        self
    }

    /// Lets trusted callers raise the log level of one request (feature `request-log`):
    /// a request carrying the header `name` with the value `debug` or `trace` (in any
    /// case) from a peer `trusted` trusts logs at that level, wherever its ID goes (the
    /// spawn helpers, blocking closures, the response body), while other requests stay
    /// at the output level. Off by default; [`RequestLogger`](crate::request_log::RequestLogger)
    /// does the logging.
    ///
    /// The header from a peer `trusted` does not trust, or with another value, is ignored
    /// with one `DEBUG` line on the `correlation` target, which never shows the value.
    /// Keep `trusted` narrow: [`TrustPolicy::from_peers`] with the addresses of your
    /// operators' gateway, say, never [`TrustPolicy::Always`] on a service clients reach
    /// directly. Under `from_peers` a request whose peer address the framework cannot
    /// give is not trusted.
    ///
    /// ```
    /// use correlation_core::{CorrelationConfig, TrustPolicy};
    ///
    /// let config = CorrelationConfig::builder()
    ///     .log_level_header("X-Debug-Log", TrustPolicy::from_peers(["127.0.0.1/32"])?)
    ///     .build()?;
    /// # let _ = config;
    /// let clash = CorrelationConfig::builder().log_level_header("X-Request-ID", TrustPolicy::Never);
    /// assert_eq!(
    ///     clash.build().unwrap_err().to_string(),
    ///     "the log level header \"X-Request-ID\" is a correlation header"
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "request-log")]
    #[cfg_attr(docsrs, doc(cfg(feature = "request-log")))]
    pub fn log_level_header(mut self, name: impl Into<String>, trusted: TrustPolicy) -> Self {
        self.log_level_header = Some((name.into(), trusted));
        self
    }

    /// Whether the jobs a raised request enqueues log at its raised level too (feature
    /// `request-log`; off by default): [`JobCarrier::capture`](crate::JobCarrier::capture)
    /// (and so `correlated_task`) takes the level along in the carrier, and the job runs
    /// at it. The same setting on a worker's configuration passes a job's carried level on
    /// to the jobs it enqueues in turn.
    ///
    /// ```
    /// use correlation_core::{CorrelationConfig, TrustPolicy};
    ///
    /// let config = CorrelationConfig::builder()
    ///     .log_level_header("X-Debug-Log", TrustPolicy::from_peers(["127.0.0.1/32"])?)
    ///     .log_level_into_jobs(true)
    ///     .build()?;
    /// # let _ = config;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "request-log")]
    #[cfg_attr(docsrs, doc(cfg(feature = "request-log")))]
    pub fn log_level_into_jobs(mut self, carry: bool) -> Self {
        self.log_level_into_jobs = carry;
        self
    }

    /// Keeps each request's records below the output level, and writes them when the
    /// request fails (feature `request-log`): a `5xx` response, a panic under its ID or a
    /// record at `ERROR` in its scope. A request that ends otherwise drops them. Off by
    /// default; [`LogBuffer`] says which records and how many;
    /// [`RequestLogger`](crate::request_log::RequestLogger) does the logging.
    ///
    /// ```
    /// use correlation_core::CorrelationConfig;
    /// use correlation_core::request_log::LogBuffer;
    ///
    /// let config = CorrelationConfig::builder()
    ///     .log_buffer(LogBuffer::new().level("debug").max_bytes(64 * 1024))
    ///     .build()?;
    /// # let _ = config;
    /// # Ok::<(), correlation_core::ConfigError>(())
    /// ```
    #[cfg(feature = "request-log")]
    #[cfg_attr(docsrs, doc(cfg(feature = "request-log")))]
    pub fn log_buffer(mut self, buffer: LogBuffer) -> Self {
        self.log_buffer = Some(buffer);
        self
    }

    /// The fields carried between services as W3C baggage
    /// (<https://www.w3.org/TR/baggage/>), by key (default: none). These keys are the
    /// allow-list both ways:
    ///
    /// - **Outgoing**: every propagation integration (the `reqwest` middleware, the
    ///   `tower` client layer, [`inject_current`](CorrelationConfig::inject_current),
    ///   the message brokers' `inject_current`) sends the current request's fields under
    ///   these keys in a `baggage` header, added to the members of one the caller set
    ///   (a caller's member of the same key wins; nothing is sent twice).
    /// - **Incoming**: from a peer that [`baggage_from`](Self::baggage_from) trusts, the
    ///   request's `baggage` headers (several are one list) are read, and members under
    ///   these keys become the request's [`Fields`] before the handler runs; other keys
    ///   are ignored. Messages received with the brokers' `message_context` take them
    ///   too, trusted like the correlation ID they carry.
    ///
    /// A key is a field key: 1 to 32 ASCII letters, digits, `_`, `-` or `.`; at most 16
    /// keys. [`build`](Self::build) fails otherwise. Calling it again replaces the list.
    ///
    /// ```
    /// use correlation_core::{CorrelationConfig, CorrelationId, Fields, sync_scope};
    /// use correlation_core::http::HeaderMap;
    ///
    /// let config = CorrelationConfig::builder()
    ///     .baggage_keys(["tenant", "user"])
    ///     .build()?;
    ///
    /// let mut outgoing = HeaderMap::new();
    /// outgoing.insert("baggage", "region=eu".parse()?);
    /// sync_scope(CorrelationId::from_static("req-1"), || {
    ///     Fields::insert("tenant", "acme");
    ///     Fields::insert("user", "Alice Smith");
    ///     Fields::insert("card", "4242"); // not a baggage key: stays here
    ///     config.inject_current(&mut outgoing);
    /// });
    /// assert_eq!(outgoing["baggage"], "region=eu,tenant=acme,user=Alice%20Smith");
    ///
    /// let bad = CorrelationConfig::builder().baggage_keys(["tenant id"]).build();
    /// assert_eq!(
    ///     bad.unwrap_err().to_string(),
    ///     "the baggage key \"tenant id\" is not a field key: 1 to 32 ASCII letters, digits, `_`, `-` or `.`, and not reserved"
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn baggage_keys<I, S>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.baggage_keys = keys.into_iter().map(Into::into).collect();
        self
    }

    /// Whose incoming `baggage` header is read into fields, for the
    /// [`baggage_keys`](Self::baggage_keys) only (default [`TrustPolicy::Never`]: no one's).
    ///
    /// Baggage says whose request it is (the tenant, the user), so trust it only from
    /// your own services: [`TrustPolicy::from_peers`] with their addresses or your
    /// gateway's, never [`TrustPolicy::Always`] on a service clients reach directly.
    /// Under `from_peers` a request whose peer address the framework cannot give is not
    /// trusted. From an untrusted peer the header is ignored, silently.
    ///
    /// From a trusted peer, values are percent-decoded, and the W3C limits hold: a list
    /// longer than 8192 bytes is ignored whole; a member that breaks the grammar, is
    /// longer than 4096 bytes or comes after the 180th, and an allow-listed value longer
    /// than a field may hold, is left out and the rest kept. Anything left out is
    /// reported in one `WARN` per request on the `correlation` target, which never shows
    /// the header. A value keeps any character it decodes to (a `%0A` is a line feed):
    /// the log formats escape fields, so a record stays one line.
    ///
    /// With the `opentelemetry` feature, OpenTelemetry's current baggage (what its
    /// propagator extracted in a layer outside ours, in the current `tracing` span's
    /// context or OpenTelemetry's own) fills the allow-listed keys the header does not
    /// hold, from trusted peers too, so the fields and OpenTelemetry's baggage agree.
    ///
    /// ```
    /// use correlation_core::{CorrelationConfig, TrustPolicy};
    ///
    /// // The gateway and the other services in 10.0.0.0/8 may say whose request it is.
    /// let config = CorrelationConfig::builder()
    ///     .baggage_keys(["tenant", "user"])
    ///     .baggage_from(TrustPolicy::from_peers(["10.0.0.0/8"])?)
    ///     .build()?;
    /// # let _ = config;
    /// let no_keys = CorrelationConfig::builder().baggage_from(TrustPolicy::Always).build();
    /// assert_eq!(
    ///     no_keys.unwrap_err().to_string(),
    ///     "baggage is read from trusted peers, but no baggage key is allow-listed"
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn baggage_from(mut self, trusted: TrustPolicy) -> Self {
        self.baggage_from = trusted;
        self
    }

    /// Checks everything and builds the configuration. The generator is called once
    /// here, so a generator that cannot make a usable ID fails at start-up.
    pub fn build(self) -> Result<CorrelationConfig, ConfigError> {
        Ok(CorrelationConfig {
            inner: Arc::new(self.check()?),
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
        let (incoming, sources) = checked_sources(&self.sources)?;
        let first = incoming.first().ok_or(ConfigError::NoHeaderName)?;
        let response = match &self.response {
            Some(name) => parse_header_name(name)?,
            None => first.clone(),
        };
        let hop = checked_hop_id_header(self.hop_id_header, &incoming, &response)?;
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
            sources,
            trust: self.trust,
            response,
            generator: self.generator,
            validator: self.validator,
            transformer: self.transformer,
            update_request_header: self.update_request_header,
            echo_response_header: self.echo_response_header,
            on_invalid: self.on_invalid,
            skip: skip_rule(self.skip_paths, self.skip),
            max_length: self.max_length,
            sentry_tag: self.sentry_tag,
            hop,
            #[cfg(feature = "request-log")]
            log_level_header: checked_log_level_header(self.log_level_header, &incoming)?,
            #[cfg(feature = "request-log")]
            log_buffer: self
                .log_buffer
                .map(|buffer| buffer.check().map(Arc::new))
                .transpose()?,
            #[cfg(feature = "request-log")]
            log_level_into_jobs: self.log_level_into_jobs,
            baggage: checked_baggage(self.baggage_keys, self.baggage_from)?,
            incoming,
        })
    }
}

/// The log level header, checked: a valid name, not reserved, not a correlation header.
#[cfg(feature = "request-log")]
fn checked_log_level_header(
    header: Option<(String, TrustPolicy)>,
    incoming: &[HeaderName],
) -> Result<Option<super::LogLevelHeader>, ConfigError> {
    let Some((name, trust)) = header else {
        return Ok(None);
    };
    let invalid = |reason| ConfigError::InvalidLogLevelHeader {
        name: name.clone(),
        reason,
    };
    let parsed = match parse_header_name(&name) {
        Ok(parsed) => parsed,
        Err(ConfigError::ForbiddenHeaderName { .. }) => return Err(invalid("is reserved")),
        Err(_) => return Err(invalid("is not a valid HTTP header name")),
    };
    if incoming.contains(&parsed) {
        return Err(invalid("is a correlation header"));
    }
    Ok(Some(super::LogLevelHeader {
        name: parsed,
        trust,
    }))
}

/// The baggage keys, checked (field keys, at most as many as a request holds, each
/// once), with whom incoming baggage is read from; `None` when no key is allow-listed.
fn checked_baggage(
    keys: Vec<String>,
    trust: TrustPolicy,
) -> Result<Option<super::Baggage>, ConfigError> {
    if keys.is_empty() {
        return match trust {
            TrustPolicy::Never => Ok(None),
            _ => Err(ConfigError::BaggageTrustWithoutKeys),
        };
    }
    let mut checked: Vec<Box<str>> = Vec::with_capacity(keys.len());
    for key in keys {
        if !Fields::is_valid_key(&key) {
            return Err(ConfigError::InvalidBaggageKey { key });
        }
        if !checked.iter().any(|held| **held == *key) {
            checked.push(key.into_boxed_str());
        }
    }
    if checked.len() > Fields::MAX_COUNT {
        return Err(ConfigError::TooManyBaggageKeys {
            count: checked.len(),
        });
    }
    Ok(Some(super::Baggage {
        keys: checked.into_boxed_slice(),
        trust,
    }))
}

/// The hop ID header, checked: a valid name, not reserved, not a correlation header.
fn checked_hop_id_header(
    name: Option<String>,
    incoming: &[HeaderName],
    response: &HeaderName,
) -> Result<Option<HeaderName>, ConfigError> {
    let Some(name) = name else {
        return Ok(None);
    };
    let invalid = |reason| ConfigError::InvalidHopIdHeader {
        name: name.clone(),
        reason,
    };
    let parsed = match parse_header_name(&name) {
        Ok(parsed) => parsed,
        Err(ConfigError::ForbiddenHeaderName { .. }) => return Err(invalid("is reserved")),
        Err(_) => return Err(invalid("is not a valid HTTP header name")),
    };
    if incoming.contains(&parsed) || parsed == response {
        return Err(invalid("is a correlation header"));
    }
    Ok(Some(parsed))
}

/// The skipped `paths` and the `predicate` as one predicate, if either is set.
fn skip_rule(paths: Vec<String>, predicate: Option<SkipPredicate>) -> Option<SkipPredicate> {
    if paths.is_empty() {
        return predicate;
    }
    let listed = move |path: &str| paths.iter().any(|skipped| skipped == path);
    Some(match predicate {
        None => Box::new(listed),
        Some(predicate) => Box::new(move |path| listed(path) || predicate(path)),
    })
}

/// The correlation header names among `sources`, checked, and the sources as the
/// configuration holds them.
#[allow(clippy::type_complexity)]
fn checked_sources(
    sources: &[IdSource],
) -> Result<(Box<[HeaderName]>, Box<[Source]>), ConfigError> {
    let mut names = Vec::new();
    let mut checked = Vec::with_capacity(sources.len());
    for source in sources {
        checked.push(match &source.kind {
            SourceKind::Header(name) => {
                names.push(parse_header_name(name)?);
                Source::Header(names.len() - 1)
            }
            SourceKind::Trace(format) => Source::Trace(*format),
            SourceKind::Custom { name, find } => Source::Custom {
                name: name.clone(),
                find: Arc::clone(find),
            },
        });
    }
    Ok((names.into_boxed_slice(), checked.into_boxed_slice()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn the_hop_id_header_is_checked_at_build() {
        let err = |builder: CorrelationConfigBuilder| builder.build().unwrap_err().to_string();
        let two_names = || {
            CorrelationConfig::builder()
                .incoming_header_names(["X-Correlation-ID", "X-Upstream-ID"])
                .response_header_name("X-Echoed-ID")
        };
        for clash in ["x-correlation-id", "X-Upstream-ID", "X-ECHOED-ID"] {
            assert_eq!(
                err(two_names().hop_id_header(clash)),
                format!("the hop id header {clash:?} is a correlation header")
            );
        }
        assert_eq!(
            err(two_names().hop_id_header("Cookie")),
            "the hop id header \"Cookie\" is reserved"
        );
        assert_eq!(
            err(two_names().hop_id_header("bad name")),
            "the hop id header \"bad name\" is not a valid HTTP header name"
        );
        let config = two_names().hop_id_header("X-Request-ID").build().unwrap();
        assert_eq!(config.hop_id_header_name().unwrap(), "x-request-id");
        assert_eq!(CorrelationConfig::default().hop_id_header_name(), None);
    }
}
