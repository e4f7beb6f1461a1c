//! `image_url` inputs: fetching an image over HTTP(S) without becoming a proxy into the server's
//! network (SSRF).
//!
//! Contracts:
//! - Nothing is fetched unless the operator allows it: `[fetch] enabled` and a URL under one of
//!   `allowed_url_prefixes`. Prefixes are matched on the parsed, normalised URL (WHATWG parsing:
//!   lower-case scheme and host, numeric IPv4 forms such as `127.1` or `0x7f000001` normalised,
//!   `.`/`..` segments resolved, default ports dropped): same scheme, host (a trailing dot ignored)
//!   and port, and the path under the prefix's path segment by segment (`/faces` allows `/faces` and
//!   `/faces/…`, never `/faces2`).
//! - Only `http` and `https`; a URL with user information (`user@host`) or an encoded `/` or `\` in
//!   its path is refused.
//! - Loopback, private, link-local, CGNAT, reserved and IPv4-mapped or -embedding IPv6 forms of
//!   those are refused unless `allow_private_addresses`; unspecified, multicast and broadcast
//!   addresses always. A host name is resolved once, inside the HTTP client's resolver, and every
//!   address it resolves to is checked there, so the client connects to exactly the checked
//!   addresses (no second lookup a rebinding DNS server could answer differently).
//! - No proxy, no redirects (a 3xx is an error), no retries, no content decoding. One deadline
//!   (`timeout_secs`) covers resolution, connection, headers and the whole body; the body is read
//!   chunk by chunk and abandoned past `max_bytes`, whatever `Content-Length` says.
//! - A refused URL is [`ServiceError::ImageUrlRefused`] (`FRS.0021`), a failed fetch
//!   [`ServiceError::ImageUrlFetchFailed`] (`FRS.0022`). Messages name only what the client sent;
//!   resolved addresses and transport details go to the log.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde::{Deserialize, Serialize};
use url::{Host, Url};

use crate::{MAX_IMAGE_BYTES, ServiceError};

/// The `[fetch]` section: which `image_url`s the server may fetch, and how.
///
/// The default fetches nothing (no allowed prefix): every URL is answered `FRS.0021` with a message
/// naming `[fetch] allowed_url_prefixes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FetchPolicy {
    /// `false` refuses every URL input.
    pub enabled: bool,
    /// URL prefixes images may be fetched from, such as `https://bucket.obs.example.com/faces/`:
    /// `http` or `https`, a host, an optional port and path; no user information, query or fragment.
    pub allowed_url_prefixes: Vec<String>,
    /// Allows loopback, private, link-local, CGNAT and reserved addresses (for an object store on
    /// the operator's own network). Unspecified, multicast and broadcast addresses stay refused.
    pub allow_private_addresses: bool,
    /// Deadline of one fetch in seconds: resolution, connection and the whole body.
    pub timeout_secs: u64,
    /// Largest body fetched, in bytes (at most the image limit, 8 MiB).
    pub max_bytes: usize,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        FetchPolicy {
            enabled: true,
            allowed_url_prefixes: Vec::new(),
            allow_private_addresses: false,
            timeout_secs: 5,
            max_bytes: MAX_IMAGE_BYTES,
        }
    }
}

/// A [`FetchPolicy`] that cannot be applied (names the key and the reason).
#[derive(Debug, thiserror::Error)]
#[error("[fetch] {0}")]
pub struct FetchPolicyError(String);

/// Fetches `image_url` inputs under one [`FetchPolicy`]. Built once at start; cheap to clone (the
/// clones share one HTTP client and its connection pool).
#[derive(Clone)]
pub struct ImageFetcher {
    inner: Arc<Fetcher>,
}

struct Fetcher {
    policy: FetchPolicy,
    prefixes: Vec<Url>,
    /// Absent when nothing can be fetched (disabled, or no prefix).
    client: Option<reqwest::Client>,
}

impl std::fmt::Debug for ImageFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageFetcher").field("policy", &self.inner.policy).finish_non_exhaustive()
    }
}

impl Default for ImageFetcher {
    /// The default policy: every URL refused.
    fn default() -> Self {
        ImageFetcher { inner: Arc::new(Fetcher { policy: FetchPolicy::default(), prefixes: Vec::new(), client: None }) }
    }
}

impl ImageFetcher {
    /// Validates the policy and builds the HTTP client (only when something is fetchable).
    pub fn new(policy: FetchPolicy) -> Result<ImageFetcher, FetchPolicyError> {
        if policy.timeout_secs == 0 {
            return Err(FetchPolicyError("timeout_secs must be at least 1".into()));
        }
        if policy.max_bytes == 0 || policy.max_bytes > MAX_IMAGE_BYTES {
            return Err(FetchPolicyError(format!("max_bytes must be between 1 and {MAX_IMAGE_BYTES}")));
        }
        let prefixes = policy.allowed_url_prefixes.iter().map(|p| parse_prefix(p)).collect::<Result<Vec<_>, _>>()?;
        let client = if policy.enabled && !prefixes.is_empty() {
            let client = reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .retry(reqwest::retry::never())
                .referer(false)
                .dns_resolver(CheckingResolver { allow_private: policy.allow_private_addresses })
                .user_agent(concat!("frs/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| FetchPolicyError(format!("the HTTP client could not be built: {e}")))?;
            Some(client)
        } else {
            None
        };
        Ok(ImageFetcher { inner: Arc::new(Fetcher { policy, prefixes, client }) })
    }

    /// The policy this fetcher applies.
    pub fn policy(&self) -> &FetchPolicy {
        &self.inner.policy
    }

    /// Fetches the image at `url`, given as parameter `param` (for messages).
    pub async fn fetch(&self, url: &str, param: &'static str) -> Result<Vec<u8>, ServiceError> {
        let refused = |reason: String| ServiceError::ImageUrlRefused { param, reason };
        let url = self.check(url).map_err(refused)?;
        let Some(client) = &self.inner.client else {
            return Err(ServiceError::Internal("a fetchable URL without an HTTP client".into()));
        };
        let seconds = self.inner.policy.timeout_secs;
        let host = url.host_str().unwrap_or_default().to_owned();
        let outcome = tokio::time::timeout(Duration::from_secs(seconds), self.download(client, url)).await;
        let failure = match outcome {
            Ok(Ok(bytes)) => return Ok(bytes),
            Ok(Err(failure)) => failure,
            Err(_) => Failure::Failed(format!("no complete answer within {seconds} s"), "deadline".into()),
        };
        match failure {
            Failure::Refused => {
                tracing::info!(param, host, "image_url refused: the host resolves to a refused address");
                Err(refused(format!(
                    "the host {host} resolves to a non-public address (loopback, private, link-local or \
                     reserved), which this server does not fetch from"
                )))
            }
            Failure::Failed(reason, detail) => {
                tracing::info!(param, host, reason, detail, "image_url fetch failed");
                Err(ServiceError::ImageUrlFetchFailed { param, reason })
            }
        }
    }

    /// Parses `raw` and checks it against the policy (everything but the resolved addresses).
    fn check(&self, raw: &str) -> Result<Url, String> {
        let policy = &self.inner.policy;
        if !policy.enabled {
            return Err("fetching images by URL is disabled on this server ([fetch] enabled = false); send the \
                        image as base64 or as a file"
                .into());
        }
        if self.inner.prefixes.is_empty() {
            return Err("this server fetches images only from URL prefixes its operator allows, and none are \
                        configured ([fetch] allowed_url_prefixes); send the image as base64 or as a file"
                .into());
        }
        let mut url = Url::parse(raw).map_err(|_| "it is not a valid absolute URL".to_owned())?;
        check_shape(&url)?;
        if !self.inner.prefixes.iter().any(|prefix| under_prefix(prefix, &url)) {
            return Err("it is not under any URL prefix this server allows".into());
        }
        let literal = match url.host() {
            Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(Host::Domain(_)) | None => None,
        };
        if let Some(ip) = literal {
            let kind = classify(ip);
            if !kind.allowed(policy.allow_private_addresses) {
                return Err(format!("its host is {} address, which this server does not fetch from", kind.described()));
            }
        }
        url.set_fragment(None);
        Ok(url)
    }

    async fn download(&self, client: &reqwest::Client, url: Url) -> Result<Vec<u8>, Failure> {
        let max = self.inner.policy.max_bytes;
        let too_large = || Failure::Failed(format!("the image is larger than {max} bytes"), String::new());
        let mut response = client.get(url).send().await.map_err(|e| Failure::of(&e))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(Failure::Failed(
                format!("the server answered a redirect (HTTP {}), redirects are not followed", status.as_u16()),
                String::new(),
            ));
        }
        if !status.is_success() {
            return Err(Failure::Failed(format!("the server answered HTTP {}", status.as_u16()), String::new()));
        }
        let declared = response.content_length();
        if declared.is_some_and(|length| length > max as u64) {
            return Err(too_large());
        }
        // The declared length only sizes the buffer; the limit is enforced on what arrives.
        let mut body = Vec::with_capacity(declared.map_or(0, |length| (length as usize).min(max)));
        while let Some(chunk) = response.chunk().await.map_err(|e| Failure::of(&e))? {
            if body.len() + chunk.len() > max {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// How a download ended without an image.
enum Failure {
    /// The host resolved to an address the policy refuses.
    Refused,
    /// The reason for the client and a detail for the log.
    Failed(String, String),
}

impl Failure {
    fn of(error: &reqwest::Error) -> Failure {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(e) = source {
            if e.is::<RefusedAddress>() {
                return Failure::Refused;
            }
            source = e.source();
        }
        // Timeouts never come from the client: one deadline around the whole fetch covers them.
        let reason =
            if error.is_connect() { "the host could not be resolved or connected to" } else { "the transfer failed" };
        Failure::Failed(reason.into(), format!("{error:#}"))
    }
}

/// Refusal of the resolver: the host has an address the policy refuses.
#[derive(Debug, thiserror::Error)]
#[error("the host resolves to a refused address")]
struct RefusedAddress;

/// The client's only resolver: one lookup, every address checked, exactly those returned.
struct CheckingResolver {
    allow_private: bool,
}

impl Resolve for CheckingResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addresses.iter().any(|address| !classify(address.ip()).allowed(allow_private)) {
                return Err(Box::new(RefusedAddress) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

/// Checks an operator's prefix: an `http(s)` URL with a host and no user information, query or
/// fragment.
fn parse_prefix(prefix: &str) -> Result<Url, FetchPolicyError> {
    let bad = |why: &str| FetchPolicyError(format!("allowed_url_prefixes: {prefix:?} {why}"));
    let url = Url::parse(prefix).map_err(|e| bad(&format!("is not an absolute URL ({e})")))?;
    check_shape(&url).map_err(|why| bad(&why))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("has a query or a fragment"));
    }
    Ok(url)
}

/// What any fetched URL (and any prefix) must look like.
fn check_shape(url: &Url) -> Result<(), String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err("only http and https URLs are fetched".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("URLs with user information (user@host) are not accepted".into());
    }
    if url.host().is_none() {
        return Err("the URL has no host".into());
    }
    let path = url.path().to_ascii_lowercase();
    if path.contains("%2f") || path.contains("%5c") {
        return Err("an encoded / or \\ in the path is not accepted".into());
    }
    Ok(())
}

/// Whether `url` is under `prefix`: same scheme, host and port, and the path within the prefix's.
fn under_prefix(prefix: &Url, url: &Url) -> bool {
    prefix.scheme() == url.scheme()
        && host_key(prefix) == host_key(url)
        && prefix.port_or_known_default() == url.port_or_known_default()
        && path_within(prefix.path(), url.path())
}

/// The host for comparison: domains without a trailing dot (`example.com.` is `example.com`).
fn host_key(url: &Url) -> Option<Host<&str>> {
    url.host().map(|host| match host {
        Host::Domain(domain) => Host::Domain(domain.strip_suffix('.').unwrap_or(domain)),
        other => other,
    })
}

/// Whether `path` is `prefix` or below it, segment-wise.
fn path_within(prefix: &str, path: &str) -> bool {
    if prefix.ends_with('/') {
        path.starts_with(prefix)
    } else {
        path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

/// What an address is, for the fetch policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddressKind {
    Public,
    Loopback,
    Private,
    LinkLocal,
    /// 100.64.0.0/10, carrier-grade NAT.
    Shared,
    /// Documentation, benchmarking, protocol-assignment, deprecated and future-use ranges.
    Reserved,
    Unspecified,
    Multicast,
    Broadcast,
}

impl AddressKind {
    /// Whether a fetch may connect to an address of this kind.
    pub(crate) fn allowed(self, allow_private: bool) -> bool {
        match self {
            AddressKind::Public => true,
            AddressKind::Loopback
            | AddressKind::Private
            | AddressKind::LinkLocal
            | AddressKind::Shared
            | AddressKind::Reserved => allow_private,
            AddressKind::Unspecified | AddressKind::Multicast | AddressKind::Broadcast => false,
        }
    }

    fn described(self) -> &'static str {
        match self {
            AddressKind::Public => "a public",
            AddressKind::Loopback => "a loopback",
            AddressKind::Private => "a private",
            AddressKind::LinkLocal => "a link-local",
            AddressKind::Shared => "a shared (carrier-grade NAT)",
            AddressKind::Reserved => "a reserved",
            AddressKind::Unspecified => "an unspecified",
            AddressKind::Multicast => "a multicast",
            AddressKind::Broadcast => "a broadcast",
        }
    }
}

/// Classifies an address; IPv6 forms that carry an IPv4 address (mapped, NAT64, 6to4) are
/// classified by that address.
pub(crate) fn classify(ip: IpAddr) -> AddressKind {
    match ip {
        IpAddr::V4(ip) => classify_v4(ip),
        IpAddr::V6(ip) => classify_v6(ip),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressKind {
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        _ if ip.is_broadcast() => AddressKind::Broadcast,
        (0, _, _) => AddressKind::Unspecified,
        (127, _, _) => AddressKind::Loopback,
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => AddressKind::Private,
        (169, 254, _) => AddressKind::LinkLocal,
        (100, 64..=127, _) => AddressKind::Shared,
        (224..=239, _, _) => AddressKind::Multicast,
        (240..=255, _, _) | (192, 0, 0 | 2) | (192, 88, 99) | (198, 18..=19, _) | (198, 51, 100) | (203, 0, 113) => {
            AddressKind::Reserved
        }
        _ => AddressKind::Public,
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressKind {
    let s = ip.segments();
    let embedded = |high: u16, low: u16| Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
    if ip.is_unspecified() {
        AddressKind::Unspecified
    } else if ip.is_loopback() {
        AddressKind::Loopback
    } else if let Some(v4) = ip.to_ipv4_mapped() {
        classify_v4(v4)
    } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64 well-known prefix 64:ff9b::/96.
        classify_v4(embedded(s[6], s[7]))
    } else if s[0] == 0x2002 {
        // 6to4: 2002:V4ADDR::/48.
        classify_v4(embedded(s[1], s[2]))
    } else if s[0] & 0xff00 == 0xff00 {
        AddressKind::Multicast
    } else if s[0] & 0xffc0 == 0xfe80 {
        AddressKind::LinkLocal
    } else if s[0] & 0xfe00 == 0xfc00 || s[0] & 0xffc0 == 0xfec0 {
        // Unique local fc00::/7 and the deprecated site-local fec0::/10.
        AddressKind::Private
    } else if s[0] & 0xe000 != 0x2000 || (s[0] == 0x2001 && (s[1] == 0 || s[1] == 0x0db8)) {
        // Outside global unicast 2000::/3 (IPv4-compatible, NAT64 local use, discard, …), Teredo
        // 2001::/32 (embeds an obfuscated IPv4 address) and documentation 2001:db8::/32.
        AddressKind::Reserved
    } else {
        AddressKind::Public
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(ip: &str) -> AddressKind {
        classify(ip.parse().expect("an IP address"))
    }

    fn fetcher(prefixes: &[&str], allow_private: bool) -> ImageFetcher {
        ImageFetcher::new(FetchPolicy {
            allowed_url_prefixes: prefixes.iter().map(|p| (*p).to_owned()).collect(),
            allow_private_addresses: allow_private,
            ..FetchPolicy::default()
        })
        .expect("a valid policy")
    }

    #[test]
    fn addresses_are_classified() {
        use AddressKind::*;
        let cases = [
            ("8.8.8.8", Public),
            ("1.1.1.1", Public),
            ("172.32.0.1", Public),
            ("100.128.0.1", Public),
            ("127.0.0.1", Loopback),
            ("127.255.255.254", Loopback),
            ("10.1.2.3", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("169.254.169.254", LinkLocal),
            ("100.64.0.1", Shared),
            ("100.127.255.255", Shared),
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("224.0.0.1", Multicast),
            ("255.255.255.255", Broadcast),
            ("240.0.0.1", Reserved),
            ("192.0.2.1", Reserved),
            ("198.18.0.1", Reserved),
            ("2606:4700::1111", Public),
            ("::1", Loopback),
            ("::", Unspecified),
            ("fe80::1", LinkLocal),
            ("febf::1", LinkLocal),
            ("fc00::1", Private),
            ("fd12:3456::1", Private),
            ("fec0::1", Private),
            ("ff02::1", Multicast),
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:169.254.169.254", LinkLocal),
            ("::ffff:10.0.0.1", Private),
            ("::ffff:8.8.8.8", Public),
            ("64:ff9b::7f00:1", Loopback),
            ("64:ff9b::808:808", Public),
            ("2002:7f00:1::1", Loopback),
            ("2002:a9fe:a9fe::1", LinkLocal),
            ("2002:808:808::1", Public),
            ("::127.0.0.1", Reserved),
            ("2001:db8::1", Reserved),
            ("2001:0:4136:e378::1", Reserved),
            ("100::1", Reserved),
        ];
        for (ip, expected) in cases {
            assert_eq!(kind(ip), expected, "{ip}");
        }
    }

    #[test]
    fn private_addresses_are_allowed_only_when_configured_and_some_never() {
        for ip in ["127.0.0.1", "10.0.0.1", "169.254.169.254", "100.64.0.1", "fd00::1", "::ffff:127.0.0.1"] {
            assert!(!kind(ip).allowed(false), "{ip}");
            assert!(kind(ip).allowed(true), "{ip}");
        }
        for ip in ["0.0.0.0", "::", "224.0.0.1", "ff02::1", "255.255.255.255"] {
            assert!(!kind(ip).allowed(true), "{ip}");
        }
        assert!(kind("8.8.8.8").allowed(false));
    }

    #[test]
    fn the_default_policy_refuses_everything_and_says_what_to_configure() {
        let reason = ImageFetcher::default().check("https://bucket.obs.example.com/a.jpg").expect_err("refused");
        assert!(reason.contains("[fetch] allowed_url_prefixes"), "{reason}");
        let disabled = ImageFetcher::new(FetchPolicy {
            enabled: false,
            allowed_url_prefixes: vec!["https://bucket.obs.example.com/".into()],
            ..FetchPolicy::default()
        })
        .expect("valid");
        let reason = disabled.check("https://bucket.obs.example.com/a.jpg").expect_err("refused");
        assert!(reason.contains("enabled = false"), "{reason}");
    }

    #[test]
    fn prefixes_match_the_normalised_url() {
        let f = fetcher(&["https://Bucket.OBS.example.com/faces/", "http://img.example.com:8080/a"], false);
        let allowed = [
            "https://bucket.obs.example.com/faces/1.jpg",
            "HTTPS://BUCKET.OBS.EXAMPLE.COM/faces/1.jpg",
            "https://bucket.obs.example.com./faces/1.jpg",
            "https://bucket.obs.example.com:443/faces/1.jpg",
            "https://bucket.obs.example.com/faces/x/../2.jpg",
            "https://bucket.obs.example.com/faces/1.jpg?versionId=3#frag",
            "http://img.example.com:8080/a",
            "http://img.example.com:8080/a/b.jpg",
        ];
        for url in allowed {
            let checked = f.check(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(checked.fragment(), None);
        }
        let refused = [
            "https://bucket.obs.example.com/faces",
            "https://bucket.obs.example.com/faces/../secret.jpg",
            "https://bucket.obs.example.com/faces/%2e%2e/secret.jpg",
            "https://bucket.obs.example.com/faces/..%2fsecret.jpg",
            "https://bucket.obs.example.com/faces/..%5Csecret.jpg",
            "https://bucket.obs.example.com/other/1.jpg",
            "http://bucket.obs.example.com/faces/1.jpg",
            "https://bucket.obs.example.com:8443/faces/1.jpg",
            "https://bucket.obs.example.com.evil.com/faces/1.jpg",
            "https://evil.com/bucket.obs.example.com/faces/1.jpg",
            "https://bucket.obs.example.com@evil.com/faces/1.jpg",
            "https://user:pw@bucket.obs.example.com/faces/1.jpg",
            "http://img.example.com:8080/ab.jpg",
            "http://img.example.com/a/b.jpg",
            "ftp://bucket.obs.example.com/faces/1.jpg",
            "file:///etc/passwd",
            "not a url",
            "/faces/1.jpg",
        ];
        for url in refused {
            assert!(f.check(url).is_err(), "{url} was allowed");
        }
        let reason = f.check("https://bucket.obs.example.com@evil.com/faces/1.jpg").expect_err("userinfo");
        assert!(reason.contains("user information"), "{reason}");
    }

    #[test]
    fn numeric_hosts_are_normalised_before_matching_and_classified() {
        // Every spelling of 127.0.0.1 is the same host as the prefix, and loopback.
        let spellings = [
            "http://127.0.0.1/",
            "http://127.1/",
            "http://0x7f000001/",
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://127.0.0.1:80/",
        ];
        let refused = fetcher(&["http://127.0.0.1/"], false);
        let allowed = fetcher(&["http://127.0.0.1/"], true);
        for url in spellings {
            let reason = refused.check(url).expect_err(url);
            assert!(reason.contains("loopback"), "{url}: {reason}");
            assert!(allowed.check(url).is_ok(), "{url}");
        }
        let mapped = fetcher(&["http://[::ffff:127.0.0.1]/", "http://169.254.169.254/"], false);
        assert!(mapped.check("http://[::ffff:7f00:1]/x").expect_err("mapped").contains("loopback"));
        let reason = mapped.check("http://169.254.169.254/latest/meta-data/").expect_err("metadata");
        assert!(reason.contains("link-local"), "{reason}");
        assert!(!reason.contains("169.254"), "the message repeats no address: {reason}");
        let never = fetcher(&["http://0.0.0.0/"], true);
        assert!(never.check("http://0.0.0.0/").is_err());
    }

    #[test]
    fn invalid_policies_are_rejected_at_start() {
        let with = |prefix: &str| {
            ImageFetcher::new(FetchPolicy { allowed_url_prefixes: vec![prefix.into()], ..FetchPolicy::default() })
        };
        for prefix in ["bucket.example.com/faces/", "ftp://h/", "https://u@h/", "https://h/?q=1", "https://h/#f"] {
            assert!(with(prefix).is_err(), "{prefix}");
        }
        assert!(with("https://h/faces").is_ok());
        assert!(ImageFetcher::new(FetchPolicy { timeout_secs: 0, ..FetchPolicy::default() }).is_err());
        assert!(ImageFetcher::new(FetchPolicy { max_bytes: MAX_IMAGE_BYTES + 1, ..FetchPolicy::default() }).is_err());
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_before_connecting() {
        let f = fetcher(&["http://localhost:9/"], false);
        let error = f.fetch("http://localhost:9/a.jpg", "image_url").await.expect_err("refused");
        match error {
            ServiceError::ImageUrlRefused { param: "image_url", reason } => {
                assert!(reason.contains("non-public") && reason.contains("localhost"), "{reason}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}
