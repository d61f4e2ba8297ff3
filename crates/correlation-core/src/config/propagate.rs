//! The ID on headers beyond the request: read from a queue's or a message's headers,
//! written on outgoing calls.

use http::{HeaderMap, HeaderValue};

use super::CorrelationConfig;
use crate::baggage::HEADER as BAGGAGE;
use crate::fields::Fields;
use crate::id::CorrelationId;

impl CorrelationConfig {
    /// Reads an ID from `headers` through the same validation as incoming requests,
    /// without generating one: for consumers of propagated IDs (jobs, messages).
    pub fn extract(&self, headers: &HeaderMap) -> Option<CorrelationId> {
        let value = self
            .inner
            .incoming
            .iter()
            .find_map(|name| headers.get(name))?;
        if !self
            .inner
            .validator
            .accepts(value.as_bytes(), self.inner.max_length)
        {
            return None;
        }
        let id = CorrelationId::from_checked_header_value(value);
        match &self.inner.transformer {
            None => Some(id),
            Some(transformer) => self.apply_transformer(&**transformer, id),
        }
    }

    /// Writes the current correlation ID (if any) into outgoing `headers` under the
    /// response header name, replacing any value there. Returns whether one was written.
    ///
    /// With [`baggage_keys`](crate::CorrelationConfigBuilder::baggage_keys), the current
    /// request's fields under those keys go into the `baggage` header too, added to the
    /// members of any the caller set (which win for a key they hold): one header, each
    /// member once.
    pub fn inject_current(&self, headers: &mut HeaderMap) -> bool {
        match crate::context::current() {
            Some(id) => {
                headers.insert(self.inner.response.clone(), id.into());
                self.inject_baggage(headers);
                true
            }
            None => false,
        }
    }

    /// Puts the current fields under the baggage keys into `headers`' `baggage` header,
    /// merged with the values there into one.
    fn inject_baggage(&self, headers: &mut HeaderMap) {
        if self.inner.baggage.is_none() {
            return;
        }
        let existing: Vec<&[u8]> = headers
            .get_all(&BAGGAGE)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect();
        let joined = existing.join(&b","[..]);
        let list = self.outgoing_baggage((!existing.is_empty()).then_some(&joined));
        if let Some(value) = list.and_then(|list| HeaderValue::try_from(list).ok()) {
            headers.insert(BAGGAGE.clone(), value);
        }
    }

    /// The baggage list to send: `existing` (the list the caller set, if any) with the
    /// current fields under the baggage keys it does not hold; `None` when there is
    /// nothing to add, or no baggage keys. A caller's list that is not text is left
    /// alone.
    pub(crate) fn outgoing_baggage(&self, existing: Option<&[u8]>) -> Option<String> {
        let baggage = self.inner.baggage.as_ref()?;
        let fields = Fields::current();
        if fields.is_empty() || existing.is_some_and(|list| std::str::from_utf8(list).is_err()) {
            return None;
        }
        crate::baggage::merged(
            existing,
            fields.iter().filter(|(key, _)| baggage.allows(key)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{VALID, headers};
    use super::*;
    use crate::context::sync_scope;

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
