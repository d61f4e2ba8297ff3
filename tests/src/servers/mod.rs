//! One starter per adapter: `start(config)` serves that adapter's demo app on
//! `127.0.0.1:0` and returns the running [`TestServer`](crate::TestServer).

#[cfg(feature = "actix")]
pub mod actix;
#[cfg(feature = "axum")]
pub mod axum;
#[cfg(feature = "poem")]
pub mod poem;
