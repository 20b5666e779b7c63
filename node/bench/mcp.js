// Tool-call latency of `d365meta mcp` over stdio at full scale, as an assistant sees it: the MCP
// TypeScript SDK's client calls `search` (the 16 queries of `cargo bench --bench reads`) and
// `get_entity` (with en-US labels) on the release build. Two floors are measured in the same run:
// the protocol's own round trip (`ping`, which the server answers without the cache) and the same
// reads made in process through the Rust host (`host/examples/lookup_latency.rs`).
//
//   node bench/mcp.js [--rounds 20] [--json]
//
// Builds the release command line and the example first (cargo, warm: seconds), syncs the full
// simulator once (about ten seconds). Reports p50 and p99 per kind of call; the machine is shared,
// so the ratios to the floors are the figure, not the absolute times.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { asJson, option, releaseBuild, say } from './support.js';

const rounds = option('rounds', 20);
const { cli, lookupExample } = releaseBuild();

function run(command, args) {
  const r = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/** p50 and p99 of samples in microseconds. */
function quantiles(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q) => s[Math.round((s.length - 1) * q)];
  return { samples: s.length, p50_us: Math.round(at(0.5)), p99_us: Math.round(at(0.99)) };
}

const scratch = mkdtempSync(join(tmpdir(), 'd365meta-bench-mcp-'));
const db = join(scratch, 'cache.db');
const sim = spawn(cli, ['simulate', '--scale', 'full', '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'ignore'] });
try {
  const baseUrl = await new Promise((resolve) => {
    let out = '';
    sim.stdout.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(out.split('\n')[0].trim());
    });
  });
  say(`syncing the full simulator at ${baseUrl}…`);
  const report = JSON.parse(run(cli, ['--cache', db, '--json', 'sync', baseUrl]));
  say(`synced: ${report.requests} requests in ${report.duration_ms} ms`);

  const client = new Client({ name: 'd365meta-bench', version: '1.0.0' });
  await client.connect(new StdioClientTransport({ command: cli, args: ['--cache', db, 'mcp'], stderr: 'ignore' }));
  const call = async (name, args) => {
    const started = performance.now();
    const result = await client.callTool({ name, arguments: args });
    const us = (performance.now() - started) * 1000;
    if (result.isError) throw new Error(`${name} ${JSON.stringify(args)}: ${result.content[0].text}`);
    return { us, result };
  };

  // The 16 queries of host/benches/reads.rs, as the search tool's arguments.
  const searches = [
    'customer', 'CustCustomerV3Entity', 'group', 'sales order', 'vend', 'invoice', 'NoYes', 'CustomerGroupId', 'dimension',
    'warehouse location',
  ].map((text) => ({ text }));
  searches.push(
    { text: 'customer', kinds: ['public-entity'] },
    { text: 'group', kinds: ['property'], entity: 'CustomersV3' },
    { text: 'order', category: 'Transaction', data_service_enabled: true },
    { text: 'name', kinds: ['data-entity', 'public-entity'], read_only: false },
    { text: 'invoice', kinds: ['enumeration'] },
    { text: 'customer', language: 'en-US' },
  );
  // 200 entity names: data entity, public entity and entity set names found by searching.
  const names = [];
  for (const text of ['customer', 'vendor', 'sales', 'purchase', 'ledger', 'inventory', 'project', 'tax', 'bank', 'product']) {
    const { result } = await call('search', { text, kinds: ['public-entity'], limit: 20 });
    for (const hit of result.structuredContent.hits) names.push(hit.name, hit.entity_set_name ?? hit.name);
    const { result: data } = await call('search', { text, kinds: ['data-entity'], limit: 10 });
    for (const hit of data.structuredContent.hits) names.push(hit.name);
  }
  names.splice(200);

  const measure = async (calls) => {
    const samples = [];
    for (let round = 0; round <= rounds; round += 1) {
      for (const make of calls) {
        const us = await make();
        if (round > 0) samples.push(us);
      }
    }
    return quantiles(samples);
  };
  const ping = await measure([async () => {
    const started = performance.now();
    await client.ping();
    return (performance.now() - started) * 1000;
  }]);
  const search = await measure(searches.map((args) => async () => (await call('search', { ...args, limit: 20 })).us));
  const entityRounds = Math.max(1, Math.round(rounds / 4));
  const entitySamples = [];
  for (let round = 0; round <= entityRounds; round += 1) {
    for (const name of names) {
      const { us } = await call('get_entity', { name, language: 'en-US', fallback: [] });
      if (round > 0) entitySamples.push(us);
    }
  }
  const entity = quantiles(entitySamples);
  await client.close();

  const inProcess = (mode, items, n) => {
    const r = JSON.parse(run(lookupExample, [db, baseUrl, String(n), mode, ...items]));
    return { samples: r.samples, p50_us: Math.round(r.median_us), p99_us: Math.round(r.p99_us) };
  };
  const searchFloor = inProcess('search', searches.map((s) => JSON.stringify(s)), rounds);
  const entityFloor = inProcess('entity', names, entityRounds);

  const ratio = (a, b) => Math.round((a / b) * 100) / 100;
  const summary = {
    scale: 'full',
    rounds,
    ping,
    search: { ...search, in_process: searchFloor, ratio_p50: ratio(search.p50_us, searchFloor.p50_us + ping.p50_us) },
    get_entity: { ...entity, in_process: entityFloor, ratio_p50: ratio(entity.p50_us, entityFloor.p50_us + ping.p50_us) },
  };
  if (asJson) {
    console.log(JSON.stringify(summary, null, 2));
  } else {
    const ms = (us) => (us / 1000).toFixed(2);
    say(`ping (protocol round trip): p50 ${ms(ping.p50_us)} ms, p99 ${ms(ping.p99_us)} ms`);
    for (const [name, s] of [['search', summary.search], ['get_entity', summary.get_entity]]) {
      say(`${name}: p50 ${ms(s.p50_us)} ms, p99 ${ms(s.p99_us)} ms over MCP (${s.samples} calls); in process p50 ${ms(s.in_process.p50_us)} ms, p99 ${ms(s.in_process.p99_us)} ms; p50 / (in process + ping) = ${s.ratio_p50}`);
    }
  }
} finally {
  sim.kill('SIGINT');
  rmSync(scratch, { recursive: true, force: true });
}
