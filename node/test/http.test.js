// The Node host's HTTP policy, through the real component: a proxy in front of the simulator
// injects what real networks and services do (redirects, throttling, resets, cut-off answers,
// oversized answers), and the host must answer as the Rust host does.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Cache } from '../src/index.js';
import { ROOT, proxy, rejection, scratch, simulate } from './support.js';

const SAMPLE_HASH = 'ae97cdc85de9b242364367e8bd9bf662a32cee6aaea4d8b47c8e35c4f0a8b90b';
let sim;
before(async () => {
  sim = await simulate(['--scale', 'tiny', '--modules', join(ROOT, 'tests/simulator/tests/fixtures/get-installed-modules.sample.json')], 1);
});
after(() => sim.stop());

/** A cache in a scratch directory, closed and removed when the test ends. */
async function openCache(t, options = {}) {
  const dir = scratch('http');
  const cache = await Cache.open(dir.db, { logLevel: 'error', ...options });
  t.after(async () => {
    await cache.close();
    dir.remove();
  });
  return cache;
}

async function withProxy(t, rule, target = sim.urls[0]) {
  const p = await proxy(target, rule);
  t.after(() => p.close());
  return p;
}

test('a redirect to another origin is refused, and the other origin is never reached', async (t) => {
  const other = await withProxy(t);
  const front = await withProxy(t, (req) => ({ status: 307, headers: { location: `${other.url}${req.url}` } }));
  const cache = await openCache(t);
  const e = await rejection(cache.detectVersion(front.url));
  assert.equal(e.kind, 'denied', e.message);
  assert.match(e.message, /redirected \(HTTP 307\)/);
  assert.equal(other.seen.length, 0);
  // Version detection asks three things at once; none was answered from elsewhere.
  assert.ok(front.seen.length >= 1 && front.seen.length <= 3, `${front.seen.length} requests`);
});

test('a POST redirected with 302 is not turned into a GET', async (t) => {
  let front;
  front = await withProxy(t, (req) => (req.method === 'POST' ? { status: 302, headers: { location: `${front.url}${req.url}` } } : null));
  const cache = await openCache(t);
  const e = await rejection(cache.detectVersion(front.url));
  assert.equal(e.kind, 'denied', e.message);
  assert.ok(front.seen.length > 0 && front.seen.every((r) => r.method === 'POST'), JSON.stringify(front.seen.map((r) => r.method)));
});

test('a redirect within the origin is followed, as another attempt', async (t) => {
  let front;
  front = await withProxy(t, (req, n) => (n === 1 ? { status: 307, headers: { location: `${front.url}${req.url}` } } : null));
  const cache = await openCache(t);
  const report = await cache.detectVersion(front.url);
  assert.equal(report.modules_hash, SAMPLE_HASH);
  assert.equal(report.requests, 4);
  assert.equal(front.seen.length, 4);
});

test('a 429 is retried after its Retry-After', async (t) => {
  const times = new Map();
  let throttled = null;
  const front = await withProxy(t, (req, n) => {
    times.set(req.url, [...(times.get(req.url) ?? []), Date.now()]);
    if (n === 1) {
      throttled = req.url;
      return { status: 429, headers: { 'retry-after': '1' } };
    }
    return null;
  });
  const cache = await openCache(t);
  const report = await cache.detectVersion(front.url);
  assert.equal(report.modules_hash, SAMPLE_HASH);
  assert.equal(report.requests, 4);
  const [first, second] = times.get(throttled);
  assert.ok(second - first >= 950, `retried after ${second - first} ms`);
});

test('a 503 that does not end fails after the attempts allowed, naming the status', async (t) => {
  const front = await withProxy(t, () => ({ status: 503, body: 'down for maintenance' }));
  const cache = await openCache(t, { http: { maxAttempts: 3, backoffBaseMs: 5 } });
  const e = await rejection(cache.detectVersion(front.url));
  assert.equal(e.kind, 'service', e.message);
  assert.match(e.message, /503/);
  const attempts = new Map();
  for (const r of front.seen) attempts.set(r.path, (attempts.get(r.path) ?? 0) + 1);
  assert.ok([...attempts.values()].every((n) => n === 3), JSON.stringify([...attempts]));
});

test('a reset connection and an answer cut off mid-body are retried for reads', async (t) => {
  let reset = false;
  let cut = false;
  const front = await withProxy(t, (req) => {
    if (!reset && req.url.startsWith('/Metadata/DataEntities')) {
      reset = true;
      return { reset: true };
    }
    if (!cut && req.url.startsWith('/Metadata/Labels')) {
      cut = true;
      return { cut: 10 };
    }
    return null;
  });
  const cache = await openCache(t, { http: { backoffBaseMs: 5 } });
  const report = await cache.sync(front.url);
  assert.equal(report.plan, 'full');
  assert.ok(reset && cut);
  assert.ok(cache.httpStats.retries >= 2, JSON.stringify(cache.httpStats));
  const clean = await openCache(t);
  await clean.sync(sim.urls[0]);
  const counts = (s) => s.environments[0].counts;
  assert.ok(counts(await clean.stats({ base_url: sim.urls[0] })).data_entities > 0);
  assert.deepEqual(counts(await cache.stats({ base_url: front.url })), counts(await clean.stats({ base_url: sim.urls[0] })));
});

test('an answer over the size limit fails, names the limit, and stores nothing', async (t) => {
  const cache = await openCache(t, { http: { maxBodyBytes: 2048 } });
  const e = await rejection(cache.sync(sim.urls[0]));
  assert.equal(e.kind, 'service', e.message);
  assert.match(e.message, /limit/);
  const stats = await cache.stats({});
  assert.equal(stats.environments[0].counts, null);
  assert.equal(stats.environments[0].last_sync.outcome, 'failed');
  assert.equal(stats.objects.length, 0);
});

test('requests in flight stay within the concurrency bound', async (t) => {
  const narrow = await withProxy(t);
  await (await openCache(t, { http: { maxConcurrency: 2 } })).sync(narrow.url);
  assert.ok(narrow.maxInFlight <= 2, `${narrow.maxInFlight} in flight`);
  const wide = await withProxy(t);
  await (await openCache(t)).sync(wide.url);
  assert.ok(wide.maxInFlight > 2, `${wide.maxInFlight} in flight with the default bound`);
});

test('a credential\'s token is sent with every request and asked for once', async (t) => {
  const front = await withProxy(t);
  const scopes = [];
  const credential = {
    async getToken(scope) {
      scopes.push(scope);
      return { token: 'token-1', expiresOnTimestamp: Date.now() + 3_600_000 };
    },
  };
  const cache = await openCache(t, { credential });
  await cache.sync(front.url);
  assert.deepEqual(scopes, [`${front.url}/.default`]);
  assert.ok(front.seen.length > 10);
  assert.ok(front.seen.every((r) => r.headers.authorization === 'Bearer token-1'));
});

test('a failing sign-in fails the call with what the credential said', async (t) => {
  const front = await withProxy(t);
  const credential = { getToken: async () => { throw new Error('AADSTS7000215: invalid client secret'); } };
  const cache = await openCache(t, { credential });
  const e = await rejection(cache.detectVersion(front.url));
  assert.equal(e.kind, 'network', e.message);
  assert.match(e.message, /AADSTS7000215/);
  assert.equal(front.seen.length, 0);
});
