//! The configuration every adapter shares: [`CorrelationConfig`] and what it tells an
//! adapter.
//!
//! The rest of it has a file of its own: the builder and its errors (`builder`), the
//! checked header names (`header_names`), the decision on a request's ID, in one
//! function (`decision`), the sources the incoming ID may come from (`sources`), the
//! request's headers once it is decided (`request_headers`) and the ID on headers beyond
//! the request (`propagate`).

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, OnceLock};

use http::HeaderName;

use crate::context::CorrelationContext;
use crate::fields::Fields;
use crate::strategy::IdTransformer;
use crate::strategy::configured::{Generator, Validator};
use crate::trust::TrustPolicy;

mod builder;
mod decision;
mod header_names;
mod propagate;
mod request_headers;
mod sources;

pub use builder::{ConfigError, CorrelationConfigBuilder};
pub use decision::{Decision, Outcome};
pub use request_headers::RequestHeaderPlan;
pub use sources::{FirstValue, IdSource, RequestHeaders};

/// A user predicate on the request path.
pub(crate) type SkipPredicate = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// What happens to a request whose incoming ID fails validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnInvalid {
    /// Replace it with a generated ID and log a warning (the default, never rejects).
    #[default]
    Replace,
    /// Answer `400 Bad Request` (still carrying a generated ID) without calling the handler.
    Reject,
}

/// Configuration shared by every adapter: header names, strategies and behaviour.
///
/// Build it with [`CorrelationConfig::builder`]; [`CorrelationConfig::default`] is the
/// same as `builder().build()` with no changes.
///
/// Cheap to clone: clones share one configuration behind a reference count.
///
/// ```
/// use correlation_core::{CorrelationConfig, Outcome};
/// use correlation_core::strategy::AnyUuid;
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
    inner: Arc<Inner>,
}

struct Inner {
    /// The correlation headers among the sources, in order.
    incoming: Box<[HeaderName]>,
    /// All the sources in order.
    sources: Box<[sources::Source]>,
    trust: TrustPolicy,
    /// The name written on responses and outgoing calls.
    response: HeaderName,
    generator: Generator,
    validator: Validator,
    transformer: Option<Box<dyn IdTransformer>>,
    update_request_header: bool,
    echo_response_header: bool,
    on_invalid: OnInvalid,
    /// The skipped paths and the skip predicate as one; `None` when nothing is skipped.
    skip: Option<SkipPredicate>,
    max_length: usize,
    sentry_tag: Cow<'static, str>,
    /// The header that echoes each request's hop ID; `None`: no hop IDs.
    hop: Option<HeaderName>,
    /// The header that raises a request's log level, and whom it is honoured from.
    #[cfg(feature = "request-log")]
    log_level_header: Option<LogLevelHeader>,
    #[cfg(feature = "request-log")]
    log_buffer: Option<Arc<crate::request_log::BufferSettings>>,
    /// Whether a raised request's jobs take its level along.
    #[cfg(feature = "request-log")]
    log_level_into_jobs: bool,
    /// The fields carried as W3C baggage, and whom incoming baggage is read from.
    baggage: Option<Baggage>,
}

impl Inner {
    /// Whether an option gives requests more than their ID: a hop ID, a raised log level
    /// or fields from baggage.
    fn adds_extras(&self) -> bool {
        #[cfg(feature = "request-log")]
        if self.log_level_header.is_some() {
            return true;
        }
        self.hop.is_some() || self.baggage.is_some()
    }
}

/// The fields carried as W3C baggage, and whom incoming baggage is read from.
#[derive(Debug)]
pub(crate) struct Baggage {
    /// The allow-listed keys: read from trusted peers' baggage, sent on outgoing calls.
    pub(crate) keys: Box<[Box<str>]>,
    /// Whose incoming `baggage` header is read.
    pub(crate) trust: TrustPolicy,
}

impl Baggage {
    /// Whether `key` is allow-listed.
    pub(crate) fn allows(&self, key: &str) -> bool {
        self.keys.iter().any(|allowed| &**allowed == key)
    }

    /// The fields the baggage list made of `pieces` gives, for the allow-listed keys,
    /// and what was left out, if anything: by the parser, or a value longer than a
    /// field holds.
    pub(crate) fn fields<'a>(
        &self,
        pieces: impl IntoIterator<Item = &'a [u8]> + Clone,
    ) -> (Fields, Option<&'static str>) {
        let mut pairs = Vec::new();
        let mut too_long = false;
        let left_out = crate::baggage::Parser::parse(pieces, |key, value| {
            if !self.allows(key) || pairs.iter().any(|(held, _)| *held == key) {
                return;
            }
            if value.len() > Fields::MAX_VALUE_LEN {
                too_long = true;
            } else {
                pairs.push((key, value));
            }
        });
        let (fields, _) = Fields::checked(pairs);
        let left_out = left_out.map(crate::baggage::LeftOut::describe).or_else(|| {
            too_long.then_some("an allow-listed baggage value is longer than 256 bytes")
        });
        (fields, left_out)
    }
}

/// The header that raises a request's log level, and whom it is honoured from.
#[cfg(feature = "request-log")]
#[derive(Debug)]
pub(crate) struct LogLevelHeader {
    pub(crate) name: HeaderName,
    pub(crate) trust: TrustPolicy,
}

impl fmt::Debug for CorrelationConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        let mut f = f.debug_struct("CorrelationConfig");
        f.field("incoming_header_names", &inner.incoming)
            .field("sources", &inner.sources)
            .field("trust", &inner.trust)
            .field("response_header_name", &inner.response)
            .field("transformer", &inner.transformer.is_some())
            .field("update_request_header", &inner.update_request_header)
            .field("echo_response_header", &inner.echo_response_header)
            .field("on_invalid", &inner.on_invalid)
            .field("skip", &inner.skip.is_some())
            .field("max_length", &inner.max_length)
            .field("baggage", &inner.baggage)
            .field("hop_id_header", &inner.hop);
        #[cfg(feature = "request-log")]
        f.field("log_level_header", &inner.log_level_header)
            .field("log_buffer", &inner.log_buffer)
            .field("log_level_into_jobs", &inner.log_level_into_jobs);
        f.finish_non_exhaustive()
    }
}

impl Default for CorrelationConfig {
    fn default() -> Self {
        static DEFAULT: OnceLock<CorrelationConfig> = OnceLock::new();
        // One definition of the defaults: the builder's.
        DEFAULT
            .get_or_init(|| match CorrelationConfigBuilder::default().build() {
                Ok(config) => config,
                Err(err) => unreachable!("the default configuration fails its own checks: {err}"),
            })
            .clone()
    }
}

impl CorrelationConfig {
    /// Starts a builder with the defaults: header `X-Request-ID`, UUID v4 generator
    /// (32 hex), strict UUID v4 validator, no transformer, request header updated,
    /// response header echoed, invalid IDs replaced, nothing skipped.
    pub fn builder() -> CorrelationConfigBuilder {
        CorrelationConfigBuilder::default()
    }

    /// The incoming header names, in priority order.
    pub fn incoming_header_names(&self) -> &[HeaderName] {
        &self.inner.incoming
    }

    /// Whose incoming IDs are honoured.
    pub fn trust_policy(&self) -> &TrustPolicy {
        &self.inner.trust
    }

    /// Whether a trust policy of this configuration (the ID's, the log level header's or
    /// baggage's) needs the connection's peer address. An adapter that cannot lend its
    /// request to the decision's peer function reads the address beforehand, and only
    /// when this says so.
    pub fn needs_peer_address(&self) -> bool {
        let policies = [
            Some(&self.inner.trust),
            self.inner.baggage.as_ref().map(|baggage| &baggage.trust),
            #[cfg(feature = "request-log")]
            self.inner
                .log_level_header
                .as_ref()
                .map(|header| &header.trust),
        ];
        policies
            .into_iter()
            .flatten()
            .any(TrustPolicy::needs_peer_address)
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

    /// The header each request's hop ID is echoed under, when hop IDs are on (see
    /// [`hop_id_header`](CorrelationConfigBuilder::hop_id_header)).
    pub fn hop_id_header_name(&self) -> Option<&HeaderName> {
        self.inner.hop.as_ref()
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
    // Asked by each adapter's middleware on every request.
    #[inline]
    pub fn is_skipped(&self, path: &str) -> bool {
        self.inner.skip.as_ref().is_some_and(|skip| skip(path))
    }

    /// The context a decided request runs in: its ID, and with the `tracing` feature a
    /// `correlation` span recording `correlation_id`, and with the `sentry` feature a Sentry
    /// hub of its own tagged with the ID (tag name from
    /// [`sentry_tag`](CorrelationConfigBuilder::sentry_tag)), and with the `request-log`
    /// feature its raised level and its log buffer.
    pub(crate) fn request_context(&self, decision: Decision) -> CorrelationContext {
        let mut extras = decision.extras;
        let hop_id = extras.as_mut().and_then(|extras| extras.hop_id.take());
        #[cfg(feature = "request-log")]
        let log = crate::request_log::RequestLog::new(
            extras.as_ref().and_then(|extras| extras.log_level),
            self.inner.log_buffer.as_ref(),
            self.inner.log_level_into_jobs,
        );
        #[cfg_attr(not(feature = "request-log"), allow(unused_mut))]
        let mut context =
            CorrelationContext::for_request(decision.id, hop_id, &self.inner.sentry_tag);
        if let Some(extras) = extras {
            extras.fields.set_in(&context);
        }
        #[cfg(feature = "request-log")]
        context.set_log(log);
        context
    }

    /// The fields carried as baggage, if configured.
    #[cfg(any(feature = "nats", feature = "lapin", feature = "mqtt"))]
    pub(crate) fn baggage(&self) -> Option<&Baggage> {
        self.inner.baggage.as_ref()
    }

    /// The header that raises a request's log level, if configured.
    #[cfg(feature = "request-log")]
    pub(crate) fn log_level_header(&self) -> Option<&LogLevelHeader> {
        self.inner.log_level_header.as_ref()
    }

    /// The log buffer every request gets, if configured.
    #[cfg(feature = "request-log")]
    pub(crate) fn log_buffer_settings(&self) -> Option<&Arc<crate::request_log::BufferSettings>> {
        self.inner.log_buffer.as_ref()
    }

    /// Whether a raised request's (or job's) jobs take its level along.
    #[cfg(feature = "request-log")]
    pub(crate) fn log_level_into_jobs(&self) -> bool {
        self.inner.log_level_into_jobs
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use http::{HeaderMap, HeaderName, HeaderValue};

    use crate::id::CorrelationId;
    use crate::strategy::{IdValidator, StrictUuidV4};

    pub(crate) const VALID: &str = "3758c31e-1177-4540-ba33-0109c405579a";

    pub(crate) fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    pub(crate) fn is_default_generated(id: &CorrelationId) -> bool {
        id.len() == 32 && StrictUuidV4.is_valid(id.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::test_support::{VALID, headers};
    use crate::adapter;
    use crate::{CorrelationId, JobCarrier, current};

    fn hop_config() -> CorrelationConfig {
        CorrelationConfig::builder()
            .header_name("X-Correlation-ID")
            .hop_id_header("X-Request-ID")
            .build()
            .unwrap()
    }

    /// The request's context as an adapter makes it, for `incoming` headers.
    fn request(config: &CorrelationConfig, incoming: &[(&str, &str)]) -> CorrelationContext {
        let mut map = headers(incoming);
        let decision = adapter::decide_and_update(config, &mut map, || None).unwrap();
        adapter::request_context(config, decision)
    }

    /// The response headers echoed for `context`.
    fn echoed(config: &CorrelationConfig, context: &CorrelationContext) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        adapter::echo_response_headers(config, &mut map, context.id().unwrap(), context.hop_id());
        map
    }

    #[test]
    fn the_peer_address_is_needed_when_any_trust_policy_lists_peers() {
        let peers = || TrustPolicy::from_peers(["10.0.0.0/8"]).unwrap();
        let needs =
            |builder: CorrelationConfigBuilder| builder.build().unwrap().needs_peer_address();
        assert!(!needs(CorrelationConfig::builder()));
        assert!(!needs(
            CorrelationConfig::builder()
                .baggage_keys(["tenant"])
                .baggage_from(TrustPolicy::Always)
        ));
        assert!(needs(CorrelationConfig::builder().trust(peers())));
        assert!(needs(
            CorrelationConfig::builder()
                .baggage_keys(["tenant"])
                .baggage_from(peers())
        ));
        #[cfg(feature = "request-log")]
        assert!(needs(
            CorrelationConfig::builder().log_level_header("X-Debug-Log", peers())
        ));
    }

    #[test]
    fn a_valid_incoming_id_stays_the_correlation_id_beside_a_new_hop_id() {
        let config = hop_config();
        let context = request(&config, &[("x-correlation-id", VALID)]);
        assert_eq!(context.id().unwrap(), VALID);
        let hop = context.hop_id().unwrap().clone();
        assert_ne!(hop, VALID);
        assert_eq!(hop.len(), 32, "made by the configured generator");
        let map = echoed(&config, &context);
        assert_eq!(map["x-correlation-id"], VALID);
        assert_eq!(map["x-request-id"], hop.as_str());

        let again = request(&config, &[("x-correlation-id", VALID)]);
        assert_ne!(
            again.hop_id(),
            Some(&hop),
            "each request is a hop of its own"
        );
    }

    #[test]
    fn without_an_incoming_id_both_are_made_and_differ() {
        let config = hop_config();
        let context = request(&config, &[]);
        let (id, hop) = (context.id().unwrap(), context.hop_id().unwrap());
        assert_ne!(id, hop);
        let map = echoed(&config, &context);
        assert_eq!(map["x-correlation-id"], id.as_str());
        assert_eq!(map["x-request-id"], hop.as_str());
    }

    #[test]
    fn off_by_default_and_echoed_only_with_the_correlation_header() {
        let config = CorrelationConfig::default();
        let context = request(&config, &[("x-request-id", VALID)]);
        assert_eq!(context.hop_id(), None);
        assert_eq!(context.run(CorrelationContext::current_hop_id), None);
        let map = echoed(&config, &context);
        assert_eq!(map.len(), 1);

        let silent = CorrelationConfig::builder()
            .header_name("X-Correlation-ID")
            .hop_id_header("X-Request-ID")
            .echo_response_header(false)
            .build()
            .unwrap();
        let context = request(&silent, &[]);
        assert!(context.hop_id().is_some());
        assert!(echoed(&silent, &context).is_empty());
    }

    #[test]
    fn a_rejected_request_echoes_its_hop_id_too() {
        let config = CorrelationConfig::builder()
            .header_name("X-Correlation-ID")
            .hop_id_header("X-Request-ID")
            .on_invalid(OnInvalid::Reject)
            .build()
            .unwrap();
        let mut map = headers(&[("x-correlation-id", "not a uuid")]);
        let decision = adapter::decide_and_update(&config, &mut map, || None).unwrap();
        assert_eq!(decision.outcome, crate::Outcome::Rejected);
        let hop = decision.hop_id().unwrap();
        let mut response = http::HeaderMap::new();
        adapter::echo_response_headers(&config, &mut response, &decision.id, Some(hop));
        assert_eq!(response["x-correlation-id"], decision.id.as_str());
        assert_eq!(response["x-request-id"], hop.as_str());
    }

    #[tokio::test]
    async fn spawned_work_shares_the_hop_id_and_jobs_carry_only_the_correlation_id() {
        let config = hop_config();
        let context = request(&config, &[("x-correlation-id", VALID)]);
        let hop = context.hop_id().cloned();
        let (spawned, carrier) = context
            .clone()
            .wrap(async {
                let spawned = crate::spawn(async { CorrelationContext::current_hop_id() });
                (spawned.await.unwrap(), JobCarrier::capture())
            })
            .await;
        assert_eq!(spawned, hop);
        let job = carrier.into_context();
        assert_eq!(job.id().unwrap(), VALID);
        assert_eq!(job.hop_id(), None);
        assert_eq!(job.run(CorrelationContext::current_hop_id), None);
        // A context made from an ID alone has no hop.
        let plain = CorrelationContext::new(CorrelationId::from_static("plain"));
        assert_eq!(plain.run(current).unwrap(), "plain");
        assert_eq!(plain.hop_id(), None);
    }

    #[cfg(feature = "request-log")]
    #[test]
    fn a_request_with_a_log_buffer_keeps_its_hop_id() {
        let config = CorrelationConfig::builder()
            .hop_id_header("X-Hop-ID")
            .log_buffer(crate::request_log::LogBuffer::new())
            .build()
            .unwrap();
        let context = request(&config, &[("x-request-id", VALID)]);
        assert!(context.request_log().is_some());
        assert_eq!(context.id().unwrap(), VALID);
        let hop = context.hop_id().cloned();
        assert!(hop.is_some());
        assert_eq!(context.run(CorrelationContext::current_hop_id), hop);
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
}
