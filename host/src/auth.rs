//! Access tokens for F&O environments, through the Azure SDK's credentials (`azure_identity`).
//!
//! Tokens are obtained and kept by the host, in memory; the component never sees them. Sign-in goes
//! through the same HTTP client as the requests to the service, so it trusts the same certificate
//! authorities and goes through the same proxies. Loopback environments (the simulator) get no
//! token unless asked for explicitly.

use crate::cancel::CancelToken;
use crate::imports::http::HttpOptions;
use crate::policy::Origin;
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{ClientOptions, ExponentialRetryOptions, RetryOptions, Transport};
use azure_identity::{
    AzureCliCredential, AzureCliCredentialOptions, ClientAssertionCredentialOptions, ClientSecretCredential, ClientSecretCredentialOptions,
    ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId, WorkloadIdentityCredential,
    WorkloadIdentityCredentialOptions,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// How the host signs in.
#[derive(Clone, PartialEq, Eq)]
pub enum SignIn {
    /// No token at all.
    None,
    /// An app registration's client secret.
    ClientSecret { tenant_id: String, client_id: String, secret: String },
    /// The account `az login` signed in.
    AzureCli { tenant_id: Option<String> },
    /// The managed identity of the Azure resource this runs on (a user-assigned one by client id).
    ManagedIdentity { client_id: Option<String> },
    /// Workload identity federation: `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_FEDERATED_TOKEN_FILE`.
    WorkloadIdentity,
    /// The chain tried when the user names none (see [`Authenticator`]).
    Default,
}

impl std::fmt::Debug for SignIn {
    // Never the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl SignIn {
    pub fn name(&self) -> &'static str {
        match self {
            SignIn::None => "none",
            SignIn::ClientSecret { .. } => "client-secret",
            SignIn::AzureCli { .. } => "azure-cli",
            SignIn::ManagedIdentity { .. } => "managed-identity",
            SignIn::WorkloadIdentity => "workload-identity",
            SignIn::Default => "default",
        }
    }

    /// A client secret from `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET` (the
    /// variables the Azure SDKs read), else `D365FO_TENANT_ID`, `D365FO_CLIENT_ID`,
    /// `D365FO_CLIENT_SECRET` (d365fo-client's).
    pub fn client_secret_from_env() -> Option<SignIn> {
        Self::client_secret_from(&env_var)
    }

    /// [`SignIn::client_secret_from_env`] with the variables `var` answers.
    fn client_secret_from(var: &dyn Fn(&str) -> Option<String>) -> Option<SignIn> {
        let trio = |prefix: &str| {
            Some(SignIn::ClientSecret {
                tenant_id: var(&format!("{prefix}_TENANT_ID"))?,
                client_id: var(&format!("{prefix}_CLIENT_ID"))?,
                secret: var(&format!("{prefix}_CLIENT_SECRET"))?,
            })
        };
        trio("AZURE").or_else(|| trio("D365FO"))
    }
}

/// An environment variable, unless unset or blank.
fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// A token for every environment but loopback ones.
    #[default]
    Auto,
    /// Never send a token.
    None,
    /// Always send a token, loopback included.
    Always,
}

/// Obtains and keeps tokens, one per environment origin (the scope is the environment's URL).
///
/// A token is reused until shortly before it expires, however short its life: the SDK's own cache
/// renews any token within five minutes of its expiry, which for a one-minute token would mean a
/// sign-in per request.
pub struct Authenticator {
    mode: AuthMode,
    sign_in: SignIn,
    /// Built at the first token, with the client that reaches the service; dropped after a 401 so
    /// that the next one is new (the SDK would hand out the rejected token again from its cache).
    credential: Mutex<Option<Arc<dyn TokenCredential>>>,
    /// By scope: an environment's, or Azure Storage's for a shared store.
    tokens: Mutex<HashMap<String, (String, Instant)>>,
    /// The sign-in authority; `None`: `AZURE_AUTHORITY_HOST`, else the public cloud's. HTTPS only.
    authority_host: Option<String>,
}

impl Authenticator {
    pub fn new(mode: AuthMode, sign_in: SignIn) -> Self {
        Authenticator { mode, sign_in, credential: Mutex::new(None), tokens: Mutex::new(HashMap::new()), authority_host: None }
    }

    /// Signs in at `authority_host` (a sovereign cloud's, or a test's) instead of the one
    /// `AZURE_AUTHORITY_HOST` names.
    pub fn with_authority_host(mut self, authority_host: impl Into<String>) -> Self {
        self.authority_host = Some(authority_host.into());
        self
    }

    pub fn none() -> Self {
        Self::new(AuthMode::None, SignIn::None)
    }

    pub fn sign_in(&self) -> &SignIn {
        &self.sign_in
    }

    fn applies_to(&self, origin: &Origin) -> Result<bool, String> {
        match (self.mode, &self.sign_in) {
            (AuthMode::None, _) => Ok(false),
            (AuthMode::Always, SignIn::None) => Err(
                "a token is required (--auth always) but no sign-in is configured: give AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET, or a profile's sign_in".to_owned(),
            ),
            (_, SignIn::None) => Ok(false),
            (AuthMode::Auto, _) => Ok(!origin.is_loopback()),
            (AuthMode::Always, _) => Ok(true),
        }
    }

    /// The bearer token to send to `origin`, if any.
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
        self.token(client, &scope_for(origin), retry, cancel).await.map(Some)
    }

    /// A token for `scope` from the configured sign-in, whatever the mode: what a shared store in
    /// Azure Blob Storage signs in with (`https://storage.azure.com/.default`).
    pub async fn token(&self, client: &reqwest::Client, scope: &str, retry: &HttpOptions, cancel: &CancelToken) -> Result<String, String> {
        if matches!(self.sign_in, SignIn::None) {
            return Err(format!("a token for {scope} is needed but no sign-in is configured"));
        }
        // One sign-in at a time: concurrent requests wait for the token the first one obtains.
        let mut tokens = self.tokens.lock().await;
        if let Some((token, refresh_at)) = tokens.get(scope)
            && Instant::now() < *refresh_at
        {
            return Ok(token.clone());
        }
        let credential = {
            let mut slot = self.credential.lock().await;
            match &*slot {
                Some(c) => c.clone(),
                None => slot
                    .insert(credential(&self.sign_in, &Pipeline { client, retry, authority_host: self.authority_host.as_deref() })?)
                    .clone(),
            }
        };
        let scopes = [scope];
        let fetched_at = Instant::now();
        let token = tokio::select! {
            token = credential.get_token(&scopes, None) => token,
            () = cancel.cancelled() => return Err("cancelled while signing in".to_owned()),
        }
        .map_err(|e| format!("signing in ({}) for {scope} failed: {}", self.sign_in.name(), first_lines(&e.to_string())))?;
        let lifetime = Duration::try_from(token.expires_on - azure_core::time::OffsetDateTime::now_utc()).unwrap_or(Duration::ZERO);
        let secret = token.token.secret().to_owned();
        tokens.insert(scope.to_owned(), (secret.clone(), fetched_at + lifetime - refresh_margin(lifetime)));
        Ok(secret)
    }

    /// Forgets `token` of `origin` after the service refused it, and the credential with it, so
    /// that the next request signs in anew. Requests in flight with the same token are refused
    /// too; only the first refusal counts, so they share the one new token.
    pub async fn refused(&self, origin: &Origin, token: &str) {
        let mut tokens = self.tokens.lock().await;
        let scope = scope_for(origin);
        if tokens.get(&scope).is_some_and(|(current, _)| current == token) {
            tokens.remove(&scope);
            *self.credential.lock().await = None;
        }
    }
}

/// The SDK's messages run to several lines with links; the first two carry the cause.
fn first_lines(message: &str) -> String {
    message.lines().filter(|l| !l.trim().is_empty()).take(2).collect::<Vec<_>>().join(" ")
}

/// How the SDK's credentials reach the sign-in service.
struct Pipeline<'a> {
    client: &'a reqwest::Client,
    retry: &'a HttpOptions,
    authority_host: Option<&'a str>,
}

impl Pipeline<'_> {
    /// Options for the SDK's pipeline: our client (its certificate authorities and proxies), and
    /// retries within the same budget as requests to the service.
    fn client_options(&self) -> ClientOptions {
        let seconds = |d: Duration| azure_core::time::Duration::try_from(d).unwrap_or(azure_core::time::Duration::seconds(30));
        let cloud = self.authority_host.map(|host| {
            let mut custom = azure_core::cloud::CustomConfiguration::default();
            custom.authority_host = host.to_owned();
            Arc::new(azure_core::cloud::CloudConfiguration::from(custom))
        });
        ClientOptions {
            transport: Some(Transport::new(Arc::new(self.client.clone()))),
            retry: RetryOptions::exponential(ExponentialRetryOptions {
                initial_delay: seconds(self.retry.backoff_base),
                max_retries: self.retry.max_attempts.saturating_sub(1),
                max_total_elapsed: seconds(self.retry.retry_budget),
                max_delay: seconds(self.retry.backoff_cap),
            }),
            cloud,
            ..Default::default()
        }
    }
}

fn credential(sign_in: &SignIn, pipeline: &Pipeline<'_>) -> Result<Arc<dyn TokenCredential>, String> {
    let failed = |e: azure_core::Error| format!("cannot set up sign-in ({}): {}", sign_in.name(), first_lines(&e.to_string()));
    let options = || pipeline.client_options();
    Ok(match sign_in {
        SignIn::None => return Err("no sign-in is configured".to_owned()),
        SignIn::ClientSecret { tenant_id, client_id, secret } => ClientSecretCredential::new(
            tenant_id,
            client_id.clone(),
            Secret::new(secret.clone()),
            Some(ClientSecretCredentialOptions { client_options: options() }),
        )
        .map_err(failed)?,
        SignIn::AzureCli { tenant_id } => {
            AzureCliCredential::new(Some(AzureCliCredentialOptions { tenant_id: tenant_id.clone(), ..Default::default() }))
                .map_err(failed)?
        }
        SignIn::ManagedIdentity { client_id } => ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
            user_assigned_id: client_id.clone().map(UserAssignedId::ClientId),
            client_options: options(),
        }))
        .map_err(failed)?,
        SignIn::WorkloadIdentity => WorkloadIdentityCredential::new(Some(WorkloadIdentityCredentialOptions {
            credential_options: ClientAssertionCredentialOptions { client_options: options() },
            ..Default::default()
        }))
        .map_err(failed)?,
        SignIn::Default => {
            let members = chain_members(&env_var);
            let mut chain = Vec::new();
            for member in members {
                // A member that cannot even be set up (a variable it needs is missing) is skipped.
                if let Ok(c) = credential(&member, pipeline) {
                    chain.push((member.name(), c));
                }
            }
            Arc::new(Chain(chain))
        }
    })
}

/// The credentials the default sign-in tries, in order, as the Azure SDKs' default chains do: a
/// client secret from the environment variables, workload identity where its token file is set,
/// managed identity where the platform says it offers one (App Service, Functions, Arc, Cloud
/// Shell set `IDENTITY_ENDPOINT` or `MSI_ENDPOINT`), then the Azure CLI. A virtual machine's
/// managed identity (IMDS, which announces itself in no variable) is chosen by naming it: probing
/// for it would hold up every developer's first request.
pub fn chain_members(var: &dyn Fn(&str) -> Option<String>) -> Vec<SignIn> {
    let mut members = Vec::new();
    if let Some(secret) = SignIn::client_secret_from(var) {
        members.push(secret);
    }
    if var("AZURE_FEDERATED_TOKEN_FILE").is_some() {
        members.push(SignIn::WorkloadIdentity);
    }
    if var("IDENTITY_ENDPOINT").is_some() || var("MSI_ENDPOINT").is_some() {
        members.push(SignIn::ManagedIdentity { client_id: None });
    }
    members.push(SignIn::AzureCli { tenant_id: None });
    members
}

/// Tries credentials in order; the first token wins. `azure_identity` 1.0 has no chain beyond the
/// developer tools' (`DeveloperToolsCredential`: Azure CLI and Azure Developer CLI), so the
/// default one is put together here from its credentials.
#[derive(Debug)]
struct Chain(Vec<(&'static str, Arc<dyn TokenCredential>)>);

#[async_trait::async_trait]
impl TokenCredential for Chain {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<azure_core::credentials::TokenRequestOptions<'_>>,
    ) -> azure_core::Result<azure_core::credentials::AccessToken> {
        let mut failures = Vec::new();
        for (name, credential) in &self.0 {
            match credential.get_token(scopes, options.clone()).await {
                Ok(token) => {
                    tracing::info!("signed in with {name}");
                    return Ok(token);
                }
                Err(e) => failures.push(format!("{name}: {}", first_lines(&e.to_string()))),
            }
        }
        Err(azure_core::Error::with_message(
            azure_core::error::ErrorKind::Credential,
            format!(
                "no sign-in worked (tried {}); name one with a profile's sign_in, or set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET",
                failures.join("; ")
            ),
        ))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_of_an_environment() {
        assert_eq!(
            scope_for(&Origin::parse("https://contoso.operations.dynamics.com/").unwrap()),
            "https://contoso.operations.dynamics.com/.default"
        );
        assert_eq!(scope_for(&Origin::parse("http://127.0.0.1:8080").unwrap()), "http://127.0.0.1:8080/.default");
    }

    #[test]
    fn auto_mode_skips_loopback_and_no_sign_in() {
        let secret = SignIn::ClientSecret { tenant_id: "t".into(), client_id: "c".into(), secret: "s".into() };
        let remote = Origin::parse("https://contoso.operations.dynamics.com").unwrap();
        let local = Origin::parse("http://127.0.0.1:9").unwrap();
        let auto = Authenticator::new(AuthMode::Auto, secret.clone());
        assert_eq!(auto.applies_to(&remote), Ok(true));
        assert_eq!(auto.applies_to(&local), Ok(false));
        assert_eq!(Authenticator::new(AuthMode::Auto, SignIn::None).applies_to(&remote), Ok(false));
        assert_eq!(Authenticator::new(AuthMode::Auto, SignIn::Default).applies_to(&remote), Ok(true));
        assert_eq!(Authenticator::new(AuthMode::Always, secret).applies_to(&local), Ok(true));
        assert!(Authenticator::new(AuthMode::Always, SignIn::None).applies_to(&local).is_err());
    }

    #[test]
    fn the_default_chain_tries_what_the_environment_offers_then_the_azure_cli() {
        let vars = |set: &'static [(&'static str, &'static str)]| {
            move |name: &str| set.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
        };
        let names = |members: Vec<SignIn>| members.iter().map(SignIn::name).collect::<Vec<_>>();
        assert_eq!(names(chain_members(&vars(&[]))), ["azure-cli"]);
        let everything = vars(&[
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_CLIENT_SECRET", "s"),
            ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"),
            ("IDENTITY_ENDPOINT", "http://169.254.169.254"),
        ]);
        assert_eq!(names(chain_members(&everything)), ["client-secret", "workload-identity", "managed-identity", "azure-cli"]);
        // d365fo-client's variables count as a client secret too; an incomplete trio does not.
        let d365fo = vars(&[("D365FO_TENANT_ID", "t"), ("D365FO_CLIENT_ID", "c"), ("D365FO_CLIENT_SECRET", "s"), ("AZURE_CLIENT_ID", "x")]);
        assert_eq!(chain_members(&d365fo)[0], SignIn::ClientSecret { tenant_id: "t".into(), client_id: "c".into(), secret: "s".into() });
    }

    #[test]
    fn tokens_are_kept_for_most_of_their_life_however_short() {
        assert_eq!(refresh_margin(Duration::from_secs(3599)), Duration::from_secs(60));
        assert_eq!(refresh_margin(Duration::from_secs(60)), Duration::from_secs(12));
        assert_eq!(refresh_margin(Duration::from_secs(1)), Duration::from_millis(200));
        assert_eq!(refresh_margin(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn a_secret_is_never_in_a_debug_print() {
        let s = SignIn::ClientSecret { tenant_id: "t".into(), client_id: "c".into(), secret: "hunter2".into() };
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
