//! Environment base URLs and OData key literals.

use crate::error::{Error, Result};

/// Normalises an environment's base URL so that one environment has one identity:
/// lower-case scheme and host, no default port, no trailing slash, no query or fragment, and no
/// trailing `/data` or `/Metadata` segment (users paste service roots as often as base URLs).
pub fn normalize_base_url(input: &str) -> Result<String> {
    let trimmed = input.trim();
    let bad = |why: &str| Error::invalid_input(format!("base URL {trimmed:?}: {why}"));
    let (scheme, rest) = trimmed.split_once("://").ok_or_else(|| bad("expected http:// or https://"))?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => "443",
        "http" => "80",
        _ => return Err(bad("only http and https are supported")),
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err(bad("credentials in the URL are not supported; the host supplies them"));
    }
    let (host, port) = split_host_port(authority).ok_or_else(|| bad("malformed host or port"))?;
    if host.is_empty() {
        return Err(bad("missing host"));
    }
    if !host.chars().all(|c| c.is_ascii_alphanumeric() || "-.[]:".contains(c)) {
        return Err(bad("host contains characters that are not allowed"));
    }
    let host = host.to_ascii_lowercase();
    let mut path = path.trim_end_matches('/').to_owned();
    for suffix in ["/data", "/metadata"] {
        if path.to_ascii_lowercase().ends_with(suffix) {
            path.truncate(path.len() - suffix.len());
            path = path.trim_end_matches('/').to_owned();
            break;
        }
    }
    let port = match port {
        Some(p) if p == default_port => String::new(),
        Some(p) => format!(":{p}"),
        None => String::new(),
    };
    Ok(format!("{scheme}://{host}{port}{path}"))
}

fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = authority.strip_prefix('[') {
        // IPv6 literal: [::1]:8080
        let end = rest.find(']')?;
        let host = &authority[..end + 2];
        let after = &rest[end + 1..];
        return match after.strip_prefix(':') {
            Some(p) if valid_port(p) => Some((host, Some(p))),
            Some(_) => None,
            None if after.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match authority.rsplit_once(':') {
        Some((h, p)) if valid_port(p) => Some((h, Some(p))),
        Some(_) => None,
        None => Some((authority, None)),
    }
}

fn valid_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u32>().is_ok_and(|n| n > 0 && n <= 65535)
}

/// An OData string key literal, ready for a URL path segment: quotes doubled, then percent-encoded
/// wherever the character is not safe in a path segment.
pub fn odata_string_literal(value: &str) -> String {
    let quoted = format!("'{}'", value.replace('\'', "''"));
    percent_encode_segment(&quoted)
}

/// Percent-encodes everything but the unreserved characters and the sub-delimiters OData keys use.
pub fn percent_encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric() || b"-._~'()*,;=:@!$".contains(&b);
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_slashes_ports_and_service_roots() {
        let cases = [
            ("https://Contoso.Operations.Dynamics.com/", "https://contoso.operations.dynamics.com"),
            ("HTTPS://contoso.operations.dynamics.com:443", "https://contoso.operations.dynamics.com"),
            ("https://contoso.operations.dynamics.com/data/", "https://contoso.operations.dynamics.com"),
            ("https://contoso.operations.dynamics.com/Metadata", "https://contoso.operations.dynamics.com"),
            ("http://127.0.0.1:8080/?x=1#y", "http://127.0.0.1:8080"),
            ("http://127.0.0.1:80", "http://127.0.0.1"),
            ("  http://[::1]:9000/envs/a/  ", "http://[::1]:9000/envs/a"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_base_url(input).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn refuses_what_is_not_an_http_base_url() {
        for input in ["contoso.operations.dynamics.com", "ftp://x", "https://", "https://user:pw@x.com", "http://x:99999", "http://a b"] {
            let err = normalize_base_url(input).unwrap_err();
            assert_eq!(err.kind, crate::ErrorKind::InvalidInput, "{input}");
            assert!(err.message.contains("base URL"), "{}", err.message);
        }
    }

    #[test]
    fn odata_literals_double_quotes_and_encode() {
        assert_eq!(odata_string_literal("CustomerV3"), "'CustomerV3'");
        assert_eq!(odata_string_literal("O'Brien"), "'O''Brien'");
        assert_eq!(odata_string_literal("@SYS 1/2"), "'@SYS%201%2F2'");
    }
}
