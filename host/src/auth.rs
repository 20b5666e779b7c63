//! Access tokens for F&O environments (Azure AD client-credentials flow).
//!
//! Tokens are obtained and kept by the host; the component never sees them. Loopback environments
//! (the simulator) get none unless asked for explicitly.

use crate::cancel::CancelToken;
use crate::imports::http::{HttpOptions, backoff, describe_reqwest_error, is_retryable_status, retry_after_header};
use crate::policy::Origin;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCredentials {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    /// Overrides `https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token`.
    pub token_endpoint: Option<String>,
}

impl ClientCredentials {
    /// From `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET` (the variables the Azure
    /// SDKs read), else `D365FO_TENANT_ID`, `D365FO_CLIENT_ID`, `D365FO_CLIENT_SECRET` (d365fo-client's),
    /// and optionally `D365META_TOKEN_ENDPOINT`.
    pub fn from_env() -> Option<Self> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let trio = |prefix: &str| {
            Some((var(&format!("{prefix}_TENANT_ID"))?, var(&format!("{prefix}_CLIENT_ID"))?, var(&format!("{prefix}_CLIENT_SECRET"))?))
        };
        let (tenant_id, client_id, client_secret) = trio("AZURE").or_else(|| trio("D365FO"))?;
        Some(ClientCredentials { tenant_id, client_id, client_secret, token_endpoint: var("D365META_TOKEN_ENDPOINT") })
    }

    pub fn token_endpoint(&self) -> String {
        self.token_endpoint.clone().unwrap_or_else(|| format!("{DEFAULT_AUTHORITY}/{}/oauth2/v2.0/token", self.tenant_id))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// Client credentials for every environment but loopback ones, when credentials are configured.
    #[default]
    Auto,
    /// Never send a token.
    None,
    /// Always send a token, loopback included (fails when no credentials are configured).
    Always,
}

pub struct Authenticator {
    mode: AuthMode,
    credentials: Option<ClientCredentials>,
    tokens: Mutex<HashMap<Origin, (String, Instant)>>,
}

impl Authenticator {
    pub fn new(mode: AuthMode, credentials: Option<ClientCredentials>) -> Self {
        Authenticator { mode, credentials, tokens: Mutex::new(HashMap::new()) }
    }

    pub fn none() -> Self {
        Self::new(AuthMode::None, None)
    }

    /// The origin of the token endpoint, which the host itself may reach.
    pub fn token_origin(&self) -> Option<Origin> {
        self.credentials.as_ref().and_then(|c| Origin::parse(&c.token_endpoint()).ok())
    }

    fn applies_to(&self, origin: &Origin) -> Result<bool, String> {
        match self.mode {
            AuthMode::None => Ok(false),
            AuthMode::Auto => Ok(!origin.is_loopback() && self.credentials.is_some()),
            AuthMode::Always if self.credentials.is_some() => Ok(true),
            AuthMode::Always => Err("authentication is required but no client credentials are configured (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET)".to_owned()),
        }
    }

    /// The bearer token to send to `origin`, if any; fetched once and reused until shortly before
    /// it expires (however short its life), the endpoint retried like the service.
    pub async fn token_for(
        &self,
        client: &reqwest::Client,
        origin: &Origin,
        retry: &HttpOptions,
        cancel: &CancelToken,
    ) -> Result<Option<String>, String> {
        if !self.applies_to(origin)? {
            return Ok(None);
        }
        let Some(credentials) = &self.credentials else { return Ok(None) };
        // One fetch at a time: concurrent requests wait for the token the first one fetches.
        let mut tokens = self.tokens.lock().await;
        if let Some((token, refresh_at)) = tokens.get(origin)
            && Instant::now() < *refresh_at
        {
            return Ok(Some(token.clone()));
        }
        let fetched_at = Instant::now();
        let (token, lifetime) = fetch_token(client, credentials, &scope_for(origin), retry, cancel).await?;
        tokens.insert(origin.clone(), (token.clone(), fetched_at + lifetime - refresh_margin(lifetime)));
        Ok(Some(token))
    }
}

/// How long before its expiry a token is replaced: a minute for the usual hour-long tokens, a fifth
/// of the lifetime for short ones, so that a token is reused however short its life.
pub fn refresh_margin(lifetime: Duration) -> Duration {
    (lifetime / 5).min(Duration::from_secs(60))
}

/// `<environment>/.default`, the scope F&O expects.
pub fn scope_for(origin: &Origin) -> String {
    let default_port = if origin.scheme == "https" { 443 } else { 80 };
    if origin.port == default_port {
        format!("{}://{}/.default", origin.scheme, origin.host)
    } else {
        format!("{}://{}:{}/.default", origin.scheme, origin.host, origin.port)
    }
}

/// Asks the token endpoint, retrying connect errors, cut-off answers, 429 and 5xx-unavailable like
/// requests to the service (the same attempts, budget and `Retry-After` rule).
async fn fetch_token(
    client: &reqwest::Client,
    c: &ClientCredentials,
    scope: &str,
    retry: &HttpOptions,
    cancel: &CancelToken,
) -> Result<(String, Duration), String> {
    let endpoint = c.token_endpoint();
    let origin = Origin::parse(&endpoint)?;
    if origin.scheme != "https" && !origin.is_loopback() {
        return Err(format!("token endpoint {endpoint} must use https"));
    }
    let body = form_encode(&[
        ("grant_type", "client_credentials"),
        ("client_id", &c.client_id),
        ("client_secret", &c.client_secret),
        ("scope", scope),
    ]);
    let started = Instant::now();
    let mut attempt = 0u32;
    let (status, bytes) = loop {
        attempt += 1;
        let exchange = async {
            let response = client
                .post(&endpoint)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .header("Accept", "application/json")
                .body(body.clone())
                .timeout(Duration::from_secs(30))
                .send()
                .await?;
            let status = response.status();
            let delay = retry_after_header(response.headers());
            let bytes = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, delay, bytes))
        };
        let outcome = tokio::select! {
            outcome = exchange => outcome,
            () = cancel.cancelled() => return Err("cancelled while obtaining an access token".to_owned()),
        };
        let (delay, why) = match outcome {
            Ok((status, delay, _)) if is_retryable_status(status.as_u16()) => {
                (delay.unwrap_or_else(|| backoff(retry, attempt)), format!("HTTP {}", status.as_u16()))
            }
            Ok((status, _, bytes)) => break (status, bytes),
            // Asking for a token again is harmless, so every transport failure is retried.
            Err(e) if !e.is_builder() => (backoff(retry, attempt), describe_reqwest_error(&e)),
            Err(e) => return Err(format!("token endpoint {endpoint}: {}", describe_reqwest_error(&e))),
        };
        if attempt >= retry.max_attempts || started.elapsed() + delay > retry.retry_budget {
            return Err(format!("token endpoint {endpoint}: {why}, after {attempt} attempts"));
        }
        tracing::info!(endpoint = %endpoint, attempt, "token endpoint: {why}; retrying in {:.1}s", delay.as_secs_f64());
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = cancel.cancelled() => return Err("cancelled while obtaining an access token".to_owned()),
        }
    };
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    if !status.is_success() {
        let detail = json["error_description"].as_str().or(json["error"].as_str()).unwrap_or("no detail");
        let first_line = detail.lines().next().unwrap_or(detail);
        return Err(format!("token endpoint {endpoint} answered HTTP {}: {first_line}", status.as_u16()));
    }
    let token = json["access_token"].as_str().ok_or_else(|| format!("token endpoint {endpoint}: no access_token in the answer"))?;
    let lifetime = json["expires_in"].as_u64().unwrap_or(3600);
    Ok((token.to_owned(), Duration::from_secs(lifetime)))
}

fn form_encode(pairs: &[(&str, &str)]) -> String {
    let encode = |s: &str| {
        let mut out = String::new();
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                out.push(b as char);
            } else if b == b' ' {
                out.push('+');
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    };
    pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_and_form_encoding() {
        assert_eq!(
            scope_for(&Origin::parse("https://contoso.operations.dynamics.com/").unwrap()),
            "https://contoso.operations.dynamics.com/.default"
        );
        assert_eq!(scope_for(&Origin::parse("http://127.0.0.1:8080").unwrap()), "http://127.0.0.1:8080/.default");
        assert_eq!(form_encode(&[("a", "x y"), ("s", "p&q=/")]), "a=x+y&s=p%26q%3D%2F");
    }

    #[test]
    fn auto_mode_skips_loopback_and_unconfigured() {
        let creds = ClientCredentials { tenant_id: "t".into(), client_id: "c".into(), client_secret: "s".into(), token_endpoint: None };
        let remote = Origin::parse("https://contoso.operations.dynamics.com").unwrap();
        let local = Origin::parse("http://127.0.0.1:9").unwrap();
        let auto = Authenticator::new(AuthMode::Auto, Some(creds.clone()));
        assert_eq!(auto.applies_to(&remote), Ok(true));
        assert_eq!(auto.applies_to(&local), Ok(false));
        assert_eq!(Authenticator::new(AuthMode::Auto, None).applies_to(&remote), Ok(false));
        assert_eq!(Authenticator::new(AuthMode::Always, Some(creds)).applies_to(&local), Ok(true));
        assert!(Authenticator::new(AuthMode::Always, None).applies_to(&local).is_err());
    }

    #[test]
    fn tokens_are_kept_for_most_of_their_life_however_short() {
        assert_eq!(refresh_margin(Duration::from_secs(3599)), Duration::from_secs(60));
        assert_eq!(refresh_margin(Duration::from_secs(60)), Duration::from_secs(12));
        assert_eq!(refresh_margin(Duration::from_secs(1)), Duration::from_millis(200));
        assert_eq!(refresh_margin(Duration::ZERO), Duration::ZERO);
    }
}
