// d365meta:cache/store for the component, over better-sqlite3: the same rules as the Rust host's
// SQLite backend (crates/sqlite). better-sqlite3 has no authorizer hook, so the refusals are made
// by looking at what a statement is before it runs; that is sound because better-sqlite3 prepares
// one statement at a time (a second one in the same string is an error).

import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { mkdirSync, existsSync, openSync, readSync, closeSync } from 'node:fs';
import { dirname } from 'node:path';

const READ_ONLY_PRAGMAS = new Map([
  ['page_count', false],
  ['page_size', false],
  ['freelist_count', false],
  ['data_version', false],
  ['quick_check', true],
  ['integrity_check', true],
]);
const TRANSACTION_WORDS = new Set(['BEGIN', 'COMMIT', 'END', 'ROLLBACK', 'SAVEPOINT', 'RELEASE']);
const dispose = Symbol.dispose ?? Symbol.for('dispose');

/** An error the component receives as `store.error` (jco turns a thrown payload into `err`). */
export class StoreError {
  constructor(code, message) {
    this.payload = { code, message };
  }
}

const denied = (what) => new StoreError('denied', `refused by the host's policy: ${what}`);

/** The first word of a statement and what follows it, comments skipped. */
function firstWord(sql) {
  let rest = sql;
  for (;;) {
    rest = rest.trimStart();
    if (rest.startsWith('--')) rest = rest.slice(rest.indexOf('\n') === -1 ? rest.length : rest.indexOf('\n'));
    else if (rest.startsWith('/*')) rest = rest.slice(rest.indexOf('*/') === -1 ? rest.length : rest.indexOf('*/') + 2);
    else break;
  }
  const match = /^([A-Za-z_]+)/.exec(rest);
  return match ? { word: match[1].toUpperCase(), after: rest.slice(match[1].length) } : { word: '', after: rest };
}

/** Why a statement is refused, or null. */
function refusal(sql) {
  const { word, after } = firstWord(sql);
  if (word === 'ATTACH' || word === 'DETACH') return `${word} is not allowed`;
  if (TRANSACTION_WORDS.has(word)) return 'transaction statements are not allowed (the component uses begin)';
  if (word === 'PRAGMA') {
    const match = /^\s*(?:main\s*\.\s*)?([A-Za-z_]+)\s*(.*)$/s.exec(after);
    const name = match?.[1]?.toLowerCase();
    const rest = (match?.[2] ?? '').trim().replace(/;$/, '').trim();
    const allowsArgument = READ_ONLY_PRAGMAS.get(name);
    if (allowsArgument === undefined) return `PRAGMA ${name} is not allowed`;
    if (rest.startsWith('=')) return `PRAGMA ${name} may not be set`;
    if (rest !== '' && !allowsArgument) return `PRAGMA ${name} takes no argument`;
  }
  if (/\bload_extension\s*\(/i.test(sql)) return 'load_extension is not allowed';
  return null;
}

function classify(error) {
  const code = error?.code ?? '';
  const message = String(error?.message ?? error);
  if (error instanceof RangeError || /parameter/i.test(message)) return new StoreError('misuse', message);
  if (code.startsWith('SQLITE_CONSTRAINT')) return new StoreError('constraint', message);
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return new StoreError('busy', message);
  if (code.startsWith('SQLITE_READONLY')) return new StoreError('read-only', message);
  if (code === 'SQLITE_CORRUPT' || code === 'SQLITE_NOTADB') return new StoreError('corrupt', message);
  if (code.startsWith('SQLITE_AUTH')) return new StoreError('denied', `refused by the host's policy: ${message}`);
  if (/syntax error|no such/.test(message)) return new StoreError('invalid', message);
  return new StoreError('other', message);
}

const toSql = (v) => {
  switch (v.tag) {
    case 'null': return null;
    case 'integer': return v.val;
    case 'real': return v.val;
    case 'text': return v.val;
    case 'blob': return Buffer.from(v.val);
    default: throw new StoreError('misuse', `unknown value ${v.tag}`);
  }
};
const fromSql = (v) => {
  if (v === null || v === undefined) return { tag: 'null' };
  if (typeof v === 'bigint') return { tag: 'integer', val: v };
  if (typeof v === 'number') return Number.isInteger(v) ? { tag: 'integer', val: BigInt(v) } : { tag: 'real', val: v };
  if (typeof v === 'string') return { tag: 'text', val: v };
  return { tag: 'blob', val: new Uint8Array(v) };
};

/**
 * How a cache file is recognised (wit/store.wit, and the Rust host's `CACHE_CLAIM`): marked with
 * this `application_id` ("D365" in ASCII). Caches written before files were marked are recognised
 * by two tables of the schema's first migration; any other SQLite file is refused unchanged.
 */
export const APPLICATION_ID = 0x44333635;
const UNMARKED_TABLES = ['schema_migrations', 'environment_versions'];

/** A cache file that is another program's database: the user's mistake, named as such. */
export class ForeignFileError extends Error {
  constructor(path, why) {
    super(`${path} is not a d365meta cache: ${why}; it was left as it is (choose another file for the cache)`);
    this.kind = 'invalid-input';
  }
}

/** The `application_id` in the file's header, or null for a missing file or one too short to have one. */
function headerApplicationId(path) {
  let fd;
  try {
    fd = openSync(path, 'r');
    const header = Buffer.alloc(100);
    return readSync(fd, header, 0, 100, 0) === 100 ? header.readInt32BE(68) : null;
  } catch {
    return null;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Looks at the file at `path` without changing it: 'ours', 'unmarked' (empty, or a cache written
 * before marking), or a ForeignFileError thrown. An unmarked file is opened on a connection of its
 * own, closed before this returns, so that SQLite removes the `-wal` and `-shm` files it made
 * beside a file in WAL mode (a read-only connection would leave them beside another program's file).
 */
function inspect(path) {
  const headerId = headerApplicationId(path);
  if (headerId === null) return 'unmarked';
  if (headerId === APPLICATION_ID) return 'ours';
  const elsewhere = (id) => new ForeignFileError(path, `its header names another program (application id 0x${(id >>> 0).toString(16).padStart(8, '0')})`);
  if (headerId !== 0) throw elsewhere(headerId);
  let db;
  try {
    db = new Database(path, { fileMustExist: true });
  } catch {
    db = new Database(path, { readonly: true, fileMustExist: true });
  }
  try {
    const id = db.pragma('application_id', { simple: true });
    if (id === APPLICATION_ID) return 'ours';
    if (id !== 0) throw elsewhere(id);
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name").pluck().all();
    if (tables.length === 0 || UNMARKED_TABLES.every((t) => tables.includes(t))) return 'unmarked';
    const shown = tables.slice(0, 5).join(', ') + (tables.length > 5 ? ` and ${tables.length - 5} more` : '');
    throw new ForeignFileError(path, `it holds tables of another program (${shown})`);
  } finally {
    db.close();
  }
}

/** One connection with the host's settings and refusals. */
export class Connection {
  #db;
  #statements = new Map();
  #open = null; // the id of the open transaction
  #next = 1;

  constructor(path, { readOnly = false, busyTimeoutMs = 30_000 } = {}) {
    this.path = path;
    this.readOnly = readOnly;
    const found = path === ':memory:' ? 'ours' : inspect(path);
    this.#db = new Database(path, { readonly: readOnly, timeout: busyTimeoutMs, fileMustExist: readOnly });
    if (found === 'unmarked' && !readOnly) this.#db.pragma(`application_id = ${APPLICATION_ID}`);
    if (!readOnly) this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('synchronous = NORMAL');
    this.#db.pragma('foreign_keys = ON');
    this.#db.defaultSafeIntegers(true);
  }

  close() {
    this.#db.close();
  }

  #prepare(sql) {
    const why = refusal(sql);
    if (why) throw denied(why);
    let statement = this.#statements.get(sql);
    if (!statement) {
      try {
        statement = this.#db.prepare(sql);
      } catch (e) {
        throw classify(e);
      }
      if (statement.reader) statement.raw(true);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  /**
   * Numbered parameters (`?1`) bind by name in better-sqlite3; plain `?` by position. A number a
   * statement skips (it uses `?1` and `?3`, not `?2`) is a parameter without a name to SQLite,
   * which better-sqlite3 fills from the positional arguments: it gets its value there, in order.
   */
  static #bind(sql, params) {
    const values = params.map(toSql);
    if (!/\?\d/.test(sql)) return [values];
    const used = new Set(Array.from(sql.matchAll(/\?(\d+)/g), (m) => Number(m[1])));
    const named = {};
    const skipped = [];
    values.forEach((v, i) => {
      if (used.has(i + 1)) named[String(i + 1)] = v;
      else skipped.push(v);
    });
    return [...skipped, named];
  }

  execute(sql, params) {
    if (/^\s*VACUUM\s*;?\s*$/i.test(sql) && params.length === 0) return this.#vacuum();
    const statement = this.#prepare(sql);
    try {
      const args = Connection.#bind(sql, params);
      if (statement.reader) {
        const rows = statement.all(...args).map((row) => row.map(fromSql));
        const columns = statement.columns().map((c) => c.name);
        const changes = statement.readonly ? 0n : BigInt(this.#db.prepare('SELECT changes()').pluck().safeIntegers(true).get());
        return { columns, rows, changes };
      }
      const info = statement.run(...args);
      return { columns: [], rows: [], changes: statement.readonly ? 0n : BigInt(info.changes) };
    } catch (e) {
      throw e instanceof StoreError ? e : classify(e);
    }
  }

  executeMany(sql, rows) {
    const statement = this.#prepare(sql);
    let total = 0n;
    rows.forEach((params, i) => {
      try {
        total += BigInt(statement.run(...Connection.#bind(sql, params)).changes);
      } catch (e) {
        const err = e instanceof StoreError ? e : classify(e);
        err.payload.message = `row ${i}: ${err.payload.message}`;
        throw err;
      }
    });
    return total;
  }

  #vacuum() {
    if (this.#open !== null) throw new StoreError('misuse', 'VACUUM cannot run inside a transaction');
    try {
      this.#db.exec('VACUUM');
    } catch (e) {
      throw classify(e);
    }
    return { columns: [], rows: [], changes: 0n };
  }

  begin(mode) {
    if (this.#open !== null) throw new StoreError('misuse', 'a transaction is already open');
    try {
      this.#db.exec(mode === 'immediate' ? 'BEGIN IMMEDIATE' : 'BEGIN DEFERRED');
    } catch (e) {
      throw classify(e);
    }
    this.#open = this.#next++;
    return this.#open;
  }

  commit(id) {
    if (this.#open !== id) throw new StoreError('misuse', 'this transaction has already ended');
    try {
      this.#db.exec('COMMIT');
    } catch (e) {
      // A failed COMMIT (busy) leaves the transaction open; dropping the handle rolls it back.
      throw classify(e);
    }
    this.#open = null;
  }

  end(id) {
    if (this.#open === id) {
      try {
        this.#db.exec('ROLLBACK');
      } catch {
        // Nothing to roll back any more.
      }
      this.#open = null;
    }
  }
}

const inProcessLocks = new Set();

/**
 * A held advisory lock. Locks are SQLite databases of their own beside the cache file, held with
 * an immediate transaction (SQLite's RESERVED lock): SQLite's file locks are the operating system's,
 * so they are released when the process ends however it ends, and two connections of one process
 * exclude each other. RESERVED, not EXCLUSIVE: taking EXCLUSIVE waits for every SHARED lock to go,
 * and each contender holds SHARED while it tries, so two that try at once could both fail and leave
 * the lock untaken; only one can ever hold RESERVED, and taking it ignores SHARED.
 */
class Lock {
  #db;
  #key;
  constructor(db, key) {
    this.#db = db;
    this.#key = key;
  }
  release() {
    if (this.#db) {
      try {
        this.#db.exec('ROLLBACK');
      } finally {
        this.#db.close();
        this.#db = null;
      }
    }
    if (this.#key) {
      inProcessLocks.delete(this.#key);
      this.#key = null;
    }
  }
}

/** The file that holds the lock `name` of the cache at `databasePath`. */
export function lockFile(databasePath, name) {
  return `${databasePath}.node-locks/${createHash('sha256').update(name).digest('hex').slice(0, 24)}.lock`;
}

function tryLock(databasePath, name) {
  if (databasePath === ':memory:') {
    const key = `memory:${name}`;
    if (inProcessLocks.has(key)) return null;
    inProcessLocks.add(key);
    return new Lock(null, key);
  }
  const file = lockFile(databasePath, name);
  mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file, { timeout: 0 });
  try {
    db.exec('BEGIN IMMEDIATE');
    return new Lock(db, null);
  } catch (e) {
    db.close();
    if (String(e.code).startsWith('SQLITE_BUSY')) return null;
    throw classify(e);
  }
}

/**
 * The store import: a read-write connection, and a read-only one that serves while `reading` is
 * set (the host sets it around every read export, so a read cannot write).
 */
export class Store {
  reading = false;
  #reader = null;

  /** `readOnly` opens the file for reading only (it must exist): every write fails with `read-only`. */
  constructor(path, { readOnly = false, ...options } = {}) {
    this.path = path;
    this.options = options;
    if (path !== ':memory:' && !readOnly) mkdirSync(dirname(path), { recursive: true });
    this.writer = new Connection(path, { ...options, readOnly });
  }

  /** Reads get a connection of their own that cannot write, opened when first needed. */
  get #connection() {
    if (!this.reading || this.path === ':memory:' || this.writer.readOnly || !existsSync(this.path)) return this.writer;
    this.#reader ??= new Connection(this.path, { ...this.options, readOnly: true });
    return this.#reader;
  }

  close() {
    // The read-only connection closes first: the last connection to close checkpoints the log.
    this.#reader?.close();
    this.writer.close();
  }

  /** The WIT `store` interface, as jco's bindings call it. */
  imports() {
    const store = this;
    class Transaction {
      #connection;
      #id;
      constructor(connection, id) {
        this.#connection = connection;
        this.#id = id;
      }
      commit() {
        this.#connection.commit(this.#id);
      }
      [dispose]() {
        this.#connection.end(this.#id);
      }
    }
    class Lease {
      #lock;
      constructor(lock) {
        this.#lock = lock;
      }
      [dispose]() {
        this.#lock.release();
      }
    }
    return {
      execute: (sql, params) => store.#connection.execute(sql, params),
      executeMany: (sql, rows) => store.#connection.executeMany(sql, rows),
      begin: (mode) => {
        const connection = store.#connection;
        return new Transaction(connection, connection.begin(mode));
      },
      tryLock: (name) => {
        const lock = tryLock(store.path, name);
        return lock ? new Lease(lock) : undefined;
      },
      Transaction,
      Lease,
    };
  }
}
