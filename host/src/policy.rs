//! Where the component may send a request: under the base URL of an environment the *user* named,
//! never anywhere the component asked for. The component names only a path; joining it to the
//! base URL fails closed: anything that does not stay under it, or cannot be checked, is refused.

use reqwest::Url;
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

/// The URL of `path` under `base_url` (a normalised base URL without a trailing slash). The path
/// must start with one `/` and, joined and parsed, still be under the base URL: same origin, the
/// base URL's path as a prefix, no credentials. Dot segments and encoded tricks are resolved by the
/// URL parser before the check, so `/../` cannot climb out of a base URL's path either.
pub fn join(base_url: &str, path: &str) -> Result<Url, String> {
    let shown = || crate::imports::http::shorten(path);
    if !path.starts_with('/') || path.starts_with("//") || path.starts_with("/\\") {
        return Err(format!("{:?} is not a path under the environment (it must start with a single '/')", shown()));
    }
    if path.chars().any(|c| c.is_control() || c == '\\' || c == '#') {
        return Err(format!("{:?} holds characters a path under the environment cannot", shown()));
    }
    let url = Url::parse(&format!("{base_url}{path}")).map_err(|e| format!("{:?} does not make a URL under {base_url} ({e})", shown()))?;
    let base = Url::parse(base_url).map_err(|e| format!("the base URL {base_url} is not a URL ({e})"))?;
    let under = Origin::of_url(&url).is_some()
        && Origin::of_url(&url) == Origin::of_url(&base)
        && url.username().is_empty()
        && url.password().is_none()
        && (base.path() == "/" || url.path() == base.path() || url.path().starts_with(&format!("{}/", base.path())));
    if under { Ok(url) } else { Err(format!("{:?} leads outside {base_url}", shown())) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_under_the_base_url_or_are_refused() {
        let ok = |base: &str, path: &str| join(base, path).map(|u| u.to_string());
        assert_eq!(ok("https://c.example", "/Metadata/DataEntities").unwrap(), "https://c.example/Metadata/DataEntities");
        assert_eq!(
            ok("http://127.0.0.1:9", "/Metadata/Labels(Id='@SYS1',Language='en-US')").unwrap(),
            "http://127.0.0.1:9/Metadata/Labels(Id='@SYS1',Language='en-US')"
        );
        assert_eq!(ok("https://c.example/env", "/Metadata/X?$skip=5").unwrap(), "https://c.example/env/Metadata/X?$skip=5");
        for (base, path) in [
            ("https://c.example", "//evil.example/x"),
            ("https://c.example", "http://evil.example/x"),
            ("https://c.example", "@evil.example/x"),
            ("https://c.example", ".evil.example/x"),
            ("https://c.example", ":8443/x"),
            ("https://c.example", "/\\evil.example"),
            ("https://c.example", "/x#frag"),
            ("https://c.example", "/x\n"),
            ("https://c.example/env", "/../other/Metadata"),
            ("https://c.example/env", "/%2e%2e/other"),
            ("https://c.example", ""),
        ] {
            assert!(join(base, path).is_err(), "{base} + {path:?} was let through: {:?}", join(base, path));
        }
    }

    #[test]
    fn loopback_is_recognised() {
        for url in ["http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:9"] {
            assert!(Origin::parse(url).unwrap().is_loopback(), "{url}");
        }
        assert!(!Origin::parse("https://contoso.operations.dynamics.com").unwrap().is_loopback());
    }
}
