// What the benchmarks share: their command-line options and the release build they measure.

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from '../test/support.js';

/** A numeric `--name N` option, or `fallback`. */
export const option = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
};
export const asJson = process.argv.includes('--json');
/** Prints progress and results unless `--json` asks for the summary alone. */
export const say = (...a) => { if (!asJson) console.log(...a); };

function cargo(args) {
  const r = spawnSync(process.env.CARGO ?? 'cargo', args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cargo ${args.join(' ')} failed`);
  return r.stdout;
}

/** Builds the release command line and the in-process lookup example; gives their paths. */
export function releaseBuild() {
  const target = JSON.parse(cargo(['metadata', '--format-version', '1', '--no-deps'])).target_directory;
  say('building the release command line and lookup example…');
  cargo(['build', '--release', '--locked', '--quiet', '-p', 'd365meta-cli']);
  cargo(['build', '--release', '--locked', '--quiet', '-p', 'd365meta', '--example', 'lookup_latency']);
  return { cli: join(target, 'release', 'd365meta'), lookupExample: join(target, 'release', 'examples', 'lookup_latency') };
}
