//! `d365meta:cache/shared`: the shared store, moved by `object_store` under the host's policy.
//!
//! The policy: names are confined to the configured store's root (a strict alphabet, no `.` or
//! `..` segments), objects are bounded in size, requests retried within a budget by the client,
//! and the user's Ctrl-C stops a transfer. Errors reach the component coarse; details go to the log.

use crate::bindings::shared_api as api;
use crate::runtime::State;
use crate::shared::SharedStore;
use futures_util::StreamExt;
use object_store::path::Path;
use object_store::{GetOptions, ObjectStore, PutMode, PutOptions, PutPayload};
use wasmtime::component::Resource;

/// Downloads the host runs for the component; dropping them stops what was not taken.
pub struct Downloads {
    receiver: tokio::sync::mpsc::Receiver<Result<Option<Vec<u8>>, api::Error>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Downloads {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Checks a name against the policy (see wit/shared.wit) and makes it a path under the root.
pub fn checked(name: &str) -> Result<Path, api::Error> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-');
    let fine = !name.is_empty()
        && name.len() <= 1024
        && name.split('/').all(|segment| !segment.is_empty() && segment != "." && segment != ".." && segment.chars().all(allowed));
    if !fine {
        return Err(api::Error::Denied(format!("{name:?} is not a name the shared store allows")));
    }
    Path::parse(name).map_err(|e| api::Error::Denied(format!("{name:?}: {e}")))
}

/// The component's view of a failure: coarse, with the details logged.
fn failure(store: &SharedStore, what: &str, e: object_store::Error) -> api::Error {
    tracing::warn!(location = %store.location, "shared store: {what}: {e}");
    match e {
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
            api::Error::Other(format!("{what}: access refused ({e})"))
        }
        object_store::Error::NotSupported { .. } | object_store::Error::NotImplemented { .. } => api::Error::Other(format!("{what}: {e}")),
        _ => api::Error::Unavailable(format!("{what}: {}", first_line(&e.to_string()))),
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

impl SharedStore {
    async fn cancellable<T>(&self, work: impl std::future::Future<Output = Result<T, api::Error>>) -> Result<T, api::Error> {
        tokio::select! {
            result = work => result,
            () = self.cancel.cancelled() => Err(api::Error::Cancelled),
        }
    }

    pub async fn list(&self, prefix: &str) -> Result<Vec<api::Listed>, api::Error> {
        // `object_store` lists whole path segments: list the directory the prefix is in, then keep
        // the names that begin with it.
        let directory = prefix.rsplit_once('/').map(|(dir, _)| dir).unwrap_or("");
        let under = if directory.is_empty() { None } else { Some(checked(directory)?) };
        self.cancellable(async {
            let mut found = Vec::new();
            let mut stream = self.store.list(under.as_ref());
            while let Some(meta) = stream.next().await {
                let meta = meta.map_err(|e| failure(self, &format!("listing {prefix}"), e))?;
                let name = meta.location.to_string();
                if name.starts_with(prefix) {
                    found.push(api::Listed { name, size: meta.size });
                }
            }
            found.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(found)
        })
        .await
    }

    pub async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, api::Error> {
        let path = checked(name)?;
        self.cancellable(async {
            let result = match self.store.get_opts(&path, GetOptions::default()).await {
                Ok(result) => result,
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(failure(self, &format!("reading {name}"), e)),
            };
            if result.meta.size > self.max_object_bytes {
                return Err(api::Error::TooLarge(format!(
                    "{name} is {} bytes, more than the limit of {} bytes",
                    result.meta.size, self.max_object_bytes
                )));
            }
            let bytes = result.bytes().await.map_err(|e| failure(self, &format!("reading {name}"), e))?;
            Ok(Some(bytes.to_vec()))
        })
        .await
    }

    /// Downloads `names` in the background, `concurrency` at a time, handing them over in order:
    /// at most that many are in flight and one waits to be taken, however slowly the component
    /// takes them.
    pub fn download(&self, names: Vec<String>) -> Downloads {
        let (sender, receiver) = tokio::sync::mpsc::channel(1);
        let store = self.clone();
        let task = tokio::spawn(async move {
            let fetches = futures_util::stream::iter(names).map(|name| {
                let store = store.clone();
                async move { store.get(&name).await }
            });
            let mut answers = fetches.buffered(store.concurrency);
            while let Some(answer) = answers.next().await {
                if sender.send(answer).await.is_err() {
                    return;
                }
            }
        });
        Downloads { receiver, task }
    }

    pub async fn put_new(&self, name: &str, body: Vec<u8>) -> Result<bool, api::Error> {
        let path = checked(name)?;
        if body.len() as u64 > self.max_object_bytes {
            return Err(api::Error::TooLarge(format!(
                "{name} is {} bytes, more than the limit of {} bytes",
                body.len(),
                self.max_object_bytes
            )));
        }
        self.cancellable(async {
            let options = PutOptions { mode: PutMode::Create, ..PutOptions::default() };
            match self.store.put_opts(&path, PutPayload::from(body), options).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => Ok(false),
                Err(e) => Err(failure(self, &format!("writing {name}"), e)),
            }
        })
        .await
    }
}

impl api::Host for State {}

impl api::HostDownloads for State {
    async fn next(&mut self, downloads: Resource<Downloads>) -> wasmtime::Result<Option<Result<Option<Vec<u8>>, api::Error>>> {
        let answer = self.table.get_mut(&downloads)?.receiver.recv().await;
        self.returning_to_guest();
        Ok(answer)
    }

    async fn drop(&mut self, downloads: Resource<Downloads>) -> wasmtime::Result<()> {
        self.table.delete(downloads)?;
        Ok(())
    }
}

impl api::HostSharedStore for State {
    async fn location(&mut self, store: Resource<SharedStore>) -> wasmtime::Result<String> {
        let location = self.table.get(&store)?.location.clone();
        self.returning_to_guest();
        Ok(location)
    }

    async fn list(&mut self, store: Resource<SharedStore>, prefix: String) -> wasmtime::Result<Result<Vec<api::Listed>, api::Error>> {
        let shared = self.table.get(&store)?.clone();
        let result = shared.list(&prefix).await;
        self.returning_to_guest();
        Ok(result)
    }

    async fn get(&mut self, store: Resource<SharedStore>, name: String) -> wasmtime::Result<Result<Option<Vec<u8>>, api::Error>> {
        let shared = self.table.get(&store)?.clone();
        let result = shared.get(&name).await;
        self.returning_to_guest();
        Ok(result)
    }

    async fn download(&mut self, store: Resource<SharedStore>, names: Vec<String>) -> wasmtime::Result<Resource<Downloads>> {
        let downloads = self.table.get(&store)?.download(names);
        let handle = self.table.push(downloads)?;
        self.returning_to_guest();
        Ok(handle)
    }

    async fn put_new(&mut self, store: Resource<SharedStore>, name: String, body: Vec<u8>) -> wasmtime::Result<Result<bool, api::Error>> {
        let shared = self.table.get(&store)?.clone();
        let result = shared.put_new(&name, body).await;
        self.returning_to_guest();
        Ok(result)
    }

    async fn drop(&mut self, _store: Resource<SharedStore>) -> wasmtime::Result<()> {
        // The host lends the store for one call and removes it from the table itself afterwards.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::checked;

    #[test]
    fn names_stay_under_the_root() {
        assert!(checked("packs/0a.pack").is_ok());
        assert!(checked("versions/ab/entities+en-US.json").is_ok());
        for bad in ["", "/abs", "a//b", "../x", "a/../b", "a/./b", "a\\b", "a b", "a?b", "x/"] {
            assert!(checked(bad).is_err(), "{bad:?}");
        }
    }
}
