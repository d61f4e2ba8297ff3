//! The decision on a request's ID, read top to bottom: `decide_from` finds the first
//! source the request carries, in whatever header map the adapter has, and
//! `decide_found` does the rest on what it found: it weighs the trust policy, validates
//! the value where it lies or generates an ID, applies the transformer and plans the
//! request's headers. Everything else here calls them; jobs and messages, which carry
//! one value, call `decide_found` alone.

use std::borrow::Cow;
use std::net::IpAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};

use http::{HeaderMap, HeaderValue};

use super::sources::{Candidate, Found, RequestHeaders};
use super::{CorrelationConfig, OnInvalid, RequestHeaderPlan};
use crate::constants::LOG_TARGET;
use crate::context::sync_scope;
use crate::fields::Fields;
use crate::id::{CorrelationId, check_safe};
use crate::strategy::IdTransformer;
use crate::trust::{PeerAddressUnavailable, TrustPolicy};

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
#[non_exhaustive]
pub struct Decision {
    /// The ID the request runs under.
    pub id: CorrelationId,
    /// How the ID was arrived at.
    pub outcome: Outcome,
    /// What the configuration's options add to the ID, when they add anything.
    pub(crate) extras: Option<Box<Extras>>,
}

/// What a request has beside its ID when options give it more: a hop ID, a raised log
/// level, fields from baggage. Boxed, so that a request without them carries only its ID
/// from the decision to its context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Extras {
    /// This service's own ID for the request, when hop IDs are on.
    pub(crate) hop_id: Option<CorrelationId>,
    /// The level a trusted caller raised the request's logs to.
    #[cfg(feature = "request-log")]
    pub(crate) log_level: Option<log::LevelFilter>,
    /// The fields a trusted caller's baggage gives the request.
    pub(crate) fields: Fields,
}

impl Extras {
    fn is_empty(&self) -> bool {
        #[cfg(feature = "request-log")]
        if self.log_level.is_some() {
            return false;
        }
        self.hop_id.is_none() && self.fields.is_empty()
    }
}

impl Decision {
    pub(crate) fn new(id: CorrelationId, outcome: Outcome) -> Self {
        Self {
            id,
            outcome,
            extras: None,
        }
    }

    /// The ID this service made for the request's hop, beside its correlation ID, when
    /// the configuration has a
    /// [hop ID header](crate::CorrelationConfigBuilder::hop_id_header); `None` otherwise.
    pub fn hop_id(&self) -> Option<&CorrelationId> {
        self.extras.as_ref()?.hop_id.as_ref()
    }

    /// The level a trusted caller raised the request's logs to with the
    /// [log level header](crate::CorrelationConfigBuilder::log_level_header), if it did.
    #[cfg(feature = "request-log")]
    #[cfg_attr(docsrs, doc(cfg(feature = "request-log")))]
    pub fn log_level(&self) -> Option<log::LevelFilter> {
        self.extras.as_ref()?.log_level
    }

    /// The fields a trusted caller's baggage gave the request.
    #[cfg(test)]
    pub(crate) fn fields(&self) -> Fields {
        self.extras
            .as_ref()
            .map(|extras| extras.fields.clone())
            .unwrap_or_default()
    }
}

/// A decision accepting `id` as it is, with no raised log level: for contexts made for
/// work that has no request headers to decide from (a test, another transport), with
/// [`adapter::request_context`](crate::adapter::request_context).
impl From<CorrelationId> for Decision {
    fn from(id: CorrelationId) -> Self {
        Self::new(id, Outcome::Accepted)
    }
}

/// The connection's peer address, asked for once at most.
struct Peer<F> {
    ask: Option<F>,
    address: Option<IpAddr>,
}

impl<F: FnOnce() -> Option<IpAddr>> Peer<F> {
    fn new(ask: F) -> Self {
        Self {
            ask: Some(ask),
            address: None,
        }
    }

    fn address(&mut self) -> Option<IpAddr> {
        if let Some(ask) = self.ask.take() {
            self.address = ask();
        }
        self.address
    }
}

/// What the decision makes of the value a source found.
enum Checked<'f> {
    Valid(Valid<'f>),
    /// Nothing found, or an empty value: nothing sent, nothing to warn about.
    Empty,
    /// Replaced (or rejected) by a generated ID, with a warning naming what was invalid.
    Invalid(&'f Found<'f>),
}

/// A valid value, still where the source found it.
enum Valid<'f> {
    /// A correlation header's value.
    Header(Candidate<'f>),
    /// A trace ID, or a custom source's value.
    Text(Cow<'f, str>),
}

impl Valid<'_> {
    /// The ID: the only place the decision makes one from what a request carries.
    // Reached from each adapter's crate on every request, through the generic decision.
    #[inline]
    fn into_id(self) -> CorrelationId {
        match self {
            Self::Header(value) => value.into_checked_id(),
            Self::Text(text) => CorrelationId::from_checked_bytes(text.as_bytes()),
        }
    }
}

/// Whether the request's sender may set its ID, as the trust policy answered.
enum Sender {
    Trusted,
    /// Not trusted: the peer's address, when the policy needed it to say so.
    Untrusted(Option<IpAddr>),
}

impl CorrelationConfig {
    /// Decides a request's ID from its headers, for a connection from `peer` (asked only
    /// when the trust policy needs it), and plans the request's headers.
    pub(crate) fn decide_request<H: RequestHeaders>(
        &self,
        headers: &H,
        peer: impl FnOnce() -> Option<IpAddr>,
    ) -> Result<(Decision, RequestHeaderPlan), PeerAddressUnavailable> {
        // Asked once at most, and shared by the ID's, baggage's and the log level's trust
        // policies.
        let mut peer = Peer::new(peer);
        let sender = self.sender(|| peer.address())?;
        let (decision, plan) = self.decide_from(headers, sender);
        Ok((self.with_extras(decision, headers, peer), plan))
    }

    /// `decision` with what the configuration's options add to it: a hop ID, a raised log
    /// level and fields from baggage, for a connection from `peer`.
    fn with_extras<H: RequestHeaders, F: FnOnce() -> Option<IpAddr>>(
        &self,
        mut decision: Decision,
        headers: &H,
        mut peer: Peer<F>,
    ) -> Decision {
        if !self.inner.adds_extras() {
            return decision;
        }
        let mut extras = Extras::default();
        if self.inner.hop.is_some() {
            extras.hop_id = Some(self.generate());
        }
        if decision.outcome != Outcome::Rejected {
            #[cfg(feature = "request-log")]
            {
                extras.log_level = self.raised_log_level(headers, &decision.id, || peer.address());
            }
            extras.fields = self.baggage_fields(headers, &decision.id, || peer.address());
        }
        if !extras.is_empty() {
            decision.extras = Some(Box::new(extras));
        }
        decision
    }

    /// The fields the request's `baggage` headers give it: the allow-listed members,
    /// from a peer the baggage trust policy trusts. Anything left out of a trusted
    /// peer's baggage is reported in one `WARN`, which never shows the header.
    fn baggage_fields<H: RequestHeaders>(
        &self,
        headers: &H,
        id: &CorrelationId,
        peer: impl FnOnce() -> Option<IpAddr>,
    ) -> Fields {
        let Some(baggage) = &self.inner.baggage else {
            return Fields::default();
        };
        let mut pieces = Vec::new();
        headers.each_value(&crate::baggage::HEADER, &mut |piece| pieces.push(piece));
        // What an OpenTelemetry propagator outside our middleware extracted: the same
        // header, usually, or another format's baggage. The header's members come first.
        #[cfg(feature = "opentelemetry")]
        let from_otel = crate::strategy::otel::current_baggage(&baggage.keys);
        #[cfg(not(feature = "opentelemetry"))]
        let from_otel: [(String, String); 0] = [];
        if pieces.is_empty() && from_otel.is_empty() {
            return Fields::default();
        }
        let peer = if baggage.trust.needs_peer_address() {
            peer()
        } else {
            None
        };
        if !baggage.trust.trusts(peer).unwrap_or(false) {
            return Fields::default();
        }
        let (fields, left_out) = baggage.fields(pieces);
        let fields = fields.with_missing(from_otel);
        if let Some(left_out) = left_out {
            sync_scope(id.clone(), || {
                log::warn!(
                    target: LOG_TARGET,
                    "Left part of the baggage header out: {left_out}"
                );
            });
        }
        fields
    }

    /// The level the request's log level header raises it to: `None` without the header,
    /// or with another value than `debug` or `trace`, or from a peer its trust policy
    /// does not trust (those two with one `DEBUG` line, which never shows the value).
    #[cfg(feature = "request-log")]
    fn raised_log_level<H: RequestHeaders>(
        &self,
        headers: &H,
        id: &CorrelationId,
        peer: impl FnOnce() -> Option<IpAddr>,
    ) -> Option<log::LevelFilter> {
        let header = self.inner.log_level_header.as_ref()?;
        let value = headers.first_value(&header.name)?.into_bytes();
        let level = crate::request_log::parse_raised_level(value);
        let peer = if header.trust.needs_peer_address() {
            peer()
        } else {
            None
        };
        let trusted = header.trust.trusts(peer).unwrap_or(false);
        if trusted && level.is_some() {
            return level;
        }
        let name = &header.name;
        sync_scope(id.clone(), || match (trusted, peer) {
            (false, Some(peer)) => log::debug!(
                target: LOG_TARGET,
                "Ignored the {name} header from untrusted peer {peer}"
            ),
            (false, None) => log::debug!(
                target: LOG_TARGET,
                "Ignored the {name} header: its trust policy does not trust this peer"
            ),
            (true, _) => log::debug!(
                target: LOG_TARGET,
                "Ignored the {name} header: its value is not `debug` or `trace`"
            ),
        });
        None
    }

    /// The trust policy's answer for this connection: the peer is asked for only when the
    /// policy lists peers, and a policy that lists peers fails without one.
    fn sender(
        &self,
        peer: impl FnOnce() -> Option<IpAddr>,
    ) -> Result<Sender, PeerAddressUnavailable> {
        Ok(match &self.inner.trust {
            TrustPolicy::Always => Sender::Trusted,
            TrustPolicy::Never => Sender::Untrusted(None),
            listed @ TrustPolicy::FromPeers(_) => {
                let peer = peer();
                if listed.trusts(peer)? {
                    Sender::Trusted
                } else {
                    Sender::Untrusted(peer)
                }
            }
        })
    }

    /// The decision: the request's ID and the plan for its headers.
    fn decide_from<H: RequestHeaders>(
        &self,
        headers: &H,
        sender: Sender,
    ) -> (Decision, RequestHeaderPlan) {
        // 1. The first source the request carries decides.
        let inner = &*self.inner;
        let found = inner
            .sources
            .iter()
            .find_map(|source| source.find(headers, &inner.incoming));
        self.decide_found(found.as_ref(), sender)
    }

    /// The rest of the decision, on what the first source found (`None`: nothing): the
    /// value is validated where it lies, the ID made once, from it or new, and the
    /// request's headers planned. Jobs and messages decide from their one value with it.
    // Reached from each adapter's crate on every request, through the generic decision.
    #[inline]
    fn decide_found(
        &self,
        found: Option<&Found<'_>>,
        sender: Sender,
    ) -> (Decision, RequestHeaderPlan) {
        let inner = &*self.inner;

        // An untrusted sender's ID is ignored.
        if let (Some(_), Sender::Untrusted(peer)) = (found, sender) {
            let decision = self.ignored_from(peer);
            let plan = self.plan(decision.outcome, false);
            return (decision, plan);
        }

        // 2. Validate what it found, or generate an ID.
        let mut decision = match found.map_or(Checked::Empty, |found| self.check(found)) {
            Checked::Valid(value) => Decision::new(value.into_id(), Outcome::Accepted),
            Checked::Empty => Decision::new(self.new_id(), Outcome::Generated),
            Checked::Invalid(found) => self.rejected_or_replaced(&found.describe()),
        };

        // 3. The transformer, if any, rewrites an accepted or generated ID; a replaced
        //    (or rejected) one is final.
        if let Some(transformer) = &inner.transformer {
            if matches!(decision.outcome, Outcome::Accepted | Outcome::Generated) {
                decision = self.transformed(&**transformer, decision);
            }
        }

        // 4. The request's headers: exactly one header with the final ID, under the first
        //    incoming name, unless it holds exactly that already. An accepted ID is the
        //    value found, unless a transformer rewrote it.
        let id_is_incoming = decision.outcome == Outcome::Accepted
            && matches!(found, Some(Found::Header { value, index: 0, alone: true })
                if inner.transformer.is_none() || value.as_bytes() == decision.id.as_bytes());
        let plan = self.plan(decision.outcome, id_is_incoming);
        (decision, plan)
    }

    /// Whether the value found may be the request's ID: it passes the safety rules and
    /// the length limit, and a correlation header's value passes the validator too, a
    /// trace-context header's its format.
    // Reached from each adapter's crate on every request, through the generic decision.
    #[inline]
    fn check<'f>(&self, found: &'f Found<'_>) -> Checked<'f> {
        let max = self.inner.max_length;
        match found {
            Found::Header { value, .. } if value.as_bytes().is_empty() => Checked::Empty,
            Found::Header { value, .. } => {
                if self.inner.validator.accepts(value.as_bytes(), max) {
                    Checked::Valid(Valid::Header(*value))
                } else {
                    Checked::Invalid(found)
                }
            }
            Found::Trace(_, []) => Checked::Empty,
            Found::Trace(format, value) => match format.trace_id(value) {
                Ok(trace_id) if check_safe(trace_id.as_bytes(), max).is_ok() => {
                    Checked::Valid(Valid::Text(trace_id))
                }
                _ => Checked::Invalid(found),
            },
            Found::Custom(_, Some(value)) if check_safe(value.as_bytes(), max).is_ok() => {
                Checked::Valid(Valid::Text(Cow::Borrowed(value)))
            }
            Found::Custom(..) => Checked::Invalid(found),
        }
    }

    /// The plan for the request's headers once its ID is decided; `id_is_incoming` says
    /// whether the request already holds exactly the final ID, alone under the first
    /// incoming name.
    fn plan(&self, outcome: Outcome, id_is_incoming: bool) -> RequestHeaderPlan {
        if !self.inner.update_request_header || outcome == Outcome::Rejected {
            // A rejected request is answered without reaching the handler.
            return RequestHeaderPlan::KEEP;
        }
        RequestHeaderPlan {
            write_id: !id_is_incoming,
            remove_others: self.inner.incoming.len() > 1,
            id_is_incoming,
        }
    }

    /// A generated (and transformed) ID in place of an untrusted sender's, with a `DEBUG`
    /// line saying why.
    fn ignored_from(&self, peer: Option<IpAddr>) -> Decision {
        let (decision, _) = self.decide_found(None, Sender::Trusted);
        let id = &decision.id;
        sync_scope(id.clone(), || match peer {
            Some(peer) => log::debug!(
                target: LOG_TARGET,
                "Generated new request ID ({id}), ignoring the incoming one from untrusted peer {peer}"
            ),
            None if self.inner.trust == TrustPolicy::Never => log::debug!(
                target: LOG_TARGET,
                "Generated new request ID ({id}), ignoring the incoming one: the trust policy trusts no peer"
            ),
            None => log::debug!(
                target: LOG_TARGET,
                "Generated new request ID ({id}), ignoring the incoming one: the peer's address is unknown"
            ),
        });
        decision
    }

    /// Decides the request's ID from its headers: the first incoming header name present
    /// decides, and of its values the first one counts.
    ///
    /// An absent or empty value yields [`Outcome::Generated`] silently. A value that
    /// breaks the safety rules or fails the validator yields [`Outcome::Replaced`] (or
    /// [`Outcome::Rejected`]) and one `WARN` under the `correlation` target that names
    /// the new ID and never the rejected value.
    ///
    /// With [`sources`](crate::CorrelationConfigBuilder::sources) configured, they are
    /// tried in order instead. Without the connection's peer address, a
    /// [`TrustPolicy`](crate::TrustPolicy) other than `Always` honours no incoming ID here;
    /// adapters decide with the peer address.
    ///
    /// The decision has what the configuration's options add too: a
    /// [hop ID](Decision::hop_id), and a raised log level or fields from baggage where
    /// their trust policies trust an unknown peer.
    pub fn decide(&self, headers: &HeaderMap) -> Decision {
        let sender = self.sender(|| None).unwrap_or(Sender::Untrusted(None));
        let (decision, _) = self.decide_from(headers, sender);
        self.with_extras(shared(decision), headers, Peer::new(|| None))
    }

    /// Decides from one incoming value (`None` when the header is absent): the decision's
    /// validate-or-generate and transform steps, with no sources to search and no trust
    /// policy to weigh, for IDs carried by jobs and messages.
    pub fn decide_value(&self, incoming: Option<&HeaderValue>) -> Decision {
        let found = incoming.map(|value| Found::Header {
            value: Candidate::Shared(value),
            index: 0,
            alone: true,
        });
        let (decision, _) = self.decide_found(found.as_ref(), Sender::Trusted);
        shared(decision)
    }

    /// A new ID from the configured generator; a generator that fails or panics is
    /// replaced by a UUID v4 for this ID and a warning is logged.
    pub fn generate(&self) -> CorrelationId {
        shared(Decision::new(self.new_id(), Outcome::Generated)).id
    }

    /// A new ID from the configured generator, within the length limit.
    fn new_id(&self) -> CorrelationId {
        self.inner.generator.generate_within(self.inner.max_length)
    }

    /// A generated ID in place of an invalid incoming one, and one warning that names
    /// `what` was invalid (never its value).
    fn rejected_or_replaced(&self, what: &str) -> Decision {
        let id = self.new_id();
        let outcome = match self.inner.on_invalid {
            OnInvalid::Replace => Outcome::Replaced,
            OnInvalid::Reject => Outcome::Rejected,
        };
        // Logged inside the new ID's scope so the line carries `[<new id>]` too.
        sync_scope(id.clone(), || match outcome {
            Outcome::Rejected => log::warn!(
                target: LOG_TARGET,
                "Rejected request with ID ({id}), since {what} failed validation"
            ),
            _ => log::warn!(
                target: LOG_TARGET,
                "Generated new request ID ({id}), since {what} failed validation"
            ),
        });
        Decision::new(id, outcome)
    }

    /// `decision` with its ID as `transformer` rewrites it; an output that breaks the
    /// safety rules or the length limit, or a panic, gives way to a generated ID and a
    /// warning.
    fn transformed(&self, transformer: &dyn IdTransformer, decision: Decision) -> Decision {
        if let Some(id) = self.apply_transformer(transformer, decision.id) {
            return Decision::new(id, decision.outcome);
        }
        let id = self.new_id();
        sync_scope(id.clone(), || {
            log::warn!(
                target: LOG_TARGET,
                "Generated new request ID ({id}), since the transformed ID failed the safety rules"
            );
        });
        Decision::new(id, Outcome::Replaced)
    }

    pub(super) fn apply_transformer(
        &self,
        transformer: &dyn IdTransformer,
        id: CorrelationId,
    ) -> Option<CorrelationId> {
        let output = catch_unwind(AssertUnwindSafe(|| transformer.transform(id.as_str()))).ok()?;
        if output.as_bytes() == id.as_bytes() {
            return Some(id);
        }
        let transformed = CorrelationId::try_from(output).ok()?;
        (transformed.len() <= self.inner.max_length).then_some(transformed)
    }
}

/// The decision with its ID in one buffer that the `http` 1 header values made from it
/// share: the default generator makes an ID in itself, which an adapter over another
/// header type copies into its own, and which an `http` 1 caller shares from here on.
pub(super) fn shared(decision: Decision) -> Decision {
    Decision {
        id: CorrelationId::from_checked_header_value(&decision.id.to_header_value()),
        ..decision
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{VALID, headers, is_default_generated};
    use super::*;
    use crate::constants::LOG_TARGET;
    use crate::strategy::{AnySafe, AnyUuid, UuidV4};
    use crate::test_util::LogCapture;

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
    fn an_explicit_built_in_generator_makes_the_same_ids_as_the_default() {
        let explicit = CorrelationConfig::builder()
            .generator(UuidV4)
            .build()
            .unwrap();
        assert!(is_default_generated(&explicit.generate()));
        let hyphenated = CorrelationConfig::builder()
            .generator(crate::strategy::HyphenatedUuidV4)
            .build()
            .unwrap();
        let id = hyphenated.generate();
        assert_eq!((id.len(), id.as_str().matches('-').count()), (36, 4));
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
    fn baggage_becomes_fields_only_from_trusted_peers_and_for_allowed_keys() {
        let logs = LogCapture::install();
        let fields_of = |config: &CorrelationConfig, peer: [u8; 4], list: &[(&str, &str)]| {
            let map = headers(list);
            let peer = IpAddr::from(peer);
            let (decision, _) = config.decide_request(&map, || Some(peer)).unwrap();
            (decision.fields().to_string(), decision.id)
        };
        let list = [("baggage", "tenant=acme,plan=pro"), ("baggage", "user=bob")];

        // Off by default, and with keys but no trusted peer.
        assert_eq!(
            fields_of(&CorrelationConfig::default(), [127, 0, 0, 1], &list).0,
            ""
        );
        let propagating = CorrelationConfig::builder()
            .baggage_keys(["tenant"])
            .build()
            .unwrap();
        assert_eq!(fields_of(&propagating, [127, 0, 0, 1], &list).0, "");

        let config = CorrelationConfig::builder()
            .baggage_keys(["tenant", "user"])
            .baggage_from(TrustPolicy::from_peers(["127.0.0.1/32"]).unwrap())
            .build()
            .unwrap();
        assert_eq!(
            fields_of(&config, [127, 0, 0, 1], &list).0,
            "tenant=acme user=bob"
        );
        assert_eq!(fields_of(&config, [127, 0, 0, 2], &list).0, "");

        let long = format!("tenant={},user=ok", "x".repeat(Fields::MAX_VALUE_LEN + 1));
        let (fields, id) = fields_of(&config, [127, 0, 0, 1], &[("baggage", &long)]);
        assert_eq!(fields, "user=ok");
        let warnings = logs.records_for(id.as_str());
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(
            warnings[0].message,
            "Left part of the baggage header out: an allow-listed baggage value is longer than 256 bytes"
        );
    }

    #[test]
    fn decide_on_a_header_map_adds_what_the_options_add() {
        let config = CorrelationConfig::builder()
            .hop_id_header("X-Hop-ID")
            .baggage_keys(["tenant"])
            .baggage_from(TrustPolicy::Always)
            .build()
            .unwrap();
        let decision = config.decide(&headers(&[
            ("x-request-id", VALID),
            ("baggage", "tenant=acme,plan=pro"),
        ]));
        assert_eq!(decision.id, VALID);
        let hop = decision.hop_id().expect("hop IDs are on");
        assert_ne!(hop, VALID);
        assert_eq!(decision.fields().to_string(), "tenant=acme");

        let plain = CorrelationConfig::default().decide(&headers(&[("baggage", "tenant=acme")]));
        assert_eq!(plain.hop_id(), None);
        assert!(plain.fields().is_empty());
    }

    #[test]
    fn baggage_misconfiguration_fails_at_build() {
        let err =
            |builder: crate::CorrelationConfigBuilder| builder.build().unwrap_err().to_string();
        let keys: Vec<String> = (0..17).map(|n| format!("k{n}")).collect();
        assert_eq!(
            err(CorrelationConfig::builder().baggage_keys(keys)),
            "17 baggage keys, more than the 16 fields a request holds"
        );
        assert!(
            err(CorrelationConfig::builder().baggage_keys(["correlation_id"]))
                .starts_with("the baggage key \"correlation_id\" is not a field key")
        );
        // Repeated keys count once.
        assert!(
            CorrelationConfig::builder()
                .baggage_keys(["a"; 20])
                .build()
                .is_ok()
        );
    }

    #[cfg(feature = "opentelemetry")]
    #[test]
    fn opentelemetry_baggage_fills_keys_the_header_does_not_hold_from_trusted_peers() {
        use opentelemetry::KeyValue;
        use opentelemetry::baggage::BaggageExt;

        let config = CorrelationConfig::builder()
            .baggage_keys(["tenant", "user"])
            .baggage_from(TrustPolicy::from_peers(["127.0.0.1/32"]).unwrap())
            .build()
            .unwrap();
        let fields_of = |list: &[(&str, &str)], peer: [u8; 4]| {
            let map = headers(list);
            let (decision, _) = config
                .decide_request(&map, || Some(IpAddr::from(peer)))
                .unwrap();
            decision.fields().to_string()
        };
        let _attached = opentelemetry::Context::current_with_baggage([
            KeyValue::new("tenant", "from-otel"),
            KeyValue::new("user", "otel-user"),
            KeyValue::new("plan", "pro"),
        ])
        .attach();
        assert_eq!(
            fields_of(&[], [127, 0, 0, 1]),
            "tenant=from-otel user=otel-user"
        );
        assert_eq!(
            fields_of(&[("baggage", "user=from-header")], [127, 0, 0, 1]),
            "user=from-header tenant=from-otel"
        );
        assert_eq!(fields_of(&[], [127, 0, 0, 2]), "");
    }
}
