//! The request and response headers that follow from the decision.

use http::header::Entry;
use http::{HeaderMap, HeaderName};

use super::{CorrelationConfig, Decision, Outcome};
use crate::id::CorrelationId;

impl CorrelationConfig {
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
}

#[cfg(test)]
mod tests {
    use super::super::OnInvalid;
    use super::super::test_support::{VALID, headers};
    use super::*;

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
}
