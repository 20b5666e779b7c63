// Values between the JSON shape every d365meta host speaks (the command line's --json: WIT names in
// snake case, variants as {"kind": ...}, numbers as numbers) and the values jco's bindings use
// (camelCase fields, bigint for 64-bit integers, undefined for an absent option, variants as
// {tag, val}). One pair of functions for every record, so no record is written out by hand here.

const snakeToCamel = (name) => name.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
const camelToSnake = (name) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** A component value to the host-neutral JSON shape. */
export function fromWit(value) {
  if (value === undefined || value === null) return null;
  if (typeof value === 'bigint') return Number(value);
  if (value instanceof Uint8Array) return Array.from(value);
  // Lists of other numbers come as typed arrays (64-bit ones of bigint).
  if (ArrayBuffer.isView(value)) return Array.from(value, Number);
  if (Array.isArray(value)) return value.map(fromWit);
  if (typeof value !== 'object') return value;
  if (isVariant(value)) {
    if (!('val' in value) || value.val === undefined) return { kind: value.tag };
    const payload = fromWit(value.val);
    const isRecord = payload !== null && typeof payload === 'object' && !Array.isArray(payload);
    // A record payload sits beside the kind, unless it has a kind of its own (as the Rust host does).
    if (isRecord && Object.keys(payload)[0] !== 'kind') return { kind: value.tag, ...payload };
    return { kind: value.tag, value: payload };
  }
  const out = {};
  for (const [key, field] of Object.entries(value)) out[camelToSnake(key)] = fromWit(field);
  return out;
}

/** The host-neutral JSON shape to a component value. Fields named in `bigints` become bigint. */
export function toWit(value, bigints = new Set()) {
  if (value === null || value === undefined) return undefined;
  if (Array.isArray(value)) return value.map((v) => toWit(v, bigints));
  if (typeof value !== 'object') return value;
  if (typeof value.kind === 'string' && Object.keys(value).length <= 2 && ('value' in value || Object.keys(value).length === 1)) {
    return 'value' in value ? { tag: value.kind, val: toWit(value.value, bigints) } : { tag: value.kind };
  }
  const out = {};
  for (const [key, field] of Object.entries(value)) {
    out[snakeToCamel(key)] = bigints.has(key) && typeof field === 'number' ? BigInt(field) : toWit(field, bigints);
  }
  return out;
}

function isVariant(value) {
  const keys = Object.keys(value);
  return typeof value.tag === 'string' && keys.every((k) => k === 'tag' || k === 'val');
}
