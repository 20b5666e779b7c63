// The JS API around the component: progress and cancellation, read-only opening, two caches on
// one file, and what a closed cache says.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Cache } from '../src/index.js';
import { APPLICATION_ID, Store, lockFile } from '../src/store.js';
import { PATHS, ROOT, rejection, scratch, simulate } from './support.js';

let sim;
before(async () => {
  sim = await simulate(['--scale', 'tiny', '--environments', '2'], 2);
});
after(() => sim.stop());

const dispose = Symbol.dispose ?? Symbol.for('dispose');

function place(t) {
  const dir = scratch('cache');
  t.after(() => dir.remove());
  return dir;
}

test('a sync reports progress, and stops cleanly when cancelled', async (t) => {
  const dir = place(t);
  const cache = await Cache.open(dir.db, { logLevel: 'error' });
  t.after(() => cache.close());
  const phases = [];
  const cancelled = await rejection(cache.sync(sim.urls[0], {}, {
    onProgress: (event) => {
      phases.push(event.phase.kind);
      if (event.phase.kind === 'labels') cache.cancel();
    },
  }));
  assert.equal(cancelled.kind, 'cancelled', cancelled.message);
  assert.ok(phases.includes('data-entities') && phases.includes('labels'), phases.join(','));
  const [run] = await cache.history({ base_url: sim.urls[0] }, 1);
  assert.equal(run.outcome, 'cancelled');
  assert.equal((await cache.stats({ base_url: sim.urls[0] })).environments[0].counts, null, 'nothing of the cancelled sync is visible');

  // The cache carries on: a new sync completes, and a signal stops one too.
  const report = await cache.sync(sim.urls[0]);
  assert.equal(report.plan, 'full');
  const controller = new AbortController();
  const stopped = await rejection(cache.sync(sim.urls[1], { strategy: 'full' }, { signal: controller.signal, onProgress: () => controller.abort() }));
  assert.equal(stopped.kind, 'cancelled', stopped.message);
});

test('a cache opened read-only reads, refuses to sync, and a missing one reads as empty', async (t) => {
  const dir = place(t);
  const writer = await Cache.open(dir.db, { logLevel: 'error' });
  await writer.sync(sim.urls[0]);
  await writer.close();

  const reader = await Cache.open(dir.db, { readOnly: true, logLevel: 'error' });
  t.after(() => reader.close());
  const entity = await reader.getEntity('CustomersV3', { base_url: sim.urls[0] });
  assert.equal(entity.public_entity?.name, 'CustomerV3');
  const refused = await rejection(reader.sync(sim.urls[0], { strategy: 'full' }));
  assert.equal(refused.kind, 'store', refused.message);
  assert.equal((await reader.getEntity('CustomersV3', { base_url: sim.urls[0] })).public_entity?.name, 'CustomerV3');

  const missing = join(dir.dir, 'never-written.db');
  const empty = await Cache.open(missing, { readOnly: true, logLevel: 'error' });
  assert.deepEqual(await empty.listEnvironments(), []);
  await empty.close();
  assert.equal(existsSync(missing), false);
});

test('two caches on one file do not sync the same environment at once', async (t) => {
  const dir = place(t);
  const a = await Cache.open(dir.db, { logLevel: 'error' });
  const b = await Cache.open(dir.db, { logLevel: 'error' });
  t.after(() => Promise.all([a.close(), b.close()]));
  const outcomes = await Promise.allSettled([a.sync(sim.urls[0]), b.sync(sim.urls[0])]);
  const kinds = outcomes.map((o) => (o.status === 'fulfilled' ? o.value.plan : o.reason.kind)).sort();
  assert.ok(
    JSON.stringify(kinds) === JSON.stringify(['conflict', 'full']) || JSON.stringify(kinds) === JSON.stringify(['full', 'up-to-date']),
    `one syncs, the other finds it busy or done: ${JSON.stringify(kinds)}`,
  );
  const stats = await a.stats({ base_url: sim.urls[0] });
  assert.ok(stats.environments[0].counts.data_entities > 0);
});

test('a lease is taken while another contender is trying for it, and held against the next', (t) => {
  const dir = place(t);
  const store = new Store(dir.db);
  t.after(() => store.close());
  const { tryLock } = store.imports();
  // Another process part-way through its own attempt holds SQLite's SHARED lock on the lock file;
  // that must not keep this one from taking the lease (it did while leases were EXCLUSIVE, and two
  // caches syncing one environment at once could both give up).
  tryLock('sync:probe')[dispose]();
  const contender = new Database(lockFile(dir.db, 'sync:probe'), { timeout: 0 });
  contender.exec('BEGIN');
  contender.prepare('SELECT COUNT(*) FROM sqlite_master').get();
  const lease = tryLock('sync:probe');
  assert.ok(lease, 'taken while a contender holds SHARED');
  contender.exec('ROLLBACK');
  contender.close();
  assert.equal(tryLock('sync:probe'), undefined, 'held against the next');
  lease[dispose]();
  const again = tryLock('sync:probe');
  assert.ok(again, 'taken again once released');
  again[dispose]();
});

test('another program\'s database is refused and left byte for byte; a new file is marked', async (t) => {
  const dir = place(t);
  const plain = join(dir.dir, 'inventory.db');
  const other = new Database(plain);
  other.exec("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO items (name) VALUES ('bolt')");
  other.close();
  const python = join(dir.dir, 'metadata_v2.db');
  copyFileSync(join(ROOT, 'tests', 'fixtures', 'd365fo-client-cache', 'metadata_v2.db'), python);
  const beside = (db) => ['', '-wal', '-shm', '-journal'].map((suffix) => (existsSync(db + suffix) ? readFileSync(db + suffix) : null));
  for (const [db, why] of [[plain, 'it holds tables of another program (items)'], [python, 'it holds tables of another program (action_parameters,']]) {
    const before = beside(db);
    for (const readOnly of [false, true]) {
      const e = await rejection(Cache.open(db, { readOnly, logLevel: 'error' }));
      assert.equal(e.kind, 'invalid-input', e.message);
      assert.ok(e.message.includes(`${db} is not a d365meta cache`) && e.message.includes(why) && e.message.includes('left as it is'), e.message);
    }
    assert.deepEqual(beside(db), before, `${db} was changed`);
  }
  const empty = join(dir.dir, 'empty.db');
  writeFileSync(empty, '');
  for (const db of [empty, dir.db]) {
    const cache = await Cache.open(db, { logLevel: 'error' });
    await cache.close();
    const check = new Database(db, { readonly: true });
    assert.equal(check.pragma('application_id', { simple: true }), APPLICATION_ID, db);
    check.close();
  }
});

test('a closed cache says so', async (t) => {
  const dir = place(t);
  const cache = await Cache.open(dir.db, { logLevel: 'error' });
  const pending = cache.listEnvironments();
  await cache.close();
  assert.deepEqual(await pending, [], 'a call made before close is answered');
  const e = await rejection(cache.listEnvironments());
  assert.equal(e.kind, 'invalid-input');
  assert.match(e.message, /closed/);
});

test('diff answers as the command line does, from the same cache', async (t) => {
  const dir = place(t);
  const evolved = await simulate(['--scale', 'tiny', '--environments', '2', '--newer', '1'], 2);
  t.after(() => evolved.stop());
  const cache = await Cache.open(dir.db, { logLevel: 'error' });
  await cache.sync(evolved.urls[0]);
  await cache.sync(evolved.urls[1]);
  const diff = await cache.diff(evolved.urls[0], evolved.urls[1]);
  const breaking = await cache.diff(evolved.urls[0], diff.b.modules_hash.slice(0, 10), { only_breaking: true });
  await cache.close();
  assert.ok(diff.objects.length > 0 && diff.modules.changed.length > 0, JSON.stringify(diff).slice(0, 300));
  assert.ok(breaking.objects.every((o) => o.breaking));
  const cli = JSON.parse(execFileSync(PATHS.cli, ['--cache', dir.db, '--json', 'diff', evolved.urls[0], evolved.urls[1]], { encoding: 'utf8' }));
  assert.deepEqual(diff, cli);
});
