//! The limits every component instance runs under: a guest that never returns to the host is
//! interrupted, and one that grows its memory past the cap traps. Both use small components written
//! in the component text format and the host's own store configuration.

use d365meta::auth::Authenticator;
use d365meta::cancel::CancelToken;
use d365meta::imports::host::Services;
use d365meta::imports::http::{HttpOptions, Network};
use d365meta::imports::store::Database;
use d365meta::runtime::{Runtime, RuntimeConfig, State};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::{Component, Linker};

const MISBEHAVING: &str = r#"
(component
  (core module $m
    (memory (export "memory") 1)
    (func (export "spin") (loop $forever (br $forever)))
    (func (export "grow") (result i32) (memory.grow (i32.const 2048)))
  )
  (core instance $i (instantiate $m))
  (func (export "spin") (canon lift (core func $i "spin")))
  (func (export "grow") (result s32) (canon lift (core func $i "grow")))
)
"#;

fn runtime(cpu: Duration, memory: usize) -> Runtime {
    Runtime::new(RuntimeConfig { guest_cpu_limit: cpu, memory_limit_bytes: memory, ..RuntimeConfig::default() }).unwrap()
}

fn state() -> State {
    let cancel = CancelToken::new();
    State::new(
        Network::new(HttpOptions::default(), Arc::new(Authenticator::none()), cancel.clone()).unwrap(),
        Database::open_in_memory().unwrap(),
        Services::new(cancel, None),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_that_loops_forever_is_interrupted() {
    let runtime = runtime(Duration::from_millis(300), 64 << 20);
    let component = Component::new(runtime.engine_ref(), MISBEHAVING).unwrap();
    let linker = Linker::<State>::new(runtime.engine_ref());
    let mut store = runtime.new_store(state());
    let instance = linker.instantiate_async(&mut store, &component).await.unwrap();
    let spin = instance.get_typed_func::<(), ()>(&mut store, "spin").unwrap();
    // The limit counts from when control passes to the guest, as for every export call.
    let started = Instant::now();
    d365meta::runtime::entering_guest(&mut store);
    let err = spin.call_async(&mut store, ()).await.expect_err("an endless loop must not return");
    let elapsed = started.elapsed();
    let message = format!("{err:#}");
    assert!(message.contains("without returning to the host") && message.contains("interrupted"), "{message}");
    assert!(elapsed >= Duration::from_millis(300), "interrupted before the limit: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(20), "not interrupted promptly: {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_that_grows_past_the_memory_cap_traps() {
    // 2048 pages are 128 MiB, over a 16 MiB cap.
    let runtime = runtime(Duration::from_secs(30), 16 << 20);
    let component = Component::new(runtime.engine_ref(), MISBEHAVING).unwrap();
    let linker = Linker::<State>::new(runtime.engine_ref());
    let mut store = runtime.new_store(state());
    let instance = linker.instantiate_async(&mut store, &component).await.unwrap();
    let grow = instance.get_typed_func::<(), (i32,)>(&mut store, "grow").unwrap();
    let err = grow.call_async(&mut store, ()).await.expect_err("growing past the cap must trap");
    let message = format!("{err:#}");
    assert!(message.contains("memory"), "{message}");

    // Under a cap that allows it, the same growth succeeds: the trap came from the cap.
    let roomy = runtime_with_memory(256 << 20);
    let component = Component::new(roomy.engine_ref(), MISBEHAVING).unwrap();
    let mut store = roomy.new_store(state());
    let instance = Linker::<State>::new(roomy.engine_ref()).instantiate_async(&mut store, &component).await.unwrap();
    let grow = instance.get_typed_func::<(), (i32,)>(&mut store, "grow").unwrap();
    assert_eq!(grow.call_async(&mut store, ()).await.unwrap(), (1,), "memory.grow returns the old size in pages");
}

fn runtime_with_memory(memory: usize) -> Runtime {
    runtime(Duration::from_secs(30), memory)
}
