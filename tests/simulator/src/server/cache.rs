//! Collections serialised once per dataset and served as slices.
//!
//! A full environment's PublicEntities response is tens of megabytes; serialising it for every
//! request (or every page) would make the simulator the slowest part of a test. Each collection is
//! serialised the first time it is asked for, item by item into one buffer with commas between, so
//! any run of consecutive items is one slice. Environments given the same `Arc<Dataset>` share it.

use crate::dataset::Dataset;
use bytes::Bytes;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use tokio::sync::OnceCell;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    DataEntities,
    PublicEntities,
    PublicEnumerations,
}

impl Kind {
    pub(crate) fn from_set(name: &str) -> Option<Kind> {
        match name {
            "DataEntities" => Some(Kind::DataEntities),
            "PublicEntities" => Some(Kind::PublicEntities),
            "PublicEnumerations" => Some(Kind::PublicEnumerations),
            _ => None,
        }
    }

    pub(crate) fn set_name(self) -> &'static str {
        match self {
            Kind::DataEntities => "DataEntities",
            Kind::PublicEntities => "PublicEntities",
            Kind::PublicEnumerations => "PublicEnumerations",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

pub(crate) struct Collection {
    buf: Bytes,
    spans: Vec<(usize, usize)>,
    by_name: HashMap<String, usize>,
    /// The top-level scalar fields of each item, for `$filter`; made on first use.
    scalars: OnceLock<Vec<Map<String, Value>>>,
}

impl Collection {
    fn build<T: Serialize>(items: &[T], name: impl Fn(&T) -> &str) -> Collection {
        let mut buf = Vec::new();
        let mut spans = Vec::with_capacity(items.len());
        let mut by_name = HashMap::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            let start = buf.len();
            serde_json::to_writer(&mut buf, item).expect("metadata objects serialise");
            spans.push((start, buf.len()));
            by_name.insert(name(item).to_string(), i);
        }
        Collection { buf: Bytes::from(buf), spans, by_name, scalars: OnceLock::new() }
    }

    pub(crate) fn len(&self) -> usize {
        self.spans.len()
    }

    pub(crate) fn position(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// One item's JSON object.
    pub(crate) fn item(&self, i: usize) -> Bytes {
        let (start, end) = self.spans[i];
        self.buf.slice(start..end)
    }

    /// Consecutive items, comma-separated: the inside of a JSON array.
    pub(crate) fn run(&self, items: Range<usize>) -> Bytes {
        if items.is_empty() {
            return Bytes::new();
        }
        self.buf.slice(self.spans[items.start].0..self.spans[items.end - 1].1)
    }

    /// The item as a JSON object (for `$select`).
    pub(crate) fn object(&self, i: usize) -> Map<String, Value> {
        serde_json::from_slice(&self.item(i)).unwrap_or_default()
    }

    pub(crate) fn scalars(&self) -> &[Map<String, Value>] {
        self.scalars.get_or_init(|| {
            (0..self.len()).map(|i| self.object(i).into_iter().filter(|(_, v)| !v.is_array() && !v.is_object()).collect()).collect()
        })
    }
}

/// The serialised collections of one dataset.
pub(crate) struct DatasetCache {
    dataset: Arc<Dataset>,
    collections: [OnceCell<Arc<Collection>>; 3],
}

impl DatasetCache {
    pub(crate) fn dataset(&self) -> &Arc<Dataset> {
        &self.dataset
    }

    pub(crate) async fn collection(&self, kind: Kind) -> Arc<Collection> {
        self.collections[kind.index()]
            .get_or_init(|| async {
                let dataset = self.dataset.clone();
                // Serialising a full dataset takes a while: keep it off the request workers.
                let built = tokio::task::spawn_blocking(move || match kind {
                    Kind::DataEntities => Collection::build(&dataset.data_entities, |e| &e.name),
                    Kind::PublicEntities => Collection::build(&dataset.public_entities, |e| &e.name),
                    Kind::PublicEnumerations => Collection::build(&dataset.enumerations, |e| &e.name),
                })
                .await;
                Arc::new(built.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())))
            })
            .await
            .clone()
    }
}

/// Finds the cache of a dataset, so that environments sharing a dataset share its serialisation.
#[derive(Default)]
pub(crate) struct CacheRegistry(Mutex<Vec<Weak<DatasetCache>>>);

impl CacheRegistry {
    pub(crate) fn cache_for(&self, dataset: &Arc<Dataset>) -> Arc<DatasetCache> {
        let mut caches = self.0.lock().unwrap_or_else(|e| e.into_inner());
        caches.retain(|c| c.strong_count() > 0);
        if let Some(cache) = caches.iter().filter_map(Weak::upgrade).find(|c| Arc::ptr_eq(&c.dataset, dataset)) {
            return cache;
        }
        let cache = Arc::new(DatasetCache { dataset: dataset.clone(), collections: Default::default() });
        caches.push(Arc::downgrade(&cache));
        cache
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::Scale;

    #[tokio::test]
    async fn slices_are_the_serialised_items_and_caches_are_shared() {
        let dataset = Arc::new(Dataset::generate(Scale::Tiny));
        let registry = CacheRegistry::default();
        let cache = registry.cache_for(&dataset);
        assert!(Arc::ptr_eq(&cache, &registry.cache_for(&dataset)));
        let other = Arc::new(Dataset::generate(Scale::Tiny));
        assert!(!Arc::ptr_eq(&cache, &registry.cache_for(&other)));

        let c = cache.collection(Kind::DataEntities).await;
        assert_eq!(c.len(), dataset.data_entities.len());
        let all: Vec<crate::model::DataEntity> =
            serde_json::from_slice(&[b"[".as_slice(), &c.run(0..c.len()), b"]"].concat()).expect("array");
        assert_eq!(all, dataset.data_entities);
        let i = c.position("CustCustomerV3Entity").expect("customers");
        assert_eq!(c.item(i), Bytes::from(serde_json::to_vec(&dataset.data_entities[i]).expect("json")));
        assert_eq!(c.scalars()[i].get("Name"), Some(&Value::from("CustCustomerV3Entity")));
        assert!(c.run(3..3).is_empty());
    }
}
