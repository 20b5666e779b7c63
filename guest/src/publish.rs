//! Publish: cached versions into the shared store, for other caches to pull.
//!
//! For each version, its most covering complete snapshot is published: the items the store lacks
//! (objects and label texts, judged by the hashes its manifests already name) are packed and
//! uploaded, then the version's manifest, last and only if absent. Packs are named by their hash
//! and written only if absent too, so publishing again, or from two machines at once, writes
//! nothing twice and never changes what a reader may already be reading.

use crate::catalog;
use crate::error::{Error, Result};
use crate::metadata::Kind;
use crate::params;
use crate::ports::{Ctx, Level, Shared};
use crate::read::entities;
use crate::share::{self, Item, LabelText, Manifest, ObjectRef, manifest::PackRef, pack};
use crate::sql::{query_map, query_opt};
use crate::sync::pull;
use crate::sync::snapshot::{self, SnapshotInfo};
use crate::wit::types::{PublishOptions, PublishOutcome, PublishReport, PublishedVersion};
use std::collections::BTreeMap;

/// Public entities read from the cache in one go while packing.
const ENTITIES_AT_ONCE: usize = 200;

pub fn publish(ctx: &Ctx<'_>, shared: &dyn Shared, options: &PublishOptions) -> Result<PublishReport> {
    let started = ctx.host.now_ms();
    let location = shared.location();
    let mut chosen: Vec<SnapshotInfo> = Vec::new();
    if options.versions.is_empty() {
        let ids = query_map(
            ctx.store,
            "SELECT DISTINCT v.id, v.last_seen_ms FROM versions v JOIN snapshots s ON s.version_id = v.id
             WHERE s.state = 'complete' AND s.entities = 1 ORDER BY v.last_seen_ms DESC, v.id",
            &[],
            |r| r.int(0),
        )?;
        for id in ids {
            chosen.extend(best_snapshot(ctx, id)?);
        }
    } else {
        for hash in &options.versions {
            let id = catalog::version_by_hash(ctx.store, hash)?;
            let best = best_snapshot(ctx, id)?.ok_or_else(|| {
                Error::not_found(format!(
                    "version {hash} has no complete snapshot of its entities in this cache; sync an environment that runs it first"
                ))
            })?;
            if !chosen.iter().any(|c| c.id == best.id) {
                chosen.push(best);
            }
        }
    }
    let mut index: Option<StoreIndex> = None;
    let mut versions = Vec::new();
    for snapshot in chosen {
        ctx.check_cancelled()?;
        versions.push(publish_version(ctx, shared, &snapshot, &mut index)?);
    }
    Ok(PublishReport { location, versions, duration_ms: (ctx.host.now_ms() - started).max(0) as u64 })
}

/// The version's complete snapshot with entities that covers most (and is the most recent).
fn best_snapshot(ctx: &Ctx<'_>, version_id: i64) -> Result<Option<SnapshotInfo>> {
    Ok(snapshot::complete_for_version(ctx.store, version_id)?.into_iter().find(|s| s.coverage.entities))
}

/// What the store holds already: the pack of every item hash its manifests name.
#[derive(Default)]
struct StoreIndex {
    packs: BTreeMap<String, String>,
    sizes: BTreeMap<String, u64>,
}

impl StoreIndex {
    fn load(shared: &dyn Shared, ctx: &Ctx<'_>) -> Result<StoreIndex> {
        let location = shared.location();
        let names: Vec<String> = shared
            .list("versions/")
            .map_err(|e| e.into_error(&location, "listing versions"))?
            .into_iter()
            .map(|l| l.name)
            .filter(|n| n.ends_with(crate::share::MANIFEST_SUFFIX))
            .collect();
        let mut index = StoreIndex::default();
        for (name, answer) in names.iter().zip(shared.download(&names)) {
            let Some(bytes) = answer.map_err(|e| e.into_error(&location, &format!("reading {name}")))? else { continue };
            // A damaged manifest names nothing this publish can rely on: its items are packed again.
            match Manifest::read(name, &bytes, None) {
                Ok(m) => index.add(&m),
                Err(e) => ctx.host.log(Level::Warn, &format!("shared store {location}: {e}; its items are not counted as present")),
            }
        }
        Ok(index)
    }

    fn add(&mut self, m: &Manifest) {
        for (hash, pack) in m.packs_of_items() {
            self.packs.entry(hash.to_owned()).or_insert_with(|| pack.to_owned());
        }
        for p in &m.packs {
            self.sizes.insert(p.name.clone(), p.bytes);
        }
    }
}

/// A manifest being filled, with the pack being packed.
struct Packing<'a> {
    shared: &'a dyn Shared,
    location: String,
    manifest: Manifest,
    pack_numbers: BTreeMap<String, u32>,
    writer: pack::Writer,
    /// Entries waiting for the pack being packed: objects by position, labels by language and position.
    waiting_objects: Vec<usize>,
    waiting_labels: Vec<(String, usize)>,
    packed_hashes: Vec<String>,
    report: PublishedVersion,
}

/// Marks an entry whose pack is not written yet.
const UNPACKED: u32 = u32::MAX;

impl Packing<'_> {
    fn pack_number(&mut self, name: &str, bytes: u64) -> u32 {
        if let Some(&n) = self.pack_numbers.get(name) {
            return n;
        }
        let n = self.manifest.packs.len() as u32;
        self.manifest.packs.push(PackRef { name: name.to_owned(), bytes });
        self.pack_numbers.insert(name.to_owned(), n);
        n
    }

    /// The number in this manifest of the pack the store already holds `hash` in, if it does.
    fn stored_pack(&mut self, index: &StoreIndex, hash: &str) -> Option<u32> {
        let pack = index.packs.get(hash)?;
        Some(self.pack_number(pack, index.sizes.get(pack).copied().unwrap_or(0)))
    }

    fn push(&mut self, item: &Item, hash: String, index: &mut StoreIndex) -> Result<()> {
        self.writer.push(&hash, item);
        self.packed_hashes.push(hash);
        if self.writer.is_full() { self.flush(index) } else { Ok(()) }
    }

    /// Uploads the pack being packed (if it holds anything) and gives its entries their pack.
    fn flush(&mut self, index: &mut StoreIndex) -> Result<()> {
        if self.writer.is_empty() {
            return Ok(());
        }
        let (name, bytes) = std::mem::take(&mut self.writer).finish();
        let written = self.shared.put_new(&name, &bytes).map_err(|e| e.into_error(&self.location, &format!("writing {name}")))?;
        if written {
            self.report.packs_uploaded += 1;
            self.report.bytes_uploaded += bytes.len() as u64;
        }
        let number = self.pack_number(&name, bytes.len() as u64);
        for i in self.waiting_objects.drain(..) {
            self.manifest.objects[i].3 = number;
        }
        for (language, i) in self.waiting_labels.drain(..) {
            if let Some(entry) = self.manifest.labels.get_mut(&language).and_then(|l| l.get_mut(i)) {
                entry.1 = number;
            }
        }
        for hash in self.packed_hashes.drain(..) {
            index.packs.insert(hash, name.clone());
        }
        index.sizes.insert(name, bytes.len() as u64);
        Ok(())
    }
}

fn publish_version(
    ctx: &Ctx<'_>,
    shared: &dyn Shared,
    snapshot: &SnapshotInfo,
    index: &mut Option<StoreIndex>,
) -> Result<PublishedVersion> {
    let location = shared.location();
    let coverage = snapshot.coverage.clone();
    let name = share::manifest_name(&snapshot.modules_hash, &coverage);
    let objects = query_map(
        ctx.store,
        "SELECT so.kind, so.name, o.hash, o.id FROM snapshot_objects so JOIN objects o ON o.id = so.object_id
         WHERE so.snapshot_id = ?1 ORDER BY so.kind, so.position",
        &params![snapshot.id],
        |r| Ok((r.text(0)?, r.text(1)?, r.text(2)?, r.int(3)?)),
    )?;
    let labels = query_map(
        ctx.store,
        "SELECT l.label_id, l.language, l.text, l.missing FROM snapshot_labels sl JOIN labels l ON l.id = sl.label_row
         WHERE sl.snapshot_id = ?1 ORDER BY l.language, l.label_id, l.missing, l.text",
        &params![snapshot.id],
        |r| Ok(LabelText { label_id: r.text(0)?, language: r.text(1)?, text: r.text(2)?, missing: r.bool(3)? }),
    )?;
    let report = PublishedVersion {
        modules_hash: snapshot.modules_hash.clone(),
        coverage: coverage.to_wit(),
        manifest: name.clone(),
        outcome: PublishOutcome::AlreadyPublished,
        objects: objects.len() as u64,
        labels: labels.len() as u64,
        objects_uploaded: 0,
        labels_uploaded: 0,
        packs_uploaded: 0,
        bytes_uploaded: 0,
    };
    if pull::manifests(shared, &snapshot.modules_hash)?.iter().any(|(_, c)| c.covers(&coverage)) {
        return Ok(report);
    }
    if index.is_none() {
        *index = Some(StoreIndex::load(shared, ctx)?);
    }
    let index = index.as_mut().ok_or_else(|| Error::internal("the store's index was not loaded"))?;

    let (application_version, platform_version) = query_opt(
        ctx.store,
        "SELECT application_version, platform_version FROM versions WHERE id = ?1",
        &params![snapshot.version_id],
        |r| Ok((r.opt_text(0)?, r.opt_text(1)?)),
    )?
    .unwrap_or_default();
    let modules = catalog::version_modules(ctx.store, snapshot.version_id)?;
    let manifest =
        Manifest::new(&snapshot.modules_hash, modules, application_version, platform_version, coverage.to_wit(), ctx.host.now_ms());
    let mut packing = Packing {
        shared,
        location: location.clone(),
        manifest,
        pack_numbers: BTreeMap::new(),
        writer: pack::Writer::default(),
        waiting_objects: vec![],
        waiting_labels: vec![],
        packed_hashes: vec![],
        report,
    };

    // Objects, in the manifest's order: data entities, public entities, enumerations.
    for kind in Kind::ALL {
        let of_kind: Vec<&(String, String, String, i64)> = objects.iter().filter(|o| o.0 == kind.as_str()).collect();
        let mut lacking: Vec<(usize, i64, String)> = Vec::new();
        for (name, hash, id) in of_kind.iter().map(|o| (&o.1, &o.2, o.3)) {
            let position = packing.manifest.objects.len();
            let pack = packing.stored_pack(index, hash).unwrap_or_else(|| {
                lacking.push((position, id, hash.clone()));
                UNPACKED
            });
            packing.manifest.objects.push(ObjectRef(kind.as_str().to_owned(), name.clone(), hash.clone(), pack));
        }
        for chunk in lacking.chunks(ENTITIES_AT_ONCE) {
            let items = load(ctx, kind, chunk)?;
            for ((position, _, hash), item) in chunk.iter().zip(items) {
                if item.hash() != *hash {
                    return Err(Error::internal(format!(
                        "{} {} read back from the cache does not match its stored hash; sync its version again with --strategy full",
                        kind.as_str(),
                        packing.manifest.objects[*position].name()
                    )));
                }
                // The same content twice in one version (under two names) is packed once: in a
                // pack written already, or in the one being packed.
                if let Some(number) = packing.stored_pack(index, hash) {
                    packing.manifest.objects[*position].3 = number;
                    continue;
                }
                packing.waiting_objects.push(*position);
                if !packing.packed_hashes.contains(hash) {
                    packing.report.objects_uploaded += 1;
                    packing.push(&item, hash.clone(), index)?;
                }
            }
        }
    }
    for label in labels {
        let hash = label.hash();
        let stored = packing.stored_pack(index, &hash);
        let entries = packing.manifest.labels.entry(label.language.clone()).or_default();
        let position = entries.len();
        entries.push((hash.clone(), stored.unwrap_or(UNPACKED)));
        if stored.is_none() {
            packing.waiting_labels.push((label.language.clone(), position));
            packing.report.labels_uploaded += 1;
            packing.push(&Item::Label(label), hash, index)?;
        }
    }
    packing.flush(index)?;
    if packing.manifest.objects.iter().any(|o| o.3 == UNPACKED) || packing.manifest.labels.values().flatten().any(|l| l.1 == UNPACKED) {
        return Err(Error::internal(format!("publishing {name}: an item was left without a pack")));
    }
    let bytes = packing.manifest.to_bytes();
    let written = shared.put_new(&name, &bytes).map_err(|e| e.into_error(&location, &format!("writing {name}")))?;
    let mut report = packing.report;
    if written {
        report.outcome = PublishOutcome::Published;
        report.bytes_uploaded += bytes.len() as u64;
        index.add(&packing.manifest);
    }
    Ok(report)
}

/// The lacking objects `(position, object id, hash)` of one kind, read whole from the cache.
fn load(ctx: &Ctx<'_>, kind: Kind, lacking: &[(usize, i64, String)]) -> Result<Vec<Item>> {
    let missing = |id: i64| Error::internal(format!("{} object {id} vanished while publishing", kind.as_str()));
    match kind {
        Kind::PublicEntity => {
            let ids: Vec<i64> = lacking.iter().map(|(_, id, _)| *id).collect();
            let mut read = entities::public_entities(ctx.store, &ids)?;
            ids.iter().map(|id| read.remove(id).map(Item::PublicEntity).ok_or_else(|| missing(*id))).collect()
        }
        Kind::DataEntity => lacking
            .iter()
            .map(|(_, id, _)| entities::data_entity(ctx.store, *id)?.map(Item::DataEntity).ok_or_else(|| missing(*id)))
            .collect(),
        Kind::Enumeration => lacking
            .iter()
            .map(|(_, id, _)| entities::enumeration(ctx.store, *id)?.map(Item::Enumeration).ok_or_else(|| missing(*id)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{MemoryShared, World};
    use crate::wit::types::{Plan, PublishOptions, PublishOutcome, ReadOptions, Strategy, SyncOptions};

    fn environment(w: &World, version: &str, extra_property: bool) {
        let property = if extra_property { r#",{"Name":"C","LabelId":"@L:C"}"# } else { "" };
        w.http
            .route("GetInstalledModules", 200, &format!(r#"{{"value":["Name: M | Version: {version} | Module: M | Publisher: P | DisplayName: M"]}}"#))
            .route("GetApplicationVersion", 200, r#"{"value":"10.0.1"}"#)
            .route("GetPlatformBuildVersion", 200, r#"{"value":"7.0.1"}"#)
            .route("/Metadata/DataEntities", 200, r#"{"value":[{"Name":"D","PublicEntityName":"P","LabelId":"@L:D"},{"Name":"D2","PublicEntityName":"Q"}]}"#)
            .route(
                "/Metadata/PublicEntities",
                200,
                &format!(
                    r#"{{"value":[{{"Name":"P","EntitySetName":"Ps","LabelId":"@L:P","Properties":[{{"Name":"A","LabelId":"@L:A"}},{{"Name":"B","LabelId":"literal"}}{property}],"NavigationProperties":[{{"Name":"N","RelatedEntity":"Q","Constraints":[{{"@odata.type":"Microsoft.Dynamics.Metadata.Ax.Contracts.ReferentialConstraint","Property":"A","ReferencedProperty":"B"}}]}}]}},{{"Name":"Q","EntitySetName":"Qs"}}]}}"#
                ),
            )
            .route("/Metadata/PublicEnumerations", 200, r#"{"value":[{"Name":"E","LabelId":"@L:E","Members":[{"Name":"X","Value":0,"LabelId":"@L:X"}]}]}"#)
            .route("Language='en-US')", 200, r#"{"Id":"@L:any","Language":"en-US","Value":"Text"}"#);
    }

    fn sync(w: &World, shared: Option<&MemoryShared>) -> crate::wit::types::SyncReport {
        let options = SyncOptions { strategy: Strategy::Auto, languages: vec![], drop_languages: vec![], dry_run: false };
        crate::api::sync(&w.ctx(), shared.map(|s| s as &dyn crate::ports::Shared), &options).unwrap()
    }

    /// A cache that synced version 1.0 and published it to `shared`.
    fn published(shared: &MemoryShared) -> World {
        let publisher = World::new();
        environment(&publisher, "1.0", false);
        sync(&publisher, None);
        crate::api::publish(&publisher.ctx(), shared, &PublishOptions { versions: vec![] }).unwrap();
        publisher
    }

    fn answers(w: &World) -> String {
        let options = ReadOptions { base_url: None, labels: None };
        let entity = crate::api::entity(&w.ctx(), "P", &options).unwrap();
        let enumeration = crate::api::enumeration(&w.ctx(), "E", &options).unwrap();
        format!("{}\n{}", serde_json::to_string(&entity).unwrap(), serde_json::to_string(&enumeration).unwrap())
    }

    #[test]
    fn a_published_version_pulls_into_another_cache_with_the_same_answers_and_one_request() {
        let shared = MemoryShared::default();
        let publisher = World::new();
        environment(&publisher, "1.0", false);
        sync(&publisher, None);
        let report = crate::api::publish(&publisher.ctx(), &shared, &PublishOptions { versions: vec![] }).unwrap();
        let v = &report.versions[0];
        assert_eq!((v.outcome, v.objects, v.objects_uploaded, v.labels), (PublishOutcome::Published, 5, 5, 5));
        assert_eq!(v.packs_uploaded, 1);
        let again = crate::api::publish(&publisher.ctx(), &shared, &PublishOptions { versions: vec![] }).unwrap();
        assert_eq!((again.versions[0].outcome, again.versions[0].packs_uploaded), (PublishOutcome::AlreadyPublished, 0));

        let puller = World::new();
        environment(&puller, "1.0", false);
        let pulled = sync(&puller, Some(&shared));
        assert_eq!(pulled.plan, Plan::Pull, "{:?}", pulled.warnings);
        assert_eq!(puller.http.requests().len(), 1, "only the modules are asked for: {:?}", puller.http.requests());
        let p = pulled.pulled.as_ref().unwrap();
        assert_eq!((p.packs, p.objects, p.labels), (1, 5, 5));
        assert_eq!(answers(&puller), answers(&publisher));
        assert_eq!(pulled.counts, sync(&publisher, None).counts);

        // A second version publishes only what it adds, and a cache with the first pulls only that.
        publisher.http.reset();
        environment(&publisher, "2.0", true);
        sync(&publisher, None);
        let report = crate::api::publish(&publisher.ctx(), &shared, &PublishOptions { versions: vec![] }).unwrap();
        let published: std::collections::BTreeSet<_> =
            report.versions.iter().map(|v| (v.outcome == PublishOutcome::Published, v.objects_uploaded, v.labels_uploaded)).collect();
        assert_eq!(published, [(true, 1, 1), (false, 0, 0)].into(), "P changed, @L:C is new; the first version was published already");
        puller.http.reset();
        environment(&puller, "2.0", true);
        let pulled = sync(&puller, Some(&shared));
        assert_eq!(pulled.plan, Plan::Pull, "{:?}", pulled.warnings);
        let p = pulled.pulled.as_ref().unwrap();
        assert_eq!((p.packs, p.objects, p.labels), (1, 1, 1), "only what the second version adds");
        assert_eq!(answers(&puller), answers(&publisher));
    }

    #[test]
    fn a_damaged_pack_is_refused_and_the_sync_fetches_from_the_environment() {
        let shared = MemoryShared::default();
        let publisher = published(&shared);
        let pack = shared.objects.borrow().keys().find(|k| k.starts_with("packs/")).cloned().unwrap();
        {
            let mut objects = shared.objects.borrow_mut();
            let bytes = objects.get_mut(&pack).unwrap();
            let text = String::from_utf8(crate::share::pack::open(&pack, bytes).unwrap()).unwrap();
            assert!(text.contains("\"entity_set_name\":\"Ps\""));
            *bytes = crate::share::deflate(text.replace("\"entity_set_name\":\"Ps\"", "\"entity_set_name\":\"Zs\"").as_bytes());
        }
        let puller = World::new();
        environment(&puller, "1.0", false);
        let report = sync(&puller, Some(&shared));
        assert_eq!(report.plan, Plan::Full);
        assert!(report.warnings.iter().any(|w| w.contains("damaged") && w.contains(&pack)), "{:?}", report.warnings);
        let stored: i64 =
            crate::sql::query_opt(&puller.store, "SELECT count(*) FROM public_entities WHERE entity_set_name = 'Zs'", &[], |r| r.int(0))
                .unwrap()
                .unwrap();
        assert_eq!(stored, 0);
        assert_eq!(answers(&puller), answers(&publisher));
    }

    #[test]
    fn a_manifest_that_names_an_object_with_another_objects_hash_is_refused() {
        let shared = MemoryShared::default();
        let publisher = published(&shared);
        let name = shared.objects.borrow().keys().find(|k| k.ends_with(crate::share::MANIFEST_SUFFIX)).cloned().unwrap();
        {
            let mut objects = shared.objects.borrow_mut();
            let mut manifest = crate::share::Manifest::read(&name, &objects[&name], None).unwrap();
            let [p, q] =
                [0, 1].map(|i| manifest.objects.iter().position(|o| o.kind() == "public-entity" && o.name() == ["P", "Q"][i]).unwrap());
            let (hp, hq) = (manifest.objects[p].2.clone(), manifest.objects[q].2.clone());
            manifest.objects[p].2 = hq;
            manifest.objects[q].2 = hp;
            objects.insert(name.clone(), manifest.to_bytes());
        }
        let puller = World::new();
        environment(&puller, "1.0", false);
        let report = sync(&puller, Some(&shared));
        assert_eq!(report.plan, Plan::Full);
        assert!(report.warnings.iter().any(|w| w.contains("another object's hash")), "{:?}", report.warnings);
        assert_eq!(answers(&puller), answers(&publisher));
    }
}
