//! The MQTT integration.
