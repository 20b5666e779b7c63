//! Label texts: a reference (`@SYS13342`) is looked up in the snapshot's labels, in the language
//! asked for and then in each fallback language; any other label id already is the text.

use super::environment::Scope;
use crate::error::Result;
use crate::metadata::is_label_reference;
use crate::ports::{Store, Value};
use crate::sql::{json_strings, query_map};
use std::collections::BTreeMap;

/// Languages tried without a text, and why: the service has none (`known_missing`), the language
/// is not synced (`not_synced`), or the environment's metadata does not use this label (`unknown`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Skipped {
    pub known_missing: Vec<String>,
    pub not_synced: Vec<String>,
    pub unknown: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelText {
    /// The label id is the text.
    Literal(String),
    /// Found in `language`, after the languages in `skipped`.
    Found { text: String, language: String, skipped: Skipped },
    /// No text in any of the languages tried.
    Missing(Skipped),
}

impl LabelText {
    pub fn text(&self) -> Option<&str> {
        match self {
            LabelText::Literal(t) | LabelText::Found { text: t, .. } => Some(t),
            LabelText::Missing(_) => None,
        }
    }
}

/// The order languages are tried in: the one asked for, then the fallbacks, without repeats.
pub fn language_order(language: &str, fallback: &[String]) -> Vec<String> {
    let mut order = vec![language.to_owned()];
    for f in fallback {
        if !order.contains(f) {
            order.push(f.clone());
        }
    }
    order
}

/// Resolves many label ids at once.
pub fn resolve(store: &dyn Store, scope: &Scope, ids: &[&str], languages: &[String]) -> Result<BTreeMap<String, LabelText>> {
    let references: Vec<&str> = {
        let mut r: Vec<&str> = ids.iter().copied().filter(|id| is_label_reference(id)).collect();
        r.sort_unstable();
        r.dedup();
        r
    };
    // (label id, language) -> Some(text) or None when the service has no text. One statement
    // whatever the number of ids: its text never changes, so the store prepares it once.
    let mut found: BTreeMap<(String, String), Option<String>> = BTreeMap::new();
    if !references.is_empty() {
        let languages: Vec<&str> = languages.iter().map(String::as_str).collect();
        let rows = query_map(
            store,
            // From the ids asked for to the snapshot, not the other way round (see entities.rs),
            // through the index of the table's UNIQUE constraint, which holds every column read.
            "SELECT l.label_id, l.language, l.text, l.missing FROM labels l INDEXED BY sqlite_autoindex_labels_1
             CROSS JOIN snapshot_labels sl ON sl.snapshot_id = ?1 AND sl.label_row = l.id
             WHERE l.label_id IN (SELECT value FROM json_each(?2)) AND l.language IN (SELECT value FROM json_each(?3))",
            &[Value::Integer(scope.snapshot_id), json_strings(&references)?, json_strings(&languages)?],
            |r| Ok(((r.text(0)?, r.text(1)?), (!r.bool(3)?).then(|| r.text(2)).transpose()?)),
        )?;
        found.extend(rows);
    }
    let mut out = BTreeMap::new();
    for id in ids {
        if out.contains_key(*id) {
            continue;
        }
        let answer = if !is_label_reference(id) {
            LabelText::Literal((*id).to_owned())
        } else {
            let mut skipped = Skipped::default();
            let mut hit = None;
            for language in languages {
                match found.get(&((*id).to_owned(), language.clone())) {
                    Some(Some(text)) => {
                        hit = Some((text.clone(), language.clone()));
                        break;
                    }
                    Some(None) => skipped.known_missing.push(language.clone()),
                    None if scope.languages.contains(language) => skipped.unknown.push(language.clone()),
                    None => skipped.not_synced.push(language.clone()),
                }
            }
            match hit {
                Some((text, language)) => LabelText::Found { text, language, skipped },
                None => LabelText::Missing(skipped),
            }
        };
        out.insert((*id).to_owned(), answer);
    }
    Ok(out)
}
