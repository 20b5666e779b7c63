//! What the command-line tests share: a run of the binary that nothing of the caller's
//! environment reaches, and a simulator over HTTPS. Each test binary uses what it needs of it.
#![allow(dead_code)]

use d365meta_simulator::{Dataset, EnvironmentSpec, Scale, Simulator, TestPki};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// Variables that name environments or credentials: a run of the binary must not see the caller's.
pub fn without_caller_variables(command: &mut Command) {
    for var in [
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_AUTHORITY_HOST",
        "D365FO_BASE_URL",
        "D365FO_TENANT_ID",
        "D365FO_CLIENT_ID",
        "D365FO_CLIENT_SECRET",
    ] {
        command.env_remove(var);
    }
}

/// One tiny environment served over HTTPS by a certificate authority made for this run, whose
/// certificate is written to `dir` for the binary to trust.
pub async fn tls_simulator(dir: &Path) -> (Simulator, PathBuf) {
    let pki = TestPki::generate().unwrap();
    let ca = dir.join("authority.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let data = Arc::new(Dataset::generate(Scale::Tiny));
    let sim = Simulator::start_tls("127.0.0.1".parse().unwrap(), vec![EnvironmentSpec::new("a", data)], &pki).await.unwrap();
    (sim, ca)
}
