//! Pull: a version from the shared store instead of the environment.
//!
//! The manifest says what the version consists of; only the packs holding an item this cache
//! lacks are downloaded (the host fetching the next while this one is stored), and every item
//! taken is hashed again as parsed: an item stored is exactly the one the manifest names. The snapshot is then made as a sync makes it — the same
//! objects, positions and label rows — and becomes visible the same way.

use super::coverage::Coverage;
use super::snapshot;
use super::write::{existing_ids, store_objects};
use crate::error::{Error, ErrorKind, Result};
use crate::metadata::{DataEntity, Enumeration, Kind, PublicEntity};
use crate::params;
use crate::ports::{Ctx, Phase, Progress, Shared, TxMode, Value};
use crate::share::{self, Item, LabelText, Manifest, pack};
use crate::sql::{exec, in_transaction, query_map};
use crate::wit::types::PullReport;
use std::collections::{BTreeMap, BTreeSet};

/// A manifest of the wanted version and coverage, found in the store.
#[derive(Clone, Debug)]
pub struct Found {
    pub name: String,
    pub manifest: Manifest,
}

/// The coverage a manifest's name says it has (`entities+en-US.json.zlib`).
fn coverage_of_name(name: &str) -> Option<Coverage> {
    let key = name.rsplit('/').next()?.strip_suffix(crate::share::MANIFEST_SUFFIX)?;
    let mut parts = key.split('+');
    let entities = match parts.next()? {
        "entities" => true,
        "labels" => false,
        _ => return None,
    };
    Some(Coverage { entities, languages: parts.map(str::to_owned).collect() })
}

/// The store's manifests of version `modules_hash`, with the coverage each has.
pub fn manifests(shared: &dyn Shared, modules_hash: &str) -> Result<Vec<(String, Coverage)>> {
    let listed = shared.list(&share::version_prefix(modules_hash)).map_err(|e| e.into_error(&shared.location(), "listing versions"))?;
    Ok(listed.into_iter().filter_map(|l| coverage_of_name(&l.name).map(|c| (l.name, c))).collect())
}

/// The manifest of `modules_hash` that covers `wanted` with the fewest languages, read and
/// checked; `None` when the store has no such manifest.
pub fn find(shared: &dyn Shared, modules_hash: &str, wanted: &Coverage) -> Result<Option<Found>> {
    let location = shared.location();
    let Some((name, _)) =
        manifests(shared, modules_hash)?.into_iter().filter(|(_, c)| c.covers(wanted)).min_by_key(|(_, c)| c.languages.len())
    else {
        return Ok(None);
    };
    let Some(bytes) = shared.get(&name).map_err(|e| e.into_error(&location, &format!("reading {name}")))? else {
        return Ok(None);
    };
    let manifest = Manifest::read(&name, &bytes, Some(modules_hash)).map_err(|m| damaged(&location, m))?;
    let covered = Coverage { entities: manifest.coverage.entities, languages: manifest.coverage.languages.iter().cloned().collect() };
    if !covered.covers(wanted) {
        return Err(damaged(&location, format!("manifest {name} covers {}, not what its name says", covered.describe())));
    }
    Ok(Some(Found { name, manifest }))
}

fn damaged(location: &str, message: String) -> Error {
    Error::new(ErrorKind::Parse, format!("shared store {location}: {message}"))
}

/// What the cache lacks of the manifest's items, by hash.
struct Lacking {
    objects: BTreeMap<Kind, BTreeSet<String>>,
    labels: BTreeSet<String>,
}

impl Lacking {
    /// Whether a pack line of `kind` and `hash` holds an item this cache lacks.
    fn wants(&self, kind: &str, hash: &str) -> bool {
        match Kind::parse(kind) {
            Some(kind) => self.objects.get(&kind).is_some_and(|s| s.contains(hash)),
            None => kind == "label" && self.labels.contains(hash),
        }
    }
}

/// Label rows of `language`, by their content hash.
fn label_rows(ctx: &Ctx<'_>, language: &str) -> Result<BTreeMap<String, i64>> {
    let rows = query_map(ctx.store, "SELECT id, label_id, text, missing FROM labels WHERE language = ?1", &params![language], |r| {
        let label = LabelText { label_id: r.text(1)?, language: language.to_owned(), text: r.text(2)?, missing: r.bool(3)? };
        Ok((label.hash(), r.int(0)?))
    })?;
    Ok(rows.into_iter().collect())
}

/// Pulls the manifest's version, with the labels of `languages`, into the building snapshot
/// `snapshot_id` and completes it for the environment.
pub fn run(
    ctx: &Ctx<'_>,
    shared: &dyn Shared,
    found: &Found,
    languages: &BTreeSet<String>,
    snapshot_id: i64,
    version_id: i64,
    environment_id: i64,
) -> Result<PullReport> {
    let location = shared.location();
    let manifest = &found.manifest;
    let mut lacking = Lacking { objects: BTreeMap::new(), labels: BTreeSet::new() };
    // The packs to download, each with the hashes of the items this cache lacks in it.
    let mut needed_packs: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for kind in Kind::ALL {
        let hashes: Vec<String> = manifest.objects_of(kind).map(|o| o.hash().to_owned()).collect();
        let present = existing_ids(ctx.store, kind.as_str(), &hashes)?;
        let missing: BTreeSet<String> = manifest
            .objects_of(kind)
            .filter(|o| !present.contains_key(o.hash()))
            .map(|o| {
                needed_packs.entry(o.pack()).or_default().push(o.hash().to_owned());
                o.hash().to_owned()
            })
            .collect();
        lacking.objects.insert(kind, missing);
    }
    for language in languages {
        let wanted = manifest.labels.get(language).map(Vec::as_slice).unwrap_or_default();
        let present = label_rows(ctx, language)?;
        for (hash, pack) in wanted.iter().filter(|(hash, _)| !present.contains_key(hash)) {
            lacking.labels.insert(hash.clone());
            needed_packs.entry(*pack as usize).or_default().push(hash.clone());
        }
    }

    let total = needed_packs.len();
    let mut report = PullReport { location: location.clone(), manifest: found.name.clone(), packs: 0, bytes: 0, objects: 0, labels: 0 };
    ctx.host.progress(&Progress { phase: Phase::Pull, done: 0, total: Some(total as u64), bytes: Some(0) });
    let needed: Vec<usize> = needed_packs.keys().copied().collect();
    let names: Vec<String> = needed.iter().map(|&i| manifest.packs[i].name.clone()).collect();
    // Where the time goes, for the log (milliseconds, by the host's clock): waiting for
    // downloads, reading and checking, storing, making the snapshot.
    let mut spent = [0i64; 4];
    // The host downloads the next packs while this one is read and stored.
    let mut downloads = shared.download(&names);
    for (name, index) in names.iter().zip(&needed) {
        ctx.check_cancelled()?;
        let started = ctx.host.now_ms();
        let answer = downloads.next().ok_or_else(|| Error::internal(format!("the host gave no answer for {name}")))?;
        spent[0] += ctx.host.now_ms() - started;
        let started = ctx.host.now_ms();
        let bytes = answer
            .map_err(|e| e.into_error(&location, &format!("downloading {name}")))?
            .ok_or_else(|| damaged(&location, format!("pack {name}, named by manifest {}, is missing", found.name)))?;
        report.packs += 1;
        report.bytes += bytes.len() as u64;
        let mut data: Vec<(String, DataEntity)> = Vec::new();
        let mut public: Vec<(String, PublicEntity)> = Vec::new();
        let mut enums: Vec<(String, Enumeration)> = Vec::new();
        let mut labels: Vec<Vec<Value>> = Vec::new();
        let text = pack::open(name, &bytes).map_err(|m| damaged(&location, m))?;
        drop(bytes);
        let mut found_here: BTreeSet<String> = BTreeSet::new();
        for entry in pack::entries(name, &text).map_err(|m| damaged(&location, m))? {
            let entry = entry.map_err(|m| damaged(&location, m))?;
            if !lacking.wants(entry.kind, entry.hash) || found_here.contains(entry.hash) {
                continue;
            }
            let item = entry.verified(name).map_err(|m| damaged(&location, m))?;
            let hash = entry.hash.to_owned();
            found_here.insert(hash.clone());
            match item {
                Item::DataEntity(o) => data.push((hash, o)),
                Item::PublicEntity(o) => public.push((hash, o)),
                Item::Enumeration(o) => enums.push((hash, o)),
                Item::Label(l) => labels.push(crate::row![l.label_id, l.language, l.text, l.missing]),
            }
        }
        drop(text);
        // Every lacking item the manifest places in this pack must have been in it.
        if let Some(absent) = needed_packs[index].iter().find(|hash| !found_here.contains(*hash)) {
            return Err(damaged(&location, format!("pack {name} lacks item {absent}, which manifest {} places in it", found.name)));
        }
        spent[1] += ctx.host.now_ms() - started;
        let started = ctx.host.now_ms();
        in_transaction(ctx.store, TxMode::Immediate, || {
            report.objects += store_all(ctx, &data)? + store_all(ctx, &public)? + store_all(ctx, &enums)?;
            report.labels += labels.len() as u64;
            crate::search::index::insert_labels(
                ctx.store,
                "INSERT INTO labels (label_id, language, text, missing) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (label_id, language, missing, text) DO NOTHING",
                labels.drain(..),
            )
        })?;
        spent[2] += ctx.host.now_ms() - started;
        ctx.host.progress(&Progress {
            phase: Phase::Pull,
            done: report.packs as u64,
            total: Some(total as u64),
            bytes: Some(report.bytes),
        });
    }
    drop(downloads);

    ctx.check_cancelled()?;
    let started = ctx.host.now_ms();
    in_transaction(ctx.store, TxMode::Immediate, || {
        for kind in Kind::ALL {
            let refs: Vec<&share::ObjectRef> = manifest.objects_of(kind).collect();
            let hashes: Vec<String> = refs.iter().map(|o| o.hash().to_owned()).collect();
            let ids = existing_ids(ctx.store, kind.as_str(), &hashes)?;
            let names = object_names(ctx, ids.values().copied().collect())?;
            let mut rows = Vec::with_capacity(refs.len());
            for (position, o) in refs.iter().enumerate() {
                let id =
                    ids.get(o.hash()).ok_or_else(|| damaged(&location, format!("{} {} was not in the packs", kind.as_str(), o.name())))?;
                // The name readers look an object up by must be the object's own.
                if names.get(id).map(String::as_str) != Some(o.name()) {
                    let what = format!("manifest {} names {} {} with another object's hash", found.name, kind.as_str(), o.name());
                    return Err(damaged(&location, what));
                }
                rows.push(crate::row![snapshot_id, kind.as_str(), position, o.name(), *id]);
            }
            crate::sql::execute_all(
                ctx.store,
                "INSERT INTO snapshot_objects (snapshot_id, kind, position, name, object_id) VALUES (?1, ?2, ?3, ?4, ?5)",
                rows,
            )?;
        }
        for language in languages {
            let rows = label_rows(ctx, language)?;
            let mut links = Vec::new();
            for (hash, _) in manifest.labels.get(language).map(Vec::as_slice).unwrap_or_default() {
                let row = rows.get(hash).ok_or_else(|| damaged(&location, format!("the {language} label {hash} was not in the packs")))?;
                links.push(crate::row![snapshot_id, *row]);
            }
            crate::sql::execute_all(ctx.store, "INSERT OR IGNORE INTO snapshot_labels (snapshot_id, label_row) VALUES (?1, ?2)", links)?;
        }
        // The environment was asked only which modules it runs: the rest of the version's identity
        // comes with the manifest.
        exec(
            ctx.store,
            "UPDATE versions SET application_version = COALESCE(application_version, ?2), platform_version = COALESCE(platform_version, ?3)
             WHERE id = ?1",
            &params![version_id, manifest.application_version.as_deref(), manifest.platform_version.as_deref()],
        )?;
        Ok(())
    })?;
    snapshot::complete(ctx.store, snapshot_id, environment_id, None, ctx.host.now_ms())?;
    spent[3] += ctx.host.now_ms() - started;
    let [waiting, check, store, link] = spent;
    ctx.host.log(
        crate::ports::Level::Debug,
        &format!("pull of {}: waiting for downloads {waiting} ms, reading and checking {check} ms, storing {store} ms, making the snapshot {link} ms", found.name),
    );
    Ok(report)
}

/// The names of stored objects, by id.
fn object_names(ctx: &Ctx<'_>, ids: Vec<i64>) -> Result<BTreeMap<i64, String>> {
    let rows = query_map(
        ctx.store,
        "SELECT o.id, o.name FROM objects o JOIN json_each(?1) j ON j.value = o.id",
        &[crate::sql::json_integers(&ids)],
        |r| Ok((r.int(0)?, r.text(1)?)),
    )?;
    Ok(rows.into_iter().collect())
}

fn store_all<T: super::write::StoredObject>(ctx: &Ctx<'_>, items: &[(String, T)]) -> Result<u64> {
    let hashed: Vec<(&str, &T)> = items.iter().map(|(hash, o)| (hash.as_str(), o)).collect();
    Ok(store_objects(ctx.store, &hashed)?.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_name_says_its_coverage() {
        let c = coverage_of_name("versions/abc/entities+de-DE+en-US.json.zlib").unwrap();
        assert!(c.entities);
        assert_eq!(c.languages.into_iter().collect::<Vec<_>>(), ["de-DE", "en-US"]);
        assert_eq!(coverage_of_name("versions/abc/entities.json.zlib").unwrap().languages.len(), 0);
        assert!(coverage_of_name("versions/abc/entities+en-US.json").is_none());
        assert!(coverage_of_name("versions/abc/other.txt").is_none());
        assert!(coverage_of_name("versions/abc/junk+en-US.json.zlib").is_none());
    }
}
