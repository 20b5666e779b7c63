// d365meta in Node.js: the very component the Rust host embeds, transpiled by jco, over
// better-sqlite3, Node's fetch and, for the shared store of published versions, a directory.
// Answers are in the JSON shape the command line prints with --json (WIT names in snake case,
// variants as {"kind": ...}); options take the same shape, with defaults for what is left out.

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ComponentHost, D365metaError } from './host.js';
import { fromWit, toWit } from './json.js';
import { parseLocation } from './shared.js';

export { D365metaError };

/** Where `npm run build` puts the transpiled core (from `d365meta export-component`). */
export const CORE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'build', 'core');

const SYNC_DEFAULTS = { strategy: 'auto', languages: [], drop_languages: [], dry_run: false };
const READ_DEFAULTS = { base_url: null, labels: null };
const FILTER_DEFAULTS = { category: null, read_only: null, data_service_enabled: null, data_management_enabled: null, entity: null };
const GC_DEFAULTS = { keep_days: 0, vacuum: false };
const PUBLISH_DEFAULTS = { versions: [] };

const readOptions = (options = {}) => toWit({ ...READ_DEFAULTS, ...options });

function searchQuery(query) {
  const q = typeof query === 'string' ? { text: query } : query;
  return toWit({ kinds: [], limit: 20, offset: 0, ...q, filters: { ...FILTER_DEFAULTS, ...q.filters } });
}

/**
 * Bearer tokens from an Azure `TokenCredential` (as `@azure/identity` makes), one per origin, for
 * the scope `<origin>/.default`; kept until shortly before they expire (60 s, or a fifth of their
 * life when that is shorter), and asked for once however many requests wait on it.
 */
function tokensFrom(credential) {
  const held = new Map();
  return (origin) => {
    const scope = `${origin}/.default`;
    const current = held.get(scope);
    if (current && (current.pending || Date.now() < current.refreshAt)) return current.pending ?? current.token;
    const pending = (async () => {
      try {
        const token = await credential.getToken(scope);
        if (!token?.token) throw new Error(`the credential gave no token for ${scope}`);
        const life = Math.max(0, token.expiresOnTimestamp - Date.now());
        held.set(scope, { token: token.token, refreshAt: token.expiresOnTimestamp - Math.min(60_000, life / 5) });
        return token.token;
      } catch (e) {
        held.delete(scope);
        throw e;
      }
    })();
    held.set(scope, { pending });
    return pending;
  };
}

/** The `shared` option: a location (a `file://` URL, as text or a URL, or an absolute path), or `{ location, maxObjectBytes }`. */
function sharedOption(shared) {
  if (shared === undefined || shared === null) return null;
  const plain = typeof shared !== 'object' || shared instanceof URL;
  const { location, maxObjectBytes } = plain ? { location: String(shared) } : shared;
  if (maxObjectBytes !== undefined && !(Number.isSafeInteger(maxObjectBytes) && maxObjectBytes > 0)) {
    throw new D365metaError('invalid-input', `shared store: maxObjectBytes must be a positive integer, not ${maxObjectBytes}`);
  }
  try {
    return { place: parseLocation(location), maxObjectBytes };
  } catch (e) {
    throw new D365metaError(e.kind ?? 'invalid-input', e.message);
  }
}

/** A cache file and the component over it. Calls run one at a time, in the order made. */
export class Cache {
  #host;
  #shared;
  /** The schema as opening found and left it: `{ version, latest, applied }`. */
  schema;

  constructor(host, schema, shared = null) {
    this.#host = host;
    this.schema = schema;
    this.#shared = shared;
  }

  /**
   * Opens (creating if needed) the SQLite file at `path` and applies migrations.
   *
   * Options: `readOnly` (open the file for reading only; a file that does not exist reads as an
   * empty cache), `credential` (an Azure TokenCredential for environments that need sign-in) or
   * `token(origin)` (a function giving a bearer token), `http` (`maxConcurrency`, `retryBudgetMs`,
   * `maxAttempts`, `requestTimeoutMs`, `maxBodyBytes`), `busyTimeoutMs`, `onLog(level, message)`
   * and `logLevel` (`error` … `trace`, default `warn`), `componentDir` (another build of the core),
   * `shared` (the shared store `sync` pulls versions from and `publish` writes to: a directory,
   * as a `file:///…` URL or an absolute path, or `{ location, maxObjectBytes }`; objects are
   * limited to 256 MiB by default).
   */
  static async open(path, options = {}) {
    const token = options.credential ? tokensFrom(options.credential) : options.token;
    const shared = sharedOption(options.shared);
    const host = await ComponentHost.start(options.componentDir ?? CORE_DIR, 'd365meta', path, {
      ...options,
      token,
      shared: shared?.place ?? null,
      sharedMaxObjectBytes: shared?.maxObjectBytes,
    });
    try {
      const schema = fromWit(await host.call('open', []));
      return new Cache(host, schema, shared?.place.location ?? null);
    } catch (e) {
      await host.close();
      throw e;
    }
  }

  /** The shared store's location (a `file://` URL) when one is configured, else null. */
  get sharedLocation() {
    return this.#shared;
  }

  /** HTTP totals of this cache's host: `{ requests, retries, bytesReceived, refused }`. */
  get httpStats() {
    return this.#host.httpStats;
  }

  async #call(name, args, how) {
    return fromWit(await this.#host.call(name, args, how));
  }

  /** Detects and records the version the environment at `baseUrl` runs. */
  detectVersion(baseUrl, { signal } = {}) {
    return this.#call('detectVersion', ['$environment'], { environment: baseUrl, signal });
  }

  /**
   * Brings the environment's metadata into the cache. `options`: `strategy` (`auto`, `full`,
   * `incremental`, `entities-only`, `labels-only`), `languages`, `drop_languages`, `dry_run`.
   * `onProgress(event)` is called with `{ phase, done, total, bytes }`; aborting `signal` (or
   * calling `cancel()`) stops the sync cleanly.
   *
   * With a shared store configured (the `shared` option of `open`), a sync that would fetch
   * first looks there for the environment's version: when the store has it, the plan is `pull`
   * (the environment is asked only which version it runs) and `report.pulled` tells what came
   * from the store. A store that cannot be reached, or whose directory does not exist, makes the
   * sync fetch instead, with a warning.
   */
  sync(baseUrl, options = {}, { onProgress = null, signal = null } = {}) {
    const shared = this.#shared !== null;
    const args = ['$environment', shared ? '$shared' : undefined, toWit({ ...SYNC_DEFAULTS, ...options })];
    return this.#call('sync', args, { environment: baseUrl, shared: shared ? 'open' : null, onProgress, signal });
  }

  /**
   * Uploads to the shared store (the `shared` option of `open`) what it lacks of cached versions:
   * their objects and label texts in packs, then a manifest per version, written last and only if
   * absent; publishing again, or from two machines at once, is safe. The store's directory is
   * made if it does not exist. Publishing only reads the cache (a cache opened `readOnly`
   * publishes too). `options`: `versions` (modules hashes, or prefixes of 8 or more characters;
   * empty: every version with a complete snapshot of its entities). Aborting `signal` (or calling
   * `cancel()`) stops it: a version is visible in the store only once its manifest is written, and
   * publishing again is safe. Resolves to `{ location, versions: [{ modules_hash, coverage,
   * manifest, outcome, objects, labels, objects_uploaded, labels_uploaded, packs_uploaded,
   * bytes_uploaded }], duration_ms }`, `outcome` being `published` or `already-published`.
   */
  publish(options = {}, { signal = null } = {}) {
    if (this.#shared === null) {
      return Promise.reject(new D365metaError('invalid-input', 'no shared store is configured: open the cache with the `shared` option (a file:// URL or an absolute path)'));
    }
    return this.#call('publish', ['$shared', toWit({ ...PUBLISH_DEFAULTS, ...options })], { shared: 'create', reading: true, signal });
  }

  /** Stops the running call at its next step (a sync or a publish ends with a `cancelled` error). */
  cancel() {
    this.#host.cancel();
  }

  /** A data entity by name, or a public entity by name or entity set name, with its counterpart. */
  getEntity(name, options) {
    return this.#call('getEntity', [name, readOptions(options)], { reading: true });
  }

  getEnumeration(name, options) {
    return this.#call('getEnumeration', [name, readOptions(options)], { reading: true });
  }

  /** Actions named `name`, of the entity `entity` only when given. */
  getAction(name, entity = null, options) {
    return this.#call('getAction', [name, entity ?? undefined, readOptions(options)], { reading: true });
  }

  getLabel(id, options) {
    return this.#call('getLabel', [id, readOptions(options)], { reading: true });
  }

  /** `query`: text, or `{ text, kinds, filters, limit, offset }`. */
  search(query, options) {
    return this.#call('search', [searchQuery(query), readOptions(options)], { reading: true });
  }

  /** Statistics of one environment (`{ base_url }`), or of all. */
  stats(options) {
    return this.#call('getStats', [readOptions(options)], { reading: true });
  }

  /** Recorded syncs, newest first, of one environment (`{ base_url }`) or of all. */
  history(options, limit = 20) {
    return this.#call('history', [readOptions(options), limit], { reading: true });
  }

  listEnvironments() {
    return this.#call('listEnvironments', [], { reading: true });
  }

  /** A cached version with its modules: by modules hash (or a prefix of 8 or more), else the version of `read.base_url`, else the latest. */
  getVersion(modulesHash = null, options) {
    return this.#call('getVersion', [modulesHash ?? undefined, readOptions(options)], { reading: true });
  }

  /**
   * What changed in the metadata from `a` to `b`, each a base URL or a modules hash (8 or more
   * characters). `options`: `kinds`, `entity`, `only_breaking`, `label_languages`.
   */
  diff(a, b, options = {}) {
    const side = (s) => (s.includes('://') ? { kind: 'environment', value: s } : { kind: 'version', value: s });
    const all = { kinds: [], entity: null, only_breaking: false, label_languages: [], ...options };
    return this.#call('diff', [toWit(side(a)), toWit(side(b)), toWit(all)], { reading: true });
  }

  listVersions() {
    return this.#call('listVersions', [], { reading: true });
  }

  /** Compares two module lists (`{ module_id, name, version, publisher, display_name }`). */
  compareModules(a, b) {
    return this.#call('compareModules', [toWit(a), toWit(b)], { reading: true });
  }

  /** Removes what nothing references. `options`: `keep_days`, `vacuum`. */
  gc(options = {}) {
    return this.#call('gc', [toWit({ ...GC_DEFAULTS, ...options })]);
  }

  /** Removes an environment and its recorded syncs. */
  forget(baseUrl) {
    return this.#call('forget', [baseUrl]);
  }

  /** Waits for the calls already made, then closes the database. */
  close() {
    return this.#host.close();
  }
}
