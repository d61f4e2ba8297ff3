//! MQTT v5 (`rumqttc`'s `v5` client): the correlation ID in a message's user properties.
//!
//! User properties are MQTT 5's message headers: any number of UTF-8 key-value pairs on
//! a `PUBLISH`, forwarded by the broker to every subscriber. MQTT 3.1.1 has no place for
//! them, so this needs a v5 connection (`rumqttc::v5::AsyncClient`).

use rumqttc::v5::mqttbytes::v5::{Publish, PublishProperties};

use super::message::MessageHeaders;
use super::message::sealed::{Carried, Sealed};

impl MessageHeaders for PublishProperties {}

impl Sealed for PublishProperties {
    fn find(&self, name: &str) -> Option<Carried<'_>> {
        self.user_properties
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| Carried::Bytes(value.as_bytes()))
    }

    fn set(&mut self, name: &str, value: &str) {
        let pairs = &mut self.user_properties;
        pairs.retain(|(key, _)| !key.eq_ignore_ascii_case(name));
        pairs.push((name.to_owned(), value.to_owned()));
    }
}

impl MessageHeaders for Publish {}

impl Sealed for Publish {
    fn find(&self, name: &str) -> Option<Carried<'_>> {
        self.properties.as_ref()?.find(name)
    }

    fn set(&mut self, name: &str, value: &str) {
        self.properties
            .get_or_insert_with(PublishProperties::default)
            .set(name, value);
    }
}
