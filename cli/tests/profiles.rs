//! Profiles: named environments in the configuration file, used wherever an environment is named,
//! with flag > environment variable > profile; and profiles brought over from d365fo-client.

mod common;

use d365meta_simulator::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_TOKEN, Dataset, EnvironmentSpec, Scale, Simulator};
use serde_json::Value as Json;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

struct Home {
    dir: PathBuf,
}

impl Home {
    fn new(name: &str) -> Home {
        let dir = std::env::temp_dir().join(format!("d365meta-profiles-{name}-{}-{:08x}", std::process::id(), fastrand::u32(..)));
        std::fs::create_dir_all(&dir).unwrap();
        Home { dir }
    }

    fn config(&self) -> PathBuf {
        self.dir.join("config.toml")
    }

    /// The binary with this home's configuration file and nothing of the caller's environment
    /// that names environments or credentials; no --cache unless given.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_d365meta"));
        command.args(args).env("D365META_CONFIG", self.config()).env("XDG_CACHE_HOME", self.dir.join("xdg-cache"));
        common::without_caller_variables(&mut command);
        command
    }

    async fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = self.command(args);
        for (k, v) in env {
            command.env(k, v);
        }
        tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap()
    }

    async fn json(&self, args: &[&str], env: &[(&str, &str)]) -> Json {
        let out = self.run(args, env).await;
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
    }

    async fn fails(&self, args: &[&str], env: &[(&str, &str)], code: i32, wanted: &str) {
        let out = self.run(args, env).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(wanted), "{args:?}: wanted {wanted:?} in {stderr}");
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn simulator(environments: usize) -> Simulator {
    let data = Arc::new(Dataset::generate(Scale::Tiny));
    let specs = (0..environments).map(|i| EnvironmentSpec::new(format!("e{i}"), data.clone())).collect();
    Simulator::start("127.0.0.1".parse().unwrap(), specs).await.unwrap()
}

#[tokio::test]
async fn a_profile_names_an_environment_and_its_settings_everywhere() {
    let sim = simulator(2).await;
    let (url, other_url) = (sim.env(0).base_url(), sim.env(1).base_url());
    let home = Home::new("everywhere");
    let db = home.dir.join("sim.db");
    let db_text = db.display().to_string();

    // The first profile added becomes the default.
    let added = home
        .json(
            &[
                "--json",
                "profiles",
                "add",
                "sim",
                "--base-url",
                &url,
                "--sign-in",
                "none",
                "--languages",
                "en-US,de",
                "--cache-file",
                &db_text,
            ],
            &[],
        )
        .await;
    assert_eq!(added["profile"]["default"], true);
    assert_eq!(added["profile"]["sign_in"]["kind"], "none");
    home.json(&["--json", "profiles", "add", "other", "--base-url", &other_url, "--sign-in", "none"], &[]).await;
    let list = home.json(&["--json", "profiles", "list"], &[]).await;
    assert_eq!(list["default_profile"], "sim");
    assert_eq!(list["profiles"].as_array().unwrap().len(), 2);

    // A sync naming nothing syncs the default profile's environment, in its languages, into its cache.
    let report = home.json(&["--json", "sync"], &[]).await;
    assert_eq!(report["base_url"], url.as_str());
    assert_eq!(report["coverage"]["languages"], serde_json::json!(["de", "en-US"]));
    assert!(db.exists(), "the profile's cache file");
    // Reads find the same cache and environment; a profile name works wherever a base URL does.
    let name = Dataset::generate(Scale::Tiny).public_entities[0].name.clone();
    let entity = home.json(&["--json", "entity", &name], &[]).await;
    assert_eq!(entity["base_url"], url.as_str());
    let entity = home.json(&["--json", "entity", &name, "--env", "sim"], &[]).await;
    assert_eq!(entity["base_url"], url.as_str());
    let version = home.json(&["--json", "version", "sim"], &[]).await;
    assert_eq!(version["base_url"], url.as_str());
    // --profile selects another environment and its settings (no cache file of its own: the default one).
    let report = home.json(&["--json", "--cache", &db_text, "--profile", "other", "sync", "--languages", "en-US"], &[]).await;
    assert_eq!(report["base_url"], other_url.as_str());
    assert_eq!(report["plan"], "link", "same version as sim's, in the same cache");
    let diff = home.json(&["--json", "--cache", &db_text, "diff", "sim", "other"], &[]).await;
    assert_eq!(diff["objects"].as_array().unwrap().len(), 0);
    assert_eq!(diff["b"]["environments"].as_array().unwrap().len(), 2);

    // Flag > environment variable > profile: D365FO_BASE_URL names the environment over the default
    // profile, and an argument over both.
    let history = home.json(&["--json", "--cache", &db_text, "history", "--env", "other"], &[]).await;
    assert!(history.as_array().unwrap().iter().all(|r| r["base_url"] == other_url.as_str()));
    let version = home.json(&["--json", "version"], &[("D365FO_BASE_URL", other_url.as_str())]).await;
    assert_eq!(version["base_url"], other_url.as_str());
    let version = home.json(&["--json", "version", &url], &[("D365FO_BASE_URL", other_url.as_str())]).await;
    assert_eq!(version["base_url"], url.as_str());

    // Mistakes are named.
    home.fails(
        &["sync", "nosuch"],
        &[],
        2,
        "\"nosuch\" is neither a base URL nor a profile: no profile named \"nosuch\": the profiles are other, sim",
    )
    .await;
    home.fails(&["--profile", "nosuch", "stats"], &[], 2, "no profile named \"nosuch\"").await;
    home.fails(&["profiles", "add", "sim", "--base-url", &url], &[], 2, "a profile named sim exists; give --replace").await;
    home.fails(
        &["profiles", "add", "x", "--base-url", "contoso.com"],
        &[],
        2,
        "profile x: base_url \"contoso.com\": expected an http:// or https:// URL",
    )
    .await;

    // Removing the default leaves no default; a command naming nothing then says what it needs.
    home.json(&["--json", "profiles", "remove", "sim"], &[]).await;
    home.fails(&["sync"], &[], 2, "name an environment").await;
    home.json(&["--json", "profiles", "default", "other"], &[]).await;
    let shown = home.json(&["--json", "profiles", "show", "other"], &[]).await;
    assert_eq!(shown["default"], true);
}

#[tokio::test]
async fn a_client_secret_profile_signs_in_with_a_secret_it_never_stores() {
    let home = Home::new("secret");
    // Over HTTPS, as a real environment and its sign-in service are: the certificate authority made
    // for this run is trusted through the profile's ca_file.
    let (sim, ca) = common::tls_simulator(&home.dir).await;
    sim.env(0).set_require_bearer(Some(DEFAULT_TOKEN.to_owned()));
    let url = sim.env(0).base_url();
    let authority = sim.authority_host();
    let db = home.dir.join("cache.db").display().to_string();
    let ca_text = ca.display().to_string();
    home.json(
        &[
            "--json",
            "profiles",
            "add",
            "uat",
            "--base-url",
            &url,
            "--tenant-id",
            "tenant",
            "--client-id",
            DEFAULT_CLIENT_ID,
            "--client-secret-env",
            "UAT_SECRET",
            "--ca-file",
            &ca_text,
        ],
        &[],
    )
    .await;
    let config = std::fs::read_to_string(home.config()).unwrap();
    assert!(config.contains("client_secret_env = \"UAT_SECRET\"") && !config.contains(DEFAULT_CLIENT_SECRET), "{config}");

    // Without the variable: a clear error before any request.
    home.fails(
        &["--cache", &db, "--auth", "always", "sync", "uat"],
        &[("AZURE_AUTHORITY_HOST", &authority)],
        2,
        "environment variable UAT_SECRET, which is not set",
    )
    .await;
    assert_eq!(sim.env(0).requests().len(), 0);
    // With it, the sync signs in through the SDK at the simulator's authority (which demands the
    // token on every request).
    let env = [("UAT_SECRET", DEFAULT_CLIENT_SECRET), ("AZURE_AUTHORITY_HOST", authority.as_str())];
    let report = home.json(&["--json", "--cache", &db, "--auth", "always", "sync", "uat"], &env).await;
    assert_eq!(report["plan"], "full", "{report}");
    assert!(report["requests"].as_u64().unwrap() > 0);
    assert_eq!(sim.token_requests().len(), 1);
    // A wrong secret: the sign-in service's refusal is named.
    home.fails(
        &["--cache", &db, "--auth", "always", "version", "uat"],
        &[("UAT_SECRET", "wrong"), ("AZURE_AUTHORITY_HOST", &authority)],
        1,
        "signing in (client-secret)",
    )
    .await;
    // Not trusting the authority, nothing is reached: verification is never skipped.
    home.fails(
        &["--cache", &db, "--auth", "always", "--ca-file", "/dev/null", "version", "uat"],
        &env,
        2,
        "certificate authorities /dev/null: no PEM certificate in the file",
    )
    .await;
    // A command that prints the secret does as well; and what the profile says is shown, not the secret.
    home.json(
        &[
            "--json",
            "profiles",
            "add",
            "uat",
            "--replace",
            "--base-url",
            &url,
            "--tenant-id",
            "tenant",
            "--client-id",
            DEFAULT_CLIENT_ID,
            "--client-secret-command",
            &format!("echo {DEFAULT_CLIENT_SECRET}"),
            "--ca-file",
            &ca_text,
        ],
        &[],
    )
    .await;
    let version =
        home.json(&["--json", "--cache", &db, "--auth", "always", "version", "uat"], &[("AZURE_AUTHORITY_HOST", &authority)]).await;
    assert_eq!(version["base_url"], url.as_str());
    let shown = home.json(&["--json", "profiles", "show", "uat"], &[]).await;
    assert_eq!(shown["sign_in"]["client_secret"]["command"], format!("echo {DEFAULT_CLIENT_SECRET}"));
    // A sign-in authority that is not HTTPS is refused by the SDK.
    home.fails(&["--cache", &db, "--auth", "always", "version", "uat"], &[("AZURE_AUTHORITY_HOST", "http://127.0.0.1:9")], 1, "HTTPS")
        .await;
}

#[tokio::test]
async fn d365fo_client_profiles_are_imported_and_a_secret_written_there_is_not() {
    let home = Home::new("import");
    let yaml = home.dir.join("config.yaml");
    std::fs::write(
        &yaml,
        "default_profile: prod\nprofiles:\n  prod:\n    base_url: https://prod.operations.dynamics.com\n    auth_mode: client_credentials\n    client_id: c1\n    tenant_id: t1\n    client_secret: never-copy-this\n    language: de\n  dev:\n    base_url: https://dev.operations.dynamics.com\n  bad:\n    base_url: dev.operations.dynamics.com\n",
    )
    .unwrap();
    let report = home.json(&["--json", "profiles", "import", &yaml.display().to_string()], &[]).await;
    let imported: Vec<&str> = report["imported"].as_array().unwrap().iter().map(|i| i["profile"]["name"].as_str().unwrap()).collect();
    assert_eq!(imported, ["prod", "dev"]);
    assert_eq!(report["skipped"][0]["name"], "bad");
    assert_eq!(report["default_profile"], "prod");
    let prod = &report["imported"][0];
    assert_eq!(prod["profile"]["sign_in"]["client_secret"]["env"], "D365FO_CLIENT_SECRET");
    assert!(prod["notes"][0].as_str().unwrap().contains("was not copied"));
    let config = std::fs::read_to_string(home.config()).unwrap();
    assert!(!config.contains("never-copy-this"), "{config}");
    // Importing again keeps what is there.
    let again = home.json(&["--json", "profiles", "import", &yaml.display().to_string()], &[]).await;
    assert_eq!(again["existing"], serde_json::json!(["prod", "dev"]));
    let _ = Path::new(&yaml);
}

#[tokio::test]
async fn the_other_sign_ins_fail_clearly_where_there_is_no_azure() {
    let home = Home::new("no-azure");
    let url = "http://127.0.0.1:9";
    for (name, kind) in [("cli", "azure-cli"), ("wi", "workload-identity"), ("chain", "default")] {
        home.json(&["--json", "profiles", "add", name, "--base-url", url, "--sign-in", kind], &[]).await;
    }
    // No `az` to run, no workload identity variables, no client secret: each says what it lacked,
    // before any request is sent.
    let empty = home.dir.join("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    let path = empty.display().to_string();
    let env = [("PATH", path.as_str())];
    home.fails(&["--auth", "always", "version", "cli"], &env, 1, "az not found on PATH").await;
    home.fails(&["--auth", "always", "version", "wi"], &env, 1, "cannot set up sign-in (workload-identity): no tenant ID specified").await;
    home.fails(
        &["--auth", "always", "version", "chain"],
        &env,
        1,
        "no sign-in worked (tried azure-cli: AzureCliCredential authentication failed. az not found on PATH",
    )
    .await;
}

#[tokio::test]
async fn ssl_cert_file_names_the_authorities_trusted_as_openssl_does() {
    let home = Home::new("ssl-cert-file");
    let (sim, ca) = common::tls_simulator(&home.dir).await;
    let url = sim.env(0).base_url();
    let db = home.dir.join("cache.db").display().to_string();
    // Not trusted: the handshake fails and the error says so.
    home.fails(&["--cache", &db, "version", &url], &[("SSL_CERT_FILE", "/nonexistent.pem")], 1, "certificate").await;
    // SSL_CERT_FILE naming the authority: trusted, with no flag and no profile.
    let version = home.json(&["--json", "--cache", &db, "version", &url], &[("SSL_CERT_FILE", &ca.display().to_string())]).await;
    assert_eq!(version["base_url"], url.as_str());
}
