//! Property-based fuzzing of everything that reads what a service sends: `GetInstalledModules`
//! lines, OData envelopes and action results, collection items, label answers, `@odata.nextLink`
//! resolution, and the user's base URLs and language codes. Runs on stable Rust with proptest.
//!
//! `cargo test -p d365meta-guest fuzz` runs a short round (256 cases per property). A long run:
//! `PROPTEST_CASES=200000 cargo test --release -p d365meta-guest fuzz`. A failing input proptest
//! finds is shrunk, saved under `guest/proptest-regressions/` (committed, so every later run tries
//! it first), and kept as a named unit test beside the fix.

use crate::metadata::{parse, typed};
use crate::modules;
use crate::odata;
use crate::sync::coverage::normalize_language;
use crate::sync::fetch;
use crate::url::{normalize_base_url, odata_string_literal};
use proptest::prelude::*;
use serde_json::Value as Json;

/// Any JSON value, nested a few levels, with the field names the parsers look for mixed in so
/// that the interesting paths are reached, not only "not an object".
fn json() -> impl Strategy<Value = Json> {
    let key = prop_oneof![
        Just("Name".to_owned()),
        Just("Value".to_owned()),
        Just("value".to_owned()),
        Just("Properties".to_owned()),
        Just("NavigationProperties".to_owned()),
        Just("Constraints".to_owned()),
        Just("@odata.type".to_owned()),
        Just("PropertyGroups".to_owned()),
        Just("Actions".to_owned()),
        Just("Parameters".to_owned()),
        Just("Type".to_owned()),
        Just("ReturnType".to_owned()),
        Just("Members".to_owned()),
        Just("IsKey".to_owned()),
        Just("LabelId".to_owned()),
        Just("result".to_owned()),
        Just("@odata.nextLink".to_owned()),
        "[A-Za-z@.]{0,12}",
    ];
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<i64>().prop_map(Json::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number)),
        ".{0,24}".prop_map(Json::String),
        Just(Json::String("#Microsoft.Dynamics.Metadata.FixedConstraint".to_owned())),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
            prop::collection::btree_map(key.clone(), inner, 0..8).prop_map(|m| Json::Object(m.into_iter().collect())),
        ]
    })
}

/// A module line: sometimes well formed, sometimes with fields missing, repeated, reordered or
/// holding the separator.
fn module_line() -> impl Strategy<Value = String> {
    let field = prop_oneof![
        Just("Name".to_owned()),
        Just("Version".to_owned()),
        Just("Module".to_owned()),
        Just("Publisher".to_owned()),
        Just("DisplayName".to_owned()),
        "[A-Za-z]{0,8}"
    ];
    let value = prop_oneof![".{0,16}", "[A-Za-z0-9.]{1,12}", Just(" | ".to_owned()), Just(":".to_owned())];
    prop_oneof![
        (value.clone(), value.clone(), "[A-Za-z]{1,10}", value.clone(), value.clone())
            .prop_map(|(n, v, m, p, d)| format!("Name: {n} | Version: {v} | Module: {m} | Publisher: {p} | DisplayName: {d}")),
        prop::collection::vec((field, value), 0..7).prop_map(|fields| fields
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(" | ")),
        ".{0,80}",
    ]
}

proptest! {
    #[test]
    fn module_lines_are_parsed_or_reported_never_lost(lines in prop::collection::vec(module_line(), 0..12)) {
        let list = modules::parse_lines(&lines);
        prop_assert_eq!(list.modules.len() + list.unparsed.len(), lines.len());
        for u in &list.unparsed {
            prop_assert_eq!(&lines[u.line as usize - 1], &u.text);
        }
        // The identity depends on the set of lines, not their order.
        let mut reversed = lines.clone();
        reversed.reverse();
        prop_assert_eq!(modules::modules_hash(&list), modules::modules_hash(&modules::parse_lines(&reversed)));
        // An unparsed line always changes the identity.
        if !list.unparsed.is_empty() {
            let parsed_only = modules::ModuleList { modules: list.modules.clone(), unparsed: vec![] };
            prop_assert_ne!(modules::modules_hash(&list), modules::modules_hash(&parsed_only));
        }
    }

    #[test]
    fn any_item_parses_or_fails_with_words_never_a_panic(item in json()) {
        let _ = parse::data_entity(&item);
        let _ = parse::public_entity(&item);
        let _ = parse::enumeration(&item);
    }

    /// The typed reader reads every item as `parse` does, errors included, however the text is
    /// spaced: what an item becomes (and its content hash) does not depend on which one read it.
    #[test]
    fn items_read_from_their_text_as_from_a_document_tree(item in json(), pretty in any::<bool>()) {
        let text = if pretty { serde_json::to_string_pretty(&item).unwrap() } else { item.to_string() };
        let invalid = typed::TextError::Invalid;
        prop_assert_eq!(typed::data_entity(&text), parse::data_entity(&item).map_err(invalid));
        prop_assert_eq!(typed::public_entity(&text), parse::public_entity(&item).map_err(invalid));
        prop_assert_eq!(typed::enumeration(&text), parse::enumeration(&item).map_err(invalid));
    }

    #[test]
    fn any_body_reads_as_an_envelope_or_fails_with_words(body in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Err(f) = fetch::envelope(&body).map(|page| page.value.len()) {
            prop_assert!(!f.message().is_empty());
        }
        let _ = odata::action_array(&body);
        let _ = odata::action_string(&body);
        let _ = fetch::label_text(&body);
    }

    #[test]
    fn any_json_reads_as_an_envelope_or_fails_with_words(value in json()) {
        let body = serde_json::to_vec(&value).unwrap();
        match fetch::envelope(&body).map(|page| page.value.len()) {
            Ok(items) => prop_assert_eq!(Some(items), value.get("value").and_then(Json::as_array).map(Vec::len)),
            Err(f) => prop_assert!(!f.message().is_empty()),
        }
        let _ = odata::action_array(&body);
        let _ = fetch::label_text(&body);
    }

    #[test]
    fn a_collection_cut_anywhere_is_told_apart_from_a_garbled_one(value in json(), cut in any::<prop::sample::Index>()) {
        let body = serde_json::to_vec(&serde_json::json!({"value": [value]})).unwrap();
        let cut = cut.index(body.len());
        match fetch::envelope(&body[..cut]).map(|page| page.value.len()) {
            Err(odata::Failure::Truncated(_)) => {}
            // Only an object cut right at its end, or inside a multi-byte character, reads otherwise.
            Err(odata::Failure::Garbled(_)) | Err(odata::Failure::Body(_)) | Ok(_) => {
                prop_assert!(cut == 0 || std::str::from_utf8(&body[..cut]).is_err(), "cut at {} of {}", cut, body.len());
            }
            Err(other) => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn next_links_resolve_without_panicking(base in "https?://[a-z.]{1,12}(:[0-9]{1,5})?(/[a-z]{0,6})?", current in ".{0,40}", next in ".{0,60}") {
        if let Ok(url) = fetch::resolve_next_link(&base, &current, &next) {
            // A link that names no scheme stays under the current document's host.
            if !next.contains("://") && current.starts_with(&base) {
                prop_assert!(url.starts_with(&base[..base.find("://").unwrap() + 3]));
            }
        }
    }

    #[test]
    fn base_urls_normalise_once_and_for_all(input in ".{0,60}") {
        if let Ok(once) = normalize_base_url(&input) {
            prop_assert_eq!(normalize_base_url(&once), Ok(once.clone()));
            prop_assert!(once.starts_with("http://") || once.starts_with("https://"));
        }
    }

    #[test]
    fn language_codes_normalise_once_and_for_all(input in "[A-Za-z0-9-]{0,20}") {
        if let Ok(once) = normalize_language(&input) {
            prop_assert_eq!(normalize_language(&once), Ok(once.clone()));
            prop_assert!(once.eq_ignore_ascii_case(input.trim()));
        }
    }

    #[test]
    fn odata_key_literals_round_trip(value in ".{0,40}") {
        let literal = odata_string_literal(&value);
        prop_assert!(literal.bytes().all(|b| b.is_ascii() && b != b' ' && b != b'/' && b != b'?' && b != b'#'));
        let decoded = percent_decode(&literal);
        let inner = &decoded[1..decoded.len() - 1];
        prop_assert_eq!(inner.replace("''", "'"), value);
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}
