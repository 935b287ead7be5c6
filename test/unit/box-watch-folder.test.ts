// The box's watch-folder rules: which names are kascades, the diff between two scans, files too fresh to read,
// plus the CLI parsers for --max-upload and --metrics-allow and the /metrics access list.

import { mkdtempSync, rmSync, utimesSync, writeFileSync, mkdirSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError } from 'commander';
import { afterEach, describe, expect, it } from 'vitest';
import { diffFolder, isKascadeName, scanFolder } from '../../src/box/watch-folder.js';
import { cidrArg, rateArg } from '../../src/cli/arg-parsers.js';
import { accessList } from '../../src/peer/access-list.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('watch folder', () => {
  it('takes *.kascade and *.json (any case), not dotfiles or other names', () => {
    expect(['a.kascade', 'B.JSON', 'c.Kascade'].every(isKascadeName)).toBe(true);
    expect(['a.txt', '.hidden.json', 'a.json.part', 'kascade', 'a.kascade~'].some(isKascadeName)).toBe(false);
  });

  it('diffs two scans into added, changed (size or mtime) and removed; unsettled files are neither', () => {
    const before = new Map([
      ['/w/a', { size: 1, mtimeMs: 1 }],
      ['/w/b', { size: 2, mtimeMs: 2 }],
      ['/w/c', { size: 3, mtimeMs: 3 }],
      ['/w/d', { size: 4, mtimeMs: 4 }],
    ]);
    const after = new Map([
      ['/w/a', { size: 1, mtimeMs: 1 }],
      ['/w/b', { size: 2, mtimeMs: 9 }],
      ['/w/e', { size: 5, mtimeMs: 5 }],
    ]);
    expect(diffFolder(before, after, ['/w/d'])).toEqual({ added: ['/w/e'], changed: ['/w/b'], removed: ['/w/c'], unsettled: ['/w/d'] });
  });

  it('scans regular files and symlinks to them, and holds back files modified within settleMs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kfetch-watch-'));
    dirs.push(dir);
    // Fixed times and a fixed "now": how long the scan itself takes on a loaded machine cannot move a file
    // across the settle line (issue 10).
    const now = Date.parse('2026-01-01T00:00:00Z');
    writeFileSync(join(dir, 'old.kascade'), '{}');
    utimesSync(join(dir, 'old.kascade'), new Date(now - 60_000), new Date(now - 60_000));
    writeFileSync(join(dir, 'fresh.json'), '{');
    utimesSync(join(dir, 'fresh.json'), new Date(now - 1_000), new Date(now - 1_000));
    mkdirSync(join(dir, 'dir.json'));
    writeFileSync(join(dir, 'notes.txt'), 'x');
    symlinkSync(join(dir, 'old.kascade'), join(dir, 'link.kascade'));
    const { files, unsettled } = await scanFolder(dir, 5_000, now);
    expect([...files.keys()].sort()).toEqual([join(dir, 'link.kascade'), join(dir, 'old.kascade')]);
    expect(unsettled).toEqual([join(dir, 'fresh.json')]);
  });
});

describe('--max-upload and --metrics-allow', () => {
  it('reads rates with 1024-based suffixes and refuses nonsense', () => {
    expect(rateArg('0')).toBe(0);
    expect(rateArg('500000')).toBe(500_000);
    expect(rateArg('512K')).toBe(512 * 1024);
    expect(rateArg('10M')).toBe(10 * 1024 * 1024);
    expect(rateArg('1.5GiB/s')).toBe(1.5 * 1024 ** 3);
    for (const bad of ['', '-1', '10X', '1e9', 'fast', '100']) expect(() => rateArg(bad)).toThrow(InvalidArgumentError);
  });

  it('collects addresses and CIDR blocks; the access list always admits loopback', () => {
    const list = cidrArg('10.0.0.0/8', cidrArg('2001:db8::1', undefined));
    expect(list).toEqual(['2001:db8::1', '10.0.0.0/8']);
    expect(() => cidrArg('10.0.0.0/33', undefined)).toThrow(InvalidArgumentError);
    expect(() => cidrArg('example.com', undefined)).toThrow(InvalidArgumentError);
    const allowed = accessList(list);
    expect(allowed('127.0.0.1')).toBe(true);
    expect(allowed('::1')).toBe(true);
    expect(allowed('::ffff:10.1.2.3')).toBe(true);
    expect(allowed('10.255.0.1')).toBe(true);
    expect(allowed('2001:db8::1')).toBe(true);
    expect(allowed('2001:db8::2')).toBe(false);
    expect(allowed('192.168.1.1')).toBe(false);
    expect(allowed('garbage')).toBe(false);
    expect(accessList([])('203.0.113.9')).toBe(false);
  });
});
