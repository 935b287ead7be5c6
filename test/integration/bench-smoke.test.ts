// Smoke test of the benchmark harness (issue 4): the static server answers Range requests like a plain HTTP
// mirror, and `node dist/bench/run.js --quick resume --size 8` measures ceilings, runs, writes its JSON, and
// leaves no child process behind.

import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, expect, it } from 'vitest';
import { startStaticServer, type StaticServer } from '../../bench/static-server.js';

const RUN = fileURLToPath(new URL('../../dist/bench/run.js', import.meta.url));
const dirs: string[] = [];
const servers: StaticServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

it('the static server serves /<id> with Range, 416 past the end, 404 elsewhere, and honours `limit`', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kfetch-bench-static-'));
  dirs.push(dir);
  const file = join(dir, 'f.bin');
  const bytes = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
  writeFileSync(file, bytes);
  const s = await startStaticServer({ file, id: 'abc', limit: 900 });
  servers.push(s);
  const base = `http://${s.addr}`;
  const r = await fetch(`${base}/abc`, { headers: { Range: 'bytes=10-19' } });
  expect(r.status).toBe(206);
  expect(r.headers.get('content-range')).toBe('bytes 10-19/900');
  expect(Buffer.from(await r.arrayBuffer())).toEqual(bytes.subarray(10, 20));
  expect((await fetch(`${base}/abc`, { headers: { Range: 'bytes=900-950' } })).status).toBe(416);
  expect((await fetch(`${base}/other`)).status).toBe(404);
  const whole = await fetch(`${base}/abc`);
  expect(whole.status).toBe(200);
  expect((await whole.arrayBuffer()).byteLength).toBe(900);
  expect(s.requests()).toBe(3); // the 404 is not a request for the file
});

it('`bench --quick resume --size 8` runs, prints the table and writes the JSON report', async () => {
  const results = mkdtempSync(join(tmpdir(), 'kfetch-bench-results-'));
  dirs.push(results);
  const { stdout } = await promisify(execFile)(process.execPath, [RUN, '--quick', 'resume', '--size', '8', '--results', results, '--name', 'smoke'], {
    timeout: 90_000,
  });
  expect(stdout).toMatch(/\| resume \| kfetch resume/);
  const files = readdirSync(results);
  expect(files).toHaveLength(1);
  expect(files[0]).toMatch(/^smoke-.*\.json$/);
  const report = JSON.parse(readFileSync(join(results, files[0]!), 'utf8')) as {
    ceilings: Record<string, number>;
    rows: { scenario: string; skipped?: string; seconds?: number }[];
    targets: { met: boolean | null }[];
    machine: { cores: number };
  };
  expect(report.ceilings.md5PerCore).toBeGreaterThan(0);
  expect(report.ceilings.loopbackHttp).toBeGreaterThan(0);
  expect(report.machine.cores).toBeGreaterThan(0);
  expect(report.rows[0]?.skipped).toBeUndefined();
  expect(report.rows[0]?.seconds).toBeGreaterThan(0);
  expect(report.targets).toHaveLength(1);
}, 120_000);
