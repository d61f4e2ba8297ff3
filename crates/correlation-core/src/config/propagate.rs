//! The ID on headers beyond the request: read from a queue's or a message's headers,
//! written on outgoing calls.

use http::HeaderMap;

use super::CorrelationConfig;
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
    pub fn inject_current(&self, headers: &mut HeaderMap) -> bool {
        match crate::context::current() {
            Some(id) => {
                headers.insert(self.inner.response.clone(), id.into());
                true
            }
            None => false,
        }
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
