// Builds what the Node host runs: the core component, exported by the command line from the very
// bytes the Rust host embeds, and the sandbox probe; then transpiles each with jco into build/.
// A transpilation is redone only when its component's bytes changed.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = join(here, '..');
const root = join(pkg, '..');
const build = join(pkg, 'build');

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { cwd: root, stdio: ['ignore', options.capture ? 'pipe' : 'inherit', 'inherit'], encoding: 'utf8' });
  if (result.error) throw new Error(`could not run ${command}: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed with exit code ${result.status}`);
  return result.stdout;
}

const cargo = process.env.CARGO ?? 'cargo';
const targetDir = JSON.parse(run(cargo, ['metadata', '--format-version', '1', '--no-deps'], { capture: true })).target_directory;
mkdirSync(build, { recursive: true });

// The core: the same bytes the Rust host embeds.
const core = join(build, 'd365meta.wasm');
run(cargo, ['run', '--locked', '--quiet', '-p', 'd365meta-cli', '--', 'export-component', core]);

// The probe, built as tests/build.rs builds it (same target directory, so cargo test's build is reused).
const probeTarget = join(targetDir, 'd365meta-probe-wasm');
run(cargo, ['rustc', '--locked', '--quiet', '-p', 'd365meta-probe', '--lib', '--crate-type', 'cdylib', '--target', 'wasm32-wasip2', '--profile', 'release', '--target-dir', probeTarget]);
const probe = join(build, 'probe.wasm');
copyFileSync(join(probeTarget, 'wasm32-wasip2', 'release', 'd365meta_probe.wasm'), probe);

const jco = join(pkg, 'node_modules', '@bytecodealliance', 'jco', 'dist', 'jco.js');
for (const [wasm, name, out] of [[core, 'd365meta', 'core'], [probe, 'probe', 'probe']]) {
  const digest = createHash('sha256').update(readFileSync(wasm)).digest('hex');
  const dir = join(build, out);
  const stamp = join(dir, '.source-sha256');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === digest) continue;
  rmSync(dir, { recursive: true, force: true });
  run(process.execPath, [jco, 'transpile', wasm, '--instantiation', 'async', '--name', name, '--no-typescript', '--quiet', '-o', dir]);
  writeFileSync(stamp, digest);
}
// Where the tests find the command line (its simulator serves them, and it is the Rust host they compare with).
writeFileSync(join(build, 'paths.json'), `${JSON.stringify({ cli: join(targetDir, 'debug', process.platform === 'win32' ? 'd365meta.exe' : 'd365meta') }, null, 2)}\n`);
console.log(`built ${join('node', 'build')}: core ${readFileSync(core).length} bytes, probe ${readFileSync(probe).length} bytes`);
