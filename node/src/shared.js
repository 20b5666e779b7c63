// d365meta:cache/shared for the component: a shared store of published versions in a directory (a
// local one, or a network share mounted as one), named by a `file://` URL or an absolute path.
//
// The policy of wit/shared.wit: the component reaches only the directory the user configured;
// names are relative paths of `/`-joined segments of ASCII letters, digits and `.`, `_`, `+`, `-`,
// none empty, `.` or `..` (anything else is refused as `denied` before the file system is asked);
// objects are limited in size (`too-large`); `put-new` writes a temporary file beside its object
// and links it into place, which fails when the name exists, so that a reader never sees part of
// an object and two writers never replace each other's. The temporary files are named as the
// native host's (object_store's) are, `<object>#<digits>`, so that each host's listings skip the
// other's writes in progress.
//
// This runs in the component's worker, synchronously (see worker.js): a directory needs no
// round trip to the main thread.

import { randomInt } from 'node:crypto';
import {
  closeSync, constants, fstatSync, fsyncSync, linkSync, mkdirSync, openSync, readdirSync, readSync, statSync, unlinkSync, writeSync,
} from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The largest object read or written by default (packs are far smaller). */
export const DEFAULT_MAX_OBJECT_BYTES = 256 * 1024 * 1024;

const SEGMENT = /^[A-Za-z0-9._+-]+$/;

/**
 * A failure of the shared store, as the component receives it (`shared.error`): jco turns a thrown
 * value's `payload` into the `err` of the import's result.
 */
export class SharedError extends Error {
  constructor(tag, message) {
    super(message ?? tag);
    this.name = 'SharedError';
    this.tag = tag;
    this.payload = message === undefined ? { tag } : { tag, val: message };
  }
}

/** Why `name` is not an object's name under the policy, or null. */
export function nameRefusal(name) {
  if (typeof name !== 'string' || name === '') return 'an empty name';
  if (name.length > 1024) return `a name of ${name.length} characters`;
  for (const segment of name.split('/')) {
    if (segment === '') return `${JSON.stringify(name)} has an empty segment`;
    if (segment === '.' || segment === '..') return `${JSON.stringify(name)} has a segment ${JSON.stringify(segment)}`;
    if (!SEGMENT.test(segment)) return `${JSON.stringify(name)} holds characters other than ASCII letters, digits and . _ + -`;
  }
  return null;
}

/**
 * The directory a listing of `prefix` starts from: the prefix up to its last `/`, which must be a
 * name ('' for the root). Throws `denied` when it is not.
 */
function prefixDirectory(prefix) {
  if (typeof prefix !== 'string') throw refuse('a prefix that is not text');
  const cut = prefix.lastIndexOf('/');
  const directory = cut === -1 ? '' : prefix.slice(0, cut);
  if (directory !== '') {
    const why = nameRefusal(directory);
    if (why) throw refuse(`the prefix ${JSON.stringify(prefix)}: ${why}`);
  }
  return directory;
}

function refuse(why) {
  return new SharedError('denied', `refused by the host's policy: ${why}`);
}

/**
 * The directory a store location names: a `file://` URL (`file:///srv/d365meta`), or an absolute
 * path. Returns `{ root, location }` (location: the directory as a `file://` URL, for messages).
 * Throws an error with `kind` `invalid-input` for anything else.
 */
export function parseLocation(input) {
  const text = String(input ?? '').trim();
  const bad = (why) => Object.assign(new Error(`shared store ${JSON.stringify(text)}: ${why}`), { kind: 'invalid-input' });
  if (text === '') throw bad('no location given');
  let root;
  if (/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(text)) {
    let url;
    try {
      url = new URL(text);
    } catch {
      throw bad('a malformed URL');
    }
    if (url.protocol !== 'file:') {
      throw bad(`the Node host reaches only a directory (file:///path/to/directory), not ${url.protocol.slice(0, -1)}:// stores`);
    }
    if (url.username || url.password) throw bad('credentials in the URL are not supported');
    if (url.search || url.hash) throw bad('a directory URL takes no query or fragment');
    try {
      root = fileURLToPath(url);
    } catch (e) {
      throw bad(e.message);
    }
  } else if (isAbsolute(text)) {
    root = text;
  } else {
    throw bad('expected a file:// URL or an absolute path');
  }
  root = resolve(root);
  return { root, location: pathToFileURL(root).href };
}

/**
 * Why the store's directory cannot be used, in words naming the store, or null; with `create`, it
 * is made first when missing (a publish does; a sync never, so that a mistyped path or a share
 * that is not mounted does not become an empty store).
 */
export function rootProblem({ root, location }, { create = false } = {}) {
  try {
    if (create) mkdirSync(root, { recursive: true });
    return statSync(root).isDirectory() ? null : `shared store ${location}: not a directory`;
  } catch (e) {
    if (!create && e?.code === 'ENOENT') return `shared store ${location}: no such directory`;
    return `shared store ${location}: ${create ? 'creating the directory: ' : ''}${e?.message ?? e}`;
  }
}

/**
 * A file system failure, in the terms of `shared.error`, as the native host classifies its own:
 * access refused and what the directory cannot do are `other`, the rest (an unreachable share, a
 * full disk, an I/O error) `unavailable`.
 */
function classify(error, what) {
  const code = error?.code ?? '';
  if (code === 'EACCES' || code === 'EPERM') return new SharedError('other', `${what}: access refused (${error.message})`);
  if (['ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EROFS', 'ENAMETOOLONG'].includes(code)) return new SharedError('other', `${what}: ${error.message}`);
  return new SharedError('unavailable', `${what}: ${error?.message ?? error}`);
}

/** Makes a directory's new entry durable, where the platform can (not on Windows). */
function syncDirectory(dir) {
  let fd;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Best effort: the object is in place either way.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

const missing = (error) => ['ENOENT', 'ENOTDIR', 'EISDIR'].includes(error?.code);

/**
 * The store over one directory. Its methods are those of the WIT resource `shared-store` as jco
 * calls them (`download`, `putNew`; sizes as bigint; an absent object as `undefined`), and they
 * throw a `SharedError` (or, for a download, answer `{ tag: 'err', val }`) on failure.
 *
 * `options`: `maxObjectBytes` (default 256 MiB), `cancelled()` (whether the user asked to stop).
 */
export class SharedStore {
  #root;
  #location;
  #max;
  #cancelled;

  constructor({ root, location }, options = {}) {
    this.#root = root;
    this.#location = location;
    this.#max = options.maxObjectBytes ?? DEFAULT_MAX_OBJECT_BYTES;
    this.#cancelled = options.cancelled ?? (() => false);
  }

  /** A store for a location as the user gives it (see `parseLocation`). */
  static open(location, options) {
    return new SharedStore(parseLocation(location), options);
  }

  location() {
    return this.#location;
  }

  #path(name) {
    const why = nameRefusal(name);
    if (why) throw refuse(why);
    return join(this.#root, ...name.split('/'));
  }

  #stopIfCancelled() {
    if (this.#cancelled()) throw new SharedError('cancelled');
  }

  /** Every object whose name begins with `prefix`, `{ name, size }`, in name order. */
  list(prefix) {
    // Only the directory the prefix's complete segments name can hold its objects.
    const base = prefixDirectory(prefix);
    this.#stopIfCancelled();
    const found = [];
    const walk = (dir, namePrefix) => {
      let entries;
      try {
        entries = readdirSync(dir, { withFileTypes: true });
      } catch (e) {
        if (e?.code === 'ENOENT' || (e?.code === 'ENOTDIR' && dir !== this.#root)) return;
        throw classify(e, `listing ${dir}`);
      }
      for (const entry of entries) {
        // What no name can reach is not listed: temporary files of writes in progress (their
        // names hold a `#`), anything else put there by hand, and symbolic links.
        if (!SEGMENT.test(entry.name) || entry.name === '.' || entry.name === '..') continue;
        const name = namePrefix + entry.name;
        if (entry.isDirectory()) {
          if ((name + '/').startsWith(prefix) || prefix.startsWith(name + '/')) walk(join(dir, entry.name), `${name}/`);
        } else if (entry.isFile() && name.startsWith(prefix)) {
          let size;
          try {
            size = statSync(join(dir, entry.name)).size;
          } catch (e) {
            if (e?.code === 'ENOENT') continue;
            throw classify(e, `reading the size of ${name}`);
          }
          found.push({ name, size: BigInt(size) });
        }
      }
    };
    walk(base === '' ? this.#root : join(this.#root, ...base.split('/')), base === '' ? '' : `${base}/`);
    found.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return found;
  }

  /** One object's bytes, or `undefined` when there is none of that name. */
  get(name) {
    const path = this.#path(name);
    this.#stopIfCancelled();
    let fd;
    try {
      fd = openSync(path, 'r');
    } catch (e) {
      if (missing(e)) return undefined;
      throw classify(e, `reading ${name}`);
    }
    try {
      const stat = fstatSync(fd);
      if (!stat.isFile()) return undefined;
      const { size } = stat;
      if (size > this.#max) throw new SharedError('too-large', `${name} holds ${size} bytes, more than the limit of ${this.#max} bytes`);
      const bytes = new Uint8Array(size);
      let read = 0;
      while (read < size) {
        const n = readSync(fd, bytes, read, size - read, read);
        if (n === 0) break;
        read += n;
      }
      // The file shrank while read: objects never change once written, so this one is damaged.
      if (read < size) throw new SharedError('other', `${name} ended after ${read} of its ${size} bytes`);
      return bytes;
    } catch (e) {
      if (e instanceof SharedError) throw e;
      if (missing(e)) return undefined;
      throw classify(e, `reading ${name}`);
    } finally {
      closeSync(fd);
    }
  }

  /** The downloads of `names`, taken one at a time in the order asked (see `Downloads`). */
  download(names) {
    return new Downloads(this, names);
  }

  /** One object as the component takes it from `downloads.next`: `{ tag: 'ok', val: bytes or undefined }` or `{ tag: 'err', val: error }`. */
  answer(name) {
    try {
      return { tag: 'ok', val: this.get(name) };
    } catch (e) {
      if (e instanceof SharedError) return { tag: 'err', val: e.payload };
      return { tag: 'err', val: { tag: 'other', val: `reading ${name}: ${e?.message ?? e}` } };
    }
  }

  /**
   * Writes `body` as `name` unless an object of that name exists: `true` when written, `false`
   * when it existed (it is left as it was). The bytes go to a temporary file in the object's
   * directory, made durable, then linked to the name (which fails if it exists) and unlinked.
   */
  putNew(name, body) {
    const path = this.#path(name);
    this.#stopIfCancelled();
    const bytes = body instanceof Uint8Array ? body : Uint8Array.from(body);
    if (bytes.length > this.#max) throw new SharedError('too-large', `${name} would hold ${bytes.length} bytes, more than the limit of ${this.#max} bytes`);
    // The store's directory must exist: a share that is not mounted is not to be recreated on the local disk.
    try {
      if (!statSync(this.#root).isDirectory()) throw new SharedError('unavailable', `${this.#root} is not a directory`);
    } catch (e) {
      if (e instanceof SharedError) throw e;
      if (e?.code === 'ENOENT') throw new SharedError('unavailable', `the directory ${this.#root} does not exist (any more)`);
      throw classify(e, `reaching ${this.#root}`);
    }
    const dir = dirname(path);
    try {
      mkdirSync(dir, { recursive: true });
    } catch (e) {
      // A file where a directory of the name should be: the name cannot be written.
      if (e?.code === 'EEXIST' || e?.code === 'ENOTDIR') throw new SharedError('other', `writing ${name}: a file stands where a directory of its name would be`);
      throw classify(e, `making the directory of ${name}`);
    }
    // `<object>#<digits>`, as object_store stages its writes: out of every listing (no name holds
    // a `#`), this host's and the native host's.
    let temporary;
    let fd;
    for (let attempt = 0; fd === undefined; attempt += 1) {
      temporary = `${path}#${randomInt(1, 2 ** 47)}`;
      try {
        fd = openSync(temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
      } catch (e) {
        if (e?.code !== 'EEXIST' || attempt >= 8) throw classify(e, `writing ${name}`);
      }
    }
    try {
      try {
        let written = 0;
        while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      try {
        linkSync(temporary, path);
        syncDirectory(dir);
        return true;
      } catch (e) {
        if (e?.code === 'EEXIST') return false;
        if (['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV'].includes(e?.code) && e?.syscall === 'link') {
          throw new SharedError('other', `writing ${name}: the directory does not support hard links, which writing an object only if absent needs (${e.message})`);
        }
        throw classify(e, `writing ${name}`);
      }
    } catch (e) {
      if (e instanceof SharedError) throw e;
      throw classify(e, `writing ${name}`);
    } finally {
      try {
        unlinkSync(temporary);
      } catch {
        // Already gone, or the store became unreachable: nothing lists it either way.
      }
    }
  }
}

/**
 * The WIT resource `downloads`: objects handed over in the order asked. A directory is read when
 * the component asks for the next object; there is no network round trip to hide behind its work.
 */
export class Downloads {
  #store;
  #names;
  #next = 0;

  constructor(store, names) {
    this.#store = store;
    this.#names = [...names];
  }

  /** The next object's answer, or `undefined` once every one has been taken. */
  next() {
    if (this.#next >= this.#names.length) return undefined;
    return this.#store.answer(this.#names[this.#next++]);
  }
}
