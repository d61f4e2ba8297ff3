//! Whom to trust with the correlation ID: every client, none, or only the listed peers
//! (the load balancer, the mesh).

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

/// Whose incoming IDs (and trace context) are honoured.
///
/// A client that sets its own ID can pin one ID for all its requests, or collide with
/// other clients' IDs. Behind a load balancer or a service mesh that sets the ID, trust
/// only those peers; for a service that faces the internet directly, trust no one.
///
/// ```
/// use std::net::IpAddr;
/// use correlation_core::TrustPolicy;
///
/// let policy = TrustPolicy::from_peers(["10.0.0.0/8", "127.0.0.1"])?;
/// assert_eq!(policy.trusts(Some("10.1.2.3".parse::<IpAddr>()?)), Ok(true));
/// assert_eq!(policy.trusts(Some("127.0.0.2".parse::<IpAddr>()?)), Ok(false));
/// // An IPv4 peer seen on an IPv6 socket is the same peer.
/// assert_eq!(policy.trusts(Some("::ffff:10.1.2.3".parse::<IpAddr>()?)), Ok(true));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrustPolicy {
    /// Honour every client's incoming ID (the default, as asgi-correlation-id and
    /// tower-http do).
    #[default]
    Always,
    /// Honour none: every request gets a generated ID (as poem's and
    /// actix-request-identifier's defaults do).
    Never,
    /// Honour incoming IDs only from peers whose address is in one of these networks.
    FromPeers(Arc<[IpNet]>),
}

/// A network of [`TrustPolicy::from_peers`] that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{network}` is not a network (`10.0.0.0/8`, `fd00::/8`) or an address")]
pub struct InvalidNetwork {
    network: String,
}

/// The connection's peer address was needed by [`TrustPolicy::FromPeers`] and the
/// framework did not provide it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the trust policy needs the connection's peer address, which is not available")]
#[non_exhaustive]
pub struct PeerAddressUnavailable;

impl TrustPolicy {
    /// Trusts the peers in `networks`: CIDR networks (`10.0.0.0/8`, `fd00::/8`) or single
    /// addresses (`127.0.0.1`, `::1`).
    ///
    /// # Errors
    ///
    /// [`InvalidNetwork`] for the first entry that is neither.
    pub fn from_peers<I>(networks: I) -> Result<Self, InvalidNetwork>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let networks = networks
            .into_iter()
            .map(|network| {
                let network = network.as_ref().trim();
                network
                    .parse::<IpNet>()
                    .or_else(|_| network.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| InvalidNetwork {
                        network: network.to_owned(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::FromPeers(networks.into()))
    }

    /// Whether a decision needs the connection's peer address.
    pub fn needs_peer_address(&self) -> bool {
        matches!(self, Self::FromPeers(_))
    }

    /// Whether the incoming ID of a connection from `peer` is honoured.
    ///
    /// # Errors
    ///
    /// [`PeerAddressUnavailable`] when the policy lists peers and `peer` is `None`: an
    /// adapter must then fail loudly rather than trust silently.
    pub fn trusts(&self, peer: Option<IpAddr>) -> Result<bool, PeerAddressUnavailable> {
        match self {
            Self::Always => Ok(true),
            Self::Never => Ok(false),
            Self::FromPeers(networks) => {
                let peer = peer.ok_or(PeerAddressUnavailable)?.to_canonical();
                Ok(networks.iter().any(|network| network.contains(&peer)))
            }
        }
    }
}

impl fmt::Debug for TrustPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Always => f.write_str("Always"),
            Self::Never => f.write_str("Never"),
            Self::FromPeers(networks) => f
                .debug_tuple("FromPeers")
                .field(&networks.iter().map(ToString::to_string).collect::<Vec<_>>())
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn always_and_never_need_no_address() {
        assert_eq!(TrustPolicy::Always.trusts(None), Ok(true));
        assert_eq!(TrustPolicy::Never.trusts(None), Ok(false));
        assert!(!TrustPolicy::Always.needs_peer_address());
    }

    #[test]
    fn listed_peers_need_an_address() {
        let policy = TrustPolicy::from_peers(["127.0.0.1/32"]).unwrap();
        assert!(policy.needs_peer_address());
        assert_eq!(policy.trusts(None), Err(PeerAddressUnavailable));
    }

    #[test]
    fn networks_and_single_addresses_parse_and_garbage_does_not() {
        let policy = TrustPolicy::from_peers(["10.0.0.0/8", " ::1 ", "fd00::/8"]).unwrap();
        assert_eq!(
            format!("{policy:?}"),
            r#"FromPeers(["10.0.0.0/8", "::1/128", "fd00::/8"])"#
        );
        for bad in ["10.0.0.0/33", "localhost", "", "10.0.0/8"] {
            let error = TrustPolicy::from_peers([bad]).unwrap_err();
            assert!(error.to_string().contains(bad.trim()), "{error}");
        }
    }

    proptest! {
        /// A peer is trusted exactly when one of the listed networks contains it.
        #[test]
        fn trust_is_membership(addr in any::<[u8; 4]>(), network in any::<[u8; 4]>(), prefix in 0u8..=32) {
            let listed = format!("{}/{prefix}", IpAddr::from(network));
            let policy = TrustPolicy::from_peers([&listed]).unwrap();
            let peer = IpAddr::from(addr);
            let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
            let inside = u32::from_be_bytes(addr) & mask == u32::from_be_bytes(network) & mask;
            prop_assert_eq!(policy.trusts(Some(peer)), Ok(inside));
        }
    }
}
