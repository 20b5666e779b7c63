// The shared store in the Node host: a directory the component publishes versions to and pulls
// them from (shared.js), against the simulator over loopback and real SQLite files; and the
// store's policy, exercised directly.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Cache } from '../src/index.js';
import { SharedError, SharedStore, nameRefusal, parseLocation } from '../src/shared.js';
import { PATHS, proxy, rejection, scratch, simulate } from './support.js';

/** Every answer of a download, taken as the component takes them. */
function takeAll(store, names) {
  const downloads = store.download(names);
  const answers = [];
  for (let a = downloads.next(); a !== undefined; a = downloads.next()) answers.push(a);
  return answers;
}

/** The command line (the native host), answering JSON; run without blocking, as the proxy serves it. */
async function cli(...args) {
  const { stdout } = await promisify(execFile)(PATHS.cli, ['--json', ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return JSON.parse(stdout);
}

let sim;
let front;
before(async () => {
  sim = await simulate(['--scale', 'tiny'], 1);
  // Every request the simulator sees goes through here, and is counted.
  front = await proxy(sim.urls[0]);
});
after(async () => {
  await front.close();
  await sim.stop();
});

function place(t) {
  const dir = scratch('shared');
  t.after(() => dir.remove());
  return dir;
}

/** Every file under `dir`, by its path relative to it. */
function filesUnder(dir, prefix = '') {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`]));
}

test('a version published to a directory is pulled by another cache with one request', async (t) => {
  const dir = place(t);
  // The store's directory does not exist until the first publish makes it.
  const root = join(dir.dir, 'store');
  const location = pathToFileURL(root).href;
  const read = { base_url: front.url };
  const labels = { ...read, labels: { language: 'en-US', fallback: [] } };

  const a = await Cache.open(join(dir.dir, 'a.db'), { shared: location, logLevel: 'error' });
  t.after(() => a.close());
  assert.equal(a.sharedLocation, location);

  await t.test('publish uploads the version once', async () => {
    const synced = await a.sync(front.url, { strategy: 'full' });
    assert.equal(synced.plan, 'full');
    assert.equal(synced.pulled, null, 'a full sync pulls nothing');
    assert.ok(synced.warnings.includes(`shared store ${location}: no such directory; fetched from the environment instead`), synced.warnings.join('\n'));
    assert.equal(existsSync(root), false, 'a sync does not make the store');

    const stop = new AbortController();
    stop.abort();
    const cancelled = await rejection(a.publish({}, { signal: stop.signal }));
    assert.equal(cancelled.kind, 'cancelled', cancelled.message);
    assert.deepEqual(filesUnder(root), [], 'a cancelled publish writes nothing');

    const first = await a.publish();
    assert.equal(first.location, location);
    assert.equal(first.versions.length, 1, JSON.stringify(first));
    const [version] = first.versions;
    assert.equal(version.modules_hash, synced.modules_hash);
    assert.equal(version.outcome, 'published');
    assert.ok(version.objects_uploaded > 0 && version.labels_uploaded > 0, JSON.stringify(version));
    assert.equal(version.objects_uploaded, version.objects);
    assert.equal(version.labels_uploaded, version.labels);
    assert.ok(version.packs_uploaded > 0 && version.bytes_uploaded > 0, JSON.stringify(version));
    const files = filesUnder(root);
    assert.ok(files.includes(version.manifest), `${version.manifest} among ${files.join(', ')}`);
    assert.ok(files.every((f) => f === version.manifest || /^packs\/[0-9a-f]{64}\.pack$/.test(f)), `only packs and the manifest, no temporary files: ${files.join(', ')}`);

    const again = await a.publish({ versions: [synced.modules_hash.slice(0, 12)] });
    assert.equal(again.versions.length, 1, JSON.stringify(again));
    assert.equal(again.versions[0].outcome, 'already-published');
    assert.equal(again.versions[0].manifest, version.manifest);
    for (const field of ['objects_uploaded', 'labels_uploaded', 'packs_uploaded', 'bytes_uploaded']) assert.equal(again.versions[0][field], 0, field);
    assert.deepEqual(filesUnder(root), files, 'publishing again writes nothing');

    // Publishing only reads the cache: a cache opened read-only publishes too.
    const reader = await Cache.open(join(dir.dir, 'a.db'), { readOnly: true, shared: location, logLevel: 'error' });
    const fromReader = await reader.publish();
    await reader.close();
    assert.equal(fromReader.versions[0].outcome, 'already-published');
  });

  await t.test('a fresh cache pulls it, asking the environment only its modules', async () => {
    // The same directory, named by its path this time.
    const b = await Cache.open(join(dir.dir, 'b.db'), { shared: root, logLevel: 'error' });
    t.after(() => b.close());
    const seen = front.seen.length;
    const report = await b.sync(front.url);
    const requests = front.seen.slice(seen);
    assert.equal(report.plan, 'pull', JSON.stringify(report));
    assert.equal(requests.length, 1, requests.map((r) => r.path).join(', '));
    assert.match(requests[0].path, /GetInstalledModules/);
    assert.equal(report.requests, 1);
    assert.equal(b.httpStats.requests, 1);
    assert.ok(report.pulled, 'the report says what was pulled');
    assert.equal(report.pulled.location, location);
    assert.match(report.pulled.manifest, /^versions\/[0-9a-f]{64}\//);
    assert.ok(report.pulled.packs > 0 && report.pulled.bytes > 0 && report.pulled.objects > 0 && report.pulled.labels > 0, JSON.stringify(report.pulled));

    // The pulled cache answers as the one that fetched.
    for (const name of ['CustomersV3', 'CustomerGroup', 'CustomerAttachmentsEntity']) {
      const answer = await b.getEntity(name, labels);
      assert.ok(answer.data_entity || answer.public_entity, name);
      assert.deepEqual(answer, await a.getEntity(name, labels), name);
    }
    assert.deepEqual(await b.getEnumeration('DirPersonMaritalStatus', labels), await a.getEnumeration('DirPersonMaritalStatus', labels));
    assert.deepEqual(await b.getLabel('@AccountsReceivable:CustomersV3', read), await a.getLabel('@AccountsReceivable:CustomersV3', read));
    for (const query of ['customer', { text: 'status', kinds: ['enumeration'] }, { text: 'group', limit: 50 }]) {
      const answer = await b.search(query, labels);
      assert.ok(answer.total > 0, JSON.stringify(query));
      assert.deepEqual(answer, await a.search(query, labels), JSON.stringify(query));
    }
    const [statsA, statsB] = [(await a.stats(read)).environments[0], (await b.stats(read)).environments[0]];
    assert.deepEqual(statsB.counts, statsA.counts);
    assert.deepEqual(statsB.label_coverage, statsA.label_coverage);
    assert.equal(statsB.last_sync.plan, 'pull');

    // Nothing left to pull: the next sync finds the cache up to date.
    const next = await b.sync(front.url);
    assert.equal(next.plan, 'up-to-date');
    assert.equal(next.pulled, null);
  });
});

test('each host pulls what the other published', async (t) => {
  const dir = place(t);
  const fromNode = join(dir.dir, 'from-node');
  const fromNative = join(dir.dir, 'from-native');
  const read = { base_url: front.url, labels: { language: 'en-US', fallback: [] } };

  const node = await Cache.open(join(dir.dir, 'node.db'), { shared: fromNode, logLevel: 'error' });
  t.after(() => node.close());
  await node.sync(front.url);
  assert.equal((await node.publish()).versions[0].outcome, 'published');

  // The native host pulls the version the Node host published, and publishes it again itself.
  const nativeDb = join(dir.dir, 'native.db');
  const pulled = await cli('--cache', nativeDb, '--shared', pathToFileURL(fromNode).href, 'sync', front.url);
  assert.equal(pulled.plan, 'pull', JSON.stringify(pulled));
  assert.equal(pulled.requests, 1);
  const published = await cli('--cache', nativeDb, '--shared', pathToFileURL(fromNative).href, 'publish');
  assert.equal(published.versions[0].outcome, 'published', JSON.stringify(published));

  // The Node host pulls that, and answers as the cache that fetched.
  const again = await Cache.open(join(dir.dir, 'again.db'), { shared: pathToFileURL(fromNative).href, logLevel: 'error' });
  t.after(() => again.close());
  const report = await again.sync(front.url);
  assert.equal(report.plan, 'pull', JSON.stringify(report));
  assert.equal(report.pulled.manifest, published.versions[0].manifest);
  for (const name of ['CustomersV3', 'CustomerAttachmentsEntity']) assert.deepEqual(await again.getEntity(name, read), await node.getEntity(name, read), name);
  assert.deepEqual(await again.search('customer', read), await node.search('customer', read));
});

test('a sync without a shared store fetches, and publish says a store is needed', async (t) => {
  const dir = place(t);
  const cache = await Cache.open(dir.db, { logLevel: 'error' });
  t.after(() => cache.close());
  assert.equal(cache.sharedLocation, null);
  const report = await cache.sync(front.url);
  assert.equal(report.plan, 'full');
  assert.equal(report.pulled, null);
  const e = await rejection(cache.publish());
  assert.equal(e.kind, 'invalid-input');
  assert.match(e.message, /shared/);
});

test('an empty or missing store makes a sync fetch from the environment', async (t) => {
  const dir = place(t);
  const empty = join(dir.dir, 'empty');
  mkdirSync(empty);
  const logged = [];
  const cache = await Cache.open(join(dir.dir, 'e.db'), { shared: empty, logLevel: 'error' });
  const report = await cache.sync(front.url);
  await cache.close();
  assert.equal(report.plan, 'full');
  assert.equal(report.pulled, null);
  assert.ok(!report.warnings.some((w) => w.includes('shared store')), report.warnings.join('\n'));

  const missing = join(dir.dir, 'never-made');
  const other = await Cache.open(join(dir.dir, 'm.db'), { shared: missing, onLog: (level, message) => logged.push([level, message]) });
  const fetched = await other.sync(front.url);
  await other.close();
  assert.equal(fetched.plan, 'full');
  assert.equal(fetched.pulled, null);
  const why = `shared store ${pathToFileURL(missing).href}: no such directory`;
  assert.ok(fetched.warnings.includes(`${why}; fetched from the environment instead`), fetched.warnings.join('\n'));
  assert.ok(logged.some(([level, message]) => level === 'warn' && message === `${why}; syncing from the environment alone`), JSON.stringify(logged));
  assert.equal(existsSync(missing), false, 'a sync does not make the store');
});

test('publish makes the store\'s directory, and fails when it cannot', async (t) => {
  const dir = place(t);
  writeFileSync(join(dir.dir, 'a-file'), '');
  const cache = await Cache.open(dir.db, { shared: join(dir.dir, 'a-file', 'store'), logLevel: 'error' });
  t.after(() => cache.close());
  const e = await rejection(cache.publish());
  assert.equal(e.kind, 'invalid-input', e.message);
  assert.match(e.message, /creating the directory/);
  // Nothing cached yet: the directory is made, and nothing is published.
  const fresh = await Cache.open(join(dir.dir, 'fresh.db'), { shared: join(dir.dir, 'deep', 'store'), logLevel: 'error' });
  const report = await fresh.publish();
  await fresh.close();
  assert.deepEqual(report.versions, []);
  assert.ok(existsSync(join(dir.dir, 'deep', 'store')));
});

test('a store location is a file:// URL or an absolute path', async (t) => {
  const dir = place(t);
  assert.deepEqual(parseLocation(`file://${dir.dir}/`), { root: dir.dir, location: pathToFileURL(dir.dir).href });
  assert.deepEqual(parseLocation(dir.dir), { root: dir.dir, location: pathToFileURL(dir.dir).href });
  assert.equal(parseLocation('file:///srv/a%20share').root, '/srv/a share');
  for (const bad of ['', 'relative/dir', 'https://account.blob.core.windows.net/container', 's3://bucket/prefix', 'file:///srv/x?sas=1', 'file://user:pw@/srv/x']) {
    assert.throws(() => parseLocation(bad), (e) => e.kind === 'invalid-input', JSON.stringify(bad));
  }
  const byUrl = await Cache.open(dir.db, { shared: pathToFileURL(dir.dir), logLevel: 'error' });
  assert.equal(byUrl.sharedLocation, pathToFileURL(dir.dir).href);
  await byUrl.close();
  const e = await rejection(Cache.open(join(dir.dir, 'refused.db'), { shared: 'https://account.blob.core.windows.net/container' }));
  assert.equal(e.kind, 'invalid-input');
  assert.match(e.message, /directory/);
  assert.equal(existsSync(join(dir.dir, 'refused.db')), false, 'a refused option opens nothing');
});

test('the store refuses names outside its policy, `..` first among them', (t) => {
  const dir = place(t);
  const root = join(dir.dir, 'store');
  mkdirSync(root);
  writeFileSync(join(dir.dir, 'secret'), 'outside the store');
  const store = SharedStore.open(root);
  const denied = (f) => (e) => e instanceof SharedError && e.payload.tag === 'denied' && /refused by the host's policy/.test(e.payload.val);

  for (const name of ['..', '../secret', 'packs/../../secret', 'a/./b', '.', '', '/etc/passwd', 'a//b', 'a/', 'a\\b', '..\\secret', 'a b', 'naïve', 'a:b', 'a~b', 'C:secret', 'x%2F..']) {
    assert.ok(nameRefusal(name), JSON.stringify(name));
    assert.throws(() => store.get(name), denied(), `get ${JSON.stringify(name)}`);
    assert.throws(() => store.putNew(name, new Uint8Array([1])), denied(), `put-new ${JSON.stringify(name)}`);
  }
  for (const prefix of ['../', '../secret', 'a//', 'x/../y/', 'a b/c']) assert.throws(() => store.list(prefix), denied(), `list ${JSON.stringify(prefix)}`);
  // A prefix that no name begins with lists nothing.
  for (const prefix of ['a b', '/', '..']) assert.deepEqual(store.list(prefix), [], `list ${JSON.stringify(prefix)}`);
  const many = takeAll(store, ['../secret', 'nothing-here']);
  assert.equal(many[0].tag, 'err');
  assert.equal(many[0].val.tag, 'denied');
  assert.deepEqual(many[1], { tag: 'ok', val: undefined });
  assert.deepEqual(filesUnder(root), [], 'nothing was written');
  assert.equal(readFileSync(join(dir.dir, 'secret'), 'utf8'), 'outside the store');

  for (const name of ['packs/0a.pack', 'versions/ab12/entities+en-US.json', 'a_b-c.d', '.hidden', '...', 'A/B/C/D']) assert.equal(nameRefusal(name), null, name);
});

test('objects are written only if absent, listed in name order, and read back', (t) => {
  const dir = place(t);
  const root = join(dir.dir, 'store');
  const store = SharedStore.open(pathToFileURL(root).href, { maxObjectBytes: 64 });
  const bytes = (text) => new TextEncoder().encode(text);

  // Reading a store that does not exist yet reads an empty one; writing needs its directory.
  assert.deepEqual(store.list(''), []);
  assert.equal(store.get('versions/x/entities.json'), undefined);
  assert.throws(() => store.putNew('packs/a.pack', bytes('a')), (e) => e.payload.tag === 'unavailable' && /does not exist/.test(e.payload.val));
  mkdirSync(root);

  assert.equal(store.putNew('versions/h2/entities+en-US.json', bytes('second')), true);
  assert.equal(store.putNew('packs/b.pack', bytes('bb')), true);
  assert.equal(store.putNew('packs/a.pack', bytes('a')), true);
  assert.equal(store.putNew('versions/h1/entities.json', bytes('first')), true);
  assert.equal(store.putNew('packs/a.pack', bytes('another')), false, 'an existing object is not written');
  assert.equal(new TextDecoder().decode(store.get('packs/a.pack')), 'a', 'and is left as it was');

  assert.deepEqual(store.list(''), [
    { name: 'packs/a.pack', size: 1n },
    { name: 'packs/b.pack', size: 2n },
    { name: 'versions/h1/entities.json', size: 5n },
    { name: 'versions/h2/entities+en-US.json', size: 6n },
  ]);
  assert.deepEqual(store.list('versions/').map((l) => l.name), ['versions/h1/entities.json', 'versions/h2/entities+en-US.json']);
  assert.deepEqual(store.list('versions/h2').map((l) => l.name), ['versions/h2/entities+en-US.json']);
  assert.deepEqual(store.list('pa').map((l) => l.name), ['packs/a.pack', 'packs/b.pack']);
  assert.deepEqual(store.list('packs/b').map((l) => l.name), ['packs/b.pack']);
  assert.deepEqual(store.list('nothing/'), []);

  const many = takeAll(store, ['versions/h1/entities.json', 'missing', 'packs/b.pack', 'packs']);
  assert.deepEqual(many.map((r) => r.tag), ['ok', 'ok', 'ok', 'ok']);
  assert.deepEqual(many.map((r) => (r.val === undefined ? null : new TextDecoder().decode(r.val))), ['first', null, 'bb', null], 'a directory is no object');

  // What no name can reach is not listed: a write in progress (the native host stages its own as
  // this one does, `<name>#<digits>`), a file put there by hand.
  writeFileSync(join(root, 'packs', 'c.pack#1'), 'partial');
  writeFileSync(join(root, 'packs', 'with space'), 'x');
  assert.deepEqual(store.list('packs/').map((l) => l.name), ['packs/a.pack', 'packs/b.pack']);
  assert.equal(store.putNew('packs/c.pack', bytes('c')), true, 'a stale staged file is no object');
  assert.equal(store.putNew('packs/c.pack', bytes('c')), false);

  // The size limit, both ways.
  assert.throws(() => store.putNew('packs/big.pack', new Uint8Array(65)), (e) => e.payload.tag === 'too-large');
  writeFileSync(join(root, 'packs', 'big.pack'), new Uint8Array(65));
  assert.throws(() => store.get('packs/big.pack'), (e) => e.payload.tag === 'too-large');
  assert.equal(takeAll(store, ['packs/big.pack'])[0].val.tag, 'too-large');

  // A file where a directory of the name would be.
  assert.throws(() => store.putNew('packs/a.pack/inner', bytes('x')), (e) => e.payload.tag === 'other');
  assert.equal(store.get('packs/a.pack/inner'), undefined);

  assert.deepEqual(filesUnder(root).filter((f) => f.includes('#')), ['packs/c.pack#1'], 'no temporary file of this host is left');
  assert.equal(store.location(), pathToFileURL(root).href);
});

test('two writers of one name at once: one writes it whole, the other leaves it be', async (t) => {
  const dir = place(t);
  const shared = new URL('../src/shared.js', import.meta.url).href;
  const names = Array.from({ length: 40 }, (_, i) => `race/${i}.pack`);
  // Each writer writes every name with its own byte, large enough for the writes to overlap.
  const writer = (fill) => new Worker(`
    const { workerData, parentPort } = require('node:worker_threads');
    import(workerData.shared).then(({ SharedStore }) => {
      const store = SharedStore.open(workerData.root);
      parentPort.postMessage(workerData.names.map((name) => store.putNew(name, new Uint8Array(1 << 20).fill(workerData.fill))));
    });
  `, { eval: true, workerData: { shared, root: dir.dir, names, fill } });
  const results = await Promise.all([1, 2].map((fill) => new Promise((resolve, reject) => {
    const w = writer(fill);
    w.once('message', resolve);
    w.once('error', reject);
  })));
  const store = SharedStore.open(dir.dir);
  names.forEach((name, i) => {
    assert.equal(results[0][i] + results[1][i], 1, `${name}: exactly one writer wrote it`);
    const body = store.get(name);
    assert.equal(body.length, 1 << 20, name);
    const fill = results[0][i] ? 1 : 2;
    assert.ok(body.every((b) => b === fill), `${name} holds what its writer wrote, whole`);
  });
  assert.deepEqual(store.list('race/').map((l) => l.name), [...names].sort());
  assert.equal(filesUnder(dir.dir).length, names.length, 'no temporary file is left');
});

test('a store stops when the user asked to', (t) => {
  const dir = place(t);
  let stop = false;
  const store = SharedStore.open(dir.dir, { cancelled: () => stop });
  assert.equal(store.putNew('a', new Uint8Array([1])), true);
  stop = true;
  assert.throws(() => store.get('a'), (e) => e.payload.tag === 'cancelled' && !('val' in e.payload));
  assert.deepEqual(takeAll(store, ['a']), [{ tag: 'err', val: { tag: 'cancelled' } }]);
});
