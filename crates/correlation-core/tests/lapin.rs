//! The RabbitMQ integration.
