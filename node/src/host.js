// Runs one transpiled component in a worker and answers its imports: the store and the shared
// store in the worker, HTTP here on the main thread (through the bridge), logs and progress as
// messages. Calls are made one at a time, in the order asked, so that progress and cancellation
// belong to the call running.

import { Worker, MessageChannel } from 'node:worker_threads';
import { existsSync } from 'node:fs';
import { fromWit } from './json.js';
import { Network } from './http.js';
import { serve, sharedFlags, SLOT } from './bridge.js';

/** An error the component answered with (`types.error`): `kind` is its WIT case name. */
export class D365metaError extends Error {
  constructor(kind, message) {
    super(message);
    this.name = 'D365metaError';
    this.kind = kind;
  }
}

/** Log levels by rank, for the `logLevel` option. */
const LEVELS = ['error', 'warn', 'info', 'debug', 'trace'];

export class ComponentHost {
  #worker;
  #network;
  #flags = sharedFlags();
  #pending = new Map();
  #next = 1;
  #queue = Promise.resolve();
  #onProgress = null;
  #abort = null;
  #closed = false;
  #onLog;

  /**
   * Starts the component found in `componentDir` (jco's output, `moduleName`.js) over the SQLite
   * file `database`. `options`: `readOnly`, `busyTimeoutMs`, `http` (see http.js DEFAULTS),
   * `token(origin)` for bearer tokens, `onLog(level, message)`, `logLevel` (default `warn`),
   * `shared` (the shared store's directory, as shared.js `parseLocation` gives it) and
   * `sharedMaxObjectBytes`.
   */
  static async start(componentDir, moduleName, database, options = {}) {
    const host = new ComponentHost(options);
    await host.#spawn(componentDir, moduleName, database, options);
    return host;
  }

  constructor(options) {
    const threshold = LEVELS.indexOf(options.logLevel ?? 'warn');
    const sink = options.onLog ?? ((level, message) => console.error(`d365meta ${level}: ${message}`));
    this.#onLog = (level, message) => {
      if (LEVELS.indexOf(level) <= threshold) sink(level, message);
    };
    this.#network = new Network({ ...options.http, token: options.token });
  }

  async #spawn(componentDir, moduleName, database, options) {
    const { port1, port2 } = new MessageChannel();
    serve(port1, this.#flags, {
      send: (env, request) => this.#network.send(env, request),
      start: (env, requests) => this.#network.start(env, requests),
      next: (batch, max, lingerMs) => this.#network.next(batch, max, lingerMs),
      drop: (batch) => this.#network.drop(batch),
    });
    this.#bridge = port1;
    // Reading a cache that does not exist yet reads an empty one, and creates no file.
    const readOnlyMissing = options.readOnly && database !== ':memory:' && !existsSync(database);
    const workerData = {
      componentDir,
      moduleName,
      database: readOnlyMissing ? ':memory:' : database,
      storeOptions: { readOnly: Boolean(options.readOnly) && !readOnlyMissing, busyTimeoutMs: options.busyTimeoutMs ?? 30_000 },
      shared: options.shared ? { place: options.shared, maxObjectBytes: options.sharedMaxObjectBytes } : null,
      flags: this.#flags,
      bridge: port2,
    };
    const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData, transferList: [port2], stdout: true, stderr: true });
    this.#worker = worker;
    // What the component writes to its standard output and error becomes log lines, as in the Rust host.
    for (const [stream, level] of [[worker.stdout, 'info'], [worker.stderr, 'warn']]) {
      let partial = '';
      stream.setEncoding('utf8');
      stream.on('data', (text) => {
        const lines = (partial + text).split('\n');
        partial = lines.pop();
        for (const line of lines) this.#onLog(level, `component output: ${line}`);
      });
    }
    await new Promise((resolve, reject) => {
      worker.on('message', (message) => {
        if (message.ready) resolve();
        else if (message.startFailed) reject(new D365metaError(message.startFailed.kind, message.startFailed.message));
        else if (message.event === 'log') this.#onLog(message.level, message.message);
        else if (message.event === 'progress') this.#onProgress?.(fromWit(message.value));
        else this.#settle(message);
      });
      worker.on('error', (e) => {
        reject(e);
        this.#failAll(e);
      });
      worker.on('exit', (code) => {
        reject(new Error(`the component's worker ended (exit code ${code}) before it was ready`));
        this.#failAll(new Error(`the component's worker ended (exit code ${code})`));
      });
    });
  }

  #bridge;

  #settle({ id, ok, err, fault }) {
    const pending = this.#pending.get(id);
    if (!pending) return;
    this.#pending.delete(id);
    if (err) pending.reject(new D365metaError(err.kind, err.message));
    else if (fault) pending.reject(new D365metaError('internal', `the component failed: ${fault}`));
    else pending.resolve(ok);
  }

  #failAll(error) {
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
  }

  /** HTTP totals of this host: requests sent, retries, bytes received, requests refused. */
  get httpStats() {
    return { ...this.#network.stats };
  }

  /**
   * Calls the export `name` with `args` (component values). `environment`: a base URL to lend the
   * component for this call, passed in place of the argument `$environment`. `shared`: `open`
   * or `create` to lend the shared store for this call in place of the argument `$shared` (see
   * worker.js: `open` lends none, with a warning in the report, when its directory is missing;
   * `create` makes it). `reading`: the call only reads (it gets a connection that cannot write).
   */
  call(name, args, { reading = false, environment = null, shared = null, onProgress = null, signal = null } = {}) {
    if (this.#closed) return Promise.reject(new D365metaError('invalid-input', 'the cache is closed'));
    const run = async () => {
      let lent = null;
      if (environment !== null) {
        try {
          lent = this.#network.environment(environment);
        } catch (e) {
          throw new D365metaError(e.kind ?? 'invalid-input', e.message);
        }
      }
      const abort = new AbortController();
      this.#abort = abort;
      this.#network.cancelSignal = abort.signal;
      Atomics.store(this.#flags, SLOT.cancelled, 0);
      const cancel = () => this.cancel();
      if (signal?.aborted) cancel();
      signal?.addEventListener('abort', cancel, { once: true });
      this.#onProgress = onProgress;
      try {
        const id = this.#next++;
        const sent = args.map((a) => {
          if (lent && a === '$environment') return { $environment: { id: lent.id, baseUrl: lent.baseUrl } };
          if (shared && a === '$shared') return { $shared: shared };
          return a;
        });
        return await new Promise((resolve, reject) => {
          this.#pending.set(id, { resolve, reject });
          this.#worker.postMessage({ id, name, args: sent, reading });
        });
      } finally {
        signal?.removeEventListener('abort', cancel);
        this.#onProgress = null;
        this.#abort = null;
        if (lent) this.#network.forget(lent.id);
      }
    };
    const result = this.#queue.then(run, run);
    this.#queue = result.catch(() => {});
    return result;
  }

  /** Asks the running call to stop: the component stops cleanly at its next step. */
  cancel() {
    Atomics.store(this.#flags, SLOT.cancelled, 1);
    this.#abort?.abort();
  }

  /** Waits for the calls already asked, then ends the worker and closes the database. */
  async close() {
    if (this.#closed) return;
    this.#closed = true;
    await this.#queue;
    const exited = new Promise((resolve) => this.#worker.once('exit', resolve));
    this.#worker.postMessage({ close: true });
    const timer = setTimeout(() => this.#worker.terminate(), 5_000);
    await exited;
    clearTimeout(timer);
    this.#bridge.close();
  }
}
