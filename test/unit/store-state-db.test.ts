// The state database against a real SQLite file: checkpoints, provenance, bans, corruption handling, home lock.
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, writeSync, closeSync, readdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { StateDb, STATE_FILE } from '../../src/store/state-db.js';
import { lockHome } from '../../src/store/home-lock.js';
import { Bitfield } from '../../src/util/bitfield.js';
import { KfetchError } from '../../src/errors.js';

const homes: string[] = [];
const dbs: StateDb[] = [];
function home(): string {
  const h = mkdtempSync(join(tmpdir(), 'kfetch-store-'));
  homes.push(h);
  return h;
}
function open(h: string): StateDb {
  const db = StateDb.open(h);
  dbs.push(db);
  return db;
}
afterEach(() => {
  for (const d of dbs.splice(0)) d.close();
  for (const h of homes.splice(0)) rmSync(h, { recursive: true, force: true });
});

const sample = {
  swarmId: 'a'.repeat(64),
  filehash: 'a'.repeat(64),
  filename: 'f.bin',
  filesize: 10_000,
  blockSize: 4096,
  blockCount: 3,
  kascade: '{}',
  dataPath: '/tmp/f.bin',
};

describe('state database', () => {
  it('adds a download with no complete blocks and finds it by id, hash prefix and name', () => {
    const db = open(home());
    const d = db.addDownload(sample);
    expect(d.complete.count).toBe(0);
    expect(d.status).toBe('downloading');
    expect(db.findDownloads(String(d.id)).map((x) => x.id)).toEqual([d.id]);
    expect(db.findDownloads('aaaaaaaa').map((x) => x.id)).toEqual([d.id]);
    expect(db.findDownloads('f.bin').map((x) => x.id)).toEqual([d.id]);
    expect(db.findDownloads('nope')).toEqual([]);
  });

  it('persists a checkpoint across reopen, with provenance', () => {
    const h = home();
    const db = open(h);
    const d = db.addDownload(sample);
    const bits = new Bitfield(3);
    bits.set(0);
    bits.set(2);
    db.checkpoint(d.id, { complete: bits, blocks: [{ idx: 0, peer: '127.0.0.1:1', at: 1 }, { idx: 2, peer: '127.0.0.1:2', at: 2 }], dataSize: 10_000, dataMtimeMs: 123.5, dataDev: 1, dataIno: 2, bytesFetched: 5904 });
    db.close();
    const again = open(h);
    const r = again.getDownload(d.id)!;
    expect([r.complete.has(0), r.complete.has(1), r.complete.has(2)]).toEqual([true, false, true]);
    expect(r.dataSize).toBe(10_000);
    expect(r.dataMtimeMs).toBe(123.5);
    expect(again.provenance(d.id).map((p) => [p.idx, p.peer])).toEqual([[0, '127.0.0.1:1'], [2, '127.0.0.1:2']]);
  });

  it('records bad blocks and bans with evidence', () => {
    const db = open(home());
    const d = db.addDownload(sample);
    db.recordBadBlock(d.id, { idx: 1, peer: '127.0.0.1:9', expected: 'a'.repeat(32), actual: 'b'.repeat(32) });
    db.banPeer(d.id, '127.0.0.1:9', 'hash mismatch on block 1');
    expect(db.getDownload(d.id)!.badBlocks).toBe(1);
    expect(db.badBlocks(d.id)[0]).toMatchObject({ idx: 1, peer: '127.0.0.1:9' });
    expect(db.peers(d.id)[0]).toMatchObject({ addr: '127.0.0.1:9', banReason: 'hash mismatch on block 1' });
  });

  it('refuses a second download of the same swarm id', () => {
    const db = open(home());
    db.addDownload(sample);
    expect(() => db.addDownload(sample)).toThrow(KfetchError);
  });

  it('moves a database with a damaged header aside and says where (KF_E_STATE_CORRUPT)', () => {
    const h = home();
    const db = open(h);
    db.addDownload(sample);
    db.close();
    const fd = openSync(join(h, STATE_FILE), 'r+');
    writeSync(fd, Buffer.alloc(16, 0x41), 0, 16, 0);
    closeSync(fd);
    let err: unknown;
    try {
      StateDb.open(h);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KfetchError);
    expect((err as KfetchError).code).toBe('KF_E_STATE_CORRUPT');
    expect(readdirSync(h).some((f) => f.startsWith(`${STATE_FILE}.corrupt-`))).toBe(true);
    // A fresh database can be opened afterwards.
    expect(open(h).listDownloads()).toEqual([]);
  });
});

describe('home lock', () => {
  it('refuses a second holder while the first process lives, naming its pid', async () => {
    const h = home();
    const child = spawn(process.execPath, ['-e', `require('fs').writeFileSync(${JSON.stringify(join(h, 'kfetch.lock'))}, process.pid + '\\n'); setTimeout(() => {}, 10000)`]);
    try {
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline) {
        try {
          if (readdirSync(h).includes('kfetch.lock')) break;
        } catch { /* not yet */ }
        await new Promise((r) => setTimeout(r, 20));
      }
      let err: unknown;
      try {
        lockHome(h);
      } catch (e) {
        err = e;
      }
      expect((err as KfetchError).code).toBe('KF_E_HOME_LOCKED');
      expect((err as KfetchError).message).toContain(String(child.pid));
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('takes over a stale lock left by a dead process, and releases it', () => {
    const h = home();
    writeFileSync(join(h, 'kfetch.lock'), '999999999\n');
    const lock = lockHome(h);
    expect(() => lockHome(h)).not.toThrow(); // same pid: re-entrant for this process
    lock.release();
    expect(readdirSync(h)).not.toContain('kfetch.lock');
  });
});
