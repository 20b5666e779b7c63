//! Detecting the version an environment runs.
//!
//! The identity comes from `GetInstalledModules`. When that action is unavailable (older
//! environments, or an answer that cannot be read at all) the identity falls back to the application
//! and platform build versions, and says so. Transport failures, authentication failures and
//! throttling that outlasted the host's retries are not "unavailable": they fail the detection, since
//! falling back then would give a healthy environment a second identity.

use crate::error::{Error, Result};
use crate::modules::{self, ModuleList};
use crate::odata::{self, Failure};
use crate::ports::{Ctx, HttpError, HttpRequest, HttpResponse, Method};
use serde_json::Value as Json;

pub const INSTALLED_MODULES: &str = "/data/SystemNotifications/Microsoft.Dynamics.DataEntities.GetInstalledModules";
pub const APPLICATION_VERSION: &str = "/data/DataManagementEntities/Microsoft.Dynamics.DataEntities.GetApplicationVersion";
pub const PLATFORM_VERSION: &str = "/data/DataManagementEntities/Microsoft.Dynamics.DataEntities.GetPlatformBuildVersion";

/// The `GetApplicationVersion` and `GetPlatformBuildVersion` requests, in that order.
fn build_version_requests() -> [HttpRequest; 2] {
    [odata::request(Method::Post, APPLICATION_VERSION.to_owned()), odata::request(Method::Post, PLATFORM_VERSION.to_owned())]
}

/// One build version from its answer, or an error naming the request and why.
fn read_build_version(base_url: &str, request: &HttpRequest, answer: Result<HttpResponse, HttpError>) -> Result<String> {
    answer
        .map_err(Failure::Transport)
        .and_then(|r| {
            odata::check_status(&r)?;
            odata::action_string(&r.body)
        })
        .map_err(|f| f.into_error(&odata::describe(base_url, request)))
}

/// The application and platform versions, each `None` when the environment would not say; and the
/// requests made.
pub fn build_versions(ctx: &Ctx<'_>, base_url: &str) -> (Option<String>, Option<String>, u64) {
    let requests = build_version_requests();
    let mut sent = 0;
    let mut answers = ctx.http.send_batch(&requests).into_iter().zip(&requests).map(|(answer, request)| {
        sent += answer.as_ref().map_or(1, |r| u64::from(r.attempts));
        read_build_version(base_url, request, answer).ok()
    });
    let application = answers.next().flatten();
    let platform = answers.next().flatten();
    (application, platform, sent)
}

/// What an environment says about its version.
#[derive(Clone, Debug, PartialEq)]
pub struct Detected {
    pub base_url: String,
    pub modules: ModuleList,
    pub modules_hash: String,
    pub application_version: Option<String>,
    pub platform_version: Option<String>,
    pub fallback: bool,
    pub fallback_reason: Option<String>,
    pub warnings: Vec<String>,
    /// HTTP requests sent, retries included, and bytes received.
    pub requests: u64,
    pub bytes: u64,
}

/// Asks the environment at `base_url` (already normalised) for its identity. With
/// `with_build_versions`, the application and platform versions are asked for too (concurrently);
/// without, they are asked for only if the fallback needs them.
pub fn detect(ctx: &Ctx<'_>, base_url: &str, with_build_versions: bool) -> Result<Detected> {
    let build_requests = build_version_requests();
    let mut requests = vec![odata::request(Method::Post, INSTALLED_MODULES.to_owned())];
    if with_build_versions {
        requests.extend(build_requests.iter().cloned());
    }
    let mut answers = ctx.http.send_batch(&requests).into_iter();
    let mut sent = 0u64;
    let mut bytes = 0u64;
    let mut count = |r: &Result<HttpResponse, HttpError>| {
        sent += r.as_ref().map_or(1, |r| u64::from(r.attempts));
        bytes += r.as_ref().map_or(0, |r| r.body.len() as u64);
    };
    let modules_answer = answers.next().ok_or_else(|| Error::internal("no answer for GetInstalledModules"))?;
    count(&modules_answer);
    let mut build_answers: Vec<Result<HttpResponse, HttpError>> = answers.collect();
    build_answers.iter().for_each(&mut count);

    let modules_what = odata::describe(base_url, &requests[0]);
    let mut lines = read_module_lines(modules_answer);
    // An answer cut off or garbled on the way says nothing about the environment: ask again
    // rather than give it a second identity.
    let mut retries = 0;
    while let Err(f) = &lines
        && f.is_transient()
        && retries < odata::TRUNCATED_RETRIES
    {
        retries += 1;
        ctx.host.log(crate::ports::Level::Warn, &format!("{modules_what}: {}; asking again", f.message()));
        let answer = ctx.http.send(&requests[0]);
        count(&answer);
        lines = read_module_lines(answer);
    }
    let lines = match lines {
        Ok(lines) => Ok(lines),
        Err(f) if is_unavailable(&f) => Err(f.into_error(&modules_what).message),
        Err(f) => return Err(f.into_error(&modules_what)),
    };

    if lines.is_err() && !with_build_versions {
        build_answers = ctx.http.send_batch(&build_requests);
        build_answers.iter().for_each(&mut count);
    }
    let mut build_versions =
        build_answers.into_iter().zip(&build_requests).map(|(answer, request)| read_build_version(base_url, request, answer));
    let application = build_versions.next();
    let platform = build_versions.next();

    match lines {
        Ok(lines) => {
            let modules = modules::parse_lines(&lines);
            let mut warnings = modules::warnings(&modules);
            let mut take = |answer: Option<Result<String>>| -> Result<Option<String>> {
                match answer {
                    None => Ok(None),
                    Some(Ok(v)) => Ok(Some(v)),
                    Some(Err(e)) if e.kind == crate::ErrorKind::Cancelled => Err(e),
                    Some(Err(e)) => {
                        warnings.push(e.message);
                        Ok(None)
                    }
                }
            };
            let application_version = take(application)?;
            let platform_version = take(platform)?;
            for u in &modules.unparsed {
                ctx.host.log(
                    crate::ports::Level::Warn,
                    &format!("{base_url}: GetInstalledModules line {} not parsed ({}): {:?}", u.line, u.reason, u.text),
                );
            }
            Ok(Detected {
                base_url: base_url.to_owned(),
                modules_hash: modules::modules_hash(&modules),
                modules,
                application_version,
                platform_version,
                fallback: false,
                fallback_reason: None,
                warnings,
                requests: sent,
                bytes,
            })
        }
        Err(reason) => {
            let both = |a: Option<Result<String>>| a.unwrap_or_else(|| Err(Error::internal("not asked")));
            let (application, platform) = match (both(application), both(platform)) {
                (Ok(a), Ok(p)) => (a, p),
                (Err(e), _) | (_, Err(e)) => {
                    return Err(Error::new(
                        e.kind,
                        format!(
                            "cannot identify the version of {base_url}: GetInstalledModules is unavailable ({reason}), and the fallback failed: {}",
                            e.message
                        ),
                    ));
                }
            };
            ctx.host.log(crate::ports::Level::Warn, &format!("{base_url}: using application and platform versions as identity: {reason}"));
            Ok(Detected {
                base_url: base_url.to_owned(),
                modules_hash: modules::fallback_hash(&application, &platform),
                modules: ModuleList::default(),
                application_version: Some(application),
                platform_version: Some(platform),
                fallback: true,
                warnings: vec![format!(
                    "GetInstalledModules is unavailable; the identity comes from the application and platform versions ({reason})"
                )],
                fallback_reason: Some(reason),
                requests: sent,
                bytes,
            })
        }
    }
}

/// The lines of a `GetInstalledModules` answer. Items that are not strings become unparsed lines
/// rather than disappearing.
fn read_module_lines(answer: Result<HttpResponse, HttpError>) -> Result<Vec<String>, Failure> {
    let response = answer.map_err(Failure::Transport)?;
    odata::check_status(&response)?;
    let items = odata::action_array(&response.body)?;
    Ok(items
        .into_iter()
        .map(|item| match item {
            Json::String(s) => s,
            other => other.to_string(),
        })
        .collect())
}

/// Whether a failure means "this environment cannot tell its modules" (so the fallback applies):
/// the action does not exist (404), or the service answers well-formed JSON that is not a list. Any
/// other failure (the network, authentication, throttling, a server error, an answer garbled on the
/// way) says nothing about the modules and fails the detection instead.
fn is_unavailable(failure: &Failure) -> bool {
    match failure {
        Failure::Status { status, .. } => *status == 404,
        Failure::Body(_) => true,
        Failure::Transport(_) | Failure::Truncated(_) | Failure::Garbled(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::World;

    const BASE: &str = "http://env.test";
    const SAMPLE: &str = r#"{"@odata.context":"x","value":[
        "Name: ApplicationFoundation | Version: 7.0.7521.60 | Module: ApplicationFoundation | Publisher: Microsoft Corporation | DisplayName: Application Foundation",
        "Name: ApplicationCommon | Version: 10.34.2105.34092 | Module: ApplicationCommon | Publisher: Microsoft | DisplayName: Application Common",
        "Name: AccountsPayableMobile | Version: 10.34.2105.34092 | Module: AccountsPayableMobile | Publisher: Microsoft Corporation | DisplayName: Accounts Payable Mobile",
        "Name: AdvancedQualityManagement | Version: 10.34.2105.34092 | Module: AdvancedQualityManagement | Publisher: Microsoft Corporation | DisplayName: Advanced Quality Management"]}"#;

    #[test]
    fn detects_modules_and_build_versions_in_one_batch() {
        let w = World::new();
        w.http.route("GetInstalledModules", 200, SAMPLE).route("GetApplicationVersion", 200, r#"{"value":"10.0.1985.137"}"#).route(
            "GetPlatformBuildVersion",
            200,
            r#"{"value":"7.0.7521.60"}"#,
        );
        let d = detect(&w.ctx(), BASE, true).unwrap();
        assert_eq!(d.modules_hash, "ae97cdc85de9b242364367e8bd9bf662a32cee6aaea4d8b47c8e35c4f0a8b90b");
        assert_eq!(d.modules.modules.len(), 4);
        assert_eq!(d.application_version.as_deref(), Some("10.0.1985.137"));
        assert_eq!(d.platform_version.as_deref(), Some("7.0.7521.60"));
        assert!(!d.fallback);
        assert_eq!(d.requests, 3);
    }

    #[test]
    fn without_build_versions_only_one_request_is_made() {
        let w = World::new();
        w.http.route("GetInstalledModules", 200, SAMPLE);
        let d = detect(&w.ctx(), BASE, false).unwrap();
        assert_eq!(w.http.requests().len(), 1);
        assert_eq!(d.application_version, None);
        assert_eq!(d.requests, 1);
    }

    #[test]
    fn falls_back_to_build_versions_when_modules_are_unavailable() {
        let w = World::new();
        w.http
            .route("GetInstalledModules", 404, r#"{"error":{"code":"NotFound","message":"no such action"}}"#)
            .route("GetApplicationVersion", 200, r#"{"value":"10.0.1985.137"}"#)
            .route("GetPlatformBuildVersion", 200, r#"{"value":"7.0.7521.60"}"#);
        let d = detect(&w.ctx(), BASE, false).unwrap();
        assert!(d.fallback);
        assert_eq!(d.modules_hash, modules::fallback_hash("10.0.1985.137", "7.0.7521.60"));
        assert!(d.fallback_reason.as_deref().unwrap().contains("HTTP 404 Not Found (NotFound: no such action)"));
        assert_eq!(w.http.requests().len(), 3);
    }

    #[test]
    fn a_well_formed_answer_that_is_not_a_list_falls_back() {
        let w = World::new();
        w.http
            .route("GetInstalledModules", 200, r#"{"value":"not supported"}"#)
            .route("GetApplicationVersion", 200, r#"{"value":"1"}"#)
            .route("GetPlatformBuildVersion", 200, r#"{"value":"2"}"#);
        let d = detect(&w.ctx(), BASE, true).unwrap();
        assert!(d.fallback);
        assert!(d.fallback_reason.unwrap().contains("expected a collection"));
    }

    #[test]
    fn a_garbled_or_cut_off_module_list_is_asked_again_and_never_falls_back() {
        // Once garbled, once cut off, then whole: the real identity.
        let w = World::new();
        w.http
            .once("GetInstalledModules", 200, "<html>proxy error</html>")
            .once("GetInstalledModules", 200, &SAMPLE[..SAMPLE.len() / 2])
            .route("GetInstalledModules", 200, SAMPLE);
        let d = detect(&w.ctx(), BASE, false).unwrap();
        assert!(!d.fallback);
        assert_eq!(d.modules_hash, "ae97cdc85de9b242364367e8bd9bf662a32cee6aaea4d8b47c8e35c4f0a8b90b");
        assert_eq!(d.requests, 3);
        // Garbled every time: an error, not the fallback identity.
        let w = World::new();
        w.http.route("GetInstalledModules", 200, "<html>maintenance</html>").route("GetApplicationVersion", 200, r#"{"value":"1"}"#).route(
            "GetPlatformBuildVersion",
            200,
            r#"{"value":"2"}"#,
        );
        let e = detect(&w.ctx(), BASE, true).unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::Parse);
        assert!(e.message.contains("not valid JSON") && e.message.contains("GetInstalledModules"), "{}", e.message);
        assert_eq!(w.http.requests().len(), 3 + odata::TRUNCATED_RETRIES as usize);
    }

    #[test]
    fn server_errors_do_not_fall_back() {
        let w = World::new();
        w.http.route("GetInstalledModules", 500, r#"{"error":{"code":"X","message":"boom"}}"#);
        let e = detect(&w.ctx(), BASE, false).unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::Service);
        assert!(e.message.contains("HTTP 500"), "{}", e.message);
    }

    #[test]
    fn throttling_and_auth_failures_do_not_fall_back() {
        for status in [401, 403, 429, 503] {
            let w = World::new();
            w.http.route("GetInstalledModules", status, "").route("GetApplicationVersion", 200, r#"{"value":"1"}"#).route(
                "GetPlatformBuildVersion",
                200,
                r#"{"value":"2"}"#,
            );
            let e = detect(&w.ctx(), BASE, true).unwrap_err();
            assert_eq!(e.kind, crate::ErrorKind::Service, "{status}");
            assert!(e.message.contains(&format!("HTTP {status}")) && e.message.contains("GetInstalledModules"), "{}", e.message);
        }
        let w = World::new();
        w.http.fail("GetInstalledModules", HttpError::Connect("refused".into()));
        let e = detect(&w.ctx(), BASE, false).unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::Network);
        assert!(e.message.contains("could not connect"), "{}", e.message);
    }

    #[test]
    fn a_failed_fallback_names_both_failures() {
        let w = World::new();
        w.http
            .route("GetInstalledModules", 404, "")
            .route("GetApplicationVersion", 500, r#"{"error":{"code":"X","message":"boom"}}"#)
            .route("GetPlatformBuildVersion", 200, r#"{"value":"2"}"#);
        let e = detect(&w.ctx(), BASE, false).unwrap_err();
        assert!(
            e.message.contains("GetInstalledModules is unavailable") && e.message.contains("GetApplicationVersion: HTTP 500"),
            "{}",
            e.message
        );
    }

    #[test]
    fn non_string_items_are_reported_not_dropped() {
        let w = World::new();
        w.http.route("GetInstalledModules", 200, r#"{"value":["Name: A | Version: 1 | Module: A | Publisher: P | DisplayName: A", 42]}"#);
        let d = detect(&w.ctx(), BASE, false).unwrap();
        assert_eq!(d.modules.unparsed.len(), 1);
        assert_eq!(d.modules.unparsed[0].text, "42");
        assert_eq!(d.modules.unparsed[0].line, 2);
    }

    #[test]
    fn failing_build_versions_become_warnings() {
        let w = World::new();
        w.http.route("GetInstalledModules", 200, SAMPLE).route("GetPlatformBuildVersion", 200, r#"{"value":"7"}"#);
        let d = detect(&w.ctx(), BASE, true).unwrap();
        assert_eq!(d.application_version, None);
        assert_eq!(d.platform_version.as_deref(), Some("7"));
        assert!(d.warnings.iter().any(|w| w.contains("GetApplicationVersion: HTTP 404")), "{:?}", d.warnings);
    }
}
