//! RabbitMQ and other AMQP 0-9-1 brokers (`lapin`): the correlation ID in the message's
//! header table, as long strings.
//!
//! A string (long or short) or byte-array value is read as the ID; a value of another
//! type (a number, say) counts as invalid and is replaced.

use ::lapin::BasicProperties;
use ::lapin::message::Delivery;
use ::lapin::types::{AMQPValue, FieldTable, LongString};

use super::message::MessageHeaders;
use super::message::sealed::{Carried, Sealed};

impl MessageHeaders for FieldTable {}

impl Sealed for FieldTable {
    fn find(&self, name: &str) -> Option<Carried<'_>> {
        self.inner()
            .iter()
            .find(|(key, _)| key.as_str().eq_ignore_ascii_case(name))
            .map(|(_, value)| match value {
                AMQPValue::LongString(value) => Carried::Bytes(value.as_bytes()),
                AMQPValue::ShortString(value) => Carried::Bytes(value.as_str().as_bytes()),
                AMQPValue::ByteArray(value) => Carried::Bytes(value.as_slice()),
                _ => Carried::Unusable,
            })
    }

    fn set(&mut self, name: &str, value: &str) {
        self.insert(name.into(), AMQPValue::LongString(LongString::from(value)));
    }
}

/// The properties' header table; other headers and properties are kept.
impl MessageHeaders for BasicProperties {}

impl Sealed for BasicProperties {
    fn find(&self, name: &str) -> Option<Carried<'_>> {
        self.headers().as_ref()?.find(name)
    }

    fn set(&mut self, name: &str, value: &str) {
        let mut headers = self.headers().clone().unwrap_or_default();
        headers.set(name, value);
        *self = std::mem::take(self).with_headers(headers);
    }
}

impl MessageHeaders for Delivery {}

impl Sealed for Delivery {
    fn find(&self, name: &str) -> Option<Carried<'_>> {
        self.properties.find(name)
    }

    fn set(&mut self, name: &str, value: &str) {
        self.properties.set(name, value);
    }
}
