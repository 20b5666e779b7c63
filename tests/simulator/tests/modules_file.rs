//! `load_modules_file`: the three formats module lists are captured in, and its errors.

use d365meta_simulator::load_modules_file;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

#[test]
fn reads_an_action_result_wrapper() {
    // A real capture, from the d365fo-client documentation.
    let lines = load_modules_file(&fixture("get-installed-modules.sample.json")).expect("loads");
    assert_eq!(lines.len(), 4);
    assert_eq!(
        lines[0],
        "Name: AccountsPayableMobile | Version: 10.34.2105.34092 | Module: AccountsPayableMobile | Publisher: Microsoft Corporation | DisplayName: Accounts Payable Mobile"
    );
    assert!(lines[3].starts_with("Name: ApplicationFoundation | Version: 7.0.7521.60 |"));
}

#[test]
fn reads_a_service_response() {
    let lines = load_modules_file(&fixture("installed-modules.response.json")).expect("loads");
    assert_eq!(lines.len(), 5);
    assert!(lines[4].ends_with("DisplayName: Contoso | Customizations"));
}

#[test]
fn reads_a_plain_array() {
    let lines = load_modules_file(&fixture("installed-modules.lines.json")).expect("loads");
    assert_eq!(lines.len(), 2);
    assert!(lines[1].contains("Module: AdvancedQualityManagement"));
}

#[test]
fn errors_name_the_file_and_the_problem() {
    let cases = [
        ("missing.json", "cannot read"),
        ("not-json.txt", "not valid JSON"),
        ("wrong-shape.json", "expected a GetInstalledModules response"),
        ("non-string-line.json", "module line 2 is not a string"),
        ("empty.json", "holds no module lines"),
        ("failed-action.json", "the captured action failed"),
    ];
    for (name, problem) in cases {
        let error = load_modules_file(&fixture(name)).expect_err(name);
        let message = format!("{error:#}");
        assert!(message.contains(name), "{name}: {message}");
        assert!(message.contains(problem), "{name}: {message}");
    }
}
