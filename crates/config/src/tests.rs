use super::*;

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("d365meta-config-{}-{:08x}", std::process::id(), fastrand::u32(..)));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("config.toml")
}

fn parse(text: &str) -> Result<ConfigFile, Error> {
    ConfigFile::parse(Path::new("/c/config.toml"), text)
}

#[test]
fn a_missing_file_is_an_empty_configuration() {
    let config = ConfigFile::load(&scratch()).unwrap();
    assert_eq!(config.profiles().count(), 0);
    assert!(config.default_profile().is_none());
    let e = config.require("uat").unwrap_err();
    assert!(e.message.contains("no profile named \"uat\"") && e.message.contains("profiles add"), "{e}");
}

#[test]
fn profiles_are_read_into_what_they_mean() {
    let config = parse(
        r#"
default_profile = "uat"

[profiles.uat]
base_url = "https://uat.sandbox.operations.dynamics.com"
tenant_id = "t"
client_id_env = "UAT_CLIENT"
client_secret_command = "pass show uat"
languages = ["en-US", "de"]
concurrency = 4

[profiles.dev]
base_url = "http://127.0.0.1:8080"
sign_in = "none"

[profiles.prod]
base_url = "https://prod.operations.dynamics.com"
sign_in = "azure-cli"
tenant_id = "contoso.onmicrosoft.com"
"#,
    )
    .unwrap();
    let uat = config.default_profile().unwrap();
    assert_eq!(uat.name, "uat");
    assert_eq!(
        uat.sign_in,
        SignIn::ClientSecret {
            tenant_id: Value::Literal("t".into()),
            client_id: Value::Env("UAT_CLIENT".into()),
            secret: Secret::Command("pass show uat".into())
        }
    );
    assert_eq!(uat.languages, ["en-US", "de"]);
    assert_eq!(uat.concurrency, Some(4));
    assert_eq!(config.profile("dev").unwrap().sign_in, SignIn::None);
    assert_eq!(config.profile("prod").unwrap().sign_in, SignIn::AzureCli { tenant_id: Some("contoso.onmicrosoft.com".into()) });
}

#[test]
fn mistakes_are_named_with_the_file_the_profile_and_the_setting() {
    for (text, expected) in [
        ("[profiles.uat]\nbase_url = \"https://x\"\nclient_secret = \"s3cret\"", "profile uat: a client secret is never kept"),
        ("[profiles.uat]\nbase_url = \"ftp://x\"", "profile uat: base_url \"ftp://x\": expected an http:// or https:// URL"),
        ("[profiles.uat]\nsign_in = \"none\"", "profile uat: base_url is missing"),
        ("[profiles.uat]\nbase_url = \"https://x\"\nsign_in = \"password\"", "sign_in \"password\" is not one of default, none"),
        ("[profiles.uat]\nbase_url = \"https://x\"\nsign_in = \"none\"\ntenant_id = \"t\"", "tenant_id is not used by sign_in = \"none\""),
        ("[profiles.uat]\nbase_url = \"https://x\"\ncolour = \"blue\"", "profile uat: unknown field `colour`"),
        ("[profiles.uat]\nbase_url = \"https://x\"\nclient_id = \"a\"\nclient_id_env = \"B\"", "give client_id or client_id_env, not both"),
        ("default_profile = \"prod\"\n[profiles.uat]\nbase_url = \"https://x\"", "default_profile \"prod\" is not one of the profiles"),
        ("[profiles.\"my env\"]\nbase_url = \"https://x\"", "profile name \"my env\": letters, digits"),
        ("[profiles.deadbeef]\nbase_url = \"https://x\"", "looks like a modules hash"),
        ("[profiles.uat\nbase_url", "configuration file /c/config.toml:"),
    ] {
        let e = parse(text).unwrap_err();
        assert!(e.message.starts_with("configuration file /c/config.toml:"), "{e}");
        assert!(e.message.contains(expected), "{text:?}: {e}");
    }
}

#[test]
fn changes_are_written_back_keeping_comments_and_no_secret() {
    let path = scratch();
    std::fs::write(
        &path,
        "# my environments\n[profiles.dev] # the box under my desk\nbase_url = \"http://127.0.0.1:8080\"\nsign_in = \"none\"\n",
    )
    .unwrap();
    let mut config = ConfigFile::load(&path).unwrap();
    let uat = Profile {
        name: "uat".into(),
        base_url: "https://uat.sandbox.operations.dynamics.com".into(),
        sign_in: SignIn::ClientSecret {
            tenant_id: Value::Literal("t".into()),
            client_id: Value::Literal("c".into()),
            secret: Secret::Env("UAT_SECRET".into()),
        },
        languages: vec!["en-US".into()],
        cache: None,
        concurrency: None,
        ca_file: Some("/etc/ssl/corp.pem".into()),
        shared: Some("az://team/d365".into()),
        description: None,
    };
    config.add(uat.clone(), false).unwrap();
    assert!(config.add(uat.clone(), false).unwrap_err().message.contains("exists; give --replace"));
    config.set_default("uat").unwrap();
    config.save().unwrap();

    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("# my environments") && text.contains("# the box under my desk"), "{text}");
    assert!(text.find("default_profile").unwrap() < text.find("[profiles").unwrap(), "{text}");
    assert!(text.contains("client_secret_env = \"UAT_SECRET\""), "{text}");
    let again = ConfigFile::load(&path).unwrap();
    assert_eq!(again.profile("uat"), Some(&uat));
    assert_eq!(again.default_profile().map(|p| p.name.as_str()), Some("uat"));

    let mut again = again;
    again.remove("uat").unwrap();
    again.save().unwrap();
    let after = ConfigFile::load(&path).unwrap();
    assert!(after.profile("uat").is_none() && after.default_profile().is_none());
    assert!(after.profile("dev").is_some());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[test]
fn d365fo_client_profiles_are_imported_without_their_secrets() {
    let yaml = r#"
default_profile: uat
global: {}
profiles:
  uat:
    base_url: https://uat.sandbox.operations.dynamics.com
    auth_mode: client_credentials
    client_id: 11111111-1111-1111-1111-111111111111
    client_secret: do-not-copy-me
    tenant_id: contoso.onmicrosoft.com
    verify_ssl: false
    timeout: 120
    language: de
    cache_dir: /home/me/.cache/d365fo-client
  prod:
    base_url: https://prod.operations.dynamics.com
    auth_mode: default
    credential_source:
      source_type: environment
      client_id_var: PROD_CLIENT_ID
      client_secret_var: PROD_SECRET
      tenant_id_var: PROD_TENANT
  vault:
    base_url: https://vault.operations.dynamics.com
    credential_source:
      source_type: keyvault
      vault_url: https://kv.vault.azure.net
  dev:
    base_url: https://dev.operations.dynamics.com
  "no url": {}
  broken:
    base_url: contoso.operations.dynamics.com
"#;
    let report = import_d365fo_client(yaml, Path::new("/home/me/.d365fo-client/config.yaml")).unwrap();
    let by_name = |n: &str| report.profiles.iter().find(|p| p.profile.name == n).unwrap();
    let uat = by_name("uat");
    assert_eq!(
        uat.profile.sign_in,
        SignIn::ClientSecret {
            tenant_id: Value::Literal("contoso.onmicrosoft.com".into()),
            client_id: Value::Literal("11111111-1111-1111-1111-111111111111".into()),
            secret: Secret::Env("D365FO_CLIENT_SECRET".into()),
        }
    );
    assert_eq!(uat.profile.languages, ["de"]);
    let notes = uat.notes.join("\n");
    assert!(notes.contains("was not copied") && notes.contains("certificate verification") && notes.contains("timeout (120 s)"), "{notes}");
    assert!(!format!("{report:?}").contains("do-not-copy-me"), "the secret must not be carried anywhere");
    assert_eq!(
        by_name("prod").profile.sign_in,
        SignIn::ClientSecret {
            tenant_id: Value::Env("PROD_TENANT".into()),
            client_id: Value::Env("PROD_CLIENT_ID".into()),
            secret: Secret::Env("PROD_SECRET".into()),
        }
    );
    assert_eq!(by_name("vault").profile.sign_in, SignIn::Default);
    assert!(by_name("vault").notes[0].contains("keyvault source"));
    assert_eq!(by_name("dev").profile.sign_in, SignIn::Default);
    let skipped: Vec<&str> = report.skipped.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(skipped, ["no url", "broken"]);
    assert_eq!(report.default_profile.as_deref(), Some("uat"));
    assert_eq!(report.cache_dirs, [PathBuf::from("/home/me/.cache/d365fo-client")]);

    // Written to our file, the imported profiles read back the same, and no secret is in it.
    let path = scratch();
    let mut config = ConfigFile::load(&path).unwrap();
    for p in &report.profiles {
        config.add(p.profile.clone(), false).unwrap();
    }
    config.save().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("do-not-copy-me"));
    let again = ConfigFile::load(&path).unwrap();
    for p in &report.profiles {
        assert_eq!(again.profile(&p.profile.name), Some(&p.profile));
    }
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[test]
fn shared_store_urls_are_checked_when_read() {
    for good in ["az://team/d365", "azure://team", "s3://bucket/prefix", "file:///srv/d365meta", "https://acct.blob.core.windows.net/team"]
    {
        assert!(crate::check_shared_url(good).is_ok(), "{good}");
    }
    for (bad, why) in [
        ("team/d365", "expected a URL"),
        ("file://relative/path", "absolute path"),
        ("az://", "no container"),
        ("ftp://host/x", "unknown scheme ftp"),
        ("az://team/with space", "spaces"),
    ] {
        let message = crate::check_shared_url(bad).unwrap_err().message;
        assert!(message.contains(why), "{bad}: {message}");
    }
    let table: toml::Table = toml::from_str("base_url = \"https://x.dynamics.com\"\nshared = \"smb://nas/share\"").unwrap();
    let e = crate::profile_from_table("team", table).unwrap_err();
    assert!(e.message.contains("shared") && e.message.contains("unknown scheme smb"), "{}", e.message);
}
