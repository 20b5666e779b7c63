//! d365meta as a Model Context Protocol server, on the official Rust SDK (`rmcp`): tools for
//! searching and reading the cache, syncing environments, and resources for entities and
//! enumerations; over stdio (an assistant or editor starts it) or streamable HTTP.
//!
//! Every call runs in the core component under the host's limits: reads on a bounded pool of
//! read-only instances lent no environment, syncs on instances of their own in the background.

mod args;
mod engine;
mod render;
mod server;

pub use engine::{Engine, EngineConfig, Profiles};
pub use server::Server;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use rmcp::ServiceExt;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a sync may take to stop at its next step when the server ends.
const SHUTDOWN_PATIENCE: Duration = Duration::from_secs(30);

/// Serves one client over stdin and stdout until stdin closes (or `shutdown` fires); then stops the
/// syncs it started, leaving the cache as it was before their unfinished steps.
pub async fn serve_stdio(engine: Arc<Engine>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let running = Server::new(engine.clone()).serve(rmcp::transport::stdio()).await?;
    let stop = running.cancellation_token();
    tokio::select! {
        ended = running.waiting() => { ended?; }
        () = shutdown.cancelled() => { stop.cancel(); }
    }
    engine.shutdown(SHUTDOWN_PATIENCE).await;
    Ok(())
}

/// Where and for whom the HTTP server listens.
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// Required of every request as `Authorization: Bearer <token>` when set; required to be set
    /// for an address that is not loopback.
    pub token: Option<String>,
    /// Whether a non-loopback address may be used at all.
    pub allow_remote: bool,
}

impl HttpConfig {
    /// Refuses what would expose the cache without the operator's say: a non-loopback address
    /// without `allow_remote`, or without a token.
    pub fn check(&self) -> anyhow::Result<()> {
        if !self.listen.ip().is_loopback() {
            anyhow::ensure!(
                self.allow_remote,
                "{} is not a loopback address; serving beyond this machine needs --allow-remote (and a token)",
                self.listen
            );
            anyhow::ensure!(
                self.token.as_deref().is_some_and(|t| !t.is_empty()),
                "serving on {} needs a bearer token: set D365META_MCP_TOKEN",
                self.listen
            );
        }
        Ok(())
    }
}

/// Byte strings compared in time independent of where they differ, so that a token cannot be
/// guessed byte by byte from response times. (A few lines; no crate is needed for it.)
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn plain(status: StatusCode, text: &str) -> Response<http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>> {
    let mut response = Response::new(Full::new(Bytes::from(text.to_owned())).boxed());
    *response.status_mut() = status;
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(hyper::header::WWW_AUTHENTICATE, hyper::header::HeaderValue::from_static("Bearer"));
    }
    response
}

/// Serves MCP's streamable HTTP at `/mcp` until `shutdown` fires. `on_listening` is told the
/// address actually bound (the port may have been 0).
pub async fn serve_http(
    engine: Arc<Engine>,
    config: HttpConfig,
    shutdown: CancellationToken,
    on_listening: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    config.check()?;
    let mut http_config = StreamableHttpServerConfig::default().with_cancellation_token(shutdown.child_token());
    if !config.listen.ip().is_loopback() {
        // Host validation guards an unauthenticated local server against DNS rebinding; a remote
        // server is reached under names this one cannot know, and its token guards it instead.
        http_config = http_config.disable_allowed_hosts();
    }
    let factory_engine = engine.clone();
    let service =
        StreamableHttpService::new(move || Ok(Server::new(factory_engine.clone())), LocalSessionManager::default().into(), http_config);
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    on_listening(listener.local_addr()?);
    let token: Option<Arc<str>> = config.token.filter(|t| !t.is_empty()).map(Arc::from);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => accepted?,
            () = shutdown.cancelled() => break,
        };
        let service = service.clone();
        let token = token.clone();
        let handler = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
            let mut service = service.clone();
            let token = token.clone();
            async move {
                if request.uri().path() != "/mcp" {
                    return Ok::<_, std::convert::Infallible>(plain(StatusCode::NOT_FOUND, "the MCP endpoint is /mcp"));
                }
                if let Some(expected) = &token {
                    let given = request
                        .headers()
                        .get(hyper::header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.strip_prefix("Bearer "));
                    if !given.is_some_and(|g| same_secret(g.as_bytes(), expected.as_bytes())) {
                        tracing::warn!(%peer, "refused an MCP request without the bearer token");
                        return Ok(plain(StatusCode::UNAUTHORIZED, "a bearer token is required"));
                    }
                }
                tower_service::Service::call(&mut service, request).await
            }
        });
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new()).serve_connection(io, handler).await
            {
                tracing::debug!(%peer, "MCP connection ended: {e}");
            }
        });
    }
    engine.shutdown(SHUTDOWN_PATIENCE).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(listen: &str, token: Option<&str>, allow_remote: bool) -> HttpConfig {
        HttpConfig { listen: listen.parse().unwrap(), token: token.map(str::to_owned), allow_remote }
    }

    #[test]
    fn only_loopback_is_served_without_the_operators_say() {
        assert!(config("127.0.0.1:0", None, false).check().is_ok());
        assert!(config("[::1]:8765", None, false).check().is_ok());
        let open = config("0.0.0.0:8765", Some("secret"), false).check().unwrap_err().to_string();
        assert!(open.contains("--allow-remote"), "{open}");
        let tokenless = config("0.0.0.0:8765", None, true).check().unwrap_err().to_string();
        assert!(tokenless.contains("D365META_MCP_TOKEN"), "{tokenless}");
        assert!(config("0.0.0.0:8765", Some(""), true).check().is_err(), "an empty token is no token");
        assert!(config("192.168.1.10:8765", Some("secret"), true).check().is_ok());
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"correct horse", b"correct horse"));
        assert!(!same_secret(b"correct horse", b"correct horsf"));
        assert!(!same_secret(b"correct horse", b"correct hors"));
        assert!(!same_secret(b"", b"x"));
    }
}
