//! Outbound HTTP as the sync sends it to URLs an operator or a customer typed (targets,
//! SCIM servers, BambooHR base URLs): a [`Policy`] decides which URLs may be called
//! ([`Policy::check`]), clients built by [`client_builder`] never follow redirects (a
//! 307 or 308 would re-send HR data, and a query-string API key, to another host) and,
//! when the policy blocks private networks, resolve names through [`PublicResolver`],
//! which refuses private, loopback and link-local addresses (so a public name that
//! resolves to 169.254.169.254 is refused too). [`read_capped`] reads a response body
//! up to a limit instead of whole.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why a URL or an answer was refused. Messages name the problem, never a query string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Not an absolute http(s) URL.
    #[error("not a valid URL")]
    Invalid,
    /// Plain HTTP where only HTTPS is allowed.
    #[error("must use https:// (plain http only to loopback on the local stack)")]
    PlainHttp,
    /// A private, loopback or link-local address while private networks are blocked.
    #[error("{0} is a private, loopback or link-local address, which this stack does not call")]
    PrivateAddress(String),
    /// The answer was a redirect, which is not followed.
    #[error("answered a redirect (HTTP {0}), which is not followed")]
    Redirect(u16),
    /// The answer's body passed the size limit.
    #[error("the response body is larger than {0} bytes")]
    TooLarge(usize),
}

/// Which URLs may be called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Plain HTTP to a loopback host is allowed (the local stack and its tests).
    pub loopback_http: bool,
    /// Private, loopback and link-local addresses are refused (literal or resolved).
    pub block_private: bool,
}

impl Policy {
    /// The local stack: HTTPS anywhere, plain HTTP to loopback, private networks open.
    pub const fn local() -> Self {
        Self {
            loopback_http: true,
            block_private: false,
        }
    }

    /// A deployed stack: HTTPS only; private networks blocked unless `block_private`
    /// is false (a stack whose targets live in its own VPC).
    pub const fn deployed(block_private: bool) -> Self {
        Self {
            loopback_http: false,
            block_private,
        }
    }

    /// Checks `url` against the policy: scheme, and for an IP-literal host, the
    /// address. (Names are checked when they are resolved, by [`PublicResolver`].)
    pub fn check(&self, url: &str) -> Result<reqwest::Url, Refused> {
        let parsed = reqwest::Url::parse(url).map_err(|_| Refused::Invalid)?;
        let host = parsed.host_str().ok_or(Refused::Invalid)?.to_string();
        let literal: Option<IpAddr> = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok();
        let loopback = host == "localhost" || literal.is_some_and(|ip| ip.is_loopback());
        match parsed.scheme() {
            "https" => {}
            "http" if self.loopback_http && loopback => {}
            "http" => return Err(Refused::PlainHttp),
            _ => return Err(Refused::Invalid),
        }
        if self.block_private {
            if let Some(ip) = literal {
                if !is_public(ip) {
                    return Err(Refused::PrivateAddress(ip.to_string()));
                }
            }
            if host == "localhost" {
                return Err(Refused::PrivateAddress(host));
            }
        }
        Ok(parsed)
    }
}

/// Whether `ip` is a public unicast address (not private, loopback, link-local,
/// carrier-grade NAT, unspecified, multicast, broadcast or reserved).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                || v6 == Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 1))
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT 100.64.0.0/10
        || a >= 240)
}

/// Resolves names with the system resolver and keeps only public addresses; a name
/// with none is refused.
#[derive(Debug, Default, Clone, Copy)]
pub struct PublicResolver;

impl Resolve for PublicResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = all.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(Box::new(Refused::PrivateAddress(host))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            let addrs: Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

/// A client builder for `policy`: redirects are never followed, and names resolve
/// through [`PublicResolver`] when private networks are blocked.
pub fn client_builder(policy: Policy) -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
    if policy.block_private {
        builder.dns_resolver(std::sync::Arc::new(PublicResolver))
    } else {
        builder
    }
}

/// A redirect status, refused: the caller reports it as a failure with this reason.
pub fn refuse_redirect(status: reqwest::StatusCode) -> Option<Refused> {
    status
        .is_redirection()
        .then_some(Refused::Redirect(status.as_u16()))
}

/// Reads `resp`'s body up to `max` bytes; a longer one is refused (and not read on).
pub async fn read_capped(mut resp: reqwest::Response, max: usize) -> Result<Vec<u8>, ReadError> {
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(ReadError::Refused(Refused::TooLarge(max)));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(ReadError::Transport)? {
        if body.len() + chunk.len() > max {
            return Err(ReadError::Refused(Refused::TooLarge(max)));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Why [`read_capped`] did not return a body.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Too large.
    #[error(transparent)]
    Refused(Refused),
    /// The connection failed while reading.
    #[error("reading the response failed")]
    Transport(#[source] reqwest::Error),
}

#[cfg(test)]
mod tests;
