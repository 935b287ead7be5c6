// The command line as a user meets it: help for every command and flag, usage errors (exit 2), one-line errors
// naming the file and field with the exit code of their class, --version, and a second process on one --home.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { killAllChildren, runCli, startCli, tempHome } from '../helpers/cli.js';
import { kascadeJsonFor, payloadBytes, writeKascade } from '../helpers/make-file.js';
import { startAdversarialPeer } from '../helpers/adversarial-peer.js';

const dirs: string[] = [];
afterEach(() => {
  killAllChildren();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'kfetch-cli-'));
  dirs.push(d);
  return d;
}

const COMMANDS = ['create', 'tracker', 'seed', 'get', 'resume', 'status', 'demo'];

describe('kfetch command line', () => {
  it('lists every command in --help and prints the version', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    for (const c of COMMANDS) expect(r.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
    const v = await runCli(['--version']);
    expect(v.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it.each(COMMANDS)('%s --help explains every flag', async (c) => {
    const r = await runCli([c, '--help']);
    expect(r.code).toBe(0);
    const flagLines = r.stdout.split('\n').filter((l) => /^  (-\w, )?--[\w-]+/.test(l));
    expect(flagLines.length).toBeGreaterThan(0);
    // Each flag line carries a description after the flag itself.
    for (const l of flagLines) expect(l.trim().split(/\s{2,}/).length, l).toBeGreaterThanOrEqual(2);
  });

  it('exits 2 on a usage error with a message naming the option', async () => {
    const r = await runCli(['get', 'x.json', '--max-in-flight', 'lots']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--max-in-flight');
    const u = await runCli(['frobnicate']);
    expect(u.code).toBe(2);
  });

  it('reports a bad .kascade in one line naming the file and the field, exit 3, and creates nothing', async () => {
    const d = tmp();
    const bad = join(d, 'bad.json');
    writeFileSync(bad, JSON.stringify({ filename: '../evil', filesize: 1, filehash: 'a'.repeat(64), tracker: 'http://127.0.0.1:1/x', blockhashes: { '4096': ['b'.repeat(32)] } }));
    const home = join(d, 'home');
    const r = await runCli(['get', bad, '--out', join(d, 'out')], { home });
    expect(r.code).toBe(3);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(bad);
    expect(lines[0]).toContain('filename');
    expect(lines[0]).toContain('KF_E_KASCADE_NAME');
    const st = await runCli(['status', '--json'], { home });
    expect(st.stdout.trim()).toBe('[]');
  });

  it('refuses a second process on the same --home with KF_E_HOME_LOCKED (exit 5)', async () => {
    const d = tmp();
    const bytes = payloadBytes(0, 64 * 1024, 'lock');
    const k = kascadeJsonFor(bytes, { filename: 'l.bin', tracker: 'http://127.0.0.1:1/x', blockSizes: [4096] });
    const path = writeKascade(join(d, 'l.json'), k);
    // A peer that never answers keeps the first download running.
    const p = await startAdversarialPeer({ bytes, id: k.filehash as string, blockSize: 4096, mode: () => 'stall-headers' });
    try {
      const home = tempHome();
      dirs.push(home);
      const first = startCli(['get', path, '--out', join(d, 'a'), '--peer', p.addr, '--json'], { home });
      await first.waitForLine(/"event":"start"/);
      const second = await runCli(['get', path, '--out', join(d, 'b'), '--peer', p.addr], { home });
      expect(second.code).toBe(5);
      expect(second.stderr).toContain('KF_E_HOME_LOCKED');
      expect(second.stderr).toContain(String(first.child.pid));
      first.child.kill('SIGTERM');
      expect(await first.exited()).toBe(143);
    } finally {
      await p.close();
    }
  });
});
