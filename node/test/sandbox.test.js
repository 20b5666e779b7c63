// The sandbox the Node host gives a component, tried by the probe component (tests/probe): WASI
// with nothing granted, HTTP only under the base URL of the environment it is lent, the store's
// refusals, and no writes while the host serves a read. The same probe runs in the Rust host's
// sandbox tests (tests/tests/sandbox.rs); here it must meet the same walls.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ComponentHost } from '../src/host.js';
import { Connection } from '../src/store.js';
import { NODE_DIR, proxy, scratch, simulate } from './support.js';

const PROBE_DIR = join(NODE_DIR, 'build', 'probe');
let sim;
before(async () => {
  sim = await simulate(['--scale', 'tiny', '--environments', '2'], 2);
});
after(() => sim.stop());

async function probe(t, options = {}) {
  const dir = scratch('sandbox');
  const logs = [];
  const host = await ComponentHost.start(PROBE_DIR, 'probe', dir.db, { logLevel: 'trace', onLog: (level, message) => logs.push({ level, message }), ...options });
  t.after(async () => {
    await host.close();
    dir.remove();
  });
  return { host, dir, logs };
}

const refused = (outcome) => outcome.startsWith('refused');

test('a component gets no files, sockets, names, environment, arguments or input', async (t) => {
  const { host, dir, logs } = await probe(t);
  assert.deepEqual(await host.call('listPreopens', []), []);
  const secret = join(dir.dir, 'secret.txt');
  writeFileSync(secret, "the host's own file");
  for (const path of [secret, '/etc/passwd', 'secret.txt']) {
    const outcome = await host.call('openFile', [path]);
    assert.ok(refused(outcome), `${path}: ${outcome}`);
  }
  const planted = join(dir.dir, 'planted.txt');
  const created = await host.call('createFile', [planted]);
  assert.ok(refused(created) && !existsSync(planted), created);

  // A listener on loopback the probe is told about: it must see no connection.
  let connections = 0;
  const listener = createServer(() => { connections += 1; });
  await new Promise((resolve) => listener.listen(0, '127.0.0.1', resolve));
  t.after(() => listener.close());
  const outcome = await host.call('connect', [`127.0.0.1:${listener.address().port}`]);
  assert.ok(refused(outcome), outcome);
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(connections, 0);
  const lookup = await host.call('resolve', ['localhost']);
  assert.ok(refused(lookup), lookup);

  process.env.D365META_PROBE_SECRET = 'visible to the host only';
  assert.deepEqual(await host.call('environmentVariables', []), []);
  assert.deepEqual(await host.call('programArguments', []), []);
  // Standard input is closed from the start, even while the host's own is an open pipe (as under `node --test`).
  assert.equal(await host.call('readStdin', []), 'allowed: (0, "")');
  await host.call('print', ["to the host's log, not the terminal"]);
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.ok(logs.some((l) => l.message.includes("component output: to the host's log")), JSON.stringify(logs));

  // The host carries on: the same instance still works.
  const after = await host.call('execute', ['CREATE TABLE after_the_refusals (x INTEGER)']);
  assert.ok(!refused(after), after);
});

test('a component cannot name another origin through its environment', async (t) => {
  const lent = await proxy(sim.urls[0]);
  const other = await proxy(sim.urls[1]);
  t.after(() => Promise.all([lent.close(), other.close()]));
  const { host } = await probe(t);
  const otherAuthority = other.url.replace('http://', '');
  const paths = [
    "/Metadata/PublicEnumerations('NoYes')",
    `//${otherAuthority}/Metadata/DataEntities`,
    `${other.url}/Metadata/DataEntities`,
    `@${otherAuthority}/Metadata/DataEntities`,
    `:${new URL(other.url).port}/Metadata/DataEntities`,
    'Metadata/DataEntities',
  ];
  const outcomes = await host.call('sendPaths', ['$environment', paths], { environment: lent.url });
  assert.equal(outcomes[0], 'allowed: 200');
  paths.slice(1).forEach((path, i) => {
    const outcome = outcomes[i + 1];
    assert.ok(outcome.startsWith('refused') && outcome.includes('Denied'), `${path}: ${outcome}`);
  });
  // Under a base URL with a path, climbing out of it is refused too.
  const [climbed] = await host.call('sendPaths', ['$environment', ['/../Metadata/DataEntities']], { environment: `${lent.url}/tenant` });
  assert.ok(climbed.startsWith('refused') && climbed.includes('Denied'), climbed);
  assert.equal(other.seen.length, 0, 'the other origin was reached');
  assert.equal(lent.seen.length, 1);
});

test('the store refuses what the component may not do, and writes while the host serves a read', async (t) => {
  const { host } = await probe(t);
  for (const sql of [
    "ATTACH DATABASE '/tmp/elsewhere.db' AS elsewhere",
    'DETACH DATABASE main',
    'BEGIN',
    'COMMIT',
    'SAVEPOINT s',
    'PRAGMA journal_mode = DELETE',
    'PRAGMA writable_schema = 1',
    'PRAGMA foreign_keys = OFF',
    "SELECT load_extension('/tmp/x.so')",
  ]) {
    const outcome = await host.call('execute', [sql]);
    assert.ok(outcome.includes('Denied'), `${sql}: ${outcome}`);
  }
  assert.ok(!refused(await host.call('execute', ['PRAGMA page_count'])));
  assert.ok(!refused(await host.call('execute', ['CREATE TABLE t (x INTEGER)'])));
  for (const sql of ['INSERT INTO t VALUES (1)', 'DROP TABLE t', 'CREATE TABLE u (x INTEGER)']) {
    const outcome = await host.call('execute', [sql], { reading: true });
    assert.ok(outcome.includes('ReadOnly'), `${sql}: ${outcome}`);
  }
  assert.ok(!refused(await host.call('execute', ['SELECT COUNT(*) FROM t'], { reading: true })));
  assert.equal(await host.call('execute', ['INSERT INTO t VALUES (1)']), 'allowed: 1');
});

test('numbered parameters bind by number, numbers a statement skips included', () => {
  const db = new Connection(':memory:');
  const text = (val) => ({ tag: 'text', val });
  const { rows } = db.execute('SELECT ?1 AS a, ?3 AS c, ?4 AS d', [text('one'), text('two'), text('three'), text('four')]);
  assert.deepEqual(rows, [[text('one'), text('three'), text('four')]]);
  const again = db.execute('SELECT ?2 AS b', [text('one'), text('two')]);
  assert.deepEqual(again.rows, [[text('two')]]);
  db.close();
});
