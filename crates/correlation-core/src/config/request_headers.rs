//! The rules for the request and response headers, in one place for every framework.
//!
//! The first incoming name present decides, and of its values the first one counts. Once
//! the ID is decided the request carries exactly one header with it, under the first
//! incoming name: the final ID is written there and the other incoming names are
//! removed, unless the request already holds exactly that (the common case of an accepted
//! ID), the request is rejected or updates are turned off. Responses carry exactly one
//! header with the final ID.
//!
//! The decision (`decision`) gives a [`RequestHeaderPlan`]; this module applies it to
//! `http::HeaderMap`, and an adapter over another header map applies it to its own.

use std::net::IpAddr;

use http::HeaderMap;
#[cfg(test)]
use http::HeaderValue;

use super::decision::shared;
use super::{CorrelationConfig, Decision};
use crate::id::CorrelationId;
use crate::trust::PeerAddressUnavailable;

/// What to do to a request's headers once its ID is decided: see
/// [`adapter::decide_request`](crate::adapter::decide_request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "the request headers are only updated by applying the plan"]
pub struct RequestHeaderPlan {
    pub(super) write_id: bool,
    pub(super) remove_others: bool,
    pub(super) id_is_incoming: bool,
}

impl RequestHeaderPlan {
    /// Leaves the headers as they are.
    pub(super) const KEEP: Self = Self {
        write_id: false,
        remove_others: false,
        id_is_incoming: false,
    };

    /// Whether the final ID is to be written under the first incoming name
    /// ([`request_header_name`](CorrelationConfig::request_header_name)), replacing
    /// every value there.
    pub fn write_id(&self) -> bool {
        self.write_id
    }

    /// Whether the other incoming names (all but the first) are to be removed.
    pub fn remove_others(&self) -> bool {
        self.remove_others
    }

    /// Whether the final ID is, byte for byte, the value found alone under the first
    /// incoming name: an adapter that keeps that value in its own header type can echo it
    /// as it is, without converting the ID back. `false` does not say the two differ.
    pub fn id_is_incoming(&self) -> bool {
        self.id_is_incoming
    }
}

impl CorrelationConfig {
    /// The decision on `http::HeaderMap`, with the plan applied; `peer` is asked only when
    /// the trust policy needs it.
    pub(crate) fn decide_and_update(
        &self,
        headers: &mut HeaderMap,
        peer: impl FnOnce() -> Option<IpAddr>,
    ) -> Result<Decision, PeerAddressUnavailable> {
        let (decision, plan) = self.decide_request(&*headers, peer)?;
        if plan.remove_others() {
            for name in &self.inner.incoming[1..] {
                headers.remove(name);
            }
        }
        if !plan.write_id() {
            return Ok(decision);
        }
        // The request's header and the ID (which the echo writes) share one buffer.
        let decision = shared(decision);
        headers.insert(
            self.inner.incoming[0].clone(),
            decision.id.to_header_value(),
        );
        Ok(decision)
    }

    /// Makes the response headers carry exactly one header with the final ID, and one
    /// with the hop ID when hop IDs are on, replacing any the handler set. Does nothing
    /// when echo is turned off.
    pub(crate) fn echo_response_headers(
        &self,
        headers: &mut HeaderMap,
        id: &CorrelationId,
        hop_id: Option<&CorrelationId>,
    ) {
        if !self.inner.echo_response_header {
            return;
        }
        headers.insert(self.inner.response.clone(), id.to_header_value());
        if let (Some(name), Some(hop_id)) = (&self.inner.hop, hop_id) {
            headers.insert(name.clone(), hop_id.to_header_value());
        }
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderName;

    use super::super::test_support::{VALID, headers};
    use super::super::{FirstValue, OnInvalid, Outcome, RequestHeaders};
    use super::*;

    /// A request carrying `value` under the configuration's incoming name at `index`.
    struct Under<'a> {
        name: &'a HeaderName,
        value: FirstValue<'a>,
    }

    impl RequestHeaders for Under<'_> {
        fn first_value(&self, name: &HeaderName) -> Option<FirstValue<'_>> {
            (name == self.name).then_some(self.value)
        }
    }

    fn decide_found(
        config: &CorrelationConfig,
        found: Option<(FirstValue<'_>, usize)>,
    ) -> (Decision, RequestHeaderPlan) {
        let result = match found {
            Some((value, index)) => config.decide_request(
                &Under {
                    name: &config.incoming_header_names()[index],
                    value,
                },
                || None,
            ),
            None => config.decide_request(&HeaderMap::new(), || None),
        };
        result.unwrap()
    }

    #[test]
    fn the_plan_writes_unless_the_request_holds_exactly_the_final_id() {
        const OTHER: &str = "9e6454c421d54e4aa66ab28f15576414";
        let two_names = CorrelationConfig::builder()
            .incoming_header_names(["X-Correlation-ID", "X-Request-ID"])
            .build()
            .unwrap();
        let valid = HeaderValue::from_static(VALID);
        let plan = |config: &CorrelationConfig, incoming| {
            let (_, plan) = decide_found(config, incoming);
            (plan.write_id(), plan.remove_others())
        };
        let default = CorrelationConfig::default();
        assert_eq!(plan(&default, None), (true, false));
        assert_eq!(
            plan(&default, Some((FirstValue::new(&valid, true), 0))),
            (false, false)
        );
        assert_eq!(
            plan(&default, Some((FirstValue::new(&valid, false), 0))),
            (true, false)
        );
        let bad = HeaderValue::from_static("bad");
        assert_eq!(
            plan(&default, Some((FirstValue::new(&bad, true), 0))),
            (true, false)
        );
        // The same rules on the bytes of another header type.
        assert_eq!(
            plan(
                &default,
                Some((FirstValue::from_bytes(VALID.as_bytes(), true), 0))
            ),
            (false, false)
        );
        assert_eq!(
            plan(&two_names, Some((FirstValue::new(&valid, true), 0))),
            (false, true)
        );
        assert_eq!(
            plan(&two_names, Some((FirstValue::new(&valid, true), 1))),
            (true, true)
        );
        let other = HeaderValue::from_static(OTHER);
        let (decision, _) = decide_found(&two_names, Some((FirstValue::new(&other, true), 1)));
        assert_eq!(decision.id, OTHER);

        let reject = CorrelationConfig::builder()
            .on_invalid(OnInvalid::Reject)
            .build()
            .unwrap();
        assert_eq!(
            plan(&reject, Some((FirstValue::new(&bad, true), 0))),
            (false, false)
        );
        let off = CorrelationConfig::builder()
            .update_request_header(false)
            .build()
            .unwrap();
        assert_eq!(plan(&off, None), (false, false));
    }

    #[test]
    fn the_plan_says_when_the_final_id_is_the_value_found_under_the_first_name() {
        let is_incoming = |config: &CorrelationConfig, pairs: &[(&str, &str)]| {
            let (decision, plan) = config.decide_request(&headers(pairs), || None).unwrap();
            (decision.outcome, plan.id_is_incoming())
        };
        let default = CorrelationConfig::default();
        let valid = [("x-request-id", VALID)];
        assert_eq!(is_incoming(&default, &valid), (Outcome::Accepted, true));
        assert_eq!(is_incoming(&default, &[]), (Outcome::Generated, false));
        assert_eq!(
            is_incoming(&default, &[("x-request-id", "bad")]),
            (Outcome::Replaced, false)
        );
        // Not alone: the request's header is rewritten, so its value is not the ID's.
        assert_eq!(
            is_incoming(
                &default,
                &[("x-request-id", VALID), ("x-request-id", VALID)]
            ),
            (Outcome::Accepted, false)
        );
        // Under the second name: written anew under the first.
        let two_names = CorrelationConfig::builder()
            .incoming_header_names(["X-Correlation-ID", "X-Request-ID"])
            .build()
            .unwrap();
        assert_eq!(is_incoming(&two_names, &valid), (Outcome::Accepted, false));
        // The general rules (a transformer, a trust policy) give the same answer.
        let transformed = CorrelationConfig::builder()
            .transformer(|id: &str| id.to_owned())
            .build()
            .unwrap();
        assert_eq!(is_incoming(&transformed, &valid), (Outcome::Accepted, true));
        let uppercase = CorrelationConfig::builder()
            .transformer(|id: &str| id.to_ascii_uppercase())
            .build()
            .unwrap();
        assert_eq!(is_incoming(&uppercase, &valid), (Outcome::Accepted, false));
        let never = CorrelationConfig::builder()
            .trust(crate::TrustPolicy::Never)
            .build()
            .unwrap();
        assert_eq!(is_incoming(&never, &valid), (Outcome::Generated, false));
    }

    #[test]
    fn request_headers_end_up_with_exactly_one_final_id() {
        let config = CorrelationConfig::builder()
            .incoming_header_names(["X-Correlation-ID", "X-Request-ID"])
            .validator(crate::strategy::AnySafe)
            .build()
            .unwrap();
        let mut map = headers(&[
            ("x-correlation-id", "a"),
            ("x-correlation-id", "b"),
            ("x-request-id", "c"),
        ]);
        let decision = config.decide_and_update(&mut map, || None).unwrap();
        assert_eq!(decision.id, "a");
        assert_eq!(map.get_all("x-correlation-id").iter().count(), 1);
        assert_eq!(map["x-correlation-id"], "a");
        assert!(!map.contains_key("x-request-id"));
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
            let decision = config.decide_and_update(&mut map, || None).unwrap();
            assert_eq!(decision.outcome, outcome, "{pairs:?}");
            let values: Vec<_> = config
                .incoming_header_names()
                .iter()
                .flat_map(|name| map.get_all(name))
                .collect();
            assert_eq!(values, [decision.id.as_bytes()], "{pairs:?}");
            assert_eq!(map[name], decision.id.as_str(), "{pairs:?}");
        }

        // A rejected request is answered without reaching the handler: left untouched.
        let mut map = headers(&[("x-request-id", "bad")]);
        let decision = reject.decide_and_update(&mut map, || None).unwrap();
        assert_eq!(decision.outcome, Outcome::Rejected);
        assert_eq!(map["x-request-id"], "bad");

        // With request updates off, the headers stay as they came.
        let untouched = CorrelationConfig::builder()
            .update_request_header(false)
            .build()
            .unwrap();
        let mut map = headers(&[("x-request-id", "bad")]);
        let decision = untouched.decide_and_update(&mut map, || None).unwrap();
        assert_eq!(decision.outcome, Outcome::Replaced);
        assert_eq!(map["x-request-id"], "bad");
        let mut map = headers(&[]);
        assert_eq!(
            untouched
                .decide_and_update(&mut map, || None)
                .unwrap()
                .outcome,
            Outcome::Generated
        );
        assert!(map.is_empty());
    }

    #[test]
    fn echo_replaces_the_handlers_header_unless_turned_off() {
        let id = CorrelationId::from_static("final");
        let mut map = headers(&[("x-request-id", "from-handler"), ("x-request-id", "twice")]);
        CorrelationConfig::default().echo_response_headers(&mut map, &id, None);
        assert_eq!(
            map.get_all("x-request-id").iter().collect::<Vec<_>>(),
            ["final"]
        );

        let off = CorrelationConfig::builder()
            .echo_response_header(false)
            .build()
            .unwrap();
        let mut map = HeaderMap::new();
        off.echo_response_headers(&mut map, &id, None);
        assert!(map.is_empty());
    }
}
