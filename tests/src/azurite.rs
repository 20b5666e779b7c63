//! Azurite, Microsoft's Azure Storage emulator, run as a child process for the tests that need a
//! real blob store.
//!
//! The emulator is the npm package pinned in `tests/azurite/package.json`; install it with
//! `npm ci --prefix tests/azurite`. Without it the tests that use [`Azurite::start`] fail (they never
//! skip). Each [`Azurite`] has its own loopback port and workspace directory, so tests can run in
//! parallel; dropping it stops the emulator and removes the directory.

use std::fs::OpenOptions;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The emulator's well-known development account (also Azurite's default).
pub const ACCOUNT_NAME: &str = "devstoreaccount1";
/// The well-known key of [`ACCOUNT_NAME`], the one Azurite accepts by default.
pub const ACCOUNT_KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// How long the emulator may take to accept connections (it usually needs well under a second).
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Attempts at starting on a fresh port, should another process take the chosen one first.
const START_ATTEMPTS: usize = 3;

/// A running Azurite blob service on `127.0.0.1`, persisting to a temporary directory.
pub struct Azurite {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl Azurite {
    /// Starts the blob emulator on a free loopback port and waits until it accepts connections.
    ///
    /// Panics if the npm package is not installed, or if the emulator does not come up (the panic
    /// message then includes its output).
    pub fn start() -> Azurite {
        let bin = azurite_bin();
        assert!(
            bin.exists(),
            "Azurite is not installed: {} is missing. Run `npm ci --prefix tests/azurite` from the repository root \
             (needs Node.js 20+ and npm).",
            bin.display()
        );
        let mut last_output = String::new();
        for _ in 0..START_ATTEMPTS {
            let mut azurite = Azurite { child: None, port: free_port(), dir: unique_dir() };
            std::fs::create_dir_all(azurite.data_dir()).expect("create Azurite's temporary directory");
            match azurite.spawn_and_wait() {
                Ok(()) => return azurite,
                // Another process took the port between choosing and binding it: try another.
                Err(output) if output.contains("EADDRINUSE") => last_output = output,
                Err(output) => panic!("Azurite did not start on port {}:\n{output}", azurite.port),
            }
        }
        panic!("Azurite did not start after {START_ATTEMPTS} attempts (port in use):\n{last_output}");
    }

    /// The port the blob service listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The blob endpoint of the development account, without trailing slash:
    /// `http://127.0.0.1:<port>/devstoreaccount1`.
    pub fn blob_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{ACCOUNT_NAME}", self.port)
    }

    /// A storage connection string for the development account at this emulator.
    pub fn connection_string(&self) -> String {
        format!("DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};BlobEndpoint={};", self.blob_endpoint())
    }

    /// Whether the emulator process is running (it is, unless [`kill`](Self::kill)ed).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Creates a blob container (if it does not exist) with the Azure SDK for JavaScript.
    /// Panics with the script's output if that fails.
    pub fn create_container(&self, name: &str) {
        let script = azurite_dir().join("create-container.mjs");
        let output = Command::new("node")
            .arg(&script)
            .arg(self.connection_string())
            .arg(name)
            .current_dir(azurite_dir())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run `node {}` (is Node.js installed?): {e}", script.display()));
        assert!(
            output.status.success(),
            "creating container {name:?} in Azurite failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Stops the emulator abruptly (the store "goes down"); the port then refuses connections.
    /// The data stays on disk for [`restart`](Self::restart). Does nothing if already stopped.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Same as [`kill`](Self::kill).
    pub fn stop(&mut self) {
        self.kill();
    }

    /// Starts the emulator again on the same port with the same data (containers and blobs survive);
    /// kills it first if it is running. Panics if it does not come up.
    pub fn restart(&mut self) {
        self.kill();
        if let Err(output) = self.spawn_and_wait() {
            panic!("Azurite did not restart on port {}:\n{output}", self.port);
        }
    }

    /// Everything the emulator printed so far (all runs).
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("azurite.log")
    }

    /// Starts the process and waits for the port; on failure, the process is gone and the error
    /// is its output.
    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let log = OpenOptions::new().create(true).append(true).open(self.log_path()).expect("create Azurite's log file");
        let log_err = log.try_clone().expect("duplicate Azurite's log file");
        let child = Command::new(azurite_bin())
            .args(["--blobHost", "127.0.0.1", "--blobPort"])
            .arg(self.port.to_string())
            .arg("--location")
            .arg(self.data_dir())
            .args(["--silent", "--skipApiVersionCheck", "--loose", "--disableTelemetry"])
            // Anything Azurite writes relative to its working directory stays in ours.
            .current_dir(&self.dir)
            // The default account only: a developer's own Azurite settings must not leak in.
            .env_remove("AZURITE_ACCOUNTS")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {} (is Node.js installed?): {e}", azurite_bin().display()));
        self.child = Some(child);

        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let child = self.child.as_mut().expect("the emulator was just started");
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Err(format!("(exited early: {status})\n{}", self.output()));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(250)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(format!("(not listening after {START_TIMEOUT:?})\n{}", self.output()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `tests/azurite`, where the npm package and the helper scripts are. Found from the workspace
/// root, one level above the crate that includes this file (the tests, or the host's benchmarks).
fn azurite_dir() -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir.parent().unwrap_or(crate_dir).join("tests").join("azurite")
}

fn azurite_bin() -> PathBuf {
    let name = if cfg!(windows) { "azurite-blob.cmd" } else { "azurite-blob" };
    azurite_dir().join("node_modules").join(".bin").join(name)
}

/// A port free right now on 127.0.0.1 (the operating system's choice).
fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a loopback port");
    listener.local_addr().expect("the bound address").port()
}

/// A new directory path under the system's temporary directory, unique to this process and call.
fn unique_dir() -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    std::env::temp_dir().join(format!("d365meta-azurite-{}-{}-{nanos:08x}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)))
}
