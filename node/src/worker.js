// The worker that runs a component: it instantiates jco's transpiled output with this package's
// imports (store, host, http, shared) and a WASI that grants nothing, then runs the calls the main
// thread sends, one at a time. Store calls run here, on better-sqlite3's synchronous API, and so do
// those of the shared store (a directory, with Node's synchronous file API); HTTP calls block on
// the bridge while the main thread sends them.

import { parentPort, workerData } from 'node:worker_threads';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { clocks } from '@bytecodealliance/preview2-shim';
import { WASIShim } from '@bytecodealliance/preview2-shim/instantiation';
import { Store } from './store.js';
import { Downloads, SharedStore, rootProblem } from './shared.js';
import { caller, SLOT } from './bridge.js';

const { componentDir, moduleName, database, storeOptions, shared, flags, bridge } = workerData;
const call = caller(bridge, flags);
const dispose = Symbol.dispose ?? Symbol.for('dispose');
const post = (message) => parentPort.postMessage(message);

/**
 * WASI for the component: no preopened directories, no environment variables, no arguments, no
 * network (sockets and name lookup refused). The core uses only clocks and its output streams,
 * which the main thread turns into log lines. `wasi:http` is not offered at all: the only way out
 * is the `environment` it is lent.
 */
export function sandboxedWasi() {
  const imports = new WASIShim({ sandbox: { preopens: {}, env: {}, args: [], enableNetwork: false } }).getImportObject();
  for (const key of Object.keys(imports)) if (key.startsWith('wasi:http/')) delete imports[key];
  // The shim's stdin reads the process's own standard input (file descriptor 0); the component
  // gets an input that is closed from the start instead.
  const { InputStream } = imports['wasi:io/streams'];
  const { monotonicClock } = clocks;
  class ClosedInput extends InputStream {
    read() {
      throw { tag: 'closed' };
    }
    blockingRead() {
      throw { tag: 'closed' };
    }
    skip() {
      throw { tag: 'closed' };
    }
    blockingSkip() {
      throw { tag: 'closed' };
    }
    subscribe() {
      return monotonicClock.subscribeDuration(0n);
    }
  }
  const stdin = new ClosedInput();
  imports['wasi:cli/stdin'] = { getStdin: () => stdin };
  return imports;
}

/** A request's answer from the main thread: `{ ok }`, or `{ err }` thrown as jco expects. */
function unwrap(outcome) {
  if ('err' in outcome) throw { payload: outcome.err };
  return outcome.ok;
}

class PendingBatch {
  #id;
  constructor(id) {
    this.#id = id;
  }
  next(max, lingerMs) {
    return call('next', this.#id, max, lingerMs);
  }
  [dispose]() {
    if (this.#id !== null) call('drop', this.#id);
    this.#id = null;
  }
}

class Environment {
  #id;
  #baseUrl;
  constructor(id, baseUrl) {
    this.#id = id;
    this.#baseUrl = baseUrl;
  }
  baseUrl() {
    return this.#baseUrl;
  }
  send(request) {
    return unwrap(call('send', this.#id, request));
  }
  start(requests) {
    return new PendingBatch(call('start', this.#id, requests));
  }
}

let store;
try {
  store = new Store(database, storeOptions);
} catch (e) {
  // A file that is not a cache (or cannot be opened) ends the start, with its kind if it has one.
  post({ startFailed: { kind: e?.kind ?? 'store', message: String(e?.message ?? e) } });
  process.exit(0);
}

const host = {
  log: (level, message) => post({ event: 'log', level, message }),
  progress: (event) => post({ event: 'progress', value: event }),
  cancelled: () => Atomics.load(flags, SLOT.cancelled) === 1,
};

function imports() {
  const own = {
    'd365meta:cache/store': store.imports(),
    'd365meta:cache/host': host,
    'd365meta:cache/http': { Environment, PendingBatch },
    // Always imported (the world imports it); a store exists only when the user configured one.
    'd365meta:cache/shared': { SharedStore, Downloads },
    'd365meta:cache/types': {},
  };
  // jco looks interfaces up by name; the versioned names are given too for other bindings.
  for (const [name, value] of Object.entries(own)) own[`${name}@0.2.0`] = value;
  return { ...sandboxedWasi(), ...own };
}

const { instantiate } = await import(pathToFileURL(join(componentDir, `${moduleName}.js`)).href);
const getCoreModule = async (file) => WebAssembly.compile(await readFile(join(componentDir, file)));
const root = await instantiate(getCoreModule, imports());
const api = root.cache ?? root;
let broken = null;

/** The shared store the user configured (a directory), lent to the calls that name it. */
const sharedStore = shared ? new SharedStore(shared.place, { maxObjectBytes: shared.maxObjectBytes, cancelled: host.cancelled }) : null;

/** An error the call answers with before the component is called (`types.error`). */
const refusal = (kind, message) => ({ payload: { kind, message } });

/**
 * Arguments as sent: `{ $environment: { id, baseUrl } }` stands for an environment to lend,
 * `{ $shared: 'open' | 'create' }` for the shared store. As in the native host, a store whose
 * directory is missing is not lent to a sync (`open`), which fetches from the environment and
 * says why in `unopened`; a publish (`create`) makes the directory, or fails.
 */
function lend(arg, unopened) {
  if (!arg || typeof arg !== 'object') return arg;
  if (arg.$environment) return new Environment(arg.$environment.id, arg.$environment.baseUrl);
  if (arg.$shared === 'open' || arg.$shared === 'create') {
    if (!sharedStore) throw refusal('invalid-input', 'no shared store is configured');
    const create = arg.$shared === 'create';
    const problem = rootProblem(shared.place, { create });
    if (problem === null) return sharedStore;
    if (create) throw refusal('invalid-input', problem);
    host.log('warn', `${problem}; syncing from the environment alone`);
    unopened.push(`${problem}; fetched from the environment instead`);
    return undefined;
  }
  return arg;
}

parentPort.on('message', (message) => {
  if (message.close) {
    store.close();
    // Ends this thread only, and with it the shim's own I/O thread.
    process.exit(0);
  }
  const { id, name, args, reading } = message;
  if (broken) {
    post({ id, fault: `the component stopped working after an earlier failure (${broken}); open the cache again` });
    return;
  }
  store.reading = Boolean(reading);
  try {
    const fn = api[name];
    if (typeof fn !== 'function') throw new Error(`the component exports no function ${name}`);
    const unopened = [];
    const ok = fn(...args.map((arg) => lend(arg, unopened)));
    if (unopened.length > 0 && Array.isArray(ok?.warnings)) ok.warnings.push(...unopened);
    post({ id, ok });
  } catch (e) {
    if (e && Object.hasOwn(e, 'payload') && e.payload && typeof e.payload.kind === 'string') {
      post({ id, err: e.payload });
    } else {
      // A trap (a broken invariant, an exhausted limit) leaves the instance unusable.
      if (e instanceof WebAssembly.RuntimeError) broken = e.message;
      post({ id, fault: String(e?.stack ?? e) });
    }
  } finally {
    store.reading = false;
  }
});
post({ ready: true });
