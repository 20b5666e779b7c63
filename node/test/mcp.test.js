// `d365meta mcp` driven by the official MCP TypeScript SDK, over stdio and streamable HTTP, against
// the simulator: what an assistant or an editor sees when it uses the cache as tools.

import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import Database from 'better-sqlite3';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport, getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import { writeFileSync } from 'node:fs';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { PATHS, proxy, scratch, simulate } from './support.js';

const TOOLS = [
  'compare_versions', 'diff', 'get_entity', 'get_enumeration', 'get_labels', 'get_stats', 'get_version',
  'list_environments', 'search', 'sync', 'sync_cancel', 'sync_history', 'sync_status',
];
const READ_TOOLS = TOOLS.filter((name) => !['sync', 'sync_cancel'].includes(name));
const LABEL_REQUEST = /\/Metadata\/Labels\(/i;
const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

let sim;
before(async () => {
  sim = await simulate(['--scale', 'tiny', '--environments', '2'], 2);
});
after(() => sim.stop());

/** The CLI's `--json` answer for `args` on the cache at `db`. */
function cli(db, ...args) {
  return JSON.parse(execFileSync(PATHS.cli, ['--cache', db, '--json', ...args], { encoding: 'utf8' }));
}

/** A tool call's result; fails the test when the tool reports an error. */
async function call(client, name, args = {}, options = {}) {
  const result = await client.callTool({ name, arguments: args }, undefined, options);
  assert.ok(!result.isError, `${name} failed: ${result.content?.[0]?.text}`);
  assert.equal(result.content[0].type, 'text');
  assert.ok(result.content[0].text.length > 0, `${name} gives a text rendering`);
  return result.structuredContent;
}

/** A tool call that must fail as a tool error; gives its error record and text. */
async function failure(client, name, args) {
  const result = await client.callTool({ name, arguments: args });
  assert.equal(result.isError, true, `${name}(${JSON.stringify(args)}) should fail, gave ${JSON.stringify(result.structuredContent)}`);
  return { error: result.structuredContent?.error ?? {}, text: result.content[0].text };
}

/** A client of `d365meta mcp` over stdio; `config` is the configuration file (by default none, so
 * that no profile of the user running the tests applies), `before` arguments before `mcp`. */
async function stdioClient(db, { config = `${db}.no-config.toml`, before = [] } = {}) {
  const transport = new StdioClientTransport({
    command: PATHS.cli,
    args: ['--cache', db, ...before, 'mcp'],
    env: { ...getDefaultEnvironment(), D365META_CONFIG: config },
    stderr: 'pipe',
  });
  const client = new Client({ name: 'd365meta-tests', version: '1.0.0' });
  await client.connect(transport);
  return client;
}

/** Polls `sync_status` until `until(status)` holds. */
async function waitFor(client, handle, until, what) {
  for (let i = 0; i < 600; i += 1) {
    const status = await call(client, 'sync_status', { handle });
    if (until(status)) return status;
    await sleep(50);
  }
  throw new Error(`sync ${handle} never got to ${what}`);
}

describe('over stdio', () => {
  let dir;
  let client;
  let env; // the environment, behind a proxy that counts its requests
  before(async () => {
    dir = scratch('mcp-stdio');
    env = await proxy(sim.urls[0]);
    client = await stdioClient(dir.db);
  });
  after(async () => {
    await client.close();
    await env.close();
    dir.remove();
  });

  test('initialize: the server names itself, its capabilities and how to use it', () => {
    assert.equal(client.getServerVersion().name, 'd365meta');
    const caps = client.getServerCapabilities();
    assert.ok(caps.tools && caps.resources, JSON.stringify(caps));
    assert.match(client.getInstructions(), /search/);
  });

  test('tools have schemas and descriptions a model can choose by', async () => {
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(), TOOLS);
    for (const t of tools) {
      assert.ok(t.description.length >= 60, `${t.name}: description too short: ${t.description}`);
      assert.equal(t.inputSchema.type, 'object', t.name);
      assert.equal(t.annotations.readOnlyHint, READ_TOOLS.includes(t.name), `${t.name} readOnlyHint`);
      for (const [field, schema] of Object.entries(t.inputSchema.properties ?? {})) {
        assert.ok(schema.description, `${t.name}.${field} has a description`);
      }
    }
    const search = tools.find((t) => t.name === 'search');
    assert.deepEqual(search.inputSchema.required, ['text']);
    const kinds = JSON.stringify(search.inputSchema);
    for (const kind of ['data-entity', 'public-entity', 'enumeration', 'action', 'property']) assert.ok(kinds.includes(kind), kind);
    assert.deepEqual(tools.find((t) => t.name === 'get_entity').inputSchema.required, ['name']);
    assert.deepEqual(tools.find((t) => t.name === 'sync').inputSchema.required, ['environment']);
    assert.equal(tools.find((t) => t.name === 'sync').annotations.openWorldHint, true);
  });

  test('an empty cache says so in its own words', async () => {
    const { error, text } = await failure(client, 'get_entity', { name: 'CustomersV3' });
    assert.ok(error.kind && error.message, JSON.stringify(error));
    assert.match(text, /sync/i, 'the message says what to do');
  });

  test('a sync sends progress to its end and reports', async () => {
    const events = [];
    const status = await call(client, 'sync', { environment: env.url, wait: true, languages: ['en-US', 'de'] }, {
      onprogress: (p) => events.push(p),
      timeout: 300_000,
    });
    assert.equal(status.state, 'succeeded', JSON.stringify(status));
    assert.equal(status.report.plan, 'full');
    assert.ok(status.report.requests > 0);
    assert.ok(events.length >= 3, `${events.length} progress notifications`);
    for (let i = 1; i < events.length; i += 1) assert.ok(events[i].progress >= events[i - 1].progress, 'progress never goes back');
    assert.ok(events.some((e) => /labels/.test(e.message)), events.map((e) => e.message).join(' | '));
    assert.ok(events.some((e) => /entit/.test(e.message)), events.map((e) => e.message).join(' | '));
  });

  test('reading tools answer from the cache without one request to the environment', async () => {
    const before = env.seen.length;
    await call(client, 'search', { text: 'customer' });
    await call(client, 'get_entity', { name: 'CustomersV3', language: 'de' });
    await call(client, 'get_enumeration', { name: 'NoYes' });
    await call(client, 'get_labels', { ids: ['@SYS13342'] });
    await call(client, 'get_version', {});
    await call(client, 'get_stats', {});
    await call(client, 'list_environments', {});
    await call(client, 'sync_history', {});
    assert.equal(env.seen.length, before, 'no request reached the environment');
  });

  test('search: kinds, filters and pages with a total', async () => {
    const all = await call(client, 'search', { text: 'customer', limit: 50 });
    assert.ok(all.total >= all.hits.length && all.hits.length > 2, JSON.stringify(all).slice(0, 300));
    assert.ok(all.hits.some((h) => h.kind === 'public-entity' && h.name === 'CustomerV3'), 'finds CustomerV3');
    const first = await call(client, 'search', { text: 'customer', limit: 2 });
    const second = await call(client, 'search', { text: 'customer', limit: 2, offset: 2 });
    assert.equal(first.total, all.total);
    assert.equal(second.total, all.total);
    assert.deepEqual([...first.hits, ...second.hits].map((h) => h.name), all.hits.slice(0, 4).map((h) => h.name));
    const enums = await call(client, 'search', { text: 'yes', kinds: ['enumeration'] });
    assert.ok(enums.hits.length > 0 && enums.hits.every((h) => h.kind === 'enumeration'), JSON.stringify(enums.hits));
    const props = await call(client, 'search', { text: 'name', kinds: ['property'], entity: 'CustomersV3' });
    assert.ok(props.hits.length > 0, 'properties of one entity');
    assert.ok(props.hits.every((h) => h.kind === 'property' && h.entity === 'CustomerV3'), JSON.stringify(props.hits.slice(0, 3)));
    const writable = await call(client, 'search', { text: 'customer', kinds: ['data-entity'], read_only: false, data_service_enabled: true });
    assert.ok(writable.hits.every((h) => h.kind === 'data-entity'));
  });

  test('get_entity gives what the command line gives, labels resolved in the language asked', async () => {
    const schema = await call(client, 'get_entity', { name: 'CustomersV3', language: 'de' });
    assert.deepEqual(schema, cli(dir.db, 'entity', 'CustomersV3', '--labels', '--lang', 'de'));
    assert.equal(schema.public_entity.name, 'CustomerV3');
    assert.ok(schema.public_entity.properties.some((p) => p.is_key), 'keys');
    assert.ok(schema.public_entity.properties.some((p) => p.label), 'labels resolved');
    const byDataEntity = await call(client, 'get_entity', { name: schema.data_entity.name, language: 'de' });
    assert.deepEqual(byDataEntity.public_entity, schema.public_entity, 'the same entity by its data entity name');

    const unknown = await call(client, 'get_entity', { name: 'CustomersV9' });
    assert.equal(unknown.public_entity, null);
    assert.ok(unknown.suggestions.includes('CustomersV3') || unknown.suggestions.includes('CustomerV3'), JSON.stringify(unknown.suggestions));
  });

  test('get_enumeration and get_labels, many ids in one call', async () => {
    const noYes = await call(client, 'get_enumeration', { name: 'noyes', language: 'en-US' });
    assert.equal(noYes.enumeration.name, 'NoYes');
    assert.deepEqual(noYes.enumeration.members.map((m) => m.value).sort(), [0, 1]);

    const schema = await call(client, 'get_entity', { name: 'CustomersV3' });
    const ids = [...new Set(schema.public_entity.properties.map((p) => p.label_id).filter((id) => id?.startsWith('@')))].slice(0, 10);
    assert.ok(ids.length >= 3, 'the entity has labelled properties');
    const { labels } = await call(client, 'get_labels', { ids, language: 'de' });
    assert.equal(labels.length, ids.length);
    labels.forEach((label, i) => {
      assert.equal(label.id, ids[i]);
      assert.deepEqual(label, cli(dir.db, 'label', ids[i], '--lang', 'de'));
    });
  });

  test('versions: modules, who shares them, and the differences between two', async () => {
    const version = await call(client, 'get_version', { environment: env.url });
    assert.match(version.modules_hash, /^[0-9a-f]{64}$/);
    assert.ok(version.modules.length > 0);
    assert.ok(version.environments.includes(env.url));
    const byHash = await call(client, 'get_version', { modules_hash: version.modules_hash.slice(0, 12) });
    assert.deepEqual(byHash.modules, version.modules);
    const same = await call(client, 'compare_versions', { a: env.url, b: version.modules_hash });
    assert.equal(same.same_version, true);
    assert.deepEqual([same.added.length, same.removed.length, same.changed.length], [0, 0, 0]);
    const diff = await call(client, 'diff', { a: env.url, b: version.modules_hash.slice(0, 10), only_breaking: true });
    assert.deepEqual(diff.objects, []);
    assert.ok(diff.unchanged > 0);
    assert.equal(diff.a.modules_hash, diff.b.modules_hash);
  });

  test('resources: the environment list, and entities and enumerations by URI', async () => {
    const { resources } = await client.listResources();
    assert.deepEqual(resources.map((r) => r.uri), ['d365meta://environments']);
    const { resourceTemplates } = await client.listResourceTemplates();
    assert.deepEqual(resourceTemplates.map((r) => r.uriTemplate).sort(), [
      'd365meta://{environment}/entities/{name}',
      'd365meta://{environment}/enumerations/{name}',
    ]);
    const read = async (uri) => JSON.parse((await client.readResource({ uri })).contents[0].text);
    assert.equal((await read('d365meta://environments')).environments[0].base_url, env.url);
    const entity = await read('d365meta://_/entities/CustomersV3');
    assert.equal(entity.public_entity.name, 'CustomerV3');
    const named = await read(`d365meta://${encodeURIComponent(env.url)}/enumerations/NoYes`);
    assert.equal(named.enumeration.name, 'NoYes');
    await assert.rejects(client.readResource({ uri: 'd365meta://_/entities/NoSuchEntity' }), /no such entity/);
    await assert.rejects(client.readResource({ uri: 'd365meta://_/tables/CustTable' }), /no collection "tables"/);
  });

  test('a malformed call is an error naming the argument, and the server carries on', async () => {
    const cases = [
      ['search', { text: 'customer', limit: 'ten' }, 'limit'],
      ['search', { text: 'customer', limit: 0 }, 'limit'],
      ['search', { text: '   ' }, 'text'],
      ['search', { text: 'customer', kinds: ['table'] }, 'kinds'],
      ['search', { text: 'customer', colour: 'blue' }, 'colour'],
      ['get_entity', {}, 'name'],
      ['get_entity', { name: 'CustomersV3', environment: 'contoso' }, 'environment'],
      ['get_labels', { ids: [] }, 'ids'],
      ['get_labels', { ids: '@SYS1' }, 'ids'],
      ['sync', { environment: 'ftp://example.com' }, 'environment'],
      ['sync', { environment: env.url, strategy: 'fastest' }, 'strategy'],
      ['sync_status', { handle: 'sync-999' }, 'handle'],
      ['compare_versions', { a: 'http://', b: 'abc' }, 'a'],
      ['diff', { a: 'ftp://x', b: 'abc' }, 'a'],
      ['diff', { a: 'abcdef12', b: 'abcdef13', only_breaking: 'yes' }, 'only_breaking'],
    ];
    for (const [tool, args, argument] of cases) {
      const { error, text } = await failure(client, tool, args);
      assert.equal(error.kind, 'invalid-input', `${tool}(${JSON.stringify(args)}): ${text}`);
      assert.ok(error.message.includes(`\`${argument}`), `${tool}(${JSON.stringify(args)}): "${error.message}" names ${argument}`);
    }
    const unknownTool = await client.callTool({ name: 'drop_cache', arguments: {} }).then((r) => r, (e) => e);
    assert.ok(unknownTool.isError || /drop_cache|not found/i.test(String(unknownTool.message)), String(unknownTool.message));
    await call(client, 'list_environments');
  });

  test('a sync started with a handle is followed, cancelled, and recorded as cancelled', async () => {
    const slow = await proxy(sim.urls[1], (req) => (LABEL_REQUEST.test(req.url) ? { delay: 200 } : null));
    try {
      const started = await call(client, 'sync', { environment: slow.url, strategy: 'full' });
      assert.match(started.handle, /^sync-\d+$/);
      assert.equal(started.state, 'running');
      const running = await waitFor(client, started.handle, (s) => s.progress?.phase?.startsWith('labels'), 'labels');
      assert.equal(running.state, 'running');
      const cancelled = await call(client, 'sync_cancel', { handle: started.handle });
      assert.equal(cancelled.state, 'cancelled', JSON.stringify(cancelled));
      const { runs } = await call(client, 'sync_history', { environment: slow.url, limit: 1 });
      assert.equal(runs[0].outcome, 'cancelled');
      assert.equal((await call(client, 'sync_status', { handle: started.handle })).state, 'cancelled');
      const stats = await call(client, 'get_stats', { environment: slow.url });
      assert.equal(stats.environments[0].counts, null, 'nothing of the cancelled sync is visible');
    } finally {
      await slow.close();
    }
  });
});

test('closing stdin ends the server cleanly, its sync stopped and the cache consistent', async (t) => {
  const dir = scratch('mcp-close');
  const slow = await proxy(sim.urls[0], (req) => (LABEL_REQUEST.test(req.url) ? { delay: 200 } : null));
  t.after(async () => { await slow.close(); dir.remove(); });
  const child = spawn(PATHS.cli, ['--cache', dir.db, 'mcp'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => { child.once('exit', (code, signal) => resolve({ code, signal })); });
  // The SDK's stdio framing over the child's pipes, so that the test decides when stdin closes.
  const client = new Client({ name: 'd365meta-tests', version: '1.0.0' });
  await client.connect(new StdioServerTransport(child.stdout, child.stdin));
  const started = await call(client, 'sync', { environment: slow.url, strategy: 'full' });
  await waitFor(client, started.handle, (s) => s.progress?.phase?.startsWith('labels'), 'labels');

  const closedAt = Date.now();
  child.stdin.end();
  const { code, signal } = await Promise.race([exited, sleep(30_000).then(() => ({ code: 'still running' }))]);
  assert.equal(code, 0, `exit ${code} ${signal ?? ''}: ${stderr}`);
  assert.ok(Date.now() - closedAt < 10_000, `ended ${Date.now() - closedAt} ms after stdin closed`);

  const [run] = cli(dir.db, 'history', '--env', slow.url);
  assert.equal(run.outcome, 'cancelled', JSON.stringify(run));
  const db = new Database(dir.db, { readonly: true });
  try {
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
    assert.deepEqual(db.pragma('foreign_key_check'), []);
  } finally {
    db.close();
  }
});

describe('over streamable HTTP', () => {
  const TOKEN = 'correct-horse-battery-staple';
  let dir;
  let server;
  let url;
  before(async () => {
    dir = scratch('mcp-http');
    server = spawn(PATHS.cli, ['--cache', dir.db, '--json', 'mcp', '--http', '127.0.0.1:0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, D365META_MCP_TOKEN: TOKEN },
    });
    let stderr = '';
    server.stderr.on('data', (d) => { stderr += d; });
    url = await new Promise((resolve, reject) => {
      let out = '';
      server.stdout.on('data', (d) => {
        out += d;
        try {
          resolve(JSON.parse(out).url);
        } catch {
          // Not all of the JSON yet.
        }
      });
      server.once('exit', (code) => reject(new Error(`the server ended (exit ${code}): ${stderr}`)));
    });
  });
  after(async () => {
    const exited = new Promise((resolve) => { server.once('exit', resolve); });
    server.kill('SIGINT');
    assert.equal(await exited, 0, 'Ctrl-C ends the HTTP server cleanly');
    dir.remove();
  });

  async function httpClient(token = TOKEN) {
    const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
    const client = new Client({ name: 'd365meta-tests', version: '1.0.0' });
    await client.connect(transport);
    return client;
  }

  test('without the bearer token nothing is served', async () => {
    const initialize = {
      jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
    };
    const post = (headers) => fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
      body: JSON.stringify(initialize),
    });
    assert.equal((await post({})).status, 401);
    assert.equal((await post({ authorization: 'Bearer wrong-horse-battery-staple' })).status, 401);
    assert.equal((await post({ authorization: `Bearer ${TOKEN}` })).status, 200);
    assert.equal((await fetch(new URL('/other', url), { headers: { authorization: `Bearer ${TOKEN}` } })).status, 404);
    await assert.rejects(httpClient('wrong'), /401|Unauthorized|bearer/i);
  });

  test('two clients at once get the same answers, and reads go on while a sync runs', async () => {
    const [a, b] = await Promise.all([httpClient(), httpClient()]);
    try {
      const events = [];
      const synced = await call(a, 'sync', { environment: sim.urls[0], wait: true }, { onprogress: (p) => events.push(p), timeout: 300_000 });
      assert.equal(synced.state, 'succeeded');
      assert.ok(events.length >= 3, `${events.length} progress notifications over HTTP`);

      const calls = [
        ['search', { text: 'customer' }],
        ['search', { text: 'sales', kinds: ['public-entity', 'action'] }],
        ['get_entity', { name: 'CustomersV3', language: 'en-US' }],
        ['get_enumeration', { name: 'NoYes', language: 'de' }],
        ['get_version', {}],
        ['get_stats', {}],
      ];
      const both = await Promise.all([a, b].map((c) => Promise.all(calls.flatMap(([n, args]) => [call(c, n, args), call(c, n, args)]))));
      const stable = (answers) => answers.map((x) => JSON.stringify(x, (k, v) => (k === 'database_bytes' || k === 'free_bytes' ? 0 : v)));
      assert.deepEqual(stable(both[0]), stable(both[1]), 'both clients get the same answers');

      const slow = await proxy(sim.urls[1], (req) => (LABEL_REQUEST.test(req.url) ? { delay: 200 } : null));
      try {
        const started = await call(b, 'sync', { environment: slow.url, strategy: 'full' });
        await waitFor(b, started.handle, (s) => s.progress?.phase?.startsWith('labels'), 'labels');
        // The metadata reads; the version and statistics rightly show the environment being synced.
        const reads = calls.filter(([n]) => n.startsWith('search') || n === 'get_entity' || n === 'get_enumeration');
        const during = await Promise.all(reads.map(([n, args]) => call(a, n, args)));
        assert.deepEqual(stable(during), stable(both[0].filter((_, i) => i % 2 === 0).slice(0, reads.length)), 'reads during a sync give the same answers');
        assert.equal((await call(a, 'sync_status', { handle: started.handle })).state, 'running', 'the reads did not wait for the sync');
        assert.equal((await call(a, 'sync_cancel', { handle: started.handle })).state, 'cancelled');
      } finally {
        await slow.close();
      }
      const { error } = await failure(b, 'search', { text: 'customer', limit: -1 });
      assert.match(error.message, /limit/);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

test('a non-loopback address needs --allow-remote and a token', () => {
  const run = (args, env = {}) => {
    try {
      execFileSync(PATHS.cli, ['--cache', '/nonexistent/never.db', 'mcp', ...args], { encoding: 'utf8', stdio: 'pipe', env: { ...process.env, ...env } });
      return { code: 0, stderr: '' };
    } catch (e) {
      return { code: e.status, stderr: e.stderr };
    }
  };
  const open = run(['--http', '0.0.0.0:0']);
  assert.notEqual(open.code, 0);
  assert.match(open.stderr, /--allow-remote/);
  const tokenless = run(['--http', '0.0.0.0:0', '--allow-remote'], { D365META_MCP_TOKEN: '' });
  assert.notEqual(tokenless.code, 0);
  assert.match(tokenless.stderr, /D365META_MCP_TOKEN/);
});

test('tools name environments by profile, and the server\'s profile is the default one', async (t) => {
  const dir = scratch('mcp-profiles');
  t.after(() => dir.remove());
  const config = `${dir.dir}/config.toml`;
  writeFileSync(config, `[profiles.first]\nbase_url = "${sim.urls[0]}"\nsign_in = "none"\n\n[profiles.second]\nbase_url = "${sim.urls[1]}"\nsign_in = "none"\n`);
  const client = await stdioClient(dir.db, { config, before: ['--profile', 'first'] });
  t.after(() => client.close());
  for (const environment of ['first', 'second']) {
    const report = await call(client, 'sync', { environment, wait: true });
    assert.equal(report.report?.base_url ?? report.base_url, sim.urls[environment === 'first' ? 0 : 1], JSON.stringify(report).slice(0, 300));
  }
  const name = (await call(client, 'search', { text: 'customer', kinds: ['public-entity'], limit: 1 })).hits[0].name;
  assert.equal((await call(client, 'get_entity', { name })).base_url, sim.urls[0], 'without an environment: the server\'s profile');
  assert.equal((await call(client, 'get_entity', { name, environment: 'second' })).base_url, sim.urls[1]);
  const diff = await call(client, 'diff', { a: 'first', b: 'second' });
  assert.equal(diff.objects.length, 0);
  assert.equal(diff.a.modules_hash, diff.b.modules_hash);
  const { error } = await failure(client, 'get_entity', { name, environment: 'third' });
  assert.equal(error.kind, 'invalid-input');
  assert.match(error.message, /"third" is neither a base URL .* the profiles are first, second/);
  const stats = await call(client, 'get_stats', {});
  assert.equal(stats.environments.length, 2, 'statistics of every environment unless one is named');
});
