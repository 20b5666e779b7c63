//! The simulator's HTTP side: one loopback listener per environment (as each real environment has
//! its own host), and one for the Azure AD token endpoint.

mod auth;
mod body;
mod cache;
mod env;
mod faults;
mod filter;
mod odata;
mod routes;
mod tls;

pub use auth::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_TOKEN};
pub use env::{EnvironmentSpec, SimEnv};
pub use faults::{Fault, FaultKind};
pub use tls::TestPki;

use anyhow::Context;
use auth::TokenService;
use body::Chunks;
use cache::CacheRegistry;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// One request as the simulator answered it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    /// As sent (still percent-encoded).
    pub path_and_query: String,
    /// The status answered; 0 when the connection was dropped without an answer.
    pub status: u16,
    pub authorization: Option<String>,
    pub client_request_id: Option<String>,
    pub at: Instant,
}

/// Returned by a request handler to make hyper drop the connection without answering.
#[derive(Debug)]
pub(crate) struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for Dropped {}

/// A deterministic, unique id per request, shaped like the GUIDs services report.
pub(crate) fn activity_id(scope: &str, n: u64) -> String {
    let a = crate::rng::hash(&["activity", scope, &n.to_string()]);
    let b = crate::rng::hash(&["activity-tail", scope, &n.to_string()]);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}

#[derive(Clone)]
enum Target {
    Env(Arc<SimEnv>),
    Token(Arc<TokenService>),
}

impl Target {
    async fn handle(&self, req: Request<Incoming>, conn: Conn) -> Result<Response<Chunks>, Dropped> {
        match self {
            Target::Env(env) => env.handle(req, conn).await,
            Target::Token(tokens) => tokens.handle(req, conn).await,
        }
    }
}

/// The connection a request came on, so that a fault can reset it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Conn {
    #[cfg(unix)]
    fd: std::os::fd::RawFd,
}

impl Conn {
    fn of(stream: &tokio::net::TcpStream) -> Conn {
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            Conn { fd: stream.as_raw_fd() }
        }
        #[cfg(not(unix))]
        {
            let _ = stream;
            Conn {}
        }
    }

    /// Makes the connection end with a TCP reset instead of an orderly close when it is dropped
    /// (`SO_LINGER` with a zero timeout), as a peer that crashes or a middlebox that gives up does.
    pub(crate) fn reset_on_close(self) {
        #[cfg(unix)]
        {
            // SAFETY: the descriptor belongs to the connection whose request is being handled, so it
            // is open for the duration of this call; setsockopt only reads the `linger` value.
            unsafe {
                let linger = libc::linger { l_onoff: 1, l_linger: 0 };
                libc::setsockopt(
                    self.fd,
                    libc::SOL_SOCKET,
                    libc::SO_LINGER,
                    (&linger as *const libc::linger).cast(),
                    std::mem::size_of::<libc::linger>() as libc::socklen_t,
                );
            }
        }
    }
}

/// Builds the response to a fault that answers without the real answer, or `None` for faults
/// that change how the real answer is sent.
pub(crate) fn fault_response(kind: &FaultKind, conn: Conn) -> Option<Result<Response<Chunks>, Dropped>> {
    match kind {
        FaultKind::Close => Some(Err(Dropped)),
        FaultKind::Reset => {
            conn.reset_on_close();
            Some(Err(Dropped))
        }
        FaultKind::Redirect { status, location } => {
            let mut r = Response::new(Chunks::default());
            *r.status_mut() = hyper::StatusCode::from_u16(*status).unwrap_or(hyper::StatusCode::FOUND);
            if let Ok(value) = hyper::header::HeaderValue::from_str(location) {
                r.headers_mut().insert(hyper::header::LOCATION, value);
            }
            Some(Ok(r))
        }
        _ => None,
    }
}

/// Accepts connections until aborted; aborting drops every open connection too. With `tls`, each
/// connection is HTTPS.
async fn serve(listener: TcpListener, target: Target, tls: Option<tokio_rustls::TlsAcceptor>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let target = target.clone();
                    let conn = Conn::of(&stream);
                    let tls = tls.clone();
                    connections.spawn(async move {
                        let service = service_fn(move |req| {
                            let target = target.clone();
                            async move { target.handle(req, conn).await }
                        });
                        let http = http1::Builder::new().keep_alive(true).to_owned();
                        match tls {
                            None => {
                                let _ = http.serve_connection(TokioIo::new(stream), service).await;
                            }
                            // A client that does not trust the authority ends the handshake: nothing is served.
                            Some(acceptor) => {
                                if let Ok(stream) = acceptor.accept(stream).await {
                                    let _ = http.serve_connection(TokioIo::new(stream), service).await;
                                }
                            }
                        }
                    });
                }
                // Out of file descriptors, usually: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

pub struct Simulator {
    envs: RwLock<Vec<Arc<SimEnv>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    tokens: Arc<TokenService>,
    token_addr: SocketAddr,
    listen: IpAddr,
    /// The next port to listen on; 0 for an ephemeral port each time.
    next_port: Mutex<u16>,
    caches: Arc<CacheRegistry>,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Simulator {
    /// Starts one listener per environment on ephemeral ports of `listen` (usually 127.0.0.1).
    pub async fn start(listen: IpAddr, specs: Vec<EnvironmentSpec>) -> anyhow::Result<Simulator> {
        Simulator::start_at(SocketAddr::new(listen, 0), specs).await
    }

    /// Environments listen on `listen`'s port and the following ones, in order, then the token
    /// endpoint on the next; later environments continue from there. Port 0: ephemeral ports.
    pub async fn start_at(listen: SocketAddr, specs: Vec<EnvironmentSpec>) -> anyhow::Result<Simulator> {
        Simulator::start_with(listen, specs, None).await
    }

    /// As [`Simulator::start`], serving HTTPS (environments and token endpoint) with `pki`'s
    /// server certificate.
    pub async fn start_tls(listen: IpAddr, specs: Vec<EnvironmentSpec>, pki: &TestPki) -> anyhow::Result<Simulator> {
        Simulator::start_with(SocketAddr::new(listen, 0), specs, Some(pki.acceptor.clone())).await
    }

    async fn start_with(
        listen: SocketAddr,
        specs: Vec<EnvironmentSpec>,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> anyhow::Result<Simulator> {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let caches = Arc::new(CacheRegistry::default());
        let next_port = Mutex::new(listen.port());
        let mut envs = Vec::new();
        let mut tasks = Vec::new();
        for (index, spec) in specs.into_iter().enumerate() {
            let listener = bind(listen.ip(), &next_port).await?;
            let env = Arc::new(SimEnv::new(index, listener.local_addr()?, spec, caches.clone(), scheme));
            tasks.push(tokio::spawn(serve(listener, Target::Env(env.clone()), tls.clone())));
            envs.push(env);
        }
        let tokens = Arc::new(TokenService::new());
        let listener = bind(listen.ip(), &next_port).await?;
        let token_addr = listener.local_addr()?;
        tasks.push(tokio::spawn(serve(listener, Target::Token(tokens.clone()), tls.clone())));
        Ok(Simulator { envs: RwLock::new(envs), tasks: Mutex::new(tasks), tokens, token_addr, listen: listen.ip(), next_port, caches, tls })
    }

    /// Adds an environment on its own listener; returns its index.
    pub async fn add(&self, spec: EnvironmentSpec) -> anyhow::Result<usize> {
        let listener = bind(self.listen, &self.next_port).await?;
        let mut envs = self.envs.write().unwrap_or_else(|e| e.into_inner());
        let index = envs.len();
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let env = Arc::new(SimEnv::new(index, listener.local_addr()?, spec, self.caches.clone(), scheme));
        lock(&self.tasks).push(tokio::spawn(serve(listener, Target::Env(env.clone()), self.tls.clone())));
        envs.push(env);
        Ok(index)
    }

    /// The environment at `index`; panics if there is none (a test's own mistake).
    pub fn env(&self, index: usize) -> Arc<SimEnv> {
        let envs = self.envs.read().unwrap_or_else(|e| e.into_inner());
        match envs.get(index) {
            Some(env) => env.clone(),
            None => panic!("the simulator has {} environments, not {}", envs.len(), index + 1),
        }
    }

    pub fn env_named(&self, name: &str) -> Option<Arc<SimEnv>> {
        self.envs.read().unwrap_or_else(|e| e.into_inner()).iter().find(|e| e.name() == name).cloned()
    }

    pub fn envs(&self) -> Vec<Arc<SimEnv>> {
        self.envs.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// `http://127.0.0.1:PORT/<tenant>/oauth2/v2.0/token` (https with TLS), answering the
    /// client-credentials flow.
    pub fn token_endpoint(&self, tenant: &str) -> String {
        format!("{}/{tenant}/oauth2/v2.0/token", self.authority_host())
    }

    /// The token service's origin, as `AZURE_AUTHORITY_HOST` names a sign-in authority.
    pub fn authority_host(&self) -> String {
        format!("{}://{}", if self.tls.is_some() { "https" } else { "http" }, self.token_addr)
    }

    /// The client id and secret the token endpoint accepts, and the token it issues (defaults:
    /// [`DEFAULT_CLIENT_ID`], [`DEFAULT_CLIENT_SECRET`], [`DEFAULT_TOKEN`]).
    pub fn set_credentials(&self, client_id: &str, client_secret: &str, token: &str) {
        self.tokens.set_credentials(client_id, client_secret, token);
    }

    /// The `expires_in` of issued tokens, in seconds (default 3599).
    pub fn set_token_expires_in(&self, seconds: u64) {
        self.tokens.set_expires_in(seconds);
    }

    pub fn token_requests(&self) -> Vec<RecordedRequest> {
        self.tokens.requests()
    }

    pub fn inject_token_fault(&self, fault: Fault) {
        lock(&self.tokens.faults).push(fault);
    }

    /// Stops every listener and drops open connections.
    pub async fn shutdown(self) {
        let tasks: Vec<JoinHandle<()>> = lock(&self.tasks).drain(..).collect();
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        for task in lock(&self.tasks).iter() {
            task.abort();
        }
    }
}

async fn bind(ip: IpAddr, next_port: &Mutex<u16>) -> anyhow::Result<TcpListener> {
    let port = {
        let mut next = lock(next_port);
        let port = *next;
        if port != 0 {
            *next = port.checked_add(1).context("no port left after 65535")?;
        }
        port
    };
    let addr = SocketAddr::new(ip, port);
    TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activity_ids_are_unique_guids() {
        let ids: std::collections::BTreeSet<String> = (0..1000).map(|n| activity_id("env", n)).collect();
        assert_eq!(ids.len(), 1000);
        let id = activity_id("env", 0);
        assert_eq!(id, activity_id("env", 0));
        assert_eq!(id.len(), 36);
        assert_eq!(id.split('-').map(str::len).collect::<Vec<_>>(), [8, 4, 4, 4, 12]);
    }
}
