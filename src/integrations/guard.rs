//! The SSRF guard: which addresses outgoing HTTP may reach.
//!
//! A definition names URLs, and whoever writes definitions must not be able to make the server
//! talk to itself or its network: loopback, private ranges, link-local (169.254.0.0/16, where
//! cloud metadata services live), carrier-grade NAT, multicast, unspecified and reserved
//! addresses, IPv6 unique-local and link-local, and IPv4 addresses dressed as IPv6 (mapped,
//! compatible, NAT64) are refused unless the configuration allow-lists them.
//!
//! The check happens where the address is chosen, not before: [`GuardedResolver`] is the HTTP
//! client's DNS resolver, so a name is resolved once, every address is vetted, and the client
//! connects only to the vetted ones (no second resolution a DNS rebinding could answer
//! differently). IP literals never reach a resolver, so [`AddressPolicy::check_url`] vets them
//! before a request is made. Either way a refused address never sees a packet.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why an address was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum Refused {
    /// The address is in a range outgoing requests may not reach, e.g. `127.0.0.1` (loopback),
    /// `169.254.169.254` (link-local: cloud metadata), `10.0.0.1` (private).
    #[error("refused to connect to {address} ({range}): not allow-listed")]
    #[diagnostic(
        code(crm::integrations::address_refused),
        help("allow-list the address or host in the worker's configuration if it is meant to be reached")
    )]
    Address {
        /// The address.
        address: IpAddr,
        /// The kind of range, e.g. "loopback".
        range: &'static str,
        /// The host name it was resolved from, if any.
        host: Option<String>,
    },

    /// A URL that is not `http` or `https`, or has no host, e.g. `file:///etc/passwd`.
    #[error("refused URL: {reason}")]
    #[diagnostic(code(crm::integrations::url_refused))]
    Url {
        /// What is wrong with it.
        reason: String,
    },

    /// The name does not resolve to any address.
    #[error("`{host}` does not resolve")]
    #[diagnostic(code(crm::integrations::unresolved))]
    Unresolved {
        /// The host name.
        host: String,
    },
}

/// One allow-list entry: an address, a network (`10.1.0.0/16`), or a host name (`localhost`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Allowed {
    /// Every address of this network.
    Network {
        /// Its first address.
        address: IpAddr,
        /// Prefix length.
        prefix: u8,
    },
    /// Every address this name resolves to.
    Host(String),
}

impl Allowed {
    /// Parses `127.0.0.1`, `::1`, `10.0.0.0/8`, `fd00::/8` or a host name.
    pub fn parse(text: &str) -> Result<Self, Refused> {
        let text = text.trim();
        let bad = |reason: &str| Refused::Url { reason: format!("allow-list entry `{text}`: {reason}") };
        if let Some((address, prefix)) = text.split_once('/') {
            let address: IpAddr = address.parse().map_err(|_| bad("not an address"))?;
            let max = if address.is_ipv4() { 32 } else { 128 };
            let prefix: u8 = prefix.parse().ok().filter(|p| *p <= max).ok_or_else(|| bad("bad prefix"))?;
            return Ok(Self::Network { address, prefix });
        }
        let bare = text.trim_start_matches('[').trim_end_matches(']');
        if let Ok(address) = bare.parse::<IpAddr>() {
            let prefix = if address.is_ipv4() { 32 } else { 128 };
            return Ok(Self::Network { address, prefix });
        }
        if text.is_empty() || text.contains(|c: char| c.is_whitespace() || c == '/' || c == ':') {
            return Err(bad("neither an address, a network nor a host name"));
        }
        Ok(Self::Host(text.to_ascii_lowercase()))
    }

    fn contains(&self, host: Option<&str>, address: IpAddr) -> bool {
        match self {
            Self::Host(name) => host.is_some_and(|h| h.eq_ignore_ascii_case(name)),
            Self::Network { address: network, prefix } => in_network(address, *network, *prefix),
        }
    }
}

/// Which addresses outgoing requests may reach: every public address, plus what is allow-listed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    allow: Vec<Allowed>,
}

impl AddressPolicy {
    /// Public addresses only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Public addresses and those `allow` lists.
    pub fn with_allowed(allow: Vec<Allowed>) -> Self {
        Self { allow }
    }

    /// `Ok` when a request may connect to `address`, resolved from `host` (`None`: an IP literal).
    pub fn check(&self, host: Option<&str>, address: IpAddr) -> Result<(), Refused> {
        let Some(range) = forbidden_range(address) else { return Ok(()) };
        if self.allow.iter().any(|a| a.contains(host, address)) {
            return Ok(());
        }
        Err(Refused::Address { address, range, host: host.map(str::to_owned) })
    }

    /// Vets a URL before a request: `http`/`https` with a host, and an IP-literal host must pass
    /// [`check`](Self::check) (names are vetted by [`GuardedResolver`] when they are resolved).
    pub fn check_url(&self, url: &Url) -> Result<(), Refused> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refused::Url { reason: format!("scheme `{}` is not http or https", url.scheme()) });
        }
        let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
            return Err(Refused::Url { reason: "no host".to_owned() });
        };
        // The URL parser has normalised every IPv4 spelling (`2130706433`, `0x7f.1`) to dotted
        // form and IPv6 to brackets.
        match host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            Ok(address) => self.check(None, address),
            Err(_) => Ok(()),
        }
    }
}

/// The kind of range `address` is in when outgoing requests may not reach it by default.
pub fn forbidden_range(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(v4: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = v4.octets();
    Some(match (a, b, c) {
        _ if v4.is_unspecified() || a == 0 => "unspecified",
        _ if v4.is_loopback() => "loopback",
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => "private",
        (169, 254, _) => "link-local (cloud metadata)",
        (100, 64..=127, _) => "carrier-grade NAT",
        (192, 0, 0) => "IETF protocol assignments",
        (198, 18..=19, _) => "benchmarking",
        _ if v4.is_multicast() => "multicast",
        _ if v4.is_broadcast() || a >= 240 => "reserved",
        _ => return None,
    })
}

fn forbidden_v6(v6: Ipv6Addr) -> Option<&'static str> {
    let segments = v6.segments();
    Some(match segments {
        _ if v6.is_unspecified() => "unspecified",
        _ if v6.is_loopback() => "loopback",
        [0, 0, 0, 0, 0, 0xffff, _, _] => "IPv4-mapped",
        // ::a.b.c.d (deprecated IPv4-compatible) and 64:ff9b::/96 (NAT64) reach IPv4 hosts.
        [0, 0, 0, 0, 0, 0, _, _] => "IPv4-compatible",
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => "NAT64",
        [first, ..] if first & 0xfe00 == 0xfc00 => "unique local",
        [first, ..] if first & 0xffc0 == 0xfe80 => "link-local",
        [first, ..] if first & 0xffc0 == 0xfec0 => "site-local",
        [first, ..] if first & 0xff00 == 0xff00 => "multicast",
        // 6to4 embeds an IPv4 address; refuse it when that one is refused.
        [0x2002, high, low, ..] => {
            let [a, b] = high.to_be_bytes();
            let [c, d] = low.to_be_bytes();
            return forbidden_v4(Ipv4Addr::new(a, b, c, d)).map(|_| "6to4 of a refused IPv4 address");
        }
        _ => return None,
    })
}

fn in_network(address: IpAddr, network: IpAddr, prefix: u8) -> bool {
    match (address, network) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// The addresses of a host name: the system resolver, or a fixed table in tests.
pub trait Lookup: Send + Sync {
    /// Every address `host` resolves to.
    fn lookup(&self, host: &str) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>>;
}

/// The operating system's resolver.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, host: &str) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>> {
        let host = host.to_owned();
        Box::pin(async move {
            let addresses = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addresses.map(|a| a.ip()).collect())
        })
    }
}

/// A fixed table of names, for tests: a name it does not list does not resolve.
#[derive(Clone, Debug, Default)]
pub struct StaticLookup(pub Vec<(String, Vec<IpAddr>)>);

impl Lookup for StaticLookup {
    fn lookup(&self, host: &str) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>> {
        let found = self.0.iter().find(|(name, _)| name.eq_ignore_ascii_case(host)).map(|(_, a)| a.clone());
        Box::pin(async move { Ok(found.unwrap_or_default()) })
    }
}

/// The HTTP client's resolver: resolves once through its [`Lookup`], refuses the name if any of
/// its addresses is refused, and hands the client exactly the vetted addresses to connect to.
pub struct GuardedResolver {
    policy: Arc<AddressPolicy>,
    lookup: Arc<dyn Lookup>,
}

impl GuardedResolver {
    /// A resolver vetting what `lookup` answers against `policy`.
    pub fn new(policy: Arc<AddressPolicy>, lookup: Arc<dyn Lookup>) -> Self {
        Self { policy, lookup }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let (policy, lookup) = (self.policy.clone(), self.lookup.clone());
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses = lookup.lookup(&host).await?;
            if addresses.is_empty() {
                return Err(
                    Box::new(Refused::Unresolved { host }) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            // All or nothing: a name with one private address among public ones is refused, so a
            // client that would try them in turn never reaches the private one.
            for &address in &addresses {
                policy.check(Some(&host), address)?;
            }
            let addrs: Addrs = Box::new(addresses.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// The guard's refusal somewhere in an error's source chain (a request refused at resolution).
pub fn refusal<'e>(error: &'e (dyn std::error::Error + 'static)) -> Option<&'e Refused> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(refused) = e.downcast_ref::<Refused>() {
            return Some(refused);
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        for (text, range) in [
            ("127.0.0.1", Some("loopback")),
            ("10.0.0.1", Some("private")),
            ("169.254.169.254", Some("link-local (cloud metadata)")),
            ("100.64.0.1", Some("carrier-grade NAT")),
            ("0.0.0.0", Some("unspecified")),
            ("::1", Some("loopback")),
            ("::ffff:127.0.0.1", Some("IPv4-mapped")),
            ("::ffff:8.8.8.8", Some("IPv4-mapped")),
            ("fd12::1", Some("unique local")),
            ("fe80::1", Some("link-local")),
            ("2002:7f00:1::", Some("6to4 of a refused IPv4 address")),
            ("8.8.8.8", None),
            ("2606:4700::1111", None),
        ] {
            let address: IpAddr = text.parse().unwrap();
            assert_eq!(forbidden_range(address), range, "{text}");
        }
    }

    #[test]
    fn allow_list() {
        let policy = AddressPolicy::with_allowed(vec![
            Allowed::parse("127.0.0.1").unwrap(),
            Allowed::parse("10.1.0.0/16").unwrap(),
            Allowed::parse("internal.test").unwrap(),
        ]);
        let ip = |t: &str| t.parse::<IpAddr>().unwrap();
        assert!(policy.check(None, ip("127.0.0.1")).is_ok());
        assert!(policy.check(None, ip("127.0.0.2")).is_err());
        assert!(policy.check(None, ip("10.1.200.3")).is_ok());
        assert!(policy.check(None, ip("10.2.0.1")).is_err());
        assert!(policy.check(Some("internal.test"), ip("192.168.1.1")).is_ok());
        assert!(Allowed::parse("10.0.0.0/33").is_err());
    }
}
