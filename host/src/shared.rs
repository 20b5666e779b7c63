//! The shared store a team publishes versions to: a URL the user configured, opened with
//! `object_store` (Azure Blob Storage, S3 and directories through one client).
//!
//! URLs: `az://CONTAINER/PREFIX` (the account from `AZURE_STORAGE_ACCOUNT_NAME` or the connection
//! string), `https://ACCOUNT.blob.core.windows.net/CONTAINER/PREFIX`, `s3://BUCKET/PREFIX` (region
//! and credentials from the usual `AWS_*` variables), `file:///PATH`. Credentials for Azure, in
//! order: a connection string, a SAS token, an account key, else the same sign-in as the
//! environments' (`azure_identity`) with Azure Storage's scope. None is ever written anywhere.

use crate::auth::Authenticator;
use crate::cancel::CancelToken;
use crate::imports::http::HttpOptions;
use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::azure::{AzureCredential, MicrosoftAzureBuilder};
use object_store::local::LocalFileSystem;
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, ClientOptions, CredentialProvider, ObjectStore, RetryConfig};
use std::sync::Arc;
use std::time::Duration;

/// Azure Storage's token scope.
const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";

/// Credentials for Azure Blob Storage the user gave (from the environment); any may be absent.
#[derive(Clone, Default)]
pub struct AzureStorageCredentials {
    /// `AZURE_STORAGE_ACCOUNT_NAME`.
    pub account: Option<String>,
    /// `AZURE_STORAGE_CONNECTION_STRING`: account, key or SAS, and endpoint in one.
    pub connection_string: Option<String>,
    /// `AZURE_STORAGE_SAS_TOKEN`.
    pub sas_token: Option<String>,
    /// `AZURE_STORAGE_ACCOUNT_KEY`.
    pub access_key: Option<String>,
}

impl AzureStorageCredentials {
    /// The credentials the standard variables give.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        AzureStorageCredentials {
            account: var("AZURE_STORAGE_ACCOUNT_NAME"),
            connection_string: var("AZURE_STORAGE_CONNECTION_STRING"),
            sas_token: var("AZURE_STORAGE_SAS_TOKEN"),
            access_key: var("AZURE_STORAGE_ACCOUNT_KEY"),
        }
    }
}

impl std::fmt::Debug for AzureStorageCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets are never printed, only whether they are set.
        f.debug_struct("AzureStorageCredentials")
            .field("account", &self.account)
            .field("connection_string", &self.connection_string.is_some())
            .field("sas_token", &self.sas_token.is_some())
            .field("access_key", &self.access_key.is_some())
            .finish()
    }
}

#[derive(Clone, Debug)]
pub struct SharedOptions {
    pub url: String,
    pub azure: AzureStorageCredentials,
    /// The largest object read or written (a pack is about 8 MiB; a manifest a few).
    pub max_object_bytes: u64,
    /// Objects moved at once by `get-many`.
    pub concurrency: usize,
    /// Per request, retries included: a store that does not answer within it counts as down.
    pub retry_budget: Duration,
    pub request_timeout: Duration,
}

impl SharedOptions {
    pub fn new(url: impl Into<String>) -> Self {
        SharedOptions {
            url: url.into(),
            azure: AzureStorageCredentials::default(),
            max_object_bytes: 256 << 20,
            concurrency: 8,
            retry_budget: Duration::from_secs(60),
            request_timeout: Duration::from_secs(120),
        }
    }
}

/// An opened shared store: what the host lends the component as a `shared-store`.
#[derive(Clone)]
pub struct SharedStore {
    pub(crate) store: Arc<dyn ObjectStore>,
    /// The URL as configured, without a query (where a SAS would be).
    pub(crate) location: String,
    pub(crate) max_object_bytes: u64,
    pub(crate) concurrency: usize,
    pub(crate) cancel: CancelToken,
}

impl std::fmt::Debug for SharedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedStore").field("location", &self.location).finish()
    }
}

impl SharedStore {
    /// Opens the store `options.url` names. A directory is created when `create` (publishing);
    /// a sync never creates one (a mistyped path must not become an empty store).
    pub fn open(
        options: &SharedOptions,
        auth: Arc<Authenticator>,
        http: &HttpOptions,
        cancel: CancelToken,
        create: bool,
    ) -> Result<SharedStore, String> {
        let raw = options.url.trim();
        let location = raw.split('?').next().unwrap_or(raw).trim_end_matches('/').to_owned();
        let bad = |why: String| format!("shared store {location}: {why}");
        let (scheme, rest) = raw
            .split_once("://")
            .ok_or_else(|| bad("expected a URL such as az://container/prefix, s3://bucket/prefix or file:///path".to_owned()))?;
        let retry = RetryConfig {
            backoff: BackoffConfig { init_backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(5), base: 2.0 },
            max_retries: 5,
            retry_timeout: options.retry_budget,
        };
        let mut client = ClientOptions::new()
            .with_timeout(options.request_timeout)
            .with_connect_timeout(http.connect_timeout)
            .with_user_agent(reqwest::header::HeaderValue::from_static(concat!("d365meta/", env!("CARGO_PKG_VERSION"))));
        // The certificate authorities trusted for the environments (a TLS-inspecting proxy's) are
        // trusted for the store too.
        if let Some(path) = &http.ca_file {
            let pem = std::fs::read(path).map_err(|e| bad(format!("certificate authorities {}: {e}", path.display())))?;
            let certificates = object_store::Certificate::from_pem_bundle(&pem)
                .map_err(|e| bad(format!("certificate authorities {}: {e}", path.display())))?;
            for certificate in certificates {
                client = client.with_root_certificate(certificate);
            }
        }
        let store: Arc<dyn ObjectStore> = match scheme.to_ascii_lowercase().as_str() {
            "file" => {
                let path = std::path::PathBuf::from(rest.strip_prefix("localhost").unwrap_or(rest));
                if !path.is_absolute() {
                    return Err(bad("a file URL needs an absolute path (file:///path)".to_owned()));
                }
                if create {
                    std::fs::create_dir_all(&path).map_err(|e| bad(format!("creating the directory: {e}")))?;
                } else if !path.is_dir() {
                    return Err(bad("no such directory".to_owned()));
                }
                Arc::new(LocalFileSystem::new_with_prefix(&path).map_err(|e| bad(e.to_string()))?)
            }
            "az" | "azure" | "abfs" | "abfss" | "https" | "http" => {
                let (container, prefix) = azure_container(scheme, rest).map_err(bad)?;
                let store = azure(options, &container, auth, http, cancel.clone(), retry, client).map_err(bad)?;
                return Ok(SharedStore::with_prefix(store, &prefix, location, options, cancel));
            }
            "s3" | "s3a" => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                let store = AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_conditional_put(S3ConditionalPut::ETagMatch)
                    .with_retry(retry)
                    .with_client_options(client)
                    .build()
                    .map_err(|e| bad(e.to_string()))?;
                return Ok(SharedStore::with_prefix(Arc::new(store), prefix, location, options, cancel));
            }
            other => return Err(bad(format!("unknown scheme {other}: expected az, s3 or file"))),
        };
        Ok(SharedStore { store, location, max_object_bytes: options.max_object_bytes, concurrency: options.concurrency.max(1), cancel })
    }

    fn with_prefix(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        location: String,
        options: &SharedOptions,
        cancel: CancelToken,
    ) -> SharedStore {
        let prefix = prefix.trim_matches('/');
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() { store } else { Arc::new(PrefixStore::new(store, prefix)) };
        SharedStore { store, location, max_object_bytes: options.max_object_bytes, concurrency: options.concurrency.max(1), cancel }
    }

    pub fn location(&self) -> &str {
        &self.location
    }
}

/// The container and prefix of an Azure URL: `az://CONTAINER/PREFIX` or
/// `https://ACCOUNT.blob.core.windows.net/CONTAINER/PREFIX`.
fn azure_container(scheme: &str, rest: &str) -> Result<(String, String), String> {
    let rest = rest.split('?').next().unwrap_or(rest);
    let path = if scheme.starts_with("http") { rest.split_once('/').map_or("", |(_, p)| p) } else { rest };
    let (container, prefix) = path.split_once('/').unwrap_or((path, ""));
    if container.is_empty() {
        return Err("the URL names no container".to_owned());
    }
    Ok((container.to_owned(), prefix.to_owned()))
}

/// A connection string's parts (`AccountName=...;AccountKey=...;BlobEndpoint=...`). Written here
/// because `object_store` reads keys, tokens and endpoints but not connection strings.
#[derive(Debug, Default, PartialEq, Eq)]
struct ConnectionString {
    account: Option<String>,
    key: Option<String>,
    sas: Option<String>,
    blob_endpoint: Option<String>,
}

fn parse_connection_string(text: &str) -> Result<ConnectionString, String> {
    let mut out = ConnectionString::default();
    let (mut protocol, mut suffix) = ("https".to_owned(), "core.windows.net".to_owned());
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = part.split_once('=').ok_or_else(|| "the connection string has a part without `=`".to_owned())?;
        match key.trim().to_ascii_lowercase().as_str() {
            "accountname" => out.account = Some(value.to_owned()),
            "accountkey" => out.key = Some(value.to_owned()),
            "sharedaccesssignature" => out.sas = Some(value.to_owned()),
            "blobendpoint" => out.blob_endpoint = Some(value.trim_end_matches('/').to_owned()),
            "defaultendpointsprotocol" => protocol = value.to_owned(),
            "endpointsuffix" => suffix = value.to_owned(),
            _ => {}
        }
    }
    if out.blob_endpoint.is_none()
        && let Some(account) = &out.account
    {
        out.blob_endpoint = Some(format!("{protocol}://{account}.blob.{suffix}"));
    }
    if out.account.is_none() {
        return Err("the connection string names no AccountName".to_owned());
    }
    Ok(out)
}

fn azure(
    options: &SharedOptions,
    container: &str,
    auth: Arc<Authenticator>,
    http: &HttpOptions,
    cancel: CancelToken,
    retry: RetryConfig,
    client: ClientOptions,
) -> Result<Arc<dyn ObjectStore>, String> {
    let url = options.url.split('?').next().unwrap_or(&options.url);
    let mut builder = MicrosoftAzureBuilder::new().with_container_name(container).with_retry(retry);
    let mut client = client;
    let from_https = url.starts_with("https://") || url.starts_with("http://");
    let mut account = options.azure.account.clone();
    if from_https {
        let host = url.split_once("://").map_or("", |(_, r)| r).split('/').next().unwrap_or("");
        account = Some(host.split('.').next().unwrap_or(host).to_owned());
        let scheme = url.split_once("://").map_or("https", |(s, _)| s);
        builder = builder.with_endpoint(format!("{scheme}://{host}"));
        client = client.with_allow_http(scheme == "http");
    }
    let creds = &options.azure;
    if let Some(text) = &creds.connection_string {
        let parsed = parse_connection_string(text).map_err(|e| format!("AZURE_STORAGE_CONNECTION_STRING: {e}"))?;
        account = parsed.account.clone();
        if let Some(endpoint) = &parsed.blob_endpoint {
            client = client.with_allow_http(endpoint.starts_with("http://"));
            builder = builder.with_endpoint(endpoint.clone());
        }
        builder = match (&parsed.key, &parsed.sas) {
            (Some(key), _) => builder.with_access_key(key),
            (None, Some(sas)) => builder.with_config(object_store::azure::AzureConfigKey::SasKey, sas.trim_start_matches('?')),
            (None, None) => builder,
        };
    } else if let Some(sas) = &creds.sas_token {
        builder = builder.with_config(object_store::azure::AzureConfigKey::SasKey, sas.trim_start_matches('?'));
    } else if let Some(key) = &creds.access_key {
        builder = builder.with_access_key(key);
    } else {
        let client = crate::imports::http::shared_client(http.connect_timeout, http.ca_file.as_deref())?;
        builder = builder.with_credentials(Arc::new(SignedIn { auth, client, http: http.clone(), cancel }));
    }
    let account = account.ok_or_else(|| {
        "no storage account: give it in the URL (https://ACCOUNT.blob.core.windows.net/CONTAINER), AZURE_STORAGE_ACCOUNT_NAME or AZURE_STORAGE_CONNECTION_STRING".to_owned()
    })?;
    let store = builder.with_account(account).with_client_options(client).build().map_err(|e| e.to_string())?;
    Ok(Arc::new(store))
}

/// Azure Storage tokens from the sign-in the environments use.
struct SignedIn {
    auth: Arc<Authenticator>,
    client: reqwest::Client,
    http: HttpOptions,
    cancel: CancelToken,
}

impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignedIn")
    }
}

#[async_trait::async_trait]
impl CredentialProvider for SignedIn {
    type Credential = AzureCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AzureCredential>> {
        let token = self.auth.token(&self.client, STORAGE_SCOPE, &self.http, &self.cancel).await.map_err(|message| {
            object_store::Error::Generic { store: "MicrosoftAzure", source: format!("signing in to Azure Storage: {message}").into() }
        })?;
        Ok(Arc::new(AzureCredential::BearerToken(token)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_strings_give_account_key_and_endpoint() {
        let c = parse_connection_string(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;",
        )
        .unwrap();
        assert_eq!(c.account.as_deref(), Some("devstoreaccount1"));
        assert_eq!(c.key.as_deref(), Some("a2V5"));
        assert_eq!(c.blob_endpoint.as_deref(), Some("http://127.0.0.1:10000/devstoreaccount1"));
        let c = parse_connection_string("AccountName=team;SharedAccessSignature=sv=1&sig=x").unwrap();
        assert_eq!(c.blob_endpoint.as_deref(), Some("https://team.blob.core.windows.net"));
        assert_eq!(c.sas.as_deref(), Some("sv=1&sig=x"));
        assert!(parse_connection_string("AccountKey=x").is_err());
    }

    #[test]
    fn azure_urls_name_container_and_prefix() {
        assert_eq!(azure_container("az", "team/d365").unwrap(), ("team".to_owned(), "d365".to_owned()));
        assert_eq!(azure_container("https", "acct.blob.core.windows.net/team/a/b").unwrap(), ("team".to_owned(), "a/b".to_owned()));
        assert!(azure_container("az", "").is_err());
    }
}
