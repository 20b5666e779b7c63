//! The F&O service's OData envelopes: collections, action results, errors.

use crate::error::{Error, ErrorKind, Result};
use crate::ports::{Header, HttpError, HttpRequest, HttpResponse, Method};
use serde_json::Value as Json;

/// A request for `path` under the environment, with the headers every request to the service
/// carries. `Authorization` is the host's business.
pub fn request(method: Method, path: String) -> HttpRequest {
    let header = |name: &str, value: &str| Header { name: name.to_owned(), value: value.to_owned() };
    let mut headers = vec![header("Accept", "application/json"), header("OData-Version", "4.0")];
    let body = match method {
        Method::Post => {
            headers.push(header("Content-Type", "application/json"));
            Some(b"{}".to_vec())
        }
        Method::Get => None,
    };
    // Every request the core sends only reads: the version actions are POSTs without effects.
    HttpRequest { method, path, headers, body, idempotent: true }
}

/// `GET <base URL><path>`, for messages that name the endpoint.
pub fn describe(base_url: &str, request: &HttpRequest) -> String {
    let method = match request.method {
        Method::Get => "GET",
        Method::Post => "POST",
    };
    format!("{method} {}", shorten(&format!("{base_url}{}", request.path)))
}

/// A URL for a message: long ones are cut, so that a service's megabyte of nextLink (or a user's
/// pasted garbage) is not echoed whole.
pub fn shorten(url: &str) -> String {
    const KEEP: usize = 200;
    if url.len() <= KEEP {
        return url.to_owned();
    }
    let cut = (0..=KEEP).rev().find(|i| url.is_char_boundary(*i)).unwrap_or(0);
    format!("{}… ({} bytes)", &url[..cut], url.len())
}

/// A failed exchange, before it becomes an [`Error`]: kept apart so callers can decide which
/// failures are worth a fallback.
#[derive(Debug)]
pub enum Failure {
    Transport(HttpError),
    Status {
        status: u16,
        summary: String,
    },
    Body(String),
    /// The JSON ends before it is complete: the answer was cut off on the way, and asking again
    /// usually gets all of it.
    Truncated(String),
    /// The answer is not JSON at all (a proxy's error page, bytes damaged on the way): worth
    /// asking again before giving up.
    Garbled(String),
}

impl Failure {
    /// A service that answers with an error status failed (exit code 1), whatever the status: "not
    /// found" is kept for names the user looks up in the cache.
    pub fn into_error(self, what: &str) -> Error {
        match self {
            Failure::Transport(e) => e.into_error(what),
            Failure::Status { status, summary } => Error::new(ErrorKind::Service, format!("{what}: HTTP {status}{summary}")),
            Failure::Body(m) | Failure::Truncated(m) | Failure::Garbled(m) => Error::parse(format!("{what}: {m}")),
        }
    }

    /// What went wrong with the answer, without where.
    pub fn message(&self) -> &str {
        match self {
            Failure::Body(m) | Failure::Truncated(m) | Failure::Garbled(m) => m,
            Failure::Status { .. } => "the service answered with an error status",
            Failure::Transport(_) => "the request failed",
        }
    }

    /// Whether the same request may well succeed if sent again.
    pub fn is_transient(&self) -> bool {
        matches!(self, Failure::Truncated(_) | Failure::Garbled(_))
    }
}

/// Times a request whose answer arrived cut off is sent again before the failure stands.
pub const TRUNCATED_RETRIES: u32 = 2;

/// Whether a JSON parse error means the text ended early rather than that it is malformed.
pub fn ends_early(e: &serde_json::Error) -> bool {
    e.classify() == serde_json::error::Category::Eof
}

/// Checks the status of a response, turning an error status into a summary of the service's error
/// body (`error.code`, `error.message`) and its activity id.
pub fn check_status(response: &HttpResponse) -> Result<(), Failure> {
    if response.is_success() {
        return Ok(());
    }
    Err(Failure::Status { status: response.status, summary: error_summary(response) })
}

fn error_summary(response: &HttpResponse) -> String {
    let mut out = String::new();
    if let Some(reason) = reason_phrase(response.status) {
        out.push(' ');
        out.push_str(reason);
    }
    if let Ok(json) = serde_json::from_slice::<Json>(&response.body) {
        let err = &json["error"];
        let code = err["code"].as_str().filter(|c| !c.is_empty());
        let message = err["message"].as_str().filter(|m| !m.is_empty());
        match (code, message) {
            (Some(c), Some(m)) => out.push_str(&format!(" ({c}: {m})")),
            (None, Some(m)) | (Some(m), None) => out.push_str(&format!(" ({m})")),
            (None, None) => {}
        }
    } else if !response.body.is_empty() {
        let text = String::from_utf8_lossy(&response.body);
        let snippet: String = text.chars().take(200).collect();
        out.push_str(&format!(" ({})", snippet.trim()));
    }
    if response.attempts > 1 {
        out.push_str(&format!(" after {} attempts", response.attempts));
    }
    if let Some(aid) = response.header("ms-dyn-aid") {
        out.push_str(&format!(" [activity {aid}]"));
    }
    match response.status {
        401 => out.push_str(
            "; the usual causes: no token was sent (configure a sign-in), the app's client id is not in the environment's \
             Microsoft Entra ID applications form (System administration > Setup), the token is from another tenant, or its \
             audience is not this environment's URL",
        ),
        403 => out.push_str(
            "; the token was accepted but the user the app is mapped to (in the Microsoft Entra ID applications form) lacks the rights",
        ),
        _ => {}
    }
    out
}

fn reason_phrase(status: u16) -> Option<&'static str> {
    Some(match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => return None,
    })
}

pub fn parse_json(body: &[u8]) -> Result<Json, Failure> {
    serde_json::from_slice(body).map_err(|e| {
        if ends_early(&e) {
            Failure::Truncated(format!("the answer ends before its JSON is complete ({} bytes; {e})", body.len()))
        } else {
            Failure::Garbled(format!("response is not valid JSON ({e})"))
        }
    })
}

/// The payload of an action result: `{"value": X}` as the service answers it, the same wrapped as
/// `{"result": {"value": X}}` (how some clients record action results), or a bare `X`.
pub fn action_value(json: Json) -> Json {
    match json {
        Json::Object(mut map) => {
            if let Some(v) = map.remove("value") {
                return v;
            }
            if let Some(Json::Object(mut inner)) = map.remove("result") {
                if let Some(v) = inner.remove("value") {
                    return v;
                }
                return Json::Object(inner);
            }
            Json::Object(map)
        }
        other => other,
    }
}

/// A string-valued action result (`GetApplicationVersion`, `GetPlatformBuildVersion`).
pub fn action_string(body: &[u8]) -> Result<String, Failure> {
    match action_value(parse_json(body)?) {
        Json::String(s) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
        Json::String(_) => Err(Failure::Body("the value is empty".to_owned())),
        other => Err(Failure::Body(format!("expected a string value, found {}", kind_of(&other)))),
    }
}

/// A collection-valued action result (`GetInstalledModules`).
pub fn action_array(body: &[u8]) -> Result<Vec<Json>, Failure> {
    match action_value(parse_json(body)?) {
        Json::Array(items) => Ok(items),
        other => Err(Failure::Body(format!("expected a collection (\"value\": [...]), found {}", kind_of(&other)))),
    }
}

pub fn kind_of(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![Header { name: "ms-dyn-aid".into(), value: "abc-123".into() }],
            body: body.as_bytes().to_vec(),
            attempts: 1,
        }
    }

    #[test]
    fn action_results_in_every_shape() {
        assert_eq!(action_string(br#"{"@odata.context":"x#Edm.String","value":"10.0.1985.137"}"#).unwrap(), "10.0.1985.137");
        assert_eq!(action_string(br#"{"result":{"value":"7.0"}}"#).unwrap(), "7.0");
        assert_eq!(action_string(br#""7.1""#).unwrap(), "7.1");
        assert_eq!(action_array(br#"{"value":["a","b"]}"#).unwrap().len(), 2);
        assert_eq!(action_array(br#"{"success":true,"result":{"value":["a"]}}"#).unwrap().len(), 1);
        assert_eq!(action_array(br#"["a","b","c"]"#).unwrap().len(), 3);
        assert!(matches!(action_array(br#"{"value":"x"}"#), Err(Failure::Body(m)) if m.contains("a string")));
        assert!(matches!(action_array(b"<html>"), Err(Failure::Garbled(m)) if m.contains("not valid JSON")));
        assert!(matches!(action_array(br#"{"value":["a","#), Err(Failure::Truncated(m)) if m.contains("ends before")));
    }

    #[test]
    fn long_urls_are_shortened_for_messages() {
        assert_eq!(shorten("http://h/x"), "http://h/x");
        let long = format!("http://h/{}", "é".repeat(50_000));
        let short = shorten(&long);
        assert!(short.len() < 260, "{}", short.len());
        assert!(short.ends_with(&format!("({} bytes)", long.len())), "{short}");
    }

    #[test]
    fn error_statuses_name_the_service_error_and_activity() {
        let r = response(404, r#"{"error":{"code":"NotFound","message":"No action GetInstalledModules"}}"#);
        let Err(f) = check_status(&r) else { panic!("404 passed") };
        let e = f.into_error("POST http://x/data/SystemNotifications/…");
        assert_eq!(e.kind, ErrorKind::Service, "a service's 404 is a failed request, not an unknown name");
        assert_eq!(
            e.message,
            "POST http://x/data/SystemNotifications/…: HTTP 404 Not Found (NotFound: No action GetInstalledModules) [activity abc-123]"
        );
        assert!(check_status(&response(204, "")).is_ok());
    }
}
