//! Which hosts the component may reach.
//!
//! The allow-list holds origins (scheme, host, port) that the *user* named — the environments a
//! command works on — never anything the component asked for. Checking fails closed: a URL that
//! cannot be parsed, or has no host, is refused like a host that is not on the list.

use reqwest::Url;
use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Origin {
    pub scheme: String,
    pub host: String,
    pub port: u16,
}

impl Origin {
    pub fn of_url(url: &Url) -> Option<Origin> {
        let scheme = url.scheme();
        if scheme != "http" && scheme != "https" {
            return None;
        }
        Some(Origin { scheme: scheme.to_owned(), host: url.host_str()?.to_ascii_lowercase(), port: url.port_or_known_default()? })
    }

    pub fn parse(url: &str) -> Result<Origin, String> {
        let parsed = Url::parse(url.trim()).map_err(|e| format!("{url:?} is not a URL ({e})"))?;
        Origin::of_url(&parsed).ok_or_else(|| format!("{url:?} is not an http(s) URL with a host"))
    }

    /// Loopback hosts get no credentials: the simulator and local tunnels.
    pub fn is_loopback(&self) -> bool {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

#[derive(Clone, Debug, Default)]
pub struct AllowList {
    origins: BTreeSet<Origin>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The URL could not be parsed at all.
    Invalid(String),
    /// The URL's origin is not on the list.
    NotAllowed(Origin),
}

impl AllowList {
    pub fn allow(&mut self, origin: Origin) {
        self.origins.insert(origin);
    }

    pub fn origins(&self) -> impl Iterator<Item = &Origin> {
        self.origins.iter()
    }

    /// Parses `url` and returns it with its origin if that origin is allowed.
    pub fn check(&self, url: &str) -> Result<(Url, Origin), Refusal> {
        let parsed = Url::parse(url).map_err(|e| Refusal::Invalid(e.to_string()))?;
        let origin = Origin::of_url(&parsed).ok_or_else(|| Refusal::Invalid("not an http(s) URL with a host".to_owned()))?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(Refusal::Invalid("credentials in URLs are not allowed".to_owned()));
        }
        if self.origins.contains(&origin) { Ok((parsed, origin)) } else { Err(Refusal::NotAllowed(origin)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_origins_pass_and_checking_fails_closed() {
        let mut list = AllowList::default();
        list.allow(Origin::parse("https://Contoso.operations.dynamics.com/").unwrap());
        assert!(list.check("https://contoso.operations.dynamics.com/Metadata/DataEntities").is_ok());
        assert!(list.check("https://contoso.operations.dynamics.com:443/data/x").is_ok());
        assert!(matches!(list.check("https://contoso.operations.dynamics.com:8443/x"), Err(Refusal::NotAllowed(_))));
        assert!(matches!(list.check("http://contoso.operations.dynamics.com/x"), Err(Refusal::NotAllowed(_))));
        assert!(matches!(list.check("https://evil.example/x"), Err(Refusal::NotAllowed(_))));
        assert!(matches!(list.check("not a url"), Err(Refusal::Invalid(_))));
        assert!(matches!(list.check("file:///etc/passwd"), Err(Refusal::Invalid(_))));
        assert!(matches!(list.check("https://user:pw@contoso.operations.dynamics.com/x"), Err(Refusal::Invalid(_))));
        assert!(matches!(AllowList::default().check("https://contoso.operations.dynamics.com/"), Err(Refusal::NotAllowed(_))));
    }

    #[test]
    fn loopback_is_recognised() {
        for url in ["http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:9"] {
            assert!(Origin::parse(url).unwrap().is_loopback(), "{url}");
        }
        assert!(!Origin::parse("https://contoso.operations.dynamics.com").unwrap().is_loopback());
    }
}
