//! Rust bindings for the WIT contract in `wit/`.
//!
//! HTTP and the host's services are async (they wait on the network, the clock and the user);
//! storage is synchronous: SQLite calls are short and a blocking call is cheaper than a future.
//! Every import may trap: broken invariants (an unknown resource handle) and exhausted limits stop
//! the component instead of being reported to it. Every record, enum and variant serialises to JSON
//! with WIT's own names (field names in snake case, cases as WIT spells them): the command line's
//! `--json` output is these types as they are.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "core",
    imports: {
        "d365meta:cache/store": trappable,
        "d365meta:cache/host": trappable,
        default: async | trappable,
    },
    exports: { default: async },
    with: {
        "d365meta:cache/store.transaction": crate::imports::store::TransactionHandle,
        "d365meta:cache/store.lease": crate::imports::store::LeaseHandle,
        "d365meta:cache/http.pending-batch": crate::imports::http::PendingBatch,
        "d365meta:cache/http.environment": crate::imports::http::EnvironmentHandle,
        "d365meta:cache/shared.shared-store": crate::shared::SharedStore,
        "d365meta:cache/shared.downloads": crate::imports::shared::Downloads,
    },
    additional_derives: [d365meta_wit_serialize::WitSerialize],
});

pub use self::d365meta::cache::{host as host_api, http as http_api, shared as shared_api, store as store_api, types};
pub use self::exports::d365meta::cache::cache as cache_api;

/// The name WIT gives a case of an enum (`entities-only`, `public-entity`), for text output.
pub fn name_of<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}
