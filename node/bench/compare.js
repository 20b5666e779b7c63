// The Node host next to the Rust host, in one run on one machine: a full sync at small scale and
// an entity lookup's latency, with the network floor (the same requests, fetched and read with
// the same concurrency, nothing else done) measured between them.
//
//   node bench/compare.js [--rounds 3] [--lookups 200] [--json]
//
// Builds the release command line and the Rust lookup example first (cargo, warm: seconds).
// Reports medians over the rounds and ratios to the floor; the machine is shared, so the ratios
// are the figure, not the absolute times.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cache } from '../src/index.js';
import { proxy } from '../test/support.js';
import { asJson, option, releaseBuild, say } from './support.js';

const rounds = option('rounds', 3);
const lookups = option('lookups', 200);
const { cli, lookupExample } = releaseBuild();

function run(command, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${command} ${args.join(' ')}: exit ${code}: ${err}`))));
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

// The simulator, from the release build too.
const sim = spawn(cli, ['simulate', '--scale', 'small', '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'ignore'] });
const baseUrl = await new Promise((resolve) => {
  let out = '';
  sim.stdout.on('data', (d) => {
    out += d;
    if (out.includes('\n')) resolve(out.split('\n')[0].trim());
  });
});
const scratch = mkdtempSync(join(tmpdir(), 'd365meta-compare-'));

// The requests a full sync makes, recorded once through a proxy, for the floor.
const recorder = await proxy(baseUrl);
await run(cli, ['--cache', join(scratch, 'recorded.db'), 'sync', recorder.url, '--json']);
const requests = recorder.seen.map((r) => ({ method: r.method, path: r.path }));
await recorder.close();

/** Every recorded request fetched with the hosts' default concurrency (16), bodies read in full. */
async function floor() {
  const started = performance.now();
  let next = 0;
  let bytes = 0;
  const slot = async () => {
    while (next < requests.length) {
      const r = requests[next++];
      const answer = await fetch(baseUrl + r.path, { method: r.method });
      bytes += (await answer.arrayBuffer()).byteLength;
    }
  };
  await Promise.all(Array.from({ length: 16 }, slot));
  return { ms: performance.now() - started, bytes };
}

const results = { rust: [], node: [], floor: [] };
for (let round = 1; round <= rounds; round += 1) {
  const rustDb = join(scratch, `rust-${round}.db`);
  const rust = JSON.parse(await run(cli, ['--cache', rustDb, 'sync', baseUrl, '--json']));
  results.rust.push(rust.duration_ms);

  const nodeDb = join(scratch, `node-${round}.db`);
  const cache = await Cache.open(nodeDb, { logLevel: 'error' });
  const node = await cache.sync(baseUrl);
  await cache.close();
  results.node.push(node.duration_ms);
  if (node.requests !== rust.requests) throw new Error(`the hosts made different requests: Node ${node.requests}, Rust ${rust.requests}`);

  const f = await floor();
  results.floor.push(f.ms);
  say(`round ${round}: Rust ${rust.duration_ms} ms, Node ${node.duration_ms} ms, floor ${f.ms.toFixed(0)} ms (${requests.length} requests, ${(f.bytes / 1048576).toFixed(1)} MiB)`);
}

// Lookups: the same names, from each host's own cache of round 1.
const names = ['CustomersV3', 'CustCustomerV3Entity'];
{
  const cache = await Cache.open(join(scratch, 'node-1.db'), { readOnly: true, logLevel: 'error' });
  const hits = await cache.search({ text: 'order', kinds: ['public-entity'], limit: 3 }, { base_url: baseUrl });
  names.push(...hits.hits.map((h) => h.name));
  const perName = Math.ceil(lookups / names.length);
  const read = { base_url: baseUrl, labels: { language: 'en-US', fallback: [] } };
  for (const name of names) await cache.getEntity(name, read);
  const samples = [];
  for (let i = 0; i < perName; i += 1) {
    for (const name of names) {
      const started = performance.now();
      await cache.getEntity(name, read);
      samples.push((performance.now() - started) * 1000);
    }
  }
  await cache.close();
  results.nodeLookupUs = median(samples);
  results.lookupSamples = samples.length;
  const rust = JSON.parse(await run(lookupExample, [join(scratch, 'rust-1.db'), baseUrl, String(perName), 'entity', ...names]));
  results.rustLookupUs = rust.median_us;
}
sim.kill('SIGINT');
rmSync(scratch, { recursive: true, force: true });

const summary = {
  scale: 'small',
  rounds,
  requests: requests.length,
  sync_ms: { rust: median(results.rust), node: median(results.node), floor: Math.round(median(results.floor)) },
  sync_ratio_to_floor: { rust: +(median(results.rust) / median(results.floor)).toFixed(2), node: +(median(results.node) / median(results.floor)).toFixed(2) },
  node_over_rust_sync: +(median(results.node) / median(results.rust)).toFixed(2),
  lookup_median_us: { rust: Math.round(results.rustLookupUs), node: Math.round(results.nodeLookupUs) },
  node_over_rust_lookup: +(results.nodeLookupUs / results.rustLookupUs).toFixed(2),
  lookup_samples: results.lookupSamples,
  lookup_names: names,
};
if (asJson) console.log(JSON.stringify(summary, null, 2));
else {
  say(`\nfull sync, small scale, median of ${rounds}: Rust ${summary.sync_ms.rust} ms (${summary.sync_ratio_to_floor.rust}x floor), Node ${summary.sync_ms.node} ms (${summary.sync_ratio_to_floor.node}x floor), floor ${summary.sync_ms.floor} ms; Node/Rust ${summary.node_over_rust_sync}`);
  say(`entity lookup, median of ${summary.lookup_samples}: Rust ${summary.lookup_median_us.rust} µs, Node ${summary.lookup_median_us.node} µs; Node/Rust ${summary.node_over_rust_lookup}`);
}
