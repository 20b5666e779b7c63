//! HTTPS for the simulator, with a certificate authority made for one test run: a client trusts
//! the simulator only when told to trust that authority, as a client behind a TLS-inspecting
//! proxy must be told to trust the proxy's.

use anyhow::Context as _;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use std::sync::Arc;

/// A certificate authority and a server certificate it signed for `127.0.0.1`, `::1` and `localhost`.
pub struct TestPki {
    /// The authority's certificate, PEM: what a client is given to trust.
    pub ca_pem: String,
    pub(crate) acceptor: tokio_rustls::TlsAcceptor,
}

impl TestPki {
    pub fn generate() -> anyhow::Result<TestPki> {
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "d365meta simulator test authority");
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
        let key = KeyPair::generate()?;
        let mut server = CertificateParams::new(vec!["127.0.0.1".to_owned(), "::1".to_owned(), "localhost".to_owned()])?;
        server.distinguished_name.push(DnType::CommonName, "d365meta simulator");
        let certificate = server.signed_by(&key, &ca)?;
        let private_key = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| anyhow::anyhow!("{e}"))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![certificate.der().clone()], private_key)
            .context("the simulator's server certificate")?;
        Ok(TestPki { ca_pem: ca.pem(), acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)) })
    }
}
