// What the Node tests share: the simulator (`d365meta simulate`, the Rust one every host is tested
// against), scratch directories, and the conformance scenario's normalisation.

import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const NODE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
export const ROOT = join(NODE_DIR, '..');
export const PATHS = JSON.parse(readFileSync(join(NODE_DIR, 'build', 'paths.json'), 'utf8'));

/** Runs `d365meta simulate` with `args`; resolves once it printed a URL for each of `count` environments. */
export async function simulate(args, count) {
  const child = spawn(PATHS.cli, ['simulate', '--listen', '127.0.0.1:0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const urls = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const lines = out.split('\n').filter((l) => l.startsWith('http'));
      if (lines.length >= count) resolve(lines.slice(0, count));
    });
    child.on('exit', (code) => reject(new Error(`the simulator ended (exit ${code}): ${stderr}`)));
  });
  return {
    urls,
    stop: () => new Promise((resolve) => {
      child.once('exit', resolve);
      child.kill('SIGINT');
    }),
  };
}

/** The error a call fails with; fails the test if it succeeds. */
export async function rejection(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  throw new Error('expected the call to fail');
}

export function scratch(name) {
  const dir = mkdtempSync(join(tmpdir(), `d365meta-node-${name}-`));
  return { dir, db: join(dir, 'cache.db'), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

// ---- the conformance scenario's normalisation (the same as tests/tests/conformance.rs) ----

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** `text` with each environment URL replaced by `env<N>` (a URL followed by a digit is another port). */
function replaceUrls(text, urls) {
  let out = text;
  urls.forEach((url, i) => {
    out = out.replace(new RegExp(`${escape(url)}(?![0-9])`, 'g'), `env${i + 1}`);
  });
  return out;
}

const sortEnvironmentLists = (text) => text.replace(/(?<![\p{L}\p{N}])env\d+(?:, env\d+)+/gu, (list) => list.split(', ').sort().join(', '));
const isEnvironmentToken = (v) => typeof v === 'string' && /^env\d+$/.test(v);

/** An answer as hosts compare it: URLs as `env<N>`, lists of environments sorted, volatile values hidden. */
export function normalize(value, urls, volatile) {
  if (typeof value === 'string') return sortEnvironmentLists(replaceUrls(value, urls));
  if (Array.isArray(value)) {
    const items = value.map((v) => normalize(v, urls, volatile));
    if (items.length > 0 && items.every(isEnvironmentToken)) items.sort();
    return items;
  }
  if (value && typeof value === 'object') {
    const out = {};
    for (const [key, field] of Object.entries(value)) {
      out[key] = volatile.includes(key) && field !== null ? 'volatile' : normalize(field, urls, volatile);
    }
    return out;
  }
  return value;
}

/** The first path at which two answers differ, or null. */
export function firstDifference(a, b, path = '') {
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const d = firstDifference(a[key] ?? null, b[key] ?? null, `${path}.${key}`);
      if (d) return d;
    }
    return null;
  }
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
    for (let i = 0; i < a.length; i += 1) {
      const d = firstDifference(a[i], b[i], `${path}[${i}]`);
      if (d) return d;
    }
    return null;
  }
  return JSON.stringify(a) === JSON.stringify(b) ? null : `${path}: ${JSON.stringify(a)} here, ${JSON.stringify(b)} in the recorded answers`;
}

/** Whether every field of `expected` is in `actual` with the same value (objects as subsets). */
export function contains(actual, expected) {
  if (expected && typeof expected === 'object' && !Array.isArray(expected)) {
    return actual !== null && typeof actual === 'object' && Object.entries(expected).every(([k, v]) => k in actual && contains(actual[k], v));
  }
  return JSON.stringify(actual) === JSON.stringify(expected);
}

// ---- a proxy in front of a simulated environment, for the faults the host must handle ----

/**
 * An HTTP server on loopback that passes requests on to `target`, unless `rule(request, n)` (n:
 * the 1-based count of requests so far) answers for it with one of:
 * `{ status, headers, body }`, `{ reset: true }` (the connection is destroyed before an answer),
 * `{ cut: bytes }` (the target's answer is cut off after `bytes` bytes of body), or `{ delay: ms }`
 * (the request is passed on after `ms` milliseconds, as over a slow network).
 * Records each request's method, path and headers, and the most requests in flight at once.
 */
export async function proxy(target, rule = () => null) {
  const seen = [];
  let closed = false;
  let inFlight = 0;
  let maxInFlight = 0;
  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks);
    seen.push({ method: req.method, path: req.url, headers: req.headers });
    inFlight += 1;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      const fault = rule(req, seen.length);
      if (fault?.reset) {
        req.socket.destroy();
        return;
      }
      if (fault?.delay) {
        await new Promise((resolve) => { setTimeout(resolve, fault.delay); });
        // The client may have given up meanwhile (a cancelled sync), and the proxy been closed.
        if (closed || req.socket.destroyed) {
          req.socket.destroy();
          return;
        }
      }
      if (fault?.status) {
        res.writeHead(fault.status, fault.headers ?? {});
        res.end(fault.body ?? '');
        return;
      }
      const headers = { ...req.headers };
      delete headers.host;
      let answer;
      try {
        answer = await fetch(target + req.url, { method: req.method, headers, body: body.length ? body : undefined });
      } catch {
        req.socket.destroy(); // the target is gone: so is this answer
        return;
      }
      const bytes = Buffer.from(await answer.arrayBuffer());
      const out = {};
      answer.headers.forEach((v, k) => { if (!['content-length', 'content-encoding', 'transfer-encoding', 'connection'].includes(k)) out[k] = v; });
      if (fault?.cut !== undefined) {
        res.writeHead(answer.status, { ...out, 'content-length': bytes.length });
        res.write(bytes.subarray(0, fault.cut));
        setTimeout(() => req.socket.destroy(), 20);
        return;
      }
      res.writeHead(answer.status, { ...out, 'content-length': bytes.length });
      res.end(bytes);
    } finally {
      inFlight -= 1;
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    get maxInFlight() { return maxInFlight; },
    close: () => new Promise((resolve) => {
      closed = true;
      server.closeAllConnections();
      server.close(resolve);
    }),
  };
}
