// Issue 14 review, with real kfetch processes and sockets on 127.0.0.1: `KFETCH_NO_WIRE=1` keeps every kfetch
// client off the peer wire (docs/spec-peer-wire.md "Discovery"), the seeding box's downloads included; a wire that
// stalls while the peer's HTTP works costs one deadline, not the download.

import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startAdversarialPeer, type AdversarialPeer } from '../helpers/adversarial-peer.js';
import { killAllChildren, runCli, startCli, tempHome } from '../helpers/cli.js';
import { ReplyDecoder, WireStatus, encodeHello, encodeRequest } from '../../src/peer/wire-frames.js';
import { kascadeJsonFor, payloadBytes, writeKascade } from '../helpers/make-file.js';
import { until, within } from '../helpers/wait.js';

const BLOCK = 64 * 1024;
const SIZE = 1024 * 1024 + 333;
const dirs: string[] = [];
const peers: AdversarialPeer[] = [];
const servers: Server[] = [];
const sockets = new Set<Socket>();

afterEach(async () => {
  killAllChildren();
  for (const p of peers.splice(0)) await p.close();
  for (const s of sockets) s.destroy();
  sockets.clear();
  for (const s of servers.splice(0)) await new Promise<void>((res) => s.close(() => res()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('wire review (issue 14): KFETCH_NO_WIRE=1', () => {
  it('keeps the box (seed --watch) off an advertised wire: HTTP only, the wire port never dialled', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kfetch-nowire-box-'));
    dirs.push(dir);
    const bytes = payloadBytes(0, SIZE, 'no-wire-box');
    // A "wire" port that counts the connections it gets (and answers nothing).
    let dials = 0;
    const wire = createServer((s) => {
      dials++;
      sockets.add(s);
      s.on('error', () => undefined);
    });
    servers.push(wire);
    await new Promise<void>((res) => wire.listen(0, '127.0.0.1', () => res()));
    const json = kascadeJsonFor(bytes, { filename: 'payload.bin', tracker: 'http://127.0.0.1:1/peers/x.json', blockSizes: [BLOCK] });
    const p = await startAdversarialPeer({
      bytes,
      id: json.filehash as string,
      blockSize: BLOCK,
      bitfield: true,
      headers: { 'X-Kascade-Wire': String((wire.address() as { port: number }).port) },
    });
    peers.push(p);
    const watch = join(dir, 'watch');
    mkdirSync(watch);
    writeKascade(join(watch, 'payload.json'), { ...json, peers: [p.addr] });
    const box = startCli(['seed', '--watch', watch, '--data', join(dir, 'data'), '--port', '0'], { env: { KFETCH_NO_WIRE: '1' } });
    await box.waitForLine(/^listening on http:\/\/\S+$/);
    const out = join(dir, 'data', 'payload.bin');
    await until(
      () => {
        try {
          return sha256(readFileSync(out)) === sha256(bytes);
        } catch {
          return false;
        }
      },
      30_000,
      'the box downloaded the file',
    );
    expect(new Set(p.requests).size).toBeGreaterThan(0);
    expect(dials).toBe(0);
  }, 60_000);
});

describe('wire review (issue 14): a wire that stalls or cuts its replies mid-body while HTTP works', () => {
  it.each([
    ['stalls (after one 30 s deadline: an unmeasured peer\'s)', false],
    ['cuts the connection (at once)', true],
  ])('get: a wire that %s is given up for HTTP; the file arrives whole and verified', async (_what, cut) => {
    const dir = mkdtempSync(join(tmpdir(), 'kfetch-stall-'));
    dirs.push(dir);
    const bytes = payloadBytes(0, SIZE, 'stalling-wire');
    const json = kascadeJsonFor(bytes, { filename: 'payload.bin', tracker: 'http://127.0.0.1:1/peers/x.json', blockSizes: [BLOCK] });
    const kascadePath = writeKascade(join(dir, 'payload.json'), json);
    // A wire that says hello, answers the first request of a connection with its header and half its body, then
    // stalls or closes (the seeder's HTTP port works).
    let dials = 0;
    const wire = createServer((s) => {
      dials++;
      sockets.add(s);
      s.on('error', () => undefined);
      let got = 0;
      s.on('data', (d: Buffer) => {
        const before = got;
        got += d.length;
        if (before < 8 && got >= 8) s.write(Buffer.from([...Buffer.from('KWIRE', 'latin1'), 1, 0, 0]));
        if (before < 56 && got >= 56) {
          const h = Buffer.alloc(16);
          h.writeUInt32BE(1, 0);
          h.writeBigUInt64BE(BigInt(BLOCK), 8);
          const half = Buffer.concat([h, Buffer.alloc(BLOCK / 2, 0x55)]);
          if (cut) s.end(half);
          else s.write(half);
        }
      });
    });
    servers.push(wire);
    await new Promise<void>((res) => wire.listen(0, '127.0.0.1', () => res()));
    const p = await startAdversarialPeer({
      bytes,
      id: json.filehash as string,
      blockSize: BLOCK,
      bitfield: true,
      headers: { 'X-Kascade-Wire': String((wire.address() as { port: number }).port) },
    });
    peers.push(p);
    const out = join(dir, 'out');
    // Before the fixes every request went to the wire again: a stalled one never delivered a block (KF_E_NO_PEERS),
    // a cutting one got the peer dropped after 8 failures.
    const r = await runCli(['get', kascadePath, '--out', out, '--peer', p.addr, '--no-serve', '--json', '--timeout', '90'], { home: tempHome(), timeoutMs: 100_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(sha256(readFileSync(join(out, 'payload.bin')))).toBe(sha256(bytes));
    expect(dials).toBeGreaterThan(0); // the wire was tried
    expect(new Set(p.requests).size).toBe(Math.ceil(SIZE / BLOCK)); // and every block then came over HTTP
  }, 90_000);
});

describe('wire review (issue 14): a seeder still downloading serves only verified blocks over the wire', () => {
  it('get --seed --wire-port: probed block by block while it downloads, every ok reply is the right bytes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kfetch-partial-wire-'));
    dirs.push(dir);
    const size = 4 * 1024 * 1024 + 777;
    const n = Math.ceil(size / BLOCK);
    const bytes = payloadBytes(0, size, 'partial-wire');
    const json = kascadeJsonFor(bytes, { filename: 'payload.bin', tracker: 'http://127.0.0.1:1/peers/x.json', blockSizes: [BLOCK] });
    const kascadePath = writeKascade(join(dir, 'payload.json'), json);
    mkdirSync(join(dir, 'a'));
    writeFileSync(join(dir, 'a', 'payload.bin'), bytes);
    // A: the source, slow enough (1 MiB/s) that B is seen partway.
    const a = startCli(['seed', kascadePath, '--data', join(dir, 'a'), '--port', '0', '--max-upload', '1M']);
    const [, aAddr] = await a.waitForLine(/^listening on http:\/\/(\S+)$/);
    // B: downloads from A and serves what it holds, on the wire too.
    const b = startCli(['--log-json', 'get', kascadePath, '--out', join(dir, 'b'), '--peer', aAddr!, '--json', '--seed', '--port', '0', '--wire-port', '0', '--timeout', '60']);
    let wirePort: number | undefined;
    await until(
      () => {
        const m = /"wirePort":(\d+)/.exec(b.stderr());
        wirePort = m === null ? undefined : Number(m[1]);
        return wirePort !== undefined;
      },
      15_000,
      'B serving the wire',
    );
    const probe = connect({ host: '127.0.0.1', port: wirePort! });
    sockets.add(probe);
    probe.on('error', () => undefined);
    const awaited: { id: number; length: number; i: number }[] = [];
    const counts = { ok: 0, notHeld: 0, wrong: 0, other: 0 };
    let replied: (() => void) | undefined;
    const decoder = new ReplyDecoder((id) => (awaited[0]?.id === id ? { length: awaited[0].length } : undefined));
    probe.on('data', (chunk: Buffer) =>
      decoder.feed(chunk, (r) => {
        const { i } = awaited.shift()!;
        if (r.status === WireStatus.ok) {
          counts.ok++;
          if (!r.body.equals(bytes.subarray(i * BLOCK, Math.min(size, (i + 1) * BLOCK)))) counts.wrong++;
        } else if (r.status === WireStatus.notHeld) counts.notHeld++;
        else counts.other++;
        replied?.();
      }),
    );
    probe.write(encodeHello());
    const done = (): boolean => b.stdout().includes('"event":"done"');
    let id = 0;
    while (!done()) {
      for (let i = 0; i < n && !done(); i++) {
        awaited.push({ id: ++id, length: Math.min(size, (i + 1) * BLOCK) - i * BLOCK, i });
        const got = new Promise<void>((r) => (replied = r));
        probe.write(encodeRequest({ requestId: id, fileId: json.filehash as string, blockSize: BLOCK, firstBlock: i, count: 1 }));
        await within(got, 10_000, `B's reply to block ${i}`);
      }
    }
    // B was probed partway (blocks not held yet, others already served) and never served a wrong byte.
    expect(counts.wrong).toBe(0);
    expect(counts.other).toBe(0);
    expect(counts.notHeld).toBeGreaterThan(0);
    expect(counts.ok).toBeGreaterThan(0);
    expect(sha256(readFileSync(join(dir, 'b', 'payload.bin')))).toBe(sha256(bytes));
  }, 60_000);
});
