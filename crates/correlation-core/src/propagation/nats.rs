//! NATS (`async-nats`): the correlation ID in message headers, for core NATS and
//! JetStream alike (a JetStream message holds the core message in its `message` field).

use async_nats::{HeaderMap, Message};

use super::message::MessageHeaders;
use super::message::sealed::{Carried, Sealed};

impl MessageHeaders for HeaderMap {}

impl Sealed for HeaderMap {
    fn find(&self, name: &str) -> Option<Carried<'_>> {
        self.iter().find_map(|(key, values)| {
            let key: &str = key.as_ref();
            let first = values.first()?;
            key.eq_ignore_ascii_case(name)
                .then(|| Carried::Bytes(first.as_str().as_bytes()))
        })
    }

    fn set(&mut self, name: &str, value: &str) {
        self.insert(name, value);
    }
}

impl MessageHeaders for Message {}

impl Sealed for Message {
    fn find(&self, name: &str) -> Option<Carried<'_>> {
        self.headers.as_ref()?.find(name)
    }

    fn set(&mut self, name: &str, value: &str) {
        self.headers
            .get_or_insert_with(HeaderMap::new)
            .set(name, value);
    }
}
