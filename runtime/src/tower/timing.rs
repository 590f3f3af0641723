//! `Server-Timing` on responses: which requests get it ([`ServerTiming`]),
//! and the header itself.

use super::arrival::Arrival;
use crate::snapshot::Snapshot;
use http::header::{HeaderName, HeaderValue};
use http::request::Parts;
use ipnet::IpNet;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

/// Which requests a [`HandlerLayer`](super::HandlerLayer) tells how long
/// their handler took, in the W3C `Server-Timing` response header, and
/// what it tells them.
///
/// The header says how long the handler took, how much of that was its own
/// work and how much its dependencies', and (with
/// [`with_dependencies`](Self::with_dependencies)) the name of each
/// dependency: things a stranger should not learn. So it goes only to
/// requests a policy trusts: ones that carry a header of your choosing
/// (set by your gateway, or by your browser during an investigation), ones
/// from networks you name (your own callers' subnets), or ones a function
/// of yours approves.
///
/// The metrics are [`SERVER_TIMING`](crate::SERVER_TIMING), with `dur` in
/// milliseconds, figures so far at the response head:
/// `Server-Timing: total;dur=12.345, internal;dur=2.101, external;dur=10.244`.
/// A caller measured by selftime (its `reqwest` middleware or `tower`
/// client layers) reads `total` and splits its call into the dependency's
/// own time and the time *between* (see the [crate
/// docs](crate#server-timing-the-time-between)).
///
/// # Examples
///
/// ```
/// use selftime::tower::{HandlerLayer, ServerTiming};
///
/// # fn main() -> Result<(), selftime::tower::InvalidServerTiming> {
/// // Callers on the service network, and nobody else.
/// let layer = HandlerLayer::matched_path()
///     .server_timing(ServerTiming::for_peers(["10.0.0.0/8", "127.0.0.1/32"])?);
/// # let _ = layer;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct ServerTiming {
    trust: Trust,
    dependencies: bool,
}

#[derive(Clone)]
enum Trust {
    Header(HeaderName, HeaderValue),
    Peers(Arc<[IpNet]>),
    When(fn(&Parts) -> bool),
}

impl fmt::Debug for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The value may be a secret: not printed.
            Self::Header(name, _) => f.debug_tuple("Header").field(name).finish_non_exhaustive(),
            Self::Peers(networks) => f.debug_tuple("Peers").field(networks).finish(),
            Self::When(_) => f.write_str("When(..)"),
        }
    }
}

/// A [`ServerTiming`] policy that cannot be built: a header name or value
/// that HTTP does not allow, or a network that is not one (`10.0.0.0/8`,
/// `::1/128`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidServerTiming(String);

impl fmt::Display for InvalidServerTiming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidServerTiming {}

impl ServerTiming {
    /// For requests that carry the header `name` with exactly `value`: a
    /// header your gateway adds for trusted callers, or a secret you send
    /// from a browser while you investigate.
    ///
    /// # Errors
    ///
    /// When `name` or `value` is not a valid header name or value.
    pub fn for_header(name: &str, value: &str) -> Result<Self, InvalidServerTiming> {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| InvalidServerTiming(format!("`{name}` is not a header name")))?;
        let value = HeaderValue::from_str(value).map_err(|_| {
            InvalidServerTiming(format!("the value for `{name}` is not a header value"))
        })?;
        Ok(Self::trusting(Trust::Header(header, value)))
    }

    /// For requests whose peer (the address of the connection's other end)
    /// is in one of `networks`, written as CIDR (`"10.0.0.0/8"`,
    /// `"fd00::/8"`, `"127.0.0.1/32"`). An IPv4 peer seen by a dual-stack
    /// listener (`::ffff:10.1.2.3`) counts as its IPv4 address.
    ///
    /// The peer is known behind an [`ArrivalListener`](super::ArrivalListener)
    /// (axum's `ConnectInfo<Arrival>`, tonic's `incoming()`) or axum's
    /// `ConnectInfo<SocketAddr>`; a request whose peer is not known is not
    /// trusted. Behind a proxy, the peer is the proxy.
    ///
    /// # Errors
    ///
    /// When a network cannot be read.
    pub fn for_peers<I>(networks: I) -> Result<Self, InvalidServerTiming>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let networks = networks
            .into_iter()
            .map(|text| {
                let text = text.as_ref();
                text.parse::<IpNet>().map_err(|_| {
                    InvalidServerTiming(format!(
                        "`{text}` is not a network: write one as `10.0.0.0/8` or `::1/128`"
                    ))
                })
            })
            .collect::<Result<Arc<[IpNet]>, _>>()?;
        Ok(Self::trusting(Trust::Peers(networks)))
    }

    /// For requests that `trusted` approves, from their head (method, URI,
    /// headers, extensions).
    #[must_use]
    pub fn when(trusted: fn(&Parts) -> bool) -> Self {
        Self::trusting(Trust::When(trusted))
    }

    /// Adds each dependency's time so far, as a `dependency` metric named in
    /// its `desc` (`dependency;desc="redis";dur=3.210`): it names what the
    /// service calls, so it is off unless asked for.
    #[must_use]
    pub fn with_dependencies(mut self) -> Self {
        self.dependencies = true;
        self
    }

    fn trusting(trust: Trust) -> Self {
        Self {
            trust,
            dependencies: false,
        }
    }

    /// For a request this policy trusts: whether to name the dependencies.
    pub(crate) fn decide(&self, parts: &Parts) -> Option<bool> {
        let trusted = match &self.trust {
            Trust::Header(name, value) => parts.headers.get_all(name).iter().any(|v| v == value),
            Trust::Peers(networks) => peer(&parts.extensions).is_some_and(|peer| {
                let ip = peer.ip().to_canonical();
                networks.iter().any(|net| net.contains(&ip))
            }),
            Trust::When(trusted) => trusted(parts),
        };
        trusted.then_some(self.dependencies)
    }
}

/// The address of the request's peer, where the server put it.
fn peer(extensions: &http::Extensions) -> Option<SocketAddr> {
    #[cfg(feature = "axum")]
    {
        use axum::extract::ConnectInfo;
        if let Some(ConnectInfo(arrival)) = extensions.get::<ConnectInfo<Arrival>>() {
            return Some(arrival.remote_addr());
        }
        if let Some(ConnectInfo(addr)) = extensions.get::<ConnectInfo<SocketAddr>>() {
            return Some(*addr);
        }
    }
    extensions.get::<Arrival>().map(Arrival::remote_addr)
}

/// The header for a handler's figures so far.
pub(crate) fn header(snapshot: &Snapshot, dependencies: bool) -> Option<HeaderValue> {
    let mut text = String::with_capacity(96);
    let deps = snapshot
        .dependencies()
        .filter(|_| dependencies)
        .map(|dep| (dep.name(), nanos(dep.duration())));
    crate::timing::write(
        &mut text,
        nanos(snapshot.total()),
        nanos(snapshot.internal()),
        nanos(snapshot.external()),
        deps,
    );
    HeaderValue::from_str(&text).ok()
}

fn nanos(d: std::time::Duration) -> u64 {
    d.as_nanos().try_into().unwrap_or(u64::MAX)
}
