// d365meta:cache/http for the component, with Node's fetch, under the same policy as the Rust
// host (host/src/imports/http.rs): a request names a path under the base URL of the environment
// the host lent (anything else is refused before it is sent); no redirect is followed by fetch
// itself, only one within the origin, as another attempt; connect errors, 429 and 502/503/504 are
// retried with exponential backoff and full jitter honouring Retry-After, and resets and cut-off
// answers too for idempotent requests, within attempts and a time budget; a batch runs on a fixed
// number of slots where a waiting request frees its slot; answers are limited in size.
//
// This runs on the main thread; the component, in a worker, reaches it through a synchronous
// bridge (see bridge.js).

export const DEFAULTS = {
  connectTimeoutMs: 10_000,
  requestTimeoutMs: 300_000,
  retryBudgetMs: 180_000,
  maxAttempts: 6,
  backoffBaseMs: 250,
  backoffCapMs: 30_000,
  maxConcurrency: 16,
  maxBodyBytes: 256 * 1024 * 1024,
};

/** A base URL as the core normalises it: lower-case scheme and host, no default port, no trailing
 * slash, no query or fragment, no trailing /data or /Metadata. Throws an `invalid-input` error. */
export function normalizeBaseUrl(input) {
  const trimmed = String(input).trim();
  const shown = trimmed.length > 200 ? `${trimmed.slice(0, 200)}… (${trimmed.length} bytes)` : trimmed;
  const bad = (why) => Object.assign(new Error(`base URL ${JSON.stringify(shown)}: ${why}`), { kind: 'invalid-input' });
  if (!/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(trimmed)) throw bad('expected http:// or https://');
  let url;
  try {
    url = new URL(trimmed);
  } catch {
    throw bad('malformed host or port');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw bad('only http and https are supported');
  if (url.username || url.password) throw bad('credentials in the URL are not supported; the host supplies them');
  if (!url.hostname) throw bad('missing host');
  let path = url.pathname.replace(/\/+$/, '');
  const lower = path.toLowerCase();
  for (const suffix of ['/data', '/metadata']) {
    if (lower.endsWith(suffix)) {
      path = path.slice(0, path.length - suffix.length).replace(/\/+$/, '');
      break;
    }
  }
  return `${url.protocol}//${url.host}${path}`;
}

/** The URL of `path` under `baseUrl`, or a refusal in words. */
export function join(baseUrl, path) {
  if (!path.startsWith('/') || path.startsWith('//') || path.startsWith('/\\')) {
    return { refused: `${JSON.stringify(path)} is not a path under the environment (it must start with a single '/')` };
  }
  if (/[\u0000-\u001f\u007f\\#]/.test(path)) return { refused: `${JSON.stringify(path)} holds characters a path under the environment cannot` };
  let url;
  try {
    url = new URL(baseUrl + path);
  } catch (e) {
    return { refused: `${JSON.stringify(path)} does not make a URL under ${baseUrl} (${e.message})` };
  }
  const base = new URL(baseUrl);
  const basePath = base.pathname === '/' ? '' : base.pathname;
  const under = url.origin === base.origin && !url.username && !url.password
    && (basePath === '' || url.pathname === basePath || url.pathname.startsWith(`${basePath}/`));
  return under ? { url } : { refused: `${JSON.stringify(path)} leads outside ${baseUrl}` };
}

const size = (bytes) => (bytes < 1048576 ? `${bytes} bytes` : `${(bytes / 1048576).toFixed(1)} MiB`);

const sleep = (ms, signal) => new Promise((resolve) => {
  const timer = setTimeout(resolve, ms);
  signal?.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
});

function retryAfter(headers) {
  const value = headers.get('retry-after');
  if (!value) return null;
  const seconds = Number(value.trim());
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const when = Date.parse(value);
  return Number.isNaN(when) ? null : Math.max(0, when - Date.now());
}

const backoff = (o, attempt) => Math.random() * Math.min(o.backoffCapMs, o.backoffBaseMs * 2 ** Math.min(attempt - 1, 20));
const isRedirect = (s) => [301, 302, 303, 307, 308].includes(s);
const isRetryable = (s) => [429, 502, 503, 504].includes(s);
const fail = (tag, val) => (val === undefined ? { tag } : { tag, val });

/** Why a fetch threw, in the policy's terms. */
function classify(error) {
  const cause = error?.cause ?? error;
  const code = cause?.code ?? '';
  const detail = cause?.message ?? String(error);
  if (error?.name === 'TimeoutError' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT') {
    return { kind: code === 'UND_ERR_CONNECT_TIMEOUT' ? 'connect' : 'timeout', detail };
  }
  if (['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED'].includes(code)) return { kind: 'connect', detail };
  if (['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED'].includes(code) || /terminated|other side closed/i.test(detail)) {
    return { kind: 'interrupted', detail };
  }
  return { kind: 'other', detail };
}

/**
 * Places for requests in flight to one origin, shared by every batch and single request: the
 * component keeps several batches going at once (a collection's labels while the next collection
 * is fetched), and the bound is the service's, not a batch's.
 */
class Permits {
  #free;
  #waiting = [];

  constructor(count) {
    this.#free = count;
  }

  async acquire() {
    if (this.#free > 0) {
      this.#free -= 1;
      return;
    }
    await new Promise((resolve) => this.#waiting.push(resolve));
  }

  /** Hands the place to the longest waiter, if any. */
  release() {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#free += 1;
  }
}

/** Environments the component is lent, and the batches in flight. Counts what it sends. */
export class Network {
  #environments = new Map();
  #batches = new Map();
  #permits = new Map();
  #next = 1;
  stats = { requests: 0, retries: 0, bytesReceived: 0, refused: 0 };

  constructor(options = {}, cancelSignal) {
    this.options = { ...DEFAULTS, ...options };
    this.cancelSignal = cancelSignal;
  }

  /** Makes an environment for a base URL the user named; returns its id and normalised URL. */
  environment(baseUrl) {
    const normalized = normalizeBaseUrl(baseUrl);
    const id = this.#next++;
    this.#environments.set(id, { baseUrl: normalized, origin: new URL(normalized).origin });
    return { id, baseUrl: normalized };
  }

  forget(id) {
    this.#environments.delete(id);
  }

  /** One attempt of `exchange`, holding one of its origin's places while it is in flight. */
  async #attempt(exchange) {
    let permits = this.#permits.get(exchange.origin);
    if (!permits) {
      permits = new Permits(Math.max(1, this.options.maxConcurrency));
      this.#permits.set(exchange.origin, permits);
    }
    await permits.acquire();
    try {
      return await this.#step(exchange);
    } finally {
      permits.release();
    }
  }

  /** One request through its attempts: the component's `result<response, error>`. */
  async send(environmentId, request) {
    const env = this.#environments.get(environmentId);
    if (!env) return { err: fail('other', 'no such environment') };
    const joined = join(env.baseUrl, request.path);
    if (joined.refused) {
      this.stats.refused += 1;
      return { err: fail('denied', joined.refused) };
    }
    const exchange = { request, url: joined.url, origin: env.origin, attempt: 0, started: Date.now() };
    for (;;) {
      const step = await this.#attempt(exchange);
      if (step.done) return step.done;
      await sleep(step.again, this.cancelSignal);
    }
  }

  async #step(exchange) {
    if (this.cancelSignal?.aborted) return { done: { err: fail('cancelled') } };
    exchange.attempt += 1;
    const { request } = exchange;
    const o = this.options;
    const headers = {};
    for (const h of request.headers) {
      if (h.name.toLowerCase() !== 'authorization') headers[h.name] = h.value;
    }
    if (this.options.token) {
      let token;
      try {
        token = await this.options.token(exchange.origin);
      } catch (e) {
        return { done: { err: fail('other', `signing in to ${exchange.origin} failed: ${e?.message ?? e}`) } };
      }
      if (token) headers.authorization = `Bearer ${token}`;
    }
    this.stats.requests += 1;
    let outcome;
    try {
      const signals = [AbortSignal.timeout(o.requestTimeoutMs)];
      if (this.cancelSignal) signals.push(this.cancelSignal);
      const response = await fetch(exchange.url, {
        method: request.method.toUpperCase(),
        headers,
        body: request.body ? Buffer.from(request.body) : undefined,
        redirect: 'manual',
        signal: AbortSignal.any(signals),
      });
      outcome = { response, body: isRedirect(response.status) ? new Uint8Array() : await this.#readBody(response) };
    } catch (e) {
      if (this.cancelSignal?.aborted) return { done: { err: fail('cancelled') } };
      outcome = { failure: e.tooLarge ? { kind: 'too-large', detail: e.message } : classify(e) };
    }
    if (outcome.response && isRedirect(outcome.response.status)) return this.#redirect(exchange, outcome.response);
    let delay = null;
    if (outcome.response && isRetryable(outcome.response.status)) delay = retryAfter(outcome.response.headers) ?? backoff(o, exchange.attempt);
    else if (outcome.failure?.kind === 'connect' || (outcome.failure?.kind === 'interrupted' && request.idempotent)) delay = backoff(o, exchange.attempt);
    const done = () => ({ done: this.#finish(outcome, exchange.attempt) });
    if (delay === null) return done();
    if (exchange.attempt >= o.maxAttempts || Date.now() - exchange.started + delay > o.retryBudgetMs) return done();
    this.stats.retries += 1;
    return { again: delay };
  }

  async #readBody(response) {
    const limit = this.options.maxBodyBytes;
    const header = response.headers.get('content-length');
    const declared = header === null ? Number.NaN : Number(header);
    const tooLarge = (seen) => Object.assign(new Error(
      `the answer is ${size(seen)}${Number.isFinite(declared) ? '' : ' or more'}, over the ${size(limit)} limit for one response; raise it with the http.maxBodyBytes option`,
    ), { tooLarge: true });
    if (Number.isFinite(declared) && declared > limit) {
      await response.body?.cancel();
      throw tooLarge(declared);
    }
    const chunks = [];
    let received = 0;
    for await (const chunk of response.body ?? []) {
      received += chunk.length;
      if (received > limit) throw tooLarge(received);
      chunks.push(chunk);
    }
    this.stats.bytesReceived += received;
    const body = new Uint8Array(received);
    let at = 0;
    for (const chunk of chunks) {
      body.set(chunk, at);
      at += chunk.length;
    }
    return body;
  }

  #redirect(exchange, response) {
    const status = response.status;
    const from = exchange.url.href;
    const location = response.headers.get('location');
    if (!location) return { done: { err: fail('other', `${from} answered HTTP ${status} without a Location to go to`) } };
    let target;
    try {
      target = new URL(location, exchange.url);
    } catch {
      return { done: { err: fail('other', `${from} redirected (HTTP ${status}) to ${JSON.stringify(location)}, which is not a URL`) } };
    }
    if (target.origin !== exchange.origin || target.username || target.password) {
      this.stats.refused += 1;
      return { done: { err: fail('denied', `${from} redirected (HTTP ${status}) to ${target.href}, which is not the environment's origin ${exchange.origin}; redirects are followed only within it`) } };
    }
    if (exchange.request.method === 'post' && status >= 301 && status <= 303) {
      return { done: { err: fail('denied', `${from} redirected a POST with HTTP ${status}, which would turn it into a GET to ${target.href}; not followed`) } };
    }
    if (exchange.attempt >= this.options.maxAttempts) return { done: { err: fail('other', `${from}: too many redirects (${exchange.attempt} attempts)`) } };
    exchange.url = target;
    return { again: 0 };
  }

  #finish(outcome, attempts) {
    const after = (d) => (attempts > 1 ? `${d}, after ${attempts} attempts` : d);
    if (outcome.response) {
      const headers = [];
      outcome.response.headers.forEach((value, name) => headers.push({ name, value }));
      return { ok: { status: outcome.response.status, headers, body: outcome.body, attempts } };
    }
    const { kind, detail } = outcome.failure;
    switch (kind) {
      case 'connect': return { err: fail('connect', after(detail)) };
      case 'interrupted': return { err: fail('interrupted', after(detail)) };
      case 'timeout': return { err: fail('timeout', `${detail} (limit ${this.options.requestTimeoutMs / 1000} s per attempt)`) };
      case 'too-large': return { err: fail('too-large', detail) };
      default: return { err: fail('other', detail) };
    }
  }

  /** Starts a batch; results are taken with `next`. */
  start(environmentId, requests) {
    const id = this.#next++;
    const results = [];
    const batch = { results, waiters: [], remaining: requests.length, aborted: new AbortController() };
    this.#batches.set(id, batch);
    const deliver = (index, outcome) => {
      results.push({ index, outcome: outcome.ok ? { tag: 'ok', val: outcome.ok } : { tag: 'err', val: outcome.err } });
      for (const wake of batch.waiters.splice(0)) wake();
    };
    const env = this.#environments.get(environmentId);
    const fresh = [];
    requests.forEach((request, index) => {
      const joined = env ? join(env.baseUrl, request.path) : { refused: 'no such environment' };
      if (joined.refused) {
        this.stats.refused += 1;
        deliver(index, { err: fail('denied', joined.refused) });
      } else {
        fresh.push({ index, exchange: { request, url: joined.url, origin: env.origin, attempt: 0, started: Date.now() } });
      }
    });
    const waiting = [];
    const nextJob = () => {
      const now = Date.now();
      let due = -1;
      waiting.forEach((w, i) => { if (w.readyAt <= now && (due < 0 || w.readyAt < waiting[due].readyAt)) due = i; });
      if (due >= 0) return waiting.splice(due, 1)[0];
      return fresh.shift() ?? null;
    };
    const worker = async () => {
      for (;;) {
        if (batch.aborted.signal.aborted) return;
        const job = nextJob();
        if (!job) {
          if (waiting.length === 0) return;
          const earliest = Math.min(...waiting.map((w) => w.readyAt));
          await sleep(Math.min(Math.max(0, earliest - Date.now()), 50), batch.aborted.signal);
          continue;
        }
        const step = await this.#attempt(job.exchange);
        if (step.done) deliver(job.index, step.done);
        else waiting.push({ ...job, readyAt: Date.now() + step.again });
      }
    };
    const slots = Math.max(1, Math.min(this.options.maxConcurrency, fresh.length));
    for (let i = 0; i < slots; i += 1) worker();
    return id;
  }

  /** Waits for the next result, gathers more for up to `lingerMs` (at most `max`), returns them. */
  async next(batchId, max, lingerMs) {
    const batch = this.#batches.get(batchId);
    if (!batch || batch.remaining === 0) return [];
    const arrived = () => new Promise((resolve) => batch.waiters.push(resolve));
    while (batch.results.length === 0) await arrived();
    const deadline = Date.now() + lingerMs;
    while (batch.results.length < Math.min(Math.max(1, max), batch.remaining) && Date.now() < deadline) {
      await Promise.race([arrived(), sleep(deadline - Date.now())]);
    }
    const taken = batch.results.splice(0, Math.max(1, max));
    batch.remaining -= taken.length;
    return taken;
  }

  /** Stops what a batch has not answered. */
  drop(batchId) {
    const batch = this.#batches.get(batchId);
    if (batch) {
      batch.aborted.abort();
      this.#batches.delete(batchId);
    }
  }
}
