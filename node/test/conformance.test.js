// The conformance scenario (tests/conformance/scenario.json) on the Node host: the same component,
// transpiled by jco, against the same simulator, must give the answers the Rust host recorded in
// tests/conformance/answers.json, field by field, and fail with the same error kinds.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Cache } from '../src/index.js';
import { ROOT, contains, firstDifference, normalize, scratch, simulate } from './support.js';

const scenario = JSON.parse(readFileSync(join(ROOT, 'tests', 'conformance', 'scenario.json'), 'utf8'));
const recorded = JSON.parse(readFileSync(join(ROOT, 'tests', 'conformance', 'answers.json'), 'utf8'));

/** A URL from the scenario: a number is the simulator's environment of that number. */
const url = (v, urls) => (typeof v === 'number' ? urls[v - 1] : v);
const readOptions = (o, urls) => ({ ...o, base_url: o.base_url === null ? null : url(o.base_url, urls) });

function run(cache, step, urls) {
  switch (step.call) {
    case 'detect-version': return cache.detectVersion(url(step.environment, urls));
    case 'sync': return cache.sync(url(step.environment, urls), step.options);
    case 'get-entity': return cache.getEntity(step.name, readOptions(step.options, urls));
    case 'get-enumeration': return cache.getEnumeration(step.name, readOptions(step.options, urls));
    case 'get-action': return cache.getAction(step.name, step.entity, readOptions(step.options, urls));
    case 'get-label': return cache.getLabel(step.id, readOptions(step.options, urls));
    case 'search': return cache.search(step.query, readOptions(step.options, urls));
    case 'get-stats': return cache.stats(readOptions(step.options, urls));
    case 'history': return cache.history(readOptions(step.options, urls), step.limit);
    case 'get-version': return cache.getVersion(step.modules_hash, readOptions(step.options, urls));
    case 'diff': return cache.diff(url(step.a, urls), url(step.b, urls), step.options);
    default: throw new Error(`the scenario calls ${step.call}, which this driver does not know`);
  }
}

test('the conformance scenario gives the Rust host\'s answers on the Node host', async (t) => {
  const s = scenario.simulator;
  const args = ['--scale', s.scale, '--environments', String(s.environments), '--newer', String(s.newer)];
  for (const modules of s.modules) args.push('--modules', join(ROOT, modules));
  const sim = await simulate(args, s.environments);
  const dir = scratch('conformance');
  const cache = await Cache.open(dir.db);
  t.after(async () => {
    await cache.close();
    await sim.stop();
    dir.remove();
  });
  let compared = 0;
  for (const step of scenario.steps) {
    let answer;
    let error = null;
    try {
      answer = await run(cache, step, sim.urls);
    } catch (e) {
      if (!e.kind) throw e;
      error = e;
    }
    if (step.expect_error) {
      assert.equal(error?.kind, step.expect_error, `${step.step}: expected a ${step.expect_error} error, got ${error ? `${error.kind}: ${error.message}` : JSON.stringify(answer).slice(0, 300)}`);
      answer = { error: error.kind };
    } else {
      assert.equal(error, null, `${step.step}: failed with ${error?.kind}: ${error?.message}`);
      if (step.expect) assert.ok(contains(answer, step.expect), `${step.step}: the answer lacks ${JSON.stringify(step.expect)}`);
      answer = normalize(answer, sim.urls, scenario.volatile);
    }
    assert.ok(step.step in recorded, `${step.step}: no recorded answer`);
    const difference = firstDifference(answer, recorded[step.step]);
    assert.equal(difference, null, `${step.step}: the answer differs from the Rust host's at ${difference}`);
    compared += 1;
  }
  assert.equal(compared, Object.keys(recorded).length);
});
