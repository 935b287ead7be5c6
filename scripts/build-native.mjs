// Compiles the md5x addon (src/native/md5x, multi-buffer MD5) with node-gyp. The package's `install` script
// (--force: always rebuild) and the first step of `npm run build` (a checkout or worktree that never ran `npm ci`
// gets the addon too; an up-to-date build that loads is left alone). Optional by design: on any failure it prints
// one warning line and exits 0, and the workers hash with OpenSSL (workers/md5-multi.ts). Node's headers are taken
// from next to the node binary when they are there, so the build never downloads them (the machines kfetch runs
// on may reach nothing but the npm registry).

import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('../src/native/md5x/', import.meta.url));
/** A whole build takes seconds; a node-gyp stuck on a header download must not hang `npm ci`. */
const TIMEOUT_MS = 180_000;

function warn(why) {
  process.stderr.write(`kfetch: multi-buffer MD5 addon not built (${why}); block hashes use OpenSSL instead\n`);
  process.exit(0);
}

/** node-gyp's entry script: npm's own (npm_config_node_gyp, set for lifecycle scripts), else the one npm bundles. */
function findNodeGyp() {
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm !== undefined && fromNpm !== '' && existsSync(fromNpm)) return fromNpm;
  const candidates = [];
  if (process.env.npm_execpath) candidates.push(join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  candidates.push(join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  for (const c of candidates) if (existsSync(c)) return c;
  try {
    return createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
  } catch {
    return undefined;
  }
}

/** The built addon is newer than its sources and loads: nothing to do (`npm run build` calls this every time). */
function upToDate(built) {
  if (process.argv.includes('--force') || !existsSync(built)) return false;
  const t = statSync(built).mtimeMs;
  if (['md5x.c', 'binding.gyp'].some((f) => statSync(join(dir, f)).mtimeMs > t)) return false;
  try {
    return Array.isArray(createRequire(import.meta.url)(built).kernels);
  } catch {
    return false;
  }
}

try {
  if (process.env.KFETCH_SKIP_NATIVE === '1') warn('KFETCH_SKIP_NATIVE=1');
  if (process.arch !== 'x64') warn(`no SIMD kernel for ${process.arch}`);
  if (!existsSync(join(dir, 'binding.gyp'))) warn(`${dir}binding.gyp is missing`);
  const built = join(dir, 'build', 'Release', 'md5x.node');
  if (upToDate(built)) process.exit(0);
  const gyp = findNodeGyp();
  if (gyp === undefined) warn('node-gyp not found');
  const args = [gyp, 'rebuild', '--release'];
  // Headers installed with node (e.g. /usr/include/node): point node-gyp there instead of its download cache.
  const prefix = resolve(dirname(process.execPath), '..');
  if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
  const r = spawnSync(process.execPath, args, { cwd: dir, encoding: 'utf8', timeout: TIMEOUT_MS, env: process.env });
  if (r.error !== undefined) warn(`node-gyp: ${r.error.message}`);
  if (r.status !== 0) {
    const lines = `${r.stderr}\n${r.stdout}`.split('\n').filter((l) => /error|not ok/i.test(l));
    warn(`node-gyp exited with ${r.status ?? r.signal}${lines.length > 0 ? `: ${lines[0].trim().slice(0, 200)}` : ''}`);
  }
  if (!existsSync(built)) warn('node-gyp left no build/Release/md5x.node');
  // Load it once here, so a binary that cannot load is reported now rather than found by the first download.
  const addon = createRequire(import.meta.url)(built);
  if (!Array.isArray(addon.kernels)) warn('the built addon lists no kernels');
} catch (err) {
  warn(err instanceof Error ? err.message : String(err));
}
